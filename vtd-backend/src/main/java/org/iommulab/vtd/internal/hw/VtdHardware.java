package org.iommulab.vtd.internal.hw;

import java.util.Optional;
import java.util.Set;

import org.iommulab.api.fault.PageResponse;
import org.iommulab.api.invalidation.CacheInvalidation;
import org.iommulab.api.invalidation.CacheType;
import org.iommulab.api.nesting.GuestIommuListener;
import org.iommulab.api.nesting.GuestPasidBind;
import org.iommulab.api.nesting.NestingInfo;

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
import org.iommulab.api.translation.Access;
import org.iommulab.api.translation.Translation;
import org.iommulab.pgtable.unit.StateWords;
import org.iommulab.pgtable.unit.Registers;
import org.iommulab.pgtable.unit.UnitModel;

/**
 * An Intel VT-d remapping unit in scalable mode, programmed only through its registers and the
 * structures it reads from memory: the layer-1 hardware model. It serves as a host IOMMU over host
 * memory and as a guest's virtual IOMMU over guest memory (caching mode).
 *
 * <p>Register semantics (VT-d spec §10.4): GCMD is write-only and acts on the bits that differ from
 * GSTS (TE, QIE) or are one-shot (SRTP latches RTADDR); RTADDR takes effect only through SRTP;
 * FSTS, ICS and the F bits of the fault recording registers are write-1-to-clear; IQT writes make the
 * unit process the invalidation queue up to the tail before the write returns; an invalid
 * descriptor sets FSTS.IQE and stops processing at that descriptor until software clears IQE.
 *
 * <p>Thread safe: register accesses and queue processing are serialized by one lock; translations
 * run concurrently without it.
 */
public final class VtdHardware implements UnitModel {
    /** Offset of the IOTLB registers (IVA, IOTLB), advertised in ECAP.IRO. */
    static final int IOTLB_REGS = 0xf0;
    private static final int VERSION = 0x30; // architecture 3.0: scalable mode
    private static final long RTADDR_MASK = ~0x3ffL;

    private final PhysicalMemory memory;
    private final VtdConfig config;
    private final Translator translator;
    private final FaultRecorder faults = new FaultRecorder();
    private final PageRequestQueue prq;
    /** Told when a page request event is delivered (PECTL.IM clear). */
    private volatile Runnable pageRequestInterrupt = () -> { };
    private final ReentrantLock lock = new ReentrantLock();
    private final long cap;
    private final long ecap;

    // Registers, guarded by lock; the ones translation reads are volatile.
    private volatile boolean translationEnabled;
    private volatile long rootTable;
    private long rtaddr;
    private long ccmd;
    private int fstsSticky;
    private long iqh;
    private long iqt;
    private long iqa;
    private boolean qiEnabled;
    private int ics;
    private int iectl = VtdReg.CTL_IM;
    private int iedata;
    private long ieaddr;
    private int fedata;
    private long feaddr;
    private long iqercd;
    private long iva;
    private long iotlbReg;
    private boolean rtaddrLatched;
    /** The descriptor being executed (up to 256 bits), reused under the lock. */
    private final long[] descriptor = new long[4];

    /** Told when a fault event is delivered (FECTL.IM clear): the fault interrupt. */
    private volatile Runnable faultInterrupt = () -> { };

    private final LongAdder translations = new LongAdder();
    private final LongAdder faultCount = new LongAdder();
    private final LongAdder descriptors = new LongAdder();
    private long queueErrors;
    private long waitInterrupts;

    /**
     * @param memory the physical memory the unit reads its structures from
     * @param config the configuration
     * @throws IommuException {@code EINVAL} for an inconsistent configuration
     */
    public VtdHardware(PhysicalMemory memory, VtdConfig config) throws IommuException {
        this.memory = memory;
        this.config = config;
        this.translator = new Translator(memory, config);
        this.prq = new PageRequestQueue(memory);
        this.cap = config.cap();
        this.ecap = config.ecap();
    }

    /** The register window: one 4 KiB page (§10.4). */
    @Override
    public long mmioSize() {
        return 0x1000;
    }

    @Override
    public Map<String, String> configuration() {
        return config.values();
    }

    /** @return the configuration */
    public VtdConfig config() {
        return config;
    }

    // ---- live update ---------------------------------------------------------------------------

    /**
     * Records the unit's register state, fault records, page request queue and what it has
     * reported to a guest listener, for the next build to {@link #restore}. Caches are not saved:
     * the restored unit starts with empty context, PASID and IOTLB caches, which software must
     * allow for anyway (a cache may drop an entry at any time).
     *
     * @param sections where the sections go: {@code hw.regs}, {@code hw.faults}, {@code hw.prq},
     *     {@code hw.reported}
     */
    public void save(Map<String, long[]> sections) {
        lock.lock();
        try {
            sections.put("hw.regs", StateWords.writer().put(translationEnabled).put(rootTable).put(rtaddr).put(ccmd)
                    .put(fstsSticky).put(iqh).put(iqt).put(iqa).put(qiEnabled).put(ics).put(iectl).put(iedata)
                    .put(ieaddr).put(fedata).put(feaddr).put(iqercd).put(iva).put(iotlbReg).put(rtaddrLatched)
                    .put(queueErrors).put(waitInterrupts).put(translations.sum()).put(faultCount.sum())
                    .put(descriptors.sum()).toArray());
            sections.put("hw.faults", faults.save());
            sections.put("hw.prq", prq.save());
            StateWords reported = StateWords.writer();
            synchronized (reportedBindings) {
                for (Map.Entry<Long, GuestPasidBind> e : reportedBindings.entrySet()) {
                    GuestPasidBind b = e.getValue();
                    reported.put(e.getKey()).put(reportedDids.getOrDefault(e.getKey(), 0)).put(b.hostPasid())
                            .put(b.guestPasid()).put(b.guestPasidValid()).put(b.guestPgd()).put(b.addressWidth())
                            .put(b.vtdFlags()).put(b.pat()).put(b.emt());
                }
            }
            sections.put("hw.reported", reported.toArray());
        } finally {
            lock.unlock();
        }
    }

    /**
     * Takes over the state {@link #save} recorded, on a unit just built with the same
     * configuration over the same memory.
     *
     * @param sections the saved sections
     * @throws IommuException {@code EINVAL} if a section is missing or short
     */
    public void restore(Map<String, long[]> sections) throws IommuException {
        lock.lock();
        try {
            StateWords r = StateWords.reader(sections.getOrDefault("hw.regs", new long[0]));
            boolean enabled = r.nextBoolean();
            rootTable = r.next();
            rtaddr = r.next();
            ccmd = r.next();
            fstsSticky = r.nextInt();
            iqh = r.next();
            iqt = r.next();
            iqa = r.next();
            qiEnabled = r.nextBoolean();
            ics = r.nextInt();
            iectl = r.nextInt();
            iedata = r.nextInt();
            ieaddr = r.next();
            fedata = r.nextInt();
            feaddr = r.next();
            iqercd = r.next();
            iva = r.next();
            iotlbReg = r.next();
            rtaddrLatched = r.nextBoolean();
            queueErrors = r.next();
            waitInterrupts = r.next();
            translations.add(r.next());
            faultCount.add(r.next());
            descriptors.add(r.next());
            faults.restore(StateWords.reader(sections.getOrDefault("hw.faults", new long[0])));
            prq.restore(StateWords.reader(sections.getOrDefault("hw.prq", new long[0])));
            StateWords rep = StateWords.reader(sections.getOrDefault("hw.reported", new long[0]));
            synchronized (reportedBindings) {
                while (rep.hasNext()) {
                    long key = rep.next();
                    reportedDids.put(key, rep.nextInt());
                    reportedBindings.put(key, new GuestPasidBind(NestingInfo.FORMAT_INTEL_VTD,
                            rep.nextInt(), rep.nextInt(), rep.nextBoolean(), rep.next(), rep.nextInt(), rep.nextInt(),
                            rep.nextInt(), rep.nextInt()));
                }
            }
            translationEnabled = enabled; // last: translation resumes with everything in place
        } finally {
            lock.unlock();
        }
    }

    /** @return CAP as the unit advertises it */
    public long cap() {
        return cap;
    }

    /** @return ECAP as the unit advertises it */
    public long ecap() {
        return ecap;
    }

    // ---- DMA ---------------------------------------------------------------------------------

    /**
     * Translates a DMA request; a fault is recorded in the fault log (unless FPD suppresses it).
     *
     * @param sid source id
     * @param pasid PASID or NO_PASID
     * @param address input address
     * @param access access bits
     * @param out result
     * @return success
     */
    public boolean translate(int sid, int pasid, long address, int access, Translation out) {
        translations.increment();
        if (!translationEnabled) {
            // Translation disabled: DMA is passed through untranslated (§10.4.4, TE = 0).
            out.success(address, 12, Access.READ | Access.WRITE | Access.EXEC);
            return true;
        }
        Translator.Scratch s = translator.scratch();
        if (translator.translate(rootTable, sid, pasid, address, access, true, out, s)) {
            return true;
        }
        faultCount.increment();
        if (s.faultRecordable && faults.record(sid, pasid, address, access, s.fault.code) == FaultRecorder.INTERRUPT) {
            faultInterrupt.run();
        }
        return false;
    }

    /**
     * Walks without side effects and describes it.
     *
     * @return the steps
     */
    public List<WalkStepDTO> explain(int sid, int pasid, long address, int access) {
        Translation t = new Translation();
        Translator.Scratch s = translator.scratch();
        List<WalkStepDTO> steps = new java.util.ArrayList<>();
        if (!translationEnabled) {
            steps.add(result("translation disabled (GSTS.TES = 0): passed through"));
            return steps;
        }
        s.explain = steps;
        try {
            translator.translate(rootTable, sid, pasid, address, access, false, t, s);
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

    // ---- registers ---------------------------------------------------------------------------

    /**
     * Reads a register.
     *
     * @param offset byte offset
     * @param size 4 or 8
     * @return the value
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
     * Writes a register; read-only and reserved bits are ignored.
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
        lock.lock();
        try {
            write64((int) offset & ~7, v, mask);
        } finally {
            lock.unlock();
        }
    }

    private static void check(long offset, int size) throws IommuException {
        Registers.checkAccess("VT-d", offset, size, VtdReg.SIZE);
    }

    private int gsts() {
        return (translationEnabled ? VtdReg.GSTS_TES : 0) | (rtaddrLatched ? VtdReg.GSTS_RTPS : 0)
                | (qiEnabled ? VtdReg.GSTS_QIES : 0);
    }

    private long read64(int off) {
        if (off >= VtdReg.FRCD && off < VtdReg.FRCD + 16 * VtdReg.NFR) {
            return faults.read(off - VtdReg.FRCD);
        }
        switch (off) {
            case VtdReg.VER:
                return VERSION;
            case VtdReg.CAP:
                return cap;
            case VtdReg.ECAP:
                return ecap;
            case VtdReg.GCMD:
                return Registers.pair(0, gsts()); // GCMD reads as 0; GSTS is its upper half
            case VtdReg.RTADDR:
                return rtaddr;
            case VtdReg.CCMD:
                return ccmd;
            case 0x30:
                return Registers.pair(0, faults.status() | fstsSticky);
            case VtdReg.FECTL:
                return Registers.pair(faults.fectl(), fedata);
            case VtdReg.FEADDR:
                return feaddr;
            case VtdReg.IQH:
                return iqh;
            case VtdReg.IQT:
                return iqt;
            case VtdReg.IQA:
                return iqa;
            case 0x98:
                return Registers.pair(0, ics);
            case VtdReg.IECTL:
                return Registers.pair(iectl, iedata);
            case VtdReg.IEADDR:
                return ieaddr;
            case VtdReg.IQERCD:
                return iqercd;
            case VtdReg.PQH:
            case VtdReg.PQT:
            case VtdReg.PQA:
            case 0xd8:
            case VtdReg.PECTL:
                return prq.read(off);
            case IOTLB_REGS:
                return iva;
            case IOTLB_REGS + 8:
                return iotlbReg;
            default:
                return 0; // reserved: reads as 0
        }
    }

    private static long merge(long old, long value, long mask) {
        return (old & ~mask) | (value & mask);
    }

    private void write64(int off, long value, long mask) {
        if (off >= VtdReg.FRCD && off < VtdReg.FRCD + 16 * VtdReg.NFR) {
            if (((off - VtdReg.FRCD) & 8) != 0 && (mask >>> 32) != 0) {
                faults.writeHigh((off - VtdReg.FRCD) / 16, value);
                faults.clearPendingIfIdle(fstsSticky);
            }
            return;
        }
        boolean lo = (mask & 0xffff_ffffL) != 0;
        boolean hi = (mask >>> 32) != 0;
        switch (off) {
            case VtdReg.GCMD:
                if (lo) {
                    globalCommand((int) value);
                }
                break;
            case VtdReg.RTADDR:
                rtaddr = merge(rtaddr, value, mask) & RTADDR_MASK;
                break;
            case VtdReg.CCMD:
                contextCommand(merge(ccmd, value, mask));
                break;
            case 0x30:
                if (hi) {
                    int w1c = (int) (value >>> 32) & VtdReg.FSTS_RW1C;
                    if ((w1c & VtdReg.FSTS_PFO) != 0) {
                        faults.clearOverflow();
                    }
                    fstsSticky &= ~w1c;
                    faults.clearPendingIfIdle(fstsSticky);
                }
                break;
            case VtdReg.FECTL:
                if (lo) {
                    faults.writeFectl((int) value);
                }
                if (hi) {
                    fedata = (int) (value >>> 32);
                }
                break;
            case VtdReg.FEADDR:
                feaddr = merge(feaddr, value, mask);
                break;
            case VtdReg.IQT:
                iqt = merge(iqt, value, mask) & 0x7fff0L;
                if (iqt >= queueBytes() || (wideDescriptors() && (iqt & 0x10) != 0)) {
                    queueError(2); // a tail outside the queue, or not on a 256-bit descriptor
                } else {
                    processQueue();
                }
                break;
            case VtdReg.IQA:
                if (!qiEnabled) {
                    iqa = merge(iqa, value, mask) & (~0xfffL | VtdReg.IQA_DW | VtdReg.IQA_QS);
                }
                break;
            case 0x98:
                if (hi && ((int) (value >>> 32) & VtdReg.ICS_IWC) != 0) {
                    ics &= ~VtdReg.ICS_IWC;
                    iectl &= ~VtdReg.CTL_IP; // the completion was serviced
                }
                break;
            case VtdReg.IECTL:
                if (lo) {
                    iectl = (iectl & VtdReg.CTL_IP) | ((int) value & VtdReg.CTL_IM);
                    if ((iectl & VtdReg.CTL_IM) == 0 && (iectl & VtdReg.CTL_IP) != 0) {
                        iectl &= ~VtdReg.CTL_IP;
                        waitInterrupts++;
                    }
                }
                if (hi) {
                    iedata = (int) (value >>> 32);
                }
                break;
            case VtdReg.IEADDR:
                ieaddr = merge(ieaddr, value, mask);
                break;
            case VtdReg.PQH:
            case VtdReg.PQA:
            case 0xd8:
            case VtdReg.PECTL:
                prq.write(off, value, mask);
                break;
            case IOTLB_REGS:
                iva = merge(iva, value, mask) & (~0xfffL | 0x7f);
                break;
            case IOTLB_REGS + 8:
                iotlbCommand(merge(iotlbReg, value, mask));
                break;
            default:
                break; // read-only or reserved: ignored
        }
    }

    /** GCMD (§10.4.4): act on TE and QIE changes and on the one-shot SRTP. */
    private void globalCommand(int value) {
        if ((value & VtdReg.GCMD_SRTP) != 0) {
            rootTable = rtaddr;
            rtaddrLatched = true;
            translator.contextCache.invalidateAll();
            translator.pasidCache.invalidateAll();
            translator.iotlb.invalidateAll();
            forgetReported(); // a new root table: the guest's structures start over
        }
        boolean te = (value & VtdReg.GCMD_TE) != 0;
        if (te != translationEnabled) {
            translationEnabled = te;
            if (!te) {
                forgetReported();
            }
        }
        boolean qie = (value & VtdReg.GCMD_QIE) != 0;
        if (qie != qiEnabled) {
            qiEnabled = qie;
            if (qie) {
                iqh = 0; // enabling QI resets the head (§6.5.2)
            }
        }
    }

    /** CCMD (§10.4.7): register-based context-cache invalidation when ICC is set. */
    private void contextCommand(long value) {
        ccmd = value;
        if ((value & (1L << 63)) == 0) {
            return;
        }
        int cirg = (int) (value >>> 61) & 3;
        if (cirg == 3) {
            invalidateContexts((int) (value >>> 16) & 0xffff, (int) (value >>> 32) & 3);
        } else {
            translator.contextCache.invalidateAll();
        }
        // Done: clear ICC and report the actual granularity (CAIG 60:59) as requested.
        ccmd = (value & ~(1L << 63) & ~(3L << 59)) | ((long) cirg << 59);
    }

    /**
     * Device-selective context-cache invalidation with a function mask (FM): 1 masks bit 2 of the
     * function number, 2 bits 2:1, 3 bits 2:0, so one request covers a group of functions.
     */
    private void invalidateContexts(int sid, int fm) {
        int masked = fm == 0 ? 0 : (7 << (3 - fm)) & 7;
        translator.contextCache.invalidate((key, data, o) -> (key & ~masked) == (sid & ~masked));
    }

    /** IOTLB register (§10.4.8.1): register-based IOTLB invalidation when IVT is set. */
    private void iotlbCommand(long value) {
        iotlbReg = value;
        if ((value & (1L << 63)) == 0) {
            return;
        }
        int iirg = (int) (value >>> 60) & 3;
        int did = (int) (value >>> 32) & 0xffff;
        if (iirg == 3) {
            int am = (int) (iva & 0x3f);
            if (am > 18) {
                // AM beyond CAP.MAMV: not performed, reported as IAIG 0.
                iotlbReg = value & ~(1L << 63) & ~(3L << 57);
                return;
            }
            translator.iotlb.invalidateRangeAnyTag2(did, iva & ~0xfffL, 4096L << am, (iva & 0x40) != 0);
        } else if (iirg == 0) {
            iotlbReg = value & ~(1L << 63) & ~(3L << 57); // reserved granularity: not performed
            return;
        } else if (iirg == 2) {
            translator.iotlb.invalidateTag1(did);
        } else {
            translator.iotlb.invalidateAll();
        }
        iotlbReg = (value & ~(1L << 63) & ~(3L << 57)) | ((long) iirg << 57);
    }

    // ---- queued invalidation -----------------------------------------------------------------

    private boolean wideDescriptors() {
        return (iqa & VtdReg.IQA_DW) != 0;
    }

    private long queueBytes() {
        return 4096L << (iqa & VtdReg.IQA_QS);
    }

    /** Processes descriptors from IQH to IQT (§6.5.2); bounded by the queue size. */
    private void processQueue() {
        if (!qiEnabled || (fstsSticky & VtdReg.FSTS_IQE) != 0) {
            return;
        }
        int size = wideDescriptors() ? 32 : 16;
        long bytes = queueBytes();
        long base = iqa & ~0xfffL;
        long tail = iqt % bytes;
        for (long n = bytes / size; iqh != tail && n > 0; n--) {
            long[] d = descriptor;
            try {
                for (int i = 0; i < size / 8; i++) {
                    d[i] = memory.read64(base + iqh + 8L * i);
                }
            } catch (MemoryAccessException e) {
                queueError(0);
                return;
            }
            if (!execute(d)) {
                queueError(1);
                return;
            }
            descriptors.increment();
            iqh = (iqh + size) % bytes;
        }
    }

    private void queueError(int code) {
        fstsSticky |= VtdReg.FSTS_IQE;
        iqercd = code;
        queueErrors++;
        if (faults.raiseEvent()) {
            faultInterrupt.run(); // the queue error is reported with a fault event (§6.5.2.10)
        }
    }

    /** The VMM's trap of a virtual IOMMU, or null. */
    private volatile GuestIommuListener guestListener;
    /** First-stage bindings reported to the guest listener: (source id << 20 | PASID) -> what was reported. */
    private final java.util.Map<Long, GuestPasidBind> reportedBindings = new java.util.HashMap<>();
    /** The DID each reported binding carried. */
    private final java.util.Map<Long, Integer> reportedDids = new java.util.HashMap<>();

    /**
     * @param listener receives what the guest's invalidations reveal (caching mode), or null
     */
    public void setGuestListener(GuestIommuListener listener) {
        synchronized (reportedBindings) {
            this.guestListener = listener;
            reportedBindings.clear();
            reportedDids.clear();
        }
    }

    /**
     * After a domain-selective or global PASID-cache invalidation: re-reads every binding reported
     * before (of {@code did}, or all for -1) and reports those that changed or went away. New
     * bindings are announced by PASID-selective invalidations, as Linux's driver issues them.
     */
    private void revalidateReported(GuestIommuListener l, int did) {
        for (long key : new java.util.ArrayList<>(reportedBindings.keySet())) {
            if (did < 0 || reportedDids.get(key) == did) {
                int sid = (int) (key >>> 20);
                int pasid = (int) key & 0xfffff;
                compareAndReport(l, sid, pasid, reportedDids.get(key), readBinding(sid, pasid, reportedDids.get(key)));
            }
        }
    }

    /** The root table was replaced or translation turned off: every reported binding is gone. */
    private void forgetReported() {
        GuestIommuListener l = guestListener;
        if (l == null) {
            return;
        }
        for (long key : new java.util.ArrayList<>(reportedBindings.keySet())) {
            compareAndReport(l, (int) (key >>> 20), (int) key & 0xfffff, reportedDids.get(key), Optional.empty());
        }
    }

    /** Reports a binding only if it differs from what was reported for that source id and PASID. */
    private void compareAndReport(GuestIommuListener l, int sid, int pasid, int did, Optional<GuestPasidBind> now) {
        long key = (long) sid << 20 | pasid;
        GuestPasidBind before = reportedBindings.get(key);
        if (now.isPresent() ? now.get().equals(before) : before == null) {
            return;
        }
        if (now.isPresent()) {
            reportedBindings.put(key, now.get());
            reportedDids.put(key, did);
        } else {
            reportedBindings.remove(key);
            reportedDids.remove(key);
        }
        l.pasidEntryChanged(sid, pasid, now);
    }

    /**
     * @return the first-stage binding the PASID entry of {@code sid}/{@code pasid} holds with domain
     *     id {@code did}, or empty (absent, another PGTT, another DID, or a reserved FLPM)
     */
    private Optional<GuestPasidBind> readBinding(int sid, int pasid, int did) {
        if ((rootTable & VtdReg.RTADDR_TTM_MASK) != VtdReg.RTADDR_TTM_SCALABLE || !translationEnabled) {
            return Optional.empty();
        }
        long re = readQuietly((rootTable & ~0xfffL) + (sid >>> 8) * 16L + ((sid >>> 7) & 1) * 8L);
        if ((re & 1) == 0) {
            return Optional.empty();
        }
        long ce = readQuietly((re & ~0xfffL) + (sid & 0x7f) * 32L);
        if ((ce & 1) == 0 || (pasid >>> 6) >= 1 << (((ce >>> 9) & 7) + 7)) {
            return Optional.empty();
        }
        long de = readQuietly((ce & ~0xfffL) + (pasid >>> 6) * 8L);
        if ((de & 1) == 0) {
            return Optional.empty();
        }
        long e = (de & ~0xfffL) + (pasid & 63) * 64L;
        long q0 = readQuietly(e);
        long q1 = readQuietly(e + 8);
        long q2 = readQuietly(e + 16);
        int flpm = (int) (q2 >>> 2) & 3;
        if ((q0 & 1) == 0 || ((q0 >>> 6) & 7) != 1 || (q1 & 0xffff) != did || flpm > 1) {
            return Optional.empty();
        }
        // FLPTPTR 63:12, FLPM 3:2 (0 4-level, 1 5-level), SRE 0 (VT-d 3.x §9.6).
        return Optional.of(new GuestPasidBind(NestingInfo.FORMAT_INTEL_VTD, pasid, pasid, true, q2 & ~0xfffL,
                48 + 9 * flpm, (q2 & 1) != 0 ? GuestPasidBind.VTD_SRE : 0, 0, 0));
    }

    /**
     * After a PASID-selective PASID-cache invalidation: re-reads the PASID entries of {@code pasid}
     * with domain id {@code did} under every present scalable-mode context entry, and reports first-stage
     * bindings that appeared, changed or went away (QEMU's {@code vtd_pasid_cache_sync}).
     */
    private void reportPasidEntries(GuestIommuListener l, int did, int pasid) {
        if ((rootTable & VtdReg.RTADDR_TTM_MASK) != VtdReg.RTADDR_TTM_SCALABLE) {
            return; // legacy mode has no PASID entries
        }
        // Entries reported before: changed or gone.
        for (long key : new java.util.ArrayList<>(reportedBindings.keySet())) {
            if ((key & 0xfffff) == pasid && reportedDids.get(key) == did) {
                compareAndReport(l, (int) (key >>> 20), pasid, did, readBinding((int) (key >>> 20), pasid, did));
            }
        }
        // Entries that appeared: every present scalable-mode context entry.
        long root = rootTable & ~0xfffL;
        for (int bus = 0; bus < 256; bus++) {
            for (int half = 0; half < 2; half++) {
                long re = readQuietly(root + bus * 16L + half * 8L);
                if ((re & 1) == 0) {
                    continue;
                }
                for (int i = 0; i < 128; i++) {
                    int sid = bus << 8 | half << 7 | i;
                    if ((readQuietly((re & ~0xfffL) + i * 32L) & 1) == 0) {
                        continue;
                    }
                    Optional<GuestPasidBind> now = readBinding(sid, pasid, did);
                    if (now.isPresent()) {
                        compareAndReport(l, sid, pasid, did, now);
                    }
                }
            }
        }
    }

    private long readQuietly(long address) {
        try {
            return memory.read64(address);
        } catch (MemoryAccessException e) {
            return 0;
        }
    }

    /**
     * Executes one descriptor (§6.5.2.1-§6.5.2.11); type = qw0[11:9]:qw0[3:0].
     *
     * @return {@code false} for an invalid descriptor
     */
    private boolean execute(long[] d) {
        long q0 = d[0];
        long q1 = d[1];
        int type = (int) (((q0 >>> 5) & 0x70) | (q0 & 0xf));
        int g = (int) (q0 >>> 4) & 3;
        int did = (int) (q0 >>> 16) & 0xffff;
        int pasid = (int) (q0 >>> 32) & 0xfffff;
        switch (type) {
            case 1: // context-cache invalidate: G 1 global, 2 domain, 3 device (SID 47:32)
                if (g == 0) {
                    return false;
                }
                if (g == 3) {
                    invalidateContexts((int) (q0 >>> 32) & 0xffff, (int) (q0 >>> 48) & 3);
                } else {
                    translator.contextCache.invalidateAll();
                }
                return true;
            case 2: // IOTLB invalidate: G 1 global, 2 domain, 3 page (ADDR 63:12, IH 6, AM 5:0)
                return iotlbInvalidate(g, did, q1, false, 0);
            case 3: // device-TLB invalidate: no ATS device-TLBs are modelled
            case 4: // interrupt entry cache: no interrupt remapping is modelled
            case 8: // PASID-based device-TLB invalidate
                return true;
            case 9: // page group response: PASID present 4, response code 15:12, RID 31:16, PASID 51:32;
                    // LPIG 66, PRG index 75:67
                prq.respond((int) (q0 >>> 16) & 0xffff, (q0 & (1L << 4)) != 0 ? pasid : org.iommulab.api.pasid.Pasids.NO_PASID,
                        (int) (q1 >>> 3) & 0x1ff, (int) (q0 >>> 12) & 0xf);
                GuestIommuListener responded = guestListener;
                if (responded != null) {
                    int code = (int) (q0 >>> 12) & 0xf;
                    responded.pageResponse((int) (q0 >>> 16) & 0xffff,
                            (q0 & (1L << 4)) != 0 ? pasid : org.iommulab.api.pasid.Pasids.NO_PASID, (int) (q1 >>> 3) & 0x1ff,
                            code == 0 ? PageResponse.SUCCESS : code == 1 ? PageResponse.INVALID : PageResponse.FAILURE);
                }
                return true;
            case 5: // invalidation wait: IF 4, SW 5, FN 6, status data 63:32, status address 63:2
                if ((q0 & (1L << 5)) != 0) {
                    try {
                        memory.write32(q1 & ~3L, (int) (q0 >>> 32));
                    } catch (MemoryAccessException e) {
                        return false;
                    }
                }
                if ((q0 & (1L << 4)) != 0 && (ics & VtdReg.ICS_IWC) == 0) {
                    // A new completion event only when the last one was serviced (IWC clear).
                    ics |= VtdReg.ICS_IWC;
                    if ((iectl & VtdReg.CTL_IM) != 0) {
                        iectl |= VtdReg.CTL_IP;
                    } else {
                        waitInterrupts++;
                    }
                }
                return true;
            case 6: // PASID-based IOTLB: G 2 all of a PASID, 3 page-selective within the PASID
                if (g < 2) {
                    return false;
                }
                if (!iotlbInvalidate(g == 2 ? 4 : 5, did, q1, true, pasid)) {
                    return false;
                }
                GuestIommuListener flushed = guestListener;
                if (flushed != null) {
                    try {
                        flushed.invalidated(g == 2 ? CacheInvalidation.pasid(Set.of(CacheType.IOTLB), pasid, -1)
                                : CacheInvalidation.range(Set.of(CacheType.IOTLB), pasid, -1, q1 & ~0xfffL, 4096,
                                        1L << (q1 & 0x3f), (q1 & 0x40) != 0));
                    } catch (org.iommulab.api.errno.IommuException e) {
                        // cannot happen for a descriptor iotlbInvalidate accepted
                    }
                }
                return true;
            case 7: // PASID-cache: G 0 domain, 1 PASID-selective, 3 global
                if (g == 2) {
                    return false;
                }
                if (g == 3) {
                    translator.pasidCache.invalidateAll();
                    GuestIommuListener all = guestListener;
                    if (all != null) {
                        revalidateReported(all, -1);
                    }
                } else if (g == 0) {
                    translator.pasidCache.invalidate((key, data, o) -> (data[o + 1] & 0xffff) == did);
                    GuestIommuListener domain = guestListener;
                    if (domain != null) {
                        revalidateReported(domain, did);
                    }
                } else {
                    translator.pasidCache.invalidate((key, data, o) -> (data[o + 1] & 0xffff) == did
                            && (key & 0xfffff) == pasid);
                    GuestIommuListener l = guestListener;
                    if (l != null) {
                        reportPasidEntries(l, did, pasid);
                    }
                }
                return true;
            default:
                return false;
        }
    }

    /** @param mode 1 global, 2 domain, 3 page within domain, 4 all of a PASID, 5 page within a PASID */
    private boolean iotlbInvalidate(int mode, int did, long q1, boolean withPasid, int pasid) {
        int am = (int) (q1 & 0x3f);
        boolean ih = (q1 & 0x40) != 0;
        long addr = q1 & ~0xfffL;
        switch (mode) {
            case 1:
                translator.iotlb.invalidateAll();
                return true;
            case 2:
                translator.iotlb.invalidateTag1(did);
                return true;
            case 3:
            case 5:
                if (am > 18 || (addr & ((4096L << am) - 1)) != 0) {
                    return false; // AM beyond CAP.MAMV, or an address not aligned to the range
                }
                if (mode == 3) {
                    translator.iotlb.invalidateRangeAnyTag2(did, addr, 4096L << am, ih);
                } else {
                    translator.iotlb.invalidateRange(did, pasid, addr, 4096L << am, ih);
                }
                return true;
            case 4:
                translator.iotlb.invalidateTag(did, pasid);
                return true;
            default:
                return false;
        }
    }

    // ---- introspection -----------------------------------------------------------------------

    /**
     * A device's page request (§7.5): accepted when page requests are enabled for the device
     * (ECAP.PRS, a page request queue, translation on, a present context entry with PRE set).
     *
     * @return {@code true} if accepted (queued, or answered by the unit on overflow)
     */
    public boolean pageRequest(int sid, int pasid, long address, int access, int group) {
        if (!translationEnabled || !config.prs || !prq.enabled()
                || !translator.pageRequestsEnabled(rootTable, sid & 0xffff)) {
            return false;
        }
        if (prq.request(sid, pasid, address, access, group)) {
            pageRequestInterrupt.run();
        }
        return true;
    }

    /** @return the device-visible response to a page request group, consumed; null while pending */
    public org.iommulab.api.fault.PageResponse pageRequestStatus(int sid, int pasid, int group) {
        return prq.status(sid, pasid, group);
    }

    /**
     * Connects the page request interrupt.
     *
     * @param handler called on the requesting thread when a page request event is delivered
     */
    public void setPageRequestInterrupt(Runnable handler) {
        this.pageRequestInterrupt = handler == null ? () -> { } : handler;
    }

    /**
     * Connects the fault interrupt (the MSI that FEDATA/FEADDR describe).
     *
     * @param handler called on the faulting thread after a fault is recorded with FECTL.IM clear;
     *     must not block
     */
    public void setFaultInterrupt(Runnable handler) {
        this.faultInterrupt = handler == null ? () -> { } : handler;
    }

    /**
     * @param code a fault reason
     * @return the specification's name for it, or {@code "UNKNOWN"}
     */
    public static String faultName(int code) {
        for (VtdFault f : VtdFault.values()) {
            if (f.code == code) {
                return f.spec;
            }
        }
        return "UNKNOWN";
    }

    /**
     * @param code a fault reason
     * @return its neutral class ({@code CONFIGURATION} for unknown codes)
     */
    public static org.iommulab.api.translation.FaultKind faultKind(int code) {
        for (VtdFault f : VtdFault.values()) {
            if (f.code == code) {
                return f.kind;
            }
        }
        return org.iommulab.api.translation.FaultKind.CONFIGURATION;
    }

    /** @return counters by name */
    public Map<String, Long> statistics() {
        Map<String, Long> m = new LinkedHashMap<>();
        m.put("translations", translations.sum());
        m.put("faults", faultCount.sum());
        m.put("faults-recorded", faults.recorded());
        m.put("faults-dropped", faults.dropped());
        m.put("fault-interrupts", faults.interrupts());
        m.put("iotlb-hits", translator.iotlb.stats().hits);
        m.put("iotlb-misses", translator.iotlb.stats().misses);
        m.put("iotlb-entries", (long) translator.iotlb.size());
        m.put("context-cache-hits", translator.contextCache.hits());
        m.put("context-cache-misses", translator.contextCache.misses());
        m.put("pasid-cache-hits", translator.pasidCache.hits());
        m.put("pasid-cache-misses", translator.pasidCache.misses());
        m.put("qi-descriptors", descriptors.sum());
        m.put("page-requests", prq.requests());
        m.put("page-request-overflows", prq.overflows());
        lock.lock();
        try {
            m.put("qi-errors", queueErrors);
            m.put("qi-wait-interrupts", waitInterrupts);
        } finally {
            lock.unlock();
        }
        return m;
    }
}
