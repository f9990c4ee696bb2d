package org.iommulab.sva.internal;

import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.Executor;
import java.util.concurrent.RejectedExecutionException;

import org.iommulab.api.errno.IommuException;
import org.iommulab.api.fault.FaultListener;
import org.iommulab.api.fault.IommuFault;
import org.iommulab.api.fault.PageRequest;
import org.iommulab.api.translation.Access;

/**
 * The I/O page fault handler of one IOMMU instance for SVA bonds (Linux {@code iommu_sva_iopf_handler}
 * on the {@code iopf_queue}): a page request for a bound (requester, PASID) is queued to a worker,
 * which faults the page into the process ({@code handle_mm_fault}), maps it in the shared table and
 * answers Success, or Invalid Request for an address outside the process's mappings. Requests for
 * other PASIDs are left to their owners' listeners.
 *
 * <p>Thread safe: {@link #pageRequest} only looks a bond up and queues, as a fault listener must
 * not block; the bonds are a concurrent map.
 */
final class IopfQueue implements FaultListener {
    private final Executor worker;
    /** Bonds by (requester id, PASID). */
    private final Map<Long, SvaBondImpl> bonds = new ConcurrentHashMap<>();

    /** @param worker runs the faults, in order */
    IopfQueue(Executor worker) {
        this.worker = worker;
    }

    private static long key(int requesterId, int pasid) {
        return ((long) requesterId << 32) | (pasid & 0xffff_ffffL);
    }

    void add(SvaBondImpl bond) {
        bonds.put(key(bond.requesterId(), bond.pasid()), bond);
    }

    void remove(SvaBondImpl bond) {
        bonds.remove(key(bond.requesterId(), bond.pasid()), bond);
    }

    boolean isEmpty() {
        return bonds.isEmpty();
    }

    @Override
    public void fault(IommuFault fault) {
        // Unrecoverable faults are reported by the IOMMU's own log; SVA resolves page requests only.
    }

    @Override
    public void pageRequest(PageRequest request) {
        SvaBondImpl bond = bonds.get(key(request.requesterId(), request.pasid()));
        if (bond == null) {
            return; // not an SVA PASID
        }
        if (request.lastInGroup()) {
            bond.requestArrived(request.groupIndex());
        }
        try {
            worker.execute(() -> resolve(bond, request));
        } catch (RejectedExecutionException e) {
            // the service is stopping: unbinding answers the group
            bond.requestFailed(request.groupIndex());
        }
    }

    /** The worker: faults the page in, maps it and answers the group at its last request. */
    private static void resolve(SvaBondImpl bond, PageRequest request) {
        boolean ok = bond.isBound();
        if (ok) {
            try {
                long frame = bond.process().faultIn(request.address(), (request.access() & Access.WRITE) != 0);
                bond.mm().mapIfResident(request.address() & -4096L, frame);
            } catch (IommuException e) {
                ok = false; // EFAULT: outside the mappings; ENOMEM; ENODEV: exited
            }
        }
        if (!request.lastInGroup()) {
            if (!ok) {
                bond.requestFailed(request.groupIndex());
            }
            return;
        }
        bond.answer(request.groupIndex(), ok);
    }
}
