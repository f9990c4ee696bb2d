/**
 * A TLB library that backends instantiate for their IOTLBs and configuration caches: two-part
 * tags chosen by the backend, bounded capacity with CLOCK replacement, invalidation by all / tag /
 * tag and address range / leaf only, with costs proportional to what is removed.
 */
@Export
@Version("1.0.0")
package org.iommulab.pgtable.tlb;

import org.osgi.annotation.bundle.Export;
import org.osgi.annotation.versioning.Version;
