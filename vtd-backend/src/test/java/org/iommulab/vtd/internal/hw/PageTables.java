package org.iommulab.vtd.internal.hw;

import java.util.function.LongSupplier;
import java.util.function.LongUnaryOperator;

import org.iommulab.api.memory.PhysicalMemory;

/**
 * Writes Intel paging structures entry by entry, as a driver would: first-stage (IA-32e, VT-d §9.7)
 * or second-stage (VT-d §9.8) tables of 512 8-byte entries. Tables are allocated in a "table address
 * space" (host physical for host tables, guest physical for a guest's first-stage tables under
 * nesting) and written through a function that turns such an address into host physical.
 */
final class PageTables {
    // Second-stage entry bits (§9.8).
    static final long SL_R = 1;
    static final long SL_W = 1L << 1;
    static final long SL_X = 1L << 2;
    static final long SL_A = 1L << 8;
    static final long SL_D = 1L << 9;
    // First-stage entry bits (§9.7).
    static final long FL_P = 1;
    static final long FL_RW = 1L << 1;
    static final long FL_US = 1L << 2;
    static final long FL_A = 1L << 5;
    static final long FL_D = 1L << 6;
    static final long FL_XD = 1L << 63;
    /** PS: a PDPE/PDE (level 3/2) maps a 1 GiB / 2 MiB page; the same bit in both formats. */
    static final long PS = 1L << 7;
    static final long ADDR = 0x000f_ffff_ffff_f000L;

    private final PhysicalMemory mem;
    private final boolean firstStage;
    final int levels;
    final long root;
    private final LongSupplier alloc;
    private final LongUnaryOperator toPhys;
    /** Flags of the table (non-leaf) entries this builder creates. */
    long tableFlags;

    /**
     * @param alloc returns a zeroed 4 KiB table in the table address space
     * @param toPhys turns a table-space address into a host physical address
     */
    PageTables(PhysicalMemory mem, boolean firstStage, int levels, LongSupplier alloc, LongUnaryOperator toPhys) {
        this.mem = mem;
        this.firstStage = firstStage;
        this.levels = levels;
        this.alloc = alloc;
        this.toPhys = toPhys;
        this.tableFlags = firstStage ? FL_P | FL_RW | FL_US | FL_A : SL_R | SL_W | SL_X;
        this.root = alloc.getAsLong();
    }

    static int index(long va, int level) {
        return (int) (va >>> (12 + 9 * (level - 1))) & 511;
    }

    private boolean present(long e) {
        return firstStage ? (e & FL_P) != 0 : (e & (SL_R | SL_W)) != 0;
    }

    /**
     * Maps one page.
     *
     * @param level 1 for 4 KiB, 2 for 2 MiB, 3 for 1 GiB
     * @param leafFlags permission and status bits of the leaf (PS is added above level 1)
     * @return the host physical address of the leaf entry
     */
    long map(long va, long pa, int level, long leafFlags) {
        long table = root;
        for (int l = levels; l > level; l--) {
            long slot = toPhys.applyAsLong(table) + 8L * index(va, l);
            long e = mem.read64(slot);
            if (!present(e)) {
                long t = alloc.getAsLong();
                e = t | tableFlags;
                mem.write64(slot, e);
            }
            table = e & ADDR;
        }
        long slot = toPhys.applyAsLong(table) + 8L * index(va, level);
        mem.write64(slot, pa | leafFlags | (level > 1 ? PS : 0));
        return slot;
    }

    /** Maps a 4 KiB page with the default leaf permissions (read/write). */
    long map(long va, long pa) {
        return map(va, pa, 1, firstStage ? FL_P | FL_RW | FL_US | FL_A | FL_D : SL_R | SL_W);
    }

    /**
     * @return the host physical address of the entry at {@code level} on the walk of {@code va}
     *     (the walk down to it must exist)
     */
    long entry(long va, int level) {
        long table = root;
        for (int l = levels; l > level; l--) {
            table = mem.read64(toPhys.applyAsLong(table) + 8L * index(va, l)) & ADDR;
        }
        return toPhys.applyAsLong(table) + 8L * index(va, level);
    }

    /** @return the table-space address of the table holding the level-{@code level} entry of {@code va} */
    long table(long va, int level) {
        long table = root;
        for (int l = levels; l > level; l--) {
            table = mem.read64(toPhys.applyAsLong(table) + 8L * index(va, l)) & ADDR;
        }
        return table;
    }
}
