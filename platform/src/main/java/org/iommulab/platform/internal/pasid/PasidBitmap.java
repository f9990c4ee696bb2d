package org.iommulab.platform.internal.pasid;

/**
 * A fixed-size bitmap with a word-at-a-time search for the lowest clear bit in a range, so that
 * allocating from a nearly full 2^20 space costs at most 2^14 word reads. Not thread safe: the
 * owner's monitor guards it.
 */
final class PasidBitmap {
    private final long[] words;
    private final int size;

    PasidBitmap(int size) {
        this.size = size;
        this.words = new long[(size + 63) >>> 6];
    }

    void set(int bit) {
        words[bit >>> 6] |= 1L << bit;
    }

    void clear(int bit) {
        words[bit >>> 6] &= ~(1L << bit);
    }

    boolean get(int bit) {
        return (words[bit >>> 6] & (1L << bit)) != 0;
    }

    /**
     * @return the lowest clear bit in {@code [from, to]}, or -1 if every bit there is set
     */
    int nextClear(int from, int to) {
        if (from < 0 || to >= size || from > to) {
            return -1;
        }
        int word = from >>> 6;
        long free = ~words[word] & (-1L << from);
        while (true) {
            if (free != 0) {
                int bit = (word << 6) + Long.numberOfTrailingZeros(free);
                return bit <= to ? bit : -1;
            }
            if (++word > to >>> 6) {
                return -1;
            }
            free = ~words[word];
        }
    }
}
