/**
 * Fault records and page requests that an IOMMU reports, and the listener interface that receives them.
 */
@Export
@Version("1.0.0")
package org.iommulab.api.fault;

import org.osgi.annotation.bundle.Export;
import org.osgi.annotation.versioning.Version;
