package org.iommulab.pgtable.unit;

import org.iommulab.api.errno.Errno;
import org.iommulab.api.errno.IommuException;

/**
 * Register-window access rules shared by the hardware models: 32- and 64-bit accesses, naturally
 * aligned, inside the window; a 32-bit access reads or writes one half (lane) of the 64-bit
 * register it falls in. Stateless and thread safe.
 */
public final class Registers {
    private Registers() {
    }

    /**
     * @param unit the model's name, for the message ("VT-d", "SMMUv3")
     * @param offset byte offset of the access
     * @param size 4 or 8
     * @param windowSize size of the register window in bytes
     * @throws IommuException {@code EINVAL} for another size, a misaligned offset or one outside
     *     the window
     */
    public static void checkAccess(String unit, long offset, int size, long windowSize) throws IommuException {
        if (size != 4 && size != 8) {
            throw new IommuException(Errno.EINVAL, unit + " registers are accessed with 4 or 8 bytes, not " + size);
        }
        if (offset < 0 || offset > windowSize - size || (offset & (size - 1)) != 0) {
            throw new IommuException(Errno.EINVAL, String.format("register offset 0x%x is not %d-byte aligned inside 0x%x",
                    offset, size, windowSize));
        }
    }

    /** @return what an access of {@code size} bytes at {@code offset} reads of the 64-bit register {@code quad} */
    public static long readLane(long quad, long offset, int size) {
        if (size == 8) {
            return quad;
        }
        return (offset & 4) == 0 ? quad & 0xffff_ffffL : quad >>> 32;
    }

    /** @return the bits of the 64-bit register an access of {@code size} bytes at {@code offset} writes */
    public static long laneMask(long offset, int size) {
        return size == 8 ? -1L : (offset & 4) == 0 ? 0xffff_ffffL : 0xffff_ffff_0000_0000L;
    }

    /** @return {@code value} moved into its lane of the 64-bit register, bits outside it cleared */
    public static long laneValue(long offset, long value, int size) {
        long v = size == 8 || (offset & 4) == 0 ? value : value << 32;
        return v & laneMask(offset, size);
    }

    /** @return a 64-bit value from its low and high 32-bit halves */
    public static long pair(int lo, int hi) {
        return (lo & 0xffff_ffffL) | ((long) hi << 32);
    }
}
