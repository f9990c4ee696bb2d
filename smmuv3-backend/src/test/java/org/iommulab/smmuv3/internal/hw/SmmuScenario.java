package org.iommulab.smmuv3.internal.hw;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;

import net.jqwik.api.Arbitraries;
import net.jqwik.api.Arbitrary;
import net.jqwik.api.Combinators;
import net.jqwik.api.Tuple;

/**
 * Random but mostly well-formed SMMUv3 configurations for the property tests, laid out in a
 * {@link SmmuRig}'s memory with the bit layouts of Arm IHI 0070 §5 (STE, CD, L1STD, L1CD) and
 * VMSAv8-64 descriptors (Arm ARM D8.3), written here and not by the model's formats: a stream table
 * (linear or two-level), streams of every Config (abort, bypass, stage 1, stage 2, nested), linear
 * and two-level CD tables, stage-1 tables (TTB0 and TTB1, every granule, pages and blocks) and
 * stage-2 tables (every granule, start level and concatenation), plus the addresses worth
 * translating ({@link Probe}). {@link Mutation}s then flip bits or rewrite fields in those
 * structures.
 *
 * <p>Everything is derived from one seed, so a layout is reproducible. Tags stay unique per stream
 * (VMID) and per CD (ASID) and mutations leave them alone: two address spaces with one tag are
 * UNPREDICTABLE (§5.2.1, §5.4.1), not a bug.
 */
final class SmmuScenario {
    static final int NONE = SmmuReference.NONE;
    /** Stage-1 structures of a nested stream live at IPAs from here, in their stream's own window. */
    static final long IPA_WINDOW = 0x40_0000;
    static final long WINDOW_SIZE = 0x80_0000;
    private static final long SHARED = 0x100_0000;
    private static final long SHARED_END = 0x400_0000;
    private static final long WINDOWS = 0x400_0000;
    private static final long OA_47_12 = 0x0000_ffff_ffff_f000L;

    /** Unit configurations: the most capable one, and reduced ones that exercise the ID-register rules. */
    static final List<Map<String, String>> VARIANTS = List.of(
            Map.of(),
            Map.of("oas", "44", "granules", "4k,64k", "asid16", "false", "vmid16", "false"),
            Map.of("ssidsize", "0", "two-level-stream-table", "false", "sidsize", "8"),
            Map.of("stage1", "false", "ats", "false", "pri", "false"),
            Map.of("stage2", "false", "two-level-cd-table", "false", "ssidsize", "8"));

    /** An address worth translating and the SubstreamID that reaches its mapping. */
    record Probe(int ssid, long va) {
    }

    /** One stream of the layout. */
    static final class Stream {
        int sid;
        int config;
        final List<Probe> probes = new ArrayList<>();

        @Override
        public String toString() {
            return "sid " + sid + " config 0b" + Integer.toBinaryString(config);
        }
    }

    /**
     * A change to one structure: flip a bit, write a field, or fill with garbage. {@code target}
     * selects the structure type, {@code pick} which one, {@code word} the doubleword or field;
     * {@code when} 0 before the unit is enabled, n before the n-th transaction (the driver then
     * invalidates everything: CMD_CFGI_ALL, CMD_TLBI_NSNH_ALL, CMD_SYNC).
     */
    record Mutation(int target, int pick, int word, int bit, int op, long value, int when) {
        static final String[] TARGETS = {"STE", "CD", "L1CD", "L1STD", "S1 descriptor", "S2 descriptor"};

        @Override
        public String toString() {
            return String.format("%s #%d %s%s", TARGETS[target], pick,
                    op == 0 ? "flip dword " + word + " bit " + bit : op == 1 ? "field " + word + " := " + value : "garbage",
                    when == 0 ? "" : " before transaction " + when);
        }
    }

    /** A transaction choice, resolved against the layout's streams and probes. */
    record Txn(int stream, int ssidMode, int addressMode, int probe, long raw, int access) {
    }

    static Arbitrary<Mutation> mutations() {
        Arbitrary<Integer> when = Arbitraries.frequencyOf(Tuple.of(3, Arbitraries.just(0)),
                Tuple.of(2, Arbitraries.integers().between(1, 23)));
        return Combinators.combine(Arbitraries.integers().between(0, 5), Arbitraries.integers().between(0, 1 << 10),
                Arbitraries.integers().between(0, 15), Arbitraries.integers().between(0, 63),
                Arbitraries.integers().between(0, 9).map(op -> op < 7 ? 0 : op < 9 ? 1 : 2), Arbitraries.longs(), when)
                .as(Mutation::new);
    }

    static Arbitrary<Txn> transactions() {
        return Combinators.combine(Arbitraries.integers().between(0, 99), Arbitraries.integers().between(0, 9),
                Arbitraries.integers().between(0, 19), Arbitraries.integers().between(0, 1 << 10), Arbitraries.longs(),
                Arbitraries.of(1, 2, 3, 5, 9, 10, 11, 13)).as(Txn::new);
    }

    final Map<String, String> config;
    final SmmuReference.Features features;
    final SmmuRig rig;
    final Random rnd;
    final List<Stream> streams = new ArrayList<>();
    /** Addresses of the structures mutations can reach, by {@link Mutation#target}. */
    final List<List<Long>> targets = new ArrayList<>();
    /** Whether an S1/S2 descriptor address holds a leaf. */
    final Map<Long, Boolean> leaves = new LinkedHashMap<>();
    long strtabBase = SmmuRig.STRTAB;
    int strtabCfg;
    private long shared = SHARED;
    private int nextTag = 1;
    private int windows;

    SmmuScenario(Map<String, String> config, long seed) {
        this.config = config;
        this.features = new SmmuReference.Features(config);
        this.rig = new SmmuRig(config);
        this.rnd = new Random(seed);
        for (int i = 0; i < 6; i++) {
            targets.add(new ArrayList<>());
        }
        build();
    }

    // ---- memory -----------------------------------------------------------------------------

    private long take(long bytes, long align) {
        long a = (shared + align - 1) & -align;
        shared = a + bytes;
        if (shared > SHARED_END) {
            throw new IllegalStateException("scenario memory exhausted");
        }
        rig.ram.fill(a, bytes, (byte) 0);
        return a;
    }

    /** A bump allocator over a nested stream's window: PAs whose IPA is PA - delta. */
    private final class Window {
        final long pa;
        final long delta;
        long next;

        Window() {
            pa = WINDOWS + WINDOW_SIZE * windows++;
            delta = pa - IPA_WINDOW;
            next = pa;
        }

        long take(long bytes, long align) {
            long a = (next + align - 1) & -align;
            next = a + bytes;
            if (next > pa + WINDOW_SIZE) {
                throw new IllegalStateException("window exhausted");
            }
            rig.ram.fill(a, bytes, (byte) 0);
            return a;
        }
    }

    private int tag() {
        return nextTag++; // below 256: fine for 8-bit ASIDs and VMIDs too
    }

    private boolean chance(int percent) {
        return rnd.nextInt(100) < percent;
    }

    private int granule() {
        List<Integer> g = new ArrayList<>();
        for (int s : new int[] {12, 14, 16}) {
            if (features.granule(s) > 0) {
                g.add(s);
            }
        }
        return g.get(rnd.nextInt(g.size()));
    }

    /**
     * VMSAv8-64 tables of one stage (Arm ARM D8.3): descriptor bits 1:0 0b11 table or page, 0b01
     * block; table pointers stored as {@code pa - delta} (IPAs for a nested stage 1).
     */
    private final class Tables {
        final int gshift;
        final int inBits;
        final int start;
        final long root;
        final long delta;
        final Window window;
        final boolean s2;

        Tables(int gshift, int inBits, int start, long delta, Window window, boolean s2) {
            this.gshift = gshift;
            this.inBits = inBits;
            this.start = start;
            this.delta = delta;
            this.window = window;
            this.s2 = s2;
            long bytes = 8L << (inBits - shift(start));
            this.root = alloc(Math.max(bytes, 64), Math.max(bytes, 64));
        }

        private long alloc(long bytes, long align) {
            return window != null ? window.take(bytes, align) : take(bytes, align);
        }

        int shift(int level) {
            return gshift + (gshift - 3) * (3 - level);
        }

        boolean blockAllowed(int level) {
            return level == 3 || level == 2 || (gshift == 12 && level == 1);
        }

        private long slot(long table, long va, int level) {
            int bits = level == start ? inBits - shift(level) : gshift - 3;
            return table + 8 * ((va >>> shift(level)) & ((1L << bits) - 1));
        }

        /** Maps [va, va + 2^shift(level)) to oa with a leaf at {@code level}; false if something is in the way. */
        boolean map(long va, long oa, int level, long leafAttrs, long tableAttrs) {
            long table = root;
            for (int l = start; l < level; l++) {
                long slot = slot(table, va, l);
                long e = rig.ram.read64(slot);
                if ((e & 1) == 0) {
                    long t = alloc(1L << gshift, 1L << gshift);
                    e = (t - delta) | 3 | tableAttrs;
                    rig.ram.write64(slot, e);
                    record(slot, false);
                } else if ((e & 2) == 0) {
                    return false;
                }
                table = (e & OA_47_12 & -(1L << gshift)) + delta;
            }
            long slot = slot(table, va, level);
            if (rig.ram.read64(slot) != 0) {
                return false;
            }
            rig.ram.write64(slot, (oa & -(1L << shift(level))) | leafAttrs | (level == 3 ? 3 : 1));
            record(slot, true);
            return true;
        }

        private void record(long slot, boolean leaf) {
            targets.get(s2 ? 5 : 4).add(slot);
            leaves.put(slot, leaf);
        }

        int randomLeafLevel() {
            for (int tries = 0; tries < 4; tries++) {
                int level = chance(70) ? 3 : 1 + rnd.nextInt(2);
                if (level >= start && blockAllowed(level)) {
                    return level;
                }
            }
            return 3;
        }
    }

    private long randomOutput(int outBits, int shift) {
        int bits = chance(85) ? Math.min(outBits, 40) : 48;
        return (rnd.nextLong() & ((1L << bits) - 1)) & -(1L << shift);
    }

    /**
     * A stage-1 page or block: AP[2:1] 7:6, AF 10, nG 11, DBM 51, PXN 53, UXN 54. DBM only on pages
     * without EL0 access: whether a writable-clean EL0 page is "writable at EL0" for the PXN rule
     * is read differently by implementations (QEMU applies DBM to writes only), and the model's TLB
     * keeps the permission it computed before its own dirty update, so the fuzzer stays out of it.
     */
    private long s1Leaf() {
        int ap = chance(50) ? 1 : rnd.nextInt(4);
        boolean dbm = (ap & 1) == 0 && chance(25);
        return 3L << 8 | (long) ap << 6 | (chance(90) ? 1L << 10 : 0) | (chance(20) ? 1L << 54 : 0)
                | (chance(20) ? 1L << 53 : 0) | (dbm ? 1L << 51 : 0) | (long) rnd.nextInt(8) << 2 | (chance(50) ? 1L << 11 : 0);
    }

    private long s1Table() {
        return (chance(5) ? 1L << 59 : 0) | (chance(5) ? 1L << 60 : 0) | (chance(5) ? 1L << 61 : 0) | (chance(5) ? 1L << 62 : 0);
    }

    private long s2Leaf(boolean writable) {
        int s2ap = writable ? 3 : chance(60) ? 3 : rnd.nextInt(4);
        return 3L << 8 | 0xfL << 2 | (long) s2ap << 6 | (chance(90) ? 1L << 10 : 0) | (chance(15) ? 1L << 54 : 0)
                | (chance(15) ? 1L << 51 : 0);
    }

    // ---- layout -----------------------------------------------------------------------------

    private void build() {
        boolean twoLevel = features.st2l && chance(35);
        int log2 = Math.min(features.sidBits, 3 + rnd.nextInt(8));
        int split = new int[] {6, 8, 10, 7}[rnd.nextInt(4)];
        int effSplit = split == 8 || split == 10 ? split : 6;
        strtabCfg = log2 | (twoLevel ? split << 6 | 1 << 16 : 0);
        int n = 1 + rnd.nextInt(3);
        for (int i = 0; i < n; i++) {
            Stream s = new Stream();
            do {
                s.sid = rnd.nextInt(1 << log2);
            } while (streams.stream().anyMatch(o -> o.sid == s.sid));
            long steAddr;
            if (twoLevel) {
                long l1 = strtabBase + 8L * (s.sid >>> effSplit);
                long d = rig.ram.read64(l1);
                int low = s.sid & ((1 << effSplit) - 1);
                int need = 32 - Integer.numberOfLeadingZeros(low) + 1;
                if (d == 0) {
                    int span = Math.min(effSplit + 1, need + rnd.nextInt(3));
                    long l2 = take(64L << (span - 1), 64L << (span - 1));
                    d = l2 | span;
                    rig.ram.write64(l1, d);
                    targets.get(3).add(l1);
                }
                int span = (int) d & 0x1f;
                if (low >>> (span - 1) != 0) {
                    continue; // beyond an existing span: the stream is unreachable, keep it out
                }
                steAddr = (d & 0x0000_ffff_ffff_ffc0L) + 64L * low;
            } else {
                steAddr = strtabBase + 64L * s.sid;
            }
            buildStream(s, steAddr);
            streams.add(s);
        }
        if (streams.isEmpty()) {
            Stream s = new Stream();
            s.config = 0;
            streams.add(s); // nothing reachable: every transaction is a configuration error
        }
    }

    private int randomConfig() {
        int k = rnd.nextInt(100);
        int c = k < 5 ? rnd.nextInt(4) : k < 15 ? 4 : k < 45 ? 5 : k < 65 ? 6 : 7;
        if (!features.s1p && (c & 1) != 0) {
            c = 6;
        }
        if (!features.s2p && (c & 2) != 0) {
            c = 5;
        }
        return c;
    }

    private void buildStream(Stream s, long steAddr) {
        s.config = randomConfig();
        long[] q = new long[8];
        q[0] = 1 | (long) s.config << 1;
        q[2] = tag(); // S2VMID: unique, also for stage-1-only streams (§5.2 S2VMID)
        boolean s1 = s.config >= 5 && (s.config & 1) != 0;
        boolean s2 = s.config >= 6;
        Tables t2 = null;
        Window w = null;
        if (s2) {
            int g = granule();
            int stride = g - 3;
            int min = Math.max(16, 64 - features.ias());
            int t0sz = chance(10) ? (chance(50) ? min : 39) : min + rnd.nextInt(40 - min);
            int inBits = 64 - t0sz;
            List<Integer> starts = new ArrayList<>();
            for (int level = g == 12 ? 0 : 1; level <= (g == 12 ? 2 : 3); level++) {
                int rootBits = inBits - (g + stride * (3 - level));
                if (rootBits >= 1 && rootBits <= stride + 4) {
                    starts.add(level);
                }
            }
            int start = starts.get(rnd.nextInt(starts.size()));
            int sl0 = chance(5) ? rnd.nextInt(4) : g == 12 ? 2 - start : 3 - start; // sometimes inconsistent: C_BAD_STE
            int ps = chance(70) ? 5 : rnd.nextInt(7);
            t2 = new Tables(g, inBits, start, 0, null, true);
            q[2] |= ((long) t0sz | (long) sl0 << 6 | (long) (g == 12 ? 0 : g == 16 ? 1 : 2) << 14 | (long) ps << 16
                    | 1L << 19 /* S2AA64 */ | (chance(20) ? 1L << 21 : 0) /* S2AFFD */ | (chance(25) ? 1L << 23 : 0) /* S2HD */
                    | (chance(30) ? 1L << 24 : 0) /* S2HA */ | (chance(90) ? 1L << 26 : 0) /* S2R */) << 32;
            q[3] = t2.root;
            if (s1) {
                w = new Window();
                boolean rw = chance(85);
                long attrs = s2Leaf(rw) & ~(1L << 54) & ~(chance(90) ? 0 : 1L << 10);
                for (long ipa = IPA_WINDOW; ipa < IPA_WINDOW + WINDOW_SIZE; ipa += 1L << g) {
                    t2.map(ipa, ipa + w.delta, 3, attrs, 0);
                }
            } else {
                for (int i = 0, m = 1 + rnd.nextInt(4); i < m; i++) {
                    int level = t2.randomLeafLevel();
                    int shift = t2.shift(level);
                    long ipa = (rnd.nextLong() & ((1L << Math.min(inBits, features.ias())) - 1)) & -(1L << shift);
                    if (t2.map(ipa, randomOutput(features.cappedSize(ps), shift), level, s2Leaf(false), 0)) {
                        s.probes.add(new Probe(NONE, ipa + (rnd.nextLong() & ((1L << shift) - 1) & -8L)));
                    }
                }
            }
        }
        if (s1) {
            buildStage1(s, q, t2, w);
        }
        if (!s1 && !s2) {
            s.probes.add(new Probe(NONE, rnd.nextLong() & ((1L << 40) - 1)));
        }
        for (int i = 0; i < 8; i++) {
            rig.ram.write64(steAddr + 8L * i, q[i]);
        }
        targets.get(0).add(steAddr);
    }

    private void buildStage1(Stream s, long[] q, Tables t2, Window w) {
        int cdMax;
        int fmt;
        int k = rnd.nextInt(100);
        if (features.ssidBits == 0 || k < 40) {
            cdMax = 0;
            fmt = rnd.nextInt(4);
        } else if (k < 75 || !features.cd2l || features.ssidBits < 7) {
            cdMax = 1 + rnd.nextInt(Math.min(6, features.ssidBits));
            fmt = chance(80) ? 0 : 3;
        } else {
            cdMax = 7 + rnd.nextInt(Math.min(features.ssidBits, 12) - 6);
            fmt = 1 + rnd.nextInt(2);
        }
        int s1dss = new int[] {0, 0, 0, 1, 1, 2, 2, 2, 2, 3}[rnd.nextInt(10)];
        long delta = w == null ? 0 : w.delta;
        List<Integer> indices = new ArrayList<>(List.of(0));
        for (int i = 0, m = cdMax == 0 ? 0 : 1 + rnd.nextInt(2); i < m; i++) {
            indices.add(rnd.nextInt(1 << cdMax));
        }
        long ctx;
        long[] cdAddr = new long[indices.size()];
        if (cdMax == 0 || fmt == 0 || fmt == 3) {
            long bytes = 64L << cdMax;
            ctx = w != null ? w.take(bytes, bytes) : take(bytes, bytes);
            for (int i = 0; i < indices.size(); i++) {
                cdAddr[i] = ctx + 64L * indices.get(i);
            }
        } else {
            int l2shift = fmt == 1 ? 6 : 10;
            long l1Bytes = Math.max(64, 8L << (cdMax - l2shift));
            ctx = w != null ? w.take(l1Bytes, l1Bytes) : take(l1Bytes, l1Bytes);
            for (int i = 0; i < indices.size(); i++) {
                long l1 = ctx + 8L * (indices.get(i) >>> l2shift);
                long d = rig.ram.read64(l1);
                if (d == 0) {
                    long l2Bytes = 64L << l2shift;
                    long l2 = w != null ? w.take(l2Bytes, l2Bytes) : take(l2Bytes, l2Bytes);
                    d = (l2 - delta) | 1;
                    rig.ram.write64(l1, d);
                    targets.get(2).add(l1);
                }
                cdAddr[i] = (d & OA_47_12) + delta + 64L * (indices.get(i) & ((1 << l2shift) - 1));
            }
        }
        q[0] |= (ctx - delta) | (long) fmt << 4 | (long) cdMax << 59;
        q[1] |= s1dss;
        for (int i = 0; i < indices.size(); i++) {
            if (rig.ram.read64(cdAddr[i]) != 0) {
                continue; // the same index drawn twice
            }
            int index = indices.get(i);
            // Which SubstreamID reaches this CD: index 0 serves transactions without one when
            // substreams are off or S1DSS is 0b10 (§5.2 S1DSS).
            int ssid = index == 0 && (cdMax == 0 || s1dss == 2) ? NONE : index;
            buildCd(s, cdAddr[i], ssid, t2, w);
        }
    }

    private void buildCd(Stream s, long cdPa, int ssid, Tables t2, Window w) {
        long delta = w == null ? 0 : w.delta;
        long[] c = new long[8];
        int ips = chance(70) ? 5 : rnd.nextInt(7);
        int ipsBits = features.cappedSize(ips);
        boolean ttb1 = chance(25);
        int[] tg0 = {0, -1, 2, -1, 1}; // granule shift 12/14/16 -> TG0 0b00 / 0b10 / 0b01
        int[] tg1 = {2, -1, 1, -1, 3}; // -> TG1 0b10 / 0b01 / 0b11
        for (int half = 0; half < (ttb1 ? 2 : 1); half++) {
            int g = granule();
            int tsz = 16 + rnd.nextInt(24);
            int inBits = 64 - tsz;
            int levels = (inBits - g + g - 4) / (g - 3);
            Tables t = new Tables(g, inBits, 4 - levels, delta, w, false);
            if (half == 0) {
                c[0] |= tsz | (long) tg0[g - 12] << 6;
                c[1] = t.root - delta;
            } else {
                c[0] |= (long) tsz << 16 | (long) tg1[g - 12] << 22;
                c[2] = t.root - delta;
            }
            for (int i = 0, m = 1 + rnd.nextInt(3); i < m; i++) {
                int level = t.randomLeafLevel();
                int shift = t.shift(level);
                long va = (rnd.nextLong() & ((1L << inBits) - 1)) & -(1L << shift);
                long out;
                if (t2 == null) {
                    out = randomOutput(ipsBits, shift);
                } else {
                    int ipaBits = Math.min(Math.min(ipsBits, t2.inBits), 40);
                    out = (rnd.nextLong() & ((1L << ipaBits) - 1)) & -(1L << shift);
                }
                if (!t.map(va, out, level, s1Leaf(), s1Table())) {
                    continue;
                }
                for (int p = 0; p < 2; p++) {
                    long offset = rnd.nextLong() & ((1L << shift) - 1) & -8L;
                    long probe = half == 0 ? va + offset : (va + offset) | -(1L << inBits);
                    s.probes.add(new Probe(ssid, probe));
                    if (t2 != null) {
                        long ipa = out + offset;
                        int l2 = t2.randomLeafLevel();
                        t2.map(ipa & -(1L << t2.shift(l2)), randomOutput(40, t2.shift(l2)), l2, s2Leaf(false), 0);
                    }
                }
            }
        }
        if (!ttb1) {
            c[0] |= 1L << 30; // EPD1
        }
        if (chance(4)) {
            c[0] |= 1L << 14; // EPD0
        }
        c[0] |= 1L << 31; // V
        c[0] |= ((long) ips | (chance(20) ? 1L << 3 : 0) /* AFFD */ | (chance(20) ? 1L << 6 : 0) /* TBI0 */
                | (chance(20) ? 1L << 7 : 0) /* TBI1 */ | 1L << 9 /* AA64 */ | (chance(25) ? 1L << 10 : 0) /* HD */
                | (chance(30) ? 1L << 11 : 0) /* HA */ | (chance(90) ? 1L << 13 : 0) /* R */ | 1L << 14 /* A */
                | (long) tag() << 16 /* ASID */) << 32;
        for (int i = 0; i < 8; i++) {
            rig.ram.write64(cdPa + 8L * i, c[i]);
        }
        targets.get(1).add(cdPa);
    }

    // ---- mutations --------------------------------------------------------------------------

    /** STE fields (dword, lo, width): Config, S1Fmt, S1CDMax, S1DSS, EATS, S2T0SZ, S2SL0, S2TG, S2PS. */
    private static final int[][] STE_FIELDS = {{0, 1, 3}, {0, 4, 2}, {0, 59, 5}, {1, 0, 2}, {1, 28, 2}, {2, 32, 6},
        {2, 38, 2}, {2, 46, 2}, {2, 48, 3}};
    /** CD fields: T0SZ, TG0, T1SZ, TG1, IPS. */
    private static final int[][] CD_FIELDS = {{0, 0, 6}, {0, 6, 2}, {0, 16, 6}, {0, 22, 2}, {0, 32, 3}};
    /** Values next to the edges of the valid ranges of S1CDMax, TxSZ and S2T0SZ (§5.2, §5.4). */
    private static final int[] EDGES = {0, 1, 6, 7, 8, 9, 10, 11, 12, 13, 15, 16, 17, 19, 20, 21, 24, 25, 31, 33, 38, 39, 40, 41, 48, 63};

    /**
     * Whether a mutation may flip this bit. Left alone: the tags (STE.S2VMID and CD.ASID bits 7:0;
     * bits 15:8 may flip, which keeps them unique and, with 8-bit tags, makes the structure ILLEGAL; CD.ASET),
     * features the model does not implement and the generator never enables (STE.S2PTW, CD.WXN,
     * CD.PAN), descriptor bits whose effect is CONSTRAINED UNPREDICTABLE or a hint (output address
     * bits 51:48 without 52-bit addressing, the Contiguous bit, stage-2 bits 53 and 11, DBM on an
     * EL0-accessible stage-1 page, see {@link #s1Leaf}), and L1STD.L2Ptr bits above the OAS
     * (truncate or abort, §3.4.3).
     */
    private boolean mayFlip(int target, long address, int dword, int bit) {
        switch (target) {
            case 0:
                return !(dword == 2 && (bit < 8 || bit == 54)); // a VMID + 256k stays unique (tags are below 256)
            case 1:
                return !(dword == 0 && (bit == 36 || bit == 40 || (bit >= 47 && bit < 56))); // likewise ASIDs
            case 3:
                return bit < 48 || bit > 55;
            case 4:
                if (leaves.get(address)) {
                    long e = rig.ram.read64(address);
                    boolean el0 = (e & 1L << 6) != 0;
                    boolean dbm = (e & 1L << 51) != 0;
                    return (bit < 48 || bit == 51 || bit >= 53) && !(bit == 51 && el0) && !(bit == 6 && dbm);
                }
                return bit < 48 || bit >= 52;
            case 5:
                return leaves.get(address) ? (bit < 48 && bit != 11) || bit == 51 || bit >= 54 : bit < 48 || bit >= 52;
            default:
                return true;
        }
    }

    /** @return a description of what changed, or null if the mutation found nothing to change */
    String apply(Mutation m) {
        List<Long> list = targets.get(m.target());
        if (list.isEmpty()) {
            return null;
        }
        long address = list.get(m.pick() % list.size());
        int dwords = m.target() <= 1 ? 8 : 1;
        int dword = m.word() % dwords;
        long a = address + 8L * dword;
        long before = rig.ram.read64(a);
        long after = before;
        if (m.op() == 0) {
            if (!mayFlip(m.target(), address, dword, m.bit())) {
                return null;
            }
            after = before ^ (1L << m.bit());
        } else if (m.op() == 1 && m.target() <= 1) {
            int[][] fields = m.target() == 0 ? STE_FIELDS : CD_FIELDS;
            int[] fl = fields[m.word() % fields.length];
            a = address + 8L * fl[0];
            before = rig.ram.read64(a);
            long mask = ((1L << fl[2]) - 1) << fl[1];
            long value = (m.value() & 1) == 0 ? m.value() >>> 1 : EDGES[(int) ((m.value() >>> 1) % EDGES.length)];
            after = (before & ~mask) | ((value << fl[1]) & mask);
        } else if (m.op() == 2 && m.target() <= 1) {
            long keep = m.target() == 0 && dword == 2 ? 0xffffL | 1L << 54 : m.target() == 1 && dword == 0 ? 0xffff_8110_0000_0000L : 0;
            after = (m.value() & ~keep) | (before & keep);
        } else {
            return null;
        }
        rig.ram.write64(a, after);
        return String.format("%s @0x%x: 0x%016x -> 0x%016x", m, a, before, after);
    }

    /**
     * @return the configuration structures as they are in memory now (STEs, CDs, L1CDs, L1STDs), to
     *     notice when the model's access/dirty flag update lands in one: a mutated table pointer
     *     can make a walk read an STE or CD as a descriptor and mark it accessed
     */
    long[] structures() {
        List<Long> words = new ArrayList<>();
        for (int t = 0; t < 4; t++) {
            for (long a : targets.get(t)) {
                for (int i = 0; i < (t <= 1 ? 8 : 1); i++) {
                    words.add(rig.ram.read64(a + 8L * i));
                }
            }
        }
        return words.stream().mapToLong(Long::longValue).toArray();
    }

    // ---- transactions -----------------------------------------------------------------------

    /** A resolved transaction. */
    record Resolved(int sid, int ssid, long va, int access) {
        @Override
        public String toString() {
            return String.format("sid %d ssid %s va 0x%x %s", sid, ssid == NONE ? "none" : Integer.toString(ssid), va,
                    org.iommulab.api.translation.Access.toString(access));
        }
    }

    Resolved resolve(Txn t) {
        Stream s = streams.get(t.stream() % streams.size());
        int sid = t.stream() >= 95 ? (int) (t.raw() >>> 40) & ((1 << Math.min(features.sidBits + 1, 20)) - 1) : s.sid;
        Probe p = s.probes.isEmpty() ? new Probe(NONE, t.raw() & 0xffff_f000L) : s.probes.get(t.probe() % s.probes.size());
        int ssid;
        switch (t.ssidMode()) {
            case 7:
                ssid = NONE;
                break;
            case 8:
                ssid = (int) (t.raw() >>> 20) & 0x3f;
                break;
            case 9:
                ssid = (int) (t.raw() >>> 20) & 0xfffff;
                break;
            default:
                ssid = p.ssid();
        }
        long va;
        int mode = t.addressMode();
        if (mode < 12) {
            va = p.va();
        } else if (mode < 14) {
            va = p.va() ^ (t.raw() & 0xff00_0000_0000_0000L); // the top byte (TBI)
        } else if (mode < 16) {
            va = p.va() + ((t.raw() % 64) << 12); // a neighbouring page, usually unmapped
        } else if (mode < 17) {
            va = p.va() ^ (1L << (t.raw() & 63)); // one address bit off
        } else if (mode < 18) {
            va = t.raw() & ((1L << 48) - 1);
        } else {
            va = t.raw();
        }
        return new Resolved(sid, ssid, va, t.access());
    }

    @Override
    public String toString() {
        return String.format("config %s, STRTAB_BASE_CFG 0x%x, streams %s", config, strtabCfg, streams);
    }
}
