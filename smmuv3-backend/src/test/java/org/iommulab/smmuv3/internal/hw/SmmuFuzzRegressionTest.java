package org.iommulab.smmuv3.internal.hw;

import static org.iommulab.smmuv3.internal.hw.SmmuRig.CFG_BYPASS;
import static org.iommulab.smmuv3.internal.hw.SmmuRig.CFG_NESTED;
import static org.iommulab.smmuv3.internal.hw.SmmuRig.CFG_S1;
import static org.iommulab.smmuv3.internal.hw.SmmuRig.CFG_S2;
import static org.iommulab.smmuv3.internal.hw.SmmuRig.DATA;
import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.Map;

import org.iommulab.api.translation.Access;
import org.iommulab.smmuv3.internal.hw.SmmuRig.Cd;
import org.iommulab.smmuv3.internal.hw.SmmuRig.Ste;
import org.junit.jupiter.api.Test;

/**
 * Regressions for the disagreements {@link SmmuReferenceWalkPropertyTest} and
 * {@link SmmuCommandAndRegisterPropertyTest} found between the model and Arm IHI 0070, each
 * written out by hand: the structure, the transaction or command, and what the specification
 * requires (section cited on each test).
 */
class SmmuFuzzRegressionTest {
    private static final int R = Access.READ;
    /** Table or page descriptor, bits 1:0 = 0b11 (VMSAv8-64). */
    private static final long TABLE = 3;
    /** Stage-1 page: AF, inner shareable, AP[2:1] = 0b01. */
    private static final long S1_PAGE = 0x743;
    /** Stage-2 page: AF, inner shareable, S2AP read/write, MemAttr normal write-back. */
    private static final long S2_PAGE = 0x7ff;

    private static void expect(SmmuRig r, int sid, int ssid, long va, int event) {
        assertEquals(event, r.translate(sid, ssid, va, R).faultCode(), () -> r.translate(sid, ssid, va, R).toString());
    }

    /** Expects {@code events[i]} from StreamID i + 1 (VA 0x1000, no SubstreamID). */
    private static void expectEach(SmmuRig r, int... events) {
        for (int i = 0; i < events.length; i++) {
            expect(r, i + 1, -1, 0x1000, events[i]);
        }
    }

    /**
     * A zeroed starting table of {@code bytes} at 0x50_0000 mapping VA (or IPA) 0x1000 to DATA with a
     * hand-written 4 KiB-granule walk from {@code level}; @return its address
     */
    private static long table(SmmuRig r, long bytes, int level, long leaf) {
        long root = 0x50_0000;
        r.ram.fill(root, bytes, (byte) 0);
        map4k(r, root, level, 0x1000, DATA, leaf, 0x51_0000);
        return root;
    }

    /** @return the address of a fresh CD area holding {@code c} */
    private static long cd(SmmuRig r, Cd c) {
        long a = r.cdArea(64);
        r.cd(a, c);
        return a;
    }

    /** A 4 KiB-granule walk by hand from {@code table} at {@code level}: one table per level, then the page. */
    private static void map4k(SmmuRig r, long table, int level, long va, long pa, long leaf, long next) {
        for (int l = level; l < 3; l++) {
            long t = next + 0x1000L * (l - level);
            r.ram.fill(t, 0x1000, (byte) 0);
            r.ram.write64(table + 8 * ((va >>> (39 - 9 * l)) & 0x1ff), t | TABLE);
            table = t;
        }
        r.ram.write64(table + 8 * ((va >>> 12) & 0x1ff), pa | leaf);
    }

    /**
     * §5.4 CD.TTB0: "bits [(x-1):0] are treated as if all the bits are zero, where x is defined by
     * the required alignment of the translation table ... The SMMU effectively aligns the value in
     * this field before use." T0SZ 30 with 4 KiB pages starts at level 1 with a 16-entry (128-byte)
     * table, so TTB0 bit 6 is ignored. The model used the unaligned address.
     */
    @Test
    void ttb0IsAlignedToTheStartingTable() {
        SmmuRig r = new SmmuRig();
        long root = table(r, 0x1000, 1, S1_PAGE);
        long cd = cd(r, new Cd(30, 0, 1, root | 0x40));
        r.ste(1, new Ste(CFG_S1).s1(cd, 0, 0));
        r.enable();
        assertEquals(DATA + 0x10, r.pa(1, -1, 0x1010, R));
    }

    /**
     * §5.2 S2TTB: the same rule. S2T0SZ 24 with 4 KiB pages and S2SL0 1 starts at level 1 with two
     * concatenated tables (8 KiB), so S2TTB bit 12 is ignored.
     */
    @Test
    void s2ttbIsAlignedToTheConcatenatedStartingTables() {
        SmmuRig r = new SmmuRig();
        long root = table(r, 0x2000, 1, S2_PAGE);
        r.ste(1, new Ste(CFG_S2).s2(1, 24, 1, 0, 5, root | 0x1000));
        r.enable();
        assertEquals(DATA + 0x10, r.pa(1, -1, 0x1010, R));
    }

    /**
     * §5.1 L1STD.L2Ptr: "Bits L2Ptr[N:0] are treated as 0 by the SMMU, where N == 5 + (Span - 1)":
     * the level-2 array is aligned to its size (Span 5: 16 STEs, 1 KiB). The model added the low
     * bits.
     */
    @Test
    void l1stdL2PtrIsAlignedToTheLevel2Array() {
        SmmuRig r = new SmmuRig();
        long l2 = 0x90_0000;
        r.ram.fill(l2, 0x1000, (byte) 0);
        r.writeWords(l2 + 3 * 64, new Ste(CFG_BYPASS).w);
        r.l1std(0, l2 | 0x40, 5);
        r.enableTwoLevel(12, 6);
        assertEquals(0x4000, r.pa(3, -1, 0x4000, R));
    }

    /**
     * §5.2 S1CDMax: "If SMMU_IDR1.SSIDSIZE == 0, this field is IGNORED" (and §5.2.2 compares it with
     * SSIDSIZE only when SSIDSIZE != 0): the STE is legal and points at one CD. The model raised
     * C_BAD_STE.
     */
    @Test
    void s1cdmaxIsIgnoredWithoutSubstreams() {
        SmmuRig r = new SmmuRig(Map.of("ssidsize", "0"));
        long root = table(r, 0x1000, 0, S1_PAGE);
        long cd = cd(r, new Cd(16, 0, 1, root));
        r.ste(1, new Ste(CFG_S1).s1(cd, 1, 4).s1dss(0));
        r.enable();
        assertEquals(DATA, r.pa(1, -1, 0x1000, R));
        expect(r, 1, 0, 0x1000, SmmuEvent.C_BAD_SUBSTREAMID.code);
    }

    /**
     * §5.5 and §5.2.2 SteIllegal()/§5.4.2 CdIllegal() with SMMU_IDR0.STALL_MODEL 0b01 (stalls not
     * supported): STE.S1STALLD = 1 with stage 1, STE.S2S = 1 with stage 2, and CD.S = 1 are ILLEGAL.
     * The model ignored all three.
     */
    @Test
    void stallConfigurationIsIllegalWithoutTheStallModel() {
        SmmuRig r = new SmmuRig();
        assertEquals(1, (r.r32(SmmuRig.IDR0) >>> 24) & 3, "IDR0.STALL_MODEL");
        long cd = cd(r, new Cd(16, 0, 1, 0x50_0000));
        Ste stalld = new Ste(CFG_S1).s1(cd, 0, 0);
        stalld.w[2] |= 1 << 27; // S1STALLD, bit 91
        r.ste(1, stalld);
        r.ste(2, new Ste(CFG_S2).s2(1, 24, 1, 0, 5, 0x50_0000).w5(1 << 25)); // S2S, bit 185
        long cdS = cd(r, new Cd(16, 0, 2, 0x50_0000).w1(1 << 12, 0)); // CD.S, bit 44
        r.ste(3, new Ste(CFG_S1).s1(cdS, 0, 0));
        r.enable();
        expectEach(r, SmmuEvent.C_BAD_STE.code, SmmuEvent.C_BAD_STE.code, SmmuEvent.C_BAD_CD.code);
    }

    /**
     * §5.2 EATS with SMMU_IDR0.ATS: split-stage ATS (0b10) is ILLEGAL unless Config is 0b111 with
     * S2S 0; the field is IGNORED when Config[1:0] is 0b00 (bypass).
     */
    @Test
    void splitStageAtsNeedsBothStages() {
        SmmuRig r = new SmmuRig();
        long cd = cd(r, new Cd(16, 0, 1, 0x50_0000));
        Ste s1 = new Ste(CFG_S1).s1(cd, 0, 0);
        s1.w[2] |= 2 << 28; // EATS 0b10, bits 93:92
        r.ste(1, s1);
        Ste bypass = new Ste(CFG_BYPASS);
        bypass.w[2] |= 2 << 28;
        r.ste(2, bypass);
        r.enable();
        expect(r, 1, -1, 0x1000, SmmuEvent.C_BAD_STE.code);
        assertEquals(0x1000, r.pa(2, -1, 0x1000, R));
    }

    /**
     * §5.4 ENDI: "If the effective values of both CD.EPD0 and CD.EPD1 are 1, this field is
     * IGNORED": the CD is legal and a walk is a translation fault (§5.4.1.1), not C_BAD_CD.
     */
    @Test
    void endiIsIgnoredWithBothWalksDisabled() {
        SmmuRig r = new SmmuRig();
        long cd = r.cdArea(64);
        r.cd(cd, new Cd(16, 0, 1, 0x50_0000).w0(1 << 14 | 1 << 15, 0)); // EPD0, ENDI (EPD1 set by Cd)
        r.ste(1, new Ste(CFG_S1).s1(cd, 0, 0));
        r.enable();
        expect(r, 1, -1, 0x1000, SmmuEvent.F_TRANSLATION.code);
    }

    /**
     * §3.4.3 (1) and (3), SMMUv3.1 and later (AIDR says 3.2): a stage-1-only S1ContextPtr beyond
     * the OAS is C_BAD_STE, an L1CD.L2Ptr beyond it C_BAD_SUBSTREAMID; both fields reach bit 55
     * (§5.2, §5.3). The model dropped bits 55:52 and fetched, raising F_CD_FETCH.
     */
    @Test
    void contextPointersBeyondTheOasAreConfigurationErrors() {
        SmmuRig r = new SmmuRig();
        long cd = cd(r, new Cd(16, 0, 1, 0x50_0000));
        r.ste(1, new Ste(CFG_S1).s1(1L << 48, 0, 0));
        Ste high = new Ste(CFG_S1).s1(cd, 0, 0);
        high.w[1] |= 1 << 20; // S1ContextPtr bit 52
        r.ste(2, high);
        long l1 = r.cdArea(0x1000);
        r.ram.write64(l1, (1L << 49) | 1);
        r.ste(3, new Ste(CFG_S1).s1(l1, 1, 8));
        r.enable();
        expect(r, 1, -1, 0x1000, SmmuEvent.C_BAD_STE.code);
        expect(r, 2, -1, 0x1000, SmmuEvent.C_BAD_STE.code);
        expect(r, 3, 5, 0x1000, SmmuEvent.C_BAD_SUBSTREAMID.code);
    }

    /**
     * §5.2 S1Fmt 0b00: "The table is aligned to its size. S1ContextPtr[STE.S1CDMax + 5:6] are RES0";
     * set, they are either taken as zero or the SMMU fetches some CD of the table, never one beyond
     * it. The model added them to the index (here: CD 3 read from outside a 4-entry table).
     */
    @Test
    void linearCdTablesAreAlignedToTheirSize() {
        SmmuRig r = new SmmuRig();
        long root = table(r, 0x1000, 0, S1_PAGE);
        long cds = r.cdArea(0x1000);
        r.cd(cds + 3 * 64, new Cd(16, 0, 3, root));
        r.ste(1, new Ste(CFG_S1).s1(cds | 0x40, 0, 2).s1dss(2));
        r.enable();
        assertEquals(DATA, r.pa(1, 3, 0x1000, R));
    }

    /** Nested: an S1ContextPtr IPA beyond the IAS goes to stage 2 untruncated (§3.4.3 (2)). */
    @Test
    void nestedContextPointerBeyondTheIasFaultsAtStage2() {
        SmmuRig r = new SmmuRig();
        long s2 = 0x50_0000;
        r.ram.fill(s2, 0x2000, (byte) 0);
        Ste nested = new Ste(CFG_NESTED).s1(0x1000, 0, 0).s2(1, 24, 1, 0, 5, s2);
        nested.w[1] |= 1 << 20; // S1ContextPtr bit 52
        r.ste(1, nested);
        r.enable();
        expect(r, 1, -1, 0x1000, SmmuEvent.F_TRANSLATION.code);
        assertEquals((1L << 52) | 0x1000, r.event().address2, "the IPA reported, untruncated");
    }

    /**
     * With 8-bit tags (IDR0.ASID16/VMID16 0) a CD.ASID or STE.S2VMID with bits 15:8 set is ILLEGAL
     * (§5.4.2 CdIllegal(), §5.2 S2VMID); the model used the low byte.
     */
    @Test
    void wideTagsAreIllegalWith8BitTags() {
        SmmuRig r = new SmmuRig(Map.of("asid16", "false", "vmid16", "false"));
        long cd = cd(r, new Cd(16, 0, 0x101, 0x50_0000));
        r.ste(1, new Ste(CFG_S1).s1(cd, 0, 0));
        r.ste(2, new Ste(CFG_S2).s2(0x101, 24, 1, 0, 5, 0x50_0000));
        r.enable();
        expectEach(r, SmmuEvent.C_BAD_CD.code, SmmuEvent.C_BAD_STE.code);
    }

    /**
     * §5.2 S2T0SZ: the minimum is MAX(16, 64 - IAS), IAS being the OAS here (§3.4): 20 with a 44-bit
     * OAS. §5.2 S2SL0 as VTCR_EL2.SL0 (AArch64.S2InvalidSL): 16 KiB 0b11 (level 0) needs 52-bit
     * support. The model accepted both.
     */
    @Test
    void stage2SizesFollowTheIasAndTheStartLevelRules() {
        SmmuRig r = new SmmuRig(Map.of("oas", "44"));
        r.ste(1, new Ste(CFG_S2).s2(1, 19, 2, 0, 4, 0x50_0000)); // 45-bit IPA, 4K from level 0
        r.ste(2, new Ste(CFG_S2).s2(2, 20, 2, 0, 4, 0x50_0000)); // 44-bit IPA: legal
        r.ste(3, new Ste(CFG_S2).s2(3, 16, 3, 2, 4, 0x50_0000)); // 16K, S2SL0 0b11
        r.ram.fill(0x50_0000, 0x1000, (byte) 0);
        r.enable();
        expectEach(r, SmmuEvent.C_BAD_STE.code, SmmuEvent.F_TRANSLATION.code, SmmuEvent.C_BAD_STE.code);
    }

    /**
     * Commands, §4.1.6: SSec == 1 on the Non-secure queue is ILLEGAL; §4.3.3/§4.3.4: CMD_CFGI_CD and
     * CMD_CFGI_CD_ALL raise CERROR_ILL without stage 1. The model consumed them.
     */
    @Test
    void secureAndStage1ConfigurationCommandsAreIllegalHere() {
        SmmuRig r = new SmmuRig(Map.of("stage1", "false", "ats", "false", "pri", "false"));
        r.enable();
        for (long d0 : new long[] {0x03 | 1 << 10, 0x04 | 1 << 10, 0x01 | 1 << 10, 0x05, 0x06}) {
            r.cmd(d0, 0);
            long cons = r.r32(SmmuRig.CMDQ_CONS);
            assertEquals(1, (cons >>> 24) & 0x7f, () -> "CERROR_ILL for 0x" + Long.toHexString(d0));
            r.ram.write64(SmmuRig.CMDQ + 16L * (cons & 0xff), 0x46); // skip it, as Linux does
            r.w32(SmmuRig.GERRORN, r.r32(SmmuRig.GERROR));
        }
        r.sync();
    }

    /** §3.4.3 (6): a CMD_SYNC MSI address beyond the OAS is truncated to the OAS. */
    @Test
    void syncMsiAddressIsTruncatedToTheOas() {
        SmmuRig r = new SmmuRig();
        r.enable();
        r.ram.write32(0x8_0000, 0);
        r.cmd(0x46 | 1 << 12 | 0x5aL << 32, 1L << 50 | 0x8_0000); // CS = SIG_IRQ, MSIData 0x5a
        assertEquals(0x5a, r.ram.read32(0x8_0000));
    }
}
