package org.iommulab.api.process;

import org.osgi.annotation.versioning.ConsumerType;

/**
 * What a user of a process's address space hears when its pages change (Linux's
 * {@code mmu_notifier}): the SVA layer keeps the page table a device walks coherent with it, and
 * shoots down IOMMU caches before a frame leaves the process.
 *
 * <p>Implemented by consumers (the SVA service). Called synchronously on the thread changing the
 * address space, with no lock of the process held; implementations must not call back into the
 * process's mapping methods ({@code mmap}, {@code munmap}, {@code swapOut}) from the callback.
 */
@ConsumerType
public interface MmuNotifier {
    /**
     * A page became resident (first touch, a fault from a device, swap-in) and the access that
     * caused it has not completed yet.
     *
     * @param process the process
     * @param vaddr the page's virtual address (page aligned)
     * @param hostPhysical the frame now backing it (page aligned)
     */
    default void pageResident(HostProcess process, long vaddr, long hostPhysical) {
    }

    /**
     * Pages of {@code [vaddr, vaddr + length)} leave the address space (munmap, swap-out): called
     * before their frames are freed or reused. When it returns, no device may still use a
     * translation of the range ({@code invalidate_range_start} and the IOTLB flush).
     *
     * @param process the process
     * @param vaddr first address, page aligned
     * @param length bytes, a whole number of pages
     */
    void invalidateRange(HostProcess process, long vaddr, long length);

    /**
     * The process exits ({@code mmu_notifier release}): called before its address space is torn
     * down; users must stop every device access to it.
     *
     * @param process the process
     */
    default void release(HostProcess process) {
    }
}
