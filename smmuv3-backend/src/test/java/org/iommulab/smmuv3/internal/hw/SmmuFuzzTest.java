package org.iommulab.smmuv3.internal.hw;

import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Random;

import org.iommulab.api.errno.IommuException;
import org.iommulab.api.translation.Translation;
import org.iommulab.pgtable.IoPageTable;
import org.iommulab.pgtable.format.ArmGranule;
import org.iommulab.smmuv3.internal.hw.SmmuRig.Cd;
import org.iommulab.smmuv3.internal.hw.SmmuRig.Ste;
import org.junit.jupiter.api.Test;

/**
 * Seeded fuzzing: garbage STEs, CDs, L1 descriptors, page tables, commands and register writes,
 * then random translations. Nothing may throw, and every failure carries one of the model's event
 * codes.
 */
class SmmuFuzzTest {

    @Test
    void garbageNeverEscapes() {
        for (long seed = 1; seed <= 12; seed++) {
            Random rnd = new Random(seed);
            SmmuRig r = new SmmuRig();
            // Some well-formed streams to mutate.
            IoPageTable s1 = r.s1Table(ArmGranule.G4K, 16);
            SmmuRig.map(s1, 0x1000, SmmuRig.DATA, 0x10000);
            IoPageTable s2 = r.s2Table(ArmGranule.G4K, 24, 1);
            SmmuRig.map(s2, 0x1000, SmmuRig.DATA, 0x10000);
            long cd = r.cdArea(64 * 16);
            for (int i = 0; i < 16; i++) {
                r.cd(cd + 64 * i, new Cd(16, 0, i, s1.root()));
            }
            for (int sid = 0; sid < 64; sid++) {
                int kind = rnd.nextInt(5);
                Ste ste = kind == 0 ? new Ste(SmmuRig.CFG_S1).s1(cd, 0, 4)
                        : kind == 1 ? new Ste(SmmuRig.CFG_S2).s2(sid, 24, 1, 0, 5, s2.root())
                        : kind == 2 ? new Ste(SmmuRig.CFG_NESTED).s1(cd, rnd.nextInt(3), 4).s2(sid, 24, 1, 0, 5, s2.root())
                        : new Ste(rnd.nextInt(8));
                for (int flips = rnd.nextInt(4); flips > 0; flips--) {
                    ste.w[rnd.nextInt(8)] ^= 1 << rnd.nextInt(32);
                }
                if (rnd.nextInt(8) == 0) {
                    for (int i = 0; i < 16; i++) {
                        ste.w[i] = rnd.nextInt();
                    }
                }
                r.ste(sid, ste);
            }
            for (int i = 0; i < 64; i++) {
                long a = cd + rnd.nextInt(16 * 64 / 4) * 4L;
                r.ram.write32(a, r.ram.read32(a) ^ (1 << rnd.nextInt(32)));
            }
            for (int i = 0; i < 32; i++) {
                long a = SmmuRig.POOL + rnd.nextInt(64 * 1024 / 8) * 8L;
                if (r.ram.isBacked(a)) {
                    r.ram.write64(a, r.ram.read64(a) ^ (1L << rnd.nextInt(64)));
                }
            }
            r.enable(rnd.nextInt(8));
            for (int i = 0; i < 400; i++) {
                if (rnd.nextInt(20) == 0) {
                    r.ram.write64(SmmuRig.CMDQ + 16L * rnd.nextInt(256), rnd.nextLong());
                    r.ram.write64(SmmuRig.CMDQ + 16L * rnd.nextInt(256) + 8, rnd.nextLong());
                    try {
                        r.hw.write(SmmuRig.CMDQ_PROD, rnd.nextInt(512), 4);
                        if (rnd.nextBoolean()) {
                            r.hw.write(SmmuRig.GERRORN, r.hw.read(SmmuRig.GERROR, 4), 4);
                        }
                    } catch (IommuException e) {
                        throw new AssertionError(e);
                    }
                }
                if (rnd.nextInt(50) == 0) {
                    int off = rnd.nextInt(0x20000 / 4) * 4;
                    if (off != SmmuRig.CR0 || rnd.nextBoolean()) {
                        try {
                            r.hw.write(off, rnd.nextInt(), 4);
                        } catch (IommuException e) {
                            throw new AssertionError(e);
                        }
                    }
                }
                int sid = rnd.nextInt(80);
                int ssid = rnd.nextInt(4) == 0 ? -1 : rnd.nextInt(rnd.nextBoolean() ? 20 : 1 << 20);
                long address = rnd.nextInt(3) == 0 ? rnd.nextLong() : 0x1000 + rnd.nextInt(0x10000);
                Translation t = r.translate(sid, ssid, address, rnd.nextInt(16));
                if (!t.isSuccess()) {
                    SmmuEvent e = SmmuEvent.ofCode(t.faultCode());
                    assertNotNull(e, t::toString);
                    assertTrue(e.spec.equals(t.faultName()), t::toString);
                }
                if (rnd.nextInt(10) == 0) {
                    r.hw.explain(sid, ssid, address, rnd.nextInt(16));
                }
                if (rnd.nextInt(30) == 0) {
                    r.events();
                }
            }
        }
    }
}
