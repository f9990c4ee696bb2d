package org.iommulab.riscv.internal.hw;

import static org.iommulab.riscv.internal.hw.RiscvRig.*;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import java.util.Map;

import org.iommulab.api.pasid.Pasids;
import org.iommulab.api.spi.IommuDomain;
import org.iommulab.api.translation.Access;
import org.iommulab.api.translation.FaultKind;
import org.iommulab.api.translation.Stage;
import org.iommulab.api.translation.Translation;
import org.iommulab.pgtable.IoPageTable;
import org.iommulab.pgtable.format.RiscvPaging;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/** The translation process of §2.3, one step and one cause at a time, through registers and memory only. */
class RiscvTranslationTest {
    static final int NP = Pasids.NO_PASID;
    static final int R = Access.READ;
    static final int W = Access.WRITE;
    static final int RW = R | W;
    static final int PROT_RW = IommuDomain.PROT_READ | IommuDomain.PROT_WRITE;

    final RiscvRig rig = new RiscvRig();

    private static void assertFault(Translation t, int cause) {
        assertFalse(t.isSuccess(), () -> "expected cause " + cause + ", got " + t);
        assertEquals(cause, t.faultCode(), () -> t.toString());
    }

    private void assertOneFault(int cause, int did, long iotval) {
        List<RiscvRig.Fault> f = rig.faults();
        assertEquals(1, f.size(), f::toString);
        assertEquals(cause, f.get(0).cause());
        assertEquals(did, f.get(0).did());
        assertEquals(iotval, f.get(0).iotval());
    }

    @Test
    void offDisallowsEverythingWithCause256() {
        rig.enable(OFF);
        Translation t = rig.translate(5, NP, 0x1000, R);
        assertFault(t, 256);
        assertEquals(FaultKind.BLOCKED, t.faultKind());
        assertEquals("All inbound transactions disallowed", t.faultName());
        assertOneFault(256, 5, 0x1000);
    }

    @Test
    void bareWithoutAnEnabledUnitIsOffAtReset() {
        assertFault(rig.translate(0, NP, 0x1000, R), 256);
    }

    @Test
    void barePassesThrough() {
        rig.enable(BARE);
        Translation t = rig.translate(0x1234, NP, 0x7654_3210L, RW);
        assertTrue(t.isSuccess());
        assertEquals(0x7654_3210L, t.outputAddress());
        assertTrue(rig.translate(0xff_ffff, 7, 0x10, R).isSuccess(), "Bare: device and process ids are not looked at");
    }

    @ParameterizedTest
    @ValueSource(ints = {LVL1, LVL2, LVL3})
    void everyDdtDepthLocatesTheDcAndRejectsWiderDeviceIds(int mode) {
        rig.enable(mode);
        int did = mode == LVL1 ? 0x45 : mode == LVL2 ? 0xbe45 : 0x12_be45;
        rig.dc(did, V, 0, 0, 0); // G-stage and first stage Bare: pass-through
        Translation t = rig.translate(did, NP, 0xabc000, R);
        assertTrue(t.isSuccess(), t::toString);
        assertEquals(0xabc000, t.outputAddress());
        int tooWide = mode == LVL1 ? 0x80 : mode == LVL2 ? 0x1_0000 : 0x100_0000;
        assertFault(rig.translate(tooWide, NP, 0, R), 260);
        assertOneFault(260, tooWide & 0xff_ffff, 0);
    }

    @Test
    void ddtMemoryThatIsNotThereIs257() {
        rig.enable();
        // A valid non-leaf entry pointing at memory that was never written.
        rig.ram.write64(DDT + 8L * 3, (0x7_0000_0000L >>> 12) << 10 | 1);
        assertFault(rig.translate(3 << 7, NP, 0, R), 257);
        assertEquals(FaultKind.CONFIGURATION, rig.translate(3 << 7, NP, 0, R).faultKind());
        // The root itself beyond memory.
        rig.w64(DDTP, (0x8_0000_0000L >>> 12) << 10 | LVL1);
        assertFault(rig.translate(1, NP, 0, R), 257);
    }

    @Test
    void invalidDdtEntriesAndDcsAre258() {
        rig.enable();
        rig.dc(0x100, 0, 0, 0, 0); // DC.V = 0
        assertFault(rig.translate(0x100, NP, 0, R), 258);
        rig.ram.write64(DDT + 8L * 9, 0); // DDI[1] = 9 not valid
        assertFault(rig.translate(9 << 7, NP, 0, R), 258);
        rig.ram.write64(DDT + 8L * 9, (0x50_0000L >>> 12) << 10 | 1 | 1L << 60); // reserved bit 60
        assertFault(rig.translate(9 << 7, NP, 0, R), 259);
    }

    @Test
    void dcMisconfigurationRulesAre259() {
        RiscvRig noAts = new RiscvRig(Map.of("ats", "false", "hardware-ad", "false", "first-stage", "sv39",
                "g-stage", "sv39x4", "pasid-bits", "8"));
        noAts.enable();
        long root = noAts.page(4);
        long[][] bad = {
            {V | 1L << 12, 0, 0, 0}, // tc reserved bit
            {V | 1L << 24, 0, 0, 0}, // tc custom bit (none defined)
            {V | 1L << 40, 0, 0, 0},
            {V | EN_ATS, 0, 0, 0}, // ATS without capabilities.ATS
            {V | PRPR, 0, 0, 0},
            {V | T2GPA, iohgatp(SV39, 1, root), 0, 0}, // T2GPA not supported
            {V | SADE, 0, 0, 0}, // without AMO_HWAD
            {V | GADE, 0, 0, 0},
            {V | SBE, 0, 0, 0}, // SBE != fctl.BE
            {V | SXL, 0, 0, 0}, // fctl.GXL 0 not writable
            {V | DPE, 0, 0, 0}, // DPE without PDTV
            {V | PDTV, 0, 0, atp(PD17, root)}, // PD17 not advertised (pasid-bits 8)
            {V | PDTV, 0, 0, atp(7, root)}, // reserved pdtp mode
            {V, 0, 0, atp(SV48, root)}, // Sv48 not advertised
            {V, 0, 0, atp(1, root)}, // reserved iosatp mode
            {V, 0, 0, atp(14, root)}, // custom iosatp mode
            {V, iohgatp(SV48, 1, root), 0, 0}, // Sv48x4 not advertised
            {V, iohgatp(3, 1, root), 0, 0}, // reserved iohgatp mode
            {V, iohgatp(SV39, 1, root + 0x1000), 0, 0}, // G-stage root not 16-KiB aligned
            {V, 0, 1, 0}, // ta reserved 11:0
            {V, 0, 1L << 40, 0}, // ta RCID/MCID without QOSID
            {V, 0, 0, 1L << 50}, // fsc reserved 59:44
        };
        for (int i = 0; i < bad.length; i++) {
            int did = 0x200 + i;
            noAts.dc(did, bad[i][0], bad[i][1], bad[i][2], bad[i][3]);
            Translation t = noAts.translate(did, NP, 0, R);
            int index = i;
            assertFault(t, 259);
            assertEquals(FaultKind.CONFIGURATION, t.faultKind(), () -> "rule " + index);
        }
        RiscvRig ats = new RiscvRig();
        ats.enable();
        long[][] atsBad = {
            {V | EN_PRI, 0, 0, 0}, // EN_PRI without EN_ATS
            {V | EN_ATS | PRPR, 0, 0, 0}, // PRPR without EN_PRI
            {V | EN_ATS | T2GPA, iohgatp(SV39, 1, root), 0, 0},
        };
        for (int i = 0; i < atsBad.length; i++) {
            ats.dc(0x300 + i, atsBad[i][0], atsBad[i][1], atsBad[i][2], atsBad[i][3]);
            assertFault(ats.translate(0x300 + i, NP, 0, R), 259);
        }
        ats.dc(0x310, V | EN_ATS | EN_PRI | PRPR | SADE | GADE, 0, 0, 0);
        assertTrue(ats.translate(0x310, NP, 0, R).isSuccess(), "every bit allowed with ATS and AMO_HWAD");
    }

    @Test
    void gStageOnlyTranslatesGpasAndFaultsWithGuestPageFaults() {
        rig.enable();
        IoPageTable g = rig.gStage(RiscvPaging.Mode.SV39);
        map(g, 0x4000_0000L, DATA, 0x20_0000, PROT_RW);
        map(g, 0x5000_0000L, DATA + 0x100_0000, 0x1000, IommuDomain.PROT_READ);
        rig.dc(0x10, V, iohgatp(SV39, 7, g.root()), 0, 0);
        Translation t = rig.translate(0x10, NP, 0x4000_1234L, RW);
        assertTrue(t.isSuccess(), t::toString);
        assertEquals(DATA + 0x1234, t.outputAddress());
        assertEquals(21, t.pageShift(), "a 2 MiB G-stage page");
        t = rig.translate(0x10, NP, 0x6000_0000L, R);
        assertFault(t, 21);
        assertEquals(Stage.STAGE2, t.faultStage());
        assertEquals(FaultKind.TRANSLATION, t.faultKind());
        RiscvRig.Fault f = rig.faults().get(0);
        assertEquals(0x6000_0000L, f.iotval());
        assertEquals(0x6000_0000L, f.iotval2(), "the GPA, bit 0 clear: not an implicit access");
        t = rig.translate(0x10, NP, 0x5000_0008L, W);
        assertFault(t, 23);
        assertEquals(FaultKind.PERMISSION, t.faultKind());
        assertEquals(0x5000_0008L, rig.faults().get(0).iotval2());
        assertFault(rig.translate(0x10, NP, 1L << 41, R), 21); // beyond Sv39x4's 41 bits
    }

    @Test
    void firstStageOnlyWithIosatpUsesUserPagesForRequestsWithoutPasid() {
        rig.enable();
        IoPageTable s1 = rig.firstStage(RiscvPaging.Mode.SV48, true);
        map(s1, 0x7f00_0000_0000L, DATA, 0x1000, PROT_RW);
        map(s1, 0x10_0000, DATA + 0x2000, 0x1000, IommuDomain.PROT_READ);
        rig.dc(0x20, V, 0, dcTa(99), atp(SV48, s1.root()));
        Translation t = rig.translate(0x20, NP, 0x7f00_0000_0abcL, W);
        assertTrue(t.isSuccess(), t::toString);
        assertEquals(DATA + 0xabc, t.outputAddress());
        t = rig.translate(0x20, NP, 0x10_0010, W);
        assertFault(t, 15);
        assertEquals(FaultKind.PERMISSION, t.faultKind());
        assertEquals(Stage.STAGE1, t.faultStage());
        t = rig.translate(0x20, NP, 0x20_0000, R);
        assertFault(t, 13);
        assertEquals(FaultKind.TRANSLATION, t.faultKind());
        t = rig.translate(0x20, NP, 0x20_0000, Access.EXEC | R);
        assertFault(t, 12);
        List<RiscvRig.Fault> f = rig.faults();
        assertEquals(3, f.size());
        assertEquals(List.of(3, 2, 1), f.stream().map(RiscvRig.Fault::ttyp).toList(), "TTYP write, read, exec");
        assertEquals(0, f.get(0).iotval2());
        // Supervisor pages are not for requests without a process_id (they are user requests).
        IoPageTable sup = rig.firstStage(RiscvPaging.Mode.SV39, false);
        map(sup, 0x1000, DATA, 0x1000, PROT_RW);
        rig.dc(0x21, V, 0, dcTa(98), atp(SV39, sup.root()));
        t = rig.translate(0x21, NP, 0x1000, R | Access.PRIV);
        assertFault(t, 13);
        assertEquals(FaultKind.PERMISSION, t.faultKind());
        // A non-canonical Sv48 address.
        assertFault(rig.translate(0x20, NP, 0x0000_8000_0000_0000L, R), 13);
    }

    @Test
    void aProcessIdWithoutPdtvIs260() {
        rig.enable();
        rig.dc(0x30, V, 0, 0, 0);
        Translation t = rig.translate(0x30, 5, 0, R);
        assertFault(t, 260);
        RiscvRig.Fault f = rig.faults().get(0);
        assertTrue(f.pv());
        assertEquals(5, f.pid());
    }

    @ParameterizedTest
    @ValueSource(ints = {PD8, PD17, PD20})
    void pdtModesLocateProcessContexts(int mode) {
        rig.enable();
        long pdt = rig.page();
        int pid = mode == PD8 ? 0xab : mode == PD17 ? 0x1_23ab : 0xf_23ab;
        IoPageTable s1 = rig.firstStage(RiscvPaging.Mode.SV39, true);
        map(s1, 0x40_0000, DATA + 0x5000, 0x1000, PROT_RW);
        rig.pc(pdt, mode, pid, pcTa(17, false, false), atp(SV39, s1.root()));
        rig.dc(0x40, V | PDTV, 0, 0, atp(mode, pdt));
        Translation t = rig.translate(0x40, pid, 0x40_0010, RW);
        assertTrue(t.isSuccess(), t::toString);
        assertEquals(DATA + 0x5010, t.outputAddress());
        // Another PASID: its PC is not valid (266), or a non-leaf PDT entry is missing (266).
        assertFault(rig.translate(0x40, pid ^ 1, 0x40_0010, R), 266);
        if (mode != PD8) {
            assertFault(rig.translate(0x40, pid ^ 0x100, 0x40_0010, R), 266);
        }
        // A process_id wider than the mode: 260.
        if (mode != PD20) {
            int wide = mode == PD8 ? 0x100 : 0x2_0000;
            assertFault(rig.translate(0x40, wide, 0x40_0010, R), 260);
        }
        // Without a process_id and DPE 0: the first stage is Bare.
        t = rig.translate(0x40, NP, 0x123_4000, R);
        assertTrue(t.isSuccess());
        assertEquals(0x123_4000, t.outputAddress());
    }

    @Test
    void pcChecksAre266And267And265() {
        rig.enable();
        long pdt = rig.page();
        rig.dc(0x50, V | PDTV, 0, 0, atp(PD17, pdt));
        rig.pc(pdt, PD17, 1, 0, atp(SV39, 0x1000)); // V = 0
        assertFault(rig.translate(0x50, 1, 0, R), 266);
        rig.pc(pdt, PD17, 2, pcTa(1, false, false) | 1 << 3, atp(SV39, 0x1000)); // ta reserved bit 3
        assertFault(rig.translate(0x50, 2, 0, R), 267);
        rig.pc(pdt, PD17, 3, pcTa(1, false, false), atp(SV39, 0x1000) | 1L << 45); // fsc reserved
        assertFault(rig.translate(0x50, 3, 0, R), 267);
        rig.pc(pdt, PD17, 4, pcTa(1, false, false), atp(11, 0x1000)); // reserved mode
        assertFault(rig.translate(0x50, 4, 0, R), 267);
        rig.pc(pdt, PD17, 5, pcTa(1, false, false) | 1L << 40, atp(SV39, 0x1000));
        Translation t = rig.translate(0x50, 5, 0, R);
        assertFault(t, 267);
        assertEquals(FaultKind.CONFIGURATION, t.faultKind());
        // A non-leaf PDT entry with a reserved bit: 267; pointing at missing memory: 265.
        rig.ram.write64(pdt + 8L * 3, (0x50_0000L >>> 12) << 10 | 1 | 1L << 5);
        assertFault(rig.translate(0x50, 3 << 8, 0, R), 267);
        rig.ram.write64(pdt + 8L * 4, (0x9_0000_0000L >>> 12) << 10 | 1);
        assertFault(rig.translate(0x50, 4 << 8, 0, R), 265);
        List<RiscvRig.Fault> f = rig.faults();
        assertEquals(List.of(266, 267, 267, 267, 267, 267, 265), f.stream().map(RiscvRig.Fault::cause).toList());
    }

    @Test
    void dpeMakesProcessZeroTheDefault() {
        rig.enable();
        long pdt = rig.page();
        IoPageTable s1 = rig.firstStage(RiscvPaging.Mode.SV39, true);
        map(s1, 0x1000, DATA + 0x3000, 0x1000, PROT_RW);
        rig.pc(pdt, PD8, 0, pcTa(5, false, false), atp(SV39, s1.root()));
        rig.dc(0x60, V | PDTV | DPE, 0, 0, atp(PD8, pdt));
        Translation t = rig.translate(0x60, NP, 0x1008, RW);
        assertTrue(t.isSuccess(), t::toString);
        assertEquals(DATA + 0x3008, t.outputAddress());
        assertTrue(rig.translate(0x60, 0, 0x1008, RW).isSuccess());
        // A privileged request without a PASID is a user request: ENS is not needed.
        assertTrue(rig.translate(0x60, NP, 0x1008, R | Access.PRIV).isSuccess());
        // PDTV with DPE = 0: a request without a process_id bypasses the first stage.
        rig.dc(0x61, V | PDTV, 0, 0, atp(PD8, pdt));
        assertEquals(0x1008, rig.translate(0x61, NP, 0x1008, R).outputAddress());
        // pdtp Bare: no first stage for anyone.
        rig.dc(0x62, V | PDTV, 0, 0, 0);
        assertEquals(0x1008, rig.translate(0x62, 9, 0x1008, R).outputAddress());
    }

    @Test
    void ensAndSumDecideSupervisorRequests() {
        rig.enable();
        long pdt = rig.page();
        IoPageTable user = rig.firstStage(RiscvPaging.Mode.SV39, true);
        map(user, 0x1000, DATA, 0x1000, PROT_RW | IommuDomain.PROT_EXEC);
        IoPageTable sup = rig.firstStage(RiscvPaging.Mode.SV39, false);
        map(sup, 0x1000, DATA + 0x1000, 0x1000, PROT_RW);
        rig.pc(pdt, PD8, 1, pcTa(1, false, false), atp(SV39, user.root()));
        rig.pc(pdt, PD8, 2, pcTa(2, true, false), atp(SV39, user.root()));
        rig.pc(pdt, PD8, 3, pcTa(3, true, true), atp(SV39, user.root()));
        rig.pc(pdt, PD8, 4, pcTa(4, true, false), atp(SV39, sup.root()));
        rig.dc(0x70, V | PDTV, 0, 0, atp(PD8, pdt));
        int sr = R | Access.PRIV;
        assertFault(rig.translate(0x70, 1, 0x1000, sr), 260); // ENS 0
        assertTrue(rig.translate(0x70, 1, 0x1000, R).isSuccess(), "user requests need no ENS");
        Translation t = rig.translate(0x70, 2, 0x1000, sr);
        assertFault(t, 13); // a user page without SUM
        assertEquals(FaultKind.PERMISSION, t.faultKind());
        assertTrue(rig.translate(0x70, 3, 0x1000, sr).isSuccess(), "SUM lets supervisor requests read user pages");
        assertTrue(rig.translate(0x70, 3, 0x1000, W | Access.PRIV).isSuccess());
        assertFault(rig.translate(0x70, 3, 0x1000, sr | Access.EXEC), 12); // never execute user pages
        assertTrue(rig.translate(0x70, 4, 0x1000, sr).isSuccess(), "supervisor page");
        assertFault(rig.translate(0x70, 4, 0x1000, R), 13); // a user request to a supervisor page
        List<RiscvRig.Fault> f = rig.faults();
        assertEquals(260, f.get(0).cause());
        assertTrue(f.get(0).priv() && f.get(0).pv() && f.get(0).pid() == 1, f.get(0)::toString);
        assertFalse(f.get(f.size() - 1).priv());
    }

    /**
     * Nested: the PDT and the first-stage tables live at GPAs the G-stage maps one to one; then a
     * PDT entry, a first-stage table page and a first-stage A/D update the G-stage does not allow.
     */
    @Test
    void nestedTranslationAndImplicitAccessGuestPageFaults() {
        rig.enable();
        IoPageTable g = rig.gStage(RiscvPaging.Mode.SV48);
        // The structure pages and the pool, one to one (the guest's RAM).
        map(g, STRUCTS, STRUCTS, 0x100_0000, PROT_RW);
        map(g, POOL, POOL, 0x400_0000, PROT_RW);
        // Guest data GPA 0x8000_0000 -> DATA.
        map(g, 0x8000_0000L, DATA, 0x10_0000, PROT_RW);
        IoPageTable s1 = rig.firstStage(RiscvPaging.Mode.SV39, true);
        map(s1, 0x2000, 0x8000_0000L, 0x1000, PROT_RW);
        map(s1, 0x3000, 0x9000_0000L, 0x1000, PROT_RW); // a GPA the G-stage does not map
        long pdt = rig.page();
        rig.pc(pdt, PD8, 1, pcTa(11, false, false), atp(SV39, s1.root()));
        rig.dc(0x80, V | PDTV | GADE | SADE, iohgatp(SV48, 3, g.root()), 0, atp(PD8, pdt));
        Translation t = rig.translate(0x80, 1, 0x2010, RW);
        assertTrue(t.isSuccess(), t::toString);
        assertEquals(DATA + 0x10, t.outputAddress());
        // The final GPA unmapped: 23 for a write, iotval2 = GPA without the implicit bit.
        t = rig.translate(0x80, 1, 0x3010, W);
        assertFault(t, 23);
        assertEquals(Stage.STAGE2, t.faultStage());
        RiscvRig.Fault f = rig.faults().get(0);
        assertEquals(0x3010, f.iotval());
        assertEquals(0x9000_0010L, f.iotval2());

        // A first-stage table whose pages the G-stage does not map: the implicit read of its root faults.
        long unmappedRoot = 0x3000_0000L;
        rig.ram.fill(unmappedRoot, 4096, (byte) 0);
        rig.pc(pdt, PD8, 2, pcTa(12, false, false), atp(SV39, unmappedRoot));
        t = rig.translate(0x80, 2, 0x5000, R);
        assertFault(t, 21);
        assertEquals(Stage.STAGE2, t.faultStage());
        f = rig.faults().get(0);
        assertEquals(0x5000, f.iotval());
        assertEquals(unmappedRoot | 1, f.iotval2(), "GPA of the root PTE, bit 0: implicit, bit 1 clear: a read");
        t = rig.translate(0x80, 2, 0x5000, W);
        assertFault(t, 23); // reported with the original access type
        assertEquals(unmappedRoot | 1, rig.faults().get(0).iotval2());

        // The PDT itself at an unmapped GPA: G-stage fault of an implicit access during GET_PC.
        rig.dc(0x81, V | PDTV, iohgatp(SV48, 3, g.root()), 0, atp(PD8, 0x3100_0000L));
        t = rig.translate(0x81, 7, 0x5000, R);
        assertFault(t, 21);
        assertEquals((0x3100_0000L + 7 * 16) | 1, rig.faults().get(0).iotval2());

        // An A/D update of a first-stage PTE whose page the G-stage maps read-only: 21 with bits 0 and 1.
        long roTables = rig.page();
        long leafPte = rig.handPte(roTables, 3, false, 0x7000, leaf(0x8000_0000L, PTE_V | PTE_R | PTE_W | PTE_U));
        long leafPage = leafPte & ~0xfffL;
        IoPageTable g2 = rig.gStage(RiscvPaging.Mode.SV48);
        map(g2, STRUCTS, STRUCTS, leafPage - STRUCTS, PROT_RW);
        map(g2, leafPage, leafPage, 0x1000, IommuDomain.PROT_READ);
        map(g2, leafPage + 0x1000, leafPage + 0x1000, STRUCTS + 0x100_0000 - leafPage - 0x1000, PROT_RW);
        map(g2, 0x8000_0000L, DATA, 0x10_0000, PROT_RW);
        long pdt2 = rig.page();
        rig.pc(pdt2, PD8, 1, pcTa(13, false, false), atp(SV39, roTables));
        rig.dc(0x82, V | PDTV | GADE | SADE, iohgatp(SV48, 4, g2.root()), 0, atp(PD8, pdt2));
        t = rig.translate(0x82, 1, 0x7000, R);
        assertFault(t, 21);
        assertEquals(leafPte | 3, rig.faults().get(0).iotval2(), "implicit write of the A bit");
    }

    @Test
    void hardwareAdUpdatesOrFaultsWithoutSadeAndGade() {
        rig.enable();
        long root = rig.page();
        long clean = rig.handPte(root, 3, false, 0x1000, leaf(DATA, PTE_V | PTE_R | PTE_W | PTE_U));
        long accessed = rig.handPte(root, 3, false, 0x2000, leaf(DATA + 0x1000, PTE_V | PTE_R | PTE_W | PTE_U | PTE_A));
        rig.dc(0x90, V, 0, dcTa(1), atp(SV39, root)); // SADE 0
        Translation t = rig.translate(0x90, NP, 0x1000, R);
        assertFault(t, 13);
        assertEquals(FaultKind.ACCESS_FLAG, t.faultKind());
        t = rig.translate(0x90, NP, 0x2000, W);
        assertFault(t, 15);
        assertEquals(FaultKind.PERMISSION, t.faultKind(), "a store to a clean page without SADE");
        assertTrue(rig.translate(0x90, NP, 0x2000, R).isSuccess());
        assertEquals(leaf(DATA, PTE_V | PTE_R | PTE_W | PTE_U), rig.ram.read64(clean), "nothing written without SADE");

        long root2 = rig.page();
        clean = rig.handPte(root2, 3, false, 0x1000, leaf(DATA, PTE_V | PTE_R | PTE_W | PTE_U));
        rig.dc(0x91, V | SADE, 0, dcTa(2), atp(SV39, root2));
        assertTrue(rig.translate(0x91, NP, 0x1000, R).isSuccess());
        assertEquals(PTE_A, rig.ram.read64(clean) & (PTE_A | PTE_D), "A set by the read");
        assertTrue(rig.translate(0x91, NP, 0x1000, W).isSuccess(), "a read-filled IOTLB entry does not serve a write");
        assertEquals(PTE_A | PTE_D, rig.ram.read64(clean) & (PTE_A | PTE_D), "D set by the write");

        // G-stage: GADE 0 faults, GADE 1 updates.
        long groot = rig.page(4);
        long gpte = rig.handPte(groot, 3, true, 0x4000, leaf(DATA + 0x4000, PTE_V | PTE_R | PTE_W | PTE_U));
        rig.dc(0x92, V, iohgatp(SV39, 9, groot), 0, 0);
        t = rig.translate(0x92, NP, 0x4000, R);
        assertFault(t, 21);
        assertEquals(FaultKind.ACCESS_FLAG, t.faultKind());
        rig.dc(0x93, V | GADE, iohgatp(SV39, 10, groot), 0, 0);
        assertTrue(rig.translate(0x93, NP, 0x4000, W).isSuccess());
        assertEquals(PTE_A | PTE_D, rig.ram.read64(gpte) & (PTE_A | PTE_D));
        assertEquals(PTE_A, rig.ram.read64(accessed) & (PTE_A | PTE_D), "a faulting store wrote nothing");
    }

    @Test
    void faultRecordFieldsAndDtfSuppression() {
        rig.enable();
        rig.dc(0xa0, V | PDTV, 0, 0, atp(PD8, rig.page()));
        rig.translate(0xa0, 0x42, 0xdead_b000L, W | Access.PRIV);
        RiscvRig.Fault f = rig.faults().get(0);
        assertEquals(266, f.cause());
        assertEquals(0x42, f.pid());
        assertTrue(f.pv());
        assertTrue(f.priv());
        assertEquals(3, f.ttyp());
        assertEquals(0xa0, f.did());
        assertEquals(0, f.reserved());
        assertEquals(0xdead_b000L, f.iotval());
        assertEquals(0, f.iotval2());

        // DTF: translation faults are not reported; DDT faults still are.
        rig.dc(0xa1, V | DTF, 0, dcTa(1), atp(SV39, rig.page()));
        Translation t = rig.translate(0xa1, NP, 0x1000, R);
        assertFault(t, 13);
        assertFault(rig.translate(0xa1, 3, 0x1000, R), 260);
        assertEquals(List.of(), rig.faults(), "13 and 260 are not reported with DTF");
        rig.dc(0xa2, DTF, 0, 0, 0); // not valid: DTF is not known, 258 is reported
        assertFault(rig.translate(0xa2, NP, 0, R), 258);
        assertEquals(1, rig.faults().size());
        assertEquals(2L, rig.hw.statistics().get("faults-suppressed-by-dtf"));
    }

    @Test
    void superpagesAndIotlbHitsAllocateNothingObservable() {
        rig.enable();
        IoPageTable s1 = rig.firstStage(RiscvPaging.Mode.SV57, true);
        map(s1, 0x4000_0000L, DATA, 0x4000_0000L, PROT_RW); // a gigapage
        rig.dc(0xb0, V, 0, dcTa(3), atp(SV57, s1.root()));
        Translation t = rig.translate(0xb0, NP, 0x4123_4567L, R);
        assertTrue(t.isSuccess());
        assertEquals(30, t.pageShift());
        assertEquals(DATA + 0x123_4567L, t.outputAddress());
        long hits = rig.hw.statistics().get("iotlb-hits");
        rig.translate(0xb0, NP, 0x4fff_0000L, R);
        assertEquals(hits + 1, rig.hw.statistics().get("iotlb-hits"));
    }

    @Test
    void explainListsTheStructuresAndThePtes() {
        rig.enable();
        IoPageTable s1 = rig.firstStage(RiscvPaging.Mode.SV39, true);
        map(s1, 0x1000, DATA, 0x1000, PROT_RW);
        long pdt = rig.page();
        rig.pc(pdt, PD17, 0x101, pcTa(1, false, false), atp(SV39, s1.root()));
        rig.dc(0x1c0, V | PDTV, 0, 0, atp(PD17, pdt));
        var steps = rig.hw.explain(0x1c0, 0x101, 0x1000, R);
        List<String> levels = steps.stream().map(s -> s.level).toList();
        assertTrue(levels.get(0).startsWith("DDT[1]"), levels::toString);
        assertTrue(levels.contains("DC 448"), levels::toString);
        assertTrue(levels.stream().anyMatch(l -> l != null && l.startsWith("PDT[1]")), levels::toString);
        assertTrue(levels.contains("PC 257"), levels::toString);
        assertEquals("RESULT", steps.get(steps.size() - 1).stage);
        assertTrue(steps.get(steps.size() - 1).meaning.startsWith(String.format("0x%x", DATA)), steps.toString());
        assertEquals(3 + 4, steps.size() - 1, "DDT entry, DC, PDT entry, PC and three PTEs");
        assertEquals(0L, rig.hw.statistics().get("iotlb-entries"), "explaining caches nothing");
        assertTrue(rig.hw.explain(0x1c0, 0x102, 0x1000, R).get(rig.hw.explain(0x1c0, 0x102, 0x1000, R).size() - 1)
                .meaning.contains("266"));
    }
}
