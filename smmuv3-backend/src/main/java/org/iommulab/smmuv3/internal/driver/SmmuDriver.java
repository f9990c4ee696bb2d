package org.iommulab.smmuv3.internal.driver;

import java.util.ArrayList;
import java.util.BitSet;
import java.util.EnumSet;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.function.LongFunction;
import java.util.function.LongSupplier;

import org.iommulab.api.errno.Errno;
import org.iommulab.api.errno.IommuException;
import org.iommulab.api.fault.FaultListener;
import org.iommulab.api.fault.IommuFault;
import org.iommulab.api.fault.PageRequest;
import org.iommulab.api.fault.PageResponse;
import org.iommulab.api.invalidation.CacheInvalidation;
import org.iommulab.api.invalidation.CacheType;
import org.iommulab.api.memory.FrameAllocator;
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
import org.iommulab.api.spi.ReservedRegion;
import org.iommulab.api.translation.Access;
import org.iommulab.api.translation.Stage;
import org.iommulab.pgtable.FlushOps;
import org.iommulab.pgtable.IoPageTable;
import org.iommulab.pgtable.format.ArmGranule;
import org.iommulab.pgtable.format.ArmStage2;
import org.iommulab.pgtable.unit.Drainer;
import org.iommulab.pgtable.unit.ModeledInstance;
import org.iommulab.pgtable.unit.PendingPageRequests;
import org.iommulab.pgtable.unit.StateWords;
import org.iommulab.smmuv3.internal.hw.SmmuHardware;

/**
 * The SMMUv3 host driver: programs the hardware model as Linux's arm-smmu-v3 driver does, through
 * its registers, the stream table, the command queue and the event queue.
 *
 * <p>Bring-up is lazy (on the first domain allocation), so a register-level session that never uses
 * the driver finds the unit as reset left it. Every frame is allocated before any register is
 * written and released if one is missing. Stream table: two-level with SPLIT 8 when IDR0.ST_LEVEL
 * allows it (the L1 table is one frame, so LOG2SIZE is capped at 8 + 9 = 17 StreamID bits; each
 * L2 table of 256 STEs is allocated when a stream in its range is first attached and kept until
 * {@link #close()}), otherwise linear with LOG2SIZE capped at 8 (256 STEs, 4 frames). Unused STEs
 * of an allocated L2 table abort, as Linux's do with {@code disable_bypass}. Command, event and
 * (when IDR0.PRI is set) PRI queues have LOG2SIZE 8 (capped by IDR1.CMDQS / EVENTQS / PRIQS).
 * Page requests reach {@link FaultListener#pageRequest} and are answered with
 * {@link #pageResponse}; with no listener the driver denies them itself, and it denies those
 * without a substream id (or with SSID 0) at once, before listeners hear of them.
 *
 * <p>Every command batch ends with CMD_SYNC; the unit consumes the queue synchronously when PROD is
 * written, and the driver then checks that CONS reached PROD and GERROR.CMDQ_ERR is clear. A
 * command the unit refuses is reported as {@code EIO} after the error is acknowledged and the
 * command replaced by a CMD_SYNC, as Linux's {@code arm_smmu_cmdq_skip_err} does.
 *
 * <p>Thread safe: configuration changes are serialized by the driver's monitor, command submission
 * by the queue lock (page-table flushes submit commands without the monitor).
 */
public final class SmmuDriver implements IommuDriver {
    /**
     * The software MSI window Linux's {@code arm_smmu_get_resv_regions} reserves
     * ({@code MSI_IOVA_BASE} 0x8000000, 1 MiB): the driver maps MSI doorbells there.
     */
    private static final ReservedRegion SW_MSI_WINDOW = new ReservedRegion(0x800_0000L, 0x10_0000L, ReservedRegion.Kind.SW_MSI);

    // Registers (Arm IHI 0070 §6.3).
    private static final int IDR0 = 0x00;
    private static final int IDR1 = 0x04;
    private static final int IDR3 = 0x0c;
    private static final int IDR5 = 0x14;
    private static final int CR0 = 0x20;
    private static final int CR0ACK = 0x24;
    private static final int CR2 = 0x2c;
    private static final int GBPA = 0x44;
    private static final int IRQ_CTRL = 0x50;
    private static final int GERROR = 0x60;
    private static final int GERRORN = 0x64;
    private static final int STRTAB_BASE = 0x80;
    private static final int STRTAB_BASE_CFG = 0x88;
    private static final int CMDQ_BASE = 0x90;
    private static final int CMDQ_PROD = 0x98;
    private static final int CMDQ_CONS = 0x9c;
    private static final int EVENTQ_BASE = 0xa0;
    private static final int EVENTQ_PROD = 0x100a8;
    private static final int EVENTQ_CONS = 0x100ac;
    private static final int PRIQ_BASE = 0xc0;
    private static final int PRIQ_PROD = 0x100c8;
    private static final int PRIQ_CONS = 0x100cc;
    private static final int SMMUEN = 1;
    private static final int CR2_RECINVSID = 1 << 1;
    private static final int PRIQEN = 1 << 1;
    private static final int EVTQEN = 1 << 2;
    private static final int CMDQEN = 1 << 3;
    private static final int IRQ_GERROR = 1;
    private static final int IRQ_PRIQ = 1 << 1;
    private static final int IRQ_EVENTQ = 1 << 2;
    private static final int GERROR_CMDQ_ERR = 1;
    private static final int OVFLG = 1 << 31;

    // Commands (§4).
    private static final int CMD_CFGI_STE = 0x03;
    private static final int CMD_CFGI_STE_RANGE = 0x04;
    private static final int CMD_CFGI_CD = 0x05;
    private static final int CMD_CFGI_CD_ALL = 0x06;
    private static final int CMD_TLBI_NH_ALL = 0x10;
    private static final int CMD_TLBI_NH_ASID = 0x11;
    private static final int CMD_TLBI_NH_VA = 0x12;
    private static final int CMD_TLBI_NH_VAA = 0x13;
    private static final int CMD_TLBI_S12_VMALL = 0x28;
    private static final int CMD_TLBI_S2_IPA = 0x2a;
    private static final int CMD_TLBI_NSNH_ALL = 0x30;
    private static final int CMD_PRI_RESP = 0x41;
    private static final int CMD_SYNC = 0x46;

    // STE Config (§5.2).
    private static final int STE_ABORT = 0;
    private static final int STE_BYPASS = 4;
    private static final int STE_S2 = 6;
    private static final int STE_NESTED = 7;
    /** STE.Config 0b101: stage 1 translates, stage 2 bypassed (a host process's SVA). */
    private static final int STE_S1 = 5;

    private static final int SPLIT = 8;
    private static final int LINEAR_LOG2 = 8;
    private static final int L2_FRAMES = (64 << SPLIT) / 4096;
    private static final int QUEUE_LOG2 = 8;
    // CMD_PRI_RESP Resp (§4.7.1).
    private static final int PRI_RESP_DENY = 0;
    private static final int PRI_RESP_FAIL = 1;
    private static final int PRI_RESP_SUCC = 2;
    /** Beyond this many per-page commands a range flush invalidates the whole VMID or ASID. */
    private static final int MAX_PAGE_COMMANDS = 64;

    private final String name;
    private final SmmuHardware hw;
    private final PhysicalMemory memory;
    private final FrameAllocator frames;
    private final List<FaultListener> listeners = new CopyOnWriteArrayList<>();
    private final int idr0;
    private final int idr1;
    private final int idr3;
    private final int idr5;
    private final boolean twoLevel;
    /** STRTAB_BASE_CFG.LOG2SIZE: StreamIDs at or beyond 2^this are rejected with EINVAL. */
    private final int strtabLog2;
    private final int cmdqLog2;
    private final int eventqLog2;
    /** PRIQ_BASE.LOG2SIZE, or -1 when the unit has no PRI (IDR0.PRI clear) and the driver runs no PRI queue. */
    private final int priqLog2;

    private final BitSet ids = new BitSet();
    private final Map<Integer, SmmuDomain> domains = new HashMap<>();
    /** Attached streams and their domain. */
    private final Map<Integer, SmmuDomain> streams = new HashMap<>();
    /** Streams with a guest PASID table attached, and its configuration. */
    private final Map<Integer, PasidTableConfig> pasidTables = new HashMap<>();
    /** Streams whose STE points at a CD table of the driver's own, for first-stage (SVA) bindings. */
    private final Map<Integer, Sva> svas = new HashMap<>();
    private final BitSet asids = new BitSet();

    /** A stream's driver-owned linear CD table and the ASID of each bound SSID. */
    private static final class Sva {
        final long table;
        final int frames;
        final int cdMax;
        final Map<Integer, Integer> asidBySsid = new HashMap<>();

        Sva(long table, int frames, int cdMax) {
            this.table = table;
            this.frames = frames;
            this.cdMax = cdMax;
        }
    }
    /** L2 stream tables by L1 index. */
    private final Map<Integer, Long> l2Tables = new HashMap<>();

    private final Object cmdqLock = new Object();
    /** Event queue and PRI queue interrupt handlers (Linux {@code arm_smmu_evtq_thread}, {@code arm_smmu_priq_thread}). */
    private final Drainer events = new Drainer(this::drainEvents);
    private final Drainer pageRequests = new Drainer(this::drainPageRequests);
    /** Page request groups handed to listeners and not yet answered. */
    private final PendingPageRequests pendingGroups = new PendingPageRequests();
    private volatile boolean live;
    private volatile boolean closed;
    private long strtab;
    private int strtabFrames;
    private long cmdq;
    private long eventq;
    private int eventqFrames;
    private long priq;
    private int priqFrames;
    private int cmdProd;

    /**
     * @param name the instance name, for fault reports
     * @param hw the hardware model
     * @param memory the memory the structures live in
     * @param frames where structure frames come from
     */
    public SmmuDriver(String name, SmmuHardware hw, PhysicalMemory memory, FrameAllocator frames) {
        this.name = name;
        this.hw = hw;
        this.memory = memory;
        this.frames = frames;
        this.idr0 = readReg(IDR0);
        this.idr1 = readReg(IDR1);
        this.idr3 = readReg(IDR3);
        this.idr5 = readReg(IDR5);
        int sidSize = idr1 & 0x3f;
        this.twoLevel = ((idr0 >>> 27) & 3) == 1 && sidSize > SPLIT;
        this.strtabLog2 = twoLevel ? Math.min(sidSize, SPLIT + 9) : Math.min(sidSize, LINEAR_LOG2);
        this.cmdqLog2 = Math.min(QUEUE_LOG2, (idr1 >>> 21) & 0x1f);
        this.eventqLog2 = Math.min(QUEUE_LOG2, (idr1 >>> 16) & 0x1f);
        this.priqLog2 = (idr0 & (1 << 16)) != 0 ? Math.min(QUEUE_LOG2, (idr1 >>> 11) & 0x1f) : -1; // IDR1.PRIQS 15:11
    }

    private int readReg(int offset) {
        try {
            return (int) hw.read(offset, 4);
        } catch (IommuException e) {
            throw new IllegalStateException(e); // valid offsets: cannot happen
        }
    }

    private boolean s1p() {
        return (idr0 & 2) != 0;
    }

    private boolean s2p() {
        return (idr0 & 1) != 0;
    }

    private int ssidSize() {
        return (idr1 >>> 6) & 0x1f;
    }

    private int oasBits() {
        int[] sizes = {32, 36, 40, 42, 44, 48, 52, 52};
        return sizes[idr5 & 7];
    }

    // ---- bring-up ----------------------------------------------------------------------------

    private static int framesFor(long bytes) {
        return (int) Math.max(1, (bytes + 4095) / 4096);
    }

    /**
     * Takes the unit over: stream table and queues are allocated first (and released if one is
     * missing), then the registers programmed, the configuration and TLBs invalidated, and the
     * event queue and translation enabled (Linux {@code arm_smmu_device_reset}).
     */
    private void init() throws IommuException {
        if (closed) {
            throw new IommuException(Errno.ENODEV, "IOMMU " + name + " is closed");
        }
        if (live) {
            return;
        }
        if (cmdqLog2 < 1) {
            // A command and its CMD_SYNC must fit (Linux refuses queues smaller than a batch).
            throw new IommuException(Errno.ENODEV, "IOMMU " + name + ": a command queue of one entry (IDR1.CMDQS 0) is too small");
        }
        int stFrames = twoLevel ? framesFor(8L << (strtabLog2 - SPLIT)) : framesFor(64L << strtabLog2);
        int cqFrames = framesFor(16L << cmdqLog2);
        int eqFrames = framesFor(32L << eventqLog2);
        int pqFrames = priqLog2 < 0 ? 0 : framesFor(16L << priqLog2);
        long st = 0;
        long cq = 0;
        long eq = 0;
        long pq = 0;
        try {
            st = frames.allocateFrames(stFrames);
            cq = frames.allocateFrames(cqFrames);
            eq = frames.allocateFrames(eqFrames);
            if (pqFrames > 0) {
                pq = frames.allocateFrames(pqFrames);
            }
        } catch (IommuException e) {
            freeQuietly(pq, pqFrames);
            freeQuietly(eq, eqFrames);
            freeQuietly(cq, cqFrames);
            freeQuietly(st, stFrames);
            throw e;
        }
        strtab = st;
        strtabFrames = stFrames;
        cmdq = cq;
        eventq = eq;
        eventqFrames = eqFrames;
        priq = pq;
        priqFrames = pqFrames;
        int queues = CMDQEN | EVTQEN | (priq != 0 ? PRIQEN : 0);
        try {
            if (!twoLevel) {
                for (int sid = 0; sid < 1 << strtabLog2; sid++) {
                    writeSte(steAddress(sid), abortSte());
                }
            }
            hw.write(CR0, 0, 4);
            ack(0);
            hw.write(STRTAB_BASE, strtab, 8);
            hw.write(STRTAB_BASE_CFG, strtabLog2 | (twoLevel ? SPLIT << 6 | 1 << 16 : 0), 4);
            hw.write(CMDQ_BASE, cmdq | cmdqLog2, 8);
            hw.write(CMDQ_PROD, 0, 4);
            hw.write(CMDQ_CONS, 0, 4);
            cmdProd = 0;
            hw.write(EVENTQ_BASE, eventq | eventqLog2, 8);
            hw.write(EVENTQ_PROD, 0, 4);
            hw.write(EVENTQ_CONS, 0, 4);
            if (priq != 0) {
                hw.write(PRIQ_BASE, priq | priqLog2, 8);
                hw.write(PRIQ_PROD, 0, 4);
                hw.write(PRIQ_CONS, 0, 4);
            }
            hw.write(CR2, CR2_RECINVSID, 4); // record invalid StreamIDs (Linux: PTM | RECINVSID; no BTM here)
            hw.write(CR0, CMDQEN, 4);
            ack(CMDQEN);
            live = true; // the command queue is usable from here on
            submit(new long[] {CMD_CFGI_STE_RANGE, 31, CMD_TLBI_NSNH_ALL, 0});
            hw.write(CR0, queues, 4);
            ack(queues);
            hw.setEventInterrupt(events::interrupt);
            hw.setPriInterrupt(pageRequests::interrupt);
            hw.write(IRQ_CTRL, IRQ_EVENTQ | IRQ_GERROR | (priq != 0 ? IRQ_PRIQ : 0), 4);
            hw.write(CR0, queues | SMMUEN, 4);
            ack(queues | SMMUEN);
        } catch (IommuException e) {
            disableQuietly();
            live = false;
            freeQuietly(priq, priqFrames);
            freeQuietly(eventq, eventqFrames);
            freeQuietly(cmdq, cqFrames);
            freeQuietly(strtab, strtabFrames);
            strtab = cmdq = eventq = priq = 0;
            throw e;
        }
    }

    private void ack(int cr0) throws IommuException {
        if ((hw.read(CR0ACK, 4) & 0x1f) != cr0) {
            throw new IommuException(Errno.EIO, String.format("CR0ACK did not follow CR0 = 0x%x", cr0));
        }
    }

    private void disableQuietly() {
        hw.setEventInterrupt(null);
        hw.setPriInterrupt(null);
        try {
            hw.write(IRQ_CTRL, 0, 4);
            hw.write(GBPA, (1L << 31) | (1L << 20), 4); // UPDATE + ABORT: no DMA passes untranslated
            hw.write(CR0, 0, 4);
        } catch (IommuException e) {
            // valid offsets: cannot happen
        }
    }

    private void freeQuietly(long address, int count) {
        if (address != 0) {
            try {
                frames.freeFrames(address, count);
            } catch (IommuException e) {
                // not allocated: nothing to release
            }
        }
    }

    /**
     * Disables the unit first (GBPA aborts, CR0 cleared), so that no walk can reach a freed frame,
     * then frees every domain, L2 stream table, the stream table and the queues. Later calls fail
     * with ENODEV; idempotent.
     */
    public synchronized void close() {
        if (closed) {
            return;
        }
        if (live) {
            // IommuInstance.close: pending page requests are answered INVALID, queued ones included.
            for (PageRequest r : consume(PRIQ_PROD, PRIQ_CONS, () -> priq, Math.max(priqLog2, 0), 16,
                    e -> decodePageRequest(memory.read64(e), memory.read64(e + 8)))) {
                if (r.lastInGroup()) {
                    pendingGroups.add(r.requesterId(), r.pasid(), r.groupIndex());
                }
            }
            pendingGroups.denyAll(-1, this::respond);
        }
        closed = true;
        boolean wasLive;
        synchronized (cmdqLock) {
            wasLive = live;
            if (wasLive) {
                disableQuietly();
            }
            live = false;
        }
        // Page tables are destroyed outside the queue lock: an unmap flushes under its table lock.
        for (SmmuDomain d : domains.values()) {
            d.free();
        }
        domains.clear();
        ids.clear();
        streams.clear();
        pasidTables.clear();
        pendingGroups.clear();
        for (long l2 : l2Tables.values()) {
            freeQuietly(l2, L2_FRAMES);
        }
        l2Tables.clear();
        // SVA bindings still in place: the unit is off, so their CD tables can go (they were leaked before).
        for (Sva sva : svas.values()) {
            freeQuietly(sva.table, sva.frames);
        }
        svas.clear();
        asids.clear();
        if (wasLive) {
            freeQuietly(priq, priqFrames);
            freeQuietly(eventq, eventqFrames);
            freeQuietly(cmdq, framesFor(16L << cmdqLog2));
            freeQuietly(strtab, strtabFrames);
        }
        strtab = cmdq = eventq = priq = 0;
    }

    // ---- IommuDriver -------------------------------------------------------------------------

    @Override
    public NestingInfo nestingInfo() {
        long pageSizes = 0;
        if ((idr5 & (1 << 4)) != 0) {
            pageSizes |= (1L << 12) | (1L << 21) | (1L << 30);
        }
        if ((idr5 & (1 << 5)) != 0) {
            pageSizes |= (1L << 14) | (1L << 25);
        }
        if ((idr5 & (1 << 6)) != 0) {
            pageSizes |= (1L << 16) | (1L << 29);
        }
        Set<NestingFeature> features = EnumSet.noneOf(NestingFeature.class);
        if (s1p() && s2p()) {
            features.add(NestingFeature.PASID_TABLE);
            features.add(NestingFeature.CACHE_INVLD);
        }
        if (priqLog2 >= 0) {
            features.add(NestingFeature.PAGE_RESP);
        }
        Map<String, Long> vendor = new LinkedHashMap<>();
        for (int i = 0; i <= 5; i++) {
            vendor.put("idr" + i, readReg(4 * i) & 0xffff_ffffL);
        }
        // Stage-1 input addresses: 48-bit VAs (no 52-bit VA support in the model).
        return new NestingInfo(NestingInfo.FORMAT_ARM_SMMUV3, features, 48,
                ssidSize(), pageSizes, vendor);
    }

    @Override
    public synchronized IommuDomain allocateDomain(DomainType type) throws IommuException {
        if (type == DomainType.UNMANAGED && !s2p()) {
            throw new IommuException(Errno.EOPNOTSUPP, "the unit has no stage 2: UNMANAGED domains are stage-2 domains");
        }
        if (type == DomainType.UNMANAGED && (idr5 & (1 << 4)) == 0) {
            throw new IommuException(Errno.EOPNOTSUPP, "the driver's stage-2 tables need the 4 KiB granule");
        }
        init();
        int max = (idr0 & (1 << 18)) != 0 ? 0xffff : 0xff;
        int id = ids.nextClearBit(1);
        if (id > max) {
            throw new IommuException(Errno.ENOSPC, "all " + max + " VMIDs are in use");
        }
        SmmuDomain domain = newDomain(id, type, 0);
        ids.set(id);
        domains.put(id, domain);
        return domain;
    }

    /**
     * A domain object: UNMANAGED ones are stage-2 domains with a new AArch64 stage-2 table or, with
     * a non-zero {@code adoptRoot}, the one a previous build left at that address (live update).
     */
    private SmmuDomain newDomain(int id, DomainType type, long adoptRoot) throws IommuException {
        if (type != DomainType.UNMANAGED) {
            return new SmmuDomain(id, type, null, 0, 0, 0);
        }
        int oas = Math.min(oasBits(), 48);
        int ipaBits = oas; // the IPA range cannot exceed the output range
        int t0sz = 64 - ipaBits;
        int sl0 = ipaBits > 42 ? 2 : 1; // start level 0 for 48-bit IPAs, else level 1 (concatenated)
        ArmStage2 format = ArmStage2.of(ArmGranule.G4K, t0sz, sl0, oas, false, false, false);
        SmmuDomain[] box = new SmmuDomain[1];
        FlushOps flush = new FlushOps() {
            @Override
            public void flushLeaves(long iova, long size, long granule) throws IommuException {
                flushStage2(box[0], iova, size, true);
            }

            @Override
            public void flushWalk(long iova, long size) throws IommuException {
                flushStage2(box[0], iova, size, false);
            }
        };
        IoPageTable table = adoptRoot == 0 ? IoPageTable.create(format, memory, frames, flush)
                : IoPageTable.adopt(format, memory, frames, flush, format.pageSizes(), adoptRoot);
        box[0] = new SmmuDomain(id, type, table, t0sz, sl0, idr5 & 7);
        return box[0];
    }

    @Override
    public synchronized void freeDomain(IommuDomain domain) throws IommuException {
        SmmuDomain d = own(domain);
        if (streams.containsValue(d)) {
            throw new IommuException(Errno.EBUSY, "domain " + d.id() + " has attached streams");
        }
        d.free();
        domains.remove(d.id());
        ids.clear(d.id());
    }

    @Override
    public synchronized void attach(IommuDomain domain, int requesterId) throws IommuException {
        SmmuDomain d = own(domain);
        checkSid(requesterId);
        if (streams.containsKey(requesterId)) {
            throw new IommuException(Errno.EBUSY, "stream " + requesterId + " is attached to a domain already");
        }
        init();
        long ste = steFor(requesterId);
        long[] old = readSte(ste);
        try {
            installSte(ste, requesterId, plainSte(d), false, 0);
        } catch (IommuException e) {
            restoreQuietly(ste, requesterId, old, d.vmid());
            throw e;
        }
        streams.put(requesterId, d);
    }

    @Override
    public synchronized void detach(IommuDomain domain, int requesterId) throws IommuException {
        SmmuDomain d = own(domain);
        if (streams.get(requesterId) != d) {
            throw new IommuException(Errno.ENOENT, "stream " + requesterId + " is not attached to domain " + d.id());
        }
        long ste = steFor(requesterId);
        long[] old = readSte(ste);
        try {
            installSte(ste, requesterId, abortSte(), d.type() == DomainType.UNMANAGED, d.vmid());
        } catch (IommuException e) {
            restoreQuietly(ste, requesterId, old, d.vmid());
            throw e;
        }
        // Only now: until the abort STE and the VMID flush completed, unmaps must still flush nested entries.
        Sva sva = svas.remove(requesterId);
        if (sva != null) {
            List<Long> cmds = new ArrayList<>();
            for (int asid : sva.asidBySsid.values()) {
                add(cmds, CMD_TLBI_NH_ASID | ((long) asid << 48), 0);
                asids.clear(asid);
            }
            submit(toArray(cmds));
            freeQuietly(sva.table, sva.frames);
        }
        streams.remove(requesterId);
        pasidTables.remove(requesterId);
        d.nestedSids.remove(requesterId);
        pendingGroups.denyAll(requesterId, this::respond);
    }

    @Override
    public void bindGuestPasid(IommuDomain parent, int requesterId, GuestPasidBind bind, PasidSet owner)
            throws IommuException {
        throw new IommuException(Errno.EOPNOTSUPP, "SMMUv3 hands the whole PASID table to the guest (attachPasidTable)");
    }

    @Override
    public void unbindGuestPasid(IommuDomain parent, int requesterId, int hostPasid, PasidSet owner)
            throws IommuException {
        throw new IommuException(Errno.EOPNOTSUPP, "SMMUv3 hands the whole PASID table to the guest (detachPasidTable)");
    }

    /**
     * SVA on SMMUv3 (Linux {@code arm_smmu_sva_bind}): the stream's STE becomes stage 1 with a
     * linear CD table of the driver's (S1CDMax 8), and CD {@code pasid} points at the process's
     * VMSAv8-64 stage-1 table with an ASID of its own. The stream must be attached to an IDENTITY
     * or BLOCKED domain, which then decides requests without SSID (S1DSS bypass or terminate).
     */
    @Override
    public synchronized void bindFirstStage(int requesterId, int pasid, long pgd, int addressWidth, int flags)
            throws IommuException {
        SmmuDomain d = streams.get(requesterId);
        if (d == null) {
            throw new IommuException(Errno.ENOENT, "stream " + requesterId + " is not attached");
        }
        if (d.type() == DomainType.UNMANAGED || pasidTables.containsKey(requesterId)) {
            throw new IommuException(Errno.EBUSY, "stream " + requesterId + " is translated by stage 2 or a guest's CD table");
        }
        if (!s1p() || ssidSize() == 0) {
            throw new IommuException(Errno.EOPNOTSUPP, "the unit has no stage 1 or no substreams");
        }
        if (addressWidth != 48 || (pgd & 0xfffL) != 0 || pgd < 0 || flags != 0) {
            throw new IommuException(Errno.EINVAL, "SMMUv3 SVA takes a 4 KiB-aligned 48-bit table and no flags");
        }
        int cdMax = Math.min(ssidSize(), 8);
        if (pasid < 1 || pasid >= 1 << cdMax) {
            throw new IommuException(Errno.EINVAL, "SSID " + pasid + " is outside 1.." + ((1 << cdMax) - 1));
        }
        Sva sva = svas.get(requesterId);
        if (sva != null && sva.asidBySsid.containsKey(pasid)) {
            throw new IommuException(Errno.EBUSY, "SSID " + pasid + " of stream " + requesterId + " is bound");
        }
        int asidMax = (idr0 & (1 << 12)) != 0 ? 0xffff : 0xff;
        int asid = asids.nextClearBit(1);
        if (asid > asidMax) {
            throw new IommuException(Errno.ENOSPC, "all ASIDs are in use");
        }
        boolean fresh = sva == null;
        if (fresh) {
            int count = (64 << cdMax) / 4096;
            sva = new Sva(frames.allocateFrames(count), count, cdMax);
        }
        // CD (§5.4): T0SZ 16, TG0 4K, EPD1, V; IPS 48 bits, AA64, R, A, ASID; TTB0. V is written last.
        long cd = sva.table + 64L * pasid;
        memory.write64(cd + 8, pgd);
        memory.write64(cd, 16 | 1L << 30 | 1L << 31 | (5L | 1L << 9 | 1L << 13 | 1L << 14 | (long) asid << 16) << 32);
        try {
            if (fresh) {
                long[] ste = new long[8];
                ste[0] = 1 | STE_S1 << 1 | (sva.table & 0x000f_ffff_ffff_ffc0L) | (long) cdMax << 59;
                // S1DSS: requests without SSID follow the attached domain (bypass or terminate).
                ste[1] = (d.type() == DomainType.IDENTITY ? 1 : 0) | 1L << 2 | 1L << 4 | 3L << 6;
                installSte(steFor(requesterId), requesterId, ste, false, 0);
            } else {
                submit(new long[] {CMD_CFGI_CD | ((long) pasid << 12) | ((requesterId & 0xffff_ffffL) << 32), 1});
            }
            submit(new long[] {CMD_TLBI_NH_ASID | ((long) asid << 48), 0});
        } catch (IommuException e) {
            memory.write64(cd, 0);
            if (fresh) {
                restoreQuietly(steFor(requesterId), requesterId, plainSte(d), 0);
                freeQuietly(sva.table, sva.frames);
            }
            throw e;
        }
        asids.set(asid);
        sva.asidBySsid.put(pasid, asid);
        svas.put(requesterId, sva);
    }

    @Override
    public synchronized void unbindFirstStage(int requesterId, int pasid) throws IommuException {
        Sva sva = svas.get(requesterId);
        Integer asid = sva == null ? null : sva.asidBySsid.get(pasid);
        if (asid == null) {
            throw new IommuException(Errno.ENOENT, "SSID " + pasid + " of stream " + requesterId + " is not bound");
        }
        memory.write64(sva.table + 64L * pasid, 0); // CD.V = 0
        submit(new long[] {CMD_CFGI_CD | ((long) pasid << 12) | ((requesterId & 0xffff_ffffL) << 32), 1,
            CMD_TLBI_NH_ASID | ((long) asid << 48), 0});
        sva.asidBySsid.remove(pasid);
        asids.clear(asid);
        if (sva.asidBySsid.isEmpty()) {
            // The last binding: the stream goes back to its domain's plain STE and the CD table is freed.
            installSte(steFor(requesterId), requesterId, plainSte(streams.get(requesterId)), false, 0);
            svas.remove(requesterId);
            freeQuietly(sva.table, sva.frames);
        }
    }

    @Override
    public synchronized void invalidateFirstStage(int requesterId, int pasid, long address, long size)
            throws IommuException {
        Sva sva = svas.get(requesterId);
        Integer asid = sva == null ? null : sva.asidBySsid.get(pasid);
        if (asid == null) {
            throw new IommuException(Errno.ENOENT, "SSID " + pasid + " of stream " + requesterId + " is not bound");
        }
        if ((address & 0xfff) != 0 || size <= 0 || (size & 0xfff) != 0 || address + size - 1 < address) {
            throw new IommuException(Errno.EINVAL, String.format("bad range 0x%x+0x%x", address, size));
        }
        List<Long> cmds = new ArrayList<>();
        rangeCommands(cmds, CMD_TLBI_NH_VA | ((long) asid << 48), CMD_TLBI_NH_ASID | ((long) asid << 48), address, size,
                false, 12);
        submit(toArray(cmds));
    }

    @Override
    public synchronized void attachPasidTable(IommuDomain parent, int requesterId, PasidTableConfig config)
            throws IommuException {
        SmmuDomain d = own(parent);
        if (!s1p() || !s2p()) {
            throw new IommuException(Errno.EOPNOTSUPP, "nesting needs both stages (IDR0.S1P and S2P)");
        }
        if (d.type() != DomainType.UNMANAGED) {
            throw new IommuException(Errno.EINVAL, "a guest PASID table nests on an UNMANAGED (stage-2) domain");
        }
        validate(d, config);
        if (streams.get(requesterId) != d) {
            throw new IommuException(Errno.ENOENT, "stream " + requesterId + " is not attached to domain " + d.id());
        }
        init();
        long ste = steFor(requesterId);
        long[] old = readSte(ste);
        boolean wasNested = !d.nestedSids.add(requesterId); // before the STE: a racing unmap must flush combined entries
        try {
            installSte(ste, requesterId, nestedSte(d, config), true, d.vmid());
        } catch (IommuException e) {
            restoreQuietly(ste, requesterId, old, d.vmid());
            if (!wasNested) {
                d.nestedSids.remove(requesterId);
            }
            throw e;
        }
        pasidTables.put(requesterId, config);
    }

    private void validate(SmmuDomain d, PasidTableConfig c) throws IommuException {
        if (!NestingInfo.FORMAT_ARM_SMMUV3.equals(c.format())) {
            throw new IommuException(Errno.EINVAL, "PASID table format must be " + NestingInfo.FORMAT_ARM_SMMUV3);
        }
        if (c.config() < PasidTableConfig.TRANSLATE || c.config() > PasidTableConfig.ABORT) {
            throw new IommuException(Errno.EINVAL, "config must be 1 (translate), 2 (bypass) or 3 (abort), not " + c.config());
        }
        if (c.config() != PasidTableConfig.TRANSLATE) {
            return; // Linux ignores the table fields unless stage 1 translates
        }
        boolean cd2l = (idr0 & (1 << 19)) != 0;
        if (c.s1fmt() < 0 || c.s1fmt() > 2 || (c.s1fmt() != 0 && !cd2l)) {
            throw new IommuException(Errno.EINVAL, "S1Fmt must be 0" + (cd2l ? ", 1 or 2" : " (no IDR0.CD2L)") + ", not " + c.s1fmt());
        }
        if (c.s1dss() < 0 || c.s1dss() > 2) {
            throw new IommuException(Errno.EINVAL, "S1DSS must be 0, 1 or 2, not " + c.s1dss());
        }
        if (c.pasidBits() < 0 || c.pasidBits() > ssidSize()) {
            throw new IommuException(Errno.EINVAL, "S1CDMax must be 0 to " + ssidSize() + " (IDR1.SSIDSIZE), not " + c.pasidBits());
        }
        if ((c.basePtr() & 63) != 0 || c.basePtr() < 0 || (c.basePtr() >>> d.ipaBits()) != 0) {
            throw new IommuException(Errno.EINVAL, String.format(
                    "context descriptor table 0x%x must be 64-byte aligned inside the %d-bit IPA space", c.basePtr(), d.ipaBits()));
        }
    }

    @Override
    public synchronized void detachPasidTable(IommuDomain parent, int requesterId) throws IommuException {
        SmmuDomain d = own(parent);
        if (streams.get(requesterId) != d || !pasidTables.containsKey(requesterId)) {
            throw new IommuException(Errno.ENOENT, "stream " + requesterId + " has no guest PASID table on domain " + d.id());
        }
        init();
        long ste = steFor(requesterId);
        long[] old = readSte(ste);
        try {
            installSte(ste, requesterId, plainSte(d), true, d.vmid());
        } catch (IommuException e) {
            restoreQuietly(ste, requesterId, old, d.vmid());
            throw e;
        }
        pasidTables.remove(requesterId);
        d.nestedSids.remove(requesterId);
    }

    /**
     * Guest invalidations, as Linux's nested {@code arm_smmu_cache_invalidate}: the host forces its
     * own VMID (and the physical StreamID for configuration caches), so a guest can only ever
     * invalidate its own entries. SubstreamIDs and ASIDs live in the guest-owned context
     * descriptor table, so unlike VT-d no PASID-set ownership check applies: {@code owner} is
     * not consulted.
     */
    @Override
    public synchronized void cacheInvalidate(IommuDomain domain, int requesterId, CacheInvalidation inv, PasidSet owner)
            throws IommuException {
        SmmuDomain d = own(domain);
        if (d.type() != DomainType.UNMANAGED) {
            throw new IommuException(Errno.EINVAL, "guest invalidations apply to an UNMANAGED (stage-2) domain");
        }
        int asidMax = (idr0 & (1 << 12)) != 0 ? 0xffff : 0xff;
        if (inv.archId() > asidMax) {
            throw new IommuException(Errno.EINVAL, "ASID " + inv.archId() + " is beyond " + asidMax);
        }
        init();
        int vmid = d.vmid();
        List<Long> cmds = new ArrayList<>();
        if (inv.caches().contains(CacheType.PASID)) {
            if (streams.get(requesterId) != d) {
                throw new IommuException(Errno.ENOENT, "stream " + requesterId + " is not attached to domain " + d.id());
            }
            long sid = (requesterId & 0xffff_ffffL) << 32;
            switch (inv.granularity()) {
                case PASID:
                    if ((inv.pasid() >>> ssidSize()) != 0) {
                        throw new IommuException(Errno.EINVAL, "SSID " + inv.pasid() + " is beyond IDR1.SSIDSIZE");
                    }
                    add(cmds, CMD_CFGI_CD | ((long) inv.pasid() << 12) | sid, 1);
                    break;
                default:
                    add(cmds, CMD_CFGI_CD_ALL | sid, 0);
                    break;
            }
        }
        if (inv.caches().contains(CacheType.IOTLB)) {
            long asid = inv.archId();
            switch (inv.granularity()) {
                case DOMAIN:
                    add(cmds, CMD_TLBI_NH_ALL | ((long) vmid << 32), 0);
                    break;
                case PASID:
                    if (asid < 0) {
                        add(cmds, CMD_TLBI_NH_ALL | ((long) vmid << 32), 0);
                    } else {
                        add(cmds, CMD_TLBI_NH_ASID | ((long) vmid << 32) | (asid << 48), 0);
                    }
                    break;
                default:
                    long base = asid < 0 ? CMD_TLBI_NH_VAA | ((long) vmid << 32)
                            : CMD_TLBI_NH_VA | ((long) vmid << 32) | (asid << 48);
                    long all = asid < 0 ? CMD_TLBI_NH_ALL | ((long) vmid << 32)
                            : CMD_TLBI_NH_ASID | ((long) vmid << 32) | (asid << 48);
                    // TG names the guest's translation granule when the request states one (Linux uses the domain's).
                    int shift = Long.numberOfTrailingZeros(inv.granuleSize());
                    rangeCommands(cmds, base, all, inv.address(), inv.size(), inv.leaf(),
                            shift == 14 || shift == 16 ? shift : 12);
                    break;
            }
        }
        // DEV_IOTLB: no ATS is modelled; CMD_ATC_INV would be a no-op.
        submit(toArray(cmds));
    }

    @Override
    public List<ReservedRegion> reservedRegions(int requesterId) {
        return List.of(SW_MSI_WINDOW);
    }

    /**
     * Answers a page request group with CMD_PRI_RESP (Linux {@code arm_smmu_page_response}): SUCCESS
     * becomes Resp SUCC, INVALID DENY and FAILURE FAIL.
     *
     * @throws IommuException {@code ENOENT} unless the group was reported and is still unanswered
     *     (it stays pending if the command fails)
     */
    @Override
    public void pageResponse(int requesterId, int pasid, int groupIndex, PageResponse response) throws IommuException {
        pendingGroups.answer(requesterId, pasid, groupIndex, response, this::respond);
    }

    /** CMD_PRI_RESP (§4.7.1): SSV 11, SSID 31:12, StreamID 63:32; PRGIndex 8:0, Resp 13:12. */
    private void respond(int sid, int ssid, int group, PageResponse response) throws IommuException {
        int resp = switch (response) {
            case SUCCESS -> PRI_RESP_SUCC;
            case INVALID -> PRI_RESP_DENY;
            case FAILURE -> PRI_RESP_FAIL;
        };
        long d0 = CMD_PRI_RESP | ((sid & 0xffff_ffffL) << 32);
        if (ssid != Pasids.NO_PASID) {
            d0 |= 1L << 11 | (long) (ssid & 0xfffff) << 12;
        }
        submit(new long[] {d0, (group & 0x1ff) | (long) resp << 12});
    }

    @Override
    public void addFaultListener(FaultListener listener) {
        listeners.add(listener);
    }

    @Override
    public void removeFaultListener(FaultListener listener) {
        listeners.remove(listener);
    }

    // ---- live update -----------------------------------------------------------------------------

    /** Version of the {@code drv.*} sections below. */
    public static final int STATE_FORMAT = 1;

    /**
     * Records what this driver knows of the structures it built (sections {@code drv.main},
     * {@code drv.domains}, {@code drv.streams}, {@code drv.pasid-tables}, {@code drv.svas},
     * {@code drv.l2}, {@code drv.pending} and the frames it owns in {@code frames}), then lets the
     * unit go without freeing or reprogramming anything.
     *
     * @param sections where the sections go
     */
    public synchronized void saveAndLetGo(Map<String, long[]> sections) {
        synchronized (cmdqLock) {
            StateWords owned = StateWords.writer();
            sections.put("drv.main", StateWords.writer().put(live).put(strtab).put(strtabFrames).put(cmdq)
                    .put(eventq).put(eventqFrames).put(priq).put(priqFrames).put(cmdProd).toArray());
            if (live) {
                owned.put(strtab).put(strtabFrames).put(cmdq).put(framesFor(16L << cmdqLog2)).put(eventq).put(eventqFrames);
                if (priq != 0) {
                    owned.put(priq).put(priqFrames);
                }
            }
            StateWords ds = StateWords.writer();
            for (SmmuDomain d : domains.values()) {
                IoPageTable t = d.table();
                ds.put(d.id()).put(d.type().ordinal()).put(t == null ? 0 : t.root()).put(d.nestedSids.size());
                for (int sid : d.nestedSids) {
                    ds.put(sid);
                }
                if (t != null) {
                    for (long w : t.ownedFrames()) {
                        owned.put(w);
                    }
                }
            }
            sections.put("drv.domains", ds.toArray());
            StateWords ss = StateWords.writer();
            streams.forEach((sid, d) -> ss.put(sid).put(d.id()));
            sections.put("drv.streams", ss.toArray());
            StateWords pt = StateWords.writer();
            pasidTables.forEach((sid, c) -> pt.put(sid).put(c.basePtr()).put(c.pasidBits()).put(c.config()).put(c.s1fmt())
                    .put(c.s1dss()));
            sections.put("drv.pasid-tables", pt.toArray());
            StateWords sv = StateWords.writer();
            svas.forEach((sid, sva) -> {
                sv.put(sid).put(sva.table).put(sva.frames).put(sva.cdMax).put(sva.asidBySsid.size());
                sva.asidBySsid.forEach((ssid, asid) -> sv.put(ssid).put(asid));
                owned.put(sva.table).put(sva.frames);
            });
            sections.put("drv.svas", sv.toArray());
            StateWords l2 = StateWords.writer();
            l2Tables.forEach((index, table) -> {
                l2.put(index).put(table);
                owned.put(table).put(L2_FRAMES);
            });
            sections.put("drv.l2", l2.toArray());
            sections.put("drv.pending", pendingGroups.save());
            sections.put(ModeledInstance.FRAMES, owned.toArray());
            // Let go: no more interrupts or calls reach this object; the unit runs on untouched.
            closed = true;
            live = false;
            hw.setEventInterrupt(null);
            hw.setPriInterrupt(null);
        }
    }

    /**
     * A driver taking over the structures a previous build's driver left, as {@link #saveAndLetGo}
     * recorded them, on a unit restored from the same state.
     *
     * @throws IommuException {@code EINVAL} if a section is missing, short or inconsistent
     */
    public static SmmuDriver restore(String name, SmmuHardware hw, PhysicalMemory memory, FrameAllocator frames,
            Map<String, long[]> sections) throws IommuException {
        SmmuDriver drv = new SmmuDriver(name, hw, memory, frames);
        synchronized (drv) {
            drv.restoreFrom(sections);
        }
        return drv;
    }

    private void restoreFrom(Map<String, long[]> sections) throws IommuException {
        StateWords main = StateWords.reader(sections.getOrDefault("drv.main", new long[0]));
        boolean wasLive = main.nextBoolean();
        strtab = main.next();
        strtabFrames = main.nextInt();
        cmdq = main.next();
        eventq = main.next();
        eventqFrames = main.nextInt();
        priq = main.next();
        priqFrames = main.nextInt();
        cmdProd = main.nextInt();
        StateWords ds = StateWords.reader(sections.getOrDefault("drv.domains", new long[0]));
        DomainType[] types = DomainType.values();
        while (ds.hasNext()) {
            int id = ds.nextInt();
            int type = ds.nextInt();
            long root = ds.next();
            if (type < 0 || type >= types.length || (types[type] == DomainType.UNMANAGED) != (root != 0)) {
                throw new IommuException(Errno.EINVAL, "saved domain " + id + " is inconsistent");
            }
            SmmuDomain d = newDomain(id, types[type], root);
            for (int n = ds.nextInt(); n > 0; n--) {
                d.nestedSids.add(ds.nextInt());
            }
            ids.set(id);
            domains.put(id, d);
        }
        StateWords ss = StateWords.reader(sections.getOrDefault("drv.streams", new long[0]));
        while (ss.hasNext()) {
            int sid = ss.nextInt();
            SmmuDomain d = domains.get(ss.nextInt());
            if (d == null) {
                throw new IommuException(Errno.EINVAL, "saved stream " + sid + " refers to a domain the state does not list");
            }
            streams.put(sid, d);
        }
        StateWords pt = StateWords.reader(sections.getOrDefault("drv.pasid-tables", new long[0]));
        while (pt.hasNext()) {
            pasidTables.put(pt.nextInt(), new PasidTableConfig(NestingInfo.FORMAT_ARM_SMMUV3, pt.next(), pt.nextInt(),
                    pt.nextInt(), pt.nextInt(), pt.nextInt()));
        }
        StateWords sv = StateWords.reader(sections.getOrDefault("drv.svas", new long[0]));
        while (sv.hasNext()) {
            int sid = sv.nextInt();
            Sva sva = new Sva(sv.next(), sv.nextInt(), sv.nextInt());
            for (int n = sv.nextInt(); n > 0; n--) {
                int ssid = sv.nextInt();
                int asid = sv.nextInt();
                sva.asidBySsid.put(ssid, asid);
                asids.set(asid);
            }
            svas.put(sid, sva);
        }
        StateWords l2 = StateWords.reader(sections.getOrDefault("drv.l2", new long[0]));
        while (l2.hasNext()) {
            l2Tables.put(l2.nextInt(), l2.next());
        }
        pendingGroups.restore(sections.getOrDefault("drv.pending", new long[0]));
        if (wasLive) {
            hw.setEventInterrupt(events::interrupt);
            hw.setPriInterrupt(pageRequests::interrupt);
            live = true;
        }
    }

    /** @return the live domains by id, for the instance's stable handles after a live update */
    public synchronized Map<Integer, IommuDomain> domainsById() {
        return new HashMap<>(domains);
    }

    // ---- stream table entries ----------------------------------------------------------------

    private SmmuDomain own(IommuDomain domain) throws IommuException {
        if (closed) {
            throw new IommuException(Errno.ENODEV, "IOMMU " + name + " is closed");
        }
        if (!(domain instanceof SmmuDomain) || domains.get(domain.id()) != domain) {
            throw new IommuException(Errno.ENOENT, "not a live domain of " + name);
        }
        return (SmmuDomain) domain;
    }

    private void checkSid(int sid) throws IommuException {
        if (sid < 0 || (sid >>> strtabLog2) != 0) {
            throw new IommuException(Errno.EINVAL, "stream " + sid + " is beyond the stream table (" + strtabLog2 + " bits)");
        }
    }

    private long steAddress(int sid) {
        return strtab + 64L * sid;
    }

    /** @return the STE's address; a two-level table's L2 table is allocated (all STEs abort) on first use */
    private long steFor(int sid) throws IommuException {
        if (!twoLevel) {
            return steAddress(sid);
        }
        int index = sid >>> SPLIT;
        Long l2 = l2Tables.get(index);
        if (l2 == null) {
            l2 = frames.allocateFrames(L2_FRAMES);
            for (int i = 0; i < 1 << SPLIT; i++) {
                writeSte(l2 + 64L * i, abortSte());
            }
            l2Tables.put(index, l2);
            // The L1 descriptor was invalid, so nothing can have cached it: no invalidation needed.
            memory.write64(strtab + 8L * index, l2 | (SPLIT + 1));
        }
        return l2 + 64L * (sid & ((1 << SPLIT) - 1));
    }

    private static long[] abortSte() {
        long[] s = new long[8];
        s[0] = 1 | STE_ABORT << 1;
        return s;
    }

    /** The STE of a stream attached to {@code d} without a guest PASID table. */
    private long[] plainSte(SmmuDomain d) {
        long[] s = new long[8];
        switch (d.type()) {
            case UNMANAGED:
                s[0] = 1 | STE_S2 << 1;
                stage2(s, d);
                break;
            case IDENTITY:
                s[0] = 1 | STE_BYPASS << 1;
                s[1] = 1L << 44; // SHCFG: use incoming shareability
                break;
            default:
                s[0] = 1 | STE_ABORT << 1;
                break;
        }
        return s;
    }

    /** A nested STE: the guest's CD table (an IPA) for stage 1, {@code d} for stage 2. */
    private long[] nestedSte(SmmuDomain d, PasidTableConfig c) {
        long[] s = new long[8];
        switch (c.config()) {
            case PasidTableConfig.TRANSLATE:
                s[0] = 1 | STE_NESTED << 1 | (long) c.s1fmt() << 4 | (c.basePtr() & 0x000f_ffff_ffff_ffc0L)
                        | (long) c.pasidBits() << 59;
                // S1DSS, S1CIR/S1COR write-back read-allocate, S1CSH inner shareable.
                s[1] = c.s1dss() | 1L << 2 | 1L << 4 | 3L << 6;
                stage2(s, d);
                break;
            case PasidTableConfig.BYPASS:
                s[0] = 1 | STE_S2 << 1;
                stage2(s, d);
                break;
            default:
                s[0] = 1 | STE_ABORT << 1;
                break;
        }
        return s;
    }

    /** STE words 4-7: S2VMID, the stage-2 translation controls and S2TTB. */
    private static void stage2(long[] s, SmmuDomain d) {
        long w5 = d.s2t0sz | d.s2sl0 << 6 | 1 << 8 /* S2IR0 WBRA */ | 1 << 10 /* S2OR0 */ | 3 << 12 /* S2SH0 ISH */
                | 0 << 14 /* S2TG 4K */ | d.s2ps << 16 | 1 << 19 /* S2AA64 */ | 1 << 22 /* S2PTW */ | 1 << 26 /* S2R */;
        s[2] = (d.vmid() & 0xffffL) | (w5 << 32);
        s[3] = d.table().root() & 0x000f_ffff_ffff_fff0L;
    }

    /** Writes an STE: the doublewords other than the first, then the first (with V), as Linux orders it. */
    private void writeSte(long address, long[] words) {
        for (int i = 7; i >= 1; i--) {
            memory.write64(address + 8L * i, words[i]);
        }
        memory.write64(address, words[0]);
    }

    private long[] readSte(long address) {
        long[] s = new long[8];
        for (int i = 0; i < 8; i++) {
            s[i] = memory.read64(address + 8L * i);
        }
        return s;
    }

    /**
     * Installs an STE and makes the unit forget the old one (CFGI_STE, optionally TLBI_S12_VMALL),
     * then syncs. The unit reads an STE without a lock, so a live STE whose other doublewords change
     * is first broken (§3.21.3, Linux {@code arm_smmu_write_entry}): its first doubleword becomes an
     * abort STE, which is invalidated and synced, before the rest is written and the first
     * doubleword last. A transaction in that window is aborted, never translated by a torn entry.
     */
    private void installSte(long address, int sid, long[] words, boolean flushVmid, int vmid) throws IommuException {
        long cfgi = CMD_CFGI_STE | ((sid & 0xffff_ffffL) << 32);
        long old0 = memory.read64(address);
        boolean inUse = (old0 & 1) != 0 && ((old0 >>> 1) & 7) != STE_ABORT;
        boolean restChanges = false;
        for (int i = 1; i < 8; i++) {
            restChanges |= memory.read64(address + 8L * i) != words[i];
        }
        if (inUse && restChanges) {
            memory.write64(address, abortSte()[0]);
            submit(new long[] {cfgi, 1});
        }
        writeSte(address, words);
        List<Long> cmds = new ArrayList<>();
        add(cmds, cfgi, 1);
        if (flushVmid) {
            add(cmds, CMD_TLBI_S12_VMALL | ((long) vmid << 32), 0);
        }
        submit(toArray(cmds));
    }

    /** Puts back the STE a failed change replaced, as far as the unit still takes commands. */
    private void restoreQuietly(long address, int sid, long[] old, int vmid) {
        try {
            installSte(address, sid, old, true, vmid);
        } catch (IommuException e) {
            // the unit refuses commands: nothing more can be done from here
        }
    }

    // ---- TLB invalidation --------------------------------------------------------------------

    /**
     * Flushes a stage-2 range after an unmap: TLBI_S2_IPA, and when guests nest on the domain,
     * TLBI_S12_VMALL too, since their combined entries are keyed by IOVA, which an IPA cannot name.
     */
    private void flushStage2(SmmuDomain d, long iova, long size, boolean leaf) throws IommuException {
        List<Long> cmds = new ArrayList<>();
        long vmall = CMD_TLBI_S12_VMALL | ((long) d.vmid() << 32);
        boolean all = rangeCommands(cmds, CMD_TLBI_S2_IPA | ((long) d.vmid() << 32), vmall, iova, size, leaf, 12);
        if (!d.nestedSids.isEmpty() && !all) {
            add(cmds, vmall, 0);
        }
        submit(toArray(cmds));
    }

    /**
     * Range invalidation as Linux's {@code __arm_smmu_tlb_inv_range}: with IDR3.RIL, commands of
     * (NUM + 1) &lt;&lt; SCALE granules of {@code 1 << shift} bytes (TG 4K, 16K or 64K); without,
     * one command per granule, or {@code all} when that would take more than
     * {@link #MAX_PAGE_COMMANDS}.
     *
     * @return {@code true} if {@code all} was used instead
     */
    private boolean rangeCommands(List<Long> cmds, long base, long all, long iova, long size, boolean leaf, int shift) {
        long granule = 1L << shift;
        long tg = shift == 12 ? 1 : shift == 14 ? 2 : 3; // TG: 4K, 16K, 64K
        long start = iova & -granule;
        long pages = (iova + size - start + granule - 1) >>> shift;
        if (pages <= 0) {
            pages = 1;
        }
        boolean ril = (idr3 & (1 << 10)) != 0;
        if (!ril) {
            if (pages > MAX_PAGE_COMMANDS) {
                add(cmds, all, 0);
                return true;
            }
            for (long p = 0; p < pages; p++) {
                add(cmds, base, (start + (p << shift)) | (leaf ? 1 : 0));
            }
            return false;
        }
        long address = start;
        while (pages > 0) {
            int scale = Long.numberOfTrailingZeros(pages);
            long num = (pages >>> scale) & 31;
            if (scale > 31) {
                add(cmds, all, 0);
                return true;
            }
            add(cmds, base | ((num - 1) << 12) | ((long) scale << 20), address | tg << 10 | (leaf ? 1 : 0));
            long done = num << scale;
            pages -= done;
            address += done << shift;
        }
        return false;
    }

    private static void add(List<Long> cmds, long d0, long d1) {
        cmds.add(d0);
        cmds.add(d1);
    }

    private static long[] toArray(List<Long> cmds) {
        long[] a = new long[cmds.size()];
        for (int i = 0; i < a.length; i++) {
            a[i] = cmds.get(i);
        }
        return a;
    }

    // ---- command queue -----------------------------------------------------------------------

    /**
     * Submits commands (pairs of doublewords) followed by CMD_SYNC, in batches that fit the queue,
     * and checks that the unit consumed them.
     *
     * @throws IommuException {@code ENODEV} when closed, {@code EIO} when the unit refused a
     *     command (the rest of the batch still ran), {@code ETIMEDOUT} if the queue did not drain
     */
    private void submit(long[] cmds) throws IommuException {
        synchronized (cmdqLock) {
            if (!live || closed) {
                throw new IommuException(Errno.ENODEV, "IOMMU " + name + " is closed");
            }
            int perBatch = (1 << cmdqLog2) - 1;
            int i = 0;
            IommuException error = null;
            do {
                int n = Math.min(perBatch, (cmds.length - i) / 2);
                for (int k = 0; k < n; k++, i += 2) {
                    write(cmds[i], cmds[i + 1]);
                }
                write(CMD_SYNC, 0);
                IommuException e = publish();
                if (error == null) {
                    error = e;
                }
            } while (i < cmds.length);
            if (error != null) {
                throw error;
            }
        }
    }

    private void write(long d0, long d1) {
        long slot = cmdq + 16L * (cmdProd & ((1 << cmdqLog2) - 1));
        memory.write64(slot, d0);
        memory.write64(slot + 8, d1);
        cmdProd = (cmdProd + 1) & ((2 << cmdqLog2) - 1);
    }

    /** Writes PROD, then checks CONS and GERROR; a refused command is acknowledged and skipped. */
    private IommuException publish() throws IommuException {
        int mask = (2 << cmdqLog2) - 1;
        IommuException error = null;
        hw.write(CMDQ_PROD, cmdProd, 4);
        for (int guard = 0; guard < 1 << cmdqLog2; guard++) {
            int gerror = (int) hw.read(GERROR, 4);
            int gerrorn = (int) hw.read(GERRORN, 4);
            int cons = (int) hw.read(CMDQ_CONS, 4);
            if (((gerror ^ gerrorn) & GERROR_CMDQ_ERR) == 0) {
                if ((cons & mask) != cmdProd) {
                    return new IommuException(Errno.ETIMEDOUT, "the command queue did not drain (CONS 0x"
                            + Integer.toHexString(cons) + ", PROD 0x" + Integer.toHexString(cmdProd) + ")");
                }
                return error;
            }
            int cerror = (cons >>> 24) & 0x7f;
            long slot = cmdq + 16L * (cons & ((1 << cmdqLog2) - 1));
            long bad = memory.read64(slot);
            if (error == null) {
                error = new IommuException(Errno.EIO, String.format("the unit refused command 0x%02x (CERROR %d)", bad & 0xff, cerror));
            }
            // Replace the faulty command by a CMD_SYNC, acknowledge the error and resume.
            memory.write64(slot, CMD_SYNC);
            memory.write64(slot + 8, 0);
            hw.write(GERRORN, (gerrorn & ~GERROR_CMDQ_ERR) | (gerror & GERROR_CMDQ_ERR), 4);
            hw.write(CMDQ_PROD, cmdProd, 4);
        }
        return new IommuException(Errno.ETIMEDOUT, "the command queue kept failing");
    }

    // ---- events ------------------------------------------------------------------------------

    /**
     * Consumes an output queue (event or PRI) from CONS to PROD, then writes CONS with the overflow
     * acknowledged (OVFLG copied into OVACKFLG), under the queue lock so close cannot free it meanwhile.
     *
     * @param queue the queue's base address (0 when it is not running)
     * @param read decodes the entry at an address
     * @return the decoded entries, in queue order; empty when the unit is not live
     */
    private <T> List<T> consume(int prodReg, int consReg, LongSupplier queue, int log2, int entryBytes,
            LongFunction<T> read) {
        List<T> entries = new ArrayList<>();
        synchronized (cmdqLock) {
            if (!live) {
                return entries;
            }
            long base = queue.getAsLong(); // after reading live: init publishes the queues through it
            if (base == 0) {
                return entries;
            }
            try {
                int mask = (2 << log2) - 1;
                int prod = (int) hw.read(prodReg, 4);
                int cons = (int) hw.read(consReg, 4);
                while ((cons & mask) != (prod & mask)) {
                    entries.add(read.apply(base + (long) entryBytes * (cons & ((1 << log2) - 1))));
                    cons = (cons & OVFLG) | (((cons & mask) + 1) & mask);
                }
                cons = (cons & ~OVFLG) | (prod & OVFLG);
                hw.write(consReg, cons & 0xffff_ffffL, 4);
            } catch (IommuException e) {
                // valid offsets: cannot happen
            }
        }
        return entries;
    }

    private void drainEvents() {
        List<IommuFault> faults = consume(EVENTQ_PROD, EVENTQ_CONS, () -> eventq, eventqLog2, 32,
                r -> decode(memory.read64(r), memory.read64(r + 8), memory.read64(r + 16)));
        for (IommuFault f : faults) {
            for (FaultListener l : listeners) {
                try {
                    l.fault(f);
                } catch (RuntimeException e) {
                    // a listener's failure must not stop event handling
                }
            }
        }
    }

    private IommuFault decode(long q0, long q1, long input) {
        int type = (int) q0 & 0xff;
        int ssid = (q0 & (1 << 11)) != 0 ? (int) (q0 >>> 12) & 0xfffff : Pasids.NO_PASID;
        int sid = (int) (q0 >>> 32);
        int w3 = (int) (q1 >>> 32);
        int access = ((w3 & 8) != 0 ? Access.READ : Access.WRITE) | ((w3 & 4) != 0 ? Access.EXEC : 0)
                | ((w3 & 2) != 0 ? Access.PRIV : 0); // RnW 3, InD 2, PnU 1 (1: privileged)
        Stage stage;
        if ((w3 & 0x80) != 0) {
            stage = Stage.STAGE2;
        } else if ((type >= 0x10 && type <= 0x13) || type == 0x0b) {
            stage = Stage.STAGE1;
        } else {
            stage = Stage.CONFIG;
        }
        return new IommuFault(name, sid, ssid, input, access, SmmuHardware.eventKind(type), stage, type,
                SmmuHardware.eventName(type));
    }

    // ---- page requests -----------------------------------------------------------------------

    /**
     * Reads the entries from PRIQ_CONS to PRIQ_PROD, acknowledges an overflow (the unit answered
     * what it could not queue), then hands each request to the listeners, or answers it DENY when
     * nobody listens, as Linux does for a stream without a fault handler.
     */
    private void drainPageRequests() {
        List<PageRequest> requests = consume(PRIQ_PROD, PRIQ_CONS, () -> priq, priqLog2, 16,
                e -> decodePageRequest(memory.read64(e), memory.read64(e + 8)));
        for (PageRequest r : requests) {
            Object[] targets = listeners.toArray(); // one snapshot decides both who hears it and who answers
            if (targets.length == 0 || closed) {
                if (r.lastInGroup()) { // a group is answered once, after its last request
                    try {
                        respond(r.requesterId(), r.pasid(), r.groupIndex(), PageResponse.INVALID);
                    } catch (IommuException e) {
                        // closed meanwhile: the device's request dies with the unit
                    }
                }
                continue;
            }
            boolean noSsid = r.pasid() == Pasids.NO_PASID || r.pasid() == Pasids.RESERVED_PASID;
            if (noSsid && r.lastInGroup()) {
                // Without a substream (or SSID 0): IOVA, which nobody pages in (Linux reports it to a
                // domain with no fault handler, which answers INVALID). Answered DENY at once;
                // listeners only hear of it, and an answer of theirs finds no pending group (ENOENT).
                try {
                    respond(r.requesterId(), r.pasid(), r.groupIndex(), PageResponse.INVALID);
                } catch (IommuException e) {
                    // closed meanwhile: the device's request dies with the unit
                }
            } else if (r.lastInGroup()) {
                pendingGroups.add(r.requesterId(), r.pasid(), r.groupIndex());
            }
            for (Object o : targets) {
                FaultListener l = (FaultListener) o;
                try {
                    l.pageRequest(r);
                } catch (RuntimeException e) {
                    // a listener's failure must not stop the queue
                }
            }
        }
    }

    /** A PRI queue entry (§8.1): StreamID 31:0, SSID 51:32, Priv 58, Exec 59, Read 60, Write 61, Last 62, SSV 63; PRGIndex 72:64, address 127:76. */
    private PageRequest decodePageRequest(long q0, long q1) {
        int sid = (int) q0;
        int ssid = (q0 & (1L << 63)) != 0 ? (int) (q0 >>> 32) & 0xfffff : Pasids.NO_PASID;
        int access = ((q0 & (1L << 58)) != 0 ? Access.PRIV : 0) | ((q0 & (1L << 59)) != 0 ? Access.EXEC : 0)
                | ((q0 & (1L << 60)) != 0 ? Access.READ : 0) | ((q0 & (1L << 61)) != 0 ? Access.WRITE : 0);
        return new PageRequest(name, sid, ssid, q1 & ~0xfffL, access, (int) q1 & 0x1ff, (q0 & (1L << 62)) != 0);
    }
}
