package org.iommulab.vfio.internal;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.TreeMap;
import java.util.TreeSet;

import org.iommulab.api.device.Requester;
import org.iommulab.api.errno.Errno;
import org.iommulab.api.errno.IommuException;
import org.iommulab.api.invalidation.CacheInvalidation;
import org.iommulab.api.nesting.GuestPasidBind;
import org.iommulab.api.nesting.PasidTableConfig;
import org.iommulab.api.pasid.PasidSet;
import org.iommulab.api.pasid.Pasids;

/**
 * The nesting state of a container (the 2020 series' additions to {@code struct vfio_iommu}): a
 * lease on the owner's PASID set (taken only when the IOMMU has system-wide PASIDs, as the series'
 * {@code vfio_mm}), the PASIDs this container allocated, the guest page tables bound per host PASID,
 * and the attached PASID table. Each operation applies to every (PASID-capable) requester of the
 * container's domain, as the series' {@code vfio_iommu_for_each_dev} does, and undoes the
 * requesters it reached when one refuses. Ownership checks are the drivers': they receive the
 * owner's set. Not thread safe: the container's lock guards it.
 */
final class Nesting {
    private final String owner;
    private final VfioContext context;
    private final TreeMap<Integer, GuestPasidBind> bindings = new TreeMap<>();
    private final TreeSet<Integer> allocated = new TreeSet<>();
    private VfioService.SetLease lease;
    private PasidTableConfig table;

    Nesting(String owner, VfioContext context) {
        this.owner = owner;
        this.context = context;
    }

    /**
     * The container became a nesting container.
     *
     * @param systemWidePasids the IOMMU offers {@code SYSWIDE_PASID}: take a lease on the owner's set
     */
    void start(boolean systemWidePasids) throws IommuException {
        if (systemWidePasids) {
            lease = context.acquirePasidSet(owner);
        }
    }

    /**
     * The IOMMU is released (requesters detached already, which undid their bindings): the PASIDs
     * this container allocated are freed and the lease dropped.
     */
    void stop() {
        bindings.clear();
        table = null;
        if (lease != null) {
            // A copy: freeing removes the PASID from the set iterated.
            for (int pasid : List.copyOf(allocated)) {
                freeQuietly(pasid);
            }
            allocated.clear();
            VfioService.SetLease done = lease;
            lease = null;
            context.releasePasidSet(done);
        }
    }

    private PasidSet set() {
        return lease == null ? null : lease.set;
    }

    /** @throws IommuException {@code EOPNOTSUPP} without system-wide PASIDs, hence without a set */
    private PasidSet requireSet() throws IommuException {
        if (lease == null) {
            throw new IommuException(Errno.EOPNOTSUPP, "the IOMMU has no system-wide PASIDs: no PASID set");
        }
        return lease.set;
    }

    /**
     * Forgets bindings whose PASID left the set behind our back (freed through another container
     * of the same process, or the set closed): the driver's PASID listener tore them down already.
     */
    private void prune() {
        PasidSet set = set();
        if (set != null) {
            bindings.keySet().removeIf(pasid -> pasid != Pasids.RESERVED_PASID && !set.contains(pasid));
            allocated.removeIf(pasid -> !set.contains(pasid));
        }
    }

    int alloc(int min, int max) throws IommuException {
        checkRange(min, max);
        int pasid = requireSet().allocate(min, max);
        allocated.add(pasid);
        return pasid;
    }

    /** Frees the owner's PASIDs in the range; like the series' {@code vfio_pasid_free_range}, it never fails midway. */
    int free(ContainerDomain cd, int min, int max) throws IommuException {
        checkRange(min, max);
        prune();
        int freed = 0;
        for (int pasid : requireSet().pasids()) {
            if (pasid < min || pasid > max) {
                continue;
            }
            if (bindings.containsKey(pasid)) {
                unbind(cd, pasid);
            }
            if (freeQuietly(pasid)) {
                freed++;
            }
        }
        return freed;
    }

    /** @return {@code true} if this call freed it (another container of the owner may have been first) */
    private boolean freeQuietly(int pasid) {
        allocated.remove(pasid);
        try {
            set().free(pasid);
            return true;
        } catch (IommuException e) {
            return false; // ENOENT/EPERM: gone already; ENODEV: the set is closed
        }
    }

    private static void checkRange(int min, int max) throws IommuException {
        if (min < 1 || max > Pasids.MAX_PASID || min > max) {
            throw new IommuException(Errno.EINVAL, "PASID range [" + min + ", " + max + "] is not within [1, "
                    + Pasids.MAX_PASID + "]");
        }
    }

    void bind(ContainerDomain cd, GuestPasidBind bind) throws IommuException {
        if (bind == null) {
            throw new IommuException(Errno.EINVAL, "no bind data");
        }
        if (bind.hostPasid() == Pasids.RESERVED_PASID) {
            bindRidPasid(cd, bind);
            return;
        }
        requireSet().checkOwned(bind.hostPasid());
        prune();
        if (bindings.containsKey(bind.hostPasid())) {
            throw new IommuException(Errno.EBUSY, "PASID " + bind.hostPasid() + " is bound already");
        }
        List<Requester> capable = cd.pasidCapable();
        if (capable.isEmpty()) {
            throw new IommuException(Errno.ENODEV, "no requester of the container can emit PASIDs");
        }
        bindAll(cd, capable, bind);
        bindings.put(bind.hostPasid(), bind);
    }

    /**
     * Guest IOVA over first stage: the guest's table for requests without PASID (RID_PASID, PASID
     * 0), nested on the container's domain. PASID 0 is in no set, so no ownership check applies;
     * instead it is the container's only when every requester of its domain is a whole device the
     * container holds: an mdev's requests without PASID are its parent's, shared with the host and
     * other mdevs, so a container holding one is refused (EPERM), whatever the guest wrote.
     */
    private void bindRidPasid(ContainerDomain cd, GuestPasidBind bind) throws IommuException {
        for (Requester r : cd.requesters) {
            if (r.mediated()) {
                throw new IommuException(Errno.EPERM, "PASID 0 of " + r.name()
                        + " is its parent's RID_PASID: a mediated device's guest IOVA is not bound");
            }
        }
        if (cd.requesters.isEmpty()) {
            throw new IommuException(Errno.ENODEV, "the container's domain has no requester");
        }
        if (bindings.containsKey(Pasids.RESERVED_PASID)) {
            throw new IommuException(Errno.EBUSY, "PASID 0 (RID_PASID) is bound already");
        }
        bindAll(cd, cd.requesters, bind);
        bindings.put(Pasids.RESERVED_PASID, bind);
    }

    private void bindAll(ContainerDomain cd, List<Requester> requesters, GuestPasidBind bind) throws IommuException {
        List<Requester> done = new ArrayList<>();
        try {
            for (Requester r : requesters) {
                cd.driver().bindGuestPasid(cd.domain, r.requesterId(), bind, set());
                done.add(r);
            }
        } catch (IommuException | RuntimeException e) {
            for (Requester r : done) {
                unbindQuietly(cd, r, bind.hostPasid());
            }
            throw e;
        }
    }

    void unbind(ContainerDomain cd, int hostPasid) throws IommuException {
        boolean ridPasid = hostPasid == Pasids.RESERVED_PASID;
        if (!ridPasid) {
            requireSet().checkOwned(hostPasid);
        }
        prune();
        if (!bindings.containsKey(hostPasid)) {
            throw new IommuException(Errno.ENOENT, "PASID " + hostPasid + " is not bound");
        }
        for (Requester r : ridPasid ? cd.requesters : cd.pasidCapable()) {
            unbindQuietly(cd, r, hostPasid);
        }
        bindings.remove(hostPasid);
    }

    private void unbindQuietly(ContainerDomain cd, Requester r, int hostPasid) {
        try {
            cd.driver().unbindGuestPasid(cd.domain, r.requesterId(), hostPasid, set());
        } catch (IommuException ignored) {
            // ENOENT: that requester had lost the binding (detached); ENODEV: the instance is closed.
        }
    }

    Map<Integer, GuestPasidBind> bindings() {
        prune();
        return new TreeMap<>(bindings);
    }

    void invalidate(ContainerDomain cd, CacheInvalidation invalidation) throws IommuException {
        if (invalidation == null) {
            throw new IommuException(Errno.EINVAL, "no invalidation");
        }
        for (Requester r : cd.requesters) {
            cd.driver().cacheInvalidate(cd.domain, r.requesterId(), invalidation, set());
        }
    }

    void attachTable(ContainerDomain cd, PasidTableConfig config) throws IommuException {
        if (config == null) {
            throw new IommuException(Errno.EINVAL, "no PASID table configuration");
        }
        attachAll(cd, cd.requesters, config, table);
        table = config;
    }

    /** Attaches {@code config} to each requester; on a refusal puts {@code previous} (or nothing) back. */
    private static void attachAll(ContainerDomain cd, List<Requester> requesters, PasidTableConfig config,
            PasidTableConfig previous) throws IommuException {
        List<Requester> done = new ArrayList<>();
        try {
            for (Requester r : requesters) {
                cd.driver().attachPasidTable(cd.domain, r.requesterId(), config);
                done.add(r);
            }
        } catch (IommuException | RuntimeException e) {
            for (Requester r : done) {
                restoreTable(cd, r, previous);
            }
            throw e;
        }
    }

    private static void restoreTable(ContainerDomain cd, Requester r, PasidTableConfig previous) {
        try {
            if (previous != null) {
                cd.driver().attachPasidTable(cd.domain, r.requesterId(), previous);
            } else {
                cd.driver().detachPasidTable(cd.domain, r.requesterId());
            }
        } catch (IommuException ignored) {
            // The configuration was accepted before; only a closed instance (ENODEV) refuses it now.
        }
    }

    void detachTable(ContainerDomain cd) throws IommuException {
        if (table == null) {
            throw new IommuException(Errno.ENOENT, "no PASID table is attached");
        }
        for (Requester r : cd.requesters) {
            restoreTable(cd, r, null);
        }
        table = null;
    }

    /** @return the PASIDs this container allocated that are still in the owner's set, ascending */
    List<Integer> allocated() {
        prune();
        return List.copyOf(allocated);
    }

    Optional<PasidTableConfig> table() {
        return Optional.ofNullable(table);
    }

    /** A requester is leaving: take its PASID table back (the driver's detach undoes its bindings). */
    void forget(ContainerDomain cd, Requester r) {
        if (table != null) {
            restoreTable(cd, r, null);
        }
    }
}
