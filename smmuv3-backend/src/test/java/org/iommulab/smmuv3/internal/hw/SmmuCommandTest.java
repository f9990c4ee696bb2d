package org.iommulab.smmuv3.internal.hw;

import static org.iommulab.smmuv3.internal.hw.SmmuRig.CFG_ABORT;
import static org.iommulab.smmuv3.internal.hw.SmmuRig.CFG_BYPASS;
import static org.iommulab.smmuv3.internal.hw.SmmuRig.CFG_S1;
import static org.iommulab.smmuv3.internal.hw.SmmuRig.CFG_S2;
import static org.iommulab.smmuv3.internal.hw.SmmuRig.DATA;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import java.util.Map;

import org.iommulab.api.translation.Access;
import org.iommulab.pgtable.IoPageTable;
import org.iommulab.pgtable.format.ArmGranule;
import org.iommulab.smmuv3.internal.hw.SmmuRig.Cd;
import org.iommulab.smmuv3.internal.hw.SmmuRig.Ste;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/** Command queue: the stale-entry pattern for every invalidation, CMD_SYNC, and command errors (§4). */
class SmmuCommandTest {
    private static final int RW = Access.READ | Access.WRITE;
    private static final int ASID = 5;
    private static final int VMID = 3;
    private static final long NEW = DATA + 0x10_0000;

    // Opcodes
    private static final int CFGI_STE = 0x3;
    private static final int CFGI_STE_RANGE = 0x4;
    private static final int CFGI_CD = 0x5;
    private static final int CFGI_CD_ALL = 0x6;
    private static final int TLBI_NH_ALL = 0x10;
    private static final int TLBI_NH_ASID = 0x11;
    private static final int TLBI_NH_VA = 0x12;
    private static final int TLBI_NH_VAA = 0x13;
    private static final int TLBI_EL2_ALL = 0x20;
    private static final int TLBI_S12_VMALL = 0x28;
    private static final int TLBI_S2_IPA = 0x2a;
    private static final int TLBI_NSNH_ALL = 0x30;
    private static final int CMD_SYNC = 0x46;

    /** SID 1: stage 1 (VMID 0, ASID 5); SID 2: stage 2 (VMID 3); pages 0x1000-0x8000 map DATA + same. */
    private static final class Setup {
        final SmmuRig r;
        final IoPageTable s1;
        final IoPageTable s2;
        final long cd;

        Setup() {
            this(Map.of());
        }

        Setup(Map<String, String> config) {
            r = new SmmuRig(config);
            s1 = r.s1Table(ArmGranule.G4K, 16);
            s2 = r.s2Table(ArmGranule.G4K, 24, 1);
            cd = r.cdArea(64 * 4);
            SmmuRig.map(s1, 0x1000, DATA + 0x1000, 0x8000);
            SmmuRig.map(s2, 0x1000, DATA + 0x1000, 0x8000);
            r.cd(cd, new Cd(16, 0, ASID, s1.root()));
            r.ste(1, new Ste(CFG_S1).s1(cd, 0, 0));
            r.ste(2, new Ste(CFG_S2).s2(VMID, 24, 1, 0, 5, s2.root()));
            r.enable();
        }

        /** Translates (filling the TLB), then remaps {@code iova} to NEW behind the unit's back. */
        void cacheAndRemap(int sid, long iova) {
            IoPageTable t = sid == 1 ? s1 : s2;
            assertEquals(DATA + iova, r.pa(sid, -1, iova, RW));
            long leaf = r.leafEntry(t.format(), t.root(), iova);
            long e = r.ram.read64(leaf);
            r.ram.write64(leaf, (e & ~0x0000_ffff_ffff_f000L) | (NEW + (iova & 0xf000)));
            assertEquals(DATA + iova, r.pa(sid, -1, iova, RW), "stale TLB entry still used");
        }

        void assertNew(int sid, long iova) {
            assertEquals(NEW + (iova & 0xf000), r.pa(sid, -1, iova, RW));
        }

        void assertStale(int sid, long iova) {
            assertEquals(DATA + iova, r.pa(sid, -1, iova, RW));
        }
    }

    private static long vmidAsid(int vmid, int asid) {
        return ((long) vmid | (long) asid << 16) << 32;
    }

    @Test
    void tlbiNhAllAndAsid() {
        Setup s = new Setup();
        s.cacheAndRemap(1, 0x1000);
        s.r.cmd(TLBI_NH_ASID | vmidAsid(0, ASID + 1), 0); // another ASID
        s.r.sync();
        s.assertStale(1, 0x1000);
        s.r.cmd(TLBI_NH_ASID | vmidAsid(0, ASID), 0);
        s.r.sync();
        s.assertNew(1, 0x1000);
        s.cacheAndRemap(1, 0x2000);
        s.r.cmd(TLBI_NH_ALL | vmidAsid(0, 0), 0);
        s.r.sync();
        s.assertNew(1, 0x2000);
    }

    @Test
    void tlbiNhVaSingleAndRange() {
        Setup s = new Setup();
        s.cacheAndRemap(1, 0x1000);
        s.cacheAndRemap(1, 0x3000);
        s.cacheAndRemap(1, 0x6000);
        s.r.cmd(TLBI_NH_VA | vmidAsid(0, ASID), 0x3000 | 1 /* LEAF */);
        s.r.sync();
        s.assertNew(1, 0x3000);
        s.assertStale(1, 0x1000);
        // Range: TG 4K (1), NUM 3, SCALE 0: 4 pages from 0x1000, so 0x6000 stays stale.
        s.r.cmd(TLBI_NH_VA | vmidAsid(0, ASID) | 3 << 12, 0x1000 | 1 << 10);
        s.r.sync();
        s.assertNew(1, 0x1000);
        s.assertStale(1, 0x6000);
        // Range with SCALE 1: (NUM + 1) << 1 = 4 pages from 0x4000.
        s.r.cmd(TLBI_NH_VA | vmidAsid(0, ASID) | 1 << 12 | 1 << 20, 0x4000 | 1 << 10);
        s.r.sync();
        s.assertNew(1, 0x6000);
    }

    @Test
    void withoutRilTheRangeFieldsAreIgnored() {
        Setup s = new Setup(Map.of("range-invalidation", "false"));
        assertEquals(0, s.r.r32(SmmuRig.IDR3) & (1 << 10), "IDR3.RIL clear");
        s.cacheAndRemap(1, 0x1000);
        s.cacheAndRemap(1, 0x2000);
        // TG 4K, NUM 3 would cover 4 pages with RIL; without it, only the page named.
        s.r.cmd(TLBI_NH_VA | vmidAsid(0, ASID) | 3 << 12, 0x1000 | 1 << 10);
        s.r.sync();
        s.assertNew(1, 0x1000);
        s.assertStale(1, 0x2000);
    }

    @Test
    void stage1OnlyStesAreTaggedWithS2vmid() {
        Setup s = new Setup();
        // SID 3: the same CD (ASID 5) as SID 1, but S2VMID 7; §5.2: with S2P, S2VMID tags stage 1 too.
        Ste other = new Ste(CFG_S1).s1(s.cd, 0, 0);
        other.w[4] = 7;
        s.r.ste(3, other);
        s.cacheAndRemap(1, 0x1000); // VMID 0's entry is stale now
        assertEquals(NEW + 0x1000, s.r.pa(3, -1, 0x1000, RW), "VMID 7 walks on its own, no VMID 0 entry reused");
        s.r.cmd(TLBI_NH_ASID | vmidAsid(7, ASID), 0);
        s.r.sync();
        s.assertStale(1, 0x1000);
        s.r.cmd(TLBI_NH_ASID | vmidAsid(0, ASID), 0);
        s.r.sync();
        s.assertNew(1, 0x1000);
    }

    @Test
    void tlbiNhVaaAndGlobal() {
        Setup s = new Setup();
        s.cacheAndRemap(1, 0x5000);
        s.r.cmd(TLBI_NH_VAA | vmidAsid(0, 0), 0x5000);
        s.r.sync();
        s.assertNew(1, 0x5000);
        s.cacheAndRemap(2, 0x7000);
        s.r.cmd(TLBI_NSNH_ALL, 0);
        s.r.sync();
        s.assertNew(2, 0x7000);
    }

    @Test
    void tlbiStage2() {
        Setup s = new Setup();
        s.cacheAndRemap(2, 0x1000);
        s.cacheAndRemap(2, 0x2000);
        s.r.cmd(TLBI_S12_VMALL | vmidAsid(VMID + 1, 0), 0);
        s.r.sync();
        s.assertStale(2, 0x1000);
        s.r.cmd(TLBI_S2_IPA | vmidAsid(VMID, 0), 0x1000 | 1);
        s.r.sync();
        s.assertNew(2, 0x1000);
        s.assertStale(2, 0x2000);
        s.r.cmd(TLBI_S12_VMALL | vmidAsid(VMID, 0), 0);
        s.r.sync();
        s.assertNew(2, 0x2000);
    }

    @ParameterizedTest
    @ValueSource(ints = {CFGI_STE, CFGI_STE_RANGE})
    void cfgiSte(int op) {
        Setup s = new Setup();
        assertTrue(s.r.pa(1, -1, 0x1000, RW) != 0);
        s.r.ste(1, new Ste(CFG_BYPASS));
        assertEquals(DATA + 0x1000, s.r.pa(1, -1, 0x1000, RW), "stale STE");
        s.r.cmd(op | (long) (op == CFGI_STE ? 1 : 0) << 32, 0); // range 0: SIDs 0-1
        s.r.sync();
        assertEquals(0x1000, s.r.pa(1, -1, 0x1000, RW));
        s.r.ste(1, new Ste(CFG_ABORT));
        s.r.cmd(CFGI_STE_RANGE, 31); // all
        s.r.sync();
        assertFalse(s.r.translate(1, -1, 0x1000, RW).isSuccess());
    }

    @ParameterizedTest
    @ValueSource(ints = {CFGI_CD, CFGI_CD_ALL, CFGI_STE})
    void cfgiCd(int op) {
        Setup s = new Setup();
        IoPageTable other = s.r.s1Table(ArmGranule.G4K, 16);
        SmmuRig.map(other, 0x1000, NEW, 0x1000);
        assertEquals(DATA + 0x1000, s.r.pa(1, -1, 0x1000, RW));
        s.r.cd(s.cd, new Cd(16, 0, ASID + 1, other.root()));
        assertEquals(DATA + 0x1000, s.r.pa(1, -1, 0x1000, RW), "stale CD");
        s.r.cmd(op | 1L << 32, 0); // SID 1, SSID 0
        s.r.sync();
        assertEquals(NEW, s.r.pa(1, -1, 0x1000, RW));
    }

    @Test
    void syncSignalsWithMsi() {
        Setup s = new Setup();
        long msi = 0x8_0000;
        s.r.ram.write32(msi, 0);
        s.r.cmd(CMD_SYNC | 1 << 12 | 0xabcdL << 32, msi);
        assertEquals(0xabcd, s.r.ram.read32(msi));
        s.r.cmd(CMD_SYNC, msi + 4); // SIG_NONE: no write
        assertEquals(0, s.r.ram.read32(msi + 4));
        assertEquals(1, s.r.hw.statistics().get("sync-interrupts"));
        assertEquals(2, s.r.hw.statistics().get("syncs"));
        assertEquals(2, s.r.r32(SmmuRig.CMDQ_CONS));
    }

    @Test
    void illegalCommandStopsTheQueueUntilAcknowledged() {
        Setup s = new Setup();
        s.cacheAndRemap(1, 0x1000);
        s.r.cmd(0x7f, 0); // index 0: illegal
        long cons = s.r.r32(SmmuRig.CMDQ_CONS);
        assertEquals(0, cons & 0x1ff);
        assertEquals(1, (cons >>> 24) & 0x7f, "CERROR_ILL");
        long gerror = s.r.r32(SmmuRig.GERROR);
        assertEquals(1, (gerror ^ s.r.r32(SmmuRig.GERRORN)) & 1, "GERROR.CMDQ_ERR active");
        s.r.cmd(TLBI_NH_ALL, 0); // index 1: not consumed while the error is active
        assertEquals(0, s.r.r32(SmmuRig.CMDQ_CONS) & 0x1ff);
        s.assertStale(1, 0x1000);
        // Software replaces the bad command with CMD_SYNC and acknowledges: consumption resumes at
        // CMDQ_CONS without another PROD write (§7.1).
        s.r.ram.write64(SmmuRig.CMDQ, CMD_SYNC);
        s.r.w32(SmmuRig.GERRORN, gerror);
        assertEquals(0, (s.r.r32(SmmuRig.GERROR) ^ s.r.r32(SmmuRig.GERRORN)) & 1);
        assertEquals(2, s.r.r32(SmmuRig.CMDQ_CONS) & 0x1ff);
        s.assertNew(1, 0x1000);
        assertNotEquals(0, s.r.hw.statistics().get("command-errors"));
    }

    @Test
    void commandsTheUnitDoesNotImplementAreIllegal() {
        // EL2 (no IDR0.Hyp), RESUME (no stalls); and without stage 1, ATS and PRI their commands too.
        for (Map<String, String> cfg : List.of(Map.<String, String>of(),
                Map.of("stage1", "false", "ats", "false", "pri", "false"))) {
            SmmuRig r = new SmmuRig(cfg);
            r.enable();
            List<long[]> illegal = new java.util.ArrayList<>(List.of(new long[] {TLBI_EL2_ALL, 0}, new long[] {0x44, 0},
                    new long[] {0x41, 3L << 12})); // PRI_RESP with the reserved Resp 0b11
            if (!cfg.isEmpty()) {
                illegal.addAll(List.of(new long[] {TLBI_NH_ALL, 0}, new long[] {TLBI_NH_ASID, 0},
                        new long[] {0x40, 0}, new long[] {0x41, 0}));
            }
            for (long[] c : illegal) {
                r.cmd(c[0], c[1]);
                assertEquals(1, (r.r32(SmmuRig.CMDQ_CONS) >>> 24) & 0x7f, () -> "CERROR_ILL for 0x" + Long.toHexString(c[0]));
                long gerror = r.r32(SmmuRig.GERROR);
                r.ram.write64(SmmuRig.CMDQ + 16L * (r.r32(SmmuRig.CMDQ_CONS) & 0xff), CMD_SYNC);
                r.w32(SmmuRig.GERRORN, gerror); // acknowledged: the queue resumes
                assertEquals(r.r32(SmmuRig.CMDQ_PROD) & 0x1ff, r.r32(SmmuRig.CMDQ_CONS) & 0x1ff);
            }
        }
    }

    @Test
    void commandQueueWraps() {
        SmmuRig r = new SmmuRig();
        r.cmdqLog2 = 2; // 4 slots
        r.enable();
        for (int i = 0; i < 11; i++) {
            r.cmd(CMD_SYNC, 0);
        }
        // 11 commands: index 3, wrap bit (bit 2) toggled twice -> clear, so 0b011.
        assertEquals(0b011, r.r32(SmmuRig.CMDQ_CONS));
        assertEquals(0b011, r.r32(SmmuRig.CMDQ_PROD));
        r.cmd(CMD_SYNC, 0);
        assertEquals(0b100, r.r32(SmmuRig.CMDQ_CONS), "index 0 with the wrap bit set");
    }
}
