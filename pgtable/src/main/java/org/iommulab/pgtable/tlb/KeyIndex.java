package org.iommulab.pgtable.tlb;

import java.util.Arrays;

/**
 * A fixed-capacity map from a pair of longs to a small dense id in {@code [0, capacity)}, with ids
 * recycled through a free list. {@link Tlb} uses one for its (tag1, tag2) spaces and one for its
 * tag1 groups, so that the per-space and per-group bookkeeping can live in preallocated int arrays
 * indexed by id and a new tag costs no allocation.
 *
 * <p>Not thread safe: {@link Tlb} only touches it under its write lock (or read lock, for
 * {@link #find}).
 */
final class KeyIndex {
    static final int NONE = -1;

    private final long[] keyA;
    private final long[] keyB;
    /** Hash chain link while an id is in use, free-list link while it is free. */
    private final int[] next;
    private final int[] buckets;
    private final int bucketMask;
    private int freeHead;
    private int size;

    KeyIndex(int capacity) {
        keyA = new long[capacity];
        keyB = new long[capacity];
        next = new int[capacity];
        buckets = new int[Tlb.tableSize(capacity)];
        bucketMask = buckets.length - 1;
        clear();
    }

    /** Forgets every key; O(capacity). */
    void clear() {
        Arrays.fill(buckets, NONE);
        for (int i = 0; i < next.length; i++) {
            next[i] = i + 1 < next.length ? i + 1 : NONE;
        }
        freeHead = 0;
        size = 0;
    }

    int size() {
        return size;
    }

    long a(int id) {
        return keyA[id];
    }

    long b(int id) {
        return keyB[id];
    }

    /** Returns the id of {@code (a, b)}, or {@link #NONE}. */
    int find(long a, long b) {
        for (int i = buckets[bucket(a, b)]; i != NONE; i = next[i]) {
            if (keyA[i] == a && keyB[i] == b) {
                return i;
            }
        }
        return NONE;
    }

    /**
     * Adds {@code (a, b)}, which must be absent, and returns its new id.
     *
     * @throws IllegalStateException if every id is in use (a {@link Tlb} bug: it never has more
     *     spaces or groups than entries)
     */
    int add(long a, long b) {
        int id = freeHead;
        if (id == NONE) {
            throw new IllegalStateException("key index full");
        }
        freeHead = next[id];
        keyA[id] = a;
        keyB[id] = b;
        int bucket = bucket(a, b);
        next[id] = buckets[bucket];
        buckets[bucket] = id;
        size++;
        return id;
    }

    /** Removes the key with this id, which must be in use, and recycles the id. */
    void remove(int id) {
        int bucket = bucket(keyA[id], keyB[id]);
        int i = buckets[bucket];
        if (i == id) {
            buckets[bucket] = next[id];
        } else {
            while (next[i] != id) {
                i = next[i];
            }
            next[i] = next[id];
        }
        next[id] = freeHead;
        freeHead = id;
        size--;
    }

    private int bucket(long a, long b) {
        return Tlb.mix(a, b, 0x5bd1e995L) & bucketMask;
    }
}
