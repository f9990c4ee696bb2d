package org.iommulab.smmuv3.internal.hw;

import static org.iommulab.smmuv3.internal.hw.SmmuRig.CFG_BYPASS;
import static org.iommulab.smmuv3.internal.hw.SmmuRig.CFG_NESTED;
import static org.iommulab.smmuv3.internal.hw.SmmuRig.CFG_S1;
import static org.iommulab.smmuv3.internal.hw.SmmuRig.CFG_S2;
import static org.iommulab.smmuv3.internal.hw.SmmuRig.DATA;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;

import org.iommulab.api.dto.WalkStepDTO;
import org.iommulab.api.translation.Access;
import org.iommulab.api.translation.Translation;
import org.iommulab.pgtable.IoPageTable;
import org.iommulab.pgtable.format.ArmGranule;
import org.iommulab.pgtable.format.ArmStage1;
import org.iommulab.smmuv3.internal.hw.SmmuRig.Cd;
import org.iommulab.smmuv3.internal.hw.SmmuRig.Ste;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/** Successful translations: the worked example, every granule, both table formats, S1DSS. */
class SmmuTranslationTest {
    private static final int RW = Access.READ | Access.WRITE;
    /** Table/page descriptor bits 1:0. */
    private static final long TABLE = 3;
    /** Stage-1 page: AF, inner shareable, AP[1] (EL0 access), read/write. */
    private static final long S1_PAGE = 0x743;
    /** Stage-2 page: AF, inner shareable, S2AP read/write, normal WB memory. */
    private static final long S2_PAGE = 0x7ff;

    private static long next;

    /** Maps one 4 KiB page in a 4-level 4 KiB table written by hand (levels 0-3, index 9 bits each). */
    private static void map4k(SmmuRig r, long root, long va, long pa, long leafBits) {
        long table = root;
        for (int level = 0; level < 3; level++) {
            long slot = table + 8 * ((va >>> (39 - 9 * level)) & 0x1ff);
            long e = r.ram.read64(slot);
            if ((e & 1) == 0) {
                e = next | TABLE;
                r.ram.fill(next, 4096, (byte) 0);
                next += 4096;
                r.ram.write64(slot, e);
            }
            table = e & 0x0000_ffff_ffff_f000L;
        }
        r.ram.write64(table + 8 * ((va >>> 12) & 0x1ff), pa | leafBits);
    }

    /**
     * The example of QEMU's qtest smmuv3 setup: 4 KiB granule, 4 levels, IOVA 0x8080604567 (indices
     * 1, 2, 3, 4 at levels 0-3), CD T0SZ 0x10, STE S2T0SZ 0x14, S2SL0 2, S2PS 5, linear stream
     * table of 2^5 entries.
     */
    @Test
    void workedExampleStage1Stage2AndNested() {
        SmmuRig r = new SmmuRig();
        long iova = 0x80_8060_4567L;
        next = 0x80_0000;
        long s1Root = 0x50_0000;
        long s2Root = 0x60_0000;
        r.ram.fill(s1Root, 4096, (byte) 0);
        r.ram.fill(s2Root, 4096, (byte) 0);
        // Stage 1: IOVA -> 0x1_2345_6000 (a PA for S1-only, an IPA when nested).
        map4k(r, s1Root, iova, 0x1_2345_6000L, S1_PAGE);
        // Stage 2: IPA 0x80_8060_4000 -> 0x2_0000_0000 (S2-only), IPA 0x1_2345_6000 -> 0x3_0000_0000 (nested),
        // the stage-1 tables and the CD identity-mapped, except the CD, which lives at IPA 0x70_0000 = PA 0x71_0000.
        map4k(r, s2Root, iova, 0x2_0000_0000L, S2_PAGE);
        map4k(r, s2Root, 0x1_2345_6000L, 0x3_0000_0000L, S2_PAGE);
        for (long t = s1Root; t < s1Root + 0x4000; t += 0x1000) {
            map4k(r, s2Root, t, t, S2_PAGE);
        }
        for (long t = 0x80_0000; t < 0x80_8000; t += 0x1000) {
            map4k(r, s2Root, t, t, S2_PAGE); // stage-1 tables allocated after the root
        }
        map4k(r, s2Root, 0x70_0000, 0x71_0000, S2_PAGE);
        Cd cd = new Cd(0x10, 0, 1, s1Root);
        r.cd(0x70_0000, cd); // S1-only: the CD at PA 0x70_0000
        r.cd(0x71_0000, cd); // nested: the CD at IPA 0x70_0000
        r.ste(1, new Ste(CFG_S1).s1(0x70_0000, 0, 0));
        r.ste(2, new Ste(CFG_S2).s2(1, 0x14, 2, 0, 5, s2Root));
        r.ste(3, new Ste(CFG_NESTED).s1(0x70_0000, 0, 0).s2(1, 0x14, 2, 0, 5, s2Root));
        r.ste(4, new Ste(CFG_BYPASS));
        r.enable(5);
        assertEquals(0x1_2345_6567L, r.pa(1, -1, iova, RW));
        assertEquals(0x2_0000_0567L, r.pa(2, -1, iova, RW));
        assertEquals(0x3_0000_0567L, r.pa(3, -1, iova, RW));
        assertEquals(iova, r.pa(4, -1, iova, RW));
        // Again, from the caches.
        assertEquals(0x3_0000_0567L, r.pa(3, -1, iova, Access.READ));
        assertEquals(0x1_2345_6567L, r.pa(1, -1, iova, Access.READ));
        assertTrue(r.hw.statistics().get("tlb-hits") >= 2);
        assertTrue(r.events().isEmpty());
        // explain walks the same structures without caches.
        List<WalkStepDTO> steps = r.hw.explain(3, -1, iova, Access.READ);
        assertEquals("0x300000567", steps.get(steps.size() - 1).meaning);
        assertTrue(steps.stream().anyMatch(s -> "CONFIG".equals(s.stage) && s.level.startsWith("STE")));
        assertTrue(steps.stream().anyMatch(s -> "CONFIG".equals(s.stage) && s.level.startsWith("CD")));
    }

    @Test
    void disabledUnitBypasses() {
        SmmuRig r = new SmmuRig();
        assertEquals(0x1234_5678L, r.pa(7, -1, 0x1234_5678L, RW));
    }

    private static int tg0(ArmGranule g) {
        return g == ArmGranule.G4K ? 0 : g == ArmGranule.G64K ? 1 : 2;
    }

    @ParameterizedTest
    @EnumSource(ArmGranule.class)
    void stage1EveryGranule(ArmGranule g) {
        SmmuRig r = new SmmuRig();
        IoPageTable t = r.s1Table(g, 16);
        long iova = 0x12_3456_0000L;
        SmmuRig.map(t, iova, DATA + 0x10_0000, 0x1_0000);
        long cd = r.cdArea(64);
        r.cd(cd, new Cd(16, tg0(g), 3, t.root()));
        r.ste(5, new Ste(CFG_S1).s1(cd, 0, 0));
        r.enable();
        Translation tr = r.translate(5, -1, iova + 0x1234, Access.WRITE);
        assertTrue(tr.isSuccess(), tr::toString);
        assertEquals(DATA + 0x10_1234, tr.outputAddress());
        assertEquals(g.shift(), tr.pageShift());
        assertEquals(DATA + 0x10_fff8, r.pa(5, -1, iova + 0xfff8, Access.READ));
    }

    @ParameterizedTest
    @EnumSource(ArmGranule.class)
    void stage2EveryGranule(ArmGranule g) {
        SmmuRig r = new SmmuRig();
        int sl0 = g == ArmGranule.G4K ? 1 : g == ArmGranule.G16K ? 2 : 1;
        IoPageTable t = r.s2Table(g, 24, sl0);
        long ipa = 0x80_1230_0000L;
        SmmuRig.map(t, ipa, DATA + 0x20_0000, 0x1_0000);
        int tg = g == ArmGranule.G4K ? 0 : g == ArmGranule.G64K ? 1 : 2;
        r.ste(9, new Ste(CFG_S2).s2(7, 24, sl0, tg, 5, t.root()));
        r.enable();
        Translation tr = r.translate(9, -1, ipa + 0x4321, Access.READ);
        assertTrue(tr.isSuccess(), tr::toString);
        assertEquals(DATA + 0x20_4321, tr.outputAddress());
        assertEquals(g.shift(), tr.pageShift());
    }

    @ParameterizedTest
    @EnumSource(ArmGranule.class)
    void nestedEveryGranule(ArmGranule g) {
        SmmuRig r = new SmmuRig();
        int sl0 = g == ArmGranule.G4K ? 1 : g == ArmGranule.G16K ? 2 : 1;
        int tg = g == ArmGranule.G4K ? 0 : g == ArmGranule.G64K ? 1 : 2;
        IoPageTable s2 = r.s2Table(g, 24, sl0);
        // Identity for the CD area and the stage-1 table pool; the data IPA somewhere else.
        SmmuRig.map(s2, SmmuRig.CDS, SmmuRig.CDS, 0x20_0000);
        SmmuRig.map(s2, SmmuRig.POOL, SmmuRig.POOL, 0x400_0000);
        SmmuRig.map(s2, 0x40_0000_0000L, DATA + 0x30_0000, 0x1_0000);
        IoPageTable s1 = r.s1Table(g, 20);
        SmmuRig.map(s1, 0x5_0000_0000L, 0x40_0000_0000L, 0x1_0000);
        long cd = r.cdArea(64);
        r.cd(cd, new Cd(20, tg0(g), 9, s1.root()));
        r.ste(11, new Ste(CFG_NESTED).s1(cd, 0, 0).s2(2, 24, sl0, tg, 5, s2.root()));
        r.enable();
        assertEquals(DATA + 0x30_0abc, r.pa(11, -1, 0x5_0000_0abcL, RW));
    }

    @Test
    void twoLevelStreamTable() {
        SmmuRig r = new SmmuRig();
        long l2 = 0x90_0000;
        r.ram.fill(l2, 0x4000, (byte) 0);
        r.l1std(0x12, l2, 9); // 256 STEs
        r.l1std(0x14, 0x98_0000, 3); // 4 STEs
        r.writeWords(l2 + 0x34 * 64, new Ste(CFG_BYPASS).w);
        r.ram.fill(0x98_0000, 4 * 64, (byte) 0);
        r.writeWords(0x98_0000 + 3 * 64, new Ste(CFG_BYPASS).w);
        r.enableTwoLevel(16, 8);
        assertEquals(0x4000, r.pa(0x1234, -1, 0x4000, RW));
        assertEquals(0x4000, r.pa(0x1403, -1, 0x4000, RW));
        assertEquals(SmmuEvent.C_BAD_STREAMID.code, r.translate(0x1300, -1, 0, RW).faultCode()); // SPAN 0
        assertEquals(SmmuEvent.C_BAD_STREAMID.code, r.translate(0x1405, -1, 0, RW).faultCode()); // beyond SPAN
        assertEquals(SmmuEvent.C_BAD_STREAMID.code, r.translate(0x1_0000, -1, 0, RW).faultCode()); // beyond LOG2SIZE
        assertEquals(3, r.events().size());
    }

    @Test
    void twoLevelContextDescriptorTables() {
        SmmuRig r = new SmmuRig();
        IoPageTable a = r.s1Table(ArmGranule.G4K, 16);
        IoPageTable b = r.s1Table(ArmGranule.G4K, 16);
        SmmuRig.map(a, 0x1000, DATA + 0xa000, 0x1000);
        SmmuRig.map(b, 0x1000, DATA + 0xb000, 0x1000);
        // S1Fmt 1: 64 CDs per 4 KiB leaf table.
        long l1 = r.cdArea(4096);
        long leaf = r.cdArea(4096);
        r.ram.write64(l1 + 8, leaf | 1);
        r.cd(leaf + 5 * 64, new Cd(16, 0, 1, a.root()));
        r.ste(1, new Ste(CFG_S1).s1(l1, 1, 12));
        // S1Fmt 2: 1024 CDs per 64 KiB leaf table.
        long l1b = r.cdArea(4096);
        long leafb = r.cdArea(0x1_0000);
        r.ram.write64(l1b + 16, leafb | 1);
        r.cd(leafb + 0x45 * 64, new Cd(16, 0, 2, b.root()));
        r.ste(2, new Ste(CFG_S1).s1(l1b, 2, 12));
        r.enable();
        assertEquals(DATA + 0xa010, r.pa(1, 0x45, 0x1010, RW));
        assertEquals(DATA + 0xb010, r.pa(2, 0x845, 0x1010, RW));
        // An invalid L1CD.
        assertEquals(SmmuEvent.C_BAD_SUBSTREAMID.code, r.translate(1, 0x85, 0x1010, RW).faultCode());
        assertEquals(1, r.events().size());
    }

    @Test
    void substreamsAndS1dss() {
        SmmuRig r = new SmmuRig();
        IoPageTable t0 = r.s1Table(ArmGranule.G4K, 16);
        IoPageTable t1 = r.s1Table(ArmGranule.G4K, 16);
        SmmuRig.map(t0, 0x1000, DATA, 0x1000);
        SmmuRig.map(t1, 0x1000, DATA + 0x1000, 0x1000);
        long cds = r.cdArea(4 * 64);
        r.cd(cds, new Cd(16, 0, 1, t0.root()));
        r.cd(cds + 64, new Cd(16, 0, 2, t1.root()));
        for (int dss = 0; dss < 4; dss++) {
            r.ste(dss, new Ste(CFG_S1).s1(cds, 0, 2).s1dss(dss));
        }
        r.ste(4, new Ste(CFG_S1).s1(cds + 64, 3, 0)); // S1Fmt 3 with S1CDMax 0: ignored, one CD
        r.ste(5, new Ste(CFG_BYPASS));
        r.enable();
        // S1DSS 0: no-SSID transactions terminate with F_STREAM_DISABLED.
        assertEquals(SmmuEvent.F_STREAM_DISABLED.code, r.translate(0, -1, 0x1000, RW).faultCode());
        assertEquals(SmmuEvent.F_STREAM_DISABLED.code, r.event().type);
        assertEquals(DATA + 0x1000, r.pa(0, 1, 0x1000, RW));
        assertEquals(DATA, r.pa(0, 0, 0x1000, RW));
        // S1DSS 1: stage 1 bypassed.
        assertEquals(0x1000, r.pa(1, -1, 0x1000, RW));
        // S1DSS 2: substream 0 serves no-SSID transactions; SSID 0 is F_STREAM_DISABLED (§7.3.7).
        assertEquals(DATA, r.pa(2, -1, 0x1000, RW));
        assertEquals(SmmuEvent.F_STREAM_DISABLED.code, r.translate(2, 0, 0x1000, RW).faultCode());
        assertEquals(DATA + 0x1000, r.pa(2, 1, 0x1000, RW));
        // S1DSS 0b11 is reserved and behaves as 0b00.
        assertEquals(SmmuEvent.F_STREAM_DISABLED.code, r.translate(3, -1, 0x1000, RW).faultCode());
        assertEquals(DATA + 0x1000, r.pa(3, 1, 0x1000, RW));
        // SSID beyond S1CDMax.
        assertEquals(SmmuEvent.C_BAD_SUBSTREAMID.code, r.translate(1, 4, 0x1000, RW).faultCode());
        // A single CD: S1Fmt is ignored.
        assertEquals(DATA + 0x1000, r.pa(4, -1, 0x1000, RW));
        // A SubstreamID on a bypass STE: stage 1 is disabled, so C_BAD_SUBSTREAMID.
        assertEquals(0x1000, r.pa(5, -1, 0x1000, RW));
        assertEquals(SmmuEvent.C_BAD_SUBSTREAMID.code, r.translate(5, 1, 0x1000, RW).faultCode());
        assertEquals(4, r.events().size(), "the first was read above");
    }

    @Test
    void ttb1AndTopByteIgnore() throws Exception {
        SmmuRig r = new SmmuRig();
        IoPageTable lo = r.s1Table(ArmGranule.G4K, 16);
        IoPageTable hi = r.s1Table(ArmStage1.of(ArmGranule.G4K, 16, 48, false, false, false));
        SmmuRig.map(lo, 0x2000, DATA + 0x2000, 0x1000);
        SmmuRig.map(hi, 0xffff_ffff_f000L & 0x0000_ffff_ffff_ffffL, DATA + 0x3000, 0x1000);
        long cd = r.cdArea(64);
        r.cd(cd, new Cd(16, 0, 4, lo.root()).ttb1(16, 2, hi.root()).w1(1 << 6, 0)); // TBI0
        r.ste(1, new Ste(CFG_S1).s1(cd, 0, 0));
        r.enable();
        assertEquals(DATA + 0x2010, r.pa(1, -1, 0x2010, RW));
        assertEquals(DATA + 0x2010, r.pa(1, -1, 0x5a00_0000_0000_2010L, RW)); // top byte ignored
        assertEquals(DATA + 0x3010, r.pa(1, -1, 0xffff_ffff_ffff_f010L, RW));
        Translation t = r.translate(1, -1, 0x0001_0000_0000_2010L, RW); // beyond T0SZ
        assertFalse(t.isSuccess());
        assertEquals(SmmuEvent.F_TRANSLATION.code, t.faultCode());
    }

    @Test
    void hardwareAccessFlagAndDirtyAwareTlb() {
        SmmuRig r = new SmmuRig();
        IoPageTable t = r.s1Table(ArmGranule.G4K, 16);
        SmmuRig.map(t, 0x1000, DATA, 0x1000);
        long leaf = r.leafEntry(t.format(), t.root(), 0x1000);
        r.ram.write64(leaf, r.ram.read64(leaf) & ~(1L << 10)); // AF clear
        long cd = r.cdArea(64);
        r.cd(cd, new Cd(16, 0, 1, t.root()).w1(1 << 11 | 1 << 10, 0)); // HA, HD
        r.ste(1, new Ste(CFG_S1).s1(cd, 0, 0));
        r.enable();
        assertEquals(DATA + 0x10, r.pa(1, -1, 0x1010, Access.READ));
        assertTrue((r.ram.read64(leaf) & (1L << 10)) != 0, "AF set by hardware");
        long hits = r.hw.statistics().get("tlb-hits");
        assertEquals(DATA + 0x10, r.pa(1, -1, 0x1010, Access.READ)); // from the TLB
        assertEquals(hits + 1, r.hw.statistics().get("tlb-hits"));
        // Make the page read-only behind the unit's back: a write is not served by the entry a read
        // walk filled (it must walk to set the dirty state), so it sees the new permission.
        r.ram.write64(leaf, r.ram.read64(leaf) | ArmStage1.AP_RDONLY);
        assertEquals(SmmuEvent.F_PERMISSION.code, r.translate(1, -1, 0x1010, Access.WRITE).faultCode());
        assertEquals(0x13, r.event().type);
    }
}
