package org.iommulab.vmm.internal;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.CopyOnWriteArrayList;

import org.iommulab.api.device.DeviceBus;
import org.iommulab.api.errno.Errno;
import org.iommulab.api.errno.IommuException;
import org.iommulab.api.events.EventLog;
import org.iommulab.api.fault.FaultListener;
import org.iommulab.api.fault.IommuFault;
import org.iommulab.api.fault.PageRequest;
import org.iommulab.api.fault.PageResponse;
import org.iommulab.api.idxd.IdxdDevice;
import org.iommulab.api.idxd.IdxdService;
import org.iommulab.api.idxd.Mdev;
import org.iommulab.api.idxd.SubmitStatus;
import org.iommulab.api.invalidation.CacheInvalidation;
import org.iommulab.api.memory.PhysicalMemory;
import org.iommulab.api.nesting.GuestIommuListener;
import org.iommulab.api.nesting.GuestPasidBind;
import org.iommulab.api.nesting.PasidTableConfig;
import org.iommulab.api.pasid.PasidSet;
import org.iommulab.api.process.HostProcess;
import org.iommulab.api.spi.IommuInstance;
import org.iommulab.api.vfio.Vfio;
import org.iommulab.api.vfio.VfioContainer;
import org.iommulab.api.vfio.VfioIommuType;
import org.iommulab.api.vmm.GuestKernel;
import org.iommulab.api.vmm.Vm;

/**
 * A VM and its traps. Its virtual IOMMU reports guest changes here ({@link GuestIommuListener}):
 * a first-stage PASID entry becomes VFIO BIND_PGTBL and an mdev PASID translation, a guest
 * invalidation becomes VFIO CACHE_INVLD, a guest page response goes to the host driver. Host page
 * requests for the VM's PASIDs are injected into the virtual IOMMU. Guest PASIDs are host PASIDs:
 * the guest gets them through the paravirtual call, as with VT-d's virtual command interface.
 *
 * <p>Guest IOVA over first stage: a guest RID_PASID entry (PASID 0) with a first stage becomes
 * BIND_PGTBL for PASID 0, which VFIO allows for a whole assigned device only (an mdev's is
 * refused with EPERM and its requests without PASID stay GPA-addressed). Page requests without
 * PASID (or with PASID 0) are never injected: the host driver answered them INVALID already.
 */
final class VmImpl implements Vm, GuestIommuListener {
    /**
     * A device as the guest sees it, behind its virtual IOMMU at a virtual requester id: an mdev
     * (guest PASIDs translated to host PASIDs) or a whole device (the guest's PASIDs are its own).
     */
    record Assigned(Mdev mdev, IdxdDevice passthrough, int virtualRid, int hostRid) {

        /** ENQCMD from the guest with its PASID to the device's shared (virtual) work queue 0. */
        SubmitStatus enqcmd(byte[] descriptor, int pasid) {
            return mdev != null ? mdev.enqcmd(descriptor, pasid) : passthrough.enqcmd(0, descriptor, pasid, false);
        }
    }

    private final String name;
    private final IommuInstance host;
    private final HostProcess process;
    private final long ramBase;
    private final long ramSize;
    private final PhysicalMemory memory;
    private final PasidSet pasids;
    /** Replaced by {@link #moveToFreshContainer()}; read by the trap handlers without the VM's lock. */
    private volatile VfioContainer container;
    private final Vfio vfio;
    /** Guest submissions hold it shared; a container move holds it exclusively. */
    private final java.util.concurrent.locks.ReentrantReadWriteLock submissions = new java.util.concurrent.locks.ReentrantReadWriteLock();
    private final IommuInstance viommu;
    private final GuestKernelImpl kernel;
    private final EventLog events;
    private final IdxdService idxd;
    private final DeviceBus bus;
    private final List<Assigned> devices = new CopyOnWriteArrayList<>();
    private final java.util.concurrent.ConcurrentLinkedQueue<String> journal = new java.util.concurrent.ConcurrentLinkedQueue<>();
    /** Page request groups injected into the guest and not answered yet: (virtual rid, PASID, group). */
    private final java.util.Set<Long> injected = java.util.concurrent.ConcurrentHashMap.newKeySet();
    /** The VM's page-request injector: one thread, so requests reach the guest in order. */
    private final java.util.concurrent.ExecutorService injector;
    /** Page requests of assigned devices without PASID (or PASID 0) the host answered INVALID. */
    private final java.util.concurrent.atomic.AtomicLong iovaPageRequests = new java.util.concurrent.atomic.AtomicLong();
    private final FaultListener hostFaults = new FaultListener() {
        @Override
        public void fault(IommuFault fault) {
            // DMA faults of the VM's PASIDs are the guest's business only through page requests
        }

        @Override
        public void pageRequest(PageRequest request) {
            injectPageRequest(request);
        }
    };

    VmImpl(String name, IommuInstance host, HostProcess process, long ramBase, long ramSize, PasidSet pasids,
            Vfio vfio, VfioContainer container, IommuInstance viommu, PhysicalMemory memory, GuestPool tables,
            GuestPool pages, EventLog events, IdxdService idxd, DeviceBus bus) {
        this.vfio = vfio;
        this.name = name;
        this.host = host;
        this.process = process;
        this.ramBase = ramBase;
        this.ramSize = ramSize;
        this.memory = memory;
        this.pasids = pasids;
        this.container = container;
        this.viommu = viommu;
        this.events = events;
        this.idxd = idxd;
        this.bus = bus;
        this.kernel = new GuestKernelImpl(this, viommu, memory, tables, pages);
        this.injector = java.util.concurrent.Executors.newSingleThreadExecutor(r -> {
            Thread t = new Thread(r, name + "-page-requests");
            t.setDaemon(true);
            return t;
        });
    }

    /** Connects the traps: the virtual IOMMU's reports and the host IOMMU's page requests. */
    void start() throws IommuException {
        viommu.setGuestListener(this);
        host.driver().addFaultListener(hostFaults);
    }

    @Override
    public String name() {
        return name;
    }

    @Override
    public String hostIommu() {
        return host.name();
    }

    @Override
    public long ramSize() {
        return ramSize;
    }

    @Override
    public PhysicalMemory guestMemory() {
        return memory;
    }

    @Override
    public IommuInstance viommu() {
        return viommu;
    }

    @Override
    public VfioContainer container() {
        return container;
    }

    PasidSet pasids() {
        return pasids;
    }

    @Override
    public synchronized Mdev assignMdev(String idxdDevice, int wq, int virtualRid) throws IommuException {
        if (!devices.isEmpty()) {
            throw new IommuException(Errno.EBUSY, name + " has a device already: a nesting container holds one group");
        }
        IdxdDevice parent = idxd.device(idxdDevice)
                .orElseThrow(() -> new IommuException(Errno.ENOENT, "no IDXD device '" + idxdDevice + "'"));
        if (!parent.iommu().equals(host.name())) {
            throw new IommuException(Errno.EINVAL, idxdDevice + " sits behind " + parent.iommu() + ", the VM behind " + host.name());
        }
        Mdev mdev = parent.createMdev(name + "-" + idxdDevice + "-wq" + wq, wq, pasids);
        try {
            attachGroup(mdev.requester().groupId());
        } catch (IommuException | RuntimeException e) {
            closeQuietly(mdev);
            throw e;
        }
        devices.add(new Assigned(mdev, null, virtualRid, parent.requesterId()));
        log("assigned %s at virtual rid 0x%x (host group %d, RAM mapped through VFIO)", mdev.name(), virtualRid,
                mdev.requester().groupId());
        return mdev;
    }

    @Override
    public synchronized void assignDevice(String idxdDevice, int virtualRid) throws IommuException {
        if (!devices.isEmpty()) {
            throw new IommuException(Errno.EBUSY, name + " has a device already: a nesting container holds one group");
        }
        IdxdDevice dev = idxd.device(idxdDevice)
                .orElseThrow(() -> new IommuException(Errno.ENOENT, "no IDXD device '" + idxdDevice + "'"));
        if (!dev.iommu().equals(host.name())) {
            throw new IommuException(Errno.EINVAL, idxdDevice + " sits behind " + dev.iommu() + ", the VM behind " + host.name());
        }
        int group = bus.requester(idxdDevice).orElseThrow(
                () -> new IommuException(Errno.ENOENT, "'" + idxdDevice + "' is not on the device bus")).groupId();
        attachGroup(group);
        devices.add(new Assigned(null, dev, virtualRid, dev.requesterId()));
        log("assigned %s whole at virtual rid 0x%x (host group %d, RAM mapped through VFIO)", idxdDevice, virtualRid, group);
    }

    /**
     * The group joins the VM's container, which becomes a nesting container with the guest's RAM
     * mapped at GPA 0; on failure the group leaves again and the container is as it was.
     */
    private void attachGroup(int group) throws IommuException {
        container.addGroup(group);
        try {
            container.setIommu(VfioIommuType.NESTING);
            container.mapDma(ramBase, 0, ramSize, 3);
        } catch (IommuException | RuntimeException e) {
            container.removeGroup(group); // the last group: releases the IOMMU type and any mapping
            throw e;
        }
    }

    @Override
    public List<Mdev> devices() {
        List<Mdev> list = new ArrayList<>();
        devices.forEach(a -> {
            if (a.mdev() != null) {
                list.add(a.mdev());
            }
        });
        return list;
    }

    /** @return the assigned devices */
    List<Assigned> assigned() {
        return List.copyOf(devices);
    }

    Optional<Assigned> device(int virtualRid) {
        return devices.stream().filter(a -> a.virtualRid() == virtualRid).findFirst();
    }

    @Override
    public GuestKernel guest() {
        return kernel;
    }

    /** The paravirtual PASID call: VFIO PASID_REQUEST; the guest uses the host PASID it returns. */
    int allocatePasid() throws IommuException {
        int pasid = container.pasidAlloc(1, org.iommulab.api.pasid.Pasids.MAX_PASID);
        log("guest PASID allocation -> VFIO PASID_REQUEST -> PASID %d", pasid);
        return pasid;
    }

    /** A guest submission to an assigned device; held while the VM moves to a fresh container. */
    SubmitStatus submit(Assigned dev, byte[] descriptor, int pasid) {
        submissions.readLock().lock();
        try {
            return dev.enqcmd(descriptor, pasid);
        } finally {
            submissions.readLock().unlock();
        }
    }

    @Override
    public void moveToFreshContainer() throws IommuException {
        submissions.writeLock().lock();
        try {
            synchronized (this) {
                for (Assigned a : devices) {
                    IdxdDevice parent = a.mdev() != null ? a.mdev().parent() : a.passthrough();
                    try {
                        if (!parent.awaitIdle(10_000)) {
                            throw new IommuException(Errno.EBUSY, parent.name() + " did not go idle: " + name + " stays put");
                        }
                    } catch (InterruptedException e) {
                        Thread.currentThread().interrupt();
                        throw new IommuException(Errno.EBUSY, "interrupted while draining " + parent.name());
                    }
                }
                VfioContainer old = container;
                org.iommulab.api.vfio.ContainerState state = old.saveState();
                int[] groups = old.groups();
                VfioContainer fresh = vfio.open(process);
                old.close();
                container = fresh;
                for (int group : groups) {
                    fresh.addGroup(group);
                }
                fresh.setIommu(state.type());
                fresh.restoreState(state);
                for (Assigned a : devices) {
                    if (a.mdev() != null) {
                        for (int pasid : state.bindings().keySet()) {
                            if (a.mdev().pasidTranslations().containsKey(pasid)) {
                                // Its claim was revoked when the old container freed the PASID: claim it anew.
                                a.mdev().unmapGuestPasid(pasid);
                            }
                            a.mdev().mapGuestPasid(pasid, pasid);
                        }
                    }
                }
                log("moved to fresh VFIO container %d: %d mapping(s), PASIDs %s and %d binding(s) kept",
                        fresh.id(), state.mappings().size(), state.pasids(), state.bindings().size());
            }
        } finally {
            submissions.writeLock().unlock();
        }
    }

    // ---- traps ---------------------------------------------------------------------------------

    @Override
    public void pasidEntryChanged(int requesterId, int pasid, Optional<GuestPasidBind> firstStage) {
        Optional<Assigned> dev = device(requesterId);
        if (dev.isEmpty()) {
            return;
        }
        try {
            if (firstStage.isPresent()) {
                if (container.bindings().containsKey(pasid)) {
                    // The guest changed a bound entry in place: the host follows (unbind, then bind anew).
                    container.unbindGuestPageTable(pasid);
                    if (dev.get().mdev() != null && pasid != org.iommulab.api.pasid.Pasids.RESERVED_PASID) {
                        dev.get().mdev().unmapGuestPasid(pasid);
                    }
                }
                container.bindGuestPageTable(firstStage.get());
                if (dev.get().mdev() != null && pasid != org.iommulab.api.pasid.Pasids.RESERVED_PASID) {
                    dev.get().mdev().mapGuestPasid(pasid, pasid);
                }
                log("trap: PASID-cache invalidation, PASID %d first stage at GPA 0x%x -> VFIO BIND_PGTBL%s", pasid,
                        firstStage.get().guestPgd(), pasid == org.iommulab.api.pasid.Pasids.RESERVED_PASID
                                ? " (RID_PASID: guest IOVA, nested on the VM's second stage)" : "");
            } else if (container.bindings().containsKey(pasid)) {
                if (dev.get().mdev() != null && pasid != org.iommulab.api.pasid.Pasids.RESERVED_PASID) {
                    dev.get().mdev().unmapGuestPasid(pasid);
                }
                container.unbindGuestPageTable(pasid);
                log("trap: PASID-cache invalidation, PASID %d entry gone -> VFIO UNBIND_PGTBL%s", pasid,
                        pasid == org.iommulab.api.pasid.Pasids.RESERVED_PASID ? " (RID_PASID: second stage only again)" : "");
            }
        } catch (IommuException e) {
            log("trap: PASID %d: the host refused: %s", pasid, e.getMessage());
        }
    }

    /** SMMUv3: the guest's STE for a device now points at its CD table: VFIO SET_PASID_TABLE. */
    @Override
    public void streamEntryChanged(int streamId, Optional<PasidTableConfig> config) {
        if (device(streamId).isEmpty()) {
            return;
        }
        try {
            if (config.isPresent()) {
                container.attachPasidTable(config.get());
                log("trap: CFGI_STE, stream 0x%x %s -> VFIO SET_PASID_TABLE", streamId, describe(config.get()));
            } else if (container.pasidTable().isPresent()) {
                container.detachPasidTable();
                log("trap: CFGI_STE, stream 0x%x invalid -> VFIO SET_PASID_TABLE unset", streamId);
            }
        } catch (IommuException e) {
            log("trap: stream 0x%x: the host refused: %s", streamId, e.getMessage());
        }
    }

    private static String describe(PasidTableConfig c) {
        return switch (c.config()) {
            case PasidTableConfig.TRANSLATE -> String.format("CD table at GPA 0x%x (S1CDMax %d)", c.basePtr(), c.pasidBits());
            case PasidTableConfig.BYPASS -> "bypass";
            default -> "abort";
        };
    }

    @Override
    public void invalidated(CacheInvalidation invalidation) {
        try {
            container.cacheInvalidate(invalidation);
            log("trap: guest invalidation %s -> VFIO CACHE_INVLD", invalidation);
        } catch (IommuException e) {
            log("trap: guest invalidation %s: the host refused: %s", invalidation, e.getMessage());
        }
    }

    @Override
    public void pageResponse(int requesterId, int pasid, int groupIndex, PageResponse response) {
        Optional<Assigned> dev = device(requesterId);
        if (dev.isEmpty()) {
            return;
        }
        // Only answers to requests the VMM injected reach the host: a guest cannot answer another
        // tenant's page request group, nor one it was never asked.
        if (!injected.remove(groupKey(requesterId, pasid, groupIndex))) {
            log("trap: guest page response for PASID %d group %d ignored: no such request was injected", pasid, groupIndex);
            return;
        }
        // Logged first: the device resumes as soon as the host has the answer.
        log("trap: guest page response %s (PASID %d, group %d) -> host", response, pasid, groupIndex);
        try {
            host.driver().pageResponse(dev.get().hostRid(), pasid, groupIndex, response);
        } catch (IommuException e) {
            log("trap: guest page response for PASID %d: %s", pasid, e.getMessage());
        }
    }

    private static long groupKey(int rid, int pasid, int group) {
        return (long) (rid & 0xffff) << 40 | (long) (pasid & 0xfffff) << 12 | (group & 0x1ff);
    }

    /**
     * A host page request for one of the VM's PASIDs goes to the guest through its virtual IOMMU.
     * It is handed to the VM's own injector thread: the host's page-request processing never runs
     * guest code, so a guest that is slow (or blocked in its own driver) delays only itself.
     */
    private void injectPageRequest(PageRequest request) {
        Optional<Assigned> dev = devices.stream().filter(a -> a.hostRid() == request.requesterId()).findFirst();
        if (dev.isPresent() && dev.get().mdev() == null && (request.pasid() == org.iommulab.api.pasid.Pasids.NO_PASID
                || request.pasid() == org.iommulab.api.pasid.Pasids.RESERVED_PASID)) {
            // Guest IOVA is never demand-paged: the host driver answered INVALID, the guest never sees it.
            iovaPageRequests.incrementAndGet();
            log("host page request without PASID (%s, 0x%x) -> answered INVALID by the host, not injected",
                    request.pasid() == org.iommulab.api.pasid.Pasids.NO_PASID ? "no PASID" : "PASID 0", request.address());
            return;
        }
        if (dev.isEmpty() || request.pasid() == org.iommulab.api.pasid.Pasids.NO_PASID
                || dev.get().mdev() != null && !pasids.contains(request.pasid())) {
            return; // another VM's, or the host's own (a whole device's PASIDs are all the guest's)
        }
        int vrid = dev.get().virtualRid();
        injected.add(groupKey(vrid, request.pasid(), request.groupIndex()));
        try {
            injector.execute(() -> {
                log("host page request (PASID %d, 0x%x) -> injected into the guest's virtual IOMMU", request.pasid(),
                        request.address());
                if (!viommu.pageRequest(vrid, request.pasid(), request.address(), request.access(), request.groupIndex())) {
                    injected.remove(groupKey(vrid, request.pasid(), request.groupIndex()));
                    answerHost(request.requesterId(), request.pasid(), request.groupIndex(), PageResponse.INVALID);
                }
            });
        } catch (java.util.concurrent.RejectedExecutionException e) {
            injected.remove(groupKey(vrid, request.pasid(), request.groupIndex()));
            answerHost(request.requesterId(), request.pasid(), request.groupIndex(), PageResponse.INVALID); // shutting down
        }
    }

    private void answerHost(int hostRid, int pasid, int group, PageResponse response) {
        try {
            host.driver().pageResponse(hostRid, pasid, group, response);
        } catch (IommuException e) {
            // answered already
        }
    }

    void log(String format, Object... args) {
        String line = String.format(format, args);
        journal.add(line);
        events.record("vmm", name + ": " + line);
    }

    @Override
    public List<String> takeJournal() {
        List<String> lines = new ArrayList<>();
        String line;
        while ((line = journal.poll()) != null) {
            lines.add(line);
        }
        return lines;
    }

    /** Shutdown: traps off, devices released, container closed, memory and PASIDs returned. */
    void close() {
        try {
            viommu.setGuestListener(null);
        } catch (IommuException e) {
            // nothing to detach
        }
        host.driver().removeFaultListener(hostFaults);
        injector.shutdownNow();
        // Requests the guest will never answer now: the device learns Invalid at once.
        for (long key : injected) {
            int vrid = (int) (key >>> 40);
            device(vrid).ifPresent(a -> answerHost(a.hostRid(), (int) (key >>> 12) & 0xfffff, (int) key & 0x1ff,
                    PageResponse.INVALID));
        }
        injected.clear();
        container.close();
        for (Assigned a : devices) {
            if (a.mdev() != null) {
                closeQuietly(a.mdev());
            }
        }
        devices.clear();
        viommu.close();
        pasids.close();
    }

    private static void closeQuietly(Mdev mdev) {
        try {
            mdev.close();
        } catch (IommuException e) {
            // its group is still held: it goes when the holder lets go
        }
    }

    /** @return page requests without PASID (or with PASID 0) of the VM's whole devices, answered INVALID by the host */
    long iovaPageRequests() {
        return iovaPageRequests.get();
    }

    HostProcess process() {
        return process;
    }

    Map<Integer, GuestPasidBind> hostBindings() {
        return container.bindings();
    }
}
