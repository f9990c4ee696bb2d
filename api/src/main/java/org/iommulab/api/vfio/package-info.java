/**
 * The VFIO type1 container model with the 2020 vSVA nesting extensions: containers, groups, DMA
 * mappings, PASID requests, guest page-table binding, cache invalidation and PASID tables.
 */
@Export
@Version("1.1.0")
package org.iommulab.api.vfio;

import org.osgi.annotation.bundle.Export;
import org.osgi.annotation.versioning.Version;
