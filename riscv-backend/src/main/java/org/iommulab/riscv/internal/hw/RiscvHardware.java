package org.iommulab.riscv.internal.hw;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.atomic.LongAdder;
import java.util.concurrent.locks.ReentrantLock;
import java.util.function.IntConsumer;

import org.iommulab.api.dto.WalkStepDTO;
import org.iommulab.api.errno.IommuException;
import org.iommulab.api.fault.PageResponse;
import org.iommulab.api.memory.PhysicalMemory;
import org.iommulab.api.nesting.GuestIommuListener;
import org.iommulab.api.pasid.Pasids;
import org.iommulab.api.translation.Access;
import org.iommulab.api.translation.Translation;
import org.iommulab.pgtable.unit.Registers;
import org.iommulab.pgtable.unit.UnitModel;
import org.iommulab.riscv.internal.spec.FaultRecord;
import org.iommulab.riscv.internal.spec.Reg;

/**
 * A RISC-V IOMMU (RISC-V IOMMU Architecture Specification 1.0), programmed only through its
 * registers and the structures it reads from physical memory: the hardware model.
 *
 * <p>What it implements (see {@link RiscvConfig} for the capabilities): the register window of
 * chapter "Memory-mapped register interface" with read-only fields, WARL fields, RW1C bits and the enable handshakes
 * (taking effect at once: every busy bit reads 0); the DDT in modes Off, Bare, 1LVL, 2LVL and
 * 3LVL with base-format (32-byte) DCs; PDTs PD8/PD17/PD20; the translation process of §2.3 with
 * first stage and G-stage ({@link Translator}); directory caches and an IOTLB that are only
 * refreshed by the commands of §3.1 ({@link CommandProcessor}); the fault queue (§3.2,
 * {@link FaultWriter}); the page-request queue and ATS.PRGR (§3.3 and "PCIe ATS Page Request handling", {@link PageRequestQueue});
 * the debug translation interface ("Translation-request IOVA / control / response": tr_req_iova, tr_req_ctl, tr_response); a
 * wired-interrupt hook standing in for the WSI wires ({@link Interrupts}).
 *
 * <p>What it does not implement: MSI_FLAT / MSI_MRIF (no MSI page tables, no extended-format DC),
 * message-signaled interrupts (IGS = WSI; msi_cfg_tbl reads 0), T2GPA, big-endian structures (END
 * 0), Sv32 / Sv32x4 (fctl.GXL and DC.tc.SXL stay 0), Svpbmt, Svnapot PTEs (N = 1 is reserved
 * here), the hardware performance monitor (HPM 0: those registers read 0), QoS IDs, the NL and S
 * extensions of IOTINVAL, translated requests and ATS translation requests (only untranslated
 * requests arrive through {@link #translate}), a device ATC (ATS.INVAL completes at once, cmd_to
 * never occurs), and data corruption causes (268, 269, 274: memory never reports poison).
 *
 * <p>Register access: 4- and 8-byte naturally aligned accesses anywhere in the 4 KiB window. A
 * 4-byte access to a 64-bit register reads or writes one half; an 8-byte access to two 32-bit
 * registers acts on both, low half first. Reserved and absent registers read 0 and ignore writes.
 *
 * <p>Thread safe: registers, queues and fault and page-request recording are serialized by one
 * lock; translations run concurrently without it (only a fault's record takes it briefly). The
 * interrupt hook and the guest listener's page-response calls run on the thread that caused them;
 * the interrupt hook after the lock is released.
 */
public final class RiscvHardware implements UnitModel {
    /** The register window: one 4 KiB page. */
    public static final long MMIO_SIZE = Reg.SIZE;
    /** The configuration keys and their defaults (see {@link RiscvConfig}). */
    public static final Map<String, String> DEFAULTS = RiscvConfig.DEFAULTS;
    private static final String UNIT = "RISC-V IOMMU";
    /** tr_req_ctl bits that hold state: Priv, Exe, NW, PID 31:12, PV 32, DID 63:40 ("Translation-request control"). */
    private static final long TR_CTL_MASK = Reg.TR_CTL_PRIV | Reg.TR_CTL_EXE | Reg.TR_CTL_NW
            | 0xfffffL << Reg.TR_CTL_PID_SHIFT | Reg.TR_CTL_PV | 0xff_ffffL << Reg.TR_CTL_DID_SHIFT;
    /** icvec: civ 3:0, fiv 7:4, pmiv 11:8, piv 15:12 ("Interrupt-cause-to-vector register"); custom bits are not implemented. */
    private static final long ICVEC_MASK = 0xffff;

    private final PhysicalMemory memory;
    private final RiscvConfig config;
    private final Translator translator;
    private final ReentrantLock lock = new ReentrantLock();
    private final Interrupts interrupts = new Interrupts();
    private final QueueRegisters cq;
    private final QueueRegisters fq;
    private final QueueRegisters pq;
    private final FaultWriter faultWriter;
    private final PageRequestQueue pageRequests;
    private final CommandProcessor commands;
    private final GuestReporter guest = new GuestReporter();

    /** ddtp: iommu_mode 3:0, PPN 53:10 (busy 4 reads 0). Read by translations without the lock. */
    private volatile long ddtp;
    private long trReqIova;
    private long trReqCtl;
    private long trResponse;
    private long icvec;

    private final LongAdder translations = new LongAdder();
    private final LongAdder faults = new LongAdder();
    private final LongAdder suppressed = new LongAdder();
    private long debugTranslations;
    private long pageRequestCount;

    /**
     * @param memory the physical memory the unit reads its structures from
     * @param configuration the instance configuration: the keys of {@link #DEFAULTS} (missing ones
     *     take their defaults)
     * @throws IommuException {@code EINVAL} for an unknown key or a bad value
     */
    public RiscvHardware(PhysicalMemory memory, Map<String, String> configuration) throws IommuException {
        this.memory = memory;
        this.config = RiscvConfig.of(configuration);
        this.translator = new Translator(memory, config);
        this.cq = new QueueRegisters("command", 16, Reg.CSR_MF | Reg.CQCSR_CMD_TO | Reg.CQCSR_CMD_ILL
                | Reg.CQCSR_FENCE_W_IP, config.pas);
        this.fq = new QueueRegisters("fault", FaultRecord.SIZE, Reg.CSR_MF | Reg.CSR_OF, config.pas);
        this.pq = new QueueRegisters("page-request", 16, Reg.CSR_MF | Reg.CSR_OF, config.pas);
        this.faultWriter = new FaultWriter(memory, fq, interrupts);
        this.pageRequests = new PageRequestQueue(memory, pq, interrupts);
        this.commands = new CommandProcessor(memory, config, cq, interrupts, translator, pageRequests, guest,
                () -> ddtp, () -> interrupts.wsi);
    }

    /** @return the memory the unit reads */
    public PhysicalMemory memory() {
        return memory;
    }

    /**
     * Connects the wired interrupt ("Interrupt pending status register"): {@code handler} is called with the ipsr bits
     * ({@link Reg#IPSR_CIP}, {@link Reg#IPSR_FIP}, {@link Reg#IPSR_PIP}) that became pending while
     * fctl.WSI is 1, on the thread that caused them, without the unit's lock held.
     *
     * @param handler the handler, or {@code null} to disconnect
     */
    public void setInterruptHandler(IntConsumer handler) {
        interrupts.setHandler(handler);
    }

    @Override
    public long mmioSize() {
        return MMIO_SIZE;
    }

    @Override
    public Map<String, String> configuration() {
        return config.values;
    }

    // ---- registers ----------------------------------------------------------------------------

    private static boolean is64(long offset) {
        return offset == Reg.CAPABILITIES || offset == Reg.DDTP || offset == Reg.CQB || offset == Reg.FQB
                || offset == Reg.PQB || offset == Reg.TR_REQ_IOVA || offset == Reg.TR_REQ_CTL
                || offset == Reg.TR_RESPONSE || offset == Reg.ICVEC;
    }

    @Override
    public long read(long offset, int size) throws IommuException {
        Registers.checkAccess(UNIT, offset, size, MMIO_SIZE);
        lock.lock();
        try {
            long quad = offset & ~7L;
            if (is64(quad)) {
                return Registers.readLane(read64(quad), offset, size);
            }
            if (size == 8) {
                return read32(offset) | read32(offset + 4) << 32;
            }
            return read32(offset);
        } finally {
            lock.unlock();
        }
    }

    @Override
    public void write(long offset, long value, int size) throws IommuException {
        Registers.checkAccess(UNIT, offset, size, MMIO_SIZE);
        int signals;
        lock.lock();
        try {
            long quad = offset & ~7L;
            if (is64(quad)) {
                long mask = Registers.laneMask(offset, size);
                write64(quad, (read64(quad) & ~mask) | Registers.laneValue(offset, value, size));
            } else if (size == 8) {
                write32(offset, value & 0xffff_ffffL);
                write32(offset + 4, value >>> 32);
            } else {
                write32(offset, value & 0xffff_ffffL);
            }
            signals = interrupts.take();
        } finally {
            lock.unlock();
        }
        interrupts.signal(signals);
    }

    private long read64(long offset) {
        if (offset == Reg.CAPABILITIES) {
            return config.capabilities;
        } else if (offset == Reg.DDTP) {
            return ddtp;
        } else if (offset == Reg.CQB) {
            return cq.base;
        } else if (offset == Reg.FQB) {
            return fq.base;
        } else if (offset == Reg.PQB) {
            return pq.base;
        } else if (offset == Reg.TR_REQ_IOVA) {
            return trReqIova;
        } else if (offset == Reg.TR_REQ_CTL) {
            return trReqCtl; // Go/Busy reads 0: a request completes within the write
        } else if (offset == Reg.TR_RESPONSE) {
            return trResponse;
        } else if (offset == Reg.ICVEC) {
            return icvec;
        }
        return 0;
    }

    private long read32(long offset) {
        return switch ((int) offset) {
            case Reg.FCTL -> interrupts.wsi ? Reg.FCTL_WSI : 0; // BE 0 and GXL 0, read-only
            case Reg.CQH -> cq.unitIndex & 0xffff_ffffL;
            case Reg.CQT -> cq.softwareIndex & 0xffff_ffffL;
            case Reg.FQH -> fq.softwareIndex & 0xffff_ffffL;
            case Reg.FQT -> fq.unitIndex & 0xffff_ffffL;
            case Reg.PQH -> pq.softwareIndex & 0xffff_ffffL;
            case Reg.PQT -> pq.unitIndex & 0xffff_ffffL;
            case Reg.CQCSR -> cq.csr & 0xffff_ffffL;
            case Reg.FQCSR -> fq.csr & 0xffff_ffffL;
            case Reg.PQCSR -> pq.csr & 0xffff_ffffL;
            case Reg.IPSR -> interrupts.ipsr;
            default -> 0;
        };
    }

    private void write64(long offset, long value) {
        if (offset == Reg.DDTP) {
            // "Device-directory-table pointer": iommu_mode is WARL; a reserved or custom mode (5-15) keeps the old value (the
            // whole write is dropped). busy and the reserved bits read 0.
            if ((value & Reg.DDTP_MODE_MASK) <= Reg.MODE_3LVL) {
                ddtp = value & (Reg.PPN_MASK | Reg.DDTP_MODE_MASK);
            }
        } else if (offset == Reg.CQB) {
            cq.writeBase(value);
        } else if (offset == Reg.FQB) {
            fq.writeBase(value);
        } else if (offset == Reg.PQB) {
            if (config.ats) {
                pq.writeBase(value);
            }
        } else if (offset == Reg.TR_REQ_IOVA) {
            trReqIova = value & ~0xfffL; // vpn 63:12; 11:0 reserved
        } else if (offset == Reg.TR_REQ_CTL) {
            trReqCtl = value & TR_CTL_MASK;
            if ((value & Reg.TR_CTL_GO_BUSY) != 0) {
                debugTranslate();
            }
        } else if (offset == Reg.ICVEC) {
            icvec = value & ICVEC_MASK;
        }
        // capabilities and tr_response are read-only
    }

    private void write32(long offset, long value) {
        switch ((int) offset) {
            case Reg.FCTL -> interrupts.setWsi((value & Reg.FCTL_WSI) != 0);
            case Reg.CQT -> {
                cq.writeSoftwareIndex(value);
                commands.process();
            }
            case Reg.FQH -> fq.writeSoftwareIndex(value);
            case Reg.PQH -> {
                if (config.ats) {
                    pq.writeSoftwareIndex(value);
                }
            }
            case Reg.CQCSR -> {
                cq.writeCsr(value);
                refreshInterrupts();
                commands.process();
            }
            case Reg.FQCSR -> {
                fq.writeCsr(value);
                refreshInterrupts();
            }
            case Reg.PQCSR -> {
                if (config.ats) {
                    pq.writeCsr(value);
                    refreshInterrupts();
                }
            }
            case Reg.IPSR -> {
                interrupts.writeIpsr(value);
                refreshInterrupts();
            }
            default -> {
                // cqh, fqt, pqt are read-only; reserved, custom and absent registers ignore writes
            }
        }
    }

    /**
     * "Interrupt pending status register": cip, fip and pip are (re)set while their interrupt enable is set and an error bit
     * of the queue (or cqcsr.fence_w_ip) is 1.
     */
    private void refreshInterrupts() {
        if (cq.interruptEnabled() && cq.inError()) {
            interrupts.raise(Reg.IPSR_CIP);
        }
        if (fq.interruptEnabled() && fq.inError()) {
            interrupts.raise(Reg.IPSR_FIP);
        }
        if (pq.interruptEnabled() && pq.inError()) {
            interrupts.raise(Reg.IPSR_PIP);
        }
    }

    /**
     * "Translation-request control" and "Translation-response": translates tr_req_iova for tr_req_ctl's DID (and PID with PV; Priv only with
     * PV; Exe; NW = 0 asks for read and write) as an untranslated request, through the caches,
     * recording a fault like any other. tr_response: fault 0, S 9 with the NAPOT-encoded size of a
     * superpage in PPN 53:10; or just fault = 1.
     */
    private void debugTranslate() {
        debugTranslations++;
        int did = (int) (trReqCtl >>> Reg.TR_CTL_DID_SHIFT) & 0xff_ffff;
        boolean pv = (trReqCtl & Reg.TR_CTL_PV) != 0;
        int pasid = pv ? (int) (trReqCtl >>> Reg.TR_CTL_PID_SHIFT) & 0xfffff : Pasids.NO_PASID;
        int access = Access.READ | ((trReqCtl & Reg.TR_CTL_NW) == 0 ? Access.WRITE : 0)
                | ((trReqCtl & Reg.TR_CTL_EXE) != 0 ? Access.EXEC : 0)
                | (pv && (trReqCtl & Reg.TR_CTL_PRIV) != 0 ? Access.PRIV : 0);
        Translation t = new Translation();
        if (!translate(did, pasid, trReqIova, access, t)) {
            trResponse = Reg.TR_RESPONSE_FAULT;
            return;
        }
        int shift = t.pageShift();
        long page = t.outputAddress() & -(1L << shift);
        long ppn = shift > 12 ? (page | ((1L << (shift - 1)) - 1)) >>> 12 : page >>> 12;
        trResponse = (ppn << 10) & Reg.PPN_MASK | (shift > 12 ? 1L << 9 : 0);
    }

    // ---- requests -----------------------------------------------------------------------------

    @Override
    public boolean translate(int requesterId, int pasid, long address, int access, Translation out) {
        translations.increment();
        Scratch s = translator.scratch();
        if (translator.translate(ddtp, requesterId, pasid, address, access, true, out, s)) {
            return true;
        }
        faults.increment();
        report(requesterId, pasid, address, access, s);
        return false;
    }

    /** Writes the fault record of a failed translation, unless DC.tc.DTF suppresses it (§3.2). */
    private void report(int requesterId, int pasid, long address, int access, Scratch s) {
        if (s.dtf && FaultRecord.suppressedByDtf(s.cause)) {
            suppressed.increment();
            return;
        }
        boolean pv = pasid != Pasids.NO_PASID;
        // A debug translation runs under the lock: its signals go out when the register write ends.
        boolean nested = lock.isHeldByCurrentThread();
        int signals;
        lock.lock();
        try {
            faultWriter.record(s.cause, requesterId, pv ? pasid & 0xfffff : -1, pv && (access & Access.PRIV) != 0,
                    Causes.ttyp(access), address, s.iotval2);
            signals = nested ? 0 : interrupts.take();
        } finally {
            lock.unlock();
        }
        interrupts.signal(signals);
    }

    @Override
    public List<WalkStepDTO> explain(int requesterId, int pasid, long address, int access) {
        List<WalkStepDTO> steps = new ArrayList<>();
        Scratch s = new Scratch();
        s.explain = steps;
        Translation t = new Translation();
        translator.translate(ddtp, requesterId, pasid, address, access, false, t, s);
        if (s.walked) {
            List<WalkStepDTO> walk = s.walk.toSteps();
            steps.addAll(walk.subList(0, walk.size() - 1));
        }
        WalkStepDTO r = new WalkStepDTO();
        r.stage = "RESULT";
        r.address = -1;
        r.meaning = t.isSuccess() ? String.format("0x%x (page 2^%d, %s)", t.outputAddress(), t.pageShift(),
                Access.toString(t.permissions()))
                : String.format("fault %d %s%s", t.faultCode(), t.faultName(),
                        s.iotval2 != 0 ? String.format(", iotval2 0x%x", s.iotval2) : "");
        steps.add(r);
        return steps;
    }

    @Override
    public boolean pageRequest(int requesterId, int pasid, long address, int access, int groupIndex) {
        if (!config.ats) {
            return false; // no PRI
        }
        int signals;
        lock.lock();
        try {
            pageRequestCount++;
            pageRequests.request(ddtp, translator.directory, translator.scratch(), requesterId, pasid, address, access,
                    groupIndex);
            signals = interrupts.take();
        } finally {
            lock.unlock();
        }
        interrupts.signal(signals);
        return true;
    }

    @Override
    public PageResponse pageRequestStatus(int requesterId, int pasid, int groupIndex) {
        lock.lock();
        try {
            return pageRequests.status(requesterId, pasid, groupIndex);
        } finally {
            lock.unlock();
        }
    }

    @Override
    public void setGuestListener(GuestIommuListener listener) {
        guest.setListener(listener);
    }

    @Override
    public Map<String, Long> statistics() {
        Map<String, Long> m = new LinkedHashMap<>();
        m.put("translations", translations.sum());
        m.put("faults", faults.sum());
        m.put("faults-suppressed-by-dtf", suppressed.sum());
        var tlb = translator.iotlb.tlb.stats();
        m.put("iotlb-hits", tlb.hits);
        m.put("iotlb-misses", tlb.misses);
        m.put("iotlb-entries", (long) translator.iotlb.tlb.size());
        m.put("dc-cache-hits", translator.directory.dcCache.hits());
        m.put("dc-cache-misses", translator.directory.dcCache.misses());
        m.put("pc-cache-hits", translator.directory.pcCache.hits());
        m.put("pc-cache-misses", translator.directory.pcCache.misses());
        lock.lock();
        try {
            m.put("fault-records", faultWriter.recorded);
            m.put("fault-records-discarded", faultWriter.discarded);
            m.put("commands", commands.executed);
            m.put("commands-illegal", commands.illegal);
            m.put("fences", commands.fences);
            m.put("page-requests", pageRequestCount);
            m.put("page-requests-queued", pageRequests.queued);
            m.put("page-requests-auto-answered", pageRequests.autoResponses);
            m.put("page-request-overflows", pageRequests.overflows);
            m.put("debug-translations", debugTranslations);
        } finally {
            lock.unlock();
        }
        m.put("interrupts", interrupts.signalled);
        return m;
    }

    @Override
    public String toString() {
        return String.format("RISC-V IOMMU (capabilities 0x%x, ddtp 0x%x)", config.capabilities, ddtp);
    }
}
