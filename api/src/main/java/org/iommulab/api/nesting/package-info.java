/**
 * Domain nesting info and the nesting operations' data: bind guest PASID (VT-d) and attach PASID table (SMMUv3).
 */
@Export
@Version("1.0.0")
package org.iommulab.api.nesting;

import org.osgi.annotation.bundle.Export;
import org.osgi.annotation.versioning.Version;
