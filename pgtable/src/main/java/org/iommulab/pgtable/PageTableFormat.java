package org.iommulab.pgtable;

import org.iommulab.api.translation.Stage;
import org.osgi.annotation.versioning.ConsumerType;

/**
 * One configured page-table format: the geometry (levels, index bits, granule, input and output
 * widths) and the meaning of each entry bit, as one specification lays them out. Formats are
 * immutable and thread safe; the {@link Walker} and {@link IoPageTable} drive them.
 *
 * <p>Levels are counted by depth from the root: depth 0 is the root table, depth
 * {@link #levels()}{@code - 1} holds the smallest pages. {@link #levelName(int)} gives the name the
 * specification uses for a depth (for example "PML4" or "L1").
 *
 * <p>Implemented by format classes in this package and by third parties adding a format.
 */
@ConsumerType
public interface PageTableFormat {

    /** What {@link #classify} says about an entry. */
    enum EntryType {
        /** Not present: the walk stops with a translation fault. */
        INVALID,
        /** Points to the next-level table. */
        TABLE,
        /** Maps a page or block. */
        LEAF,
        /** Malformed (reserved bit set, leaf where the level allows none). */
        RESERVED
    }

    /** @return a short name such as {@code "x86-64 first stage, 4-level"} */
    String name();

    /** @return the stage faults of this table are reported against */
    Stage stage();

    /** @return number of levels walked */
    int levels();

    /** @return input address width in bits */
    int inputBits();

    /** @return output address width in bits (addresses at or above 2^outputBits fault) */
    int outputBits();

    /** @return log2 of the smallest page (the granule) */
    int granuleShift();

    /**
     * @param depth 0 (root) to {@code levels() - 1}
     * @return bit position of the lowest input address bit that indexes this level
     */
    int indexShift(int depth);

    /**
     * @param depth 0 (root) to {@code levels() - 1}
     * @return number of index bits at this level (the root may have fewer, or more when stage-2
     *     tables are concatenated)
     */
    int indexBits(int depth);

    /**
     * @param depth a depth
     * @return the name the specification gives this level
     */
    String levelName(int depth);

    /**
     * Checks the input address before the walk starts.
     *
     * @param address input address
     * @return {@code null} if it can be walked, else the fault
     */
    WalkFault checkInput(long address);

    /**
     * @param entry the raw 64-bit entry
     * @param depth its depth
     * @return the entry's type
     */
    EntryType classify(long entry, int depth);

    /**
     * @param entry a {@link EntryType#TABLE} entry
     * @param depth its depth
     * @return the physical (or, nested, intermediate) address of the next table
     */
    long tableAddress(long entry, int depth);

    /**
     * @param entry a {@link EntryType#LEAF} entry
     * @param depth its depth
     * @return the output address of the first byte of the page or block
     */
    long leafAddress(long entry, int depth);

    /**
     * Accumulates permissions across levels (x86 ANDs R/W and U/S and ORs XD; ARM applies APTable
     * and XNTable; stage 2 ANDs nothing but the leaf).
     *
     * @param inherited the permissions accumulated above this entry, {@link Perm#ALL} at the root
     * @param entry a TABLE or LEAF entry
     * @param depth its depth
     * @param leaf {@code true} for the leaf
     * @return the accumulated {@link Perm} bits
     */
    int permissions(int inherited, long entry, int depth, boolean leaf);

    /**
     * @param entry a LEAF entry
     * @param depth its depth
     * @return {@code true} if using the entry raises an access-flag fault (AF clear, no hardware update)
     */
    boolean accessFlagFault(long entry, int depth);

    /**
     * The accessed and dirty flags hardware sets when it uses an entry for an allowed access.
     *
     * @param entry a TABLE or LEAF entry
     * @param depth its depth
     * @param leaf {@code true} for the leaf
     * @param write {@code true} for a write access
     * @return the entry with the flags set, or {@code entry} itself when nothing changes
     */
    long markUsed(long entry, int depth, boolean leaf, boolean write);

    /**
     * @param depth a depth
     * @return {@code true} if a leaf (page or block) may sit at this depth
     */
    boolean leafAllowed(int depth);

    /**
     * Encodes a table entry, for {@link IoPageTable}.
     *
     * @param table address of the next table
     * @param depth the depth of the entry
     * @return the entry
     */
    long encodeTable(long table, int depth);

    /**
     * Encodes a leaf entry, for {@link IoPageTable}.
     *
     * @param address output address of the page, aligned to its size
     * @param depth the depth of the entry ({@link #leafAllowed} must hold)
     * @param prot {@link org.iommulab.api.spi.IommuDomain} {@code PROT_*} flags
     * @return the entry
     */
    long encodeLeaf(long address, int depth, int prot);

    /**
     * Decodes an entry for people ({@code iommu:explain}); not on the hot path.
     *
     * @param entry the raw entry
     * @param depth its depth
     * @return for example {@code "table -> 0x7000"} or {@code "2 MiB page -> 0x80000000 rw user A D"}
     */
    default String describe(long entry, int depth) {
        switch (classify(entry, depth)) {
            case INVALID:
                return "not present";
            case RESERVED:
                return "malformed (reserved bits or a leaf where none is allowed)";
            case TABLE:
                return String.format("table -> 0x%x", tableAddress(entry, depth));
            default:
                int p = permissions(Perm.ALL, entry, depth, true);
                return String.format("%s -> 0x%x %s%s%s", sizeName(pageShift(depth)), leafAddress(entry, depth),
                        org.iommulab.api.translation.Access.toString(Perm.toAccess(p)),
                        (p & Perm.USER) != 0 ? " user" : "", flags(entry, depth));
        }
    }

    /**
     * @param entry a leaf entry
     * @param depth its depth
     * @return extra flags worth showing (accessed, dirty, ...), each preceded by a space; may be empty
     */
    default String flags(long entry, int depth) {
        return "";
    }

    /**
     * @param shift log2 of a size in bytes
     * @return "4 KiB page", "2 MiB page", "1 GiB page", ...
     */
    static String sizeName(int shift) {
        String[] units = {"B", "KiB", "MiB", "GiB", "TiB"};
        int unit = Math.min(shift / 10, units.length - 1);
        return (1L << (shift - unit * 10)) + " " + units[unit] + " page";
    }

    /** @return log2 of the size covered by one entry at {@code depth}: {@code indexShift(depth)} */
    default int pageShift(int depth) {
        return indexShift(depth);
    }

    /** @return the bitmap of leaf sizes this format maps (bit n: 2^n bytes) */
    default long pageSizes() {
        long sizes = 0;
        for (int d = 0; d < levels(); d++) {
            if (leafAllowed(d)) {
                sizes |= 1L << pageShift(d);
            }
        }
        return sizes;
    }

    /** @return the size of the table at {@code depth} in bytes */
    default long tableBytes(int depth) {
        return 8L << indexBits(depth);
    }

    /**
     * @param address input address
     * @param depth a depth
     * @return the index of the entry for {@code address} in the table at {@code depth}
     */
    default int index(long address, int depth) {
        return (int) ((address >>> indexShift(depth)) & ((1L << indexBits(depth)) - 1));
    }
}
