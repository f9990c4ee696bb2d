package org.iommulab.pgtable.format;

import org.iommulab.api.errno.Errno;
import org.iommulab.api.errno.IommuException;
import org.iommulab.pgtable.PageTableFormat;
import org.iommulab.pgtable.WalkFault;

/**
 * What stage 1 and stage 2 of the VMSAv8-64 long-descriptor format share (Arm ARM D8.3): the
 * geometry from the granule, input size and start level; descriptor types (bits 1:0: 0b11 table at
 * levels 0-2 or page at level 3, 0b01 block where the granule allows one, bit 0 clear invalid); the
 * next-level table and output addresses in bits 47:granule; the access flag AF (bit 10) with hardware
 * update (HA) or its fault, and DBM (bit 51) for hardware dirty state (HD).
 */
abstract class ArmVmsa implements PageTableFormat {
    /** Valid. */
    static final long VALID = 1L;
    /** Table (levels 0-2) or page (level 3) when set with VALID; block when clear. */
    static final long TYPE_TABLE_OR_PAGE = 1L << 1;
    /** Access flag. */
    static final long AF = 1L << 10;
    /** Dirty bit modifier. */
    static final long DBM = 1L << 51;
    /**
     * Table address bits 47:12 before masking to the granule. Without 52-bit addressing a table
     * descriptor holds the next-level table address in bits 47:granule only: bits 50:48 are RES0 and
     * bits 58:51 IGNORED (Arm ARM D8.3.1, table descriptor format), and the pseudocode
     * {@code AArch64.NextTableBase} takes {@code descriptor<47:granule>}, so those bits can neither
     * move the table nor raise an Address size fault (an IGNORED bit 51 used to do both).
     */
    static final long TABLE_ADDRESS_BITS = 0x0000_ffff_ffff_f000L;
    /** Leaf output address bits 47:12 (bit 51 is DBM, bit 50 GP in block and page descriptors). */
    static final long LEAF_ADDRESS_BITS = 0x0000_ffff_ffff_f000L;

    final ArmGranule granule;
    final int inputBits;
    final int outputBits;
    final int startLevel;
    final int levels;
    final int rootBits;
    final boolean hardwareAccess;
    final boolean hardwareDirty;
    final boolean accessFaultDisable;
    private final String[] levelNames;

    ArmVmsa(ArmGranule granule, int inputBits, int outputBits, int startLevel, boolean hardwareAccess,
            boolean hardwareDirty, boolean accessFaultDisable) {
        this.granule = granule;
        this.inputBits = inputBits;
        this.outputBits = outputBits;
        this.startLevel = startLevel;
        this.levels = 4 - startLevel;
        this.rootBits = inputBits - (granule.shift() + granule.bitsPerLevel() * (levels - 1));
        this.hardwareAccess = hardwareAccess;
        this.hardwareDirty = hardwareDirty;
        this.accessFaultDisable = accessFaultDisable;
        this.levelNames = new String[levels];
        for (int d = 0; d < levels; d++) {
            levelNames[d] = "L" + (startLevel + d); // precomputed: the walker asks on every step
        }
    }

    static void checkOutputBits(int outputBits) throws IommuException {
        if (outputBits < 32 || outputBits > 48) {
            throw new IommuException(Errno.EINVAL, "output size must be 32 to 48 bits, not " + outputBits);
        }
    }

    /** @return the Arm lookup level (0-3) of a depth */
    final int level(int depth) {
        return startLevel + depth;
    }

    /** @return the Arm level at which the walk starts */
    public final int startLevel() {
        return startLevel;
    }

    /** @return the granule */
    public final ArmGranule granule() {
        return granule;
    }

    @Override
    public final int levels() {
        return levels;
    }

    @Override
    public final int inputBits() {
        return inputBits;
    }

    @Override
    public final int outputBits() {
        return outputBits;
    }

    @Override
    public final int granuleShift() {
        return granule.shift();
    }

    @Override
    public final int indexShift(int depth) {
        return granule.shift() + granule.bitsPerLevel() * (levels - 1 - depth);
    }

    @Override
    public final int indexBits(int depth) {
        return depth == 0 ? rootBits : granule.bitsPerLevel();
    }

    @Override
    public final String levelName(int depth) {
        return levelNames[depth];
    }

    @Override
    public final WalkFault checkInput(long address) {
        // An address beyond the table's input range is a translation fault at the start level.
        return address >>> inputBits == 0 ? null : WalkFault.INPUT_RANGE;
    }

    @Override
    public final EntryType classify(long entry, int depth) {
        if ((entry & VALID) == 0) {
            return EntryType.INVALID;
        }
        boolean tableOrPage = (entry & TYPE_TABLE_OR_PAGE) != 0;
        if (level(depth) == 3) {
            return tableOrPage ? EntryType.LEAF : EntryType.RESERVED;
        }
        if (tableOrPage) {
            return EntryType.TABLE;
        }
        return granule.blockAllowed(level(depth)) ? EntryType.LEAF : EntryType.RESERVED;
    }

    @Override
    public final long tableAddress(long entry, int depth) {
        return entry & TABLE_ADDRESS_BITS & -(1L << granule.shift());
    }

    @Override
    public final long leafAddress(long entry, int depth) {
        return entry & LEAF_ADDRESS_BITS & -(1L << indexShift(depth));
    }

    @Override
    public final boolean accessFlagFault(long entry, int depth) {
        return (entry & AF) == 0 && !hardwareAccess && !accessFaultDisable;
    }

    @Override
    public final boolean leafAllowed(int depth) {
        return level(depth) == 3 || granule.blockAllowed(level(depth));
    }

    @Override
    public final long encodeTable(long table, int depth) {
        return table | VALID | TYPE_TABLE_OR_PAGE;
    }

    /** @return the descriptor type bits of a leaf at {@code depth}: page at level 3, else block */
    final long leafType(int depth) {
        return level(depth) == 3 ? VALID | TYPE_TABLE_OR_PAGE : VALID;
    }

    /** @return {@code true} if a write to this read-only leaf makes it writable-dirty (HD and DBM) */
    final boolean dirtyByModifier(long entry) {
        return hardwareDirty && (entry & DBM) != 0;
    }

    @Override
    public String flags(long entry, int depth) {
        return ((entry & AF) != 0 ? " AF" : " !AF") + ((entry & DBM) != 0 ? " DBM" : "");
    }
}
