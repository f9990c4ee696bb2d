package org.iommulab.smmuv3.internal.hw;

import org.iommulab.pgtable.tlb.EntryCache;

import java.util.List;

import org.iommulab.api.dto.WalkStepDTO;
import org.iommulab.api.errno.IommuException;
import org.iommulab.api.memory.MemoryAccessException;
import org.iommulab.api.memory.PhysicalMemory;
import org.iommulab.api.pasid.Pasids;
import org.iommulab.api.translation.Access;
import org.iommulab.api.translation.Stage;
import org.iommulab.api.translation.Translation;
import org.iommulab.pgtable.Perm;
import org.iommulab.pgtable.WalkFault;
import org.iommulab.pgtable.WalkResult;
import org.iommulab.pgtable.Walker;
import org.iommulab.pgtable.format.ArmGranule;
import org.iommulab.pgtable.format.ArmStage1;
import org.iommulab.pgtable.format.ArmStage2;
import org.iommulab.pgtable.tlb.Tlb;
import org.iommulab.pgtable.tlb.TlbHit;

/**
 * Translates one transaction the way an SMMUv3 does (Arm IHI 0070, §3.3-§3.4, §5): stream table
 * (linear or two-level) -> STE -> (stage 1) context descriptor table (linear or two-level, through
 * stage 2 when nested) -> CD -> page tables, through the configuration cache and the TLB.
 *
 * <p>TLB tags: tag1 is the VMID (0 for streams without stage 2), tag2 the ASID for stage-1 and
 * nested entries and {@link #S2_ONLY} for stage-2-only entries. Input addresses are keyed with TBI
 * applied and bits 63:56 dropped, so TTB0 and TTB1 addresses stay distinct (bits 55:48 differ).
 *
 * <p>Thread safe; allocates nothing per translation once a thread has translated before (formats
 * are created once per distinct configuration).
 */
final class SmmuTranslator {
    /** TLB tag2 of stage-2-only entries: beyond any 16-bit ASID. */
    static final long S2_ONLY = 1L << 16;
    /** TLB attribute: cached by a write walk (dirty state set). */
    static final long DIRTY = 1;
    static final long CLEAN = 0;
    /** Event CLASS values (§7.3.11): CD fetch, stage-1 table fetch, input address. */
    static final int CLASS_CD = 0;
    static final int CLASS_TT = 1;
    static final int CLASS_IN = 2;
    /** CD.R (bit 45) and CD.A (bit 46), in the CD's second word; STE.S2R (bit 186) in the sixth. */
    private static final int CD_R = 1 << 13;
    private static final int CD_A = 1 << 14;
    private static final int STE_S2R = 1 << 26;
    /** CD.S (bit 44), STE.S2S (bit 185), STE.S1STALLD (bit 91, in the third word). */
    private static final int CD_S = 1 << 12;
    private static final int STE_S2S = 1 << 25;
    private static final int STE_S1STALLD = 1 << 27;
    static final long KEY_MASK = 0x00ff_ffff_ffff_ffffL;
    private static final long ADDR_51_6 = 0x000f_ffff_ffff_ffc0L;
    private static final long ADDR_51_4 = 0x000f_ffff_ffff_fff0L;
    private static final long ADDR_55_6 = 0x00ff_ffff_ffff_ffc0L;
    private static final long ADDR_55_12 = 0x00ff_ffff_ffff_f000L;

    private final PhysicalMemory memory;
    private final SmmuConfig config;
    final EntryCache steCache;
    final EntryCache cdCache;
    final Tlb tlb;
    private final ArmStage1[] s1Formats = new ArmStage1[1 << 14];
    private final boolean[] s1Invalid = new boolean[1 << 14];
    private final ArmStage2[] s2Formats = new ArmStage2[1 << 16];
    private final boolean[] s2Invalid = new boolean[1 << 16];
    private final ThreadLocal<Scratch> scratch = ThreadLocal.withInitial(Scratch::new);

    /** Per-thread state: translating allocates nothing. */
    static final class Scratch {
        final long[] ste = new long[8];
        final long[] cd = new long[4];
        final WalkResult walk = new WalkResult();
        final TlbHit hit = new TlbHit();
        /**
         * The TLB's invalidation generation as the transaction began, before the STE and CD were
         * fetched: a walk result is cached only if no invalidation ran since. Read any later, a walk
         * that used a CD from before a CFGI_CD + TLBI_NH_ASID could cache an entry under an ASID
         * that software has since freed and given to another CD.
         */
        long tlbGeneration;
        /** The event to record, or {@code null}. */
        SmmuEvent event;
        /** {@code false} when CD.R or STE.S2R says the fault is not recorded (§5.4, §5.2). */
        boolean record;
        boolean s2;
        int eventClass;
        /** IPA (stage-2 faults) or fetch address (F_STE_FETCH, F_CD_FETCH, F_WALK_EABT). */
        long address2;
        /** Output of {@link #stage2Fetch}. */
        long fetched;
        /** Non-null while explaining: caches are bypassed and structures recorded. */
        List<WalkStepDTO> explain;

        void note(String level, long address, long entry, String meaning) {
            if (explain != null) {
                WalkStepDTO d = new WalkStepDTO();
                d.stage = "CONFIG";
                d.level = level;
                d.address = address;
                d.entry = entry;
                d.meaning = meaning;
                explain.add(d);
            }
        }
    }

    SmmuTranslator(PhysicalMemory memory, SmmuConfig config) {
        this.memory = memory;
        this.config = config;
        this.steCache = new EntryCache(config.configCacheSize, 8);
        this.cdCache = new EntryCache(config.configCacheSize, 4);
        this.tlb = new Tlb("smmuv3-tlb", config.tlbSize);
    }

    Scratch scratch() {
        return scratch.get();
    }

    private static int word(long[] words, int i) {
        return (int) (words[i >> 1] >>> ((i & 1) * 32));
    }

    /**
     * Translates one transaction with SMMUEN set.
     *
     * @param strtabBase STRTAB_BASE
     * @param strtabCfg STRTAB_BASE_CFG
     * @param sid StreamID (unsigned)
     * @param ssid SubstreamID or {@link Pasids#NO_PASID}
     * @param address input address
     * @param access {@link Access} bits
     * @param update set access/dirty flags (a real transaction) or not (explain)
     * @param out the result
     * @param s scratch; on a fault {@code s.event} and the record fields describe it
     * @return {@code true} on success
     */
    boolean translate(long strtabBase, int strtabCfg, int sid, int ssid, long address, int access, boolean update,
            Translation out, Scratch s) {
        for (int attempt = 0;; attempt++) {
            long steGeneration = steCache.generation();
            long cdGeneration = cdCache.generation();
            boolean ok = translateOnce(strtabBase, strtabCfg, sid, ssid, address, access, update, out, s);
            // CMD_SYNC completes only once transactions that may have used invalidated state have
            // completed (§4.6.3 CMD_SYNC). A model transaction is not atomic with an invalidation,
            // so one that overlapped any invalidation starts again: otherwise a CD fetched before
            // a CFGI_CD could, after the TLBI_NH_ASID that freed its ASID, hit entries cached
            // under that ASID by its next owner. Bounded so an invalidation storm cannot starve it.
            if (!update || attempt == MAX_RESTARTS || (tlb.generation() == s.tlbGeneration
                    && steCache.generation() == steGeneration && cdCache.generation() == cdGeneration)) {
                return ok;
            }
        }
    }

    /** Restarts of one transaction that overlapped invalidations, at most. */
    private static final int MAX_RESTARTS = 16;

    private boolean translateOnce(long strtabBase, int strtabCfg, int sid, int ssid, long address, int access,
            boolean update, Translation out, Scratch s) {
        s.event = null;
        s.record = true;
        s.s2 = false;
        s.eventClass = 0;
        s.address2 = 0;
        s.walk.clear();
        s.tlbGeneration = tlb.generation();
        if (!streamTableEntry(strtabBase, strtabCfg, sid, s, out)) {
            return false;
        }
        int w0 = word(s.ste, 0);
        int ste = (w0 >>> 1) & 7;
        if (ste < 4) {
            return fail(s, out, SmmuEvent.ABORT);
        }
        boolean hasSsid = ssid != Pasids.NO_PASID;
        if (ste == 4) {
            if (hasSsid) {
                return fail(s, out, SmmuEvent.C_BAD_SUBSTREAMID); // §5.2 S1Fmt: stage 1 disabled, bypass included
            }
            if (beyondIas(address)) {
                return addressSize(s, out, address);
            }
            out.success(address, 12, Access.READ | Access.WRITE | Access.EXEC);
            return true;
        }
        boolean s1 = (ste & 1) != 0;
        boolean s2 = (ste & 2) != 0;
        if (hasSsid && (ssid < 0 || (ssid >>> config.ssidSize) != 0)) {
            return fail(s, out, SmmuEvent.C_BAD_SUBSTREAMID);
        }
        ArmStage2 s2f = null;
        long s2ttb = 0;
        // §5.2 S2VMID: with stage 2 implemented, it tags stage-1-only translations too.
        int vmid = config.stage2 ? word(s.ste, 4) & (config.vmid16 ? 0xffff : 0xff) : 0;
        if (s2) {
            int w5 = word(s.ste, 5);
            s2f = s2Format(w5);
            s2ttb = (((long) word(s.ste, 7) << 32) | (word(s.ste, 6) & 0xffff_ffffL)) & ADDR_51_4;
            // §5.2 S2TTB: bits below the alignment of the (concatenated) starting-level table are
            // treated as zero ("the SMMU effectively aligns the value in this field before use").
            s2ttb &= -(8L << s2f.indexBits(0));
        }
        if (!s1) {
            if (hasSsid) {
                return fail(s, out, SmmuEvent.C_BAD_SUBSTREAMID);
            }
            if (beyondIas(address)) {
                return addressSize(s, out, address);
            }
            return walk(null, 0, s2f, s2ttb, vmid, S2_ONLY, address, address, access, update, out, s);
        }
        int w1 = word(s.ste, 1);
        int cdMax = cdMax(w1);
        int s1dss = word(s.ste, 2) & 3;
        if (s1dss == 3) {
            s1dss = 0; // reserved, behaves as 0b00
        }
        int cdIndex;
        if (hasSsid) {
            if (cdMax == 0 || (ssid >>> cdMax) != 0) {
                return fail(s, out, SmmuEvent.C_BAD_SUBSTREAMID);
            }
            if (s1dss == 2 && ssid == 0) {
                return fail(s, out, SmmuEvent.F_STREAM_DISABLED); // §7.3.7: substream 0 is reserved for no-SSID traffic
            }
            cdIndex = ssid;
        } else if (cdMax == 0 || s1dss == 2) {
            cdIndex = 0;
        } else if (s1dss == 1) {
            // Stage 1 bypassed for transactions without a SubstreamID.
            if (beyondIas(address)) {
                return addressSize(s, out, address);
            }
            if (!s2) {
                out.success(address, 12, Access.READ | Access.WRITE | Access.EXEC);
                return true;
            }
            return walk(null, 0, s2f, s2ttb, vmid, S2_ONLY, address, address, access, update, out, s);
        } else {
            return fail(s, out, SmmuEvent.F_STREAM_DISABLED);
        }
        if (!contextDescriptor(sid, cdIndex, s2f, s2ttb, update, s, out)) {
            return false;
        }
        // Address selection (TTB0 / TTB1), with top-byte-ignore.
        int c0 = word(s.cd, 0);
        int c1 = word(s.cd, 1);
        boolean upper = (address & (1L << 55)) != 0;
        boolean tbi = ((c1 >>> (upper ? 7 : 6)) & 1) != 0;
        long a = address;
        if (tbi) {
            a = upper ? a | 0xff00_0000_0000_0000L : a & KEY_MASK;
        }
        boolean epd = ((c0 >>> (upper ? 30 : 14)) & 1) != 0;
        int tsz = upper ? (c0 >>> 16) & 0x3f : c0 & 0x3f;
        int inputBits = 64 - tsz;
        long top = a >> inputBits; // arithmetic: all ones for the upper range
        if (epd || top != (upper ? -1L : 0L)) {
            s.event = SmmuEvent.F_TRANSLATION;
            s.eventClass = CLASS_IN;
            s.record = (c1 & CD_R) != 0;
            out.fault(s.event.kind, Stage.STAGE1, s.event.code, s.event.spec, 0, address);
            return false;
        }
        ArmStage1 s1f = s1Format(c0, c1, upper);
        long ttb = (((long) word(s.cd, upper ? 5 : 3) << 32) | (word(s.cd, upper ? 4 : 2) & 0xffff_ffffL)) & ADDR_51_4;
        ttb &= -(8L << s1f.indexBits(0)); // §5.4 CD.TTB0/TTB1: aligned to the starting-level table, as S2TTB
        int asid = (c1 >>> 16) & (config.asid16 ? 0xffff : 0xff);
        long walkAddress = a & ((1L << inputBits) - 1);
        return walk(s1f, ttb, s2f, s2ttb, vmid, asid, a & KEY_MASK, walkAddress, access, update, out, s);
    }

    /** The TLB lookup, then the walk of whichever stages are configured, then the TLB fill. */
    private boolean walk(ArmStage1 s1f, long ttb, ArmStage2 s2f, long s2ttb, int tag1, long tag2, long key,
            long walkAddress, int access, boolean update, Translation out, Scratch s) {
        boolean write = (access & Access.WRITE) != 0;
        int check = s1f == null ? access | Access.PRIV : access;
        if (s.explain == null && tlb.lookup(tag1, tag2, key, true, s.hit) && Perm.check(s.hit.permissions(), check) == null
                && (!write || s.hit.attributes() == DIRTY)) {
            out.success(s.hit.outputAddress(), s.hit.pageShift(), Perm.toAccess(s.hit.permissions()));
            return true;
        }
        long generation = s.tlbGeneration;
        WalkResult w = s.walk;
        boolean ok;
        if (s1f == null) {
            ok = Walker.walk(memory, s2f, s2ttb, walkAddress, access | Access.PRIV, update, w);
        } else if (s2f == null) {
            ok = Walker.walk(memory, s1f, ttb, walkAddress, access, update, w);
        } else {
            ok = Walker.walkNested(memory, s1f, ttb, s2f, s2ttb, walkAddress, access, update, w);
        }
        if (!ok) {
            walkFailed(w, CLASS_IN, s);
            out.fault(s.event.kind, w.faultStage(), s.event.code, s.event.spec, w.faultDepth(), w.faultAddress());
            return false;
        }
        if (update && s.explain == null) {
            tlb.insertIfUnchanged(generation, tag1, tag2, key, w.pageShift(), w.outputAddress(), w.permissions(),
                    write ? DIRTY : CLEAN, true);
        }
        out.success(w.outputAddress(), w.pageShift(), Perm.toAccess(w.permissions()));
        return true;
    }

    /**
     * Fills the event fields from a failed walk; {@code stage2Class} is the CLASS of a final stage-2
     * fault. Translation, address size, access flag and permission faults are recorded only if
     * the stage's R bit says so: STE.S2R for stage 2, CD.R for stage 1 (QEMU's PTW_RECORD_FAULT).
     */
    private static void walkFailed(WalkResult w, int stage2Class, Scratch s) {
        s.event = eventOf(w.fault());
        s.s2 = w.faultStage() == Stage.STAGE2;
        if (s.event != SmmuEvent.F_WALK_EABT) {
            s.record = s.s2 ? (word(s.ste, 5) & STE_S2R) != 0 : (word(s.cd, 1) & CD_R) != 0;
        }
        // §7.3.12-16: a stage-1 fault is CLASS IN, a stage-1 descriptor fetch abort CLASS TT.
        s.eventClass = s.s2 ? (w.faultDuringTableFetch() ? CLASS_TT : stage2Class)
                : s.event == SmmuEvent.F_WALK_EABT ? CLASS_TT : CLASS_IN;
        if (s.event == SmmuEvent.F_WALK_EABT) {
            s.address2 = w.faultEntryAddress();
        } else {
            s.address2 = s.s2 ? w.faultAddress() : 0;
        }
    }

    /** Maps a neutral walk fault to its event (§7.3). */
    static SmmuEvent eventOf(WalkFault f) {
        switch (f) {
            case OUTPUT_RANGE:
                return SmmuEvent.F_ADDR_SIZE;
            case ACCESS_FLAG:
                return SmmuEvent.F_ACCESS;
            case READ:
            case WRITE:
            case EXEC:
            case PRIVILEGE:
                return SmmuEvent.F_PERMISSION;
            case TABLE_FETCH:
            case AD_UPDATE:
                return SmmuEvent.F_WALK_EABT;
            default:
                return SmmuEvent.F_TRANSLATION;
        }
    }

    // ---- stream table -------------------------------------------------------------------------

    /**
     * Whether a stream may send page requests: its STE is present, valid and not aborting. (ATS
     * itself is not modelled, so EATS is not required.)
     */
    boolean acceptsPageRequests(long base, int cfg, int sid) {
        Scratch s = scratch();
        Translation ignored = new Translation();
        if (!streamTableEntry(base, cfg, sid, s, ignored)) {
            return false;
        }
        long w0 = s.ste[0];
        return (w0 & 1) != 0 && ((w0 >>> 1) & 4) != 0;
    }

    /**
     * @return the eight doublewords of a stream's STE as the unit would use it now, or null if the
     *     stream id is out of range, the entry unreadable or ILLEGAL
     */
    long[] steOf(long base, int cfg, int sid) {
        Scratch s = scratch();
        if (!streamTableEntry(base, cfg, sid, s, new Translation())) {
            return null;
        }
        return s.ste.clone();
    }

    private boolean streamTableEntry(long base, int cfg, int sid, Scratch s, Translation out) {
        long sidU = sid & 0xffff_ffffL;
        int log2 = Math.min(cfg & 0x3f, config.sidSize);
        if ((sidU >>> config.sidSize) != 0 || (sidU >>> log2) != 0) {
            return fail(s, out, SmmuEvent.C_BAD_STREAMID);
        }
        if (s.explain == null && steCache.lookup(sidU, s.ste)) {
            return true;
        }
        long generation = steCache.generation();
        // §6.3.25: FMT 0b10/0b11 (and 0b01 without two-level support) behave as linear; SPLIT
        // values other than 6, 8 and 10 behave as 6.
        int fmt = (cfg >>> 16) & 3;
        long steAddress;
        if (fmt != 1 || !config.twoLevelStreamTable) {
            steAddress = base + sidU * 64;
        } else {
            int split = (cfg >>> 6) & 0x1f;
            if (split != 8 && split != 10) {
                split = 6;
            }
            long l1 = base + (sidU >>> split) * 8;
            long desc;
            try {
                desc = memory.read64(l1);
            } catch (MemoryAccessException e) {
                s.address2 = l1;
                return fail(s, out, SmmuEvent.F_STE_FETCH);
            }
            int span = (int) desc & 0x1f;
            s.note("L1STD", l1, desc, span == 0 ? "invalid" : String.format("L2 table 0x%x, span %d", desc & ADDR_51_6, span));
            if (span == 0 || span > 11 || span > split + 1) {
                return fail(s, out, SmmuEvent.C_BAD_STREAMID); // invalid, reserved or wider than SPLIT (§5.1)
            }
            long low = sidU & ((1L << split) - 1);
            if ((low >>> (span - 1)) != 0) {
                return fail(s, out, SmmuEvent.C_BAD_STREAMID);
            }
            // §5.1 L1STD.L2Ptr: bits [N:0], N = 5 + (Span - 1), are taken as zero, so the level-2
            // array is aligned to its size.
            steAddress = (desc & ADDR_51_6 & -(1L << (span + 5))) + low * 64;
        }
        try {
            for (int i = 0; i < 8; i++) {
                s.ste[i] = memory.read64(steAddress + 8L * i);
            }
        } catch (MemoryAccessException e) {
            s.address2 = steAddress;
            return fail(s, out, SmmuEvent.F_STE_FETCH);
        }
        s.note("STE " + sidU, steAddress, s.ste[0], describeSte(s.ste));
        if (!validSte(s.ste)) {
            return fail(s, out, SmmuEvent.C_BAD_STE);
        }
        if (s.explain == null) {
            steCache.fill(sidU, s.ste, generation);
        }
        return true;
    }

    private static String describeSte(long[] ste) {
        int w0 = word(ste, 0);
        String[] configs = {"abort", "abort", "abort", "abort", "bypass", "stage 1", "stage 2", "nested"};
        return String.format("V %d, %s, S1Fmt %d, S1ContextPtr 0x%x, S1CDMax %d, S1DSS %d, VMID %d, S2 0x%08x, S2TTB 0x%x",
                w0 & 1, configs[(w0 >>> 1) & 7], (w0 >>> 4) & 3,
                contextPointer(ste), (word(ste, 1) >>> 27) & 0x1f,
                word(ste, 2) & 3, word(ste, 4) & 0xffff, word(ste, 5),
                ((((long) word(ste, 7) & 0xfffff) << 32) | (word(ste, 6) & 0xffff_ffffL)) & ADDR_51_4);
    }

    /**
     * STE.S1CDMax from the STE's second word: IGNORED, so 0 (one CD, no substreams), when the unit
     * has no substreams (§5.2 S1CDMax: "If SMMU_IDR1.SSIDSIZE == 0, this field is IGNORED"; §5.2.2
     * checks it against SSIDSIZE only when SSIDSIZE != 0).
     */
    private int cdMax(int w1) {
        return config.ssidSize == 0 ? 0 : (w1 >>> 27) & 0x1f;
    }

    /** @return STE.S1ContextPtr, bits 55:6 (§5.2; bits above the OAS make a stage-1-only STE ILLEGAL) */
    private static long contextPointer(long[] ste) {
        return ((((long) word(ste, 1) & 0xff_ffff) << 32) | (word(ste, 0) & 0xffff_ffffL)) & ADDR_55_6;
    }

    /** §5.2: the checks that make an STE ILLEGAL (C_BAD_STE). */
    private boolean validSte(long[] ste) {
        int w0 = word(ste, 0);
        if ((w0 & 1) == 0) {
            return false;
        }
        int cfg = (w0 >>> 1) & 7;
        if (cfg < 4 || cfg == 4) {
            return true;
        }
        boolean s1 = (cfg & 1) != 0;
        boolean s2 = (cfg & 2) != 0;
        if ((s1 && !config.stage1) || (s2 && !config.stage2)) {
            return false;
        }
        if (config.stage2 && !config.vmid16 && ((word(ste, 4) >>> 8) & 0xff) != 0) {
            return false; // §5.2 S2VMID: bits 15:8 != 0 with 8-bit VMIDs (IDR0.VMID16 0), when not IGNORED
        }
        int w2 = word(ste, 2);
        boolean s2s = (word(ste, 5) & STE_S2S) != 0;
        int eats = (w2 >>> 28) & 3;
        if (config.ats && ((eats == 2 && (cfg != 7 || s2s)) || (eats == 1 && s2 && s2s))) {
            // §5.2 EATS (IGNORED without IDR0.ATS or with Config[1:0] == 0b00): split-stage ATS (0b10)
            // needs Config 0b111 and S2S == 0 (IDR0.NS1ATS is 0); full ATS (0b01) needs S2S == 0
            // when stage 2 translates.
            return false;
        }
        if (s1) {
            int s1fmt = (w0 >>> 4) & 3;
            int cdMax = cdMax(word(ste, 1));
            // S1Fmt is IGNORED when S1CDMax is 0 and 0b11 behaves as 0b00 (§5.2); S1DSS 0b11 behaves as 0b00.
            if ((cdMax > 0 && (s1fmt == 1 || s1fmt == 2) && !config.twoLevelCd) || cdMax > config.ssidSize) {
                return false;
            }
            if ((w2 & STE_S1STALLD) != 0) {
                return false; // §5.2 S1STALLD, §5.5: ILLEGAL when IDR0.STALL_MODEL != 0b00 (here 0b01)
            }
            if (!s2 && (contextPointer(ste) >>> config.oas) != 0) {
                return false; // §3.4.3 (1): a stage-1-only S1ContextPtr beyond the OAS is C_BAD_STE (v3.1 on)
            }
        }
        if (s2) {
            int w5 = word(ste, 5);
            if ((w5 & (1 << 19)) == 0 || (w5 & (1 << 20)) != 0) {
                return false; // S2AA64 = 0 (AArch32 tables) or S2ENDI = 1 (big endian) unsupported
            }
            if (s2s) {
                return false; // §5.5: S2S == 1 is ILLEGAL with IDR0.STALL_MODEL 0b01 (no stalls)
            }
            long s2ttb = (((long) word(ste, 7) << 32) | (word(ste, 6) & 0xffff_ffffL)) & ADDR_51_4;
            if ((s2ttb >>> config.addressBits(Math.min((w5 >>> 16) & 7, 6))) != 0) {
                return false; // §5.2: S2TTB beyond the effective S2PS is ILLEGAL, not an address-size fault
            }
            return s2Format(w5) != null;
        }
        return true;
    }

    // ---- context descriptors ------------------------------------------------------------------

    /** Translates a CD-table address by stage 2 (nested) into {@code s.fetched}. */
    private boolean stage2Fetch(ArmStage2 s2f, long s2ttb, long ipa, boolean update, Scratch s, Translation out) {
        if (s2f == null) {
            s.fetched = ipa;
            return true;
        }
        WalkResult w = s.walk;
        if (!Walker.walk(memory, s2f, s2ttb, ipa, Access.READ | Access.PRIV, update, w)) {
            walkFailed(w, CLASS_CD, s);
            s.eventClass = CLASS_CD;
            out.fault(s.event.kind, Stage.STAGE2, s.event.code, s.event.spec, w.faultDepth(), ipa);
            return false;
        }
        s.fetched = w.outputAddress();
        return true;
    }

    private boolean contextDescriptor(int sid, int cdIndex, ArmStage2 s2f, long s2ttb, boolean update, Scratch s,
            Translation out) {
        long key = ((sid & 0xffff_ffffL) << 20) | cdIndex;
        if (s.explain == null && cdCache.lookup(key, s.cd)) {
            return true;
        }
        long generation = cdCache.generation();
        int w0 = word(s.ste, 0);
        long ctxPtr = contextPointer(s.ste);
        int cdMax = cdMax(word(s.ste, 1));
        int s1fmt = cdMax == 0 ? 0 : (w0 >>> 4) & 3; // IGNORED for a single CD; 0b11 behaves as 0b00
        long cdAddress;
        if (s1fmt == 0 || s1fmt == 3) {
            // §5.2 S1Fmt 0b00: the table is aligned to its size; S1ContextPtr[S1CDMax + 5:6] are RES0
            // and taken as zero (adding them could fetch from beyond the table).
            cdAddress = (ctxPtr & -(64L << cdMax)) + 64L * cdIndex;
        } else {
            int l2shift = s1fmt == 1 ? 6 : 10;
            // §5.2 S1Fmt 0b01/0b10: the L1 table is aligned to its size, or 64 bytes.
            long l1 = (ctxPtr & -Math.max(64L, 8L << Math.max(0, cdMax - l2shift))) + 8L * (cdIndex >>> l2shift);
            if (!stage2Fetch(s2f, s2ttb, l1, update, s, out)) {
                return false;
            }
            long desc;
            try {
                desc = memory.read64(s.fetched);
            } catch (MemoryAccessException e) {
                s.address2 = s.fetched;
                return fail(s, out, SmmuEvent.F_CD_FETCH);
            }
            s.note("L1CD", s.fetched, desc, (desc & 1) == 0 ? "invalid" : String.format("L2 CD table 0x%x", desc & ADDR_55_12));
            if ((desc & 1) == 0) {
                return fail(s, out, SmmuEvent.C_BAD_SUBSTREAMID);
            }
            long l2 = desc & ADDR_55_12;
            if (s2f == null && (l2 >>> config.oas) != 0) {
                // §3.4.3 (3): an L1CD.L2Ptr PA beyond the OAS is C_BAD_SUBSTREAMID in SMMUv3.1 and
                // later (nested, the IPA goes to stage 2 untruncated and faults there).
                return fail(s, out, SmmuEvent.C_BAD_SUBSTREAMID);
            }
            cdAddress = l2 + 64L * (cdIndex & ((1 << l2shift) - 1));
        }
        if (s2f == null && (cdAddress >>> config.oas) != 0) {
            return fail(s, out, SmmuEvent.C_BAD_STE); // §3.4.3 (1): a CD address beyond the OAS
        }
        if (!stage2Fetch(s2f, s2ttb, cdAddress, update, s, out)) {
            return false;
        }
        try {
            for (int i = 0; i < 4; i++) {
                s.cd[i] = memory.read64(s.fetched + 8L * i);
            }
        } catch (MemoryAccessException e) {
            s.address2 = s.fetched;
            return fail(s, out, SmmuEvent.F_CD_FETCH);
        }
        s.note("CD " + cdIndex, s.fetched, s.cd[0], String.format(
                "V %d, T0SZ %d, TG0 %d, EPD0 %d, T1SZ %d, TG1 %d, EPD1 %d, IPS %d, AA64 %d, HA %d, HD %d, R %d, A %d, ASID %d, TTB0 0x%x, TTB1 0x%x",
                (word(s.cd, 0) >>> 31) & 1, word(s.cd, 0) & 0x3f, (word(s.cd, 0) >>> 6) & 3, (word(s.cd, 0) >>> 14) & 1,
                (word(s.cd, 0) >>> 16) & 0x3f, (word(s.cd, 0) >>> 22) & 3, (word(s.cd, 0) >>> 30) & 1, word(s.cd, 1) & 7,
                (word(s.cd, 1) >>> 9) & 1, (word(s.cd, 1) >>> 11) & 1, (word(s.cd, 1) >>> 10) & 1,
                (word(s.cd, 1) >>> 13) & 1, (word(s.cd, 1) >>> 14) & 1,
                (word(s.cd, 1) >>> 16) & 0xffff, s.cd[1] & ADDR_51_4, s.cd[2] & ADDR_51_4));
        if (!validCd(s.cd)) {
            return fail(s, out, SmmuEvent.C_BAD_CD);
        }
        if (s.explain == null) {
            cdCache.fill(key, s.cd, generation);
        }
        return true;
    }

    /** §5.4: the checks that make a CD ILLEGAL (C_BAD_CD). */
    private boolean validCd(long[] cd) {
        int c0 = word(cd, 0);
        int c1 = word(cd, 1);
        boolean bothDisabled = (c0 & (1 << 14)) != 0 && (c0 & (1 << 30)) != 0;
        if ((c0 & (1 << 31)) == 0 || (c1 & (1 << 9)) == 0 || ((c0 & (1 << 15)) != 0 && !bothDisabled)) {
            // V = 0, AA64 = 0 (AArch32 tables) or ENDI = 1 (big endian); §5.4 ENDI is IGNORED when
            // both EPD0 and EPD1 are set.
            return false;
        }
        if ((c1 & CD_A) == 0) {
            return false; // IDR0.TERM_MODEL 1: terminated transactions always abort, A = 0 is ILLEGAL
        }
        if ((c1 & CD_S) != 0) {
            return false; // §5.5: CD.S == 1 is ILLEGAL with IDR0.STALL_MODEL 0b01 (no stalls)
        }
        if (!config.asid16 && (c1 >>> 24) != 0) {
            return false; // §5.4.2 CdIllegal(): ASID[15:8] != 0 with 8-bit ASIDs (IDR0.ASID16 0)
        }
        int ipsBits = config.addressBits(Math.min(c1 & 7, 6));
        if (((c0 & (1 << 14)) == 0 && ((cd[1] & ADDR_51_4) >>> ipsBits) != 0)
                || ((c0 & (1 << 30)) == 0 && ((cd[2] & ADDR_51_4) >>> ipsBits) != 0)) {
            return false; // §5.4: a TTB beyond the effective IPS is ILLEGAL
        }
        if ((c0 & (1 << 14)) == 0 && s1Format(c0, c1, false) == null) {
            return false;
        }
        return (c0 & (1 << 30)) != 0 || s1Format(c0, c1, true) != null;
    }

    // ---- formats, created once per configuration ----------------------------------------------

    private ArmGranule granule(int code) {
        switch (code) {
            case 0:
                return config.gran4k ? ArmGranule.G4K : null;
            case 1:
                return config.gran16k ? ArmGranule.G16K : null;
            case 2:
                return config.gran64k ? ArmGranule.G64K : null;
            default:
                return null;
        }
    }

    /** @return the stage-1 format for TTB0 or TTB1 of a CD, or {@code null} if the fields are illegal */
    ArmStage1 s1Format(int c0, int c1, boolean upper) {
        int tsz;
        int g;
        if (upper) {
            tsz = (c0 >>> 16) & 0x3f;
            int tg1 = (c0 >>> 22) & 3; // 1 16K, 2 4K, 3 64K
            g = tg1 == 1 ? 1 : tg1 == 2 ? 0 : tg1 == 3 ? 2 : 3;
        } else {
            tsz = c0 & 0x3f;
            int tg0 = (c0 >>> 6) & 3; // 0 4K, 1 64K, 2 16K
            g = tg0 == 0 ? 0 : tg0 == 1 ? 2 : tg0 == 2 ? 1 : 3;
        }
        int ips = Math.min(c1 & 7, 6);
        int outBits = config.addressBits(ips);
        int outEnc = SmmuConfig.oasEncoding(outBits);
        boolean affd = (c1 & (1 << 3)) != 0;
        boolean hd = (c1 & (1 << 10)) != 0;
        boolean ha = (c1 & (1 << 11)) != 0;
        if (g == 3) {
            return null;
        }
        int index = g | tsz << 2 | outEnc << 8 | (ha ? 1 << 11 : 0) | (hd ? 1 << 12 : 0) | (affd ? 1 << 13 : 0);
        ArmStage1 f = s1Formats[index];
        if (f != null || s1Invalid[index]) {
            return f;
        }
        ArmGranule granule = granule(g);
        try {
            f = granule == null ? null : ArmStage1.of(granule, tsz, outBits, ha, hd, affd);
        } catch (IommuException e) {
            f = null;
        }
        if (f == null) {
            s1Invalid[index] = true;
        } else {
            s1Formats[index] = f;
        }
        return f;
    }

    /** @return the stage-2 format an STE's word 5 selects, or {@code null} if the fields are illegal */
    ArmStage2 s2Format(int w5) {
        int t0sz = w5 & 0x3f;
        int sl0 = (w5 >>> 6) & 3;
        int tg = (w5 >>> 14) & 3; // 0 4K, 1 64K, 2 16K
        int g = tg == 0 ? 0 : tg == 1 ? 2 : tg == 2 ? 1 : 3;
        if (g == 3) {
            return null;
        }
        if (t0sz < 64 - config.oas) {
            // §5.2 S2T0SZ: the minimum is MAX(16, 64 - IAS), and IAS is the OAS with AArch64 tables
            // only (§3.4); out of range is ILLEGAL from SMMUv3.1 on.
            return null;
        }
        if (sl0 == 3 || (sl0 == 2 && config.oas < (g == 1 ? 42 : 44))) {
            // §5.2 S2SL0 follows VTCR_EL2.SL0 (Arm ARM AArch64.S2InvalidSL): 0b11 needs FEAT_TTST
            // (4K) or 52-bit addresses (16K), neither implemented (IDR3.STT, IDR5.DS are 0), and is
            // reserved for 64K; 0b10 (a start at level 0 for 4K, level 1 for 16K and 64K) needs a
            // physical address size of at least 44 bits (42 for 16K). Inconsistent: ILLEGAL.
            return null;
        }
        int ps = Math.min((w5 >>> 16) & 7, 6);
        int outBits = config.addressBits(ps);
        int outEnc = SmmuConfig.oasEncoding(outBits);
        boolean affd = (w5 & (1 << 21)) != 0;
        boolean hd = (w5 & (1 << 23)) != 0;
        boolean ha = (w5 & (1 << 24)) != 0;
        int index = g | t0sz << 2 | sl0 << 8 | outEnc << 10 | (ha ? 1 << 13 : 0) | (hd ? 1 << 14 : 0) | (affd ? 1 << 15 : 0);
        ArmStage2 f = s2Formats[index];
        if (f != null || s2Invalid[index]) {
            return f;
        }
        ArmGranule granule = granule(g);
        try {
            f = granule == null ? null : ArmStage2.of(granule, t0sz, sl0, outBits, ha, hd, affd);
        } catch (IommuException e) {
            f = null;
        }
        if (f == null) {
            s2Invalid[index] = true;
        } else {
            s2Formats[index] = f;
        }
        return f;
    }

    /**
     * §3.4: with stage 1 bypassed the input must fit the input address size, which with AArch64
     * tables only (IDR0.TTF 0b10) is the OAS.
     */
    private boolean beyondIas(long address) {
        return (address >>> config.oas) != 0;
    }

    /** A stage-1 F_ADDR_SIZE for an input the bypassed stage 1 cannot take (S2 0, CLASS IN). */
    private static boolean addressSize(Scratch s, Translation out, long address) {
        s.event = SmmuEvent.F_ADDR_SIZE;
        s.eventClass = CLASS_IN;
        out.fault(s.event.kind, Stage.STAGE1, s.event.code, s.event.spec, 0, address);
        return false;
    }

    private static boolean fail(Scratch s, Translation out, SmmuEvent event) {
        s.event = event;
        out.fault(event.kind, Stage.CONFIG, event.code, event.spec, 0, s.address2);
        return false;
    }
}
