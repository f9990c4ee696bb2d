package org.iommulab.pgtable;

import java.util.HashMap;
import java.util.Map;
import java.util.concurrent.locks.ReentrantLock;

import org.iommulab.api.errno.Errno;
import org.iommulab.api.errno.IommuException;
import org.iommulab.api.memory.FrameAllocator;
import org.iommulab.api.memory.MemoryAccessException;
import org.iommulab.api.memory.PhysicalMemory;
import org.iommulab.api.spi.IommuDomain;
import org.iommulab.pgtable.PageTableFormat.EntryType;

/**
 * The driver side of a page table (Linux {@code io_pgtable_ops}): map, unmap and iova-to-phys over
 * tables it allocates from a {@link FrameAllocator}, in any {@link PageTableFormat}.
 *
 * <ul>
 * <li>{@link #map} uses the largest page the alignment of iova, physical address and remaining size
 * allows, and is all or nothing: an overlap is found before anything is written, and if a table
 * frame cannot be allocated midway, what this call mapped is unmapped again.</li>
 * <li>{@link #unmap} has VFIO type1v2 semantics: it refuses (EINVAL, nothing changed) to bisect a
 * page, removes every page inside the range, frees tables that become empty, and reports stale
 * ranges to {@link FlushOps} before returning.</li>
 * </ul>
 *
 * <p>Thread safe: map and unmap are serialized by a lock (they edit shared tables and their entry
 * counts); {@link #iovaToPhys} and hardware walks read without locking, as an IOMMU does.
 */
public final class IoPageTable {
    private final PageTableFormat format;
    private final PhysicalMemory memory;
    private final FrameAllocator frames;
    private final FlushOps flush;
    private final long root;
    private final long pageSizes;
    private final ReentrantLock lock = new ReentrantLock();
    /**
     * Live entries and frame count of every table but the root, keyed by frame number (address
     * >>> 12): aligned addresses as keys would collide in the low bits HashMap indexes by.
     * Guarded by {@link #lock}.
     */
    private final Map<Long, int[]> counts = new HashMap<>();
    /**
     * The last table looked up in {@link #counts} and its counts: mapping or unmapping a range
     * touches one leaf table hundreds of times in a row, and this spares each time a boxed key.
     */
    private long lastTable = -1;
    private int[] lastCounts;
    /**
     * The table {@link #install} last wrote a leaf into, its depth and the input bits above it:
     * consecutive pages of one {@link #map} call land in the same table, so only the first of them
     * walks from the root. Valid within one map call (under the lock, tables are only added then).
     */
    private int cursorDepth = -1;
    private long cursorPrefix;
    private long cursorTable;
    /** Tables emptied by the current operation, freed after its flush. Guarded by {@link #lock}. */
    private final java.util.List<long[]> emptied = new java.util.ArrayList<>();
    private long tableFrames;
    private boolean destroyed;

    private IoPageTable(PageTableFormat format, PhysicalMemory memory, FrameAllocator frames, FlushOps flush, long root,
            long rootFrames, long pageSizes) {
        this.format = format;
        this.pageSizes = pageSizes;
        this.memory = memory;
        this.frames = frames;
        this.flush = flush;
        this.root = root;
        this.tableFrames = rootFrames;
    }

    /**
     * Allocates an empty root table.
     *
     * @param format the format
     * @param memory where the tables live
     * @param frames where table frames come from
     * @param flush told of stale ranges; {@link FlushOps#NONE} if nothing caches this table
     * @return the table
     * @throws IommuException {@code ENOMEM} if the root cannot be allocated
     */
    public static IoPageTable create(PageTableFormat format, PhysicalMemory memory, FrameAllocator frames,
            FlushOps flush) throws IommuException {
        return create(format, memory, frames, flush, format.pageSizes());
    }

    /**
     * Allocates an empty root table whose mappings use only some of the format's page sizes
     * (Linux's {@code pgsize_bitmap}).
     *
     * @param format the format
     * @param memory where the tables live
     * @param frames where table frames come from
     * @param flush told of stale ranges
     * @param pageSizes bitmap of page sizes {@link #map} may use; must include the granule
     * @return the table
     * @throws IommuException {@code EINVAL} if the bitmap lacks the granule or has sizes the format
     *     cannot map, {@code ENOMEM} if the root cannot be allocated
     */
    public static IoPageTable create(PageTableFormat format, PhysicalMemory memory, FrameAllocator frames,
            FlushOps flush, long pageSizes) throws IommuException {
        if ((pageSizes & (1L << format.granuleShift())) == 0 || (pageSizes & ~format.pageSizes()) != 0) {
            throw new IommuException(Errno.EINVAL, String.format("page sizes 0x%x must include the granule and be a subset of 0x%x",
                    pageSizes, format.pageSizes()));
        }
        int rootFrames = framesFor(format.tableBytes(0));
        long root = frames.allocateFrames(rootFrames);
        return new IoPageTable(format, memory, frames, flush, root, rootFrames, pageSizes);
    }

    /**
     * Takes over a table another {@code IoPageTable} built and left in memory (a driver restored
     * from a hand-over, as Linux's live update preserves I/O page tables across kexec): nothing is
     * written; the tables under {@code root} are walked to learn their frames and entry counts.
     * The frames are this object's from now on.
     *
     * @param format the format the table was built in
     * @param memory where the tables live
     * @param frames where the frames came from and new ones come from
     * @param flush told of stale ranges
     * @param pageSizes the page sizes {@link #map} may use, as given to {@link #create}
     * @param root the root table's address
     * @return the table
     * @throws IommuException {@code EINVAL} for a bad bitmap or a root that is not frame aligned,
     *     {@code EFAULT} if a table cannot be read
     */
    public static IoPageTable adopt(PageTableFormat format, PhysicalMemory memory, FrameAllocator frames,
            FlushOps flush, long pageSizes, long root) throws IommuException {
        if ((pageSizes & (1L << format.granuleShift())) == 0 || (pageSizes & ~format.pageSizes()) != 0
                || (root & (FrameAllocator.FRAME_SIZE - 1)) != 0) {
            throw new IommuException(Errno.EINVAL, String.format("cannot adopt a table at 0x%x with page sizes 0x%x", root,
                    pageSizes));
        }
        IoPageTable t = new IoPageTable(format, memory, frames, flush, root, framesFor(format.tableBytes(0)), pageSizes);
        try {
            t.learn(root, 0);
        } catch (MemoryAccessException e) {
            throw new IommuException(Errno.EFAULT, "table at 0x" + Long.toHexString(root) + " cannot be read: " + e.getMessage());
        }
        return t;
    }

    /** Counts the live entries of {@code table} and of every table below it (what map kept). */
    private int learn(long table, int depth) {
        int live = 0;
        int entries = 1 << format.indexBits(depth);
        for (int i = 0; i < entries; i++) {
            long entry = memory.read64(table + ((long) i << 3));
            EntryType type = format.classify(entry, depth);
            if (type == EntryType.INVALID) {
                continue;
            }
            live++;
            if (type == EntryType.TABLE && depth + 1 < format.levels()) {
                long child = format.tableAddress(entry, depth);
                int n = framesFor(format.tableBytes(depth + 1));
                int[] c = {0, n};
                counts.put(child >>> 12, c);
                tableFrames += n;
                c[0] = learn(child, depth + 1);
            }
        }
        return live;
    }

    /** @return the bitmap of page sizes {@link #map} uses (bit n: 2^n bytes) */
    public long pageSizes() {
        return pageSizes;
    }

    private static int framesFor(long bytes) {
        return (int) Math.max(1, (bytes + FrameAllocator.FRAME_SIZE - 1) / FrameAllocator.FRAME_SIZE);
    }

    /** @return the physical address of the root table (what a context entry, PASID entry or STE points to) */
    public long root() {
        return root;
    }

    /** @return the format */
    public PageTableFormat format() {
        return format;
    }

    /** @return the number of frames held by this table's tables, root included */
    public long tableFrames() {
        lock.lock();
        try {
            return tableFrames;
        } finally {
            lock.unlock();
        }
    }

    /**
     * @return every table frame this table holds, root first, as (address, frame count) pairs: what
     *     a driver handing the table over lists so that it can be freed if nobody takes it over
     */
    public long[] ownedFrames() {
        lock.lock();
        try {
            long[] out = new long[2 + 2 * counts.size()];
            out[0] = root;
            out[1] = framesFor(format.tableBytes(0));
            int i = 2;
            for (Map.Entry<Long, int[]> e : counts.entrySet()) {
                out[i++] = e.getKey() << 12;
                out[i++] = e.getValue()[1];
            }
            return out;
        } finally {
            lock.unlock();
        }
    }

    // ---- map ---------------------------------------------------------------------------------

    /**
     * Maps {@code [iova, iova + size)} to {@code [pa, pa + size)}.
     *
     * @param iova input address, aligned to the granule
     * @param pa output address, aligned to the granule
     * @param size bytes, a positive multiple of the granule
     * @param prot {@link IommuDomain} {@code PROT_*} flags, read and/or write
     * @throws IommuException {@code EINVAL} for bad alignment, size, range or permissions,
     *     {@code EEXIST} if part of the range is mapped, {@code ENOMEM} when out of table frames,
     *     {@code ENODEV} after {@link #destroy}; nothing is mapped then
     */
    public void map(long iova, long pa, long size, int prot) throws IommuException {
        checkRange(iova, size);
        long granule = 1L << format.granuleShift();
        if ((pa & (granule - 1)) != 0) {
            throw new IommuException(Errno.EINVAL, String.format("physical address 0x%x is not aligned to 0x%x", pa, granule));
        }
        if (Long.compareUnsigned(pa + size - 1, pa) < 0 || (pa + size - 1) >>> format.outputBits() != 0) {
            throw new IommuException(Errno.EINVAL, String.format("physical range 0x%x+0x%x exceeds %d bits", pa, size,
                    format.outputBits()));
        }
        if ((prot & (IommuDomain.PROT_READ | IommuDomain.PROT_WRITE)) == 0) {
            throw new IommuException(Errno.EINVAL, "a mapping needs read or write permission");
        }
        lock.lock();
        try {
            checkLive();
            long mapped = findMapped(root, 0, iova, iova + size - 1);
            if (mapped != -1) {
                throw new IommuException(Errno.EEXIST, String.format("0x%x is already mapped", mapped));
            }
            long done = 0;
            cursorDepth = -1;
            try {
                while (done < size) {
                    done += mapOne(iova + done, pa + done, size - done, prot);
                }
            } catch (IommuException e) {
                // The range was empty before this call: clearing all of it removes what this call
                // mapped and frees the tables it created, including empty ones for the failing page.
                long[] stats = {0, Long.MAX_VALUE, 0};
                removeRange(root, 0, iova, iova + size - 1, stats);
                try {
                    if (stats[0] > 0) {
                        // A DMA may already have cached part of the half-made mapping.
                        flush.flushLeaves(iova, size, stats[1]);
                    }
                } catch (IommuException flushFailure) {
                    e.addSuppressed(flushFailure);
                } finally {
                    releaseEmptied();
                }
                throw e;
            }
        } finally {
            lock.unlock();
        }
    }

    /** Maps the largest page that fits at {@code iova}; returns its size. */
    private long mapOne(long iova, long pa, long remaining, int prot) throws IommuException {
        for (int depth = 0; depth < format.levels(); depth++) {
            if (!format.leafAllowed(depth)) {
                continue;
            }
            long page = 1L << format.pageShift(depth);
            if ((pageSizes & page) != 0 && ((iova | pa) & (page - 1)) == 0 && Long.compareUnsigned(remaining, page) >= 0
                    && install(iova, pa, depth, prot)) {
                return page;
            }
        }
        throw new IommuException(Errno.EINVAL, String.format("0x%x cannot be mapped in %s", iova, format.name()));
    }

    /** Writes a leaf at {@code depth}, creating tables above it; {@code false} if that slot is taken. */
    private boolean install(long iova, long pa, int depth, int prot) throws IommuException {
        long prefix = depth == 0 ? 0 : iova >>> format.indexShift(depth - 1);
        long table = root;
        int d = 0;
        if (depth == cursorDepth && prefix == cursorPrefix) {
            table = cursorTable;
            d = depth;
        }
        for (; d < depth; d++) {
            long slot = table + ((long) format.index(iova, d) << 3);
            long entry = memory.read64(slot);
            EntryType type = format.classify(entry, d);
            if (type == EntryType.INVALID) {
                long child = allocateTable(d + 1);
                memory.write64(slot, format.encodeTable(child, d));
                increment(table);
                table = child;
            } else if (type == EntryType.TABLE) {
                table = format.tableAddress(entry, d);
            } else {
                throw new IommuException(Errno.EEXIST, String.format("0x%x is already mapped", iova));
            }
        }
        cursorDepth = depth;
        cursorPrefix = prefix;
        cursorTable = table;
        long slot = table + ((long) format.index(iova, depth) << 3);
        if (format.classify(memory.read64(slot), depth) != EntryType.INVALID) {
            return false; // an (empty) table sits where the large page would go: use smaller pages
        }
        memory.write64(slot, format.encodeLeaf(pa, depth, prot));
        increment(table);
        return true;
    }

    private long allocateTable(int depth) throws IommuException {
        int n = framesFor(format.tableBytes(depth));
        long table = frames.allocateFrames(n);
        counts.put(table >>> 12, new int[] {0, n});
        forgetLast();
        tableFrames += n;
        return table;
    }

    private int[] countsOf(long table) {
        if (table != lastTable) {
            lastCounts = counts.get(table >>> 12);
            lastTable = table;
        }
        return lastCounts;
    }

    private void forgetLast() {
        lastTable = -1;
        lastCounts = null;
    }

    private void increment(long table) {
        int[] c = countsOf(table);
        if (c != null) {
            c[0]++;
        }
    }

    /** @return the first mapped input address in [first, last] under {@code table}, or -1 */
    private long findMapped(long table, int depth, long first, long last) {
        int shift = format.indexShift(depth);
        long span = 1L << shift;
        long from = first;
        while (Long.compareUnsigned(from, last) <= 0) {
            long entryStart = from & -span;
            long entryLast = entryStart + span - 1;
            long entry = memory.read64(table + ((long) format.index(from, depth) << 3));
            EntryType type = format.classify(entry, depth);
            if (type == EntryType.LEAF || type == EntryType.RESERVED) {
                return from;
            }
            if (type == EntryType.TABLE && depth + 1 < format.levels()) {
                long sub = findMapped(format.tableAddress(entry, depth), depth + 1, from,
                        Long.compareUnsigned(entryLast, last) < 0 ? entryLast : last);
                if (sub != -1) {
                    return sub;
                }
            }
            if (Long.compareUnsigned(entryLast, last) >= 0 || entryLast == -1L) {
                break;
            }
            from = entryLast + 1;
        }
        return -1;
    }

    // ---- unmap -------------------------------------------------------------------------------

    /**
     * Unmaps every page inside {@code [iova, iova + size)}.
     *
     * @param iova first address, aligned to the granule
     * @param size bytes, a positive multiple of the granule
     * @return the number of bytes unmapped, 0 if nothing was mapped there
     * @throws IommuException {@code EINVAL} for bad alignment or size, or if the range would split
     *     a larger page; {@code ENODEV} after {@link #destroy}; nothing is unmapped then
     */
    public long unmap(long iova, long size) throws IommuException {
        checkRange(iova, size);
        long last = iova + size - 1;
        lock.lock();
        try {
            checkLive();
            long split = findSplit(root, 0, iova, last);
            if (split != -1) {
                throw new IommuException(Errno.EINVAL, String.format(
                        "unmapping 0x%x-0x%x would split the page mapped at 0x%x", iova, last, split));
            }
            // [0] bytes unmapped, [1] smallest page removed, [2] tables freed
            long[] stats = {0, Long.MAX_VALUE, 0};
            removeRange(root, 0, iova, last, stats);
            try {
                if (stats[0] > 0) {
                    flush.flushLeaves(iova, size, stats[1]);
                }
                if (stats[2] > 0) {
                    flush.flushWalk(iova, size);
                }
            } finally {
                releaseEmptied();
            }
            return stats[0];
        } finally {
            lock.unlock();
        }
    }

    /** @return the start of a leaf that straddles the edge of [first, last], or -1 */
    private long findSplit(long table, int depth, long first, long last) {
        long span = 1L << format.indexShift(depth);
        long from = first;
        while (Long.compareUnsigned(from, last) <= 0) {
            long entryStart = from & -span;
            long entryLast = entryStart + span - 1;
            long entry = memory.read64(table + ((long) format.index(from, depth) << 3));
            EntryType type = format.classify(entry, depth);
            boolean partial = Long.compareUnsigned(entryStart, first) < 0 || Long.compareUnsigned(entryLast, last) > 0;
            if (type == EntryType.LEAF && partial) {
                return entryStart;
            }
            if (type == EntryType.TABLE && partial && depth + 1 < format.levels()) {
                long sub = findSplit(format.tableAddress(entry, depth), depth + 1, from,
                        Long.compareUnsigned(entryLast, last) < 0 ? entryLast : last);
                if (sub != -1) {
                    return sub;
                }
            }
            if (Long.compareUnsigned(entryLast, last) >= 0 || entryLast == -1L) {
                break;
            }
            from = entryLast + 1;
        }
        return -1;
    }

    /** Clears every entry inside [first, last] (no leaf straddles an edge), freeing emptied tables. */
    private void removeRange(long table, int depth, long first, long last, long[] stats) {
        long span = 1L << format.indexShift(depth);
        long from = first;
        while (Long.compareUnsigned(from, last) <= 0) {
            long entryStart = from & -span;
            long entryLast = entryStart + span - 1;
            long slot = table + ((long) format.index(from, depth) << 3);
            long entry = memory.read64(slot);
            EntryType type = format.classify(entry, depth);
            if (type == EntryType.LEAF || type == EntryType.RESERVED) {
                memory.write64(slot, 0);
                decrement(table);
                stats[0] += span;
                stats[1] = Math.min(stats[1], span);
            } else if (type == EntryType.TABLE && depth + 1 < format.levels()) {
                long child = format.tableAddress(entry, depth);
                removeRange(child, depth + 1, from, Long.compareUnsigned(entryLast, last) < 0 ? entryLast : last, stats);
                int[] c = countsOf(child);
                if (c != null && c[0] == 0) {
                    memory.write64(slot, 0);
                    decrement(table);
                    freeTable(child, c[1]);
                    stats[2]++;
                }
            }
            if (Long.compareUnsigned(entryLast, last) >= 0 || entryLast == -1L) {
                break;
            }
            from = entryLast + 1;
        }
    }

    private void decrement(long table) {
        int[] c = countsOf(table);
        if (c != null) {
            c[0]--;
        }
    }

    /** Unlinks an emptied table; its frames go back to the allocator after the flush. */
    private void freeTable(long table, int n) {
        counts.remove(table >>> 12);
        forgetLast();
        tableFrames -= n;
        emptied.add(new long[] {table, n});
    }

    private void releaseEmptied() {
        for (long[] t : emptied) {
            try {
                frames.freeFrames(t[0], (int) t[1]);
            } catch (IommuException e) {
                // not allocated here: nothing to release
            }
        }
        emptied.clear();
    }

    // ---- queries and teardown ------------------------------------------------------------------

    /**
     * Looks up a translation without checking permissions or setting flags (the driver's view).
     *
     * @param iova input address
     * @return the output address, or -1 if not mapped (or the tables are malformed or gone)
     */
    public long iovaToPhys(long iova) {
        if (format.checkInput(iova) != null) {
            return -1;
        }
        try {
            long table = root;
            for (int depth = 0; depth < format.levels(); depth++) {
                long entry = memory.read64(table + ((long) format.index(iova, depth) << 3));
                EntryType type = format.classify(entry, depth);
                if (type == EntryType.LEAF && format.leafAllowed(depth)) {
                    return format.leafAddress(entry, depth) | (iova & ((1L << format.pageShift(depth)) - 1));
                }
                if (type != EntryType.TABLE) {
                    return -1;
                }
                table = format.tableAddress(entry, depth);
            }
        } catch (MemoryAccessException e) {
            return -1;
        }
        return -1;
    }

    /**
     * Frees every table, root included. The caller must first make sure no hardware uses the table
     * (detached and invalidated). Later calls fail with {@code ENODEV}; idempotent.
     */
    public void destroy() {
        lock.lock();
        try {
            if (destroyed) {
                return;
            }
            destroyed = true;
            for (Map.Entry<Long, int[]> e : counts.entrySet()) {
                try {
                    frames.freeFrames(e.getKey() << 12, e.getValue()[1]);
                } catch (IommuException ignored) {
                    // already freed: nothing to release
                }
            }
            counts.clear();
            forgetLast();
            try {
                frames.freeFrames(root, framesFor(format.tableBytes(0)));
            } catch (IommuException ignored) {
                // already freed
            }
            tableFrames = 0;
        } finally {
            lock.unlock();
        }
    }

    private void checkLive() throws IommuException {
        if (destroyed) {
            throw new IommuException(Errno.ENODEV, "the page table was destroyed");
        }
    }

    private void checkRange(long iova, long size) throws IommuException {
        long granule = 1L << format.granuleShift();
        if (size <= 0 || (size & (granule - 1)) != 0) {
            throw new IommuException(Errno.EINVAL, String.format("size 0x%x is not a positive multiple of 0x%x", size, granule));
        }
        if ((iova & (granule - 1)) != 0) {
            throw new IommuException(Errno.EINVAL, String.format("iova 0x%x is not aligned to 0x%x", iova, granule));
        }
        long last = iova + size - 1;
        if (Long.compareUnsigned(last, iova) < 0) {
            throw new IommuException(Errno.EINVAL, String.format("range 0x%x+0x%x wraps around", iova, size));
        }
        if (format.checkInput(iova) != null || format.checkInput(last) != null
                || (format.checkInput(0) == null && (last >>> Math.min(63, format.inputBits())) != 0)) {
            throw new IommuException(Errno.EINVAL, String.format("range 0x%x-0x%x is outside the %d-bit input space",
                    iova, last, format.inputBits()));
        }
    }
}
