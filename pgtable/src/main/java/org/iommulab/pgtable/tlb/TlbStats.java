package org.iommulab.pgtable.tlb;

/**
 * An immutable snapshot of a {@link Tlb}'s counters, taken by {@link Tlb#stats()}. Counters are
 * cumulative since the TLB was created. Thread safe.
 *
 * <p>{@code hits} and {@code misses} are summed from concurrent counters and may be a few lookups
 * out of step with the other values when lookups run during the snapshot.
 */
public final class TlbStats {
    /** Lookups that found an entry. */
    public final long hits;
    /** Lookups that found none. */
    public final long misses;
    /** Calls of {@link Tlb#insert}, including those that replaced an entry with the same key. */
    public final long inserts;
    /** Entries removed by CLOCK replacement to make room for an insert. */
    public final long evictions;
    /** Entries removed by the {@code invalidate*} methods. */
    public final long invalidated;
    /** Entries present when the snapshot was taken. */
    public final int size;
    /** Maximum number of entries. */
    public final int capacity;

    TlbStats(long hits, long misses, long inserts, long evictions, long invalidated, int size,
            int capacity) {
        this.hits = hits;
        this.misses = misses;
        this.inserts = inserts;
        this.evictions = evictions;
        this.invalidated = invalidated;
        this.size = size;
        this.capacity = capacity;
    }

    /** Returns {@link #hits}. */
    public long hits() {
        return hits;
    }

    /** Returns {@link #misses}. */
    public long misses() {
        return misses;
    }

    /** Returns {@link #inserts}. */
    public long inserts() {
        return inserts;
    }

    /** Returns {@link #evictions}. */
    public long evictions() {
        return evictions;
    }

    /** Returns {@link #invalidated}. */
    public long invalidated() {
        return invalidated;
    }

    /** Returns {@link #size}. */
    public int size() {
        return size;
    }

    /** Returns {@link #capacity}. */
    public int capacity() {
        return capacity;
    }

    /** Returns hits / (hits + misses), or 0 when there were no lookups. */
    public double hitRate() {
        long lookups = hits + misses;
        return lookups == 0 ? 0 : (double) hits / lookups;
    }

    @Override
    public String toString() {
        return String.format(
                "TlbStats[hits=%d, misses=%d, hitRate=%.3f, inserts=%d, evictions=%d, invalidated=%d, size=%d/%d]",
                hits, misses, hitRate(), inserts, evictions, invalidated, size, capacity);
    }
}
