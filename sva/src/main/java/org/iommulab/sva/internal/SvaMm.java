package org.iommulab.sva.internal;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Consumer;

import org.iommulab.api.errno.IommuException;
import org.iommulab.api.memory.HostMemory;
import org.iommulab.api.pasid.PasidSet;
import org.iommulab.api.process.HostProcess;
import org.iommulab.api.process.MmuNotifier;
import org.iommulab.pgtable.PageTableFormat;

/**
 * What SVA keeps of one bound process (Linux's {@code iommu_mm_data} and its {@code mmu_notifier}):
 * its page tables by host format, its PASID in each set it is bound through, and its bonds. As the
 * process's notifier it keeps every table in step: a resident page is mapped, a range that leaves
 * is unmapped (and the bonds' IOTLBs invalidated) before the process frees its frames, and an
 * exiting process has its bonds unbound.
 *
 * <p>Thread safe. This object's monitor orders table edits against each other; it is taken after
 * the service's and never before it. The bond list and the PASIDs are guarded by the service.
 */
final class SvaMm implements MmuNotifier {
    private final HostProcess process;
    private final HostMemory memory;
    private final Consumer<SvaMm> onRelease;
    /** Tables by host format id. Guarded by this. */
    private final Map<String, SharedTable> tables = new HashMap<>();
    /** The process's PASID in each set. Guarded by the service. */
    final Map<PasidSet, Integer> pasids = new IdentityHashMap<>();
    /** The process's bonds. Guarded by the service. */
    final List<SvaBondImpl> bonds = new ArrayList<>();

    /**
     * @param process the process
     * @param memory where the tables live
     * @param onRelease told when the process exits, with no lock held
     */
    SvaMm(HostProcess process, HostMemory memory, Consumer<SvaMm> onRelease) {
        this.process = process;
        this.memory = memory;
        this.onRelease = onRelease;
    }

    HostProcess process() {
        return process;
    }

    /**
     * The table of a host format, created at first use with every page resident now mapped. This
     * object must be the process's notifier already, so that no change is missed meanwhile.
     *
     * @param formatId the host format's id
     * @param format the format
     * @param created receives {@code true} if the table is new
     * @return the table
     * @throws IommuException {@code ENOMEM} if host memory runs out (nothing is kept then)
     */
    synchronized SharedTable table(String formatId, PageTableFormat format, boolean[] created) throws IommuException {
        SharedTable t = tables.get(formatId);
        if (t != null) {
            return t;
        }
        t = SharedTable.create(formatId, format, memory);
        try {
            long[] pages = process.residentMappings();
            for (int i = 0; i < pages.length; i += 2) {
                t.map(pages[i], pages[i + 1]);
            }
        } catch (IommuException | RuntimeException e) {
            t.destroy();
            throw e;
        }
        tables.put(formatId, t);
        created[0] = true;
        return t;
    }

    /** Forgets and frees a table no bond uses. */
    synchronized void dropTable(SharedTable t) {
        if (tables.remove(t.formatId()) == t) {
            t.destroy();
        }
    }

    /**
     * Maps a page in every table if it is still resident at that frame (a late notification for a
     * page that left meanwhile is ignored: its invalidation came first).
     */
    synchronized void mapIfResident(long vaddr, long frame) {
        if (tables.isEmpty() || process.residentAddress(vaddr) != frame) {
            return;
        }
        for (SharedTable t : tables.values()) {
            try {
                t.map(vaddr, frame);
            } catch (IommuException e) {
                // out of table frames: the device faults and asks again
            }
        }
    }

    @Override
    public void pageResident(HostProcess p, long vaddr, long hostPhysical) {
        mapIfResident(vaddr, hostPhysical);
    }

    @Override
    public synchronized void invalidateRange(HostProcess p, long vaddr, long length) {
        for (SharedTable t : tables.values()) {
            t.unmap(vaddr, length);
        }
    }

    @Override
    public void release(HostProcess p) {
        onRelease.accept(this);
    }

    @Override
    public String toString() {
        return "SVA of " + process;
    }
}
