package org.iommulab.smmuv3.internal.hw;

import java.util.Optional;
import java.util.Set;

import org.iommulab.api.fault.PageResponse;
import org.iommulab.api.invalidation.CacheInvalidation;
import org.iommulab.api.invalidation.CacheType;
import org.iommulab.api.nesting.GuestIommuListener;
import org.iommulab.api.nesting.NestingInfo;
import org.iommulab.api.nesting.PasidTableConfig;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.atomic.LongAdder;
import java.util.concurrent.locks.ReentrantLock;

import org.iommulab.api.dto.WalkStepDTO;
import org.iommulab.api.errno.Errno;
import org.iommulab.api.errno.IommuException;
import org.iommulab.api.memory.MemoryAccessException;
import org.iommulab.api.memory.PhysicalMemory;
import org.iommulab.api.pasid.Pasids;
import org.iommulab.api.translation.Access;
import org.iommulab.api.translation.FaultKind;
import org.iommulab.api.translation.Stage;
import org.iommulab.api.translation.Translation;
import org.iommulab.pgtable.unit.Registers;
import org.iommulab.pgtable.unit.StateWords;
import org.iommulab.pgtable.unit.UnitModel;

/**
 * An Arm SMMUv3 (Arm IHI 0070), programmed only through its registers and the structures it reads
 * from memory: the layer-1 hardware model.
 *
 * <p>Register semantics: CR0 changes take effect at once and CR0ACK mirrors them; GBPA is applied
 * by a write with UPDATE set (UPDATE then reads 0); GERROR bits are active while they differ from
 * GERRORN; a write of CMDQ_PROD while CMDQEN makes the unit consume the command queue up to PROD
 * before the write returns, stopping at a faulty command with CMDQ_CONS.ERR and GERROR.CMDQ_ERR
 * until software acknowledges through GERRORN and writes PROD again. Events are written at
 * EVENTQ_PROD while EVTQEN; a full queue drops the event and toggles EVENTQ_PROD.OVFLG (once per
 * overflow condition, i.e. while OVFLG equals EVENTQ_CONS.OVACKFLG). STRTAB_BASE(_CFG) are read
 * only while SMMUEN is set; queue base registers while their queue is enabled; CMDQ_CONS and
 * EVENTQ_PROD are owned by the unit while their queue is enabled.
 *
 * <p>CMD_SYNC: with CS = SIG_IRQ (1) the completion interrupt is counted, and when MSIAddress
 * (bits 51:2 of the second doubleword) is not 0 the 32-bit MSIData is written there (MSH/MSIAttr
 * are accepted and ignored: memory is coherent); a failed MSI write sets GERROR.MSI_CMDQ_ABT_ERR.
 * CS = 3 is reserved and makes the command illegal. The TLBI_EL2_* and TLBI_EL3_* commands are
 * accepted and invalidate the whole TLB (over-invalidation is always allowed).
 *
 * <p>Thread safe: register accesses, queue processing and event recording are serialized by one
 * lock; translations run concurrently without it.
 */
public final class SmmuHardware implements UnitModel {
    /** Size of the register space: two 64 KiB pages. */
    public static final int SIZE = 0x20000;
    static final int IDR0 = 0x00;
    static final int IDR1 = 0x04;
    static final int IDR5 = 0x14;
    static final int IIDR = 0x18;
    static final int AIDR = 0x1c;
    static final int CR0 = 0x20;
    static final int CR0ACK = 0x24;
    static final int CR1 = 0x28;
    static final int CR2 = 0x2c;
    static final int STATUSR = 0x40;
    static final int GBPA = 0x44;
    static final int IRQ_CTRL = 0x50;
    static final int IRQ_CTRL_ACK = 0x54;
    static final int GERROR = 0x60;
    static final int GERRORN = 0x64;
    static final int STRTAB_BASE = 0x80;
    static final int STRTAB_BASE_CFG = 0x88;
    static final int CMDQ_BASE = 0x90;
    static final int CMDQ_PROD = 0x98;
    static final int CMDQ_CONS = 0x9c;
    static final int EVENTQ_BASE = 0xa0;
    static final int EVENTQ_PROD = 0x100a8;
    static final int EVENTQ_CONS = 0x100ac;
    static final int PRIQ_BASE = 0xc0;
    static final int PRIQ_PROD = 0x100c8;
    static final int PRIQ_CONS = 0x100cc;

    static final int CR0_SMMUEN = 1;
    static final int CR0_PRIQEN = 1 << 1;
    static final int CR0_EVTQEN = 1 << 2;
    static final int CR0_CMDQEN = 1 << 3;
    static final int CR2_RECINVSID = 1 << 1;
    static final int CR0_MASK = 0x1f;
    static final int GBPA_ABORT = 1 << 20;
    static final int GBPA_UPDATE = 1 << 31;
    /** MemAttr 3:0, MTCFG 4, ALLOCCFG 11:8, SHCFG 13:12, PRIVCFG 17:16, INSTCFG 19:18, ABORT 20 (§6.3.14). */
    static final int GBPA_MASK = 0x000f_3f1f | GBPA_ABORT;
    static final int GERROR_CMDQ_ERR = 1;
    static final int GERROR_EVENTQ_ABT_ERR = 1 << 2;
    static final int GERROR_MSI_CMDQ_ABT_ERR = 1 << 4;
    static final int GERROR_MASK = 0x1fd;
    static final int IRQ_GERROR = 1;
    static final int IRQ_PRIQ = 1 << 1;
    static final int IRQ_EVENTQ = 1 << 2;
    static final int CERROR_NONE = 0;
    static final int CERROR_ILL = 1;
    static final int CERROR_ABT = 2;
    static final int CONS_ERR_MASK = 0x7f << 24;
    static final int OVFLG = 1 << 31;
    private static final long STRTAB_ADDR = 0x000f_ffff_ffff_ffc0L;
    private static final long STRTAB_RA = 1L << 62;
    private static final long Q_ADDR = 0x000f_ffff_ffff_ffe0L;
    private static final long Q_BASE_MASK = Q_ADDR | STRTAB_RA | 0x1f;

    private final PhysicalMemory memory;
    private final SmmuConfig config;
    private final SmmuTranslator translator;
    private final ReentrantLock lock = new ReentrantLock();
    private final int idr0;
    private final int idr1;
    private final int idr3;
    private final int idr5;

    // Registers, guarded by lock; the ones translation reads are volatile.
    private volatile boolean smmuEnabled;
    private volatile boolean bypassAbort;
    private volatile long strtabBase;
    private volatile int strtabCfg;
    private int cr0;
    private int cr1;
    private volatile int cr2;
    private int gbpa;
    private int irqCtrl;
    private int gerror;
    private int gerrorn;
    private long cmdqBase;
    private int cmdqProd;
    private int cmdqCons;
    private long eventqBase;
    private int eventqProd;
    private int eventqCons;
    private long priqBase;
    private int priqProd;
    private int priqCons;

    private volatile Runnable eventInterrupt = () -> { };
    private volatile Runnable priInterrupt = () -> { };
    /** Page request groups devices wait on, by (sid, ssid, group): -1 pending, else the response. */
    private final java.util.Map<Long, Integer> priGroups = new java.util.HashMap<>();
    private long pageRequests;
    private long pageRequestOverflows;
    private volatile Runnable globalErrorInterrupt = () -> { };

    private final LongAdder translations = new LongAdder();
    private final LongAdder faults = new LongAdder();
    private long eventsRecorded;
    private long eventsDropped;
    private long eventsDiscarded;
    private long eventInterrupts;
    private long commands;
    private long commandErrors;
    private long syncs;
    private long syncInterrupts;
    private long globalErrors;

    /**
     * @param memory the physical memory the unit reads its structures from
     * @param config the configuration
     */
    public SmmuHardware(PhysicalMemory memory, SmmuConfig config) {
        this.memory = memory;
        this.config = config;
        this.translator = new SmmuTranslator(memory, config);
        this.idr0 = config.idr0();
        this.idr1 = config.idr1();
        this.idr3 = config.idr3();
        this.idr5 = config.idr5();
    }

    /** @return the configuration */
    @Override
    public long mmioSize() {
        return SIZE;
    }

    @Override
    public Map<String, String> configuration() {
        return config.values();
    }

    public SmmuConfig config() {
        return config;
    }

    /** @param hook run (without the register lock) when an event is written with IRQ_CTRL.EVENTQ_IRQEN set */
    public void setEventInterrupt(Runnable hook) {
        eventInterrupt = hook == null ? () -> { } : hook;
    }

    /** @param hook run when a GERROR bit becomes active with IRQ_CTRL.GERROR_IRQEN set */
    public void setGlobalErrorInterrupt(Runnable hook) {
        globalErrorInterrupt = hook == null ? () -> { } : hook;
    }

    /**
     * @param code an event type (§7.3)
     * @return the specification's name of the event, or {@code EVENT_0x..} for an unknown one
     */
    public static String eventName(int code) {
        SmmuEvent e = SmmuEvent.ofCode(code);
        return e == null ? String.format("EVENT_0x%02x", code) : e.spec;
    }

    /**
     * @param code an event type (§7.3)
     * @return the neutral fault class of the event ({@link FaultKind#CONFIGURATION} for an unknown one)
     */
    public static FaultKind eventKind(int code) {
        SmmuEvent e = SmmuEvent.ofCode(code);
        return e == null ? FaultKind.CONFIGURATION : e.kind;
    }

    // ---- transactions -------------------------------------------------------------------------

    /**
     * Translates a transaction; a fault writes an event record to the event queue (except aborts,
     * which terminate silently). Allocates nothing.
     *
     * @param sid StreamID
     * @param ssid SubstreamID, or {@link Pasids#NO_PASID}
     * @param address input address
     * @param access {@link Access} bits
     * @param out the result
     * @return {@code true} on success
     */
    public boolean translate(int sid, int ssid, long address, int access, Translation out) {
        translations.increment();
        if (!smmuEnabled) {
            // GBPA bypass, or abort; an address beyond the OAS cannot bypass (§3.4) and aborts silently.
            if (bypassAbort || (address >>> config.oas) != 0) {
                faults.increment();
                out.fault(FaultKind.BLOCKED, Stage.CONFIG, SmmuEvent.ABORT.code, SmmuEvent.ABORT.spec, 0, address);
                return false;
            }
            out.success(address, 12, Access.READ | Access.WRITE | Access.EXEC);
            return true;
        }
        SmmuTranslator.Scratch s = translator.scratch();
        if (translator.translate(strtabBase, strtabCfg, sid, ssid, address, access, true, out, s)) {
            return true;
        }
        faults.increment();
        // §7.3.3: an invalid StreamID is recorded only with CR2.RECINVSID.
        if (s.event.recorded && s.record && (s.event != SmmuEvent.C_BAD_STREAMID || (cr2 & CR2_RECINVSID) != 0)) {
            recordEvent(sid, ssid, address, access, s);
        }
        return false;
    }

    /**
     * Walks without side effects (no caches, no flag updates, no event) and describes it.
     *
     * @return the structures and table entries read, then a result line
     */
    public List<WalkStepDTO> explain(int sid, int ssid, long address, int access) {
        List<WalkStepDTO> steps = new ArrayList<>();
        if (!smmuEnabled) {
            steps.add(result(bypassAbort ? "SMMUEN = 0 and GBPA.ABORT = 1: aborted" : "SMMUEN = 0: bypassed (GBPA)"));
            return steps;
        }
        Translation t = new Translation();
        SmmuTranslator.Scratch s = translator.scratch();
        s.explain = steps;
        try {
            translator.translate(strtabBase, strtabCfg, sid, ssid, address, access, false, t, s);
        } finally {
            s.explain = null;
        }
        List<WalkStepDTO> walk = s.walk.toSteps();
        steps.addAll(walk.subList(0, walk.size() - 1));
        steps.add(result(t.isSuccess() ? String.format("0x%x", t.outputAddress())
                : String.format("fault 0x%x %s", t.faultCode(), t.faultName())));
        return steps;
    }

    private static WalkStepDTO result(String text) {
        WalkStepDTO r = new WalkStepDTO();
        r.stage = "RESULT";
        r.address = -1;
        r.meaning = text;
        return r;
    }

    // ---- PRI queue (§8) ------------------------------------------------------------------------

    private static long groupKey(int sid, int ssid, int group) {
        return ((sid & 0xffff_ffffL) << 30) | ((long) (ssid + 1) << 9) | (group & 0x1ff);
    }

    /**
     * A device's page request (PCIe PRI, §8): written as a 16-byte PRI queue entry at PRIQ_PROD
     * when SMMUEN and PRIQEN are set and the stream's STE is valid and not aborting. Entry layout
     * (Linux {@code arm_smmu_handle_ppr}): StreamID 31:0, SSID 51:32, Priv 58, Exec 59, Read 60,
     * Write 61, Last 62, SSV 63; PRG index 72:64, page address 127:76. A full queue toggles
     * PRIQ_PROD.OVFLG and the unit answers the request itself with success, so the device retries.
     *
     * @return {@code true} if the request was accepted
     */
    public boolean pageRequest(int sid, int ssid, long address, int access, int group) {
        boolean interrupt = false;
        lock.lock();
        try {
            if (!smmuEnabled || (cr0 & CR0_PRIQEN) == 0 || !config.pri
                    || !translator.acceptsPageRequests(strtabBase, strtabCfg, sid)) {
                return false;
            }
            pageRequests++;
            long key = groupKey(sid, ssid, group);
            int log2 = queueLog2(priqBase, config.eventqLog2);
            int mask = (1 << (log2 + 1)) - 1;
            int prod = priqProd & mask;
            int cons = priqCons & mask;
            boolean overflowActive = (priqProd & OVFLG) != (priqCons & OVFLG);
            if (overflowActive || (prod ^ cons) == 1 << log2) {
                // Full, or an overflow not yet acknowledged, which inhibits new entries (§8.1).
                if (!overflowActive) {
                    priqProd ^= OVFLG;
                }
                pageRequestOverflows++;
                priGroups.put(key, 2);
                return true;
            }
            boolean ssv = ssid != Pasids.NO_PASID;
            // Exec and Priv come with a PASID prefix only: without SSV they read 0 (§8.1).
            long q0 = (sid & 0xffff_ffffL) | (ssv ? (long) (ssid & 0xfffff) << 32 | 1L << 63 : 0)
                    | (ssv && (access & Access.PRIV) != 0 ? 1L << 58 : 0) | (ssv && (access & Access.EXEC) != 0 ? 1L << 59 : 0)
                    | ((access & Access.READ) != 0 ? 1L << 60 : 0) | ((access & Access.WRITE) != 0 ? 1L << 61 : 0)
                    | 1L << 62;
            long q1 = (group & 0x1ff) | (address & ~0xfffL);
            long entry = (priqBase & Q_ADDR) + 16L * (prod & ((1 << log2) - 1));
            try {
                memory.write64(entry, q0);
                memory.write64(entry + 8, q1);
            } catch (MemoryAccessException e) {
                raiseGlobalError(1 << 3); // GERROR.PRIQ_ABT_ERR
                priGroups.put(key, 1);
                return true;
            }
            priqProd = (priqProd & OVFLG) | ((prod + 1) & mask);
            priGroups.put(key, -1);
            interrupt = (irqCtrl & IRQ_PRIQ) != 0;
        } finally {
            lock.unlock();
        }
        if (interrupt) {
            priInterrupt.run();
        }
        return true;
    }

    /** CMD_PRI_RESP: the device learns the answer (Resp 0 deny, 1 failure, 2 success). */
    private void priRespond(int sid, int ssid, int group, int resp) {
        long key = groupKey(sid, ssid, group);
        if (priGroups.containsKey(key)) {
            priGroups.put(key, resp);
        }
    }

    /**
     * @return the device-visible response to a page request group, consumed; {@code null} while
     *     pending or unknown
     */
    public org.iommulab.api.fault.PageResponse pageRequestStatus(int sid, int ssid, int group) {
        lock.lock();
        try {
            long key = groupKey(sid, ssid, group);
            Integer resp = priGroups.get(key);
            if (resp == null || resp < 0) {
                return null;
            }
            priGroups.remove(key);
            return resp == 2 ? org.iommulab.api.fault.PageResponse.SUCCESS
                    : resp == 0 ? org.iommulab.api.fault.PageResponse.INVALID : org.iommulab.api.fault.PageResponse.FAILURE;
        } finally {
            lock.unlock();
        }
    }

    /**
     * Connects the PRI queue interrupt (IRQ_CTRL.PRI_IRQEN).
     *
     * @param hook called on the requesting thread after a page request was queued; must not block
     */
    public void setPriInterrupt(Runnable hook) {
        priInterrupt = hook == null ? () -> { } : hook;
    }

    /** Writes an event record (§7.2, §7.3) at EVENTQ_PROD. */
    private void recordEvent(int sid, int ssid, long address, int access, SmmuTranslator.Scratch s) {
        boolean interrupt = false;
        lock.lock();
        try {
            // §7.2: no records while the queue is disabled or an EVENTQ_ABT_ERR is unacknowledged.
            if ((cr0 & CR0_EVTQEN) == 0 || ((gerror ^ gerrorn) & GERROR_EVENTQ_ABT_ERR) != 0) {
                eventsDiscarded++;
                return;
            }
            int log2 = queueLog2(eventqBase, config.eventqLog2);
            int mask = (1 << (log2 + 1)) - 1;
            int prod = eventqProd & mask;
            int cons = eventqCons & mask;
            if ((prod ^ cons) == 1 << log2) {
                // Full: the event is lost; OVFLG toggles when no overflow is outstanding.
                if ((eventqProd & OVFLG) == (eventqCons & OVFLG)) {
                    eventqProd ^= OVFLG;
                }
                eventsDropped++;
                return;
            }
            boolean ssv = ssid != Pasids.NO_PASID;
            long w0 = (s.event.code & 0xff) | (ssv ? 1 << 11 : 0) | (ssv ? (long) (ssid & 0xfffff) << 12 : 0);
            long q0 = w0 | ((long) sid << 32);
            boolean read = (access & Access.WRITE) == 0;
            // PnU 1 (1: privileged), InD 2 (0 for writes), RnW 3, S2 7, CLASS 9:8 (§7.3.13).
            long w3 = ((access & Access.PRIV) != 0 ? 1 << 1 : 0) | (read && (access & Access.EXEC) != 0 ? 1 << 2 : 0)
                    | (read ? 1 << 3 : 0) | (s.s2 ? 1 << 7 : 0) | (s.eventClass & 3) << 8;
            // Configuration events carry no transaction attributes and no input address (RES0).
            boolean cfg = s.event.configuration();
            long q1 = cfg ? 0 : w3 << 32;
            long record = (eventqBase & Q_ADDR) + 32L * (prod & ((1 << log2) - 1));
            try {
                memory.write64(record, q0);
                memory.write64(record + 8, q1);
                memory.write64(record + 16, cfg ? 0 : address);
                memory.write64(record + 24, s.address2); // FetchAddr of F_STE_FETCH/F_CD_FETCH, IPA, or 0
            } catch (MemoryAccessException e) {
                raiseGlobalError(GERROR_EVENTQ_ABT_ERR);
                return;
            }
            eventqProd = (eventqProd & OVFLG) | ((prod + 1) & mask);
            eventsRecorded++;
            if ((irqCtrl & IRQ_EVENTQ) != 0) {
                eventInterrupts++;
                interrupt = true;
            }
        } finally {
            lock.unlock();
        }
        if (interrupt) {
            eventInterrupt.run();
        }
    }

    // ---- registers ----------------------------------------------------------------------------

    /**
     * Reads a register.
     *
     * @param offset byte offset in the two register pages
     * @param size 4 or 8
     * @return the value (reserved offsets read 0)
     * @throws IommuException {@code EINVAL} for a bad size, alignment or offset
     */
    public long read(long offset, int size) throws IommuException {
        check(offset, size);
        lock.lock();
        try {
            return Registers.readLane(read64((int) offset & ~7), offset, size);
        } finally {
            lock.unlock();
        }
    }

    /**
     * Writes a register; read-only and reserved bits and offsets are ignored.
     *
     * @param offset byte offset
     * @param value value
     * @param size 4 or 8
     * @throws IommuException {@code EINVAL} for a bad size, alignment or offset
     */
    public void write(long offset, long value, int size) throws IommuException {
        check(offset, size);
        long mask = Registers.laneMask(offset, size);
        long v = Registers.laneValue(offset, value, size);
        boolean interrupt;
        lock.lock();
        try {
            long before = globalErrors;
            write64((int) offset & ~7, v, mask);
            interrupt = globalErrors != before && (irqCtrl & IRQ_GERROR) != 0;
        } finally {
            lock.unlock();
        }
        if (interrupt) {
            globalErrorInterrupt.run();
        }
    }

    private static void check(long offset, int size) throws IommuException {
        Registers.checkAccess("SMMUv3", offset, size, SIZE);
    }

    private long read64(int off) {
        switch (off) {
            case IDR0:
                return Registers.pair(idr0, idr1);
            case 0x08:
                return Registers.pair(0, idr3);
            case 0x10:
                return Registers.pair(0, idr5);
            case IIDR:
                return Registers.pair(0, 2); // AIDR: SMMUv3.2 (range invalidation)
            case CR0:
                return Registers.pair(cr0, cr0);
            case CR1:
                return Registers.pair(cr1, cr2);
            case STATUSR:
                return Registers.pair(0, gbpa);
            case IRQ_CTRL:
                return Registers.pair(irqCtrl, irqCtrl);
            case GERROR:
                return Registers.pair(gerror, gerrorn);
            case STRTAB_BASE:
                return strtabBase;
            case STRTAB_BASE_CFG:
                return strtabCfg & 0xffff_ffffL;
            case CMDQ_BASE:
                return cmdqBase;
            case CMDQ_PROD:
                return Registers.pair(cmdqProd, cmdqCons);
            case EVENTQ_BASE:
                return eventqBase;
            case EVENTQ_PROD:
                return Registers.pair(eventqProd, eventqCons);
            case PRIQ_BASE:
                return priqBase;
            case PRIQ_PROD:
                return Registers.pair(priqProd, priqCons);
            default:
                return 0;
        }
    }

    private static long merge(long old, long value, long mask) {
        return (old & ~mask) | (value & mask);
    }

    /** @return the effective LOG2SIZE of a queue: the base register's field capped at the maximum */
    private static int queueLog2(long base, int max) {
        return Math.min((int) base & 0x1f, max);
    }

    private static int queueMask(int log2) {
        return (1 << (log2 + 1)) - 1;
    }

    private void write64(int off, long value, long mask) {
        boolean lo = (mask & 0xffff_ffffL) != 0;
        boolean hi = (mask >>> 32) != 0;
        int low = (int) value;
        int high = (int) (value >>> 32);
        switch (off) {
            case CR0:
                if (lo) {
                    writeCr0(low & CR0_MASK);
                }
                break;
            case CR1:
                if (lo) {
                    cr1 = low & 0xfff; // QUEUE_IC/OC/SH 5:0, TABLE_IC/OC/SH 11:6
                }
                if (hi) {
                    cr2 = high & 0x7;
                }
                break;
            case STATUSR:
                if (hi && (high & GBPA_UPDATE) != 0) {
                    gbpa = high & GBPA_MASK;
                    bypassAbort = (gbpa & GBPA_ABORT) != 0;
                }
                break;
            case IRQ_CTRL:
                if (lo) {
                    irqCtrl = low & (IRQ_GERROR | IRQ_PRIQ | IRQ_EVENTQ);
                }
                break;
            case GERROR:
                if (hi) {
                    gerrorn = high & GERROR_MASK;
                    if (((gerror ^ gerrorn) & GERROR_CMDQ_ERR) == 0 && (cr0 & CR0_CMDQEN) != 0) {
                        processCommands(); // §7.1: acknowledging CMDQ_ERR resumes at CMDQ_CONS, no PROD write needed
                    }
                }
                break;
            case STRTAB_BASE:
                if (!smmuEnabled) {
                    strtabBase = merge(strtabBase, value, mask) & (STRTAB_ADDR | STRTAB_RA);
                }
                break;
            case STRTAB_BASE_CFG:
                if (lo && !smmuEnabled) {
                    strtabCfg = low & (0x3f | 0x1f << 6 | 3 << 16);
                }
                break;
            case CMDQ_BASE:
                if ((cr0 & CR0_CMDQEN) == 0) {
                    cmdqBase = merge(cmdqBase, value, mask) & Q_BASE_MASK;
                }
                break;
            case CMDQ_PROD:
                if (hi && (cr0 & CR0_CMDQEN) == 0) {
                    cmdqCons = high & (queueMask(19) | CONS_ERR_MASK);
                }
                if (lo) {
                    cmdqProd = low & queueMask(queueLog2(cmdqBase, config.cmdqLog2));
                    processCommands();
                }
                break;
            case EVENTQ_BASE:
                if ((cr0 & CR0_EVTQEN) == 0) {
                    eventqBase = merge(eventqBase, value, mask) & Q_BASE_MASK;
                }
                break;
            case EVENTQ_PROD:
                if (lo && (cr0 & CR0_EVTQEN) == 0) {
                    eventqProd = low & (queueMask(queueLog2(eventqBase, config.eventqLog2)) | OVFLG);
                }
                if (hi) {
                    eventqCons = high & (queueMask(queueLog2(eventqBase, config.eventqLog2)) | OVFLG);
                }
                break;
            case PRIQ_BASE:
                if ((cr0 & CR0_PRIQEN) == 0) {
                    priqBase = merge(priqBase, value, mask) & Q_BASE_MASK;
                }
                break;
            case PRIQ_PROD:
                if (lo && (cr0 & CR0_PRIQEN) == 0) {
                    priqProd = low & (queueMask(queueLog2(priqBase, config.eventqLog2)) | OVFLG);
                }
                if (hi) {
                    priqCons = high & (queueMask(queueLog2(priqBase, config.eventqLog2)) | OVFLG);
                }
                break;
            default:
                break; // read-only or reserved: ignored
        }
    }

    private void writeCr0(int value) {
        int old = cr0;
        cr0 = value;
        boolean enable = (value & CR0_SMMUEN) != 0;
        if (enable && (old & CR0_SMMUEN) == 0) {
            // Nothing cached while disabled may be used once enabled.
            translator.steCache.invalidateAll();
            translator.cdCache.invalidateAll();
            translator.tlb.invalidateAll();
        }
        smmuEnabled = enable;
        if ((value & CR0_CMDQEN) != 0 && (old & CR0_CMDQEN) == 0) {
            processCommands();
        }
    }

    private void raiseGlobalError(int bit) {
        if (((gerror ^ gerrorn) & bit) == 0) {
            gerror ^= bit;
            globalErrors++;
        }
    }

    // ---- command queue ------------------------------------------------------------------------

    /** Consumes commands from CMDQ_CONS up to CMDQ_PROD (§4), unless the queue is off or stopped by an error. */
    private void processCommands() {
        if ((cr0 & CR0_CMDQEN) == 0 || ((gerror ^ gerrorn) & GERROR_CMDQ_ERR) != 0) {
            return;
        }
        int log2 = queueLog2(cmdqBase, config.cmdqLog2);
        int mask = queueMask(log2);
        while ((cmdqCons & mask) != (cmdqProd & mask)) {
            int index = cmdqCons & ((1 << log2) - 1);
            long address = (cmdqBase & Q_ADDR) + 16L * index;
            long d0;
            long d1;
            try {
                d0 = memory.read64(address);
                d1 = memory.read64(address + 8);
            } catch (MemoryAccessException e) {
                commandError(CERROR_ABT);
                return;
            }
            int error = execute(d0, d1);
            if (error != CERROR_NONE) {
                commandError(error);
                return;
            }
            commands++;
            cmdqCons = (cmdqCons & CONS_ERR_MASK) | (((cmdqCons & mask) + 1) & mask);
        }
    }

    private void commandError(int error) {
        commandErrors++;
        cmdqCons = (cmdqCons & ~CONS_ERR_MASK) | (error << 24);
        raiseGlobalError(GERROR_CMDQ_ERR);
    }

    // ---- live update ---------------------------------------------------------------------------

    /**
     * Records the unit's registers, queue pointers, the page request groups devices wait on and
     * the counters, for the next build to {@link #restore}. The STE, CD and TLB caches are not
     * saved: the restored unit starts with them empty, which software must allow for anyway.
     *
     * @param sections where the sections go: {@code hw.regs}, {@code hw.pri}
     */
    public void save(Map<String, long[]> sections) {
        lock.lock();
        try {
            sections.put("hw.regs", StateWords.writer().put(smmuEnabled).put(bypassAbort).put(strtabBase).put(strtabCfg)
                    .put(cr0).put(cr1).put(cr2).put(gbpa).put(irqCtrl).put(gerror).put(gerrorn).put(cmdqBase)
                    .put(cmdqProd).put(cmdqCons).put(eventqBase).put(eventqProd).put(eventqCons).put(priqBase)
                    .put(priqProd).put(priqCons).put(pageRequests).put(pageRequestOverflows).put(translations.sum())
                    .put(faults.sum()).put(eventsRecorded).put(eventsDropped).put(eventsDiscarded).put(eventInterrupts)
                    .put(commands).put(commandErrors).put(syncs).put(syncInterrupts).put(globalErrors).toArray());
            StateWords pri = StateWords.writer();
            priGroups.forEach((k, v) -> pri.put(k).put(v));
            sections.put("hw.pri", pri.toArray());
        } finally {
            lock.unlock();
        }
    }

    /**
     * Takes over the state {@link #save} recorded, on a unit just built with the same
     * configuration over the same memory.
     *
     * @throws IommuException {@code EINVAL} if a section is missing or short
     */
    public void restore(Map<String, long[]> sections) throws IommuException {
        lock.lock();
        try {
            StateWords r = StateWords.reader(sections.getOrDefault("hw.regs", new long[0]));
            boolean enabled = r.nextBoolean();
            bypassAbort = r.nextBoolean();
            strtabBase = r.next();
            strtabCfg = r.nextInt();
            cr0 = r.nextInt();
            cr1 = r.nextInt();
            cr2 = r.nextInt();
            gbpa = r.nextInt();
            irqCtrl = r.nextInt();
            gerror = r.nextInt();
            gerrorn = r.nextInt();
            cmdqBase = r.next();
            cmdqProd = r.nextInt();
            cmdqCons = r.nextInt();
            eventqBase = r.next();
            eventqProd = r.nextInt();
            eventqCons = r.nextInt();
            priqBase = r.next();
            priqProd = r.nextInt();
            priqCons = r.nextInt();
            pageRequests = r.next();
            pageRequestOverflows = r.next();
            translations.add(r.next());
            faults.add(r.next());
            eventsRecorded = r.next();
            eventsDropped = r.next();
            eventsDiscarded = r.next();
            eventInterrupts = r.next();
            commands = r.next();
            commandErrors = r.next();
            syncs = r.next();
            syncInterrupts = r.next();
            globalErrors = r.next();
            StateWords pri = StateWords.reader(sections.getOrDefault("hw.pri", new long[0]));
            priGroups.clear();
            while (pri.hasNext()) {
                priGroups.put(pri.next(), pri.nextInt());
            }
            smmuEnabled = enabled; // last: translation resumes with everything in place
        } finally {
            lock.unlock();
        }
    }

    /** The VMM's trap of a virtual SMMU, or null. */
    private volatile GuestIommuListener guestListener;

    /** @param listener receives what the guest's commands reveal, or null */
    public void setGuestListener(GuestIommuListener listener) {
        this.guestListener = listener;
    }

    /** A neutral invalidation, built only when a listener is there. */
    private interface InvalidationFactory {
        CacheInvalidation create() throws org.iommulab.api.errno.IommuException;
    }

    private void report(InvalidationFactory f) {
        GuestIommuListener l = guestListener;
        if (l != null) {
            try {
                l.invalidated(f.create());
            } catch (org.iommulab.api.errno.IommuException e) {
                // a command the unit executed always has a neutral form
            }
        }
    }

    /**
     * After CMD_CFGI_STE: reads the stream's STE and reports its stage-1 configuration (QEMU's
     * {@code smmuv3_notify_config_change}): a CD table (Config 0b101 or 0b111), bypass, abort, or
     * nothing valid.
     */
    /** Streams reported to the listener, so that a ranged or global CFGI re-reads them. */
    private final java.util.Set<Integer> reportedStreams = java.util.concurrent.ConcurrentHashMap.newKeySet();

    /**
     * After CMD_CFGI_STE_RANGE / CFGI_ALL: every stream in the range that was reported before, and
     * every stream of a range of at most 2^16 ids (QEMU notifies each SID of the range).
     */
    private void reportSteRange(long first, long last) {
        if (guestListener == null) {
            return;
        }
        java.util.TreeSet<Long> sids = new java.util.TreeSet<>();
        for (int r : reportedStreams) {
            long u = r & 0xffff_ffffL;
            if (u >= first && u <= last) {
                sids.add(u);
            }
        }
        if (last - first < 1 << 16) {
            for (long u = first; u <= last; u++) {
                sids.add(u);
            }
        }
        for (long u : sids) {
            reportSte((int) u);
        }
    }

    private void reportSte(int sid) {
        GuestIommuListener l = guestListener;
        if (l == null) {
            return;
        }
        long[] ste = translator.steOf(strtabBase, strtabCfg, sid);
        Optional<PasidTableConfig> config = Optional.empty();
        if (ste != null && (ste[0] & 1) != 0) {
            int cfg = (int) (ste[0] >>> 1) & 7;
            if ((cfg & 5) == 5) {
                config = Optional.of(new PasidTableConfig(NestingInfo.FORMAT_ARM_SMMUV3, ste[0] & 0x000f_ffff_ffff_ffc0L,
                        (int) (ste[0] >>> 59) & 0x1f, PasidTableConfig.TRANSLATE, (int) (ste[0] >>> 4) & 3, (int) ste[1] & 3));
            } else if (cfg == 4) {
                config = Optional.of(new PasidTableConfig(NestingInfo.FORMAT_ARM_SMMUV3, 0, 0, PasidTableConfig.BYPASS, 0, 0));
            } else if (cfg == 0) {
                config = Optional.of(new PasidTableConfig(NestingInfo.FORMAT_ARM_SMMUV3, 0, 0, PasidTableConfig.ABORT, 0, 0));
            }
        }
        if (config.isPresent()) {
            reportedStreams.add(sid);
        } else if (!reportedStreams.remove(sid)) {
            return; // never configured, still nothing: no news
        }
        l.streamEntryChanged(sid, config);
    }

    /** Executes one command (§4.1-§4.7). @return a CERROR code, {@link #CERROR_NONE} if it ran */
    private int execute(long d0, long d1) {
        int op = (int) d0 & 0xff;
        long sid = d0 >>> 32;
        int vmid = (int) (d0 >>> 32) & (config.vmid16 ? 0xffff : 0xff);
        int asid = (int) (d0 >>> 48) & (config.asid16 ? 0xffff : 0xff);
        boolean leaf = (d1 & 1) != 0;
        if (op >= 0x01 && op <= 0x06 && (d0 & (1L << 10)) != 0) {
            // §4.1.6: SSec (bit 10) == 1 on the Non-secure Command queue is ILLEGAL, whether or not
            // Secure state is implemented (CMD_PREFETCH_*, CMD_CFGI_STE(_RANGE), CMD_CFGI_CD(_ALL)).
            return CERROR_ILL;
        }
        switch (op) {
            case 0x01: // CMD_PREFETCH_CONFIG
            case 0x02: // CMD_PREFETCH_ADDR
                return CERROR_NONE;
            case 0x03: // CMD_CFGI_STE
                translator.steCache.invalidateKeys(k -> k == sid);
                translator.cdCache.invalidateKeys(k -> (k >>> 20) == sid);
                reportSte((int) sid);
                return CERROR_NONE;
            case 0x04: { // CMD_CFGI_STE_RANGE
                int range = (int) d1 & 0x1f;
                if (range == 31) {
                    translator.steCache.invalidateAll();
                    translator.cdCache.invalidateAll();
                    reportSteRange(0, 0xffff_ffffL);
                } else {
                    long first = sid & -(1L << (range + 1));
                    long last = first + (1L << (range + 1)) - 1;
                    translator.steCache.invalidateKeys(k -> k >= first && k <= last);
                    translator.cdCache.invalidateKeys(k -> (k >>> 20) >= first && (k >>> 20) <= last);
                    reportSteRange(first, last);
                }
                return CERROR_NONE;
            }
            case 0x05: { // CMD_CFGI_CD
                if (!config.stage1) {
                    return CERROR_ILL; // §4.3.3: CERROR_ILL when stage 1 is not implemented
                }
                long key = (sid << 20) | ((d0 >>> 12) & 0xfffff);
                translator.cdCache.invalidateKeys(k -> k == key);
                report(() -> CacheInvalidation.pasid(Set.of(CacheType.PASID), (int) (d0 >>> 12) & 0xfffff, -1));
                return CERROR_NONE;
            }
            case 0x06: // CMD_CFGI_CD_ALL
                if (!config.stage1) {
                    return CERROR_ILL; // §4.3.4: CERROR_ILL when stage 1 is not implemented
                }
                translator.cdCache.invalidateKeys(k -> (k >>> 20) == sid);
                report(() -> CacheInvalidation.domain(Set.of(CacheType.PASID)));
                return CERROR_NONE;
            case 0x10: // CMD_TLBI_NH_ALL
                if (!config.stage1) {
                    return CERROR_ILL; // §4.4.2: stage-1 invalidations need S1P
                }
                translator.tlb.invalidateTag1(vmid);
                report(() -> CacheInvalidation.domain(Set.of(CacheType.IOTLB)));
                return CERROR_NONE;
            case 0x28: // CMD_TLBI_S12_VMALL
                if (!config.stage2) {
                    return CERROR_ILL; // §4.4.3: needs S2P
                }
                translator.tlb.invalidateTag1(vmid);
                return CERROR_NONE;
            case 0x11: // CMD_TLBI_NH_ASID
                if (!config.stage1) {
                    return CERROR_ILL;
                }
                translator.tlb.invalidateTag(vmid, asid);
                // An ASID names the guest's address space; the neutral form carries it as the architecture id.
                report(() -> CacheInvalidation.pasid(Set.of(CacheType.IOTLB), 0, asid));
                return CERROR_NONE;
            case 0x12: // CMD_TLBI_NH_VA
                if (!config.stage1) {
                    return CERROR_ILL;
                }
                translator.tlb.invalidateRange(vmid, asid, (d1 & ~0xfffL) & SmmuTranslator.KEY_MASK, rangeSize(d0, d1), leaf);
                long va = (d1 & ~0xfffL) & SmmuTranslator.KEY_MASK;
                long vaSize = rangeSize(d0, d1);
                // A range no neutral request can name (all of it, or beyond 2^32 pages) becomes the whole ASID.
                report(() -> vaSize <= 0 || (vaSize >>> 12) > CacheInvalidation.MAX_GRANULES
                        ? CacheInvalidation.pasid(Set.of(CacheType.IOTLB), 0, asid)
                        : CacheInvalidation.range(Set.of(CacheType.IOTLB), Pasids.NO_PASID, asid, va, 4096,
                                Math.max(1, vaSize >>> 12), leaf));
                return CERROR_NONE;
            case 0x13: // CMD_TLBI_NH_VAA
                if (!config.stage1) {
                    return CERROR_ILL;
                }
                translator.tlb.invalidateRangeAnyTag2(vmid, (d1 & ~0xfffL) & SmmuTranslator.KEY_MASK, rangeSize(d0, d1), leaf);
                long vaa = (d1 & ~0xfffL) & SmmuTranslator.KEY_MASK;
                long vaaSize = rangeSize(d0, d1);
                report(() -> vaaSize <= 0 || (vaaSize >>> 12) > CacheInvalidation.MAX_GRANULES
                        ? CacheInvalidation.domain(Set.of(CacheType.IOTLB))
                        : CacheInvalidation.range(Set.of(CacheType.IOTLB), Pasids.NO_PASID, -1, vaa, 4096,
                                Math.max(1, vaaSize >>> 12), leaf));
                return CERROR_NONE;
            case 0x30: // CMD_TLBI_NSNH_ALL
                translator.tlb.invalidateAll();
                report(() -> CacheInvalidation.domain(Set.of(CacheType.IOTLB)));
                return CERROR_NONE;
            case 0x2a: // CMD_TLBI_S2_IPA
                if (!config.stage2) {
                    return CERROR_ILL;
                }
                translator.tlb.invalidateRange(vmid, SmmuTranslator.S2_ONLY, d1 & 0x000f_ffff_ffff_f000L, rangeSize(d0, d1), leaf);
                return CERROR_NONE;
            case 0x40: // CMD_ATC_INV: legal with ATS; no device ATC is modelled, so nothing to invalidate
                return config.ats ? CERROR_NONE : CERROR_ILL;
            case 0x41: { // CMD_PRI_RESP: SSV 11, SSID 31:12, SID 63:32; GRPID 8:0, Resp 13:12
                int resp = (int) (d1 >>> 12) & 3;
                if (!config.pri || resp == 3) {
                    return CERROR_ILL; // §4.5.2: needs IDR0.PRI; Resp 0b11 is reserved
                }
                priRespond((int) (d0 >>> 32), (d0 & (1L << 11)) != 0 ? (int) (d0 >>> 12) & 0xfffff : Pasids.NO_PASID,
                        (int) d1 & 0x1ff, resp);
                GuestIommuListener l = guestListener;
                if (l != null) {
                    l.pageResponse((int) (d0 >>> 32), (d0 & (1L << 11)) != 0 ? (int) (d0 >>> 12) & 0xfffff : Pasids.NO_PASID,
                            (int) d1 & 0x1ff, resp == 2 ? PageResponse.SUCCESS : resp == 1 ? PageResponse.FAILURE : PageResponse.INVALID);
                }
                return CERROR_NONE;
            }
            // CMD_TLBI_EL2_* (no IDR0.Hyp), CMD_TLBI_EL3_* (Secure only) and CMD_RESUME/CMD_STALL_TERM
            // (IDR0.STALL_MODEL 0b01: no stalls) are illegal here (§4.4.2, §4.7).
            case 0x46: // CMD_SYNC
                return sync(d0, d1);
            default:
                return CERROR_ILL;
        }
    }

    /**
     * The size of a TLBI range (§4.4.1): with TG set, (NUM + 1) &lt;&lt; SCALE pages of the TG granule;
     * without, the single address (every entry covering it).
     */
    private long rangeSize(long d0, long d1) {
        // Without IDR3.RIL, TG, NUM and SCALE are RES0: every command names a single address.
        int tg = (idr3 & (1 << 10)) != 0 ? (int) (d1 >>> 10) & 3 : 0;
        if (tg == 0) {
            return 1;
        }
        int num = (int) (d0 >>> 12) & 0x1f;
        int scale = (int) (d0 >>> 20) & 0x1f;
        int shift = tg == 1 ? 12 : tg == 2 ? 14 : 16;
        if (scale + shift + 5 >= 63) {
            return -1L; // beyond the address space: everything from the address on
        }
        return (long) (num + 1) << (scale + shift);
    }

    private int sync(long d0, long d1) {
        int cs = (int) (d0 >>> 12) & 3;
        if (cs == 3) {
            return CERROR_ILL;
        }
        syncs++;
        if (cs == 1) {
            syncInterrupts++;
            // MSIAddress[51:2]; §3.4.3 (6): an MSI address beyond the OAS is truncated to the OAS.
            long msiAddress = d1 & 0x000f_ffff_ffff_fffcL & ((1L << config.oas) - 1);
            if (msiAddress != 0) {
                try {
                    memory.write32(msiAddress, (int) (d0 >>> 32));
                } catch (MemoryAccessException e) {
                    raiseGlobalError(GERROR_MSI_CMDQ_ABT_ERR);
                }
            }
        }
        return CERROR_NONE;
    }

    // ---- statistics ---------------------------------------------------------------------------

    /** @return counters for {@code iommu:stats} */
    public Map<String, Long> statistics() {
        Map<String, Long> m = new LinkedHashMap<>();
        m.put("translations", translations.sum());
        lock.lock();
        try {
            m.put("page-requests", pageRequests);
            m.put("page-request-overflows", pageRequestOverflows);
        } finally {
            lock.unlock();
        }
        m.put("faults", faults.sum());
        m.put("tlb-hits", translator.tlb.stats().hits);
        m.put("tlb-misses", translator.tlb.stats().misses);
        m.put("tlb-entries", (long) translator.tlb.size());
        m.put("ste-cache-hits", translator.steCache.hits());
        m.put("ste-cache-misses", translator.steCache.misses());
        m.put("cd-cache-hits", translator.cdCache.hits());
        m.put("cd-cache-misses", translator.cdCache.misses());
        lock.lock();
        try {
            m.put("events", eventsRecorded);
            m.put("events-dropped", eventsDropped);
            m.put("events-discarded", eventsDiscarded);
            m.put("event-interrupts", eventInterrupts);
            m.put("commands", commands);
            m.put("command-errors", commandErrors);
            m.put("syncs", syncs);
            m.put("sync-interrupts", syncInterrupts);
            m.put("global-errors", globalErrors);
        } finally {
            lock.unlock();
        }
        return m;
    }
}
