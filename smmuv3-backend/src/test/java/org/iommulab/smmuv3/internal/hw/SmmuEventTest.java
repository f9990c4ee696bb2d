package org.iommulab.smmuv3.internal.hw;

import static org.iommulab.smmuv3.internal.hw.SmmuRig.CFG_ABORT;
import static org.iommulab.smmuv3.internal.hw.SmmuRig.CFG_NESTED;
import static org.iommulab.smmuv3.internal.hw.SmmuRig.CFG_BYPASS;
import static org.iommulab.smmuv3.internal.hw.SmmuRig.CFG_S1;
import static org.iommulab.smmuv3.internal.hw.SmmuRig.CFG_S2;
import static org.iommulab.smmuv3.internal.hw.SmmuRig.DATA;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.concurrent.atomic.AtomicInteger;

import org.iommulab.api.spi.IommuDomain;
import org.iommulab.api.translation.Access;
import org.iommulab.api.translation.FaultKind;
import org.iommulab.api.translation.Translation;
import org.iommulab.pgtable.IoPageTable;
import org.iommulab.pgtable.format.ArmGranule;
import org.iommulab.smmuv3.internal.hw.SmmuRig.Cd;
import org.iommulab.smmuv3.internal.hw.SmmuRig.Event;
import org.iommulab.smmuv3.internal.hw.SmmuRig.Ste;
import org.junit.jupiter.api.Test;

/** Every event the model raises, with its record fields (§7.3), and event queue overflow. */
class SmmuEventTest {
    private static final int RW = Access.READ | Access.WRITE;
    private static final long UNBACKED = 0x7_0000_0000L;

    private static void expect(SmmuRig r, Translation t, SmmuEvent e) {
        assertFalse(t.isSuccess());
        assertEquals(e.code, t.faultCode(), t::toString);
        assertEquals(e.spec, t.faultName());
    }

    /** A stage-1 stream: SID 1, one CD with ASID 1 over the returned table. */
    private static IoPageTable s1Stream(SmmuRig r, int sid, Cd cdTemplate) {
        IoPageTable t = r.s1Table(ArmGranule.G4K, 16);
        long cd = r.cdArea(64);
        cdTemplate.w[2] = (int) t.root();
        cdTemplate.w[3] = (int) (t.root() >>> 32);
        r.cd(cd, cdTemplate);
        r.ste(sid, new Ste(CFG_S1).s1(cd, 0, 0));
        return t;
    }

    @Test
    void configurationEvents() {
        SmmuRig r = new SmmuRig();
        r.ste(1, new Ste(CFG_S1).valid(false));
        Ste bad = new Ste(CFG_S2).s2(1, 24, 1, 0, 5, 0x1000);
        bad.w[5] &= ~(1 << 19); // S2AA64 = 0
        r.ste(2, bad);
        Ste endi = new Ste(CFG_S2).s2(1, 24, 1, 0, 5, 0x1000);
        endi.w[5] |= 1 << 20; // S2ENDI: big-endian tables, not implemented (IDR0.TTENDIAN)
        r.ste(3, endi);
        r.ste(4, new Ste(CFG_S2).s2(1, 24, 3, 0, 5, 0x1000)); // S2SL0 3 reserved for 4K
        r.ste(5, new Ste(CFG_S1).s1(UNBACKED, 0, 0));
        r.ste(6, new Ste(CFG_S1).s1(r.cdArea(64), 0, 0)); // CD V = 0
        long badCd = r.cdArea(64);
        r.cd(badCd, new Cd(50, 0, 1, 0x1000)); // T0SZ 50
        r.ste(7, new Ste(CFG_S1).s1(badCd, 0, 0));
        long aa32 = r.cdArea(64);
        r.cd(aa32, new Cd(16, 0, 1, 0x1000).w1(0, 1 << 9));
        r.ste(8, new Ste(CFG_S1).s1(aa32, 0, 0));
        r.ste(9, new Ste(CFG_S1).s1(aa32, 0, 21)); // S1CDMax beyond SSIDSIZE
        r.ste(10, new Ste(CFG_ABORT));
        r.enable(4);

        expect(r, r.translate(16, -1, 0x1000, Access.READ), SmmuEvent.C_BAD_STREAMID);
        Event e = r.event();
        assertEquals(0x02, e.type);
        assertEquals(16, e.sid);
        assertFalse(e.ssv);
        assertFalse(e.rnw, "configuration events carry no transaction attributes (RES0)");
        assertEquals(0, e.input, "nor an input address");

        for (int sid : new int[] {1, 2, 3, 4, 9}) {
            expect(r, r.translate(sid, -1, 0x1000, Access.WRITE | Access.PRIV), SmmuEvent.C_BAD_STE);
            e = r.event();
            assertEquals(0x04, e.type);
            assertEquals(sid, e.sid);
            assertFalse(e.rnw);
            assertFalse(e.pnu, "RES0 in a configuration event");
        }
        expect(r, r.translate(5, -1, 0x1000, RW), SmmuEvent.F_CD_FETCH);
        e = r.event();
        assertEquals(0x09, e.type);
        assertEquals(UNBACKED, e.address2);
        for (int sid : new int[] {6, 7, 8}) {
            expect(r, r.translate(sid, -1, 0x1000, RW), SmmuEvent.C_BAD_CD);
            assertEquals(0x0a, r.event().type);
        }
        // A substream on a stream with one CD.
        expect(r, r.translate(8, 3, 0x1000, Access.READ | Access.EXEC), SmmuEvent.C_BAD_SUBSTREAMID);
        e = r.event();
        assertEquals(0x08, e.type);
        assertTrue(e.ssv);
        assertEquals(3, e.ssid);
        assertFalse(e.ind, "RES0 in a configuration event");
        // Config abort: terminated without an event.
        Translation t = r.translate(10, -1, 0x1000, RW);
        assertFalse(t.isSuccess());
        assertEquals(FaultKind.BLOCKED, t.faultKind());
        assertTrue(r.events().isEmpty());
    }

    @Test
    void steFetchAbort() {
        SmmuRig r = new SmmuRig();
        r.l1std(0, UNBACKED, 7);
        r.enableTwoLevel(12, 6);
        expect(r, r.translate(3, -1, 0, RW), SmmuEvent.F_STE_FETCH);
        Event e = r.event();
        assertEquals(0x03, e.type);
        assertEquals(3, e.sid);
        assertEquals(UNBACKED + 3 * 64, e.address2);
    }

    @Test
    void stage1TranslationEvents() {
        SmmuRig r = new SmmuRig();
        IoPageTable t = s1Stream(r, 1, new Cd(16, 0, 1, 0));
        SmmuRig.map(t, 0x1000, DATA, 0x1000, IommuDomain.PROT_READ);
        SmmuRig.map(t, 0x2000, DATA + 0x1000, 0x1000);
        // Access flag clear.
        long leaf2 = r.leafEntry(t.format(), t.root(), 0x2000);
        r.ram.write64(leaf2, r.ram.read64(leaf2) & ~(1L << 10));
        // IPS 32 bits with an output above 4 GiB: address size.
        IoPageTable small = s1Stream(r, 2, new Cd(16, 0, 2, 0).w1(0, 7));
        SmmuRig.map(small, 0x1000, DATA, 0x1000);
        // TTB0 in unbacked memory: external abort on the walk.
        long cdAbort = r.cdArea(64);
        r.cd(cdAbort, new Cd(16, 0, 3, UNBACKED));
        r.ste(3, new Ste(CFG_S1).s1(cdAbort, 0, 0));
        r.enable();

        expect(r, r.translate(1, -1, 0x5000, Access.READ), SmmuEvent.F_TRANSLATION);
        Event e = r.event();
        assertEquals(0x10, e.type);
        assertEquals(0x5000, e.input);
        assertFalse(e.s2);
        assertEquals(SmmuTranslator.CLASS_IN, e.cls, "a stage-1 fault is CLASS IN (§7.3.13)");
        expect(r, r.translate(1, -1, 1L << 50, Access.READ), SmmuEvent.F_TRANSLATION); // beyond T0SZ
        e = r.event();
        assertEquals(1L << 50, e.input);
        assertEquals(SmmuTranslator.CLASS_IN, e.cls);
        expect(r, r.translate(1, -1, 0x1008, Access.WRITE), SmmuEvent.F_PERMISSION);
        e = r.event();
        assertEquals(0x13, e.type);
        assertFalse(e.rnw);
        assertFalse(e.pnu, "PnU 0: unprivileged");
        assertFalse(e.ind, "InD is 0 for a write");
        expect(r, r.translate(1, -1, 0x5000, Access.READ | Access.PRIV), SmmuEvent.F_TRANSLATION);
        assertTrue(r.event().pnu, "PnU 1: privileged");
        assertEquals(0x1008, e.input);
        expect(r, r.translate(1, -1, 0x1008, Access.READ | Access.EXEC), SmmuEvent.F_PERMISSION); // UXN
        assertTrue(r.event().ind);
        expect(r, r.translate(1, -1, 0x2000, Access.READ), SmmuEvent.F_ACCESS);
        assertEquals(0x12, r.event().type);
        expect(r, r.translate(2, -1, 0x1000, Access.READ), SmmuEvent.F_ADDR_SIZE);
        assertEquals(0x11, r.event().type);
        expect(r, r.translate(3, -1, 0x1000, Access.READ), SmmuEvent.F_WALK_EABT);
        e = r.event();
        assertEquals(0x0b, e.type);
        assertEquals(3, e.sid);
        assertEquals(UNBACKED, e.address2);
        assertEquals(SmmuTranslator.CLASS_TT, e.cls, "a stage-1 descriptor fetch abort is CLASS TT (§7.3.12)");
        assertEquals(8, r.hw.statistics().get("events"));
    }

    @Test
    void stage2EventsCarryTheIpaAndClass() {
        SmmuRig r = new SmmuRig();
        IoPageTable s2 = r.s2Table(ArmGranule.G4K, 24, 1);
        SmmuRig.map(s2, SmmuRig.POOL, SmmuRig.POOL, 0x100_0000);
        IoPageTable s1 = r.s1Table(ArmGranule.G4K, 16);
        SmmuRig.map(s1, 0x1000, 0x9000_0000L, 0x1000); // IPA not mapped by stage 2
        SmmuRig.map(s1, 0x2000, 0x1_0000_0000_0000L - 0x1000, 0x1000); // IPA beyond the 40-bit stage-2 input
        long cd = r.cdArea(64);
        SmmuRig.map(s2, cd, cd, 0x1000);
        r.cd(cd, new Cd(16, 0, 1, s1.root()));
        r.ste(1, new Ste(CFG_NESTED).s1(cd, 0, 0).s2(4, 24, 1, 0, 5, s2.root()));
        // A CD whose IPA stage 2 does not map.
        r.ste(2, new Ste(CFG_NESTED).s1(0x7000_0000L, 0, 0).s2(4, 24, 1, 0, 5, s2.root()));
        // Stage-1 tables at IPAs stage 2 does not map.
        long cd3 = r.cdArea(64);
        SmmuRig.map(s2, cd3, cd3, 0x1000);
        r.cd(cd3, new Cd(16, 0, 3, 0x6000_0000L));
        r.ste(3, new Ste(CFG_NESTED).s1(cd3, 0, 0).s2(4, 24, 1, 0, 5, s2.root()));
        // Stage-2 only, read-only page.
        IoPageTable ro = r.s2Table(ArmGranule.G4K, 24, 1);
        SmmuRig.map(ro, 0x4000, DATA, 0x1000, IommuDomain.PROT_READ);
        r.ste(4, new Ste(CFG_S2).s2(5, 24, 1, 0, 5, ro.root()));
        r.enable();

        expect(r, r.translate(1, -1, 0x1010, Access.READ), SmmuEvent.F_TRANSLATION);
        Event e = r.event();
        assertTrue(e.s2);
        assertEquals(SmmuTranslator.CLASS_IN, e.cls);
        assertEquals(0x1010, e.input);
        assertEquals(0x9000_0010L, e.address2);
        expect(r, r.translate(1, -1, 0x2010, Access.READ), SmmuEvent.F_TRANSLATION);
        assertTrue(r.event().s2);

        expect(r, r.translate(2, -1, 0x1010, Access.READ), SmmuEvent.F_TRANSLATION);
        e = r.event();
        assertTrue(e.s2);
        assertEquals(SmmuTranslator.CLASS_CD, e.cls);
        assertEquals(0x7000_0000L, e.address2);

        expect(r, r.translate(3, -1, 0x1010, Access.READ), SmmuEvent.F_TRANSLATION);
        e = r.event();
        assertTrue(e.s2);
        assertEquals(SmmuTranslator.CLASS_TT, e.cls);
        assertEquals(0x6000_0000L, e.address2 & ~0xfffL);

        expect(r, r.translate(4, -1, 0x4000, Access.WRITE), SmmuEvent.F_PERMISSION);
        e = r.event();
        assertTrue(e.s2);
        assertEquals(SmmuTranslator.CLASS_IN, e.cls);
        assertEquals(0x4000, e.address2);
        assertFalse(e.rnw);
        assertEquals(DATA + 8, r.pa(4, -1, 0x4008, Access.READ));
        // A SubstreamID on a stage-2-only stream.
        expect(r, r.translate(4, 1, 0x4000, Access.READ), SmmuEvent.C_BAD_SUBSTREAMID);
        assertEquals(0x08, r.event().type);
    }

    @Test
    void recordBitsAndCdA() {
        SmmuRig r = new SmmuRig();
        IoPageTable quiet = s1Stream(r, 1, new Cd(16, 0, 1, 0).w1(0, 1 << 13)); // CD.R = 0
        SmmuRig.map(quiet, 0x1000, DATA, 0x1000, IommuDomain.PROT_READ);
        long cdAbort = r.cdArea(64);
        r.cd(cdAbort, new Cd(16, 0, 3, UNBACKED).w1(0, 1 << 13)); // R = 0 but the walk aborts
        r.ste(3, new Ste(CFG_S1).s1(cdAbort, 0, 0));
        IoPageTable s2 = r.s2Table(ArmGranule.G4K, 24, 1);
        Ste s2quiet = new Ste(CFG_S2).s2(1, 24, 1, 0, 5, s2.root());
        s2quiet.w[5] &= ~(1 << 26); // STE.S2R = 0
        r.ste(4, s2quiet);
        s1Stream(r, 5, new Cd(16, 0, 5, 0).w1(0, 1 << 14)); // CD.A = 0
        r.enable();
        // The transaction still faults with its code, but nothing is recorded.
        assertEquals(SmmuEvent.F_TRANSLATION.code, r.translate(1, -1, 0x5000, Access.READ).faultCode());
        assertEquals(SmmuEvent.F_PERMISSION.code, r.translate(1, -1, 0x1000, Access.WRITE).faultCode());
        assertEquals(SmmuEvent.F_TRANSLATION.code, r.translate(1, -1, 1L << 50, Access.READ).faultCode());
        assertEquals(SmmuEvent.F_TRANSLATION.code, r.translate(4, -1, 0x5000, Access.READ).faultCode());
        assertTrue(r.events().isEmpty(), "CD.R and STE.S2R clear: no records");
        // An external abort is recorded whatever R says.
        expect(r, r.translate(3, -1, 0x1000, Access.READ), SmmuEvent.F_WALK_EABT);
        assertEquals(0x0b, r.event().type);
        // TERM_MODEL 1: a CD with A = 0 is ILLEGAL.
        assertEquals(1, (r.r32(SmmuRig.IDR0) >>> 26) & 1, "IDR0.TERM_MODEL");
        expect(r, r.translate(5, -1, 0x1000, Access.READ), SmmuEvent.C_BAD_CD);
    }

    @Test
    void tableBasesBeyondTheOutputSizeAreIllegal() {
        SmmuRig r = new SmmuRig();
        r.ste(1, new Ste(CFG_S2).s2(1, 24, 1, 0, 5, 1L << 48)); // S2TTB beyond S2PS 48 bits
        long cd = r.cdArea(64);
        r.cd(cd, new Cd(16, 0, 1, 1L << 33).w1(0, 7)); // IPS 32 bits, TTB0 at 8 GiB
        r.ste(2, new Ste(CFG_S1).s1(cd, 0, 0));
        long cdEpd = r.cdArea(64);
        r.cd(cdEpd, new Cd(16, 0, 1, 1L << 33).w1(0, 7).w0(1 << 14, 0).ttb1(16, 2, 0x1000)); // TTB0 unused: EPD0
        r.ste(3, new Ste(CFG_S1).s1(cdEpd, 0, 0));
        r.enable();
        expect(r, r.translate(1, -1, 0x1000, Access.READ), SmmuEvent.C_BAD_STE);
        expect(r, r.translate(2, -1, 0x1000, Access.READ), SmmuEvent.C_BAD_CD);
        // With EPD0 set, TTB0 is not used, so its value does not matter: a TTB1-range walk runs.
        assertEquals(SmmuEvent.F_TRANSLATION.code, r.translate(3, -1, 0x1000, Access.READ).faultCode());
    }

    @Test
    void bypassedInputsBeyondTheOasAreAddressSizeFaults() {
        SmmuRig r = new SmmuRig(java.util.Map.of("oas", "40"));
        assertTrue(r.translate(1, -1, 0x1000, RW).isSuccess(), "SMMUEN 0: GBPA bypass below the OAS");
        Translation t = r.translate(1, -1, 1L << 40, RW);
        assertEquals(FaultKind.BLOCKED, t.faultKind(), "beyond the OAS a bypassing transaction aborts");
        IoPageTable s2 = r.s2Table(ArmGranule.G4K, 24, 1);
        SmmuRig.map(s2, 0x1000, DATA, 0x1000);
        r.ste(1, new Ste(CFG_BYPASS));
        r.ste(2, new Ste(CFG_S2).s2(1, 24, 1, 0, 2, s2.root()));
        r.enable();
        assertEquals(0x1000, r.pa(1, -1, 0x1000, RW));
        expect(r, r.translate(1, -1, 1L << 40, RW), SmmuEvent.F_ADDR_SIZE);
        Event e = r.event();
        assertEquals(1L << 40, e.input);
        assertFalse(e.s2, "stage 1 (bypassed) reports it");
        assertEquals(SmmuTranslator.CLASS_IN, e.cls);
        expect(r, r.translate(2, -1, 1L << 40, RW), SmmuEvent.F_ADDR_SIZE);
        assertFalse(r.event().s2);
        expect(r, r.translate(2, -1, 1L << 39, RW), SmmuEvent.F_TRANSLATION); // inside the IAS, unmapped: stage 2
        assertTrue(r.event().s2);
    }

    @Test
    void streamTableConfigurationRules() {
        SmmuRig r = new SmmuRig();
        long l2 = r.cdArea(64 * 64);
        r.writeWords(l2 + 64 * 5, new Ste(CFG_BYPASS).w);
        r.enableTwoLevel(12, 7); // SPLIT 7 is not 6, 8 or 10: behaves as 6
        r.l1std(1, l2, 7); // StreamIDs 64-127, Span 7 = SPLIT + 1
        assertTrue(r.translate(64 + 5, -1, 0x1000, RW).isSuccess(), "SPLIT 7 behaved as 6");
        r.l1std(1, l2, 8); // Span wider than SPLIT + 1
        r.cmd(0x04, 31); // CMD_CFGI_STE_RANGE, all
        r.sync();
        expect(r, r.translate(64 + 5, -1, 0x1000, RW), SmmuEvent.C_BAD_STREAMID);
        // FMT 0b10 is reserved and behaves as linear.
        r.ste(3, new Ste(CFG_BYPASS));
        r.cr0(0);
        r.w32(SmmuRig.STRTAB_BASE_CFG, 8 | 2 << 16);
        r.enableQueuesAndSmmu();
        assertTrue(r.translate(3, -1, 0x1000, RW).isSuccess(), "FMT 0b10 read as linear");
    }

    @Test
    void gbpaAbortAndDisabledQueue() {
        SmmuRig r = new SmmuRig();
        r.w32(SmmuRig.GBPA, 1 << 20); // without UPDATE: ignored
        assertEquals(0, r.r32(SmmuRig.GBPA));
        assertTrue(r.translate(1, -1, 0x1000, RW).isSuccess());
        r.w32(SmmuRig.GBPA, 1 << 20 | 1 << 31);
        assertEquals(1 << 20, r.r32(SmmuRig.GBPA), "UPDATE cleared by the unit");
        Translation t = r.translate(1, -1, 0x1000, RW);
        assertEquals(FaultKind.BLOCKED, t.faultKind());
        // Events with EVTQEN clear are discarded.
        r.w64(SmmuRig.STRTAB_BASE, SmmuRig.STRTAB);
        r.w32(SmmuRig.STRTAB_BASE_CFG, 2);
        r.cr0(SmmuRig.SMMUEN);
        // Without CR2.RECINVSID an invalid StreamID is not recorded at all (§7.3.3).
        expect(r, r.translate(100, -1, 0, RW), SmmuEvent.C_BAD_STREAMID);
        assertEquals(0, r.hw.statistics().get("events-discarded"));
        r.w32(0x2c, 1 << 1);
        expect(r, r.translate(100, -1, 0, RW), SmmuEvent.C_BAD_STREAMID);
        assertEquals(1, r.hw.statistics().get("events-discarded"));
    }

    @Test
    void overflowDropsEventsAndTogglesOvflg() {
        SmmuRig r = new SmmuRig();
        r.eventqLog2 = 1; // two records
        AtomicInteger irqs = new AtomicInteger();
        r.hw.setEventInterrupt(irqs::incrementAndGet);
        r.enable(2);
        r.w32(SmmuRig.IRQ_CTRL, 1 << 2 | 1);
        assertEquals(5, r.r32(SmmuRig.IRQ_CTRL_ACK));
        for (int i = 0; i < 3; i++) {
            r.translate(10 + i, -1, 0, RW);
        }
        assertEquals(2, irqs.get());
        long prod = r.r32(SmmuRig.EVENTQ_PROD);
        assertEquals(1L << 31 | 0b10, prod, "full (wrap set, index 0) with OVFLG toggled");
        r.translate(20, -1, 0, RW); // still overflowed: OVFLG stays
        assertEquals(1L << 31 | 0b10, r.r32(SmmuRig.EVENTQ_PROD));
        var events = r.events();
        assertEquals(2, events.size());
        assertEquals(10, events.get(0).sid);
        assertEquals(11, events.get(1).sid);
        assertEquals(2, r.hw.statistics().get("events-dropped"));
        // Acknowledge the overflow; the next overflow toggles OVFLG back.
        r.w32(SmmuRig.EVENTQ_CONS, r.r32(SmmuRig.EVENTQ_CONS) | 1L << 31);
        for (int i = 0; i < 3; i++) {
            r.translate(30 + i, -1, 0, RW);
        }
        assertEquals(0, r.r32(SmmuRig.EVENTQ_PROD) >>> 31);
        assertEquals(30, r.events().get(0).sid);
    }
}
