/**
 * The system-wide 20-bit PASID space and PASID sets (Linux ioasid_set): allocation, quotas, ownership.
 */
@Export
@Version("1.2.0")
package org.iommulab.api.pasid;

import org.osgi.annotation.bundle.Export;
import org.osgi.annotation.versioning.Version;
