package org.iommulab.pgtable.tlb;

import java.util.Arrays;
import java.util.concurrent.atomic.LongAdder;
import java.util.concurrent.locks.StampedLock;
import java.util.function.LongPredicate;

/**
 * A direct-mapped cache of raw configuration entries, for the configuration caches of IOMMU
 * models (VT-d context and PASID caches, SMMUv3 STE and CD caches): it keeps the words hardware
 * read from memory, so a changed table entry is not seen until software invalidates it, as on
 * hardware. A slot holds one key; a new key evicts whatever shared its slot.
 *
 * <p>Fills are generation-checked: a caller reads {@link #generation()} before fetching an entry
 * from memory and passes it to {@link #fill}; if any invalidation ran in between, the fill is
 * dropped, so an entry fetched before an invalidation completed never outlives it.
 *
 * <p>Thread safe: lookups are optimistic reads that allocate nothing; fills and invalidations take
 * the write lock. Invalidation by predicate costs O(size), which suits configuration caches.
 */
public final class EntryCache {
    private final int words;
    private final int mask;
    private final long[] keys;
    private final boolean[] valid;
    private final long[] data;
    private final StampedLock lock = new StampedLock();
    private final LongAdder hits = new LongAdder();
    private final LongAdder misses = new LongAdder();
    /** Bumped by every invalidation under the write lock. */
    private volatile long generation;

    /** Chooses entries to invalidate from their key and words. */
    @FunctionalInterface
    public interface Selector {
        /**
         * @param key the entry's key
         * @param data the cache's word array
         * @param offset index of the entry's first word in {@code data}
         * @return {@code true} to drop the entry
         */
        boolean matches(long key, long[] data, int offset);
    }

    /**
     * @param size entries, a power of two
     * @param words 64-bit words per entry, at least 1
     * @throws IllegalArgumentException for a size that is not a power of two or no words
     */
    public EntryCache(int size, int words) {
        if (size < 1 || Integer.bitCount(size) != 1 || words < 1) {
            throw new IllegalArgumentException("size must be a power of two and words at least 1");
        }
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
     * @param out receives the words on a hit; at least {@code words} long
     * @return {@code true} on a hit
     */
    public boolean lookup(long key, long[] out) {
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

    /** @return the invalidation generation, to read before fetching an entry from memory */
    public long generation() {
        return generation;
    }

    /**
     * Caches the words of an entry unless an invalidation ran since {@code expectedGeneration}.
     *
     * @param key the entry's key
     * @param in the words
     * @param expectedGeneration {@link #generation()} as read before the fetch
     * @return {@code true} if cached
     */
    public boolean fill(long key, long[] in, long expectedGeneration) {
        int s = slot(key);
        long stamp = lock.writeLock();
        try {
            if (expectedGeneration != generation) {
                return false;
            }
            keys[s] = key;
            valid[s] = true;
            System.arraycopy(in, 0, data, s * words, words);
            return true;
        } finally {
            lock.unlockWrite(stamp);
        }
    }

    /** Drops every entry. */
    public void invalidateAll() {
        long stamp = lock.writeLock();
        try {
            generation++;
            Arrays.fill(valid, false);
        } finally {
            lock.unlockWrite(stamp);
        }
    }

    /**
     * Drops the entries a selector chooses.
     *
     * @param selector sees each valid entry's key and words
     */
    public void invalidate(Selector selector) {
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

    /**
     * Drops the entries whose key a predicate chooses.
     *
     * @param keys chooses by key
     */
    public void invalidateKeys(LongPredicate keys) {
        invalidate((key, d, o) -> keys.test(key));
    }

    /** @return lookups that hit */
    public long hits() {
        return hits.sum();
    }

    /** @return lookups that missed */
    public long misses() {
        return misses.sum();
    }
}
