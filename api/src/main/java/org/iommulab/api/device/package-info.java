/**
 * Requesters (PCI requester ids, SMMU stream ids), their PASID capability, IOMMU groups, and which IOMMU instance each sits behind.
 */
@Export
@Version("1.0.0")
package org.iommulab.api.device;

import org.osgi.annotation.bundle.Export;
import org.osgi.annotation.versioning.Version;
