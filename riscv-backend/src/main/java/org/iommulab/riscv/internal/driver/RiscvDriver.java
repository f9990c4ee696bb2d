package org.iommulab.riscv.internal.driver;

import java.util.ArrayList;
import java.util.EnumSet;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.function.LongUnaryOperator;

import org.iommulab.api.errno.Errno;
import org.iommulab.api.errno.IommuException;
import org.iommulab.api.fault.FaultListener;
import org.iommulab.api.fault.IommuFault;
import org.iommulab.api.fault.PageRequest;
import org.iommulab.api.fault.PageResponse;
import org.iommulab.api.invalidation.CacheInvalidation;
import org.iommulab.api.invalidation.CacheType;
import org.iommulab.api.memory.FrameAllocator;
import org.iommulab.api.memory.MemoryAccessException;
import org.iommulab.api.memory.PhysicalMemory;
import org.iommulab.api.nesting.GuestPasidBind;
import org.iommulab.api.nesting.NestingFeature;
import org.iommulab.api.nesting.NestingInfo;
import org.iommulab.api.nesting.PasidTableConfig;
import org.iommulab.api.pasid.PasidSet;
import org.iommulab.api.pasid.Pasids;
import org.iommulab.api.spi.DomainType;
import org.iommulab.api.spi.IommuDomain;
import org.iommulab.api.spi.IommuDriver;
import org.iommulab.api.translation.Access;
import org.iommulab.api.translation.FaultKind;
import org.iommulab.api.translation.Stage;
import org.iommulab.pgtable.FlushOps;
import org.iommulab.pgtable.IoPageTable;
import org.iommulab.pgtable.format.RiscvPaging;
import org.iommulab.pgtable.unit.PendingPageRequests;
import org.iommulab.riscv.internal.hw.RiscvHardware;
import org.iommulab.riscv.internal.spec.Command;
import org.iommulab.riscv.internal.spec.DeviceContext;
import org.iommulab.riscv.internal.spec.FaultRecord;
import org.iommulab.riscv.internal.spec.PageRequestRecord;
import org.iommulab.riscv.internal.spec.ProcessContext;
import org.iommulab.riscv.internal.spec.Reg;

/**
 * The RISC-V IOMMU host driver: programs the hardware model as Linux's
 * {@code drivers/iommu/riscv/iommu.c} does, through its registers, the device-directory table,
 * process-directory tables and the command, fault and page-request queues (RISC-V IOMMU
 * specification 1.0, chapter "Software guidelines").
 *
 * <ul>
 * <li><b>Bring-up</b> is lazy (the first domain allocation or binding), so a register-level session
 * that never uses the driver finds the unit as reset left it: capabilities read and checked
 * (version 1.x, wired interrupts), fctl.WSI set, the command queue (256 entries), fault queue (256)
 * and, with capabilities.ATS, page-request queue (256) allocated and enabled with the cqen/cqon
 * handshakes, a two-level DDT (16-bit requester ids) installed in ddtp, and every cache
 * invalidated.</li>
 * <li><b>Device contexts</b> change as §"Changing device directory table entry" says: a valid DC is
 * first made invalid (IODIR.INVAL_DDT), then written with tc (V) last, then IODIR.INVAL_DDT and the
 * IOTINVALs the old DC calls for, each batch ending with IOFENCE.C and the driver waiting for
 * cqh to reach cqt.</li>
 * <li><b>Domains</b>: UNMANAGED are G-stage domains (the largest Sv*x4 advertised, a GSCID each),
 * IDENTITY pass through (iohgatp and fsc Bare), BLOCKED leave the DC invalid (cause 258).</li>
 * <li><b>Host SVA</b> ({@link #bindFirstStage}): the driver's own PDT per device (PDTV = 1), a
 * PSCID per bound process.</li>
 * <li><b>Nesting</b> by PASID table, format {@link #FORMAT}: the guest's PDT (a GPA) in DC.fsc.pdtp
 * over the parent's G-stage.</li>
 * <li><b>Faults and page requests</b> come through the wired interrupt (ipsr FIP / PIP) and are
 * drained on a {@link Drainer} into the {@link FaultListener}s.</li>
 * </ul>
 *
 * <p>Thread safe: configuration changes are serialized by this object's monitor, command
 * submission by the command queue (page-table flushes submit without the monitor), queue draining
 * by a queue lock.
 */
public final class RiscvDriver implements IommuDriver {
    /** The PASID-table format of this backend (NestingInfo.format, PasidTableConfig.format). */
    public static final String FORMAT = "riscv-iommu";

    /** Fault and page-request queues: 256 records each. */
    static final int LOG2_QUEUE = 8;
    static final int QUEUE_ENTRIES = 1 << LOG2_QUEUE;
    /** Beyond this many pages a range invalidation drops the address (AV = 0). */
    static final int MAX_PAGE_COMMANDS = 64;
    private static final int POLLS = 1000;
    private static final long ATS_ALL = -1;

    private final String name;
    private final RiscvHardware hw;
    private final PhysicalMemory memory;
    private final FrameAllocator frames;
    private final List<FaultListener> listeners = new CopyOnWriteArrayList<>();
    /** capabilities, read once (RO). */
    private final long caps;

    private final IdAllocator domainIds = new IdAllocator("GSCID", 0xffff);
    private final IdAllocator pscids = new IdAllocator("PSCID", 0xf_ffff);
    private final Map<Integer, RiscvDomain> domains = new HashMap<>();
    /** Attached devices and their domain (read by flushes and the fault handler without the monitor). */
    private final Map<Integer, RiscvDomain> devices = new ConcurrentHashMap<>();
    /** Devices with a guest PASID table attached, and its configuration. */
    private final Map<Integer, PasidTableConfig> pasidTables = new ConcurrentHashMap<>();
    /** Devices with host SVA bindings: the PDT the driver owns for each. */
    private final Map<Integer, ProcessDirectory> svas = new ConcurrentHashMap<>();
    /** Page request groups handed to listeners and not answered yet. */
    private final PendingPageRequests pendingGroups = new PendingPageRequests();
    private final Drainer faultDrainer = new Drainer(this::drainFaults);
    private final Drainer pageRequestDrainer = new Drainer(this::drainPageRequests);
    /** Guards the fault and page-request queues against close while they are read. */
    private final Object queueLock = new Object();

    private volatile boolean live;
    private volatile boolean closed;
    private volatile CommandQueue cq;
    private long fq;
    private long pq;
    private DeviceDirectory ddt;

    /**
     * @param name the instance name, for fault reports
     * @param hw the hardware model
     * @param memory the memory the structures live in
     * @param frames where structure frames come from (all of them go back at close)
     */
    public RiscvDriver(String name, RiscvHardware hw, PhysicalMemory memory, FrameAllocator frames) {
        this.name = name;
        this.hw = hw;
        this.memory = memory;
        try {
            this.caps = hw.read(Reg.CAPABILITIES, 8);
        } catch (IommuException e) {
            throw new IllegalStateException(e); // a valid offset: cannot happen
        }
        this.frames = new PasFrames(frames, (int) ((caps >>> Reg.CAP_PAS_SHIFT) & 0x3f));
    }

    // ---- capabilities ------------------------------------------------------------------------

    private boolean cap(long bit) {
        return (caps & bit) != 0;
    }

    private boolean ats() {
        return cap(Reg.CAP_ATS);
    }

    /** @return capabilities.PAS clamped to what RISC-V tables encode (32..56) */
    private int pas() {
        int pas = (int) ((caps >>> Reg.CAP_PAS_SHIFT) & 0x3f);
        return Math.max(32, Math.min(56, pas));
    }

    /** @return the widest first-stage VA (39, 48, 57) the unit walks, or 0 */
    private int widestFirstStage() {
        return cap(Reg.CAP_SV57) ? 57 : cap(Reg.CAP_SV48) ? 48 : cap(Reg.CAP_SV39) ? 39 : 0;
    }

    /** @return iosatp.MODE for a first-stage VA width, or -1 if the unit does not walk it */
    private int iosatpMode(int addressWidth) {
        return switch (addressWidth) {
            case 39 -> cap(Reg.CAP_SV39) ? DeviceContext.ATP_SV39 : -1;
            case 48 -> cap(Reg.CAP_SV48) ? DeviceContext.ATP_SV48 : -1;
            case 57 -> cap(Reg.CAP_SV57) ? DeviceContext.ATP_SV57 : -1;
            default -> -1;
        };
    }

    /** @return iohgatp.MODE of the largest G-stage advertised (Sv57x4, Sv48x4, Sv39x4), or Bare */
    private int gStageMode() {
        return cap(Reg.CAP_SV57X4) ? DeviceContext.ATP_SV57 : cap(Reg.CAP_SV48X4) ? DeviceContext.ATP_SV48
                : cap(Reg.CAP_SV39X4) ? DeviceContext.ATP_SV39 : DeviceContext.ATP_BARE;
    }

    /** @return pdtp.MODE of the widest PDT advertised, or Bare */
    private int widestPdtMode() {
        return cap(Reg.CAP_PD20) ? DeviceContext.PDTP_PD20 : cap(Reg.CAP_PD17) ? DeviceContext.PDTP_PD17
                : cap(Reg.CAP_PD8) ? DeviceContext.PDTP_PD8 : DeviceContext.PDTP_BARE;
    }

    /** @return pdtp.MODE for a PASID width of 8, 17 or 20 bits if advertised, else -1 */
    private int pdtMode(int pasidBits) {
        return switch (pasidBits) {
            case 8 -> cap(Reg.CAP_PD8) ? DeviceContext.PDTP_PD8 : -1;
            case 17 -> cap(Reg.CAP_PD17) ? DeviceContext.PDTP_PD17 : -1;
            case 20 -> cap(Reg.CAP_PD20) ? DeviceContext.PDTP_PD20 : -1;
            default -> -1;
        };
    }

    private static RiscvPaging.Mode pagingMode(int atpMode) {
        return switch (atpMode) {
            case DeviceContext.ATP_SV39 -> RiscvPaging.Mode.SV39;
            case DeviceContext.ATP_SV48 -> RiscvPaging.Mode.SV48;
            default -> RiscvPaging.Mode.SV57;
        };
    }

    private static int levels(int atpMode) {
        return switch (atpMode) {
            case DeviceContext.ATP_SV39 -> 3;
            case DeviceContext.ATP_SV48 -> 4;
            case DeviceContext.ATP_SV57 -> 5;
            default -> 0;
        };
    }

    // ---- bring-up ----------------------------------------------------------------------------

    /**
     * Takes the unit over (§"Guidelines for initialization"; Linux {@code riscv_iommu_init}).
     * Every frame is allocated before a register is written and released if bring-up fails.
     */
    private void init() throws IommuException {
        checkOpen();
        if (live) {
            return;
        }
        if ((caps & 0xf0) != (Reg.CAP_VERSION_1_0 & 0xf0)) {
            throw new IommuException(Errno.ENODEV, String.format("IOMMU %s: capabilities.version 0x%x is not 1.x", name,
                    caps & 0xff));
        }
        long igs = (caps >>> Reg.CAP_IGS_SHIFT) & 3;
        if (igs != Reg.CAP_IGS_WSI && igs != 2) {
            throw new IommuException(Errno.ENODEV, "IOMMU " + name + ": no wire-signaled interrupts (capabilities.IGS)");
        }
        long cqFrame = 0;
        long fqFrames = 0;
        long pqFrame = 0;
        long ddtRoot = 0;
        int fqCount = framesFor((long) FaultRecord.SIZE * QUEUE_ENTRIES);
        int pqCount = framesFor((long) PageRequestRecord.SIZE * QUEUE_ENTRIES);
        try {
            cqFrame = frames.allocateFrames(framesFor((long) Command.SIZE * CommandQueue.ENTRIES));
            fqFrames = frames.allocateFrames(fqCount);
            if (ats()) {
                pqFrame = frames.allocateFrames(pqCount);
            }
            ddtRoot = frames.allocateFrames(1);
        } catch (IommuException e) {
            freeQuietly(frames, ddtRoot, 1);
            freeQuietly(frames, pqFrame, pqCount);
            freeQuietly(frames, fqFrames, fqCount);
            freeQuietly(frames, cqFrame, framesFor((long) Command.SIZE * CommandQueue.ENTRIES));
            throw e;
        }
        memory.fill(ddtRoot, FrameAllocator.FRAME_SIZE, (byte) 0);
        CommandQueue queue = new CommandQueue(name, hw, memory, cqFrame);
        DeviceDirectory directory = new DeviceDirectory(memory, frames, ddtRoot);
        try {
            // fctl.WSI: interrupts are signalled on wires (the driver's interrupt hook).
            hw.write(Reg.FCTL, hw.read(Reg.FCTL, 4) | Reg.FCTL_WSI, 4);
            hw.setInterruptHandler(this::interrupt);
            queue.enable();
            enableQueue(Reg.FQB, Reg.FQH, Reg.FQCSR, fqFrames, "fault");
            if (pqFrame != 0) {
                enableQueue(Reg.PQB, Reg.PQH, Reg.PQCSR, pqFrame, "page-request");
            }
            setDdtp(directory.ddtp());
            if ((hw.read(Reg.DDTP, 8) & Reg.DDTP_MODE_MASK) != Reg.MODE_2LVL) {
                throw new IommuException(Errno.ENODEV, "IOMMU " + name + ": ddtp.iommu_mode 2LVL is not supported");
            }
            synchronized (queueLock) {
                cq = queue;
                fq = fqFrames;
                pq = pqFrame;
                ddt = directory;
                live = true;
            }
            // Nothing the unit may have cached before is valid now (Linux does the same at probe).
            cq.submit(Command.iodirInvalDdt(-1), 0, Command.iotinval(false, -1, -1, false), 0,
                    Command.iotinval(true, -1, -1, false), 0);
        } catch (IommuException | RuntimeException e) {
            synchronized (queueLock) {
                live = false;
                cq = null;
                ddt = null;
                fq = pq = 0;
            }
            shutDownUnit(queue);
            freeQuietly(frames, ddtRoot, 1);
            freeQuietly(frames, pqFrame, pqCount);
            freeQuietly(frames, fqFrames, fqCount);
            freeQuietly(frames, cqFrame, framesFor((long) Command.SIZE * CommandQueue.ENTRIES));
            throw e;
        }
    }

    /** fqb/pqb, head 0, csr EN | IE, poll ON (§"Guidelines for initialization"). */
    private void enableQueue(int baseReg, int headReg, int csrReg, long base, String what) throws IommuException {
        hw.write(baseReg, Reg.queueBase(base, LOG2_QUEUE), 8);
        hw.write(headReg, 0, 4);
        hw.write(csrReg, Reg.CSR_EN | Reg.CSR_IE, 4);
        if (!pollCsr(csrReg, true)) {
            throw new IommuException(Errno.EIO, "IOMMU " + name + ": the " + what + " queue did not come on");
        }
    }

    private boolean pollCsr(int csrReg, boolean on) throws IommuException {
        for (int i = 0; i < POLLS; i++) {
            long v = hw.read(csrReg, 4);
            if (((v & Reg.CSR_ON) != 0) == on && (v & Reg.CSR_BUSY) == 0) {
                return true;
            }
            Thread.onSpinWait();
        }
        return false;
    }

    /** Writes ddtp once ddtp.busy is clear, and waits for busy to clear again. */
    private void setDdtp(long value) throws IommuException {
        for (int i = 0; i < POLLS && (hw.read(Reg.DDTP, 8) & Reg.DDTP_BUSY) != 0; i++) {
            Thread.onSpinWait();
        }
        hw.write(Reg.DDTP, value, 8);
        for (int i = 0; i < POLLS && (hw.read(Reg.DDTP, 8) & Reg.DDTP_BUSY) != 0; i++) {
            Thread.onSpinWait();
        }
    }

    /** Translation off (ddtp Off), queues off, interrupt hook removed; errors ignored. */
    private void shutDownUnit(CommandQueue queue) {
        hw.setInterruptHandler(null);
        try {
            setDdtp(Reg.MODE_OFF);
        } catch (IommuException | RuntimeException e) {
            // valid offsets: cannot happen
        }
        if (queue != null) {
            try {
                // ddtp is Off: drop whatever the unit cached, so nothing of it outlives the frames.
                queue.submit(Command.iodirInvalDdt(-1), 0, Command.iotinval(false, -1, -1, false), 0,
                        Command.iotinval(true, -1, -1, false), 0);
            } catch (IommuException | RuntimeException e) {
                // the queue is not running: nothing is cached that a command could reach
            }
            queue.disable();
        }
        try {
            hw.write(Reg.FQCSR, 0, 4);
            pollCsr(Reg.FQCSR, false);
            hw.write(Reg.PQCSR, 0, 4);
            pollCsr(Reg.PQCSR, false);
        } catch (IommuException | RuntimeException e) {
            // valid offsets: cannot happen
        }
    }

    static int framesFor(long bytes) {
        return (int) Math.max(1, (bytes + FrameAllocator.FRAME_SIZE - 1) / FrameAllocator.FRAME_SIZE);
    }

    static void freeQuietly(FrameAllocator frames, long address, int count) {
        if (address != 0) {
            try {
                frames.freeFrames(address, count);
            } catch (IommuException e) {
                // not allocated: nothing to release
            }
        }
    }

    /**
     * Turns translation off (ddtp Off), invalidates the caches, disables the queues, then frees
     * every domain, PDT, DDT page and queue. Pending page requests are answered INVALID first.
     * Later calls fail with ENODEV; idempotent.
     */
    public synchronized void close() {
        if (closed) {
            return;
        }
        if (live) {
            drainPageRequestsForClose();
            pendingGroups.denyAll(-1, this::respond);
        }
        closed = true;
        CommandQueue queue;
        boolean wasLive;
        synchronized (queueLock) {
            wasLive = live;
            live = false;
            queue = cq;
        }
        if (wasLive) {
            shutDownUnit(queue);
        }
        for (RiscvDomain d : domains.values()) {
            d.free();
        }
        domains.clear();
        domainIds.clear();
        devices.clear();
        pasidTables.clear();
        for (ProcessDirectory pd : svas.values()) {
            pd.free();
        }
        svas.clear();
        pscids.clear();
        pendingGroups.clear();
        if (wasLive) {
            ddt.free();
            freeQuietly(frames, pq, framesFor((long) PageRequestRecord.SIZE * QUEUE_ENTRIES));
            freeQuietly(frames, fq, framesFor((long) FaultRecord.SIZE * QUEUE_ENTRIES));
            freeQuietly(frames, queue.base(), framesFor((long) Command.SIZE * CommandQueue.ENTRIES));
        }
        synchronized (queueLock) {
            cq = null;
            ddt = null;
            fq = pq = 0;
        }
    }

    private void checkOpen() throws IommuException {
        if (closed) {
            throw new IommuException(Errno.ENODEV, "IOMMU " + name + " is closed");
        }
    }

    // ---- IommuDriver: domains and attachment ---------------------------------------------------

    @Override
    public NestingInfo nestingInfo() {
        int width = widestFirstStage();
        int pdMode = widestPdtMode();
        int pasidBits = pdMode == DeviceContext.PDTP_BARE ? 0
                : ProcessContext.processIdBits(ProcessContext.levels(pdMode));
        Set<NestingFeature> features = EnumSet.noneOf(NestingFeature.class);
        if (width > 0 && pasidBits > 0 && gStageMode() != DeviceContext.ATP_BARE) {
            features.add(NestingFeature.PASID_TABLE);
            features.add(NestingFeature.CACHE_INVLD);
        }
        if (ats()) {
            features.add(NestingFeature.PAGE_RESP);
        }
        long pageSizes = 1L << 12 | 1L << 21 | 1L << 30 | (width >= 48 ? 1L << 39 : 0);
        return new NestingInfo(FORMAT, features, width > 0 ? width : 39, pasidBits, pageSizes,
                Map.of("capabilities", caps));
    }

    @Override
    public synchronized IommuDomain allocateDomain(DomainType type) throws IommuException {
        checkOpen();
        int mode = DeviceContext.ATP_BARE;
        if (type == DomainType.UNMANAGED) {
            mode = gStageMode();
            if (mode == DeviceContext.ATP_BARE) {
                throw new IommuException(Errno.EOPNOTSUPP, "the unit has no G-stage (capabilities Sv*x4): "
                        + "UNMANAGED domains are G-stage domains");
            }
        }
        init();
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

    private RiscvDomain newDomain(int id, DomainType type, int mode) throws IommuException {
        if (type != DomainType.UNMANAGED) {
            return new RiscvDomain(id, type, null, DeviceContext.ATP_BARE);
        }
        RiscvPaging format = RiscvPaging.gStage(pagingMode(mode), pas(), cap(Reg.CAP_AMO_HWAD));
        RiscvDomain[] box = new RiscvDomain[1];
        FlushOps flush = new FlushOps() {
            @Override
            public void flushLeaves(long iova, long size, long granule) throws IommuException {
                flushGStage(box[0], iova, size, true);
            }

            @Override
            public void flushWalk(long iova, long size) throws IommuException {
                flushGStage(box[0], iova, size, false);
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
        if (d.type() == DomainType.UNMANAGED && live) {
            // The GSCID may be handed out again: nothing tagged with it may survive.
            cq.submit(Command.iotinval(false, d.gscid(), -1, false), 0, Command.iotinval(true, d.gscid(), -1, false), 0);
        }
        d.free();
        domains.remove(d.id());
        domainIds.free(d.id());
    }

    @Override
    public synchronized void attach(IommuDomain domain, int requesterId) throws IommuException {
        RiscvDomain d = own(domain);
        checkRid(requesterId);
        if (devices.containsKey(requesterId)) {
            throw new IommuException(Errno.EBUSY, String.format("device 0x%x is attached to a domain already", requesterId));
        }
        init();
        installDc(requesterId, dcFor(d, null, null));
        devices.put(requesterId, d);
    }

    @Override
    public synchronized void detach(IommuDomain domain, int requesterId) throws IommuException {
        RiscvDomain d = own(domain);
        if (devices.get(requesterId) != d) {
            throw new IommuException(Errno.ENOENT, String.format("device 0x%x is not attached to domain %d", requesterId,
                    d.id()));
        }
        installDc(requesterId, Dc.INVALID);
        // The DC is invalid and its old configuration flushed: the SVA bindings go too.
        ProcessDirectory pd = svas.remove(requesterId);
        if (pd != null) {
            List<Long> cmds = new ArrayList<>();
            for (ProcessDirectory.Binding b : pd.bindings.values()) {
                add(cmds, Command.iotinval(false, -1, b.pscid(), false), 0);
            }
            try {
                cq.submit(toArray(cmds));
            } catch (IommuException e) {
                // the DC is invalid and INVAL_DDT plus a full IOTINVAL.VMA completed already
            }
            for (ProcessDirectory.Binding b : pd.bindings.values()) {
                pscids.free(b.pscid());
            }
            pd.free();
        }
        devices.remove(requesterId);
        pasidTables.remove(requesterId);
        d.nestedDevices.remove(requesterId);
        pendingGroups.denyAll(requesterId, this::respond);
    }

    private RiscvDomain own(IommuDomain domain) throws IommuException {
        checkOpen();
        if (!(domain instanceof RiscvDomain) || domains.get(domain.id()) != domain) {
            throw new IommuException(Errno.ENOENT, "not a live domain of " + name);
        }
        return (RiscvDomain) domain;
    }

    private static void checkRid(int requesterId) throws IommuException {
        if (!DeviceDirectory.fits(requesterId)) {
            throw new IommuException(Errno.EINVAL, String.format(
                    "device id 0x%x is beyond the two-level DDT (16-bit requester ids)", requesterId));
        }
    }

    // ---- device contexts -----------------------------------------------------------------------

    /** A base-format device context (§2.1.3): tc, iohgatp, ta, fsc. */
    record Dc(long tc, long iohgatp, long ta, long fsc) {
        static final Dc INVALID = new Dc(0, 0, 0, 0);

        boolean valid() {
            return (tc & DeviceContext.TC_V) != 0;
        }
    }

    /** tc of every valid DC: V, ATS and PRI when the unit has them, hardware A/D when it has that. */
    private long tcBase() {
        long tc = DeviceContext.TC_V;
        if (ats()) {
            tc |= DeviceContext.TC_EN_ATS | DeviceContext.TC_EN_PRI;
        }
        if (cap(Reg.CAP_AMO_HWAD)) {
            tc |= DeviceContext.TC_GADE | DeviceContext.TC_SADE;
        }
        return tc;
    }

    /**
     * The DC of a device attached to {@code d}, with host SVA bindings in {@code pd} or a guest
     * PASID table {@code table} (at most one of them).
     */
    private Dc dcFor(RiscvDomain d, ProcessDirectory pd, PasidTableConfig table) {
        switch (d.type()) {
            case UNMANAGED: {
                long iohgatp = DeviceContext.iohgatp(d.iohgatpMode, d.gscid(), d.table().root());
                if (table == null || table.config() == PasidTableConfig.BYPASS) {
                    return new Dc(tcBase(), iohgatp, 0, 0);
                }
                if (table.config() == PasidTableConfig.ABORT) {
                    return Dc.INVALID;
                }
                // §2.1.3.4 with PDTV = 1: fsc is pdtp, its PPN a GPA translated by the G-stage.
                long tc = tcBase() | DeviceContext.TC_PDTV | (table.s1dss() == 2 ? DeviceContext.TC_DPE : 0);
                return new Dc(tc, iohgatp, 0, DeviceContext.pdtp(pdtMode(table.pasidBits()), table.basePtr()));
            }
            case IDENTITY:
                if (pd == null) {
                    return new Dc(tcBase(), 0, 0, 0);
                }
                // DPE = 0: requests without PASID see a Bare first stage over a Bare G-stage.
                return new Dc(tcBase() | DeviceContext.TC_PDTV, 0, 0, pd.pdtp());
            default:
                if (pd == null) {
                    return Dc.INVALID;
                }
                // DPE = 1 with PC 0 left invalid: requests without PASID fault with cause 266.
                return new Dc(tcBase() | DeviceContext.TC_PDTV | DeviceContext.TC_DPE, 0, 0, pd.pdtp());
        }
    }

    private Dc readDc(long address) {
        return new Dc(memory.read64(address + DeviceContext.TC), memory.read64(address + DeviceContext.IOHGATP),
                memory.read64(address + DeviceContext.TA), memory.read64(address + DeviceContext.FSC));
    }

    private void writeDc(long address, Dc dc) {
        memory.write64(address + DeviceContext.IOHGATP, dc.iohgatp());
        memory.write64(address + DeviceContext.TA, dc.ta());
        memory.write64(address + DeviceContext.FSC, dc.fsc());
        memory.write64(address + DeviceContext.TC, dc.tc()); // V last
    }

    /**
     * Replaces a device's DC (§"Changing device directory table entry"; Linux
     * {@code riscv_iommu_iodir_update}): a valid DC is made invalid first and the unit told, so no
     * request sees a torn entry; then the new DC is written with tc last, and IODIR.INVAL_DDT plus
     * the IOTINVALs the <em>old</em> DC calls for are submitted with IOFENCE.C. If the unit
     * refuses a command, the old DC is put back.
     */
    private void installDc(int rid, Dc dc) throws IommuException {
        long address = ddt.dc(rid);
        Dc old = readDc(address);
        if (old.equals(dc)) {
            return;
        }
        try {
            if (old.valid()) {
                memory.write64(address + DeviceContext.TC, old.tc() & ~DeviceContext.TC_V);
                cq.submit(Command.iodirInvalDdt(rid), 0);
            }
            writeDc(address, dc);
            cq.submit(toArray(dcChangeCommands(rid, old)));
        } catch (IommuException e) {
            memory.write64(address + DeviceContext.TC, 0);
            writeDc(address, old);
            try {
                cq.submit(toArray(dcChangeCommands(rid, dc)));
            } catch (IommuException again) {
                // the unit refuses commands: nothing more can be done from here
            }
            throw e;
        }
    }

    /** IODIR.INVAL_DDT and the IOTINVALs a change of a DC whose old value was {@code old} needs. */
    private List<Long> dcChangeCommands(int rid, Dc old) {
        List<Long> cmds = new ArrayList<>();
        add(cmds, Command.iodirInvalDdt(rid), 0);
        if (old.valid()) {
            if (DeviceContext.atpMode(old.iohgatp()) != DeviceContext.ATP_BARE) {
                int gscid = DeviceContext.gscid(old.iohgatp());
                add(cmds, Command.iotinval(false, gscid, -1, false), 0);
                add(cmds, Command.iotinval(true, gscid, -1, false), 0);
            } else if ((old.tc() & DeviceContext.TC_PDTV) != 0) {
                add(cmds, Command.iotinval(false, -1, -1, false), 0);
            } else if (DeviceContext.atpMode(old.fsc()) != DeviceContext.ATP_BARE) {
                int pscid = (int) ((old.ta() & DeviceContext.TA_PSCID_MASK) >>> DeviceContext.TA_PSCID_SHIFT);
                add(cmds, Command.iotinval(false, -1, pscid, false), 0);
            }
            if ((old.tc() & DeviceContext.TC_EN_ATS) != 0) {
                // The device's ATC after the IOMMU's (§"Device Address Translation Cache invalidations").
                add(cmds, Command.atsInval(rid, -1), Command.atsInvalPayload(0, ATS_ALL));
            }
        }
        return cmds;
    }

    // ---- G-stage flushes -------------------------------------------------------------------------

    /**
     * After an unmap (§"Changing second-stage page table entry"): IOTINVAL.GVMA GV = 1 with the
     * GSCID, AV = 1 per 4 KiB page of a small range of leaves, else AV = 0. With guests nested on the
     * domain, their combined entries are tagged by guest virtual addresses a GPA cannot name, so the
     * GSCID's first-stage entries go too (IOTINVAL.VMA GV = 1), and their DCs (IODIR.INVAL_DDT: the DC
     * and PC fields that hold guest PPNs may be cached translated). Devices with ATS get ATS.INVAL.
     */
    private void flushGStage(RiscvDomain d, long iova, long size, boolean leaf) throws IommuException {
        if (!live) {
            return; // closing: the unit is off and its caches were dropped
        }
        List<Long> cmds = new ArrayList<>();
        int gscid = d.gscid();
        long pages = (size + 0xfff) >>> 12;
        if (leaf && pages <= MAX_PAGE_COMMANDS) {
            for (long p = 0; p < pages; p++) {
                add(cmds, Command.iotinval(true, gscid, -1, true), Command.iotinvalAddress(iova + (p << 12)));
            }
        } else {
            add(cmds, Command.iotinval(true, gscid, -1, false), 0);
        }
        if (!d.nestedDevices.isEmpty()) {
            add(cmds, Command.iotinval(false, gscid, -1, false), 0);
            // A nested DC's pdtp and its PCs' fsc hold guest PPNs an implementation may cache translated.
            for (int rid : d.nestedDevices) {
                add(cmds, Command.iodirInvalDdt(rid), 0);
            }
        }
        if (ats()) {
            for (Map.Entry<Integer, RiscvDomain> e : devices.entrySet()) {
                if (e.getValue() == d) {
                    add(cmds, Command.atsInval(e.getKey(), -1), Command.atsInvalPayload(iova, size));
                }
            }
        }
        CommandQueue queue = cq;
        if (queue != null) {
            queue.submit(toArray(cmds));
        }
    }

    private static void add(List<Long> cmds, long dword0, long dword1) {
        cmds.add(dword0);
        cmds.add(dword1);
    }

    private static long[] toArray(List<Long> cmds) {
        long[] a = new long[cmds.size()];
        for (int i = 0; i < a.length; i++) {
            a[i] = cmds.get(i);
        }
        return a;
    }

    // ---- host SVA --------------------------------------------------------------------------------

    /**
     * Shared virtual addressing for a host process (Linux {@code riscv_iommu_sva}): the device's
     * DC gets PDTV = 1 and a PDT of the driver's (the widest PDn advertised), and PC {@code pasid}
     * points at the process's Sv39/48/57 table with a PSCID of its own (§2.2.3). The device must be
     * attached to an IDENTITY domain (requests without PASID pass through: DPE = 0) or a BLOCKED one
     * (DPE = 1 with PC 0 invalid: they fault). Flags: {@link GuestPasidBind#VTD_SRE} sets PC.ta.ENS
     * (supervisor requests allowed); no other flag has a RISC-V meaning.
     */
    @Override
    public synchronized void bindFirstStage(int requesterId, int pasid, long pgd, int addressWidth, int flags)
            throws IommuException {
        checkOpen();
        checkRid(requesterId);
        int pdMode = widestPdtMode();
        if (pdMode == DeviceContext.PDTP_BARE || widestFirstStage() == 0) {
            throw new IommuException(Errno.EOPNOTSUPP, "the unit has no process-directory tables or no first stage");
        }
        int mode = iosatpMode(addressWidth);
        if (mode < 0) {
            throw new IommuException(Errno.EINVAL, "first-stage width " + addressWidth + " is not one the unit walks "
                    + "(39, 48, 57 as capabilities.Sv39/48/57 allow)");
        }
        if ((pgd & 0xfff) != 0 || pgd < 0 || (pgd >>> pas()) != 0) {
            throw new IommuException(Errno.EINVAL, String.format(
                    "first-stage root 0x%x must be 4 KiB aligned inside the %d-bit physical space", pgd, pas()));
        }
        if ((flags & ~GuestPasidBind.VTD_SRE) != 0) {
            throw new IommuException(Errno.EINVAL, "bind flags 0x" + Integer.toHexString(flags)
                    + ": only VTD_SRE (supervisor requests, PC.ta.ENS) has a RISC-V meaning");
        }
        int pidBits = ProcessContext.processIdBits(ProcessContext.levels(pdMode));
        if (pasid < 1 || pasid >>> pidBits != 0) {
            throw new IommuException(Errno.EINVAL, "PASID " + pasid + " is outside 1.." + ((1 << pidBits) - 1));
        }
        RiscvDomain d = devices.get(requesterId);
        if (d == null) {
            throw new IommuException(Errno.ENOENT, String.format("device 0x%x is not attached", requesterId));
        }
        if (d.type() == DomainType.UNMANAGED) {
            throw new IommuException(Errno.EBUSY, String.format("device 0x%x is translated by G-stage domain %d%s: "
                    + "host SVA needs an IDENTITY or BLOCKED domain", requesterId, d.id(),
                    pasidTables.containsKey(requesterId) ? " with a guest PASID table" : ""));
        }
        ProcessDirectory pd = svas.get(requesterId);
        if (pd != null && pd.bindings.containsKey(pasid)) {
            throw new IommuException(Errno.EBUSY, String.format("PASID %d of device 0x%x is bound", pasid, requesterId));
        }
        init();
        int pscid = pscids.allocate();
        boolean fresh = pd == null;
        long pc = -1;
        try {
            if (fresh) {
                pd = ProcessDirectory.create(memory, frames, pdMode);
            }
            pc = pd.pc(pasid);
            // §2.2.3: fsc (iosatp) first, then ta with V.
            memory.write64(pc + ProcessContext.FSC, DeviceContext.iosatp(mode, pgd));
            memory.write64(pc + ProcessContext.TA, ProcessContext.ta(pscid, (flags & GuestPasidBind.VTD_SRE) != 0, false));
            if (fresh) {
                installDc(requesterId, dcFor(d, pd, null));
            } else {
                // §"Changing process directory table entry" (iohgatp is Bare here).
                cq.submit(Command.iodirInvalPdt(requesterId, pasid), 0, Command.iotinval(false, -1, pscid, false), 0);
            }
        } catch (IommuException | RuntimeException e) {
            if (pc >= 0) {
                memory.write64(pc + ProcessContext.TA, 0);
            }
            if (fresh) {
                if (pd != null) {
                    pd.free(); // installDc put the old DC back
                }
            } else {
                try {
                    cq.submit(Command.iodirInvalPdt(requesterId, pasid), 0, Command.iotinval(false, -1, pscid, false), 0);
                } catch (IommuException again) {
                    // the unit refuses commands
                }
            }
            pscids.free(pscid);
            throw e;
        }
        pd.bindings.put(pasid, new ProcessDirectory.Binding(pscid, pgd, mode));
        svas.put(requesterId, pd);
    }

    @Override
    public synchronized void unbindFirstStage(int requesterId, int pasid) throws IommuException {
        checkOpen();
        ProcessDirectory pd = svas.get(requesterId);
        ProcessDirectory.Binding b = pd == null ? null : pd.bindings.get(pasid);
        if (b == null) {
            throw new IommuException(Errno.ENOENT, String.format("PASID %d of device 0x%x is not bound", pasid, requesterId));
        }
        long pc = pd.pc(pasid); // exists: no allocation
        long oldTa = memory.read64(pc + ProcessContext.TA);
        memory.write64(pc + ProcessContext.TA, 0); // V = 0
        List<Long> cmds = new ArrayList<>();
        add(cmds, Command.iodirInvalPdt(requesterId, pasid), 0);
        add(cmds, Command.iotinval(false, -1, b.pscid(), false), 0);
        if (ats()) {
            add(cmds, Command.atsInval(requesterId, pasid), Command.atsInvalPayload(0, ATS_ALL));
        }
        try {
            cq.submit(toArray(cmds));
        } catch (IommuException e) {
            memory.write64(pc + ProcessContext.TA, oldTa);
            throw e;
        }
        pd.bindings.remove(pasid);
        pscids.free(b.pscid());
        if (pd.bindings.isEmpty()) {
            // The last binding: the device goes back to its domain's plain DC and the PDT is freed.
            svas.remove(requesterId);
            try {
                installDc(requesterId, dcFor(devices.get(requesterId), null, null));
            } catch (IommuException e) {
                svas.put(requesterId, pd); // the DC still names the (now empty) PDT
                throw e;
            }
            pd.free();
        }
    }

    /**
     * IOTINVAL.VMA GV = 0, PSCV = 1 with the binding's PSCID (§"Changing first-stage page table
     * entry", the second stage being Bare), AV = 1 per 4 KiB page of a small range, else AV = 0.
     */
    @Override
    public synchronized void invalidateFirstStage(int requesterId, int pasid, long address, long size)
            throws IommuException {
        checkOpen();
        ProcessDirectory pd = svas.get(requesterId);
        ProcessDirectory.Binding b = pd == null ? null : pd.bindings.get(pasid);
        if (b == null) {
            throw new IommuException(Errno.ENOENT, String.format("PASID %d of device 0x%x is not bound", pasid, requesterId));
        }
        if ((address & 0xfff) != 0 || size <= 0 || (size & 0xfff) != 0 || address + size - 1 < address) {
            throw new IommuException(Errno.EINVAL, String.format("bad range 0x%x+0x%x", address, size));
        }
        List<Long> cmds = new ArrayList<>();
        long pages = size >>> 12;
        if (pages <= MAX_PAGE_COMMANDS) {
            for (long p = 0; p < pages; p++) {
                add(cmds, Command.iotinval(false, -1, b.pscid(), true), Command.iotinvalAddress(address + (p << 12)));
            }
        } else {
            add(cmds, Command.iotinval(false, -1, b.pscid(), false), 0);
        }
        if (ats()) {
            add(cmds, Command.atsInval(requesterId, pasid), Command.atsInvalPayload(address, size));
        }
        cq.submit(toArray(cmds));
    }

    // ---- nesting -------------------------------------------------------------------------------

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

    /**
     * A guest's process-directory table over {@code parent}'s G-stage: DC.iohgatp the parent's,
     * PDTV = 1 and fsc = pdtp(PD8/PD17/PD20 by {@code pasidBits}, the guest PDT's GPA). TRANSLATE
     * does that (s1dss 1: requests without PASID use the G-stage only, DPE = 0; s1dss 2: they use
     * process id 0, DPE = 1); BYPASS gives the plain G-stage DC; ABORT an invalid DC.
     */
    @Override
    public synchronized void attachPasidTable(IommuDomain parent, int requesterId, PasidTableConfig config)
            throws IommuException {
        RiscvDomain d = own(parent);
        if (!nestingInfo().supports(NestingFeature.PASID_TABLE)) {
            throw new IommuException(Errno.EOPNOTSUPP, "the unit cannot nest (needs a first stage, a G-stage and PDTs)");
        }
        if (d.type() != DomainType.UNMANAGED) {
            throw new IommuException(Errno.EINVAL, "a guest PASID table nests on an UNMANAGED (G-stage) domain");
        }
        validate(d, config);
        if (devices.get(requesterId) != d) {
            throw new IommuException(Errno.ENOENT, String.format("device 0x%x is not attached to domain %d", requesterId,
                    d.id()));
        }
        boolean wasNested = !d.nestedDevices.add(requesterId); // before the DC: a racing unmap must flush combined entries
        try {
            installDc(requesterId, dcFor(d, null, config));
        } catch (IommuException e) {
            if (!wasNested) {
                d.nestedDevices.remove(requesterId);
            }
            throw e;
        }
        pasidTables.put(requesterId, config);
    }

    private void validate(RiscvDomain d, PasidTableConfig c) throws IommuException {
        if (!FORMAT.equals(c.format())) {
            throw new IommuException(Errno.EINVAL, "PASID table format must be " + FORMAT + ", not " + c.format());
        }
        if (c.config() < PasidTableConfig.TRANSLATE || c.config() > PasidTableConfig.ABORT) {
            throw new IommuException(Errno.EINVAL, "config must be 1 (translate), 2 (bypass) or 3 (abort), not " + c.config());
        }
        if (c.config() != PasidTableConfig.TRANSLATE) {
            return; // the table fields mean nothing unless the first stage translates
        }
        if (c.s1fmt() != 0) {
            throw new IommuException(Errno.EINVAL, "s1fmt must be 0 (the PDT's depth comes from pasidBits), not " + c.s1fmt());
        }
        if (c.s1dss() != 1 && c.s1dss() != 2) {
            throw new IommuException(Errno.EINVAL, "s1dss must be 1 (requests without PASID bypass the first stage) or "
                    + "2 (they use process id 0), not " + c.s1dss()
                    + (c.s1dss() == 0 ? ": a DC with PDTV = 1 cannot terminate them" : ""));
        }
        if (pdtMode(c.pasidBits()) < 0) {
            throw new IommuException(Errno.EINVAL, "pasidBits must be 8, 17 or 20 as capabilities.PD8/PD17/PD20 allow, not "
                    + c.pasidBits());
        }
        int gpaBits = d.inputAddressBits();
        if ((c.basePtr() & 0xfff) != 0 || c.basePtr() < 0 || (c.basePtr() >>> gpaBits) != 0) {
            throw new IommuException(Errno.EINVAL, String.format(
                    "process-directory table 0x%x must be 4 KiB aligned inside the %d-bit guest-physical space",
                    c.basePtr(), gpaBits));
        }
    }

    @Override
    public synchronized void detachPasidTable(IommuDomain parent, int requesterId) throws IommuException {
        RiscvDomain d = own(parent);
        if (devices.get(requesterId) != d || !pasidTables.containsKey(requesterId)) {
            throw new IommuException(Errno.ENOENT, String.format("device 0x%x has no guest PASID table on domain %d",
                    requesterId, d.id()));
        }
        installDc(requesterId, dcFor(d, null, null));
        pasidTables.remove(requesterId);
        d.nestedDevices.remove(requesterId);
    }

    /**
     * Guest invalidations, always within the parent's GSCID so a guest can only reach its own
     * entries. The PSCIDs live in the guest's PCs, so {@code archId} is the guest PSCID (-1: not
     * known) and {@code owner} is not consulted. IOTLB: ADDR → IOTINVAL.VMA GV, PSCV when archId is
     * given, AV per 4 KiB page (or without AV for large ranges); PASID → IOTINVAL.VMA GV (+PSCV);
     * DOMAIN → IOTINVAL.VMA GV. PASID cache: PASID → IODIR.INVAL_PDT, DOMAIN → IODIR.INVAL_DDT (which
     * drops the device's PCs too). DEV_IOTLB → ATS.INVAL when the unit has ATS. One IOFENCE.C ends it.
     */
    @Override
    public synchronized void cacheInvalidate(IommuDomain domain, int requesterId, CacheInvalidation inv, PasidSet owner)
            throws IommuException {
        RiscvDomain d = own(domain);
        if (d.type() != DomainType.UNMANAGED) {
            throw new IommuException(Errno.EINVAL, "guest invalidations apply to an UNMANAGED (G-stage) domain");
        }
        if (inv.archId() > 0xf_ffffL) {
            throw new IommuException(Errno.EINVAL, "PSCID " + inv.archId() + " is wider than 20 bits");
        }
        Set<CacheType> caches = inv.caches();
        boolean perDevice = caches.contains(CacheType.PASID) || (caches.contains(CacheType.DEV_IOTLB) && ats());
        if (perDevice && devices.get(requesterId) != d) {
            throw new IommuException(Errno.ENOENT, String.format("device 0x%x is not attached to domain %d", requesterId,
                    d.id()));
        }
        int gscid = d.gscid();
        int pscid = (int) inv.archId();
        List<Long> cmds = new ArrayList<>();
        if (caches.contains(CacheType.PASID)) {
            if (inv.granularity() == org.iommulab.api.invalidation.Granularity.PASID) {
                add(cmds, Command.iodirInvalPdt(requesterId, inv.pasid()), 0);
            } else {
                add(cmds, Command.iodirInvalDdt(requesterId), 0);
            }
        }
        if (caches.contains(CacheType.IOTLB)) {
            switch (inv.granularity()) {
                case DOMAIN:
                    add(cmds, Command.iotinval(false, gscid, -1, false), 0);
                    break;
                case PASID:
                    add(cmds, Command.iotinval(false, gscid, pscid, false), 0);
                    break;
                default:
                    long pages = (inv.size() + 0xfff) >>> 12;
                    if (pages <= MAX_PAGE_COMMANDS) {
                        for (long p = 0; p < pages; p++) {
                            add(cmds, Command.iotinval(false, gscid, pscid, true),
                                    Command.iotinvalAddress(inv.address() + (p << 12)));
                        }
                    } else {
                        add(cmds, Command.iotinval(false, gscid, pscid, false), 0);
                    }
                    break;
            }
        }
        if (caches.contains(CacheType.DEV_IOTLB) && ats()) {
            int pasid = inv.pasid();
            long payload = inv.granularity() == org.iommulab.api.invalidation.Granularity.ADDR
                    ? Command.atsInvalPayload(inv.address(), inv.size()) : Command.atsInvalPayload(0, ATS_ALL);
            add(cmds, Command.atsInval(requesterId, pasid), payload);
        }
        cq.submit(toArray(cmds));
    }

    // ---- page requests ---------------------------------------------------------------------------

    /**
     * Answers a page request group with ATS.PRGR (Linux {@code riscv_iommu_page_response}):
     * SUCCESS → Success (0), INVALID → Invalid Request (1), FAILURE → Response Failure (0xF).
     *
     * @throws IommuException {@code ENOENT} unless the group was reported and is still unanswered
     */
    @Override
    public void pageResponse(int requesterId, int pasid, int groupIndex, PageResponse response) throws IommuException {
        checkOpen();
        pendingGroups.answer(requesterId, pasid, groupIndex, response, this::respond);
    }

    /** ATS.PRGR (§3.1.4): RID, PV/PID, payload PRG index 40:32 and response code 47:44. */
    private void respond(int rid, int pasid, int group, PageResponse response) throws IommuException {
        int code = switch (response) {
            case SUCCESS -> Command.PRGR_SUCCESS;
            case INVALID -> Command.PRGR_INVALID_REQUEST;
            case FAILURE -> Command.PRGR_RESPONSE_FAILURE;
        };
        CommandQueue queue = cq;
        if (queue == null) {
            throw new IommuException(Errno.ENODEV, "IOMMU " + name + " is closed");
        }
        queue.submit(Command.atsPrgr(rid, pasid < 0 ? -1 : pasid), Command.prgrPayload(group, code));
    }

    @Override
    public void addFaultListener(FaultListener listener) {
        listeners.add(listener);
    }

    @Override
    public void removeFaultListener(FaultListener listener) {
        listeners.remove(listener);
    }

    // ---- interrupts --------------------------------------------------------------------------

    /** The wired interrupt: ipsr bits that became pending (§"Guidelines for handling interrupts"). */
    private void interrupt(int ipsr) {
        if ((ipsr & Reg.IPSR_FIP) != 0) {
            faultDrainer.interrupt();
        }
        if ((ipsr & Reg.IPSR_PIP) != 0) {
            pageRequestDrainer.interrupt();
        }
        if ((ipsr & Reg.IPSR_CIP) != 0) {
            try {
                hw.write(Reg.IPSR, Reg.IPSR_CIP, 4); // the driver polls the command queue
            } catch (IommuException e) {
                // a valid offset: cannot happen
            }
        }
    }

    /**
     * Reads the records from head to tail of a fault or page-request queue: clears the queue's
     * error bits (fqof/fqmf, pqof/pqmf: RW1C, which re-enables recording) and its ipsr bit first,
     * then consumes, then writes the head. Under the queue lock, so close cannot free the queue
     * meanwhile.
     */
    private List<long[]> consume(int csrReg, int headReg, int tailReg, int ipsrBit, boolean faults) {
        List<long[]> records = new ArrayList<>();
        synchronized (queueLock) {
            long base = faults ? fq : pq;
            if (!live || base == 0) {
                return records;
            }
            int words = (faults ? FaultRecord.SIZE : PageRequestRecord.SIZE) / 8;
            try {
                int csr = (int) hw.read(csrReg, 4);
                int errors = csr & (Reg.CSR_MF | Reg.CSR_OF);
                if (errors != 0) {
                    hw.write(csrReg, Reg.CSR_EN | Reg.CSR_IE | errors, 4);
                }
                hw.write(Reg.IPSR, ipsrBit, 4);
                int mask = QUEUE_ENTRIES - 1;
                int head = (int) hw.read(headReg, 4) & mask;
                int tail = (int) hw.read(tailReg, 4) & mask;
                for (int guard = 0; head != tail && guard < QUEUE_ENTRIES; guard++) {
                    long at = base + 8L * words * head;
                    long[] r = new long[words];
                    for (int w = 0; w < words; w++) {
                        r[w] = memory.read64(at + 8L * w);
                    }
                    records.add(r);
                    head = (head + 1) & mask;
                }
                hw.write(headReg, head, 4);
            } catch (IommuException | MemoryAccessException e) {
                // valid offsets and the driver's own frames: cannot happen
            }
        }
        return records;
    }

    private void drainFaults() {
        for (long[] r : consume(Reg.FQCSR, Reg.FQH, Reg.FQT, Reg.IPSR_FIP, true)) {
            IommuFault f = decodeFault(r);
            for (FaultListener l : listeners) {
                try {
                    l.fault(f);
                } catch (RuntimeException e) {
                    // a listener's failure must not stop fault handling
                }
            }
        }
    }

    /**
     * A fault record (§3.2) as an {@link IommuFault}. RISC-V page-fault causes do not tell "not
     * present" from "not permitted", so the driver decides as an OS would, by looking at the table
     * the device (and process id) uses: a valid leaf for the address means PERMISSION, else
     * TRANSLATION.
     */
    IommuFault decodeFault(long[] r) {
        long header = r[0];
        int cause = FaultRecord.cause(header);
        int did = FaultRecord.deviceId(header);
        int pid = FaultRecord.processId(header);
        long iotval = r[2];
        long iotval2 = r[3];
        int access = switch (FaultRecord.ttyp(header)) {
            case FaultRecord.TTYP_UNTRANSLATED_EXEC, 5 -> Access.READ | Access.EXEC;
            case FaultRecord.TTYP_UNTRANSLATED_READ, 6 -> Access.READ;
            case FaultRecord.TTYP_UNTRANSLATED_WRITE, 7 -> Access.WRITE;
            default -> 0;
        };
        if ((header & FaultRecord.PRIV) != 0) {
            access |= Access.PRIV;
        }
        FaultKind kind;
        Stage stage;
        switch (cause) {
            case FaultRecord.INSTRUCTION_PAGE_FAULT, FaultRecord.READ_PAGE_FAULT, FaultRecord.WRITE_PAGE_FAULT:
                stage = Stage.STAGE1;
                kind = firstStageMapped(did, pid, iotval) ? FaultKind.PERMISSION : FaultKind.TRANSLATION;
                break;
            case FaultRecord.INSTRUCTION_GUEST_PAGE_FAULT, FaultRecord.READ_GUEST_PAGE_FAULT,
                    FaultRecord.WRITE_GUEST_PAGE_FAULT: {
                stage = Stage.STAGE2;
                RiscvDomain d = devices.get(did);
                long gpa = iotval2 & ~3L;
                kind = d != null && d.table() != null && !d.isFreed() && d.iovaToPhys(gpa) != -1 ? FaultKind.PERMISSION
                        : FaultKind.TRANSLATION;
                break;
            }
            case FaultRecord.INSTRUCTION_ACCESS_FAULT, FaultRecord.READ_ACCESS_FAULT, FaultRecord.WRITE_ACCESS_FAULT,
                    FaultRecord.PT_DATA_CORRUPTION:
                stage = Stage.STAGE1;
                kind = FaultKind.WALK_EXTERNAL_ABORT;
                break;
            case FaultRecord.ALL_INBOUND_DISALLOWED:
                stage = Stage.CONFIG;
                kind = FaultKind.BLOCKED;
                break;
            default:
                stage = Stage.CONFIG;
                kind = FaultKind.CONFIGURATION;
                break;
        }
        return new IommuFault(name, did, pid < 0 ? Pasids.NO_PASID : pid, iotval, access, kind, stage, cause,
                FaultRecord.causeName(cause));
    }

    /** @return whether the first-stage table the device uses for {@code pid} has a valid leaf at {@code va} */
    private boolean firstStageMapped(int did, int pid, long va) {
        try {
            ProcessDirectory pd = svas.get(did);
            if (pd != null) {
                ProcessDirectory.Binding b = pd.bindings.get(pid);
                return b != null && leafAt(b.pgd(), levels(b.iosatpMode()), va, LongUnaryOperator.identity());
            }
            RiscvDomain d = devices.get(did);
            PasidTableConfig c = pasidTables.get(did);
            if (d == null || c == null || c.config() != PasidTableConfig.TRANSLATE || d.isFreed()) {
                return false;
            }
            int process = pid >= 0 ? pid : c.s1dss() == 2 ? 0 : -1;
            if (process < 0 || process >>> c.pasidBits() != 0) {
                return false;
            }
            // The guest's PDT and first-stage table are GPAs: read them through the G-stage.
            LongUnaryOperator g = d::iovaToPhys;
            long table = c.basePtr();
            int levels = ProcessContext.levels(pdtMode(c.pasidBits()));
            for (int level = levels - 1; level > 0; level--) {
                long e = read(g, table + 8L * ProcessContext.pdi(process, level));
                if ((e & 1) == 0) {
                    return false;
                }
                table = Reg.ppnAddress(e);
            }
            long pc = table + (long) ProcessContext.SIZE * ProcessContext.pdi(process, 0);
            long ta = read(g, pc + ProcessContext.TA);
            long fsc = read(g, pc + ProcessContext.FSC);
            return (ta & ProcessContext.TA_V) != 0
                    && leafAt(DeviceContext.atpRoot(fsc), levels(DeviceContext.atpMode(fsc)), va, g);
        } catch (MemoryAccessException | NotMapped e) {
            return false;
        }
    }

    /** An address a table walk could not translate or read. */
    private static final class NotMapped extends RuntimeException {
        private static final long serialVersionUID = 1L;

        NotMapped() {
            super(null, null, false, false);
        }
    }

    private long read(LongUnaryOperator toPa, long address) {
        long pa = toPa.applyAsLong(address);
        if (pa < 0) {
            throw new NotMapped();
        }
        return memory.read64(pa);
    }

    /** A software walk of an Sv39/48/57 table (privileged ISA §4.3.2): is there a valid leaf at {@code va}? */
    private boolean leafAt(long root, int levels, long va, LongUnaryOperator toPa) {
        long table = root;
        for (int depth = 0; depth < levels; depth++) {
            int shift = 12 + 9 * (levels - 1 - depth);
            long pte = read(toPa, table + 8L * ((va >>> shift) & 511));
            if ((pte & RiscvPaging.V) == 0) {
                return false;
            }
            if ((pte & (RiscvPaging.R | RiscvPaging.W | RiscvPaging.X)) != 0) {
                return true;
            }
            table = ((pte >>> 10) & ((1L << 44) - 1)) << 12;
        }
        return false;
    }

    /**
     * Hands the page requests from pqh to pqt to the listeners (§3.3; Linux
     * {@code riscv_iommu_priq_process}); a Stop Marker (R = W = 0, L = 1) is skipped. The last
     * request of a group makes the group pending until {@link #pageResponse}; with no listener
     * the driver answers it Invalid Request itself.
     */
    private void drainPageRequests() {
        for (long[] r : consume(Reg.PQCSR, Reg.PQH, Reg.PQT, Reg.IPSR_PIP, false)) {
            PageRequest req = decodePageRequest(r);
            if (req == null) {
                continue;
            }
            Object[] targets = listeners.toArray(); // one snapshot decides who hears it and who answers
            if (targets.length == 0 || closed) {
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
                pendingGroups.add(req.requesterId(), req.pasid(), req.groupIndex());
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

    /** At close: queued groups become pending, so that close answers them too. */
    private void drainPageRequestsForClose() {
        for (long[] r : consume(Reg.PQCSR, Reg.PQH, Reg.PQT, Reg.IPSR_PIP, false)) {
            PageRequest req = decodePageRequest(r);
            if (req != null && req.lastInGroup()) {
                pendingGroups.add(req.requesterId(), req.pasid(), req.groupIndex());
            }
        }
    }

    /** A page-request record (§3.3): header DID/PV/PID/PRIV/EXEC, payload R/W/L/PRGI/address; null for a Stop Marker. */
    private PageRequest decodePageRequest(long[] r) {
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

    @Override
    public String toString() {
        return "riscv driver of " + name + (closed ? " (closed)" : "");
    }
}
