package org.iommulab.pgtable.tlb;

/**
 * The result of a {@link Tlb#lookup} hit. Callers allocate one per thread and reuse it for every
 * lookup, which is what keeps the lookup path allocation free.
 *
 * <p>Mutable and not thread safe: confine an instance to one thread. Its values are those of the
 * last successful lookup into it; a miss leaves it unchanged, and before the first hit every value
 * is zero.
 */
public final class TlbHit {
    private long inputAddress;
    private long outputPage;
    private long attributes;
    private int pageShift;
    private int permissions;
    private boolean leaf;

    /** Creates an empty result holder. */
    public TlbHit() {
    }

    void set(long inputAddress, long outputPage, int pageShift, int permissions, long attributes,
            boolean leaf) {
        this.inputAddress = inputAddress;
        this.outputPage = outputPage;
        this.pageShift = pageShift;
        this.permissions = permissions;
        this.attributes = attributes;
        this.leaf = leaf;
    }

    /** Returns the address that was looked up (bytes, input address space). */
    public long inputAddress() {
        return inputAddress;
    }

    /**
     * Returns the translated address (bytes): the entry's output page base plus the looked-up
     * address's offset within the page.
     */
    public long outputAddress() {
        return outputPage | (inputAddress & (pageSize() - 1));
    }

    /** Returns the base of the output page (bytes; its low {@link #pageShift()} bits are zero). */
    public long outputPage() {
        return outputPage;
    }

    /** Returns log2 of the entry's page size in bytes (12 for 4 KiB, 21 for 2 MiB, ...). */
    public int pageShift() {
        return pageShift;
    }

    /** Returns the page size in bytes, {@code 1L << pageShift()}. */
    public long pageSize() {
        return 1L << pageShift;
    }

    /** Returns the permission bits stored with the entry; their meaning is the backend's. */
    public int permissions() {
        return permissions;
    }

    /** Returns the attribute bits stored with the entry; their meaning is the backend's. */
    public long attributes() {
        return attributes;
    }

    /** Returns whether the entry is a leaf translation (rather than a paging-structure cache entry). */
    public boolean leaf() {
        return leaf;
    }

    @Override
    public String toString() {
        return String.format("TlbHit[0x%x -> 0x%x, shift=%d, perms=0x%x, attrs=0x%x, %s]",
                inputAddress, outputAddress(), pageShift, permissions, attributes,
                leaf ? "leaf" : "non-leaf");
    }
}
