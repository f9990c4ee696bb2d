package org.iommulab.vtd.internal.hw;

import static org.iommulab.vtd.internal.hw.VtdRig.CTX_PASIDE;
import static org.iommulab.vtd.internal.hw.VtdRig.DATA;
import static org.iommulab.vtd.internal.hw.VtdRig.FSTS;
import static org.iommulab.vtd.internal.hw.VtdRig.GCMD;
import static org.iommulab.vtd.internal.hw.VtdRig.IQE;
import static org.iommulab.vtd.internal.hw.VtdRig.IQ_BASE;
import static org.iommulab.vtd.internal.hw.VtdRig.PFO;
import static org.iommulab.vtd.internal.hw.VtdRig.PGTT_FS;
import static org.iommulab.vtd.internal.hw.VtdRig.PGTT_NESTED;
import static org.iommulab.vtd.internal.hw.VtdRig.PGTT_PT;
import static org.iommulab.vtd.internal.hw.VtdRig.QIE;
import static org.iommulab.vtd.internal.hw.VtdRig.ROOT;
import static org.iommulab.vtd.internal.hw.VtdRig.RTADDR;
import static org.iommulab.vtd.internal.hw.VtdRig.SRTP;
import static org.iommulab.vtd.internal.hw.VtdRig.TE;
import static org.iommulab.vtd.internal.hw.VtdRig.TTM_SCALABLE;
import static org.iommulab.vtd.internal.hw.VtdRig.pe0;
import static org.iommulab.vtd.internal.hw.VtdRig.pe2;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTimeoutPreemptively;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;

import org.iommulab.api.translation.Translation;
import org.junit.jupiter.api.Test;

/**
 * Bad input never throws: random register writes and random garbage in the root, context and
 * PASID structures and page tables, with translations of random requests in between. Register
 * writes at valid offsets never fail; every translation returns promptly; every fault carries a
 * code of {@link VtdFault} with its name.
 */
class VtdFuzzTest {
    static final int[] SIDS = {0x0010, 0x0018, 0x0085, 0x0100, 0x0185, 0xffff};
    /** The 64-bit registers the unit defines (VT-d §11.4), IVA/IOTLB at 0xf0 (ECAP.IRO), fault records at 0x220. */
    static final int[] REGISTERS = {0x00, 0x08, 0x10, 0x18, 0x20, 0x28, 0x30, 0x38, 0x40, 0x80, 0x88, 0x90, 0x98,
        0xa0, 0xa8, 0xb0, 0xc0, 0xc8, 0xd0, 0xd8, 0xe0, 0xe8, 0xf0, 0xf8, 0x220, 0x228, 0x230, 0x238, 0x240, 0x248,
        0x250, 0x258};

    @Test
    void randomRegisterWritesAndGarbageStructuresNeverThrow() {
        assertTimeoutPreemptively(Duration.ofSeconds(20), () -> fuzz(0x5eed_1234L, 10_000));
    }

    static void fuzz(long seed, int rounds) {
        Random rnd = new Random(seed);
        VtdRig r = new VtdRig();
        List<Long> structures = new ArrayList<>();
        // A working configuration first: second stage, first stage, nested and pass-through devices.
        PageTables ss = r.secondStage(2);
        for (int i = 0; i < 16; i++) {
            ss.map(0x1000L * i * 37, DATA + 0x1000L * i);
        }
        r.secondStageDevice(SIDS[0], 1, ss);
        PageTables fs = r.firstStage(4);
        for (int i = 0; i < 16; i++) {
            fs.map(0x40_0000L + 0x1000L * i, DATA + 0x1000L * i);
        }
        r.smContext(SIDS[1], 3, 0, CTX_PASIDE);
        r.pasidEntry(SIDS[1], 3, pe0(PGTT_FS, 0, 0), 2, pe2(fs.root, 0));
        r.pasidEntry(SIDS[1], 4, pe0(PGTT_NESTED, 2, ss.root), 3, pe2(0x1000, 0));
        r.smContext(SIDS[2], 0, 1, CTX_PASIDE);
        r.pasidEntry(SIDS[2], 0, pe0(PGTT_PT, 0, 0), 4, 0);
        r.secondStageDevice(SIDS[3], 5, ss);
        r.secondStageDevice(SIDS[4], 6, ss);
        r.enable();
        structures.add(ROOT);
        structures.add(r.contextTable(0, false));
        structures.add(r.contextTable(0, true));
        structures.add(r.contextTable(1, false));
        structures.add(r.contextTable(1, true));
        for (int sid : new int[] {SIDS[0], SIDS[1], SIDS[2]}) {
            long dir = r.directory(sid);
            structures.add(dir);
            structures.add(r.mem.read64(dir) & PageTables.ADDR);
        }
        structures.add(ss.root);
        structures.add(ss.table(0, 1));
        structures.add(fs.root);
        structures.add(fs.table(0x40_0000L, 1));

        Map<String, String> problems = new LinkedHashMap<>();
        Translation out = new Translation();
        long maxNanos = 0;
        int faults = 0;
        int successes = 0;
        for (int i = 0; i < rounds; i++) {
            int size = rnd.nextBoolean() ? 4 : 8;
            int offset;
            if (rnd.nextBoolean()) {
                offset = rnd.nextInt(0x1000 / size) * size; // anywhere in the page
            } else {
                int reg = REGISTERS[rnd.nextInt(REGISTERS.length)]; // a defined register (or its upper half)
                offset = size == 8 ? reg : reg + 4 * rnd.nextInt(2);
            }
            long value = value(rnd, structures);
            try {
                r.hw.write(offset, value, size);
                r.hw.read(rnd.nextInt(0x1000 / size) * size, size);
            } catch (Throwable t) {
                problems.putIfAbsent(t.getClass().getSimpleName() + " " + t.getMessage(),
                        String.format("write(0x%x, 0x%x, %d) in round %d", offset, value, size, i));
            }
            if (i % 3 == 0) {
                long table = structures.get(rnd.nextInt(structures.size()));
                r.mem.write64(table + 8L * rnd.nextInt(512), value(rnd, structures));
            }
            if (i % 250 == 0) {
                // Back to a sane state now and then, so that requests reach the garbage structures.
                try {
                    r.hw.write(FSTS, IQE | PFO, 4);
                    r.hw.write(RTADDR, ROOT | TTM_SCALABLE, 8);
                    r.hw.write(GCMD, SRTP, 4);
                    r.hw.write(GCMD, TE | QIE, 4);
                } catch (Throwable t) {
                    problems.putIfAbsent(t.toString(), "re-enable in round " + i);
                }
            }
            for (int j = 0; j < 2; j++) {
                int sid = rnd.nextInt(4) == 0 ? rnd.nextInt(0x10000) : SIDS[rnd.nextInt(SIDS.length)];
                int pasid = pasid(rnd);
                long address = address(rnd);
                int access = rnd.nextInt(16);
                long t0 = System.nanoTime();
                boolean ok;
                try {
                    ok = r.hw.translate(sid, pasid, address, access, out);
                } catch (Throwable t) {
                    problems.putIfAbsent(t.toString(), String.format("translate(0x%x, %d, 0x%x, %d) in round %d",
                            sid, pasid, address, access, i));
                    continue;
                }
                maxNanos = Math.max(maxNanos, System.nanoTime() - t0);
                if (ok != out.isSuccess()) {
                    problems.putIfAbsent("return value disagrees with Translation", "round " + i);
                }
                if (ok) {
                    successes++;
                } else {
                    faults++;
                    String name = VtdRig.name(out.faultCode());
                    if (name == null || !name.equals(out.faultName()) || out.faultKind() == null) {
                        problems.putIfAbsent("fault outside VtdFault: " + out, String.format(
                                "translate(0x%x, %d, 0x%x, %d) in round %d", sid, pasid, address, access, i));
                    }
                }
            }
        }
        assertTrue(problems.isEmpty(), () -> "problems (first occurrence of each):\n" + format(problems));
        assertTrue(maxNanos < 50_000_000L, "slowest translation took " + maxNanos / 1000 + " us");
        assertTrue(faults > 100 && successes > 100, "both outcomes exercised: " + faults + " faults, " + successes + " successes");
        // A driver that re-initialises the unit from scratch gets working translation back.
        r.w32(GCMD, 0);
        r.w32(FSTS, 0x7f);
        r.zero(ROOT, 4096);
        PageTables fresh = r.secondStage(2);
        fresh.map(0x1000, DATA + 0x77000);
        r.secondStageDevice(SIDS[0], 9, fresh);
        r.enable();
        r.submit(VtdRig.contextCacheDesc(1, 0, 0, 0), VtdRig.pasidCacheDesc(3, 0, 0), VtdRig.iotlbDesc(1, 0, 0, 0, false));
        r.sync();
        assertEquals(0, r.fsts() & IQE);
        assertEquals(DATA + 0x77abc, r.read(SIDS[0], 0x1abc));
    }

    static String format(Map<String, String> problems) {
        StringBuilder b = new StringBuilder();
        problems.forEach((k, v) -> b.append("  ").append(k).append("  <-  ").append(v).append('\n'));
        return b.toString();
    }

    static int pasid(Random rnd) {
        switch (rnd.nextInt(6)) {
            case 0:
            case 1:
                return -1;
            case 2:
                return rnd.nextInt(8);
            case 3:
                return rnd.nextInt(1 << 20);
            case 4:
                return rnd.nextInt(1 << 14);
            default:
                return rnd.nextInt();
        }
    }

    static long address(Random rnd) {
        switch (rnd.nextInt(5)) {
            case 0:
                return 0x1000L * 37 * rnd.nextInt(16) + rnd.nextInt(4096);
            case 1:
                return 0x40_0000L + rnd.nextInt(0x10000);
            case 2:
                return rnd.nextLong();
            case 3:
                return rnd.nextLong() >>> rnd.nextInt(64);
            default:
                return rnd.nextLong() & 0xffff_ffffL;
        }
    }

    /** Register and table values: fully random, or built from fields that mean something. */
    static long value(Random rnd, List<Long> structures) {
        long table = structures.get(rnd.nextInt(structures.size()));
        switch (rnd.nextInt(10)) {
            case 0:
                return rnd.nextLong();
            case 1:
                return rnd.nextInt(1 << 12);
            case 2:
                return (long) rnd.nextInt(16) << 28 | (rnd.nextBoolean() ? 0 : (long) (TE | SRTP | QIE) & 0xffff_ffffL);
            case 3:
                return table | rnd.nextInt(0x1000);
            case 4:
                return (table | rnd.nextInt(0x1000)) | (long) rnd.nextInt(1 << 20) << 32;
            case 5:
                return 1L << 63 | (long) rnd.nextInt(4) << 60 | (long) rnd.nextInt(8) << 32 | rnd.nextInt(64);
            case 6:
                return rnd.nextLong() & 0x000f_ffff_ffff_f000L | rnd.nextInt(0x1000);
            case 7:
                return (rnd.nextBoolean() ? IQ_BASE : table) | rnd.nextInt(8) | (rnd.nextBoolean() ? 1L << 11 : 0);
            case 8:
                return rnd.nextInt(0x8000) & ~0xfL;
            default:
                return 1L << rnd.nextInt(64);
        }
    }
}
