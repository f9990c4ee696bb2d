package org.iommulab.api.vfio;

/**
 * An inclusive range of usable IOVAs ({@code struct vfio_iova_range}). Immutable.
 *
 * @param start first usable address
 * @param end last usable address (inclusive, unsigned)
 */
public record IovaRange(long start, long end) {

    /**
     * @param address any value
     * @return {@code true} if {@code start <= address <= end} (unsigned)
     */
    public boolean contains(long address) {
        return Long.compareUnsigned(address, start) >= 0 && Long.compareUnsigned(address, end) <= 0;
    }
}
