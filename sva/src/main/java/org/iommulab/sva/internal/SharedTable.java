package org.iommulab.sva.internal;

import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;

import org.iommulab.api.errno.IommuException;
import org.iommulab.api.memory.HostMemory;
import org.iommulab.api.spi.IommuDomain;
import org.iommulab.pgtable.FlushOps;
import org.iommulab.pgtable.IoPageTable;
import org.iommulab.pgtable.PageTableFormat;

/**
 * A process's address space as a CPU page table in host memory, in one host format, shared by every
 * bond of the process on IOMMUs of that format (Linux's {@code mm->pgd} the SVA PASID entries
 * point at). 4 KiB pages only, so that any single page can leave. Unmapping a range invalidates it
 * on every bond ({@code invalidateFirstStage}) before the unmap returns, through the table's
 * {@link FlushOps}.
 *
 * <p>Thread safe: the table serializes its edits; the owning {@link SvaMm} orders them against the
 * process; the bonds are a copy-on-write list read by the flush without a lock.
 */
final class SharedTable implements FlushOps {
    private static final long PAGE = 4096;
    private static final int PROT = IommuDomain.PROT_READ | IommuDomain.PROT_WRITE;

    private final String formatId;
    private final IoPageTable table;
    /** The bonds whose PASID entry points at this table, bound or binding. */
    private final List<SvaBondImpl> bonds = new CopyOnWriteArrayList<>();

    private SharedTable(String formatId, PageTableFormat format, HostMemory memory) throws IommuException {
        this.formatId = formatId;
        this.table = IoPageTable.create(format, memory, memory, this, PAGE);
    }

    /**
     * @return an empty table
     * @throws IommuException {@code ENOMEM} if no frame is left for the root
     */
    static SharedTable create(String formatId, PageTableFormat format, HostMemory memory) throws IommuException {
        return new SharedTable(formatId, format, memory);
    }

    String formatId() {
        return formatId;
    }

    /** @return the root table's host physical address */
    long root() {
        return table.root();
    }

    List<SvaBondImpl> bonds() {
        return bonds;
    }

    /**
     * Maps one page read-write, replacing a stale mapping of it.
     *
     * @param vaddr page aligned
     * @param frame page aligned
     * @throws IommuException {@code ENOMEM} when out of table frames, {@code EINVAL} for an address
     *     the format cannot hold, {@code ENODEV} once destroyed
     */
    void map(long vaddr, long frame) throws IommuException {
        long now = table.iovaToPhys(vaddr);
        if (now == frame) {
            return;
        }
        if (now != -1) {
            table.unmap(vaddr, PAGE);
        }
        table.map(vaddr, frame, PAGE, PROT);
    }

    /**
     * Unmaps every page of a range; the bonds' IOTLBs are invalidated before this returns.
     *
     * @param vaddr page aligned
     * @param length a whole number of pages
     */
    void unmap(long vaddr, long length) {
        try {
            table.unmap(vaddr, length);
        } catch (IommuException e) {
            // a range the format cannot hold has nothing mapped; a destroyed table has no user
        }
    }

    /** @return the frame mapped at {@code vaddr}, or -1 */
    long lookup(long vaddr) {
        return table.iovaToPhys(vaddr);
    }

    @Override
    public void flushLeaves(long iova, long size, long granule) {
        invalidate(iova, size);
    }

    @Override
    public void flushWalk(long iova, long size) {
        invalidate(iova, size);
    }

    private void invalidate(long iova, long size) {
        for (SvaBondImpl bond : bonds) {
            bond.invalidate(iova, size);
        }
    }

    /** Frees every table frame; no IOMMU may use the table any more. */
    void destroy() {
        table.destroy();
    }
}
