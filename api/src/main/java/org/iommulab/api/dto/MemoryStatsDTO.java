package org.iommulab.api.dto;

/** A snapshot of host memory usage. */
public class MemoryStatsDTO {
    /** Physical address width in bits. */
    public int addressBits;
    /** Number of 4 KiB pages that are backed (written or allocated). */
    public long backedPages;
    /** Number of frames currently allocated by the frame allocator. */
    public long allocatedFrames;
    /** Lowest address of the frame pool. */
    public long poolBase;
    /** Maximum number of frames the pool hands out at once. */
    public long poolFrames;
}
