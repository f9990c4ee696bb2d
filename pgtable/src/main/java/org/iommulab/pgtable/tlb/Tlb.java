package org.iommulab.pgtable.tlb;

import java.util.Arrays;
import java.util.Objects;
import java.util.concurrent.atomic.LongAdder;
import java.util.concurrent.locks.StampedLock;

/**
 * A bounded translation cache with two-part tags, for IOTLBs and configuration caches. The tags
 * are the backend's: VT-d uses (domain id, PASID), SMMUv3 (VMID, ASID). Each entry maps one
 * naturally aligned input page of {@code 2^pageShift} bytes of one (tag1, tag2) "space" to an
 * output page, with backend-defined permission and attribute bits and a leaf flag that separates
 * leaf translations from paging-structure (non-leaf) cache entries.
 *
 * <h2>Cost model</h2>
 * <ul>
 * <li>{@link #lookup} allocates nothing and costs one hash probe per page size currently present
 * among entries of the requested leaf-ness, independent of capacity.
 * <li>{@link #insert} is O(1) amortized; when the TLB is full it evicts one entry chosen by CLOCK
 * (second chance): entries hit since the clock hand last passed survive another round.
 * <li>{@link #invalidateTag} and {@link #invalidateTag1} cost what they remove: every space keeps
 * its entries on an intrusive list, and every tag1 group keeps its spaces on one.
 * <li>{@link #invalidateRange} costs the smaller of (pages in the range, summed over the page sizes
 * present) and (entries of the space). {@link #invalidateAll} is O(capacity).
 * <li>Apart from {@link #stats()}, nothing allocates after construction: all storage is
 * preallocated arrays sized by the capacity.
 * </ul>
 *
 * <h2>Thread safety</h2>
 * Thread safe. Lookups run concurrently with each other and with mutations: they read under a
 * {@link StampedLock} optimistic stamp and retry under the read lock if a mutation intervened;
 * mutations hold the write lock. Once an {@code invalidate*} call has returned, no lookup that
 * starts afterwards returns an entry it removed.
 *
 * <p>Addresses are unsigned 64-bit byte addresses. Page sizes are given as log2 of the size in
 * bytes ("shift"), from {@value #MIN_PAGE_SHIFT} (4 KiB) to {@value #MAX_PAGE_SHIFT}.
 */
public final class Tlb {
    /** The smallest page shift accepted: 4 KiB pages. */
    public static final int MIN_PAGE_SHIFT = 12;
    /** The largest page shift accepted. */
    public static final int MAX_PAGE_SHIFT = 62;
    /** The largest capacity accepted (entries); far beyond any modeled IOTLB. */
    public static final int MAX_CAPACITY = 1 << 24;

    private static final int NONE = -1;
    /** {@link #chainFind} result when an optimistic read saw a chain that cannot be consistent. */
    private static final int TORN = -2;

    private final String name;
    private final int capacity;
    /** Bumped by every invalidation, under the write lock. */
    private volatile long generation;
    private final StampedLock lock = new StampedLock();

    // Entries, struct-of-arrays indexed by slot. A slot is in use iff spaceOf[slot] != NONE.
    private final long[] tag1;
    private final long[] tag2;
    /** The input page, its shift and the leaf flag packed as in {@link #pageKey}. */
    private final long[] pageKey;
    private final long[] outputPage;
    private final long[] attributes;
    private final int[] permissions;
    /**
     * CLOCK referenced bits. Kept apart from everything else because lookups set them without the
     * write lock: a racy byte store can only lose or add a second chance, never corrupt an entry.
     */
    private final byte[] referenced;
    /** Hash chain link while a slot is in use, free-list link while it is free. */
    private final int[] hashNext;
    private final int[] spaceOf;
    private final int[] nextInSpace;
    private final int[] prevInSpace;
    private final int[] buckets;
    private final int bucketMask;
    private int freeHead;
    private int size;
    private int hand;

    // Spaces (tag1, tag2) and groups (tag1), with ids from their key indexes. Write lock only.
    private final KeyIndex spaces;
    private final KeyIndex groups;
    private final int[] spaceHead;
    private final int[] spaceSize;
    private final int[] spaceGroup;
    private final int[] nextSpaceInGroup;
    private final int[] prevSpaceInGroup;
    private final int[] groupHead;

    /** Entries per (leaf bit, page shift), index {@code leaf << 6 | shift}. */
    private final int[] shiftCount = new int[128];
    /** Bit s is set iff some leaf entry has page shift s: the shifts a leaf lookup must probe. */
    private long leafShifts;
    /** The same for non-leaf entries. */
    private long tableShifts;

    private final LongAdder hits = new LongAdder();
    private final LongAdder misses = new LongAdder();
    private long inserts;
    private long evictions;
    private long invalidated;
    /** Hash probes plus list nodes visited by invalidations; lets tests check their cost. */
    long invalidationWork;

    /**
     * Creates an empty TLB, preallocating all its storage.
     *
     * @param name a name for diagnostics, not null
     * @param capacity the maximum number of entries, 1 to {@value #MAX_CAPACITY}
     * @throws IllegalArgumentException if {@code capacity} is out of range
     */
    public Tlb(String name, int capacity) {
        this.name = Objects.requireNonNull(name, "name");
        if (capacity < 1 || capacity > MAX_CAPACITY) {
            throw new IllegalArgumentException("capacity " + capacity + " not in 1.." + MAX_CAPACITY);
        }
        this.capacity = capacity;
        tag1 = new long[capacity];
        tag2 = new long[capacity];
        pageKey = new long[capacity];
        outputPage = new long[capacity];
        attributes = new long[capacity];
        permissions = new int[capacity];
        referenced = new byte[capacity];
        hashNext = new int[capacity];
        spaceOf = new int[capacity];
        nextInSpace = new int[capacity];
        prevInSpace = new int[capacity];
        buckets = new int[tableSize(capacity)];
        bucketMask = buckets.length - 1;
        // There are never more spaces or groups than entries, so capacity ids suffice.
        spaces = new KeyIndex(capacity);
        groups = new KeyIndex(capacity);
        spaceHead = new int[capacity];
        spaceSize = new int[capacity];
        spaceGroup = new int[capacity];
        nextSpaceInGroup = new int[capacity];
        prevSpaceInGroup = new int[capacity];
        groupHead = new int[capacity];
        clear();
    }

    /** Returns the name given at construction. Thread safe. */
    public String name() {
        return name;
    }

    /** Returns the maximum number of entries. Thread safe. */
    public int capacity() {
        return capacity;
    }

    /** Returns the current number of entries. Thread safe; may be stale by the time it returns. */
    public int size() {
        long stamp = lock.readLock();
        try {
            return size;
        } finally {
            lock.unlockRead(stamp);
        }
    }

    /**
     * Looks up the entry of space (tag1, tag2) with the given leaf-ness whose page covers
     * {@code address}. When entries of several page sizes cover it, the smallest page wins.
     * Allocates nothing. On a hit, marks the entry referenced for CLOCK.
     *
     * @param tag1 first tag of the space (VT-d domain id, SMMUv3 VMID, ...)
     * @param tag2 second tag of the space (PASID, ASID, ...)
     * @param address input address, bytes
     * @param leaf whether to look for a leaf entry (true) or a non-leaf one (false)
     * @param out receives the entry on a hit and is left unchanged on a miss; not null
     * @return whether an entry was found
     */
    public boolean lookup(long tag1, long tag2, long address, boolean leaf, TlbHit out) {
        Objects.requireNonNull(out, "out");
        long key = 0;
        long page = 0;
        long attrs = 0;
        int perms = 0;
        long stamp = lock.tryOptimisticRead();
        int slot = stamp == 0 ? TORN : probe(tag1, tag2, address, leaf);
        if (slot >= 0) {
            key = pageKey[slot];
            page = outputPage[slot];
            attrs = attributes[slot];
            perms = permissions[slot];
        }
        if (!lock.validate(stamp)) {
            // A writer ran meanwhile: what we read may be torn. Redo it while holding writers off.
            stamp = lock.readLock();
            try {
                slot = probe(tag1, tag2, address, leaf);
                if (slot >= 0) {
                    key = pageKey[slot];
                    page = outputPage[slot];
                    attrs = attributes[slot];
                    perms = permissions[slot];
                }
            } finally {
                lock.unlockRead(stamp);
            }
        }
        if (slot < 0) {
            misses.increment();
            return false;
        }
        // The slot may have been reused since; a stray second chance for its new entry is harmless.
        // Store only when clear, so readers of hot entries do not keep dirtying a shared line.
        if (referenced[slot] == 0) {
            referenced[slot] = 1;
        }
        hits.increment();
        out.set(address, page, shiftOf(key), perms, attrs, leaf);
        return true;
    }

    /**
     * Inserts the entry for the page of {@code 2^pageShift} bytes containing {@code address} in
     * space (tag1, tag2), or replaces the entry with the same tags, page and leaf-ness. When the
     * TLB is full, first evicts one entry chosen by CLOCK. Entries of other page sizes that
     * overlap the page are kept; lookups prefer the smallest page.
     *
     * @param tag1 first tag of the space (VT-d domain id, SMMUv3 VMID, ...)
     * @param tag2 second tag of the space (PASID, ASID, ...)
     * @param address any input address within the page, bytes
     * @param pageShift log2 of the page size in bytes, {@value #MIN_PAGE_SHIFT} to
     *     {@value #MAX_PAGE_SHIFT}
     * @param outputAddress the output address of the page; only its page base is stored (its low
     *     {@code pageShift} bits are cleared), so passing the translation of {@code address} itself
     *     is fine
     * @param permissions backend-defined permission bits, returned as given
     * @param attributes backend-defined attribute bits, returned as given
     * @param leaf whether this is a leaf translation (true) or a paging-structure cache entry
     * @throws IllegalArgumentException if {@code pageShift} is out of range
     */
    public void insert(long tag1, long tag2, long address, int pageShift, long outputAddress,
            int permissions, long attributes, boolean leaf) {
        insertIfUnchanged(-1, tag1, tag2, address, pageShift, outputAddress, permissions, attributes, leaf);
    }

    /**
     * The invalidation generation: it changes with every invalidation call. A caller that walks
     * tables reads it before the walk and fills with {@link #insertIfUnchanged}, so that a walk
     * overtaken by an invalidation never leaves its (possibly stale) result behind - the guarantee
     * hardware gives once an invalidation has completed.
     *
     * @return the current generation
     */
    public long generation() {
        return generation;
    }

    /**
     * Like {@link #insert}, but only if no invalidation ran since {@code expectedGeneration} was
     * read from {@link #generation()}; the check and the insert are atomic with respect to
     * invalidations.
     *
     * @param expectedGeneration a value of {@link #generation()}, or -1 to insert unconditionally
     * @param tag1 first tag
     * @param tag2 second tag
     * @param address any input address within the page, bytes
     * @param pageShift log2 of the page size
     * @param outputAddress output address of the page (its page base is stored)
     * @param permissions backend-defined permission bits
     * @param attributes backend-defined attribute bits
     * @param leaf leaf translation or paging-structure entry
     * @return {@code true} if inserted
     * @throws IllegalArgumentException if {@code pageShift} is out of range
     */
    public boolean insertIfUnchanged(long expectedGeneration, long tag1, long tag2, long address, int pageShift,
            long outputAddress, int permissions, long attributes, boolean leaf) {
        if (pageShift < MIN_PAGE_SHIFT || pageShift > MAX_PAGE_SHIFT) {
            throw new IllegalArgumentException("pageShift " + pageShift + " not in "
                    + MIN_PAGE_SHIFT + ".." + MAX_PAGE_SHIFT);
        }
        long key = pageKey(address >>> pageShift, pageShift, leaf);
        long page = outputAddress & -(1L << pageShift);
        long stamp = lock.writeLock();
        try {
            if (expectedGeneration != -1 && expectedGeneration != generation) {
                return false;
            }
            inserts++;
            int slot = chainFind(tag1, tag2, key);
            if (slot < 0) {
                if (size == capacity) {
                    remove(clockVictim());
                    evictions++;
                }
                slot = add(tag1, tag2, key);
            }
            this.outputPage[slot] = page;
            this.permissions[slot] = permissions;
            this.attributes[slot] = attributes;
            return true;
        } finally {
            lock.unlockWrite(stamp);
        }
    }

    /**
     * Removes every entry. O(capacity).
     *
     * @return the number of entries removed
     */
    public long invalidateAll() {
        long stamp = lock.writeLock();
        generation++; // under the write lock: fills that started before see the change
        try {
            long removed = size;
            clear();
            invalidated += removed;
            return removed;
        } finally {
            lock.unlockWrite(stamp);
        }
    }

    /**
     * Removes every entry whose first tag is {@code tag1}, whatever its second tag. Costs the
     * entries removed.
     *
     * @param tag1 first tag of the spaces to empty
     * @return the number of entries removed
     */
    public long invalidateTag1(long tag1) {
        long stamp = lock.writeLock();
        generation++; // under the write lock: fills that started before see the change
        try {
            int group = groups.find(tag1, 0);
            long removed = 0;
            // A space's id stays valid until its last entry goes, so fetch the next one first.
            for (int space = group == NONE ? NONE : groupHead[group]; space != NONE; ) {
                int next = nextSpaceInGroup[space];
                removed += removeSpace(space);
                space = next;
            }
            invalidated += removed;
            return removed;
        } finally {
            lock.unlockWrite(stamp);
        }
    }

    /**
     * Removes every entry of space (tag1, tag2). Costs the entries removed.
     *
     * @param tag1 first tag of the space (VT-d domain id, SMMUv3 VMID, ...)
     * @param tag2 second tag of the space (PASID, ASID, ...)
     * @return the number of entries removed
     */
    public long invalidateTag(long tag1, long tag2) {
        long stamp = lock.writeLock();
        generation++; // under the write lock: fills that started before see the change
        try {
            int space = spaces.find(tag1, tag2);
            long removed = space == NONE ? 0 : removeSpace(space);
            invalidated += removed;
            return removed;
        } finally {
            lock.unlockWrite(stamp);
        }
    }

    /**
     * Removes the entries of space (tag1, tag2) whose page overlaps
     * {@code [address, address + size)}, a range that is clamped at 2^64.
     *
     * @param tag1 first tag of the space (VT-d domain id, SMMUv3 VMID, ...)
     * @param tag2 second tag of the space (PASID, ASID, ...)
     * @param address start of the range, bytes (unsigned)
     * @param size length of the range, bytes, unsigned and not 0
     * @param leafOnly remove only leaf entries and keep paging-structure cache entries, as VT-d's
     *     invalidation hint (IH) and SMMUv3's LEAF flag allow
     * @return the number of entries removed
     * @throws IllegalArgumentException if {@code size} is 0: an empty range is more likely a
     *     decoding bug in the caller than a request
     */
    public long invalidateRange(long tag1, long tag2, long address, long size, boolean leafOnly) {
        long last = lastAddress(address, size);
        long stamp = lock.writeLock();
        generation++; // under the write lock: fills that started before see the change
        try {
            int space = spaces.find(tag1, tag2);
            long removed = space == NONE ? 0 : removeRange(space, address, last, leafOnly);
            invalidated += removed;
            return removed;
        } finally {
            lock.unlockWrite(stamp);
        }
    }

    /**
     * Like {@link #invalidateRange}, for every space whose first tag is {@code tag1}.
     *
     * @param tag1 first tag of the spaces to invalidate in
     * @param address start of the range, bytes (unsigned)
     * @param size length of the range, bytes, unsigned and not 0
     * @param leafOnly remove only leaf entries
     * @return the number of entries removed
     * @throws IllegalArgumentException if {@code size} is 0
     */
    public long invalidateRangeAnyTag2(long tag1, long address, long size, boolean leafOnly) {
        long last = lastAddress(address, size);
        long stamp = lock.writeLock();
        generation++; // under the write lock: fills that started before see the change
        try {
            int group = groups.find(tag1, 0);
            long removed = 0;
            for (int space = group == NONE ? NONE : groupHead[group]; space != NONE; ) {
                int next = nextSpaceInGroup[space];
                removed += removeRange(space, address, last, leafOnly);
                space = next;
            }
            invalidated += removed;
            return removed;
        } finally {
            lock.unlockWrite(stamp);
        }
    }

    /** Returns a snapshot of the counters. Thread safe; allocates the snapshot. */
    public TlbStats stats() {
        long stamp = lock.readLock();
        try {
            return new TlbStats(hits.sum(), misses.sum(), inserts, evictions, invalidated, size,
                    capacity);
        } finally {
            lock.unlockRead(stamp);
        }
    }

    @Override
    public String toString() {
        return "Tlb[" + name + ", " + size() + "/" + capacity + "]";
    }

    // ---------------------------------------------------------------- lookup helpers (any lock)

    /**
     * Probes each page shift present for this leaf-ness, smallest first. Safe on torn state: may
     * then return a wrong slot or {@link #TORN}, which the caller's validation discards.
     */
    private int probe(long tag1, long tag2, long address, boolean leaf) {
        long shifts = leaf ? leafShifts : tableShifts;
        while (shifts != 0) {
            int shift = Long.numberOfTrailingZeros(shifts);
            shifts &= shifts - 1;
            int slot = chainFind(tag1, tag2, pageKey(address >>> shift, shift, leaf));
            if (slot != NONE) {
                return slot;
            }
        }
        return NONE;
    }

    /**
     * Walks one hash chain for an exact key. Bounds-checks every link and the walk length so that
     * a chain torn by a concurrent writer can neither throw nor loop: it yields {@link #TORN}.
     */
    private int chainFind(long tag1, long tag2, long key) {
        int slot = buckets[bucket(tag1, tag2, key)];
        for (int steps = 0; slot != NONE; steps++) {
            if (slot < 0 || slot >= capacity || steps >= capacity) {
                return TORN;
            }
            if (pageKey[slot] == key && this.tag1[slot] == tag1 && this.tag2[slot] == tag2) {
                return slot;
            }
            slot = hashNext[slot];
        }
        return NONE;
    }

    /**
     * Packs an entry's key: page number (at most 52 bits, as the shift is at least 12), shift (6
     * bits) and leaf flag (1 bit). Distinct pages, shifts and leaf-ness give distinct keys.
     */
    private static long pageKey(long pageNumber, int shift, boolean leaf) {
        return pageNumber << 7 | (long) shift << 1 | (leaf ? 1 : 0);
    }

    private static int shiftOf(long key) {
        return (int) (key >>> 1) & 63;
    }

    private static boolean isLeaf(long key) {
        return (key & 1) != 0;
    }

    private int bucket(long tag1, long tag2, long key) {
        return mix(tag1, tag2, key) & bucketMask;
    }

    /** Hashes three longs so that every input bit affects the low bits used for bucket indexes. */
    static int mix(long a, long b, long c) {
        long h = a * 0x9E3779B97F4A7C15L;
        h = (h ^ (h >>> 31) ^ b) * 0xBF58476D1CE4E5B9L;
        h = (h ^ (h >>> 29) ^ c) * 0x94D049BB133111EBL;
        return (int) (h ^ (h >>> 32));
    }

    /** Returns a power of two above {@code capacity} (at most twice it): chains average under one. */
    static int tableSize(int capacity) {
        return Integer.highestOneBit(Math.max(capacity, 1)) << 1;
    }

    // -------------------------------------------------------------- mutation helpers (write lock)

    /** Resets every structure to empty; O(capacity). */
    private void clear() {
        Arrays.fill(buckets, NONE);
        Arrays.fill(spaceOf, NONE);
        Arrays.fill(referenced, (byte) 0);
        for (int i = 0; i < capacity; i++) {
            hashNext[i] = i + 1 < capacity ? i + 1 : NONE;
        }
        freeHead = 0;
        size = 0;
        hand = 0;
        spaces.clear();
        groups.clear();
        Arrays.fill(shiftCount, 0);
        leafShifts = 0;
        tableShifts = 0;
    }

    /** Takes a free slot for a new entry and links it into its hash chain and space. */
    private int add(long tag1, long tag2, long key) {
        int slot = freeHead;
        freeHead = hashNext[slot];
        this.tag1[slot] = tag1;
        this.tag2[slot] = tag2;
        pageKey[slot] = key;
        // New entries start unreferenced so that a sweep prefers them over entries already hit.
        referenced[slot] = 0;
        int bucket = bucket(tag1, tag2, key);
        hashNext[slot] = buckets[bucket];
        buckets[bucket] = slot;

        int space = spaceFor(tag1, tag2);
        spaceOf[slot] = space;
        prevInSpace[slot] = NONE;
        nextInSpace[slot] = spaceHead[space];
        if (spaceHead[space] != NONE) {
            prevInSpace[spaceHead[space]] = slot;
        }
        spaceHead[space] = slot;
        spaceSize[space]++;

        countShift(key, 1);
        size++;
        return slot;
    }

    /** Unlinks an entry from its hash chain and space and frees its slot (and emptied space). */
    private void remove(int slot) {
        int bucket = bucket(tag1[slot], tag2[slot], pageKey[slot]);
        int i = buckets[bucket];
        if (i == slot) {
            buckets[bucket] = hashNext[slot];
        } else {
            while (hashNext[i] != slot) {
                i = hashNext[i];
            }
            hashNext[i] = hashNext[slot];
        }

        int space = spaceOf[slot];
        int prev = prevInSpace[slot];
        int next = nextInSpace[slot];
        if (prev == NONE) {
            spaceHead[space] = next;
        } else {
            nextInSpace[prev] = next;
        }
        if (next != NONE) {
            prevInSpace[next] = prev;
        }
        if (--spaceSize[space] == 0) {
            releaseSpace(space);
        }

        countShift(pageKey[slot], -1);
        spaceOf[slot] = NONE;
        hashNext[slot] = freeHead;
        freeHead = slot;
        size--;
    }

    /**
     * Picks the entry to evict, CLOCK style: skips (and clears) referenced entries. Only called
     * when full, so every slot is in use. Lookups may keep setting bits behind the hand, so after
     * two full turns the hand takes whatever it points at.
     */
    private int clockVictim() {
        for (int steps = 0; ; steps++) {
            int slot = hand;
            hand = slot + 1 == capacity ? 0 : slot + 1;
            if (referenced[slot] == 0 || steps >= 2 * capacity) {
                return slot;
            }
            referenced[slot] = 0;
        }
    }

    private void countShift(long key, int delta) {
        int shift = shiftOf(key);
        boolean leaf = isLeaf(key);
        int count = shiftCount[(leaf ? 64 : 0) | shift] += delta;
        long bit = 1L << shift;
        if (leaf) {
            leafShifts = count > 0 ? leafShifts | bit : leafShifts & ~bit;
        } else {
            tableShifts = count > 0 ? tableShifts | bit : tableShifts & ~bit;
        }
    }

    /** Returns the id of space (tag1, tag2), creating it (and its tag1 group) if needed. */
    private int spaceFor(long tag1, long tag2) {
        int space = spaces.find(tag1, tag2);
        if (space != NONE) {
            return space;
        }
        space = spaces.add(tag1, tag2);
        spaceHead[space] = NONE;
        spaceSize[space] = 0;
        int group = groups.find(tag1, 0);
        if (group == NONE) {
            group = groups.add(tag1, 0);
            groupHead[group] = NONE;
        }
        spaceGroup[space] = group;
        prevSpaceInGroup[space] = NONE;
        nextSpaceInGroup[space] = groupHead[group];
        if (groupHead[group] != NONE) {
            prevSpaceInGroup[groupHead[group]] = space;
        }
        groupHead[group] = space;
        return space;
    }

    /** Frees an empty space's id, and its group's if it was the group's last space. */
    private void releaseSpace(int space) {
        int group = spaceGroup[space];
        int prev = prevSpaceInGroup[space];
        int next = nextSpaceInGroup[space];
        if (prev == NONE) {
            groupHead[group] = next;
        } else {
            nextSpaceInGroup[prev] = next;
        }
        if (next != NONE) {
            prevSpaceInGroup[next] = prev;
        }
        if (groupHead[group] == NONE) {
            groups.remove(group);
        }
        spaces.remove(space);
    }

    /** Removes every entry of a space, which is released with its last entry. */
    private long removeSpace(int space) {
        long removed = 0;
        for (int slot = spaceHead[space]; slot != NONE; ) {
            int next = nextInSpace[slot];
            invalidationWork++;
            remove(slot);
            removed++;
            slot = next;
        }
        return removed;
    }

    /**
     * Removes a space's entries overlapping {@code [first, last]} (inclusive, unsigned) by
     * whichever is cheaper: probing the hash for every page of the range at every page shift
     * present, or walking the space's list.
     */
    private long removeRange(int space, long first, long last, boolean leafOnly) {
        long budget = spaceSize[space];
        long probes = probeCount(leafShifts, first, last, budget);
        if (!leafOnly && probes <= budget) {
            probes += probeCount(tableShifts, first, last, budget - probes);
        }
        if (probes > budget) {
            return removeRangeByWalk(space, first, last, leafOnly);
        }
        long tag1 = spaces.a(space);
        long tag2 = spaces.b(space);
        long removed = removeRangeByProbe(tag1, tag2, leafShifts, true, first, last);
        if (!leafOnly) {
            removed += removeRangeByProbe(tag1, tag2, tableShifts, false, first, last);
        }
        return removed;
    }

    /**
     * Counts the pages of {@code [first, last]} summed over the shifts in {@code shifts}, stopping
     * once the sum exceeds {@code limit}. Page numbers have at most 52 bits, so nothing overflows.
     */
    private static long probeCount(long shifts, long first, long last, long limit) {
        long count = 0;
        for (; shifts != 0 && count <= limit; shifts &= shifts - 1) {
            int shift = Long.numberOfTrailingZeros(shifts);
            count += (last >>> shift) - (first >>> shift) + 1;
        }
        return count;
    }

    private long removeRangeByProbe(long tag1, long tag2, long shifts, boolean leaf, long first,
            long last) {
        long removed = 0;
        // Iterate over a copy of the mask: removals may clear bits of the live one.
        for (; shifts != 0; shifts &= shifts - 1) {
            int shift = Long.numberOfTrailingZeros(shifts);
            long lastPage = last >>> shift;
            for (long page = first >>> shift; page <= lastPage; page++) {
                invalidationWork++;
                int slot = chainFind(tag1, tag2, pageKey(page, shift, leaf));
                if (slot >= 0) {
                    remove(slot);
                    removed++;
                }
            }
        }
        return removed;
    }

    private long removeRangeByWalk(int space, long first, long last, boolean leafOnly) {
        long removed = 0;
        // The space is released with its last entry, by which time next is NONE.
        for (int slot = spaceHead[space]; slot != NONE; ) {
            int next = nextInSpace[slot];
            invalidationWork++;
            long key = pageKey[slot];
            if ((!leafOnly || isLeaf(key)) && overlaps(key, first, last)) {
                remove(slot);
                removed++;
            }
            slot = next;
        }
        return removed;
    }

    /** Whether the entry page of {@code key} overlaps {@code [first, last]} (inclusive, unsigned). */
    private static boolean overlaps(long key, long first, long last) {
        int shift = shiftOf(key);
        long base = (key >>> 7) << shift;
        long end = base | ((1L << shift) - 1);
        return Long.compareUnsigned(base, last) <= 0 && Long.compareUnsigned(end, first) >= 0;
    }

    /** Returns the last byte of {@code [address, address + size)}, clamped at 2^64 - 1. */
    private static long lastAddress(long address, long size) {
        if (size == 0) {
            throw new IllegalArgumentException("empty invalidation range at 0x"
                    + Long.toHexString(address));
        }
        long last = address + size - 1;
        return Long.compareUnsigned(last, address) < 0 ? -1L : last;
    }

    // ---------------------------------------------------------------------------------- testing

    /**
     * Checks the internal structures against each other and throws {@link AssertionError} on any
     * mismatch. For tests; O(capacity).
     */
    void checkInvariants() {
        long stamp = lock.readLock();
        try {
            int inUse = 0;
            int[] counts = new int[128];
            for (int slot = 0; slot < capacity; slot++) {
                if (spaceOf[slot] == NONE) {
                    continue;
                }
                inUse++;
                counts[(isLeaf(pageKey[slot]) ? 64 : 0) | shiftOf(pageKey[slot])]++;
                check(chainFind(tag1[slot], tag2[slot], pageKey[slot]) == slot, "slot in its chain");
                check(spaces.find(tag1[slot], tag2[slot]) == spaceOf[slot], "slot's space");
            }
            check(inUse == size, "size");
            check(Arrays.equals(counts, shiftCount), "shift counts");
            for (int shift = 0; shift < 64; shift++) {
                check(((leafShifts >>> shift & 1) != 0) == (counts[64 | shift] > 0), "leaf mask");
                check(((tableShifts >>> shift & 1) != 0) == (counts[shift] > 0), "table mask");
            }
            int listed = 0;
            int spaceCount = 0;
            for (int group = 0; group < capacity; group++) {
                if (groups.find(groups.a(group), 0) != group) {
                    continue;
                }
                check(groupHead[group] != NONE, "group not empty");
                for (int space = groupHead[group]; space != NONE; space = nextSpaceInGroup[space]) {
                    spaceCount++;
                    check(spaceGroup[space] == group && spaces.a(space) == groups.a(group), "group");
                    int n = 0;
                    for (int slot = spaceHead[space]; slot != NONE; slot = nextInSpace[slot]) {
                        check(spaceOf[slot] == space, "list member's space");
                        n++;
                    }
                    check(n == spaceSize[space] && n > 0, "space size");
                    listed += n;
                }
            }
            check(listed == size, "entries listed in spaces");
            check(spaceCount == spaces.size(), "spaces listed in groups");
        } finally {
            lock.unlockRead(stamp);
        }
    }

    private static void check(boolean condition, String what) {
        if (!condition) {
            throw new AssertionError("TLB invariant violated: " + what);
        }
    }
}
