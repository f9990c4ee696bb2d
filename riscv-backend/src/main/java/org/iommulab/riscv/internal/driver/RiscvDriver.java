package org.iommulab.riscv.internal.driver;

import java.util.EnumSet;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;

import org.iommulab.api.errno.Errno;
import org.iommulab.api.errno.IommuException;
import org.iommulab.api.fault.FaultListener;
import org.iommulab.api.fault.PageResponse;
import org.iommulab.api.invalidation.CacheInvalidation;
import org.iommulab.api.memory.FrameAllocator;
import org.iommulab.api.memory.PhysicalMemory;
import org.iommulab.api.nesting.GuestPasidBind;
import org.iommulab.api.nesting.NestingFeature;
import org.iommulab.api.nesting.NestingInfo;
import org.iommulab.api.nesting.PasidTableConfig;
import org.iommulab.api.pasid.PasidSet;
import org.iommulab.api.spi.DomainType;
import org.iommulab.api.spi.IommuDomain;
import org.iommulab.api.spi.IommuDriver;
import org.iommulab.pgtable.FlushOps;
import org.iommulab.pgtable.IoPageTable;
import org.iommulab.pgtable.format.RiscvPaging;
import org.iommulab.pgtable.unit.Drainer;
import org.iommulab.riscv.internal.hw.RiscvHardware;
import org.iommulab.riscv.internal.spec.Command;
import org.iommulab.riscv.internal.spec.DeviceContext;
import org.iommulab.riscv.internal.spec.Reg;

/**
 * The RISC-V IOMMU host driver: programs the hardware model as Linux's
 * {@code drivers/iommu/riscv/iommu.c} does, through its registers, the device-directory table,
 * process-directory tables and the command, fault and page-request queues (RISC-V IOMMU
 * specification 1.0, chapter "Software guidelines").
 *
 * <p>This class is the {@link IommuDriver} facade: it checks handles, keeps the domains and which
 * device is attached to which, and leaves each job to one collaborator:
 * <ul>
 * <li>{@link IommuUnit}: lazy bring-up (the first domain allocation, attach or binding) and
 * shutdown; {@link Capabilities}: what the unit may be asked to do;</li>
 * <li>{@link DeviceContexts}: what a device's DC holds and how it changes, and the G-stage flushes.
 * Domains: UNMANAGED are G-stage domains (the largest Sv*x4 advertised, a GSCID each), IDENTITY
 * pass through (iohgatp and fsc Bare), BLOCKED leave the DC invalid (cause 258);</li>
 * <li>{@link HostSva}: host SVA ({@link #bindFirstStage}), the driver's own PDT per device and a
 * PSCID per bound process;</li>
 * <li>{@link PasidTables}: nesting by PASID table, format {@link #FORMAT}: the guest's PDT (a GPA)
 * in DC.fsc.pdtp over the parent's G-stage, and the guest's invalidations;</li>
 * <li>{@link FaultReporter} and {@link PageRequests}: faults and page requests come through the
 * wired interrupt (ipsr FIP / PIP) and are drained on a {@link Drainer} into the
 * {@link FaultListener}s.</li>
 * </ul>
 *
 * <p>Thread safe: configuration changes are serialized by this object's monitor, command
 * submission by the command queue (page-table flushes and page responses submit without the
 * monitor), queue draining by the unit's queue lock. The interrupt path never takes this monitor,
 * so a device thread whose request faults cannot deadlock with a configuration change that waits
 * for the command queue.
 */
public final class RiscvDriver implements IommuDriver {
    /** The PASID-table format of this backend (NestingInfo.format, PasidTableConfig.format). */
    public static final String FORMAT = "riscv-iommu";

    private final String name;
    private final PhysicalMemory memory;
    private final FrameAllocator frames;
    private final Capabilities caps;
    private final IommuUnit unit;
    private final List<FaultListener> listeners = new CopyOnWriteArrayList<>();

    private final IdAllocator domainIds = new IdAllocator("GSCID", 0xffff);
    private final Map<Integer, RiscvDomain> domains = new HashMap<>();
    /** Attached devices and their domain (read by flushes and the fault handler without the monitor). */
    private final Map<Integer, RiscvDomain> devices = new ConcurrentHashMap<>();

    private final DeviceContexts contexts;
    private final PasidTables pasidTables;
    private final HostSva sva;
    private final FaultReporter faults;
    private final PageRequests pageRequests;

    /**
     * @param name the instance name, for fault reports
     * @param hw the hardware model
     * @param memory the memory the structures live in
     * @param frames where structure frames come from (all of them go back at close)
     */
    public RiscvDriver(String name, RiscvHardware hw, PhysicalMemory memory, FrameAllocator frames) {
        this.name = name;
        this.memory = memory;
        try {
            this.caps = new Capabilities(hw.read(Reg.CAPABILITIES, 8));
        } catch (IommuException e) {
            throw new IllegalStateException(e); // a valid offset: cannot happen
        }
        this.frames = new PasFrames(frames, caps.rawPas());
        this.unit = new IommuUnit(name, hw, memory, this.frames, caps, this::interrupt);
        this.contexts = new DeviceContexts(memory, caps, unit, devices);
        this.pasidTables = new PasidTables(caps, unit, contexts, devices);
        this.sva = new HostSva(memory, this.frames, caps, unit, contexts, devices, pasidTables);
        this.faults = new FaultReporter(name, memory, caps, unit, listeners, devices, sva, pasidTables);
        this.pageRequests = new PageRequests(name, unit, listeners);
    }

    /**
     * The wired interrupt (§"Guidelines for handling interrupts"), with the ipsr bits that became
     * pending, on the thread that raised them. It must not take this object's monitor.
     */
    private void interrupt(int ipsr) {
        if ((ipsr & Reg.IPSR_FIP) != 0) {
            faults.interrupt();
        }
        if ((ipsr & Reg.IPSR_PIP) != 0) {
            pageRequests.interrupt();
        }
        if ((ipsr & Reg.IPSR_CIP) != 0) {
            unit.acknowledgeCommandInterrupt();
        }
    }

    /**
     * Turns translation off (ddtp Off), invalidates the caches, disables the queues, then frees
     * every domain, PDT, DDT page and queue. Pending page requests are answered INVALID first.
     * Later calls fail with ENODEV; idempotent.
     */
    public synchronized void close() {
        if (unit.isClosed()) {
            return;
        }
        if (unit.isLive()) {
            pageRequests.denyAllForClose();
        }
        boolean wasLive = unit.stop();
        for (RiscvDomain d : domains.values()) {
            d.free();
        }
        domains.clear();
        domainIds.clear();
        devices.clear();
        pasidTables.clear();
        sva.clear();
        pageRequests.clear();
        unit.release(wasLive);
    }

    // ---- IommuDriver: domains and attachment ---------------------------------------------------

    @Override
    public NestingInfo nestingInfo() {
        int width = caps.widestFirstStage();
        Set<NestingFeature> features = EnumSet.noneOf(NestingFeature.class);
        if (caps.canNest()) {
            features.add(NestingFeature.PASID_TABLE);
            features.add(NestingFeature.CACHE_INVLD);
        }
        if (caps.ats()) {
            features.add(NestingFeature.PAGE_RESP);
        }
        long pageSizes = 1L << 12 | 1L << 21 | 1L << 30 | (width >= 48 ? 1L << 39 : 0);
        return new NestingInfo(FORMAT, features, width > 0 ? width : 39, caps.pasidBits(), pageSizes,
                Map.of("capabilities", caps.value()));
    }

    @Override
    public synchronized IommuDomain allocateDomain(DomainType type) throws IommuException {
        unit.checkOpen();
        int mode = DeviceContext.ATP_BARE;
        if (type == DomainType.UNMANAGED) {
            mode = caps.gStageMode();
            if (mode == DeviceContext.ATP_BARE) {
                throw new IommuException(Errno.EOPNOTSUPP, "the unit has no G-stage (capabilities Sv*x4): "
                        + "UNMANAGED domains are G-stage domains");
            }
        }
        unit.start();
        int id = domainIds.allocate();
        RiscvDomain d;
        try {
            d = newDomain(id, type, mode);
        } catch (IommuException e) {
            domainIds.free(id);
            throw e;
        }
        domains.put(id, d);
        return d;
    }

    /** An UNMANAGED domain's G-stage table flushes through {@link DeviceContexts#flushGStage}. */
    private RiscvDomain newDomain(int id, DomainType type, int mode) throws IommuException {
        if (type != DomainType.UNMANAGED) {
            return new RiscvDomain(id, type, null, DeviceContext.ATP_BARE);
        }
        RiscvPaging format = RiscvPaging.gStage(DeviceContext.pagingMode(mode), caps.pas(), caps.hardwareAd());
        RiscvDomain[] box = new RiscvDomain[1];
        FlushOps flush = new FlushOps() {
            @Override
            public void flushLeaves(long iova, long size, long granule) throws IommuException {
                contexts.flushGStage(box[0], iova, size, true);
            }

            @Override
            public void flushWalk(long iova, long size) throws IommuException {
                contexts.flushGStage(box[0], iova, size, false);
            }
        };
        IoPageTable table = IoPageTable.create(format, memory, frames, flush);
        box[0] = new RiscvDomain(id, type, table, mode);
        return box[0];
    }

    @Override
    public synchronized void freeDomain(IommuDomain domain) throws IommuException {
        RiscvDomain d = own(domain);
        if (devices.containsValue(d)) {
            throw new IommuException(Errno.EBUSY, "domain " + d.id() + " has attached devices");
        }
        if (d.type() == DomainType.UNMANAGED && unit.isLive()) {
            // The GSCID may be handed out again: nothing tagged with it may survive.
            unit.commandQueue().submit(Command.iotinval(false, d.gscid(), -1, false), 0,
                    Command.iotinval(true, d.gscid(), -1, false), 0);
        }
        d.free();
        domains.remove(d.id());
        domainIds.free(d.id());
    }

    @Override
    public synchronized void attach(IommuDomain domain, int requesterId) throws IommuException {
        RiscvDomain d = own(domain);
        DeviceDirectory.checkFits(requesterId);
        if (devices.containsKey(requesterId)) {
            throw new IommuException(Errno.EBUSY, String.format("device 0x%x is attached to a domain already", requesterId));
        }
        unit.start();
        contexts.install(requesterId, contexts.dcFor(d, null, null));
        devices.put(requesterId, d);
    }

    /** The DC goes invalid first; the device's SVA bindings, guest PASID table and pending page requests go with it. */
    @Override
    public synchronized void detach(IommuDomain domain, int requesterId) throws IommuException {
        RiscvDomain d = own(domain);
        if (devices.get(requesterId) != d) {
            throw d.notAttached(requesterId);
        }
        contexts.install(requesterId, DeviceContexts.Dc.INVALID);
        sva.forget(requesterId);
        devices.remove(requesterId);
        pasidTables.forget(requesterId);
        d.nestedDevices.remove(requesterId);
        pageRequests.denyAll(requesterId);
    }

    private RiscvDomain own(IommuDomain domain) throws IommuException {
        unit.checkOpen();
        if (!(domain instanceof RiscvDomain) || domains.get(domain.id()) != domain) {
            throw new IommuException(Errno.ENOENT, "not a live domain of " + name);
        }
        return (RiscvDomain) domain;
    }

    // ---- host SVA (HostSva) ----------------------------------------------------------------------

    /** See {@link HostSva#bind}: errors EINVAL, EBUSY (bound, or a G-stage domain), ENOENT (not attached). */
    @Override
    public synchronized void bindFirstStage(int requesterId, int pasid, long pgd, int addressWidth, int flags)
            throws IommuException {
        sva.bind(requesterId, pasid, pgd, addressWidth, flags);
    }

    @Override
    public synchronized void unbindFirstStage(int requesterId, int pasid) throws IommuException {
        sva.unbind(requesterId, pasid);
    }

    @Override
    public synchronized void invalidateFirstStage(int requesterId, int pasid, long address, long size)
            throws IommuException {
        sva.invalidate(requesterId, pasid, address, size);
    }

    // ---- nesting (PasidTables) -------------------------------------------------------------------

    @Override
    public void bindGuestPasid(IommuDomain parent, int requesterId, GuestPasidBind bind, PasidSet owner)
            throws IommuException {
        throw new IommuException(Errno.EOPNOTSUPP, "the RISC-V IOMMU nests by PASID table (attachPasidTable): "
                + "the guest owns the whole process-directory table");
    }

    @Override
    public void unbindGuestPasid(IommuDomain parent, int requesterId, int hostPasid, PasidSet owner)
            throws IommuException {
        throw new IommuException(Errno.EOPNOTSUPP, "the RISC-V IOMMU nests by PASID table (detachPasidTable)");
    }

    @Override
    public synchronized void attachPasidTable(IommuDomain parent, int requesterId, PasidTableConfig config)
            throws IommuException {
        pasidTables.attach(own(parent), requesterId, config);
    }

    @Override
    public synchronized void detachPasidTable(IommuDomain parent, int requesterId) throws IommuException {
        pasidTables.detach(own(parent), requesterId);
    }

    /** See {@link PasidTables#cacheInvalidate}; {@code owner} is not consulted (the PSCIDs are the guest's). */
    @Override
    public synchronized void cacheInvalidate(IommuDomain domain, int requesterId, CacheInvalidation inv, PasidSet owner)
            throws IommuException {
        pasidTables.cacheInvalidate(own(domain), requesterId, inv);
    }

    // ---- faults and page requests (FaultReporter, PageRequests) ----------------------------------

    /**
     * Answers a page request group with ATS.PRGR: SUCCESS → Success (0), INVALID → Invalid
     * Request (1), FAILURE → Response Failure (0xF). Not under the monitor: a listener may answer
     * from the interrupt thread.
     *
     * @throws IommuException {@code ENOENT} unless the group was reported and is still unanswered
     */
    @Override
    public void pageResponse(int requesterId, int pasid, int groupIndex, PageResponse response) throws IommuException {
        unit.checkOpen();
        pageRequests.answer(requesterId, pasid, groupIndex, response);
    }

    @Override
    public void addFaultListener(FaultListener listener) {
        listeners.add(listener);
    }

    @Override
    public void removeFaultListener(FaultListener listener) {
        listeners.remove(listener);
    }

    @Override
    public String toString() {
        return "riscv driver of " + name + (unit.isClosed() ? " (closed)" : "");
    }
}
