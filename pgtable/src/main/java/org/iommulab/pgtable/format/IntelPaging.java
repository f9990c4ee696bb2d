package org.iommulab.pgtable.format;

import org.iommulab.pgtable.PageTableFormat;

/**
 * The geometry Intel's first-stage (IA-32e) and second-stage tables share: 4 KiB tables of 512
 * 8-byte entries, 9 index bits per level, 4 KiB pages, larger pages marked by bit 7 (PS), and the
 * address in bits HAW-1:12 (Intel SDM Vol. 3A §4.5; VT-d spec §9.7, §9.8).
 */
abstract class IntelPaging implements PageTableFormat {
    /** Page size: a PDPT/PD-level entry that maps a 1 GiB / 2 MiB page. */
    static final long PAGE_SIZE_BIT = 1L << 7;
    /** Address bits 51:12 of an entry, before limiting to the address width. */
    static final long ADDRESS_FIELD = 0x000f_ffff_ffff_f000L;

    final int levels;
    final int addressBits;
    /** The address bits the width allows; the rest of {@link #ADDRESS_FIELD} is reserved. */
    final long addressMask;

    IntelPaging(int levels, int addressBits) {
        this.levels = levels;
        this.addressBits = addressBits;
        this.addressMask = ((1L << addressBits) - 1) & ~0xfffL;
    }

    /** @return the paging level of a depth: 5 (PML5) ... 1 (PT) */
    final int level(int depth) {
        return levels - depth;
    }

    /** @return reserved address bits: 51 down to the address width */
    final long reservedAddressBits() {
        return ADDRESS_FIELD & ~addressMask;
    }

    @Override
    public final int levels() {
        return levels;
    }

    @Override
    public final int inputBits() {
        return 12 + 9 * levels;
    }

    @Override
    public final int outputBits() {
        return addressBits;
    }

    @Override
    public final int granuleShift() {
        return 12;
    }

    @Override
    public final int indexShift(int depth) {
        return 12 + 9 * (levels - 1 - depth);
    }

    @Override
    public final int indexBits(int depth) {
        return 9;
    }

    @Override
    public final long tableAddress(long entry, int depth) {
        return entry & addressMask;
    }

    @Override
    public final long leafAddress(long entry, int depth) {
        return entry & addressMask & -(1L << indexShift(depth));
    }

    /**
     * Classifies a present entry by level and PS bit.
     *
     * @param entry a present entry
     * @param depth its depth
     * @param reserved bits that must be clear in any entry at this depth
     * @param pageAllowed {@code true} if PS may be set at this level
     * @return TABLE, LEAF or RESERVED
     */
    final EntryType classifyPresent(long entry, int depth, long reserved, boolean pageAllowed) {
        int level = level(depth);
        if (level == 1) {
            return (entry & reserved) != 0 ? EntryType.RESERVED : EntryType.LEAF;
        }
        if ((entry & PAGE_SIZE_BIT) == 0) {
            return (entry & reserved) != 0 ? EntryType.RESERVED : EntryType.TABLE;
        }
        if (!pageAllowed) {
            return EntryType.RESERVED;
        }
        // Address bits below the page size are reserved (a 2 MiB page: bits 20:13, bit 12 is PAT in
        // the first stage and reserved in the second; callers pass bit 12 in `reserved` for that).
        long belowPage = ((1L << indexShift(depth)) - 1) & ~0x1fffL;
        return (entry & (reserved | belowPage)) != 0 ? EntryType.RESERVED : EntryType.LEAF;
    }
}
