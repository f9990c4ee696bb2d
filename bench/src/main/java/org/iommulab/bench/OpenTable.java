package org.iommulab.bench;

/**
 * The B1 baseline: a bare open-addressing long -> long table (linear probing, power-of-two
 * capacity), the least a cache lookup can cost.
 */
final class OpenTable {
    private final long[] keys;
    private final long[] values;
    private final int mask;

    OpenTable(int capacity) {
        int size = Integer.highestOneBit(capacity * 2 - 1) << 1;
        keys = new long[size];
        values = new long[size];
        mask = size - 1;
        java.util.Arrays.fill(keys, -1);
    }

    private static int hash(long key) {
        long h = key * 0x9E37_79B9_7F4A_7C15L;
        return (int) (h ^ (h >>> 32));
    }

    void put(long key, long value) {
        int i = hash(key) & mask;
        while (keys[i] != -1 && keys[i] != key) {
            i = (i + 1) & mask;
        }
        keys[i] = key;
        values[i] = value;
    }

    long get(long key) {
        int i = hash(key) & mask;
        while (keys[i] != key) {
            if (keys[i] == -1) {
                return -1;
            }
            i = (i + 1) & mask;
        }
        return values[i];
    }
}
