package org.iommulab.sva.internal;

import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicLong;

import org.iommulab.api.errno.IommuException;
import org.iommulab.api.fault.PageResponse;
import org.iommulab.api.pasid.PasidSet;
import org.iommulab.api.process.HostProcess;
import org.iommulab.api.spi.IommuDriver;
import org.iommulab.api.sva.SvaBond;

/**
 * One process bound to one device (Linux {@code struct iommu_sva}): the PASID, the shared table its
 * PASID entry points at, and the page request groups waiting for an answer.
 *
 * <p>Thread safe: the bound flag is volatile, the pending groups a concurrent set, the counters
 * atomic; binding and unbinding run under the service's monitor.
 */
final class SvaBondImpl implements SvaBond {
    private final SvaServiceImpl service;
    private final SvaMm mm;
    private final SharedTable table;
    private final String iommu;
    private final IommuDriver driver;
    private final int requesterId;
    private final int pasid;
    private final PasidSet set;
    /** Group indexes of page requests handed to this bond and not answered yet. */
    private final Set<Integer> pendingGroups = ConcurrentHashMap.newKeySet();
    /** Groups of which a request failed (answered Invalid at their last request). */
    private final Set<Integer> failedGroups = ConcurrentHashMap.newKeySet();
    private final AtomicLong resolved = new AtomicLong();
    private final AtomicLong invalid = new AtomicLong();
    private volatile boolean bound = true;

    SvaBondImpl(SvaServiceImpl service, SvaMm mm, SharedTable table, String iommu, IommuDriver driver, int requesterId,
            int pasid, PasidSet set) {
        this.service = service;
        this.mm = mm;
        this.table = table;
        this.iommu = iommu;
        this.driver = driver;
        this.requesterId = requesterId;
        this.pasid = pasid;
        this.set = set;
    }

    SvaMm mm() {
        return mm;
    }

    SharedTable table() {
        return table;
    }

    IommuDriver driver() {
        return driver;
    }

    @Override
    public int pasid() {
        return pasid;
    }

    @Override
    public HostProcess process() {
        return mm.process();
    }

    @Override
    public String iommu() {
        return iommu;
    }

    @Override
    public int requesterId() {
        return requesterId;
    }

    @Override
    public PasidSet set() {
        return set;
    }

    @Override
    public boolean isBound() {
        return bound;
    }

    void markUnbound() {
        bound = false;
    }

    @Override
    public long pageTableRoot() {
        return table.root();
    }

    @Override
    public long pageRequestsResolved() {
        return resolved.get();
    }

    @Override
    public long pageRequestsInvalid() {
        return invalid.get();
    }

    @Override
    public void unbind() throws IommuException {
        service.unbind(this);
    }

    /** The IOTLB shootdown for a range of the shared table; a bond not (or no longer) bound has none. */
    void invalidate(long vaddr, long length) {
        try {
            driver.invalidateFirstStage(requesterId, pasid, vaddr, length);
        } catch (IommuException e) {
            // ENOENT: not bound yet or any more, nothing cached; ENODEV: the IOMMU is gone
        }
    }

    /** A page request of this bond arrived: its group waits for an answer. */
    void requestArrived(int groupIndex) {
        pendingGroups.add(groupIndex);
    }

    /** A request of a group failed: the group is answered Invalid Request. */
    void requestFailed(int groupIndex) {
        failedGroups.add(groupIndex);
    }

    /**
     * Answers a group once: Success unless one of its requests failed.
     *
     * @param groupIndex the group
     * @param ok whether its last request succeeded
     */
    void answer(int groupIndex, boolean ok) {
        boolean failed = failedGroups.remove(groupIndex);
        if (!pendingGroups.remove(groupIndex)) {
            return; // answered already (unbind)
        }
        PageResponse response = ok && !failed && bound ? PageResponse.SUCCESS : PageResponse.INVALID;
        respond(groupIndex, response);
    }

    /** Unbind: every group still waiting is answered Invalid Request. */
    void denyPending() {
        for (Integer group : pendingGroups.toArray(new Integer[0])) {
            if (pendingGroups.remove(group)) {
                respond(group, PageResponse.INVALID);
            }
        }
        failedGroups.clear();
    }

    /**
     * Answers a group. The counter moves before the answer goes out, so that whoever sees the
     * device finish (it waits for this answer) also sees the count; an answer the IOMMU refuses
     * takes it back.
     */
    private void respond(int groupIndex, PageResponse response) {
        AtomicLong counter = response == PageResponse.SUCCESS ? resolved : invalid;
        counter.incrementAndGet();
        try {
            driver.pageResponse(requesterId, pasid, groupIndex, response);
        } catch (IommuException e) {
            counter.decrementAndGet(); // ENOENT: the IOMMU answered it already (detach, close); ENODEV: it is gone
        }
    }

    @Override
    public String toString() {
        return String.format("%s bound to %s:%04x with PASID %d", mm.process(), iommu, requesterId, pasid);
    }
}
