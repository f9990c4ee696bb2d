package org.iommulab.riscv.internal.hw;

import static org.iommulab.riscv.internal.hw.RiscvRig.*;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;

import org.iommulab.api.errno.Errno;
import org.iommulab.api.errno.IommuException;
import org.iommulab.api.pasid.Pasids;
import org.iommulab.api.spi.IommuDomain;
import org.iommulab.api.translation.Access;
import org.iommulab.pgtable.IoPageTable;
import org.iommulab.pgtable.format.RiscvPaging;
import org.iommulab.platform.internal.memory.SparseMemory;
import org.junit.jupiter.api.Test;

/** The register window (chapter 5): reset values, capabilities, field attributes, handshakes. */
class RiscvHardwareTest {
    final RiscvRig rig = new RiscvRig();

    private static RiscvHardware unit(Map<String, String> overrides) throws IommuException {
        Map<String, String> c = new LinkedHashMap<>(RiscvHardware.DEFAULTS);
        c.putAll(overrides);
        return new RiscvHardware(new SparseMemory(52), c);
    }

    @Test
    void defaultsAreTheDesignsKeys() {
        assertEquals(List.of("pasid-bits", "pas", "first-stage", "g-stage", "hardware-ad", "ats", "iotlb-size"),
                List.copyOf(RiscvHardware.DEFAULTS.keySet()));
        assertEquals("20", RiscvHardware.DEFAULTS.get("pasid-bits"));
        assertEquals("52", RiscvHardware.DEFAULTS.get("pas"));
        assertEquals("sv57", RiscvHardware.DEFAULTS.get("first-stage"));
        assertEquals("sv48x4", RiscvHardware.DEFAULTS.get("g-stage"));
        assertEquals("4096", RiscvHardware.DEFAULTS.get("iotlb-size"));
        assertEquals(RiscvHardware.DEFAULTS, rig.hw.configuration());
    }

    @Test
    void capabilitiesFollowTheConfiguration() throws Exception {
        long c = rig.r64(CAPABILITIES);
        assertEquals(0x10, c & 0xff, "version 1.0");
        assertEquals(0b1110, (c >>> 8) & 0xf, "Sv39, Sv48, Sv57, no Sv32");
        assertEquals(0b0110, (c >>> 16) & 0xf, "Sv39x4 and Sv48x4");
        assertEquals(0, c & (1L << 15 | 1L << 22 | 1L << 23 | 1L << 26 | 1L << 27), "no Svpbmt, MSI_FLAT, MSI_MRIF, T2GPA, END");
        assertTrue((c & 1L << 24) != 0 && (c & 1L << 25) != 0, "AMO_HWAD and ATS");
        assertEquals(1, (c >>> 28) & 3, "IGS = WSI");
        assertEquals(0, c & 1L << 30, "no HPM");
        assertTrue((c & 1L << 31) != 0, "DBG");
        assertEquals(52, (c >>> 32) & 0x3f, "PAS");
        assertEquals(0b111, (c >>> 38) & 7, "PD8, PD17, PD20");
        assertEquals(0, c >>> 41, "QOSID, NL, S and the rest 0");
        assertEquals(c & 0xffff_ffffL, rig.r32(CAPABILITIES));
        assertEquals(c >>> 32, rig.r32(CAPABILITIES + 4));

        long small = unit(Map.of("pasid-bits", "17", "pas", "40", "first-stage", "sv39", "g-stage", "sv57x4",
                "hardware-ad", "false", "ats", "false")).read(CAPABILITIES, 8);
        assertEquals(0b0010, (small >>> 8) & 0xf);
        assertEquals(0b1110, (small >>> 16) & 0xf);
        assertEquals(0, small & (1L << 24 | 1L << 25));
        assertEquals(40, (small >>> 32) & 0x3f);
        assertEquals(0b011, (small >>> 38) & 7);
        assertEquals(0, (unit(Map.of("pasid-bits", "0")).read(CAPABILITIES, 8) >>> 38) & 7);
        assertEquals(0b001, (unit(Map.of("pasid-bits", "8")).read(CAPABILITIES, 8) >>> 38) & 7);
    }

    @Test
    void capabilitiesAreReadOnly() {
        long c = rig.r64(CAPABILITIES);
        rig.w64(CAPABILITIES, ~c);
        rig.w32(CAPABILITIES + 4, 0);
        assertEquals(c, rig.r64(CAPABILITIES));
    }

    @Test
    void badConfigurationsAreEinval() {
        Map<String, String> bad = Map.of("pasid-bits", "21", "pas", "57", "first-stage", "sv32", "g-stage", "sv48",
                "hardware-ad", "yes", "ats", "1", "iotlb-size", "0");
        for (Map.Entry<String, String> e : bad.entrySet()) {
            IommuException x = assertThrows(IommuException.class, () -> unit(Map.of(e.getKey(), e.getValue())), e::toString);
            assertEquals(Errno.EINVAL, x.errno());
        }
        assertEquals(Errno.EINVAL, assertThrows(IommuException.class, () -> unit(Map.of("pasid-bits", "12"))).errno());
        assertEquals(Errno.EINVAL, assertThrows(IommuException.class, () -> unit(Map.of("pas", "x"))).errno());
        assertEquals(Errno.EINVAL, assertThrows(IommuException.class, () -> unit(Map.of("address-bits", "48"))).errno());
    }

    @Test
    void resetValues() {
        assertEquals(0, rig.r64(DDTP), "ddtp: Off, busy 0");
        for (int off : new int[] {FCTL, CQH, CQT, FQH, FQT, PQH, PQT, CQCSR, FQCSR, PQCSR, IPSR}) {
            assertEquals(0, rig.r32(off), String.format("register 0x%x", off));
        }
        assertEquals(0, rig.r64(TR_REQ_CTL));
        assertEquals(0, rig.r64(TR_RESPONSE));
        assertEquals(0, rig.r64(0x58), "iocountovf/iocountinh: no HPM");
        assertEquals(0, rig.r64(0x300), "msi_cfg_tbl: IGS = WSI");
        assertEquals(0, rig.r64(0xff8));
    }

    @Test
    void fctlHasOnlyWsiWritable() {
        rig.w32(FCTL, 0xffff_ffffL);
        assertEquals(2, rig.r32(FCTL), "BE and GXL read-only 0, reserved and custom bits 0");
        rig.w32(FCTL, 0);
        assertEquals(0, rig.r32(FCTL));
    }

    @Test
    void ddtpKeepsItsLegalValueOnReservedModes() {
        rig.w64(DDTP, 0xffc0_0000_0000_0000L | (0x12345L << 10) | 0x3e0 | LVL3 | 1 << 4);
        assertEquals((0x12345L << 10) | LVL3, rig.r64(DDTP), "busy, reserved 9:5 and 63:54 read 0");
        for (int mode = 5; mode < 16; mode++) {
            rig.w64(DDTP, (0x777L << 10) | mode);
            assertEquals((0x12345L << 10) | LVL3, rig.r64(DDTP), "mode " + mode + " is not legal: the old value stays");
        }
        rig.w32(DDTP, BARE); // 32-bit write of the low half
        assertEquals(BARE, rig.r64(DDTP) & 0xf);
        rig.w32(DDTP + 4, 0x3);
        assertEquals(0x3L << 32 | BARE, rig.r64(DDTP), "the high half holds PPN 53:32");
    }

    @Test
    void queueBasesAndIndexes() {
        rig.w64(CQB, -1L);
        assertEquals(((1L << 44) - 1) << 10 | 0x1f, rig.r64(CQB), "LOG2SZ-1 and PPN; reserved 9:5 and 63:54 read 0");
        rig.w64(CQB, (CQ >>> 12) << 10 | 3); // 16 entries
        rig.w32(CQT, 0xffff_ffffL);
        assertEquals(15, rig.r32(CQT), "only LOG2SZ-1:0 of cqt are writable");
        rig.w32(CQH, 9);
        assertEquals(0, rig.r32(CQH), "cqh is read-only");
        rig.w64(CQB, (CQ >>> 12) << 10 | 1); // 4 entries: cqt keeps bits below LOG2SZ only
        assertEquals(3, rig.r32(CQT));
        rig.w64(FQB, (FQ >>> 12) << 10 | 2);
        rig.w32(FQH, 0x1234_5677L);
        assertEquals(7, rig.r32(FQH));
        rig.w32(FQT, 5);
        assertEquals(0, rig.r32(FQT), "fqt is read-only");
        rig.w32(PQB, 0xffff_ffffL); // 32-bit write of a 64-bit register's low half
        assertEquals(0xffff_fc1fL, rig.r64(PQB));
        // 8-byte access to two 32-bit registers: cqh (RO) and cqt.
        rig.w64(CQB, (CQ >>> 12) << 10 | 7);
        rig.w64(CQH, 0x0000_0021_0000_0005L);
        assertEquals(0x21L << 32, rig.r64(CQH));
    }

    @Test
    void queueEnableHandshakesClearTheUnitsIndexAndErrors() {
        rig.enable();
        // Make cmd_ill, then disable and re-enable: cqh and the error bits are 0 again.
        rig.command(0x3f, 0);
        assertEquals(CMD_ILL, rig.r32(CQCSR) & CMD_ILL);
        rig.command(0, 0);
        assertEquals(0, rig.r32(CQH));
        rig.w32(CQCSR, 0);
        assertEquals(0, rig.r32(CQCSR) & (ON | EN), "cqon follows cqen at once");
        assertEquals(CMD_ILL, rig.r32(CQCSR) & CMD_ILL, "errors stay while off");
        rig.w64(CQB, (CQ >>> 12) << 10 | (rig.cqLog2 - 1)); // allowed while off
        rig.w32(CQT, 0);
        rig.w32(CQCSR, EN);
        assertEquals(ON | EN, rig.r32(CQCSR), "cqen 0 -> 1 clears cmd_ill, cmd_to, cqmf, fence_w_ip; busy 0");
        assertEquals(0, rig.r32(CQH));
        // cqb cannot change while on.
        rig.w64(CQB, 0x999L << 10);
        assertEquals((CQ >>> 12) << 10 | (rig.cqLog2 - 1), rig.r64(CQB));
        // The fault queue: fqt back to 0 on enable.
        rig.dc(1, 0, 0, 0, 0);
        rig.translate(1, Pasids.NO_PASID, 0, Access.READ);
        assertEquals(1, rig.r32(FQT));
        rig.w32(FQCSR, 0);
        assertEquals(0, rig.r32(FQCSR) & ON);
        rig.translate(1, Pasids.NO_PASID, 0, Access.READ);
        assertEquals(1, rig.r32(FQT), "no records while the queue is off");
        rig.w32(FQCSR, EN | IE);
        assertEquals(0, rig.r32(FQT));
        assertEquals(EN | IE | ON, rig.r32(FQCSR));
    }

    @Test
    void ipsrIsRw1cAndInterruptsNeedWsiAndTheEnable() {
        rig.enable();
        rig.dc(1, 0, 0, 0, 0);
        rig.translate(1, Pasids.NO_PASID, 0, Access.READ);
        assertEquals(FIP, rig.r32(IPSR));
        assertEquals(List.of(FIP), rig.interrupts);
        rig.translate(1, Pasids.NO_PASID, 0, Access.READ);
        assertEquals(List.of(FIP), rig.interrupts, "already pending: no new edge");
        rig.w32(IPSR, 0xffff_fff0L);
        assertEquals(FIP, rig.r32(IPSR), "only cip, fip, pmip, pip clear, and only with 1");
        rig.w32(IPSR, FIP);
        assertEquals(0, rig.r32(IPSR));
        rig.faults();
        // fie 0: records, no fip.
        rig.w32(FQCSR, EN);
        rig.translate(1, Pasids.NO_PASID, 0, Access.READ);
        assertEquals(0, rig.r32(IPSR));
        rig.w32(FQCSR, EN | IE);
        // WSI 0: fip becomes pending silently; setting WSI signals it.
        rig.w32(FCTL, 0);
        rig.translate(1, Pasids.NO_PASID, 0, Access.READ);
        assertEquals(FIP, rig.r32(IPSR));
        assertEquals(1, rig.interrupts.size());
        rig.w32(FCTL, 2);
        assertEquals(List.of(FIP, FIP), rig.interrupts);
    }

    @Test
    void errorBitsKeepTheirInterruptPending() {
        rig.fqLog2 = 1; // two entries: one record fills it
        rig.enable();
        rig.dc(1, 0, 0, 0, 0);
        rig.translate(1, Pasids.NO_PASID, 0, Access.READ);
        rig.translate(1, Pasids.NO_PASID, 0, Access.READ);
        assertEquals(OF, rig.r32(FQCSR) & OF, "fqof: the queue was full");
        rig.w32(IPSR, FIP);
        assertEquals(FIP, rig.r32(IPSR), "fip is set again while fqof holds (the ipsr section)");
        rig.w32(FQCSR, OF | EN | IE);
        rig.w32(IPSR, FIP);
        assertEquals(0, rig.r32(IPSR));
    }

    @Test
    void faultQueueMemoryBeyondPasSetsFqmf() {
        rig.enable();
        rig.w32(FQCSR, 0);
        rig.w64(FQB, (1L << 40) << 10); // PPN 2^40: address 2^52, beyond PAS
        rig.w32(FQCSR, EN | IE);
        rig.dc(1, 0, 0, 0, 0);
        rig.interrupts.clear();
        rig.translate(1, Pasids.NO_PASID, 0, Access.READ);
        assertEquals(MF, rig.r32(FQCSR) & MF);
        assertEquals(0, rig.r32(FQT));
        assertEquals(List.of(FIP), rig.interrupts);
        rig.w32(FQB, 0); // ignored while on
        rig.translate(1, Pasids.NO_PASID, 0, Access.READ);
        assertEquals(0, rig.r32(FQT), "discarded while fqmf is set");
        assertEquals(2L, rig.hw.statistics().get("fault-records-discarded"));
    }

    @Test
    void aHandlerThatClearsIpsrBeforeTheErrorBitRunsAgainInsteadOfRecursing() {
        RiscvRig r = new RiscvRig();
        r.fqLog2 = 1;
        int[] calls = new int[2];
        r.hw.setInterruptHandler(bits -> {
            calls[0]++;
            calls[1] = Math.max(calls[1], Thread.currentThread().getStackTrace().length);
            r.w32(IPSR, bits); // as Linux: ipsr first ...
            if (calls[0] == 1) {
                return; // ... and the error bit only on the next run
            }
            r.w32(FQCSR, OF | EN | IE);
            r.w32(IPSR, bits);
        });
        r.enable();
        r.dc(1, 0, 0, 0, 0);
        r.translate(1, Pasids.NO_PASID, 0, Access.READ);
        r.translate(1, Pasids.NO_PASID, 0, Access.READ);
        assertTrue(calls[0] >= 2 && calls[0] < 10, "calls " + calls[0]);
        assertEquals(0, r.r32(IPSR));
    }

    @Test
    void debugTranslationInterface() {
        rig.enable();
        IoPageTable s1 = rig.firstStage(RiscvPaging.Mode.SV39, true);
        map(s1, 0x20_0000, DATA, 0x20_0000, IommuDomain.PROT_READ); // a 2 MiB page, read-only
        map(s1, 0x1000, DATA + 0x40_0000, 0x1000, IommuDomain.PROT_READ | IommuDomain.PROT_WRITE);
        rig.dc(0x33, V, 0, dcTa(4), atp(SV39, s1.root()));
        rig.w64(TR_REQ_IOVA, 0x2a_5fffL);
        assertEquals(0x2a_5000L, rig.r64(TR_REQ_IOVA), "bits 11:0 reserved");
        rig.w64(TR_REQ_CTL, 0x33L << 40 | 1 << 3 | 1); // DID, NW (read), Go
        assertEquals(0, rig.r64(TR_REQ_CTL) & 1, "Go/Busy cleared on completion");
        long rsp = rig.r64(TR_RESPONSE);
        assertEquals(0, rsp & 1, "no fault");
        assertEquals(1, (rsp >>> 9) & 1, "S: a superpage");
        long ppn = (rsp >>> 10) & ((1L << 44) - 1);
        assertEquals((DATA >>> 12) | 0xff, ppn, "2 MiB: PPN with bits 7:0 set and bit 8 clear");
        rig.w64(TR_REQ_CTL, 0x33L << 40 | 1); // read and write
        assertEquals(1, rig.r64(TR_RESPONSE) & 1, "a write to a read-only page faults");
        assertEquals(15, rig.faults().get(0).cause(), "and is reported");
        rig.w64(TR_REQ_IOVA, 0x1000);
        rig.w32(TR_REQ_CTL + 4, 0x33 << 8); // high half first, as RV32 would
        rig.w32(TR_REQ_CTL, 1);
        rsp = rig.r64(TR_RESPONSE);
        assertEquals(0, rsp & 0x201, "4 KiB page, no fault");
        assertEquals((DATA + 0x40_0000) >>> 12, rsp >>> 10);
    }

    @Test
    void accessesOutsideTheRulesAreEinvalAndNothingElse() throws Exception {
        RiscvHardware hw = rig.hw;
        assertEquals(Errno.EINVAL, assertThrows(IommuException.class, () -> hw.read(0x11, 4)).errno());
        assertEquals(Errno.EINVAL, assertThrows(IommuException.class, () -> hw.read(0x10, 2)).errno());
        assertEquals(Errno.EINVAL, assertThrows(IommuException.class, () -> hw.read(0x14, 8)).errno());
        assertEquals(Errno.EINVAL, assertThrows(IommuException.class, () -> hw.write(0x1000, 0, 8)).errno());
        assertEquals(Errno.EINVAL, assertThrows(IommuException.class, () -> hw.write(-8, 0, 8)).errno());
        rig.enable();
        Random random = new Random(42);
        int[] hot = {FCTL, DDTP, CQB, CQT, CQCSR, FQB, FQH, FQCSR, PQB, PQH, PQCSR, IPSR, TR_REQ_IOVA, TR_REQ_CTL, ICVEC};
        for (int i = 0; i < 20_000; i++) {
            long off = random.nextInt(4) == 0 ? random.nextInt(0x1100) : hot[random.nextInt(hot.length)] + (random.nextBoolean() ? 4 : 0);
            int size = random.nextInt(5) == 0 ? random.nextInt(9) : random.nextBoolean() ? 4 : 8;
            long value = random.nextInt(3) == 0 ? random.nextLong() : random.nextLong() & 0x1fff;
            try {
                if (random.nextBoolean()) {
                    hw.write(off, value, size);
                } else {
                    hw.read(off, size);
                }
            } catch (IommuException e) {
                assertEquals(Errno.EINVAL, e.errno());
                assertFalse((size == 4 || size == 8) && (off & (size - 1)) == 0 && off + size <= 0x1000, "a legal access");
            }
            if (i % 100 == 0) {
                rig.translate(random.nextInt(1 << 17), random.nextBoolean() ? Pasids.NO_PASID : random.nextInt(1 << 20),
                        random.nextLong(), Access.READ);
            }
        }
    }
}
