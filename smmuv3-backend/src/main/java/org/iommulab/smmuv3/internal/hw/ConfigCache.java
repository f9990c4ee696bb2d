package org.iommulab.smmuv3.internal.hw;

import java.util.Arrays;
import java.util.concurrent.atomic.LongAdder;
import java.util.concurrent.locks.StampedLock;
import java.util.function.LongPredicate;

/**
 * A direct-mapped cache of raw configuration structures (STEs keyed by StreamID, CDs keyed by
 * StreamID and SubstreamID): a changed structure in memory is not seen until software issues a
 * CFGI command, as on hardware. Lookups are optimistic reads that allocate nothing; fills are
 * generation-checked, so a fetch overtaken by an invalidation never leaves a stale entry.
 */
final class ConfigCache {
    private final int words;
    private final int mask;
    private final long[] keys;
    private final boolean[] valid;
    private final long[] data;
    private final StampedLock lock = new StampedLock();
    private volatile long generation;
    final LongAdder hits = new LongAdder();
    final LongAdder misses = new LongAdder();

    /**
     * @param size entries, a power of two
     * @param words 64-bit words per entry
     */
    ConfigCache(int size, int words) {
        this.words = words;
        this.mask = size - 1;
        this.keys = new long[size];
        this.valid = new boolean[size];
        this.data = new long[size * words];
    }

    private int slot(long key) {
        long h = key * 0x9e37_79b9_7f4a_7c15L;
        return (int) (h >>> 40) & mask;
    }

    boolean lookup(long key, long[] out) {
        int s = slot(key);
        long stamp = lock.tryOptimisticRead();
        boolean hit = valid[s] && keys[s] == key;
        if (hit) {
            System.arraycopy(data, s * words, out, 0, words);
        }
        if (!lock.validate(stamp)) {
            stamp = lock.readLock();
            try {
                hit = valid[s] && keys[s] == key;
                if (hit) {
                    System.arraycopy(data, s * words, out, 0, words);
                }
            } finally {
                lock.unlockRead(stamp);
            }
        }
        (hit ? hits : misses).increment();
        return hit;
    }

    long generation() {
        return generation;
    }

    void fill(long key, long[] in, long expectedGeneration) {
        int s = slot(key);
        long stamp = lock.writeLock();
        try {
            if (expectedGeneration != generation) {
                return;
            }
            keys[s] = key;
            valid[s] = true;
            System.arraycopy(in, 0, data, s * words, words);
        } finally {
            lock.unlockWrite(stamp);
        }
    }

    void invalidateAll() {
        long stamp = lock.writeLock();
        try {
            generation++;
            Arrays.fill(valid, false);
        } finally {
            lock.unlockWrite(stamp);
        }
    }

    /** Drops the entries whose key {@code selector} accepts. */
    void invalidate(LongPredicate selector) {
        long stamp = lock.writeLock();
        try {
            generation++;
            for (int s = 0; s <= mask; s++) {
                if (valid[s] && selector.test(keys[s])) {
                    valid[s] = false;
                }
            }
        } finally {
            lock.unlockWrite(stamp);
        }
    }
}
