package org.iommulab.riscv.internal.hw;

import static org.iommulab.riscv.internal.hw.RiscvRig.*;
import static org.junit.jupiter.api.Assertions.fail;

import java.util.ArrayList;
import java.util.List;
import java.util.Random;

import org.iommulab.api.pasid.Pasids;
import org.iommulab.api.translation.Access;
import org.iommulab.api.translation.Translation;

import net.jqwik.api.ForAll;
import net.jqwik.api.Property;
import net.jqwik.api.statistics.Statistics;

/**
 * Differential test of the translation path: random DDTs, DCs, PDTs, PCs, first-stage and
 * G-stage tables, mostly well formed and sometimes damaged (flipped bits in a DC, PC, PTE, missing
 * G-stage mappings of the guest's structures, A/D clear, reserved encodings), and random requests
 * (device, process_id or none, address, read / write / read-write / execute, privileged or not),
 * each checked against {@link RiscvReference}, a decode written from the specifications alone.
 *
 * <p>Invariants, for every request: the model never throws; it succeeds exactly when the
 * reference does, with the same output address and page size; otherwise with the same CAUSE,
 * and its fault queue then holds exactly one new record (none when DC.tc.DTF suppresses the
 * cause) with that CAUSE, the request's DID, PV/PID, PRIV, TTYP, iotval = the IOVA and the
 * reference's iotval2. Contexts get pairwise distant GSCIDs and PSCIDs, so no bit flip makes two
 * address spaces share IOTLB tags (which the spec calls unpredictable).
 *
 * <p>Reproducing: a failure names the seed; rerun it with {@code @Property(seed = "...")} or by
 * calling {@link #check(long)}. Tries: {@code jqwik.tries.default} (junit-platform.properties).
 */
class RiscvReferenceWalkPropertyTest {
    private static final long[] VAS = {0x0, 0x1000, 0x20_0000, 0x3f_f000, 0x7f_ffff_f000L, 0xffff_ffc0_0000_0000L,
        0x8000_0000_0000L, 0x1234_5678_9000L, 0xffff_8000_0000_0000L, 0x0100_0000_0000_0000L};
    private static final int[] ACCESSES = {Access.READ, Access.WRITE, Access.READ | Access.WRITE,
        Access.READ | Access.EXEC};

    @Property
    void translationsMatchTheReference(@ForAll long seed) {
        check(seed);
    }

    /** One scenario and its requests. */
    static void check(long seed) {
        Scenario s = new Scenario(seed);
        RiscvReference ref = new RiscvReference(s.rig.ram);
        Random random = new Random(seed ^ 0x5eed);
        for (int n = 0; n < 24; n++) {
            Device d = s.devices.get(random.nextInt(s.devices.size()));
            int did = random.nextInt(8) == 0 ? random.nextInt(1 << 24) : d.did;
            int pasid = Pasids.NO_PASID;
            if (!d.pids.isEmpty() ? random.nextInt(5) != 0 : random.nextInt(5) == 0) {
                pasid = !d.pids.isEmpty() && random.nextInt(8) != 0 ? d.pids.get(random.nextInt(d.pids.size()))
                        : random.nextInt(1 << 20);
            }
            long va = (d.vas.isEmpty() || random.nextInt(5) == 0 ? VAS[random.nextInt(VAS.length)]
                    : d.vas.get(random.nextInt(d.vas.size()))) + (random.nextInt(4) == 0 ? random.nextInt(1 << 21) : 0x10);
            int access = ACCESSES[random.nextInt(ACCESSES.length)] | (random.nextInt(3) == 0 ? Access.PRIV : 0);
            RiscvReference.Result expected = ref.translate(s.ddtp, did, pasid, va, access);
            Translation t = new Translation();
            boolean ok;
            try {
                ok = s.rig.hw.translate(did, pasid, va, access, t);
            } catch (RuntimeException e) {
                throw new AssertionError(String.format("seed %d: translate threw", seed), e);
            }
            String what = String.format("seed %d request %d: did 0x%x pasid %d va 0x%x access %s: expected %s, got %s",
                    seed, n, did, pasid, va, Access.toString(access), expected, t);
            List<RiscvRig.Fault> records = s.rig.faults();
            Statistics.label("privileged").collect(pasid != Pasids.NO_PASID && (access & Access.PRIV) != 0
                    ? (expected.ok ? "translated" : "fault " + expected.cause) : "no");
            if (ok != expected.ok) {
                fail(what);
            }
            if (ok) {
                Statistics.label("outcome").collect("translated");
                if (t.outputAddress() != expected.pa || t.pageShift() != expected.shift || !records.isEmpty()) {
                    fail(what + " (address, page size or a stray record)");
                }
                continue;
            }
            Statistics.label("outcome").collect(expected.cause >= 256 ? "config " + expected.cause : "walk " + expected.cause);
            if (t.faultCode() != expected.cause) {
                fail(what);
            }
            // The CAUSE table's "Reported if DTF is 1?" column: only 256-259, 268, 272, 273 are.
            boolean suppressed = expected.dtf && (expected.cause < 256 || expected.cause >= 260)
                    && expected.cause != 268 && expected.cause != 272 && expected.cause != 273;
            if (suppressed) {
                if (!records.isEmpty()) {
                    fail(what + ": DTF suppresses the record, got " + records);
                }
                continue;
            }
            boolean pv = pasid != Pasids.NO_PASID;
            int ttyp = (access & Access.EXEC) != 0 ? 1 : (access & Access.WRITE) != 0 ? 3 : 2;
            RiscvRig.Fault want = new RiscvRig.Fault(expected.cause, pv ? pasid : 0, pv, pv && (access & Access.PRIV) != 0,
                    ttyp, did & 0xff_ffff, 0, va, expected.iotval2);
            if (records.size() != 1 || !records.get(0).equals(want)) {
                fail(what + ": record " + records + ", expected " + want);
            }
        }
    }

    /** One device's configuration and what is worth requesting from it. */
    static final class Device {
        final int did;
        final List<Integer> pids = new ArrayList<>();
        final List<Long> vas = new ArrayList<>();

        Device(int did) {
            this.did = did;
        }
    }

    /** A random layout in a fresh unit. */
    static final class Scenario {
        final RiscvRig rig = new RiscvRig();
        final Random random;
        final List<Device> devices = new ArrayList<>();
        final long ddtp;
        private int nextId = 1;
        /** The device being built: its G-stage (root 0 when Bare). */
        private long gRoot;
        private int gLevels;
        private long nextGuestData = 0x8000_0000L;

        Scenario(long seed) {
            random = new Random(seed);
            int mode = new int[] {LVL1, LVL2, LVL2, LVL3}[random.nextInt(4)];
            rig.enable(mode);
            ddtp = rig.r64(DDTP);
            int[] candidates = {0x05, 0x12, 0x7f, 0x85, 0x1234, 0xabcd, 0x12_0034};
            int maxBits = mode == LVL1 ? 7 : mode == LVL2 ? 16 : 24;
            for (int did : candidates) {
                if ((did >>> maxBits) == 0 && random.nextInt(3) != 0) {
                    devices.add(build(did));
                }
            }
            if (devices.isEmpty()) {
                devices.add(build(0x05));
            }
            if (random.nextInt(10) == 0) {
                // Damage a non-leaf DDT entry.
                long e = DDT + 8L * random.nextInt(512);
                rig.ram.write64(e, rig.ram.read64(e) ^ 1L << random.nextInt(64));
            }
        }

        private boolean chance(int percent) {
            return random.nextInt(100) < percent;
        }

        /** Pairwise distant ids: any two differ in at least 3 (GSCID) or 5 (PSCID) bits. */
        private int gscid() {
            return (nextId++ & 0xf) * 0x1111;
        }

        private int pscid() {
            return (nextId++ & 0xf) * 0x11111;
        }

        private Device build(int did) {
            Device d = new Device(did);
            gRoot = 0;
            int kind = new int[] {0, 1, 1, 2, 3, 3, 3, 4, 4, 5, 5, 5, 6, 6}[random.nextInt(14)];
            long tc = V | (chance(20) ? DTF : 0) | (chance(50) ? SADE : 0) | (chance(50) ? GADE : 0)
                    | (chance(20) ? EN_ATS | (chance(50) ? EN_PRI : 0) : 0);
            long iohgatp = 0;
            if (kind >= 4) {
                gLevels = chance(50) ? 3 : 4;
                gRoot = rig.page(4);
                iohgatp = iohgatp(gLevels + 5, gscid(), gRoot);
                if (chance(5)) {
                    iohgatp = iohgatp(SV57, gscid(), gRoot); // not advertised by the defaults
                }
            }
            long ta = 0;
            long fsc = 0;
            switch (kind) {
                case 0 -> tc &= ~V; // not valid
                case 1, 4 -> { // iosatp (nested with 4)
                    int mode = SV39 + random.nextInt(3);
                    fsc = atp(mode, firstStage(d, mode));
                    ta = dcTa(pscid());
                }
                case 2 -> { } // both Bare: pass-through
                case 3, 5 -> { // PDT (nested with 5)
                    int pdMode = PD8 + random.nextInt(3);
                    long root = guestPage();
                    tc |= PDTV | (chance(50) ? DPE : 0);
                    fsc = atp(pdMode, root);
                    int width = pdMode == PD8 ? 8 : pdMode == PD17 ? 17 : 20;
                    for (int j = 0; j < 3; j++) {
                        int pid = j == 0 && chance(50) ? 0 : random.nextInt(1 << width);
                        int mode = SV39 + random.nextInt(3);
                        long pcTa = pcTa(pscid(), chance(75), chance(50));
                        long pcFsc = chance(10) ? 0 : atp(mode, firstStage(d, mode));
                        if (chance(10)) {
                            pcTa ^= 1L << random.nextInt(64);
                        }
                        if (chance(5)) {
                            pcFsc ^= 1L << (44 + random.nextInt(20));
                        }
                        long a = rig.pcAddress(root, pdMode, pid, x -> x);
                        ensureGuestMapped(a);
                        rig.ram.write64(a + 8, pcFsc);
                        rig.ram.write64(a, pcTa);
                        d.pids.add(pid);
                    }
                }
                default -> { } // G-stage only (6)
            }
            if (kind == 6 || kind == 4 || kind == 5) {
                // Some GPAs for the G-stage-only case, mapped with random flags.
                for (int j = 0; j < 3; j++) {
                    long gpa = nextGuestData;
                    nextGuestData += 0x1000;
                    gMap(gpa, DATA + random.nextInt(1 << 16) * 0x1000L, dataFlags());
                    if (kind == 6) {
                        d.vas.add(gpa);
                    }
                }
            }
            if (chance(15)) {
                int which = random.nextInt(4);
                long bit = 1L << random.nextInt(64);
                if (which == 0) {
                    tc ^= bit;
                } else if (which == 1) {
                    iohgatp ^= bit;
                } else if (which == 2) {
                    ta ^= bit;
                } else {
                    fsc ^= bit;
                }
            }
            rig.dc(did, tc, iohgatp, ta, fsc);
            return d;
        }

        /** Leaf flags for data: mostly valid and accessible, sometimes not. */
        private long dataFlags() {
            long f = PTE_V | PTE_R | PTE_W | PTE_U | PTE_A | PTE_D | (chance(50) ? PTE_X : 0);
            if (chance(25)) {
                f ^= new long[] {PTE_V, PTE_R, PTE_W, PTE_U, PTE_A, PTE_D, PTE_X, 1L << 60}[random.nextInt(8)];
            }
            return f;
        }

        /** A zeroed page for the guest's structures: the G-stage (if any) maps it one to one. */
        private long guestPage() {
            long p = rig.page();
            if (gRoot != 0 && !chance(3)) {
                long flags = PTE_V | PTE_R | PTE_W | PTE_U | PTE_A | PTE_D;
                if (chance(10)) {
                    flags ^= new long[] {PTE_W, PTE_U, PTE_A, PTE_D, PTE_R}[random.nextInt(5)];
                }
                gMap(p, p, flags);
            }
            return p;
        }

        private void ensureGuestMapped(long a) {
            if (gRoot != 0 && !chance(3)) {
                gMap(a & ~0xfffL, a & ~0xfffL, PTE_V | PTE_R | PTE_W | PTE_U | PTE_A | PTE_D);
            }
        }

        private void gMap(long gpa, long spa, long flags) {
            rig.handPte(gRoot, gLevels, true, gpa, leaf(spa, flags));
        }

        /** A first-stage table with a few mappings (4 KiB or 2 MiB leaves). @return its root (a GPA when nested) */
        private long firstStage(Device d, int mode) {
            int levels = mode - 5;
            long root = guestPage();
            for (int j = 0; j < 3; j++) {
                long va = VAS[random.nextInt(VAS.length)] + random.nextInt(16) * 0x1000L;
                long high = va >> (12 + 9 * levels - 1);
                d.vas.add(va);
                if (high != 0 && high != -1) {
                    continue; // non-canonical for this mode: requested, never mapped
                }
                int leafLevel = chance(20) ? 1 : 0;
                long target = gRoot != 0 ? nextGuestData : DATA + random.nextInt(1 << 16) * 0x1000L;
                if (leafLevel == 1) {
                    target &= ~0x1f_ffffL;
                    if (chance(10)) {
                        target |= 0x1000; // misaligned superpage
                    }
                }
                if (gRoot != 0) {
                    nextGuestData += 0x20_0000;
                    gMap(target + (va & (leafLevel == 1 ? 0x1f_f000L : 0)), DATA + random.nextInt(1 << 16) * 0x1000L,
                            dataFlags());
                }
                long flags = dataFlags();
                if (chance(30)) {
                    flags &= ~PTE_U; // a supervisor page
                }
                if (chance(10)) {
                    flags &= ~(PTE_A | PTE_D);
                }
                mapPath(root, levels, va, leafLevel, leaf(target, flags));
            }
            return root;
        }

        /** Writes a first-stage path from root to a leaf at {@code leafLevel}, pointer pages from {@link #guestPage}. */
        private void mapPath(long root, int levels, long va, int leafLevel, long leafPte) {
            long table = root;
            for (int i = levels - 1; i >= leafLevel; i--) {
                long e = table + ((va >>> (12 + 9 * i)) & 0x1ff) * 8;
                if (i == leafLevel) {
                    rig.ram.write64(e, leafPte);
                    return;
                }
                long entry = rig.ram.read64(e);
                if ((entry & 1) == 0 || (entry & (PTE_R | PTE_X)) != 0) {
                    long next = guestPage();
                    entry = (next >>> 12) << 10 | PTE_V;
                    if (chance(3)) {
                        entry |= new long[] {PTE_A, PTE_U, PTE_D, 1L << 55}[random.nextInt(4)];
                    }
                    rig.ram.write64(e, entry);
                }
                table = ((entry >>> 10) & ((1L << 44) - 1)) << 12;
            }
        }
    }
}
