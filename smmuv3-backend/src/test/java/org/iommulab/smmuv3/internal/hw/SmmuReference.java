package org.iommulab.smmuv3.internal.hw;

import java.util.Map;

import org.iommulab.api.memory.MemoryAccessException;
import org.iommulab.api.memory.PhysicalMemory;
import org.iommulab.api.translation.Access;

/**
 * A reference SMMUv3 translation for the property tests, written from Arm IHI 0070 (G.b) and the
 * VMSAv8-64 descriptor format of the Arm ARM (D8), and nothing else: it decodes the stream table,
 * STEs, CDs and page tables it finds in memory with its own bit positions and predicts what one
 * transaction must give, an output address or an event with its record fields. It never calls the
 * model's decoders, formats or the shared page-table engine.
 *
 * <p>Deliberately small: no caches, no queues, no flag updates (a walk only looks), one Security
 * state, StreamWorld NS-EL1 (IDR0.Hyp is 0), IDR0.STALL_MODEL 0b01 and TERM_MODEL 1, AArch64 tables
 * only (IDR0.TTF 0b10, so IAS = OAS, §3.4), little-endian tables, no 52-bit addressing, no
 * permission indirection. Where the specification leaves a choice (CONSTRAINED UNPREDICTABLE) the
 * reference picks one and names the other in {@link Result#alternative}.
 *
 * <p>{@code quirks} switch on the places where the shared page-table engine is, or has been, stricter
 * than VMSAv8-64 (reported, not fixed here: the engine is shared with VT-d and changed by others):
 * {@link #EXEC_NEEDS_READ}, an instruction fetch also needs read permission at the requesting
 * privilege, where the architecture lets EL0 execute AP[1] = 0 pages (execute-only) and stage 2
 * execute S2AP = 0b00 pages; {@link #PXN_FROM_LEAF}, "writable at EL0 is privileged execute-never"
 * from the leaf's AP bits without the APTable limits above it (fixed in the engine's working copy).
 */
final class SmmuReference {
    /** No SubstreamID. */
    static final int NONE = -1;
    /** Quirk: an instruction fetch also needs read permission. */
    static final int EXEC_NEEDS_READ = 1;
    /** Quirk: EL0-writable-implies-PXN from the leaf's AP bits alone. */
    static final int PXN_FROM_LEAF = 2;

    // Event types (§7.3).
    static final int C_BAD_STREAMID = 0x02;
    static final int F_STE_FETCH = 0x03;
    static final int C_BAD_STE = 0x04;
    static final int F_STREAM_DISABLED = 0x06;
    static final int C_BAD_SUBSTREAMID = 0x08;
    static final int F_CD_FETCH = 0x09;
    static final int C_BAD_CD = 0x0a;
    static final int F_WALK_EABT = 0x0b;
    static final int F_TRANSLATION = 0x10;
    static final int F_ADDR_SIZE = 0x11;
    static final int F_ACCESS = 0x12;
    static final int F_PERMISSION = 0x13;

    // Event record CLASS (§7.3.12-§7.3.16).
    static final int CLASS_CD = 0;
    static final int CLASS_TT = 1;
    static final int CLASS_IN = 2;

    /** Descriptor output/table address bits 47:12 (48-bit OA, Arm ARM D8.3). */
    private static final long OA_47_12 = 0x0000_ffff_ffff_f000L;

    /**
     * What the unit implements, from the same key=value configuration the model is created with
     * (the defaults are the most capable unit, DESIGN.md "The shell").
     */
    static final class Features {
        final int sidBits;
        final int ssidBits;
        final int oas;
        final boolean g4k;
        final boolean g16k;
        final boolean g64k;
        final boolean s1p;
        final boolean s2p;
        final boolean st2l;
        final boolean cd2l;
        final boolean ats;
        final boolean pri;
        final boolean asid16;
        final boolean vmid16;

        Features(Map<String, String> c) {
            sidBits = Integer.parseInt(c.getOrDefault("sidsize", "16"));
            ssidBits = Integer.parseInt(c.getOrDefault("ssidsize", "20"));
            oas = Integer.parseInt(c.getOrDefault("oas", "48"));
            String g = c.getOrDefault("granules", "all");
            g4k = g.equals("all") || g.contains("4k");
            g16k = g.equals("all") || g.contains("16k");
            g64k = g.equals("all") || g.contains("64k");
            s1p = Boolean.parseBoolean(c.getOrDefault("stage1", "true"));
            s2p = Boolean.parseBoolean(c.getOrDefault("stage2", "true"));
            st2l = Boolean.parseBoolean(c.getOrDefault("two-level-stream-table", "true"));
            cd2l = Boolean.parseBoolean(c.getOrDefault("two-level-cd-table", "true"));
            ats = Boolean.parseBoolean(c.getOrDefault("ats", "true"));
            pri = Boolean.parseBoolean(c.getOrDefault("pri", "true"));
            asid16 = Boolean.parseBoolean(c.getOrDefault("asid16", "true"));
            vmid16 = Boolean.parseBoolean(c.getOrDefault("vmid16", "true"));
        }

        /** §3.4: with AArch64 tables only the IAS is the OAS. */
        int ias() {
            return oas;
        }

        /** §5.2 S2PS, §5.4 IPS: 32, 36, 40, 42, 44, 48 bits, then 52 (capped to the OAS). */
        int cappedSize(int encoding) {
            int[] sizes = {32, 36, 40, 42, 44, 48, 52, 52};
            return Math.min(sizes[encoding & 7], oas);
        }

        /** @return log2 of the granule, or -1 if the unit does not implement it (IDR5.GRAN*) */
        int granule(int shift) {
            return (shift == 12 && g4k) || (shift == 14 && g16k) || (shift == 16 && g64k) ? shift : -1;
        }
    }

    /** What a transaction must give. */
    static final class Result {
        boolean success;
        long pa;
        int pageShift;
        /** Access.READ/WRITE/EXEC the mapping allows at either privilege. */
        int rights;
        /** Terminated without an event (STE.Config abort). */
        boolean abort;
        int event;
        /** Another event the specification equally allows, or -1. */
        int alternative = -1;
        boolean recorded;
        boolean s2;
        int cls;
        /** Record bytes 24-31: IPA of a stage-2 fault, fetch address of F_*_FETCH / F_WALK_EABT. */
        long addr2;
        boolean configEvent;
        final StringBuilder trace = new StringBuilder();

        @Override
        public String toString() {
            String head = success ? String.format("success pa 0x%x shift %d rights %s", pa, pageShift, Access.toString(rights))
                    : abort ? "abort (no event)"
                    : String.format("event 0x%02x%s recorded %b s2 %b class %d addr2 0x%x", event,
                            alternative >= 0 ? String.format(" (or 0x%02x)", alternative) : "", recorded, s2, cls, addr2);
            return head + "\n" + trace;
        }
    }

    /** A fault found during the walk; unwinds to {@link #translate}. */
    private static final class Fault extends RuntimeException {
        private static final long serialVersionUID = 1L;
        final int event;
        final boolean s2;
        final int cls;
        final long addr2;
        final boolean recorded;
        final boolean config;
        int alternative = -1;

        Fault(int event, boolean s2, int cls, long addr2, boolean recorded, boolean config, String why) {
            super(why, null, false, false);
            this.event = event;
            this.s2 = s2;
            this.cls = cls;
            this.addr2 = addr2;
            this.recorded = recorded;
            this.config = config;
        }
    }

    private final Features f;
    private final PhysicalMemory mem;
    private final boolean execNeedsRead;
    private final boolean pxnFromLeaf;
    private Result r;

    SmmuReference(Features f, PhysicalMemory mem, int quirks) {
        this.f = f;
        this.mem = mem;
        this.execNeedsRead = (quirks & EXEC_NEEDS_READ) != 0;
        this.pxnFromLeaf = (quirks & PXN_FROM_LEAF) != 0;
    }

    private static long bits(long v, int hi, int lo) {
        return (v >>> lo) & ((1L << (hi - lo + 1)) - 1);
    }

    private static boolean bit(long v, int b) {
        return ((v >>> b) & 1) != 0;
    }

    private void note(String fmt, Object... args) {
        r.trace.append("  ").append(String.format(fmt, args)).append('\n');
    }

    private static Fault config(int event, long addr2, String why) {
        return new Fault(event, false, 0, addr2, true, true, why);
    }

    private long read(long pa, int event, boolean s2, int cls) {
        try {
            return mem.read64(pa);
        } catch (MemoryAccessException e) {
            throw event == F_WALK_EABT ? new Fault(event, s2, cls, pa, true, false, "external abort reading 0x" + Long.toHexString(pa))
                    : config(event, pa, "external abort reading 0x" + Long.toHexString(pa));
        }
    }

    /**
     * Predicts one transaction with SMMU_CR0.SMMUEN set.
     *
     * @param strtabBase SMMU_STRTAB_BASE
     * @param strtabCfg SMMU_STRTAB_BASE_CFG
     * @param ssid SubstreamID or {@link #NONE}
     * @param access {@link Access} bits
     */
    Result translate(long strtabBase, int strtabCfg, int sid, int ssid, long va, int access) {
        r = new Result();
        try {
            walkStream(strtabBase, strtabCfg, sid, ssid, va, access);
        } catch (Fault e) {
            r.success = false;
            r.event = e.event;
            r.alternative = e.alternative;
            r.s2 = e.s2;
            r.cls = e.cls;
            r.addr2 = e.addr2;
            r.recorded = e.recorded;
            r.configEvent = e.config;
            note("=> %s", e.getMessage());
        }
        return r;
    }

    // ---- §3.3.1 stream table, §5.1 L1STD, §5.2 STE -----------------------------------------------

    private void walkStream(long base, int cfg, int sid, int ssid, long va, int access) {
        long sidU = sid & 0xffff_ffffL;
        int log2 = cfg & 0x3f;
        if (sidU >>> Math.min(log2, f.sidBits) != 0) {
            throw config(C_BAD_STREAMID, 0, "StreamID beyond STRTAB_BASE_CFG.LOG2SIZE / IDR1.SIDSIZE");
        }
        long steAddr;
        if (((cfg >>> 16) & 3) == 1 && f.st2l) { // §6.3.25 FMT 0b01: two-level
            int split = (cfg >>> 6) & 0x1f;
            split = split == 8 || split == 10 ? split : 6; // other values behave as 6
            long l1 = (base & 0x000f_ffff_ffff_ffc0L) + 8 * (sidU >>> split);
            long d = read(l1, F_STE_FETCH, false, 0);
            int span = (int) (d & 0x1f);
            note("L1STD @0x%x = 0x%016x span %d", l1, d, span);
            if (span == 0 || span > 11 || span > split + 1) { // §5.1: 0, reserved 12-31, or beyond SPLIT + 1
                throw config(C_BAD_STREAMID, 0, "L1STD invalid");
            }
            long low = sidU & ((1L << split) - 1);
            if (low >>> (span - 1) != 0) {
                throw config(C_BAD_STREAMID, 0, "StreamID beyond L1STD.Span");
            }
            long l2 = bits(d, 55, 6) << 6 & -(1L << (span + 5)); // L2Ptr[N:0] taken as zero, N = 5 + (Span - 1)
            steAddr = l2 + 64 * low;
        } else {
            steAddr = (base & 0x000f_ffff_ffff_ffc0L) + 64 * sidU;
        }
        long[] q = new long[8];
        for (int i = 0; i < 8; i++) {
            q[i] = read(steAddr + 8 * i, F_STE_FETCH, false, 0);
        }
        note("STE %d @0x%x = %016x %016x %016x %016x", sidU, steAddr, q[0], q[1], q[2], q[3]);
        Ste ste = new Ste(q);
        requireLegal(ste.illegal(), C_BAD_STE, "STE");
        if (ste.config < 4) {
            note("Config 0b%s: abort", Integer.toBinaryString(ste.config));
            r.abort = true;
            return;
        }
        boolean s1 = (ste.config & 1) != 0;
        boolean s2 = (ste.config & 2) != 0;
        Geometry g2 = s2 ? ste.stage2() : null;
        if (!s1) {
            if (ssid != NONE) {
                throw config(C_BAD_SUBSTREAMID, 0, "SubstreamID with stage 1 disabled (§5.2 S1Fmt)");
            }
            bypassStage1(va, access, g2, ste);
            return;
        }
        int cdMax = f.ssidBits == 0 ? 0 : ste.cdMax; // S1CDMax IGNORED without substreams
        int index;
        if (ssid != NONE) {
            if (f.ssidBits == 0 || ssid >>> f.ssidBits != 0 || cdMax == 0 || ssid >>> cdMax != 0) {
                throw config(C_BAD_SUBSTREAMID, 0, "SubstreamID beyond S1CDMax / SSIDSIZE");
            }
            if (ste.s1dss == 2 && ssid == 0) {
                throw config(F_STREAM_DISABLED, 0, "SubstreamID 0 with S1DSS = 0b10");
            }
            index = ssid;
        } else if (cdMax == 0 || ste.s1dss == 2) {
            index = 0;
        } else if (ste.s1dss == 1) {
            note("S1DSS bypass");
            bypassStage1(va, access, g2, ste);
            return;
        } else {
            throw config(F_STREAM_DISABLED, 0, "no SubstreamID and S1DSS = 0b00 (0b11 behaves as 0b00)");
        }
        long[] cd = fetchCd(ste, cdMax, index, g2);
        Cd c = new Cd(cd);
        requireLegal(c.illegal(), C_BAD_CD, "CD");
        stage1(c, va, access, g2, ste);
    }

    /** Raises {@code event} (C_BAD_STE, C_BAD_CD) if {@code why} says the structure is ILLEGAL. */
    private static void requireLegal(String why, int event, String structure) {
        if (why != null) {
            throw config(event, 0, structure + " ILLEGAL: " + why);
        }
    }

    /** §3.4: stage 1 bypassed, the input must fit the IAS; then stage 2 or the output. */
    private void bypassStage1(long va, int access, Geometry g2, Ste ste) {
        if (va >>> f.ias() != 0) {
            throw new Fault(F_ADDR_SIZE, false, CLASS_IN, 0, true, false, "input beyond the IAS with stage 1 bypassed");
        }
        if (g2 == null) {
            succeed(va, 12, Access.READ | Access.WRITE | Access.EXEC);
            return;
        }
        Leaf l = stage2(g2, ste, va, access, CLASS_IN);
        succeed(l.oa | (va & ((1L << l.shift) - 1)), l.shift, l.rights);
    }

    private void succeed(long pa, int shift, int rights) {
        r.success = true;
        r.pa = pa;
        r.pageShift = shift;
        r.rights = rights;
        note("=> 0x%x", pa);
    }

    /** The STE fields the reference uses (§5.2), by bit position in the 512-bit entry. */
    private final class Ste {
        final long[] q;
        final boolean valid;
        final int config;
        final int s1fmt;
        final long contextPtr;
        final int cdMax;
        final int s1dss;
        final boolean s1stalld;
        final int eats;
        final int vmid;
        final int s2t0sz;
        final int s2sl0;
        final int s2tg;
        final int s2ps;
        final boolean s2aa64;
        final boolean s2endi;
        final boolean s2affd;
        final boolean s2hd;
        final boolean s2ha;
        final boolean s2s;
        final boolean s2r;
        final long s2ttb;

        Ste(long[] q) {
            this.q = q;
            valid = bit(q[0], 0);
            config = (int) bits(q[0], 3, 1);
            s1fmt = (int) bits(q[0], 5, 4);
            contextPtr = bits(q[0], 55, 6) << 6;
            cdMax = (int) bits(q[0], 63, 59);
            s1dss = (int) bits(q[1], 1, 0); // bits 65:64
            s1stalld = bit(q[1], 27); // bit 91
            eats = (int) bits(q[1], 29, 28); // bits 93:92
            vmid = (int) bits(q[2], 15, 0); // bits 143:128
            s2t0sz = (int) bits(q[2], 37, 32); // bits 165:160
            s2sl0 = (int) bits(q[2], 39, 38);
            s2tg = (int) bits(q[2], 47, 46);
            s2ps = (int) bits(q[2], 50, 48);
            s2aa64 = bit(q[2], 51);
            s2endi = bit(q[2], 52);
            s2affd = bit(q[2], 53);
            s2hd = bit(q[2], 55);
            s2ha = bit(q[2], 56);
            s2s = bit(q[2], 57);
            s2r = bit(q[2], 58);
            s2ttb = bits(q[3], 51, 4) << 4; // bits 243:196
        }

        /** §5.2.2 SteIllegal(), for the features this unit has: why the STE is ILLEGAL, or null. */
        String illegal() {
            if (!valid) {
                return "V = 0";
            }
            if (config < 4 || config == 4) {
                return null;
            }
            boolean s1 = (config & 1) != 0;
            boolean s2 = (config & 2) != 0;
            if (s1 && !f.s1p) {
                return "stage 1 not implemented";
            }
            if (s2 && !f.s2p) {
                return "stage 2 not implemented";
            }
            if (f.ats && eats == 2 && (config != 7 || s2s)) {
                return "EATS 0b10 (split-stage ATS) without Config 0b111"; // IDR0.NS1ATS is 0
            }
            if (f.ats && eats == 1 && s2 && s2s) {
                return "EATS 0b01 with S2S";
            }
            if (s1) {
                if (s1stalld) {
                    return "S1STALLD with IDR0.STALL_MODEL != 0b00 (§5.5)";
                }
                if (f.ssidBits != 0 && cdMax > f.ssidBits) {
                    return "S1CDMax beyond IDR1.SSIDSIZE";
                }
                if (f.ssidBits != 0 && cdMax != 0 && !f.cd2l && (s1fmt == 1 || s1fmt == 2)) {
                    return "two-level CD table without IDR0.CD2L";
                }
                if (!s2 && contextPtr >>> f.oas != 0) {
                    return "S1ContextPtr beyond the OAS (§3.4.3)";
                }
            }
            if (s2) {
                if (s2s) {
                    return "S2S with IDR0.STALL_MODEL 0b01 (§5.5)";
                }
                if (!s2aa64) {
                    return "S2AA64 = 0 (AArch32 tables, IDR0.TTF 0b10)";
                }
                if (s2endi) {
                    return "S2ENDI with IDR0.TTENDIAN 0b10";
                }
                if (s2Granule() < 0) {
                    return "S2TG reserved or not implemented";
                }
                if (s2ttb >>> f.cappedSize(s2ps) != 0) {
                    return "S2TTB beyond the effective S2PS";
                }
                if (s2t0sz < Math.max(16, 64 - f.ias()) || s2t0sz > 39) {
                    return "S2T0SZ out of range (MAX(16, 64 - IAS) to 39)";
                }
                if (s2StartLevel() < 0) {
                    return "S2SL0 inconsistent with S2T0SZ and S2TG";
                }
            }
            if (f.s2p && !f.vmid16 && (vmid >>> 8) != 0) {
                return "S2VMID[15:8] != 0 with 8-bit VMIDs";
            }
            return null;
        }

        int s2Granule() {
            int[] shifts = {12, 16, 14, -1}; // S2TG: 0b00 4K, 0b01 64K, 0b10 16K
            return shifts[s2tg] < 0 ? -1 : f.granule(shifts[s2tg]);
        }

        /**
         * VTCR_EL2.SL0 as the Arm ARM defines it (D8.2.4, AArch64.S2InvalidSL/S2InconsistentSL):
         * 4K 0b00-0b10 start at level 2-0; 16K and 64K 0b00-0b10 at level 3-1; 0b11 needs FEAT_TTST
         * (4K) or 52-bit support (16K), neither implemented; 0b10 needs a PA size (the OAS) of 44
         * bits, 42 for 16K. The start level must resolve the IPA size with 1 to 16 concatenated tables.
         */
        int s2StartLevel() {
            int g = s2Granule();
            if (s2sl0 == 3 || g < 0 || (s2sl0 == 2 && f.oas < (g == 14 ? 42 : 44))) {
                return -1;
            }
            int level = g == 12 ? 2 - s2sl0 : 3 - s2sl0;
            int stride = g - 3;
            int rootBits = 64 - s2t0sz - (g + stride * (3 - level));
            return rootBits >= 1 && rootBits <= stride + 4 ? level : -1;
        }

        Geometry stage2() {
            Geometry g = new Geometry();
            g.gshift = s2Granule();
            g.inBits = 64 - s2t0sz;
            g.startLevel = s2StartLevel();
            g.outBits = f.cappedSize(s2ps);
            g.root = s2ttb & -(8L << g.rootBits()); // aligned to the (concatenated) root table
            g.ha = s2ha;
            g.hd = s2ha && s2hd; // {S2HA, S2HD} = 0b01 behaves as 0b00
            g.affd = s2affd;
            return g;
        }
    }

    // ---- §3.3.2, §5.3 L1CD, §5.4 CD ---------------------------------------------------------------

    /** Reads the CD of {@code index}, through stage 2 when nested (CLASS CD). */
    private long[] fetchCd(Ste ste, int cdMax, int index, Geometry g2) {
        int fmt = cdMax == 0 || ste.s1fmt == 3 ? 0 : ste.s1fmt; // ignored for one CD; 0b11 behaves as 0b00
        long limit = 1L << (g2 != null ? f.ias() : f.oas);
        if (g2 != null && ste.contextPtr >= limit) {
            // §3.4.3 (2): C_BAD_STE, or a stage-2 Translation fault on the untruncated IPA.
            Fault e = config(C_BAD_STE, 0, "S1ContextPtr beyond the IAS");
            e.alternative = F_TRANSLATION;
            throw e;
        }
        long cdAddr;
        if (fmt == 0) {
            // §5.2 S1Fmt 0b00: the table is aligned to its size, S1ContextPtr[S1CDMax + 5:6] are RES0
            // (taken as zero: one of the two permitted behaviours).
            cdAddr = (ste.contextPtr & -(64L << cdMax)) + 64L * index;
        } else {
            int l2shift = fmt == 1 ? 6 : 10;
            long l1Bytes = Math.max(64, 8L << Math.max(0, cdMax - l2shift));
            long l1 = (ste.contextPtr & -l1Bytes) + 8L * (index >>> l2shift);
            long d = read(cdFetchAddress(l1, g2, ste), F_CD_FETCH, false, 0);
            note("L1CD @0x%x = 0x%016x", l1, d);
            if (!bit(d, 0)) {
                throw config(C_BAD_SUBSTREAMID, 0, "L1CD.V = 0 (§5.3.1)");
            }
            long l2 = bits(d, 55, 12) << 12;
            if (l2 >= limit) {
                // §3.4.3 (3)/(4): C_BAD_SUBSTREAMID, or (nested) a stage-2 Translation fault.
                Fault e = config(C_BAD_SUBSTREAMID, 0, "L1CD.L2Ptr beyond the " + (g2 != null ? "IAS" : "OAS"));
                if (g2 != null) {
                    e.alternative = F_TRANSLATION;
                }
                throw e;
            }
            cdAddr = l2 + 64L * (index & ((1 << l2shift) - 1));
        }
        if (cdAddr >= limit) {
            Fault e = config(C_BAD_STE, 0, "CD address beyond the address size (§3.4.3)");
            if (g2 != null) {
                e.alternative = F_TRANSLATION;
            }
            throw e;
        }
        long pa = cdFetchAddress(cdAddr, g2, ste);
        long[] cd = new long[8];
        for (int i = 0; i < 8; i++) {
            cd[i] = read(pa + 8 * i, F_CD_FETCH, false, 0);
        }
        note("CD %d @0x%x (pa 0x%x) = %016x %016x %016x %016x", index, cdAddr, pa, cd[0], cd[1], cd[2], cd[3]);
        return cd;
    }

    private long cdFetchAddress(long address, Geometry g2, Ste ste) {
        if (g2 == null) {
            return address;
        }
        Leaf l = stage2(g2, ste, address, Access.READ, CLASS_CD);
        return l.oa | (address & ((1L << l.shift) - 1));
    }

    /** The CD fields the reference uses (§5.4). */
    private final class Cd {
        final int t0sz;
        final int tg0;
        final boolean epd0;
        final boolean endi;
        final int t1sz;
        final int tg1;
        final boolean epd1;
        final boolean valid;
        final int ips;
        final boolean affd;
        final boolean tbi0;
        final boolean tbi1;
        final boolean aa64;
        final boolean hd;
        final boolean ha;
        final boolean s;
        final boolean rec;
        final boolean a;
        final int asid;
        final long ttb0;
        final long ttb1;

        Cd(long[] q) {
            t0sz = (int) bits(q[0], 5, 0);
            tg0 = (int) bits(q[0], 7, 6);
            epd0 = bit(q[0], 14);
            endi = bit(q[0], 15);
            t1sz = (int) bits(q[0], 21, 16);
            tg1 = (int) bits(q[0], 23, 22);
            epd1 = bit(q[0], 30);
            valid = bit(q[0], 31);
            ips = (int) bits(q[0], 34, 32);
            affd = bit(q[0], 35);
            tbi0 = bit(q[0], 38);
            tbi1 = bit(q[0], 39);
            aa64 = bit(q[0], 41);
            hd = bit(q[0], 42);
            ha = bit(q[0], 43);
            s = bit(q[0], 44);
            rec = bit(q[0], 45);
            a = bit(q[0], 46);
            asid = (int) bits(q[0], 63, 48);
            ttb0 = bits(q[1], 51, 4) << 4; // bits 115:68
            ttb1 = bits(q[2], 51, 4) << 4; // bits 179:132
        }

        /** TG0: 0b00 4K, 0b01 64K, 0b10 16K; TG1: 0b01 16K, 0b10 4K, 0b11 64K. */
        int granule(boolean upper) {
            int[] shifts = upper ? new int[] {-1, 14, 12, 16} : new int[] {12, 16, 14, -1};
            int s = shifts[upper ? tg1 : tg0];
            return s < 0 ? -1 : f.granule(s);
        }

        /** §5.4.2 CdIllegal(): why the CD is ILLEGAL, or null. */
        String illegal() {
            if (!valid) {
                return "V = 0";
            }
            if (s) {
                return "S with IDR0.STALL_MODEL 0b01 (§5.5)";
            }
            if (!a) {
                return "A = 0 with IDR0.TERM_MODEL 1";
            }
            if (endi && !(epd0 && epd1)) {
                return "ENDI with IDR0.TTENDIAN 0b10";
            }
            if (!aa64) {
                return "AA64 = 0 (AArch32 tables, IDR0.TTF 0b10)";
            }
            if (!f.asid16 && (asid >>> 8) != 0) {
                return "ASID[15:8] != 0 with 8-bit ASIDs";
            }
            int ipsBits = f.cappedSize(ips);
            for (int i = 0; i < 2; i++) {
                boolean upper = i == 1;
                if (upper ? epd1 : epd0) {
                    continue; // §5.4.1.1: fields of a disabled TTBx are not checked
                }
                int tsz = upper ? t1sz : t0sz;
                if (tsz < 16 || tsz > 39) {
                    return "T" + i + "SZ out of range 16-39";
                }
                if (granule(upper) < 0) {
                    return "TG" + i + " reserved or not implemented";
                }
                if ((upper ? ttb1 : ttb0) >>> ipsBits != 0) {
                    return "TTB" + i + " beyond the effective IPS";
                }
            }
            return null;
        }
    }

    // ---- §3.4.1 input ranges, VMSAv8-64 walks (Arm ARM D8) ------------------------------------

    /** One stage's geometry: granule, input size, start level, output size, root and flag controls. */
    static final class Geometry {
        int gshift;
        int inBits;
        int startLevel;
        int outBits;
        long root;
        boolean ha;
        boolean hd;
        boolean affd;

        int stride() {
            return gshift - 3;
        }

        int levelShift(int level) {
            return gshift + stride() * (3 - level);
        }

        int rootBits() {
            return inBits - levelShift(startLevel);
        }

        /** Blocks: 4K at levels 1 and 2, 16K and 64K at level 2 (no 52-bit addressing). */
        boolean blockAllowed(int level) {
            return level == 2 || (gshift == 12 && level == 1);
        }
    }

    /** A leaf found by a walk. */
    private static final class Leaf {
        long oa;
        int shift;
        int rights;
        /** Stage 2: writes allowed (S2AP[1], or writable-clean with S2HD). */
        boolean writable;
    }

    private void stage1(Cd c, long va, int access, Geometry g2, Ste ste) {
        boolean upper = bit(va, 55);
        boolean tbi = upper ? c.tbi1 : c.tbi0;
        if (upper ? c.epd1 : c.epd0) {
            throw new Fault(F_TRANSLATION, false, CLASS_IN, 0, c.rec, false, "EPD" + (upper ? 1 : 0) + " set");
        }
        int inBits = 64 - (upper ? c.t1sz : c.t0sz);
        long v = tbi ? (upper ? va | 0xff00_0000_0000_0000L : va & 0x00ff_ffff_ffff_ffffL) : va;
        if (v >> inBits != (upper ? -1L : 0L)) {
            throw new Fault(F_TRANSLATION, false, CLASS_IN, 0, c.rec, false, "VA outside the TTB" + (upper ? 1 : 0) + " range");
        }
        Geometry g = new Geometry();
        g.gshift = c.granule(upper);
        g.inBits = inBits;
        int levels = (inBits - g.gshift + g.stride() - 1) / g.stride();
        g.startLevel = 4 - levels;
        g.outBits = f.cappedSize(c.ips);
        g.root = (upper ? c.ttb1 : c.ttb0) & -(8L << g.rootBits()); // §5.4 TTBx: aligned to the table
        g.ha = c.ha;
        g.hd = c.ha && c.hd; // {HD, HA} = 0b10 behaves as 0b00
        g.affd = c.affd;
        long wva = v & ((1L << inBits) - 1);
        note("stage 1: TTB%d 0x%x, %dK granule, %d-bit input, start level %d, %d-bit output, ASID %d",
                upper ? 1 : 0, g.root, 1 << (g.gshift - 10), inBits, g.startLevel, g.outBits, c.asid);
        boolean priv = (access & Access.PRIV) != 0;
        boolean write = (access & Access.WRITE) != 0;
        boolean exec = (access & Access.EXEC) != 0;
        long table = g.root;
        boolean tableNoEl0 = false;
        boolean tableRo = false;
        boolean tableUxn = false;
        boolean tablePxn = false;
        for (int level = g.startLevel; level <= 3; level++) {
            int bitsHere = level == g.startLevel ? g.rootBits() : g.stride();
            long entryIpa = table + 8 * bits(wva, g.levelShift(level) + bitsHere - 1, g.levelShift(level));
            Leaf fetch = null;
            long entryPa = entryIpa;
            if (g2 != null) {
                fetch = stage2(g2, ste, entryIpa, Access.READ, CLASS_TT);
                entryPa = fetch.oa | (entryIpa & ((1L << fetch.shift) - 1));
            }
            long d = read(entryPa, F_WALK_EABT, false, CLASS_TT);
            note("S1 L%d @0x%x%s = 0x%016x", level, entryIpa, g2 != null ? String.format(" (pa 0x%x)", entryPa) : "", d);
            if (!bit(d, 0) || (level == 3 && !bit(d, 1)) || (level < 3 && !bit(d, 1) && !g.blockAllowed(level))) {
                throw new Fault(F_TRANSLATION, false, CLASS_IN, 0, c.rec, false, "invalid or reserved descriptor");
            }
            if (level < 3 && bit(d, 1)) {
                long next = d & OA_47_12 & -(1L << g.gshift);
                if (next >>> g.outBits != 0) {
                    throw new Fault(F_ADDR_SIZE, false, CLASS_IN, 0, c.rec, false, "table address beyond the IPS");
                }
                tablePxn |= bit(d, 59);
                tableUxn |= bit(d, 60);
                tableNoEl0 |= bit(d, 61);
                tableRo |= bit(d, 62);
                table = next;
                continue;
            }
            int shift = g.levelShift(level);
            long oa = d & OA_47_12 & -(1L << shift);
            if (oa >>> g.outBits != 0) {
                throw new Fault(F_ADDR_SIZE, false, CLASS_IN, 0, c.rec, false, "output address beyond the IPS");
            }
            boolean af = bit(d, 10);
            if (!af && !g.ha && !g.affd) {
                throw new Fault(F_ACCESS, false, CLASS_IN, 0, c.rec, false, "AF = 0 without HA or AFFD");
            }
            // Direct permissions of the EL1&0 regime (Arm ARM D8.4, AArch64.S1DirectBasePermissions).
            boolean ap1 = bit(d, 6);
            boolean ap2 = bit(d, 7);
            boolean dirtyClean = ap2 && g.hd && bit(d, 51); // writable-clean: a write makes it dirty
            boolean pw = !(ap2 && !dirtyClean) && !tableRo;
            boolean ur = ap1 && !tableNoEl0;
            boolean uw = ur && pw;
            // EL0-writable is privileged execute-never, from AP[2:1] after APTable. (Whether a
            // writable-clean DBM page counts as EL0-writable here is left out: the generator never
            // makes one EL0-accessible, see SmmuScenario.)
            boolean px = !(bit(d, 53) || tablePxn || (pxnFromLeaf ? ap1 && !ap2 : ur && !ap2 && !tableRo));
            boolean ux = !(bit(d, 54) || tableUxn);
            // An instruction fetch needs execute permission only (EL0 may execute AP[1] = 0 pages).
            boolean dataRead = (access & Access.READ) != 0 && !exec;
            boolean ok;
            if (priv) {
                ok = (!write || pw) && (!exec || px);
            } else {
                ok = (!dataRead || ur) && (!write || uw) && (!exec || ux) && (!exec || !execNeedsRead || ur);
            }
            if (!ok) {
                throw new Fault(F_PERMISSION, false, CLASS_IN, 0, c.rec, false, "stage-1 permission");
            }
            if (g2 != null && ((!af && g.ha) || (write && dirtyClean)) && !fetch.writable) {
                // §3.13.5: the flag update needs write permission at stage 2 for the descriptor's page.
                throw new Fault(F_PERMISSION, true, CLASS_TT, entryIpa, ste.s2r, false, "stage-1 flag update denied by stage 2");
            }
            int rights = Access.READ | (pw ? Access.WRITE : 0) | (px || ux ? Access.EXEC : 0);
            long ipa = oa | (wva & ((1L << shift) - 1));
            if (g2 == null) {
                succeed(ipa, shift, rights);
                return;
            }
            Leaf l2 = stage2(g2, ste, ipa, access, CLASS_IN);
            succeed(l2.oa | (ipa & ((1L << l2.shift) - 1)), Math.min(shift, l2.shift), rights & l2.rights);
            return;
        }
        throw new AssertionError("not reached");
    }

    /** A stage-2 walk (tables in PA space); faults carry the IPA and the CLASS of the access. */
    private Leaf stage2(Geometry g, Ste ste, long ipa, int access, int cls) {
        if (ipa >>> g.inBits != 0) {
            throw new Fault(F_TRANSLATION, true, cls, ipa, ste.s2r, false, "IPA beyond S2T0SZ");
        }
        long table = g.root;
        for (int level = g.startLevel; level <= 3; level++) {
            int bitsHere = level == g.startLevel ? g.rootBits() : g.stride();
            long entry = table + 8 * bits(ipa, g.levelShift(level) + bitsHere - 1, g.levelShift(level));
            long d = read(entry, F_WALK_EABT, true, cls);
            note("S2 L%d @0x%x = 0x%016x (IPA 0x%x, class %d)", level, entry, d, ipa, cls);
            if (!bit(d, 0) || (level == 3 && !bit(d, 1)) || (level < 3 && !bit(d, 1) && !g.blockAllowed(level))) {
                throw new Fault(F_TRANSLATION, true, cls, ipa, ste.s2r, false, "invalid or reserved stage-2 descriptor");
            }
            if (level < 3 && bit(d, 1)) {
                table = d & OA_47_12 & -(1L << g.gshift);
                if (table >>> g.outBits != 0) {
                    throw new Fault(F_ADDR_SIZE, true, cls, ipa, ste.s2r, false, "stage-2 table address beyond S2PS");
                }
                continue;
            }
            Leaf l = new Leaf();
            l.shift = g.levelShift(level);
            l.oa = d & OA_47_12 & -(1L << l.shift);
            if (l.oa >>> g.outBits != 0) {
                throw new Fault(F_ADDR_SIZE, true, cls, ipa, ste.s2r, false, "output beyond S2PS");
            }
            if (!bit(d, 10) && !g.ha && !g.affd) {
                throw new Fault(F_ACCESS, true, cls, ipa, ste.s2r, false, "stage-2 AF = 0 without S2HA or S2AFFD");
            }
            // Stage 2 (Arm ARM D8.4.3): S2AP[0] read, S2AP[1] write, XN (bit 54; IDR3.XNX is 0).
            boolean rd = bit(d, 6);
            l.writable = bit(d, 7) || (g.hd && bit(d, 51));
            boolean x = !bit(d, 54);
            boolean exec = (access & Access.EXEC) != 0;
            boolean needRead = (access & Access.READ) != 0 && (!exec || execNeedsRead);
            if ((needRead && !rd) || ((access & Access.WRITE) != 0 && !l.writable) || (exec && !x)) {
                throw new Fault(F_PERMISSION, true, cls, ipa, ste.s2r, false, "stage-2 permission");
            }
            l.rights = (rd ? Access.READ : 0) | (l.writable ? Access.WRITE : 0) | (x ? Access.EXEC : 0);
            return l;
        }
        throw new AssertionError("not reached");
    }
}
