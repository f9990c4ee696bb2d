package org.iommulab.vtd.internal.hw;

import java.util.concurrent.atomic.LongAdder;
import java.util.concurrent.locks.StampedLock;

/**
 * A direct-mapped cache of raw configuration entries (the context cache and the PASID cache of
 * §6.2): it keeps the words hardware read, so a changed table entry is not seen until software
 * invalidates it, as on hardware. Lookups are optimistic reads that allocate nothing.
 *
 * <p>Thread safe: fills and invalidations take the write lock.
 */
final class EntryCache {
    private final int words;
    private final int mask;
    private final long[] keys;
    private final boolean[] valid;
    private final long[] data;
    private final StampedLock lock = new StampedLock();
    /** Bumped by every invalidation under the write lock; see {@link #fill}. */
    private volatile long generation;
    final LongAdder hits = new LongAdder();
    final LongAdder misses = new LongAdder();

    /**
     * @param size entries, a power of two
     * @param words 64-bit words per entry
     */
    EntryCache(int size, int words) {
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

    /**
     * @param key the entry's key
     * @param out receives the words on a hit
     * @return {@code true} on a hit
     */
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

    /** @return the invalidation generation, read before fetching an entry from memory */
    long generation() {
        return generation;
    }

    /**
     * Caches the words of an entry, replacing whatever shared its slot, unless an invalidation ran
     * since {@code expectedGeneration}: an entry fetched before an invalidation completed must not
     * outlive it.
     */
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

    /** Drops every entry. */
    void invalidateAll() {
        long stamp = lock.writeLock();
        try {
            generation++;
            java.util.Arrays.fill(valid, false);
        } finally {
            lock.unlockWrite(stamp);
        }
    }

    /**
     * Drops the entries a predicate selects (keys and words are passed).
     *
     * @param selector which entries to drop
     */
    void invalidate(Selector selector) {
        long stamp = lock.writeLock();
        try {
            generation++;
            for (int s = 0; s <= mask; s++) {
                if (valid[s] && selector.matches(keys[s], data, s * words)) {
                    valid[s] = false;
                }
            }
        } finally {
            lock.unlockWrite(stamp);
        }
    }

    /** Chooses entries to invalidate. */
    interface Selector {
        boolean matches(long key, long[] data, int offset);
    }
}
