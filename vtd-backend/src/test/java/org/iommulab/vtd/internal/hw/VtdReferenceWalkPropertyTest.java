package org.iommulab.vtd.internal.hw;

import static org.iommulab.vtd.internal.hw.PageTables.FL_A;
import static org.iommulab.vtd.internal.hw.PageTables.FL_D;
import static org.iommulab.vtd.internal.hw.PageTables.FL_P;
import static org.iommulab.vtd.internal.hw.PageTables.FL_RW;
import static org.iommulab.vtd.internal.hw.PageTables.FL_US;
import static org.iommulab.vtd.internal.hw.PageTables.FL_XD;
import static org.iommulab.vtd.internal.hw.PageTables.SL_A;
import static org.iommulab.vtd.internal.hw.PageTables.SL_D;
import static org.iommulab.vtd.internal.hw.PageTables.SL_R;
import static org.iommulab.vtd.internal.hw.PageTables.SL_W;
import static org.iommulab.vtd.internal.hw.PageTables.SL_X;
import static org.iommulab.vtd.internal.hw.VtdRig.CAP;
import static org.iommulab.vtd.internal.hw.VtdRig.CTX_FPD;
import static org.iommulab.vtd.internal.hw.VtdRig.CTX_PASIDE;
import static org.iommulab.vtd.internal.hw.VtdRig.DATA;
import static org.iommulab.vtd.internal.hw.VtdRig.ECAP;
import static org.iommulab.vtd.internal.hw.VtdRig.FSTS;
import static org.iommulab.vtd.internal.hw.VtdRig.GCMD;
import static org.iommulab.vtd.internal.hw.VtdRig.IQE;
import static org.iommulab.vtd.internal.hw.VtdRig.IQH;
import static org.iommulab.vtd.internal.hw.VtdRig.IQT;
import static org.iommulab.vtd.internal.hw.VtdRig.IQ_BASE;
import static org.iommulab.vtd.internal.hw.VtdRig.PE2_NXE;
import static org.iommulab.vtd.internal.hw.VtdRig.PE2_SRE;
import static org.iommulab.vtd.internal.hw.VtdRig.PE2_WPE;
import static org.iommulab.vtd.internal.hw.VtdRig.PE_FPD;
import static org.iommulab.vtd.internal.hw.VtdRig.PE_SLADE;
import static org.iommulab.vtd.internal.hw.VtdRig.PE_SLEE;
import static org.iommulab.vtd.internal.hw.VtdRig.ROOT;
import static org.iommulab.vtd.internal.hw.VtdRig.STATUS;
import static org.iommulab.vtd.internal.hw.VtdRig.TE;
import static org.iommulab.vtd.internal.hw.VtdRig.contextCacheDesc;
import static org.iommulab.vtd.internal.hw.VtdRig.iotlbDesc;
import static org.iommulab.vtd.internal.hw.VtdRig.pasidCacheDesc;
import static org.iommulab.vtd.internal.hw.VtdRig.pasidIotlbDesc;
import static org.iommulab.vtd.internal.hw.VtdRig.pe0;
import static org.iommulab.vtd.internal.hw.VtdRig.pe2;
import static org.iommulab.vtd.internal.hw.VtdRig.waitDesc;
import static org.iommulab.api.translation.Access.EXEC;
import static org.iommulab.api.translation.Access.PRIV;
import static org.iommulab.api.translation.Access.READ;
import static org.iommulab.api.translation.Access.WRITE;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTimeoutPreemptively;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.Set;
import java.util.TreeSet;

import org.iommulab.api.errno.IommuException;
import org.iommulab.api.pasid.Pasids;
import org.iommulab.api.translation.Access;
import org.iommulab.api.translation.Translation;

import net.jqwik.api.Arbitraries;
import net.jqwik.api.Arbitrary;
import net.jqwik.api.Combinators;
import net.jqwik.api.ForAll;
import net.jqwik.api.Property;
import net.jqwik.api.Provide;

/**
 * The VT-d hardware model against a reference written here from the specification, over random
 * and damaged scalable-mode structures, random invalidation descriptors and random register writes.
 *
 * <ul>
 * <li>{@link #translationsAgreeWithTheReference}: random capabilities (HAW, MGAW, FL5LP, FS1GP,
 * SLLPS, SL A/D), devices with scalable-mode context entries, PASID directories and PASID entries of
 * every PGTT (first stage, second stage, nested, pass-through) over page tables with 4 KiB, 2 MiB and
 * 1 GiB pages; then random bit flips (and now and then a random word) in root, context, PASID
 * directory and PASID entries and in page-table entries on the mapped walks; then random requests
 * (source id, PASID or none, read/write/execute, privileged or not, address). Each translation must
 * succeed exactly when the reference does, with its output address and page size, or fail with the
 * fault reason the reference derives (for a permission fault, one of the checks the request fails),
 * which must be a {@link VtdFault}. The reference decodes every structure from memory with its own
 * constants (VT-d §9.1 root, §9.4 scalable-mode context, §9.5 PASID directory, §9.6 PASID entry,
 * §9.7 first-stage and §9.8 second-stage paging entries; §3.6-§3.8 translation, nested: every
 * first-stage table access is a second-stage translation; §7.1.3 Table 9 fault reasons).</li>
 * <li>{@link #invalidationDescriptorsRunOrStopTheQueue}: batches of random, valid and damaged
 * descriptors (§6.5.2: types 1-9 valid with their granularity, alignment and MAMV rules, others
 * invalid) in 128- and 256-bit queues of either size: the unit runs every descriptor before the
 * first invalid one (wait descriptors write their status), stops there with FSTS.IQE and IQH on it,
 * and once software replaces it and clears IQE, runs the rest (§6.5.2.10); translation keeps
 * working.</li>
 * <li>{@link #registerWritesInterleavedWithTranslationsNeverThrowOrHang}: random 4- and 8-byte
 * writes of random values to the defined registers ({@link VtdFuzzTest#REGISTERS}) between random
 * requests: no exception, every call returns within a bound, faults are {@link VtdFault} codes,
 * with GSTS.TES clear requests pass through untranslated (§10.4.4), and a driver that re-initialises
 * the unit gets working translation back.</li>
 * </ul>
 *
 * <p>Every try runs under a preemptive time bound ({@link #TRY_BOUND}): a hang fails it.
 *
 * <p>What the reference leaves as the model has it: execute requests are checked against X/XD only
 * (ECAP.ERS = 0, no ERE check), SMEP and EAFE of the PASID entry and RID_PRIV of the context entry
 * are not modelled, so privileged requests are generated only with a PASID; the upper 128 bits of a
 * context entry and 320 bits of a PASID entry stay zero. Domain ids stay distinct: hardware may
 * serve one domain's cached translations to every entry with that id, which would test the caches,
 * not the walk. Configuration pages are read-only to hardware writes ({@link RomMemory}), so a
 * damaged walk that would set an accessed flag there fails as the specification says; a
 * configuration word that changes anyway (hardware wrote a flag into a page-table page read as a
 * context entry) is followed by a global invalidation, as software would do.
 *
 * <p>Reproducing: jqwik prints the seed of a failing property ({@code seed = ...}) and the shrunk
 * sample; rerun it with {@code @Property(seed = "...")} on the failing method (jqwik also replays
 * the last failure first, from {@code target/jqwik-database}). {@code mvn verify} runs
 * {@code jqwik.tries.default} (200) tries per property (about 2 s); the long run is
 * {@code mvn -B -o -pl pgtable,vtd-backend test -Dtest=VtdReferenceWalkPropertyTest
 * -Dsurefire.failIfNoSpecifiedTests=false -Djqwik.tries.default=1000000}.
 */
class VtdReferenceWalkPropertyTest {
    static final int[] SIDS = {0x0010, 0x0085, 0x0100, 0x01a8};
    /** PASIDs configured besides RID_PASID: two in the first directory block, one in the second. */
    static final int[] PASIDS = {1, 2, 0x45};
    /** PASIDs only requested: beyond a directory of PDTS 0 or 1 (fault 0x46), or just absent. */
    static final int[] ABSENT_PASIDS = {0x1_2345, 0x3ff, 7};
    /** Guest-physical pages of nested first-stage tables live at HPA = GPA + this. */
    static final long GUEST_OFFSET = 0x10_0000_0000L;
    static final int REQUESTS = 24;
    /** One try that takes longer than this hangs (a try takes milliseconds; generous for GC pauses). */
    static final Duration TRY_BOUND = Duration.ofSeconds(30);

    static final int NO_PASID = Pasids.NO_PASID;

    /** @return the mask of bits {@code hi} down to {@code lo} */
    static long bits(int hi, int lo) {
        return -1L >>> (63 - hi) & -1L << lo;
    }

    static boolean bit(long value, int n) {
        return (value & 1L << n) != 0;
    }

    // =============================================================================================
    // (a) translations against the reference
    // =============================================================================================

    /** The configuration keys that change what translation does. */
    record Caps(int haw, int mgaw, boolean fs5lp, boolean fs1gp, int sllps, boolean slAd) {
        Map<String, String> config() {
            return Map.of("haw", "" + haw, "mgaw", "" + mgaw, "fs5lp", "" + fs5lp, "fs1gp", "" + fs1gp, "sllps", "" + sllps,
                    "sl-ad", "" + slAd);
        }
    }

    @Provide
    Arbitrary<Caps> caps() {
        return Combinators.combine(Arbitraries.of(39, 42, 46, 48, 52), Arbitraries.of(39, 48, 57), Arbitraries.of(true, false),
                Arbitraries.of(true, false), Arbitraries.integers().between(0, 3), Arbitraries.of(true, false)).as(Caps::new);
    }

    @Property
    void translationsAgreeWithTheReference(@ForAll("caps") Caps caps, @ForAll long seed) {
        assertTimeoutPreemptively(TRY_BOUND, () -> translations(caps, seed));
    }

    static void translations(Caps caps, long seed) {
        Random rnd = new Random(seed);
        VtdRig r = new VtdRig(caps.config());
        Reference ref = new Reference(r, caps.haw());
        Setup setup = new Setup(r, ref, rnd);
        for (int sid : SIDS) {
            setup.device(sid);
        }
        setup.damage();
        setup.protect();
        r.enable();
        Translation t = new Translation();
        for (int i = 0; i < REQUESTS; i++) {
            Request q = setup.request();
            Ref x = ref.translate(q.sid, q.pasid, q.address, q.access);
            String what = String.format("%s, request %d: sid 0x%04x, pasid %s, address 0x%x, access %s%s; reference: %s", caps,
                    i, q.sid, q.pasid == NO_PASID ? "none" : "0x" + Integer.toHexString(q.pasid), q.address,
                    Access.toString(q.access), (q.access & PRIV) != 0 ? " priv" : "", x);
            boolean ok;
            try {
                ok = r.hw.translate(q.sid, q.pasid, q.address, q.access, t);
            } catch (RuntimeException e) {
                throw new AssertionError(what + "\n  the model threw " + e, e);
            }
            String got = what + "\n  model: " + t;
            assertEquals(ok, t.isSuccess(), got);
            assertEquals(x.ok, ok, got + "\n  success");
            if (ok) {
                assertEquals(x.output, t.outputAddress(), got + "\n  output address");
                assertEquals(x.shift, t.pageShift(), got + "\n  page size");
            } else {
                assertNotNull(VtdRig.name(t.faultCode()), got + "\n  a VtdFault code");
                assertEquals(VtdRig.name(t.faultCode()), t.faultName(), got);
                if (!x.codes.contains(t.faultCode())) {
                    fail(got + String.format("\n  fault 0x%x is not among %s", t.faultCode(), hexCodes(x.codes)));
                }
            }
            ref.resyncCaches();
        }
    }

    static String hexCodes(Set<Integer> codes) {
        StringBuilder b = new StringBuilder();
        for (int c : new TreeSet<>(codes)) {
            b.append(b.length() == 0 ? "" : " ").append(String.format("0x%x %s", c, VtdRig.name(c)));
        }
        return "[" + b + "]";
    }

    /** What the reference says of one request. */
    static final class Ref {
        boolean ok;
        long output;
        int shift;
        final Set<Integer> codes = new LinkedHashSet<>();
        String rule = "";
        /** Every word read, for the failure message. */
        final StringBuilder trace = new StringBuilder();

        Ref fault(int code, String why) {
            codes.add(code);
            rule = why;
            return this;
        }

        @Override
        public String toString() {
            return (ok ? String.format("0x%x (2^%d)", output, shift) : "fault " + hexCodes(codes)) + " by rule '" + rule + "'"
                    + "\n  words read:" + trace;
        }
    }

    /** A neutral outcome of one stage's walk: a fault kind, or the output, page size and write permission. */
    static final class Step {
        /** NOT_PRESENT, RESERVED, FETCH, AD, INPUT, or a permission letter set "R", "W", "X" (any of them). */
        final Set<String> faults = new LinkedHashSet<>();
        String rule = "";
        long output;
        int shift;
        boolean writable;

        Step fault(String kind, String why) {
            faults.add(kind);
            rule = why;
            return this;
        }

        boolean ok() {
            return faults.isEmpty();
        }
    }

    /**
     * The reference: the scalable-mode translation of VT-d §3.4.3 and §9, reading the rig's memory.
     * Capabilities come from CAP and ECAP as software reads them; HAW from the configuration.
     */
    static final class Reference {
        final VtdRig r;
        final int haw;
        final int sagaw;
        final int sllps;
        final boolean fs1gp;
        final boolean fs5lp;
        final boolean slads;
        /** Pages hardware cannot write (configuration structures). */
        final Set<Long> rom = new HashSet<>();
        /** Configuration words read so far, with their values, to notice hardware changing one. */
        final Map<Long, Long> watched = new HashMap<>();
        /** When non-null, every address read is added (to find the entries worth damaging). */
        List<Long> collect;
        /** The request being translated, whose trace reads are added to. */
        private Ref current;

        Reference(VtdRig r, int haw) {
            this.r = r;
            this.haw = haw;
            long cap = r.reg64(CAP);
            long ecap = r.reg64(ECAP);
            this.sagaw = (int) (cap >>> 8) & 0x1f; // §11.4.2 SAGAW 12:8
            this.sllps = (int) (cap >>> 34) & 0xf; // SLLPS 37:34
            this.fs1gp = bit(cap, 56);
            this.fs5lp = bit(cap, 60);
            this.slads = bit(ecap, 45); // ECAP.SLADS
        }

        Long read(long address, boolean config) {
            if (!r.mem.isBacked(address)) {
                return null;
            }
            long v = r.mem.read64(address);
            current.trace.append(String.format(" 0x%x@0x%x", v, address));
            if (collect != null) {
                collect.add(address);
            }
            if (config) {
                watched.put(address, v);
            }
            return v;
        }

        /** After a request: if hardware changed a configuration word it read, invalidate every cache. */
        void resyncCaches() {
            boolean changed = false;
            for (Map.Entry<Long, Long> e : watched.entrySet()) {
                long now = r.mem.read64(e.getKey());
                if (now != e.getValue()) {
                    e.setValue(now);
                    changed = true;
                }
            }
            if (changed) {
                r.submit(contextCacheDesc(1, 0, 0, 0), pasidCacheDesc(3, 0, 0), iotlbDesc(1, 0, 0, 0, false));
                r.sync();
            }
        }

        Ref translate(int sid, int pasid, long va, int access) {
            Ref x = new Ref();
            current = x;
            boolean priv = (access & PRIV) != 0;
            // §9.1 scalable-mode root entry: LP 0, LCTP 63:12 (devfn 0-127), UP 64, UCTP 127:76; 11:1, 75:65 reserved.
            int devfn = sid & 0xff;
            Long re = pointer(ROOT + (sid >>> 8) * 16L + (devfn >= 128 ? 8 : 0), bits(11, 1), 0x38, "root entry", x);
            if (re == null) {
                return x;
            }
            // §9.4 scalable-mode context entry: P 0, FPD 1, PASIDE 3, 8:5 reserved, PDTS 11:9, PASIDDIRPTR 63:12;
            // RID_PASID 83:64, RID_PRIV 84, 127:85 reserved.
            long ce = (re & ~0xfffL) + (devfn & 0x7f) * 32L;
            Long c0 = read(ce, true);
            Long c1 = c0 == null ? null : read(ce + 8, true);
            if (c1 == null) {
                return x.fault(0x40, "context entry not readable");
            }
            if (!bit(c0, 0)) {
                return x.fault(0x41, "context entry present clear");
            }
            if ((c0 & bits(8, 5)) != 0 || (c0 & ~0xfffL) >>> haw != 0 || (c1 & bits(63, 21)) != 0) {
                return x.fault(0x42, "context entry reserved bits or directory beyond HAW");
            }
            int p = pasid == NO_PASID ? (int) (c1 & 0xfffff) : pasid;
            if (pasid != NO_PASID && !bit(c0, 3)) {
                return x.fault(0x45, "request with PASID, PASIDE clear");
            }
            if ((p >>> 6) >= 1 << (((c0 >>> 9) & 7) + 7)) {
                return x.fault(0x46, "PASID beyond the 2^(PDTS+7)-entry directory");
            }
            // §9.5 PASID directory entry: P 0, FPD 1, 11:2 reserved, SMPTBLPTR 63:12; indexed by PASID 19:6.
            Long de = pointer((c0 & ~0xfffL) + 8L * (p >>> 6), bits(11, 2), 0x50, "directory entry", x);
            if (de == null) {
                return x;
            }
            // §9.6 PASID entry (indexed by PASID 5:0, 64 bytes): P 0, FPD 1, AW 4:2, SLEE 5, PGTT 8:6, SLADE 9,
            // 11:10 reserved, SLPTPTR 63:12; DID 79:64, 86:80 reserved; SRE 128, FLPM 131:130, WPE 132, NXE 133,
            // 139:136 reserved, FLPTPTR 191:140.
            long pe = (de & ~0xfffL) + 64L * (p & 63);
            Long e0 = read(pe, true);
            Long e1 = e0 == null ? null : read(pe + 8, true);
            Long e2 = e1 == null ? null : read(pe + 16, true);
            if (e2 == null) {
                return x.fault(0x58, "PASID entry not readable");
            }
            if (!bit(e0, 0)) {
                return x.fault(0x59, "PASID entry present clear");
            }
            if ((e0 & bits(11, 10)) != 0 || (e1 & bits(22, 16)) != 0 || (e2 & bits(11, 8)) != 0) {
                return x.fault(0x5a, "PASID entry reserved bits");
            }
            int pgtt = (int) (e0 >>> 6) & 7;
            int aw = (int) (e0 >>> 2) & 7;
            int flpm = (int) (e2 >>> 2) & 3;
            boolean second = pgtt == 2 || pgtt == 3;
            boolean first = pgtt == 1 || pgtt == 3;
            if (pgtt < 1 || pgtt > 4 || (second && (aw < 1 || aw > 3 || !bit(sagaw, aw)))
                    || (first && (flpm > 1 || (flpm == 1 && !fs5lp)))) {
                return x.fault(0x5b, "PGTT reserved, AW not in SAGAW or FLPM not supported");
            }
            if (second && (e0 & ~0xfffL) >>> haw != 0) {
                return x.fault(0x7b, "SLPTPTR beyond HAW");
            }
            if (priv && !bit(e2, 0)) {
                return x.fault(0x5d, "supervisor request, SRE clear");
            }
            if (pgtt == 4) {
                if (va >>> haw != 0) {
                    return x.fault(0x83, "pass-through address beyond HAW");
                }
                return ok(x, va, 12);
            }
            Ss ss = second ? new Ss(e0 & ~0xfffL, aw, bit(e0, 5), bit(e0, 9) && slads) : null;
            if (pgtt == 2) {
                Step s = secondStage(ss, va, access | PRIV);
                return s.ok() ? ok(x, s.output, s.shift) : finalCode(x, s);
            }
            Step f = firstStage(e2 & ~0xfffL, 4 + flpm, bit(e2, 5), bit(e2, 4), va, access, ss, x);
            if (f == null) {
                return x;
            }
            if (pgtt == 1) {
                return ok(x, f.output, f.shift);
            }
            Step s = secondStage(ss, f.output, access | PRIV);
            return s.ok() ? ok(x, s.output, Math.min(f.shift, s.shift)) : finalCode(x, s);
        }

        /**
         * A root or PASID directory entry: present bit 0, a pointer in 63:12 within HAW, reserved
         * bits; its faults are {@code code} (not readable), {@code code + 1} (not present) and
         * {@code code + 2} (reserved bit or pointer beyond HAW), as Table 9 numbers them.
         *
         * @return the entry, or {@code null} with the fault in {@code x}
         */
        Long pointer(long address, long reserved, int code, String name, Ref x) {
            Long e = read(address, true);
            if (e == null) {
                x.fault(code, name + " not readable");
            } else if (!bit(e, 0)) {
                x.fault(code + 1, name + " present clear");
            } else if ((e & reserved) != 0 || (e & ~0xfffL) >>> haw != 0) {
                x.fault(code + 2, name + " reserved bits or pointer beyond HAW");
            } else {
                return e;
            }
            return null;
        }

        static Ref ok(Ref x, long output, int shift) {
            x.ok = true;
            x.output = output;
            x.shift = shift;
            x.rule = "translates";
            return x;
        }

        /** Table 9 codes of second-stage faults on the request's own address. */
        static final Map<String, Integer> SECOND_STAGE = Map.of("INPUT", 0x83, "NOT_PRESENT", 0x79, "RESERVED", 0x7a,
                "FETCH", 0x78, "AD", 0x7c, "R", 0x86, "W", 0x85, "X", 0x82);

        static Ref finalCode(Ref x, Step s) {
            for (String f : s.faults) {
                x.codes.add(SECOND_STAGE.get(f));
            }
            x.rule = "second stage: " + s.rule;
            return x;
        }

        /**
         * §9.8 second-stage tables: R 0, W 1, X 2 (with SLEE), PS 7, A 8 / D 9 (with SLADE and
         * ECAP.SLADS), address HAW-1:12; R = W = 0 not present; 51:HAW and 63 reserved; R, W and X
         * ANDed across levels.
         */
        Step secondStage(Ss ss, long a, int access) {
            Step s = new Step();
            if (a >>> (30 + 9 * ss.aw) != 0) {
                return s.fault("INPUT", "address beyond the AW");
            }
            long all = -1L; // the entries ANDed: R, W, X granted at every level
            long table = ss.root;
            for (int depth = 0; depth < ss.aw + 2; depth++) {
                int level = ss.aw + 2 - depth;
                int shift = 3 + 9 * level;
                long slot = table + 8 * ((a >>> shift) & 511);
                Long e = read(slot, false);
                if (e == null) {
                    return s.fault("FETCH", "SS entry not readable");
                }
                if ((e & 3) == 0) {
                    return s.fault("NOT_PRESENT", "R = W = 0");
                }
                boolean ps = level > 1 && bit(e, 7);
                if ((e & (bits(51, haw) | 1L << 63)) != 0
                        || (ps && (level > 3 || (e & bits(shift - 1, 12)) != 0 || !bit(sllps, level - 2)))) {
                    return s.fault("RESERVED", "SS reserved bits, PS level or address below a super page");
                }
                all &= e | (ss.slee ? 0 : SL_X);
                boolean leaf = level == 1 || ps;
                long flags = ss.ad ? SL_A | (leaf && (access & WRITE) != 0 ? SL_D : 0) : 0;
                if (leaf) {
                    for (long[] check : new long[][] {{READ, SL_R}, {WRITE, SL_W}, {EXEC, SL_X}}) {
                        if ((access & check[0]) != 0 && (all & check[1]) == 0) {
                            s.faults.add(check[0] == READ ? "R" : check[0] == WRITE ? "W" : "X");
                        }
                    }
                    if (!s.ok()) {
                        s.rule = "R/W/X ANDed across levels";
                        return s;
                    }
                }
                if ((e & flags) != flags && rom.contains(slot >>> 12)) {
                    return s.fault("AD", "A/D of a read-only SS entry");
                }
                if (leaf) {
                    s.output = (e & bits(haw - 1, shift)) | (a & ((1L << shift) - 1));
                    s.shift = shift;
                    s.writable = (all & SL_W) != 0;
                    return s;
                }
                table = e & bits(haw - 1, 12);
            }
            throw new AssertionError("level 1 ends the walk");
        }

        /**
         * §9.7 first-stage paging (IA-32e, SDM Vol. 3A §4.5): P 0, R/W 1, U/S 2, A 5, D 6, PS 7,
         * address HAW-1:12, XD 63 (reserved without NXE); canonical input; nested: each entry's
         * address is a GPA the second stage translates (a read, and a write where a flag must be set).
         *
         * @return the first-stage output, or {@code null} with the fault recorded in {@code x}
         */
        Step firstStage(long root, int levels, boolean nxe, boolean wp, long va, int access, Ss nest, Ref x) {
            if (va << (64 - 12 - 9 * levels) >> (64 - 12 - 9 * levels) != va) {
                x.fault(0x80, "not canonical");
                return null;
            }
            long all = -1L; // R/W and U/S ANDed across levels
            long any = 0; // XD ORed across levels
            long table = root;
            for (int depth = 0; depth < levels; depth++) {
                int level = levels - depth;
                int shift = 3 + 9 * level;
                long slot = table + 8 * ((va >>> shift) & 511);
                boolean s2Writable = true;
                if (nest != null) {
                    Step fetch = secondStage(nest, slot, READ | PRIV);
                    if (!fetch.ok()) {
                        String f = fetch.faults.iterator().next();
                        x.fault(switch (f) {
                            case "INPUT" -> 0x74;
                            case "RESERVED" -> 0x7a;
                            case "FETCH" -> 0x78;
                            case "AD" -> 0x7c;
                            default -> depth == 0 ? 0x75 : 0x76;
                        }, "second stage fetching a first-stage entry: " + fetch.rule);
                        return null;
                    }
                    slot = fetch.output;
                    s2Writable = fetch.writable;
                }
                Long e = read(slot, false);
                if (e == null) {
                    x.fault(depth == 0 ? 0x73 : 0x70, "FS entry not readable");
                    return null;
                }
                if (!bit(e, 0)) {
                    x.fault(0x71, "FS present clear");
                    return null;
                }
                boolean ps = bit(e, 7) && level > 1;
                boolean leaf = level == 1 || (ps && level <= 3);
                if ((e & (bits(51, haw) | (nxe ? 0 : 1L << 63))) != 0 || (ps && level >= 4) || (ps && level == 3 && !fs1gp)
                        || (leaf && level > 1 && (e & bits(shift - 1, 13)) != 0)) {
                    x.fault(0x72, "FS reserved bits, PS level or address below a large page");
                    return null;
                }
                all &= e;
                any |= e;
                long flags = FL_A | (leaf && (access & WRITE) != 0 ? FL_D : 0);
                if (leaf) {
                    boolean priv = (access & PRIV) != 0;
                    if (!priv && (all & FL_US) == 0) {
                        x.codes.add(0x81);
                    }
                    if ((access & WRITE) != 0 && (all & FL_RW) == 0 && (!priv || wp)) {
                        x.codes.add(0x85);
                    }
                    if ((access & EXEC) != 0 && nxe && (any & FL_XD) != 0) {
                        x.codes.add(0x82);
                    }
                    if (!x.codes.isEmpty()) {
                        x.rule = "FS access rights";
                        return null;
                    }
                }
                if ((e & flags) != flags) {
                    if (!s2Writable) {
                        x.fault(0x77, "setting A/D needs a second-stage write");
                        return null;
                    }
                    if (rom.contains(slot >>> 12)) {
                        x.fault(0x91, "A/D of a read-only FS entry");
                        return null;
                    }
                }
                if (!leaf) {
                    table = e & bits(haw - 1, 12);
                    continue;
                }
                Step s = new Step();
                s.output = (e & bits(haw - 1, shift)) | (va & ((1L << shift) - 1));
                s.shift = shift;
                return s;
            }
            throw new AssertionError("level 1 ends the walk");
        }
    }

    /** A PASID entry's second stage: SLPTPTR, AW, SLEE, and SLADE where ECAP.SLADS allows it. */
    record Ss(long root, int aw, boolean slee, boolean ad) {
    }

    /** One request. */
    record Request(int sid, int pasid, long address, int access) {
    }

    /** A mapping set up for a device: what requests aim at. */
    record Mapping(int sid, int pasid, boolean ridPasid, long va, long size) {
    }

    /** Builds the devices, tables and damage of one try. */
    static final class Setup {
        final VtdRig r;
        final Reference ref;
        final Random rnd;
        final List<Mapping> mappings = new ArrayList<>();
        /** Words worth damaging: structure entries, and (added after setup) entries on mapped walks. */
        final List<Long> targets = new ArrayList<>();
        /** PASID entry word 1: damage spares the DID (15:0). */
        final Set<Long> didWords = new HashSet<>();
        final Set<Long> configPages = new HashSet<>();
        /** Every page-table word the mapped walks read. */
        final List<Long> walked = new ArrayList<>();
        final Map<Integer, List<Integer>> configured = new HashMap<>();
        int nextDid = 0xa5a0;
        /** 1 GiB slots of the input (and, nested, guest-physical) space, one per mapping; slot 0 holds guest tables. */
        long nextSlot = 1;
        long nextGpa = 0x100_0000L;

        Setup(VtdRig r, Reference ref, Random rnd) {
            this.r = r;
            this.ref = ref;
            this.rnd = rnd;
        }

        void device(int sid) {
            int ridPasid = rnd.nextInt(3);
            int pdts = rnd.nextInt(2);
            long flags = (rnd.nextInt(8) != 0 ? CTX_PASIDE : 0) | (rnd.nextInt(4) == 0 ? CTX_FPD : 0);
            long dir = r.smContext(sid, ridPasid, pdts, flags);
            configPages.add(ROOT >>> 12);
            configPages.add(r.contextEntryAddress(sid) >>> 12);
            configPages.add(dir >>> 12);
            long root = ROOT + (sid >>> 8) * 16L + ((sid & 0x80) != 0 ? 8 : 0);
            targets.add(root);
            targets.add(r.contextEntryAddress(sid));
            targets.add(r.contextEntryAddress(sid) + 8);
            Set<Integer> pasids = new LinkedHashSet<>();
            pasids.add(ridPasid);
            for (int p : PASIDS) {
                if (rnd.nextInt(3) == 0 && (p >>> 6) < 1 << (pdts + 7)) {
                    pasids.add(p);
                }
            }
            configured.put(sid, new ArrayList<>(pasids));
            for (int p : pasids) {
                long entry = pasidEntry(sid, p, p == ridPasid);
                configPages.add(entry >>> 12);
                targets.add(r.directoryEntry(sid, p));
                targets.add(entry);
                targets.add(entry + 8);
                targets.add(entry + 16);
                didWords.add(entry + 8);
            }
        }

        /** A PASID entry of a random PGTT with its tables and a few mappings. */
        long pasidEntry(int sid, int pasid, boolean ridPasid) {
            int pgtt = 1 + rnd.nextInt(4);
            int maxAw = ref.sagaw >= 8 ? 3 : ref.sagaw >= 4 ? 2 : 1;
            int aw = 1 + rnd.nextInt(maxAw);
            int flpm = ref.fs5lp && rnd.nextInt(3) == 0 ? 1 : 0;
            int bad = rnd.nextInt(24); // now and then a field the unit must refuse (0x5b)
            long e0flags = (rnd.nextBoolean() ? PE_SLEE : 0) | (rnd.nextBoolean() ? PE_SLADE : 0) | (rnd.nextInt(4) == 0 ? PE_FPD : 0);
            long e2flags = (rnd.nextInt(4) != 0 ? PE2_SRE : 0) | (rnd.nextBoolean() ? PE2_WPE : 0) | (rnd.nextBoolean() ? PE2_NXE : 0);
            PageTables ss = pgtt == 2 || pgtt == 3 ? r.secondStage(aw) : null;
            PageTables fs = null;
            if (pgtt == 1) {
                fs = r.firstStage(4 + flpm);
            } else if (pgtt == 3) {
                PageTables host = ss;
                fs = new PageTables(r.mem, true, 4 + flpm, () -> {
                    long gpa = nextGpa;
                    nextGpa += 0x1000;
                    host.map(gpa, gpa + GUEST_OFFSET, 1, rnd.nextInt(6) == 0 ? SL_R : SL_R | SL_W);
                    r.zero(gpa + GUEST_OFFSET, 4096);
                    return gpa;
                }, gpa -> gpa + GUEST_OFFSET);
            }
            for (int i = 1 + rnd.nextInt(3); i > 0; i--) {
                int level = rnd.nextInt(4) == 0 ? 2 + rnd.nextInt(2) : 1;
                long size = 1L << (3 + 9 * level);
                // Each mapping in a 1 GiB slot of its own, so that no page lands inside another's.
                long va = (nextSlot++ << 30) + (rnd.nextLong() & bits(29, 12) & -size);
                long data = DATA + (rnd.nextLong() & bits(31, 12) & -size);
                if (fs != null) {
                    if (rnd.nextInt(4) == 0) {
                        va = va | bits(63, 47); // the upper canonical half
                    }
                    long fl = FL_P | (rnd.nextInt(4) != 0 ? FL_RW : 0) | (rnd.nextInt(4) != 0 ? FL_US : 0) | (rnd.nextBoolean() ? FL_A : 0)
                            | (rnd.nextBoolean() ? FL_D : 0) | (rnd.nextInt(4) == 0 ? FL_XD : 0);
                    if (ss != null) {
                        long gpa = (nextSlot++ << 30) + (rnd.nextLong() & bits(29, 12) & -size);
                        fs.map(va, gpa, level, fl);
                        // Back the guest page with host pages of a random size (the smaller page wins).
                        int hostLevel = rnd.nextBoolean() ? 1 : level;
                        long probe = gpa + (rnd.nextLong() & (size - 1) & -(1L << (3 + 9 * hostLevel)));
                        ss.map(probe, data + (probe - gpa), hostLevel, ssFlags());
                    } else {
                        fs.map(va, data, level, fl);
                    }
                } else if (ss != null) {
                    ss.map(va, data, level, ssFlags());
                }
                mappings.add(new Mapping(sid, pasid, ridPasid, va, size));
            }
            long slptptr = ss != null ? ss.root : 0;
            long flptptr = fs != null ? fs.root : 0;
            pgtt = bad == 0 ? (rnd.nextBoolean() ? 0 : 5 + rnd.nextInt(3)) : pgtt;
            aw = bad == 1 ? (rnd.nextBoolean() ? 0 : 4 + rnd.nextInt(4)) : aw;
            flpm = bad == 2 ? 1 + rnd.nextInt(3) : flpm;
            return r.pasidEntry(sid, pasid, pe0(pgtt, aw, slptptr) | e0flags, nextDid++, pe2(flptptr, flpm) | e2flags);
        }

        long ssFlags() {
            return (rnd.nextInt(8) != 0 ? SL_R : 0) | (rnd.nextInt(4) != 0 ? SL_W : 0) | (rnd.nextInt(4) != 0 ? SL_X : 0)
                    | (rnd.nextBoolean() ? SL_A | SL_D : 0);
        }

        /**
         * Makes the configuration pages read-only to hardware writes, and in every other try a page
         * table or two, so that setting an accessed or dirty flag there fails (0x91, 0x7c).
         */
        void protect() {
            Set<Long> pages = new HashSet<>(configPages);
            for (int i = rnd.nextBoolean() ? 1 + rnd.nextInt(2) : 0; i > 0 && !walked.isEmpty(); i--) {
                pages.add(walked.get(rnd.nextInt(walked.size())) >>> 12);
            }
            for (long page : pages) {
                r.mem.makeRom(page << 12);
                ref.rom.add(page);
            }
        }

        /** Flips random bits of a few entries: structure words, and page-table entries on mapped walks. */
        void damage() {
            ref.collect = new ArrayList<>();
            for (Mapping m : mappings) {
                ref.translate(m.sid, m.ridPasid ? NO_PASID : m.pasid, m.va, READ);
            }
            targets.addAll(ref.collect);
            for (long a : ref.collect) {
                if (!configPages.contains(a >>> 12)) {
                    walked.add(a);
                }
            }
            ref.collect = null;
            ref.watched.clear();
            for (int i = rnd.nextInt(5); i > 0; i--) {
                long at = targets.get(rnd.nextInt(targets.size()));
                long e = r.mem.read64(at);
                long keep = didWords.contains(at) ? 0xffffL : 0;
                long damaged = e;
                if (rnd.nextInt(8) == 0) {
                    damaged = rnd.nextLong();
                } else {
                    for (int n = 1 + rnd.nextInt(2); n > 0; n--) {
                        damaged ^= 1L << (rnd.nextBoolean() ? rnd.nextInt(64) : rnd.nextInt(12));
                    }
                }
                r.mem.write64(at, (damaged & ~keep) | (e & keep));
            }
        }

        /** A request: at a mapping (often), or from anywhere. */
        Request request() {
            int pick = rnd.nextInt(8);
            int sid;
            int pasid;
            long address;
            if (pick < 5 && !mappings.isEmpty()) {
                Mapping m = mappings.get(rnd.nextInt(mappings.size()));
                sid = m.sid;
                pasid = m.ridPasid && rnd.nextBoolean() ? NO_PASID : m.pasid;
                address = m.va + (rnd.nextLong() & (m.size - 1));
            } else {
                sid = rnd.nextInt(4) == 0 ? rnd.nextInt(0x10000) : SIDS[rnd.nextInt(SIDS.length)];
                List<Integer> own = configured.getOrDefault(sid, List.of(0));
                int which = rnd.nextInt(4);
                pasid = which == 0 ? NO_PASID : which == 1 ? ABSENT_PASIDS[rnd.nextInt(ABSENT_PASIDS.length)]
                        : own.get(rnd.nextInt(own.size()));
                address = switch (rnd.nextInt(4)) {
                    case 0 -> rnd.nextLong();
                    case 1 -> rnd.nextLong() >>> rnd.nextInt(64);
                    default -> rnd.nextLong() & bits(39, 0);
                };
            }
            int access = rnd.nextInt(8);
            if (pasid != NO_PASID && rnd.nextBoolean()) {
                access |= PRIV;
            }
            return new Request(sid, pasid, address, access);
        }
    }

    // =============================================================================================
    // (b) invalidation descriptors
    // =============================================================================================

    static final int SID = 0x0010;
    static final long IOVA = 0x1abc;
    static final long PA = DATA + 0x5abc;

    @Property
    void invalidationDescriptorsRunOrStopTheQueue(@ForAll boolean wide, @ForAll boolean bigQueue, @ForAll long seed) {
        assertTimeoutPreemptively(TRY_BOUND, () -> queue(wide, bigQueue, seed));
    }

    static void queue(boolean wide, boolean bigQueue, long seed) {
        Random rnd = new Random(seed);
        VtdRig r = new VtdRig();
        PageTables ss = r.secondStage(2);
        ss.map(IOVA & ~0xfffL, PA & ~0xfffL);
        r.secondStageDevice(SID, 1, ss);
        r.enable(wide, bigQueue ? 1 : 0);
        int mamv = (int) (r.reg64(CAP) >>> 48) & 0x3f; // §11.4.2 MAMV 53:48
        int size = r.descriptorBytes();
        int[] status = {0};
        for (int batch = 0; batch < 6; batch++) {
            int n = 1 + rnd.nextInt(rnd.nextInt(4) == 0 ? 60 : 8);
            long[][] d = new long[n][];
            boolean[] valid = new boolean[n];
            int firstBad = n;
            for (int i = 0; i < n; i++) {
                d[i] = descriptor(rnd, status);
                valid[i] = valid(d[i], mamv);
                if (!valid[i] && firstBad == n) {
                    firstBad = i;
                }
            }
            long head = r.reg64(IQH);
            String what = String.format("batch %d of %d descriptors%s, first invalid %d: %s", batch, n, wide ? " (256-bit)" : "",
                    firstBad, describe(d));
            try {
                r.submit(d);
            } catch (Throwable t) {
                throw new AssertionError(what + "\n  threw " + t, t);
            }
            assertStatuses(r, d, 0, firstBad, what);
            if (firstBad == n) {
                assertEquals(0, r.fsts() & IQE, what + "\n  FSTS.IQE");
                assertEquals(r.reg64(IQT), r.reg64(IQH), what + "\n  IQH caught up");
            } else {
                assertEquals(IQE, r.fsts() & IQE, what + "\n  FSTS.IQE");
                assertEquals((head + (long) firstBad * size) % r.queueBytes(), r.reg64(IQH), what + "\n  IQH on the invalid one");
                assertStatuses(r, d, firstBad, n, null);
                // Software replaces every invalid descriptor left with a wait, clears IQE, and writes IQT again.
                for (int i = firstBad; i < n; i++) {
                    if (!valid[i]) {
                        d[i] = waitDesc(true, false, 0x7000_0000 + status[0], STATUS + 4L * (status[0]++ & 1023));
                        long at = IQ_BASE + (head + (long) i * size) % r.queueBytes();
                        for (int w = 0; w < size / 8; w++) {
                            r.mem.write64(at + 8L * w, w < d[i].length ? d[i][w] : 0);
                        }
                    }
                }
                r.w32(FSTS, IQE);
                r.w64(IQT, r.tail());
                assertEquals(0, r.fsts() & IQE, what + "\n  IQE after the repair");
                assertEquals(r.reg64(IQT), r.reg64(IQH), what + "\n  IQH after the repair");
                assertStatuses(r, d, firstBad, n, what + "\n  after the repair");
            }
            assertEquals(PA, r.read(SID, IOVA), what + "\n  translation after the batch");
        }
    }

    /**
     * A descriptor: a valid one of a random type and fields, one of those with a bit or two flipped,
     * or random words. Status addresses of waits with SW are kept on the status page, one slot each,
     * and carry a fresh value.
     */
    static long[] descriptor(Random rnd, int[] status) {
        long[] d;
        int did = rnd.nextInt(0x10000);
        long address = rnd.nextLong() & bits(47, 12);
        int am = rnd.nextInt(22);
        switch (rnd.nextInt(12)) {
            case 0 -> d = contextCacheDesc(rnd.nextInt(4), did, rnd.nextInt(0x10000), rnd.nextInt(4));
            case 1 -> d = iotlbDesc(rnd.nextInt(4), did, rnd.nextBoolean() ? address & -(4096L << am) : address, am, rnd.nextBoolean());
            case 2 -> d = pasidIotlbDesc(rnd.nextInt(4), did, rnd.nextInt(1 << 20), rnd.nextBoolean() ? address & -(4096L << am) : address,
                    am, rnd.nextBoolean());
            case 3 -> d = pasidCacheDesc(rnd.nextInt(4), did, rnd.nextInt(1 << 20));
            case 4, 5, 6, 7, 8, 9 -> d = waitDesc(rnd.nextBoolean(), rnd.nextBoolean(), 0, 0);
            default -> d = new long[] {rnd.nextLong(), rnd.nextLong(), rnd.nextLong(), rnd.nextLong()};
        }
        if (rnd.nextInt(4) == 0) {
            d[rnd.nextInt(2)] ^= 1L << (rnd.nextBoolean() ? rnd.nextInt(64) : rnd.nextInt(12));
        }
        if (type(d) == 5 && bit(d[0], 5)) {
            d[0] = (d[0] & 0xffff_ffffL) | (long) (0x5000_0000 + status[0]) << 32;
            d[1] = STATUS + 4L * (status[0]++ & 1023);
        }
        return d;
    }

    /** §6.5.2: the descriptor type, qw0 bits 11:9 over 3:0. */
    static int type(long[] d) {
        return (int) (((d[0] >>> 5) & 0x70) | (d[0] & 0xf));
    }

    /**
     * §6.5.2.1-§6.5.2.9 as the unit implements them: context-cache (G 1-3), IOTLB (G 1-3; page
     * selective: AM up to CAP.MAMV and the address aligned to 2^AM pages), device-TLB, interrupt
     * entry cache, wait, PASID-based IOTLB (G 2-3, page selective as above), PASID-cache (G 0, 1, 3),
     * PASID-based device-TLB, page group response. Other types are invalid.
     */
    static boolean valid(long[] d, int mamv) {
        int g = (int) (d[0] >>> 4) & 3;
        boolean pageAligned = (d[1] & 0x3f) <= mamv && ((d[1] & ~0xfffL) & ((4096L << (d[1] & 0x3f)) - 1)) == 0;
        return switch (type(d)) {
            case 1 -> g != 0;
            case 2 -> g != 0 && (g != 3 || pageAligned);
            case 3, 4, 5, 8, 9 -> true;
            case 6 -> g >= 2 && (g != 3 || pageAligned);
            case 7 -> g != 2;
            default -> false;
        };
    }

    /** Waits with SW among {@code d[from..to)} wrote their status data ({@code what} set), or did not. */
    static void assertStatuses(VtdRig r, long[][] d, int from, int to, String what) {
        for (int i = from; i < to; i++) {
            if (type(d[i]) == 5 && bit(d[i][0], 5)) {
                int data = (int) (d[i][0] >>> 32);
                if (what != null) {
                    assertEquals(data, r.mem.read32(d[i][1] & ~3L), what + "\n  status of wait " + i);
                } else {
                    assertTrue(r.mem.read32(d[i][1] & ~3L) != data, "wait " + i + " after the invalid descriptor ran");
                }
            }
        }
    }

    static String describe(long[][] d) {
        StringBuilder b = new StringBuilder();
        for (long[] x : d) {
            b.append(String.format("%n    type %d: 0x%016x 0x%016x", type(x), x[0], x[1]));
        }
        return b.toString();
    }

    // =============================================================================================
    // (c) register writes between translations
    // =============================================================================================

    static final int WRITES = 60;
    /** A translation that takes longer than this is a hang (generous: GC pauses on 2 cores). */
    static final long BOUND_NANOS = 2_000_000_000L;

    @Property
    void registerWritesInterleavedWithTranslationsNeverThrowOrHang(@ForAll long seed) {
        assertTimeoutPreemptively(TRY_BOUND, () -> registers(seed));
    }

    static void registers(long seed) throws IommuException {
        Random rnd = new Random(seed);
        VtdRig r = new VtdRig();
        PageTables ss = r.secondStage(2);
        ss.map(IOVA & ~0xfffL, PA & ~0xfffL);
        r.secondStageDevice(SID, 1, ss);
        r.enable();
        List<Long> structures = List.of(ROOT, r.contextTable(0, false), r.directory(SID), ss.root, IQ_BASE);
        Translation t = new Translation();
        for (int i = 0; i < WRITES; i++) {
            int size = rnd.nextBoolean() ? 4 : 8;
            int reg = VtdFuzzTest.REGISTERS[rnd.nextInt(VtdFuzzTest.REGISTERS.length)];
            int offset = size == 8 ? reg : reg + 4 * rnd.nextInt(2);
            long value = VtdFuzzTest.value(rnd, structures);
            String what = String.format("write %d: 0x%x (%d bytes) at 0x%x", i, value, size, offset);
            r.hw.write(offset, value, size);
            r.hw.read(offset, size);
            boolean enabled = (r.gsts() & TE) != 0;
            for (int j = rnd.nextInt(3); j >= 0; j--) {
                int sid = rnd.nextBoolean() ? SID : rnd.nextInt(0x10000);
                int pasid = VtdFuzzTest.pasid(rnd);
                long address = rnd.nextBoolean() ? IOVA : VtdFuzzTest.address(rnd);
                int access = rnd.nextInt(16);
                long start = System.nanoTime();
                boolean ok = r.hw.translate(sid, pasid, address, access, t);
                long took = System.nanoTime() - start;
                String req = String.format("%s, then translate(0x%x, %d, 0x%x, %d): %s", what, sid, pasid, address, access, t);
                assertTrue(took < BOUND_NANOS, req + " took " + took / 1000 + " us");
                assertEquals(ok, t.isSuccess(), req);
                if (!enabled) {
                    assertTrue(ok, req + ": GSTS.TES clear, so untranslated");
                    assertEquals(address, t.outputAddress(), req + ": GSTS.TES clear, so untranslated");
                } else if (!ok) {
                    assertNotNull(VtdRig.name(t.faultCode()), req + ": a VtdFault code");
                }
            }
        }
        // A driver re-initialising the unit (TE and QI off, faults cleared, fresh tables: a wait
        // descriptor read from a random queue base may have written anywhere) gets it back.
        r.w32(GCMD, 0);
        r.w32(FSTS, 0x7f);
        r.zero(ROOT, 4096);
        PageTables fresh = r.secondStage(2);
        fresh.map(IOVA & ~0xfffL, PA & ~0xfffL);
        r.secondStageDevice(SID, 2, fresh);
        r.enable();
        r.submit(contextCacheDesc(1, 0, 0, 0), pasidCacheDesc(3, 0, 0), iotlbDesc(1, 0, 0, 0, false));
        r.sync();
        assertEquals(PA, r.read(SID, IOVA), "translation after re-initialisation");
        assertEquals(TE, r.gsts() & TE, "GSTS.TES");
    }
}
