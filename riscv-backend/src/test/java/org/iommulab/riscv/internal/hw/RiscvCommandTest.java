package org.iommulab.riscv.internal.hw;

import static org.iommulab.riscv.internal.hw.RiscvRig.*;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import java.util.Map;

import org.iommulab.api.errno.IommuException;
import org.iommulab.api.pasid.Pasids;
import org.iommulab.api.spi.IommuDomain;
import org.iommulab.api.translation.Access;
import org.iommulab.api.translation.Translation;
import org.iommulab.pgtable.IoPageTable;
import org.iommulab.pgtable.format.RiscvPaging;
import org.junit.jupiter.api.Test;

/**
 * The command queue (§3.1): every IOTINVAL form, IODIR, IOFENCE.C and illegal commands. The caches
 * must really cache: a change in memory is invisible until the matching command (stale), then
 * visible (fresh); and a command leaves what it does not name cached.
 */
class RiscvCommandTest {
    static final int NP = Pasids.NO_PASID;
    static final int RW = IommuDomain.PROT_READ | IommuDomain.PROT_WRITE;
    static final long X = 0x1000;
    static final long Y = 0x2000;

    final RiscvRig rig = new RiscvRig();

    long out(int did, int pasid, long iova) {
        Translation t = rig.translate(did, pasid, iova, Access.READ);
        assertTrue(t.isSuccess(), t::toString);
        return t.outputAddress();
    }

    static void remap(IoPageTable t, long iova, long pa) {
        try {
            t.unmap(iova, 0x1000);
        } catch (IommuException e) {
            throw new AssertionError(e);
        }
        map(t, iova, pa, 0x1000, RW);
    }

    /** A host first-stage space: device {@code did}, iosatp with PSCID; X and Y mapped to old pages. */
    IoPageTable hostSpace(int did, int pscid) {
        IoPageTable t = rig.firstStage(RiscvPaging.Mode.SV39, true);
        map(t, X, DATA + did * 0x10_0000L, 0x1000, RW);
        map(t, Y, DATA + did * 0x10_0000L + 0x1000, 0x1000, RW);
        rig.dc(did, V, 0, dcTa(pscid), atp(SV39, t.root()));
        return t;
    }

    /** A nested space: first stage (PSCID) in a G-stage (GSCID) that maps the pool and DATA one to one. */
    IoPageTable guestSpace(int did, int gscid, int pscid, IoPageTable g) {
        IoPageTable t = rig.firstStage(RiscvPaging.Mode.SV39, true);
        map(t, X, DATA + did * 0x10_0000L, 0x1000, RW);
        map(t, Y, DATA + did * 0x10_0000L + 0x1000, 0x1000, RW);
        rig.dc(did, V, iohgatp(SV48, gscid, g.root()), dcTa(pscid), atp(SV39, t.root()));
        return t;
    }

    IoPageTable identityG() {
        IoPageTable g = rig.gStage4k(RiscvPaging.Mode.SV48);
        map(g, POOL, POOL, 0x400_0000, RW);
        map(g, DATA, DATA, 0x400_0000, RW);
        return g;
    }

    static final long NEW = DATA + 0x300_0000;

    @Test
    void iotinvalVmaHostForms() {
        rig.enable();
        IoPageTable a = hostSpace(1, 5);
        IoPageTable b = hostSpace(2, 6);
        long a0 = out(1, NP, X);
        long ay = out(1, NP, Y);
        long b0 = out(2, NP, X);
        remap(a, X, NEW);
        remap(a, Y, NEW + 0x1000);
        remap(b, X, NEW + 0x2000);
        assertEquals(a0, out(1, NP, X), "stale: no invalidation yet");
        assertEquals(b0, out(2, NP, X));

        // GV 0, AV 1, PSCV 1: X of PSCID 5 only.
        rig.command(iotinvalVma(false, 0, true, 5, true), addr(X));
        assertEquals(NEW, out(1, NP, X));
        assertEquals(ay, out(1, NP, Y), "Y of PSCID 5 still cached");
        assertEquals(b0, out(2, NP, X), "PSCID 6 still cached");
        // GV 0, AV 1, PSCV 0: X in every host space.
        rig.command(iotinvalVma(false, 0, false, 0, true), addr(X));
        assertEquals(NEW + 0x2000, out(2, NP, X));
        assertEquals(ay, out(1, NP, Y));
        // GV 0, AV 0, PSCV 1: all of PSCID 5.
        remap(b, X, NEW + 0x3000);
        rig.command(iotinvalVma(false, 0, true, 5, false), 0);
        assertEquals(NEW + 0x1000, out(1, NP, Y));
        assertEquals(NEW + 0x2000, out(2, NP, X), "PSCID 6 still cached");
        // GV 0, AV 0, PSCV 0: every host space.
        rig.command(iotinvalVma(false, 0, false, 0, false), 0);
        assertEquals(NEW + 0x3000, out(2, NP, X));
        assertEquals(0, rig.r32(CQCSR) & (CMD_ILL | MF));
    }

    @Test
    void iotinvalVmaGuestForms() {
        rig.enable();
        IoPageTable g = identityG();
        IoPageTable a = guestSpace(1, 3, 5, g);
        IoPageTable b = guestSpace(2, 3, 6, g);
        IoPageTable c = guestSpace(3, 4, 5, g); // another VM, same PSCID
        long ay = out(1, NP, Y);
        long b0 = out(2, NP, X);
        long c0 = out(3, NP, X);
        out(1, NP, X);
        remap(a, X, NEW);
        remap(a, Y, NEW + 0x1000);
        remap(b, X, NEW + 0x2000);
        remap(c, X, NEW + 0x3000);
        // Host invalidations do not touch VM address spaces.
        rig.command(iotinvalVma(false, 0, false, 0, false), 0);
        assertEquals(b0, out(2, NP, X));
        // GV 1, AV 1, PSCV 1: X of (GSCID 3, PSCID 5).
        rig.command(iotinvalVma(true, 3, true, 5, true), addr(X));
        assertEquals(NEW, out(1, NP, X));
        assertEquals(ay, out(1, NP, Y));
        assertEquals(b0, out(2, NP, X));
        assertEquals(c0, out(3, NP, X), "GSCID 4 untouched");
        // GV 1, AV 1, PSCV 0: X in every space of GSCID 3.
        rig.command(iotinvalVma(true, 3, false, 0, true), addr(X));
        assertEquals(NEW + 0x2000, out(2, NP, X));
        assertEquals(ay, out(1, NP, Y));
        assertEquals(c0, out(3, NP, X));
        // GV 1, AV 0, PSCV 1: all of (3, 5).
        rig.command(iotinvalVma(true, 3, true, 5, false), 0);
        assertEquals(NEW + 0x1000, out(1, NP, Y));
        assertEquals(c0, out(3, NP, X));
        // GV 1, AV 0, PSCV 0: all of GSCID 4.
        rig.command(iotinvalVma(true, 4, false, 0, false), 0);
        assertEquals(NEW + 0x3000, out(3, NP, X));
    }

    @Test
    void iotinvalGvmaForms() {
        rig.enable();
        IoPageTable g3 = rig.gStage(RiscvPaging.Mode.SV39);
        map(g3, X, DATA, 0x1000, RW);
        map(g3, Y, DATA + 0x1000, 0x1000, RW);
        IoPageTable g4 = rig.gStage(RiscvPaging.Mode.SV39);
        map(g4, X, DATA + 0x8000, 0x1000, RW);
        rig.dc(1, V, iohgatp(SV39, 3, g3.root()), 0, 0);
        rig.dc(2, V, iohgatp(SV39, 4, g4.root()), 0, 0);
        IoPageTable host = hostSpace(3, 9);
        long hy = out(3, NP, Y);
        long y0 = out(1, NP, Y);
        long c4 = out(2, NP, X);
        out(1, NP, X);
        remap(g3, X, NEW);
        remap(g3, Y, NEW + 0x1000);
        remap(g4, X, NEW + 0x2000);
        remap(host, Y, NEW + 0x3000);
        assertEquals(DATA, out(1, NP, X), "stale");
        // GV 1, AV 1: the GPA's page of GSCID 3 only.
        rig.command(iotinvalGvma(true, 3, true), addr(X));
        assertEquals(NEW, out(1, NP, X));
        assertEquals(y0, out(1, NP, Y), "another GPA stays cached (no nested entries in GSCID 3)");
        // GV 1, AV 0: all of GSCID 3.
        rig.command(iotinvalGvma(true, 3, false), 0);
        assertEquals(NEW + 0x1000, out(1, NP, Y));
        assertEquals(c4, out(2, NP, X), "GSCID 4 untouched");
        assertEquals(hy, out(3, NP, Y), "host entries untouched");
        // GV 0: every VM.
        rig.command(iotinvalGvma(false, 0, false), 0);
        assertEquals(NEW + 0x2000, out(2, NP, X));
        // PSCV with GVMA is illegal.
        rig.command(iotinvalGvma(true, 3, false) | 1L << 32, 0);
        assertEquals(CMD_ILL, rig.r32(CQCSR) & CMD_ILL);
    }

    @Test
    void gvmaWithAnAddressDropsNestedEntriesOfTheGscid() {
        rig.enable();
        IoPageTable g = identityG();
        guestSpace(1, 3, 5, g);
        long x0 = out(1, NP, X);
        // Move the guest page the first stage points at: a G-stage change.
        remap(g, x0, NEW);
        assertEquals(x0, out(1, NP, X), "stale");
        rig.command(iotinvalGvma(true, 3, true), addr(x0));
        assertEquals(NEW, out(1, NP, X), "fresh: nested entries are not tagged with the GPA, the GSCID goes");
    }

    @Test
    void iodirInvalDdtAndPdtStaleThenFresh() {
        rig.enable();
        IoPageTable a = hostSpace(1, 5);
        IoPageTable b = hostSpace(2, 6);
        long a0 = out(1, NP, X);
        long b0 = out(2, NP, X);
        // Point device 1 at device 2's table (and another PSCID): the DC cache hides it.
        rig.dc(1, V, 0, dcTa(7), atp(SV39, b.root()));
        assertEquals(a0, out(1, NP, X), "stale DC");
        rig.command(iodirDdt(true, 2), 0); // another device
        assertEquals(a0, out(1, NP, X));
        rig.command(iodirDdt(true, 1), 0);
        assertEquals(b0, out(1, NP, X), "fresh DC (PSCID 7 had nothing cached)");
        // DV 0: every device.
        out(2, NP, X);
        rig.dc(1, 0, 0, 0, 0);
        rig.dc(2, 0, 0, 0, 0);
        assertTrue(rig.translate(2, NP, X, Access.READ).isSuccess());
        rig.command(iodirDdt(false, 0), 0);
        assertEquals(258, rig.translate(1, NP, X, Access.READ).faultCode());
        assertEquals(258, rig.translate(2, NP, X, Access.READ).faultCode());

        // PDT: PC changes need INVAL_PDT for (device, process).
        long pdt = rig.page();
        rig.pc(pdt, PD8, 1, pcTa(20, false, false), atp(SV39, a.root()));
        rig.pc(pdt, PD8, 2, pcTa(21, false, false), atp(SV39, a.root()));
        rig.dc(4, V | PDTV, 0, 0, atp(PD8, pdt));
        rig.command(iodirDdt(true, 4), 0);
        assertEquals(a0, out(4, 1, X));
        assertEquals(a0, out(4, 2, X));
        rig.pc(pdt, PD8, 1, 0, 0);
        rig.pc(pdt, PD8, 2, 0, 0);
        assertEquals(a0, out(4, 1, X), "stale PC");
        rig.command(iodirPdt(4, 1), 0);
        assertEquals(266, rig.translate(4, 1, X, Access.READ).faultCode(), "fresh PC");
        assertEquals(a0, out(4, 2, X), "process 2 still cached");
        rig.command(iodirDdt(true, 4), 0);
        assertEquals(266, rig.translate(4, 2, X, Access.READ).faultCode(), "INVAL_DDT drops the device's PCs");
    }

    @Test
    void iofenceWritesDataAndSignalsWithWsi() {
        rig.enable();
        long flag = 0x60_0000;
        rig.command(iofence(true, false, 0xcafe_f00d), flag >>> 2);
        assertEquals(0xcafe_f00d, rig.ram.read32(flag));
        assertEquals(0, rig.r32(CQCSR) & FENCE_W_IP);
        rig.interrupts.clear();
        rig.command(iofence(false, true, 0), 0);
        assertEquals(FENCE_W_IP, rig.r32(CQCSR) & FENCE_W_IP);
        assertEquals(CIP, rig.r32(IPSR) & CIP);
        assertEquals(List.of(CIP), rig.interrupts);
        rig.w32(CQCSR, FENCE_W_IP | EN | IE); // RW1C
        rig.w32(IPSR, CIP);
        assertEquals(0, rig.r32(CQCSR) & FENCE_W_IP);
        assertEquals(0, rig.r32(IPSR));
        assertEquals(rig.cqTail(), rig.r32(CQH));
        // WSI is reserved with fctl.WSI = 0.
        rig.w32(FCTL, 0);
        rig.command(iofence(false, true, 0), 0);
        assertEquals(CMD_ILL, rig.r32(CQCSR) & CMD_ILL);
    }

    @Test
    void aFenceWhoseWriteFaultsSetsCqmfAndStaysAtTheHead() {
        rig.enable();
        int head = (int) rig.r32(CQH);
        rig.command(iofence(true, false, 1), (1L << 53) >>> 2); // beyond PAS 52
        assertEquals(MF, rig.r32(CQCSR) & MF);
        assertEquals(head, rig.r32(CQH));
        assertEquals(CIP, rig.r32(IPSR) & CIP);
    }

    @Test
    void aCommandQueueInMemoryThatIsNotThereSetsCqmf() {
        rig.enable();
        rig.w32(CQCSR, 0);
        rig.w64(CQB, (0x7_0000_0000L >>> 12) << 10 | 3);
        rig.w32(CQCSR, EN | IE);
        rig.w32(CQT, 1);
        assertEquals(MF, rig.r32(CQCSR) & MF);
        assertEquals(0, rig.r32(CQH));
    }

    @Test
    void illegalCommandsStopTheQueueUntilCmdIllIsCleared() {
        RiscvRig narrow = new RiscvRig(Map.of("pasid-bits", "8"));
        RiscvRig noAts = new RiscvRig(Map.of("ats", "false"));
        long[][] illegal = {
            {0, 0}, {5, 0}, {63, 0}, {64, 0}, {127, 0},
            {1 | 2 << 7, 0}, // IOTINVAL func3 2
            {iotinvalVma(false, 0, false, 0, false) | 1L << 11, 0}, // reserved bit 11
            {iotinvalVma(false, 0, false, 0, true) | 1L << 34, 0}, // NL without capabilities.NL
            {iotinvalVma(false, 0, false, 0, true) | 1L << 35, 0}, // reserved 43:35
            {iotinvalVma(false, 0, false, 0, true) | 1L << 43, 0},
            {iotinvalVma(false, 0, false, 0, true) | 1L << 62, 0}, // reserved 63:60
            {iotinvalVma(false, 0, false, 0, true), 1L << 9}, // S without capabilities.S
            {iotinvalVma(false, 0, false, 0, true), 1L}, // reserved 72:64
            {iotinvalVma(false, 0, false, 0, true), 1L << 63},
            {iotinvalGvma(false, 0, false) | 1L << 32, 0}, // PSCV with GVMA
            {2 | 1 << 7, 0}, // IOFENCE func3 1
            {iofence(false, false, 0) | 1L << 20, 0}, // reserved 31:14
            {iofence(true, false, 0), 1L << 62}, // reserved 127:126
            {3 | 2 << 7, 0}, // IODIR func3 2
            {iodirDdt(true, 1) | 1L << 12, 0}, // PID with INVAL_DDT
            {iodirDdt(true, 1) | 1L << 10, 0}, // reserved 11:10
            {iodirDdt(true, 1) | 1L << 32, 0}, // reserved 32
            {iodirDdt(true, 1) | 1L << 34, 0}, // reserved 39:34
            {iodirDdt(true, 1), 1}, // dword1 reserved
            {iodirDdt(true, 0x1_0000), 0}, // DID wider than 2LVL
            {iodirPdt(1, 1) & ~(1L << 33), 0}, // INVAL_PDT without DV
            {4 | 2 << 7, 0}, // ATS func3 2
            {prgr(1, 1) | 1L << 10, 0}, // ATS reserved
        };
        for (long[] c : illegal) {
            assertIllegal(new RiscvRig(), c);
        }
        assertIllegal(narrow, new long[] {iodirPdt(1, 0x100), 0}); // PID wider than PD8
        assertIllegal(noAts, new long[] {prgr(1, -1), 0}); // ATS without capabilities.ATS
        assertIllegal(new RiscvRig(Map.of("ats", "false")), new long[] {4, 0}); // ATS.INVAL
    }

    private static void assertIllegal(RiscvRig r, long[] command) {
        r.enable();
        long flag = 0x60_0000;
        r.queue(iofence(true, false, 1), flag >>> 2);
        r.queue(command[0], command[1]);
        r.queue(iofence(true, false, 2), flag >>> 2);
        r.interrupts.clear();
        r.submit();
        String what = String.format("command 0x%x 0x%x", command[0], command[1]);
        assertEquals(CMD_ILL, r.r32(CQCSR) & CMD_ILL, what);
        assertEquals(1, r.r32(CQH), what + ": cqh at the illegal command");
        assertEquals(1, r.ram.read32(flag), what + ": the command after it did not run");
        assertEquals(List.of(CIP), r.interrupts, what);
        // Software replaces the command with a legal one and clears cmd_ill: processing resumes.
        r.ram.write64(CQ + 16, iofence(false, false, 0));
        r.ram.write64(CQ + 24, 0);
        r.w32(CQCSR, CMD_ILL | EN | IE);
        assertEquals(0, r.r32(CQCSR) & CMD_ILL, what);
        assertEquals(3, r.r32(CQH), what);
        assertEquals(2, r.ram.read32(flag), what);
    }

    @Test
    void legalCornerCases() {
        RiscvRig r = new RiscvRig(Map.of("pasid-bits", "17"));
        r.enable(LVL3);
        r.command(iodirDdt(true, 0xff_ffff), 0); // 24-bit DID with 3LVL
        r.command(iodirPdt(0x12_3456, 0x1_ffff), 0); // PID within PD17
        r.command(iotinvalVma(true, 0xffff, true, 0xf_ffff, true), addr(-4096L)); // every operand at its maximum
        r.command(iotinvalGvma(false, 0, true), -1L >>> 2 & ~0x3ffL); // AV ignored with GV 0
        r.command(4, 0x1234_5678_0000_0fffL); // ATS.INVAL: completes (no device ATC)
        r.command(prgr(0xffff, 0xf_ffff) | 1L << 33 | 0xffL << 56, prgrPayload(0x1ff, 0xf)); // DSV, DSEG
        r.command(iofence(false, false, 0) | 1L << 12 | 1L << 13, 0); // PR, PW
        assertEquals(0, r.r32(CQCSR) & (CMD_ILL | MF));
        assertEquals(r.cqTail(), r.r32(CQH));
        assertEquals(7L, r.hw.statistics().get("commands"));
    }
}
