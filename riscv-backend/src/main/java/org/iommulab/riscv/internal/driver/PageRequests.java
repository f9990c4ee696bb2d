package org.iommulab.riscv.internal.driver;

import java.util.List;

import org.iommulab.api.errno.Errno;
import org.iommulab.api.errno.IommuException;
import org.iommulab.api.fault.FaultListener;
import org.iommulab.api.fault.PageRequest;
import org.iommulab.api.fault.PageResponse;
import org.iommulab.api.pasid.Pasids;
import org.iommulab.api.translation.Access;
import org.iommulab.pgtable.unit.Drainer;
import org.iommulab.pgtable.unit.PendingPageRequests;
import org.iommulab.riscv.internal.spec.Command;
import org.iommulab.riscv.internal.spec.PageRequestRecord;

/**
 * Page requests and their responses: on ipsr.PIP it drains the page-request queue (§3.3; Linux
 * {@code riscv_iommu_priq_process}) on a {@link Drainer} into
 * {@link FaultListener#pageRequest}, keeps the groups the listeners must answer, and answers them
 * with ATS.PRGR (§3.1.4; Linux {@code riscv_iommu_page_response}). A device waits for the answer
 * to each group, so every group gets one: from a listener, from the driver itself when no one
 * listens, or INVALID when its device is detached or the driver closes.
 *
 * <p>Thread safe. Draining runs on the thread that raised the interrupt and never takes the
 * driver's monitor; the pending groups are a concurrent set, responses go through the command
 * queue, which serializes itself.
 */
final class PageRequests {
    private final String name;
    private final IommuUnit unit;
    private final List<FaultListener> listeners;
    /** Page request groups handed to listeners and not answered yet. */
    private final PendingPageRequests pending = new PendingPageRequests();
    private final Drainer drainer = new Drainer(this::drain);

    PageRequests(String name, IommuUnit unit, List<FaultListener> listeners) {
        this.name = name;
        this.unit = unit;
        this.listeners = listeners;
    }

    /** ipsr.PIP: drains now, or leaves it to the thread already draining. */
    void interrupt() {
        drainer.interrupt();
    }

    /**
     * Hands the page requests from pqh to pqt to the listeners; a Stop Marker (R = W = 0, L = 1) is
     * skipped. The last request of a group makes the group pending until {@link #answer}; with no
     * listener the driver answers it Invalid Request itself.
     */
    private void drain() {
        for (long[] r : unit.consumePageRequests()) {
            PageRequest req = decode(r);
            if (req == null) {
                continue;
            }
            Object[] targets = listeners.toArray(); // one snapshot decides who hears it and who answers
            if (targets.length == 0 || unit.isClosed()) {
                if (req.lastInGroup()) {
                    try {
                        respond(req.requesterId(), req.pasid(), req.groupIndex(), PageResponse.INVALID);
                    } catch (IommuException e) {
                        // closed meanwhile: the device's request dies with the unit
                    }
                }
                continue;
            }
            if (req.lastInGroup()) {
                pending.add(req.requesterId(), req.pasid(), req.groupIndex());
            }
            for (Object o : targets) {
                try {
                    ((FaultListener) o).pageRequest(req);
                } catch (RuntimeException e) {
                    // a listener's failure must not stop the queue
                }
            }
        }
    }

    /** A page-request record (§3.3): header DID/PV/PID/PRIV/EXEC, payload R/W/L/PRGI/address; null for a Stop Marker. */
    private PageRequest decode(long[] r) {
        long header = r[0];
        long payload = r[1];
        boolean read = (payload & PageRequestRecord.R) != 0;
        boolean write = (payload & PageRequestRecord.W) != 0;
        boolean last = (payload & PageRequestRecord.L) != 0;
        if (!read && !write && last) {
            return null; // Stop Marker
        }
        int access = (read ? Access.READ : 0) | (write ? Access.WRITE : 0)
                | ((header & PageRequestRecord.PRIV) != 0 ? Access.PRIV : 0)
                | ((header & PageRequestRecord.EXEC) != 0 ? Access.EXEC : 0);
        int pid = PageRequestRecord.processId(header);
        return new PageRequest(name, PageRequestRecord.deviceId(header), pid < 0 ? Pasids.NO_PASID : pid,
                payload & ~0xfffL, access, PageRequestRecord.groupIndex(payload), last);
    }

    /**
     * Answers a reported group.
     *
     * @throws IommuException {@code ENOENT} unless the group was reported and is still unanswered
     */
    void answer(int requesterId, int pasid, int groupIndex, PageResponse response) throws IommuException {
        pending.answer(requesterId, pasid, groupIndex, response, this::respond);
    }

    /** ATS.PRGR (§3.1.4): RID, PV/PID, payload PRG index 40:32 and response code 47:44. */
    private void respond(int rid, int pasid, int group, PageResponse response) throws IommuException {
        int code = switch (response) {
            case SUCCESS -> Command.PRGR_SUCCESS;
            case INVALID -> Command.PRGR_INVALID_REQUEST;
            case FAILURE -> Command.PRGR_RESPONSE_FAILURE;
        };
        CommandQueue queue = unit.commandQueue();
        if (queue == null) {
            throw new IommuException(Errno.ENODEV, "IOMMU " + name + " is closed");
        }
        queue.submit(Command.atsPrgr(rid, pasid < 0 ? -1 : pasid), Command.prgrPayload(group, code));
    }

    /** Detach: the device's pending groups are answered INVALID, so it does not wait forever. */
    void denyAll(int requesterId) {
        pending.denyAll(requesterId, this::respond);
    }

    /**
     * Close, while the unit still runs: the groups still in the queue become pending, then every
     * pending group is answered INVALID.
     */
    void denyAllForClose() {
        for (long[] r : unit.consumePageRequests()) {
            PageRequest req = decode(r);
            if (req != null && req.lastInGroup()) {
                pending.add(req.requesterId(), req.pasid(), req.groupIndex());
            }
        }
        pending.denyAll(-1, this::respond);
    }

    /** Forgets every group (close, after the unit stopped). */
    void clear() {
        pending.clear();
    }
}
