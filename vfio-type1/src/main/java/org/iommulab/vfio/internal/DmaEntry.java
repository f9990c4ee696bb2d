package org.iommulab.vfio.internal;

import org.iommulab.api.vfio.DmaMapping;

/**
 * One MAP_DMA mapping ({@code struct vfio_dma}): its ranges, protection and the host frames pinned
 * for it, one per 4 KiB page. Immutable once built; the container's lock guards its lifetime.
 */
final class DmaEntry {
    final long iova;
    final long size;
    final long vaddr;
    final int flags;
    /** Host physical address of each 4 KiB page, in IOVA order. */
    final long[] frames;

    DmaEntry(long iova, long size, long vaddr, int flags, long[] frames) {
        this.iova = iova;
        this.size = size;
        this.vaddr = vaddr;
        this.flags = flags;
        this.frames = frames;
    }

    /** @return the last IOVA, inclusive */
    long last() {
        return iova + size - 1;
    }

    DmaMapping toMapping() {
        return new DmaMapping(iova, size, vaddr, flags);
    }
}
