/**
 * Cache invalidation requests (Linux iommu_cache_invalidate_info): cache types by granularity, with the invalid combinations rejected.
 */
@Export
@Version("1.0.0")
package org.iommulab.api.invalidation;

import org.osgi.annotation.bundle.Export;
import org.osgi.annotation.versioning.Version;
