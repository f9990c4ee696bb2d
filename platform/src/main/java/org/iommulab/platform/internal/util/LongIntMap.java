package org.iommulab.platform.internal.util;

/**
 * A map from {@code long} keys to {@code int} values without boxing: open addressing with linear
 * probing and backward-shift deletion. It exists because per-frame bookkeeping (allocated blocks,
 * pin counts) keyed by page-aligned addresses cost about 100 bytes an entry in a
 * {@code HashMap<Long, ...>}, whose hash also collides on aligned keys; here an entry costs 12 to 24
 * bytes and a Fibonacci hash spreads the aligned keys.
 *
 * <p>Not thread safe: callers hold their own lock. Every key is allowed, including 0.
 */
public final class LongIntMap {
    private static final long GOLDEN = 0x9E3779B97F4A7C15L;
    private static final int MIN_CAPACITY = 16;

    private long[] keys;
    private int[] values;
    private int shift;
    private int size;
    /** Key 0 marks an empty slot, so the entry for key 0 lives outside the table. */
    private boolean hasZero;
    private int zeroValue;

    public LongIntMap() {
        allocate(MIN_CAPACITY);
    }

    /** @return the number of entries */
    public int size() {
        return size;
    }

    /** @return the value for {@code key}, or {@code missing} when there is none */
    public int get(long key, int missing) {
        if (key == 0) {
            return hasZero ? zeroValue : missing;
        }
        int slot = find(key);
        return slot < 0 ? missing : values[slot];
    }

    public boolean containsKey(long key) {
        return key == 0 ? hasZero : find(key) >= 0;
    }

    /** Sets the value for {@code key}, replacing any earlier one. */
    public void put(long key, int value) {
        if (key == 0) {
            if (!hasZero) {
                hasZero = true;
                size++;
            }
            zeroValue = value;
            return;
        }
        int mask = keys.length - 1;
        int slot = home(key);
        while (keys[slot] != 0) {
            if (keys[slot] == key) {
                values[slot] = value;
                return;
            }
            slot = (slot + 1) & mask;
        }
        keys[slot] = key;
        values[slot] = value;
        size++;
        if (size > keys.length * 3L / 4) {
            rehash(keys.length * 2);
        }
    }

    /** Removes the entry for {@code key}; @return its value, or {@code missing} when there was none */
    public int remove(long key, int missing) {
        if (key == 0) {
            if (!hasZero) {
                return missing;
            }
            hasZero = false;
            size--;
            return zeroValue;
        }
        int slot = find(key);
        if (slot < 0) {
            return missing;
        }
        int old = values[slot];
        shiftBack(slot);
        size--;
        if (keys.length > MIN_CAPACITY && size < keys.length / 8) {
            rehash(keys.length / 2);
        }
        return old;
    }

    private int home(long key) {
        return (int) ((key * GOLDEN) >>> shift);
    }

    private int find(long key) {
        int mask = keys.length - 1;
        for (int slot = home(key); keys[slot] != 0; slot = (slot + 1) & mask) {
            if (keys[slot] == key) {
                return slot;
            }
        }
        return -1;
    }

    /** Backward-shift deletion: later entries of the probe run move into the hole, no tombstones. */
    private void shiftBack(int hole) {
        int mask = keys.length - 1;
        int slot = hole;
        while (true) {
            slot = (slot + 1) & mask;
            long key = keys[slot];
            if (key == 0) {
                break;
            }
            int home = home(key);
            // The entry may fill the hole unless its home lies cyclically in (hole, slot].
            boolean homeAfterHole = hole <= slot ? hole < home && home <= slot : hole < home || home <= slot;
            if (!homeAfterHole) {
                keys[hole] = key;
                values[hole] = values[slot];
                hole = slot;
            }
        }
        keys[hole] = 0;
        values[hole] = 0;
    }

    private void allocate(int capacity) {
        keys = new long[capacity];
        values = new int[capacity];
        shift = 64 - Integer.numberOfTrailingZeros(capacity);
    }

    private void rehash(int capacity) {
        long[] oldKeys = keys;
        int[] oldValues = values;
        allocate(capacity);
        int mask = capacity - 1;
        for (int i = 0; i < oldKeys.length; i++) {
            long key = oldKeys[i];
            if (key != 0) {
                int slot = home(key);
                while (keys[slot] != 0) {
                    slot = (slot + 1) & mask;
                }
                keys[slot] = key;
                values[slot] = oldValues[i];
            }
        }
    }

    /** Removes every entry and returns to the initial capacity. */
    public void clear() {
        allocate(MIN_CAPACITY);
        size = 0;
        hasZero = false;
    }
}
