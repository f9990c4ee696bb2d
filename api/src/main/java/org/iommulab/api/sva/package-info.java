/**
 * Shared virtual addressing on the host (Linux's {@code iommu_sva_bind_device}): a host process's
 * address space bound to a device through a PASID, so that the device's PASID-tagged DMA walks the
 * process's own page table, faults pages in through page requests, and follows munmap, swap-out
 * and exit.
 */
@Export
@Version("1.0.0")
package org.iommulab.api.sva;

import org.osgi.annotation.bundle.Export;
import org.osgi.annotation.versioning.Version;
