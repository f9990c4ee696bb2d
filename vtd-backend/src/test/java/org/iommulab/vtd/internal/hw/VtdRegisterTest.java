package org.iommulab.vtd.internal.hw;

import static org.iommulab.vtd.internal.hw.VtdRig.CAP;
import static org.iommulab.vtd.internal.hw.VtdRig.ECAP;
import static org.iommulab.vtd.internal.hw.VtdRig.GCMD;
import static org.iommulab.vtd.internal.hw.VtdRig.GSTS;
import static org.iommulab.vtd.internal.hw.VtdRig.IQA;
import static org.iommulab.vtd.internal.hw.VtdRig.QIE;
import static org.iommulab.vtd.internal.hw.VtdRig.ROOT;
import static org.iommulab.vtd.internal.hw.VtdRig.RTADDR;
import static org.iommulab.vtd.internal.hw.VtdRig.SRTP;
import static org.iommulab.vtd.internal.hw.VtdRig.TE;
import static org.iommulab.vtd.internal.hw.VtdRig.TTM_SCALABLE;
import static org.iommulab.vtd.internal.hw.VtdRig.VER;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Map;
import java.util.stream.Stream;

import org.iommulab.api.errno.Errno;
import org.iommulab.api.errno.IommuException;
import org.iommulab.api.translation.Access;
import org.iommulab.api.translation.Translation;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/** Register file of the unit (VT-d §11.4): identification, access sizes, global command/status, RTADDR. */
class VtdRegisterTest {
    private static final int SID = 0x0010;

    static long bits(long v, int hi, int lo) {
        return (v >>> lo) & ((1L << (hi - lo + 1)) - 1);
    }

    static Stream<Arguments> configs() {
        return Stream.of(
                Arguments.of(Map.of()),
                Arguments.of(Map.of("mgaw", "48", "haw", "46", "fs5lp", "false", "sl-ad", "false", "pasid-bits", "8")),
                Arguments.of(Map.of("mgaw", "39", "haw", "39", "fs1gp", "false", "sllps", "1", "caching-mode", "true")));
    }

    @ParameterizedTest
    @MethodSource("configs")
    void capabilityRegistersDescribeTheConfiguration(Map<String, String> cfg) {
        VtdRig r = new VtdRig(cfg);
        Map<String, String> v = r.hw.config().values();
        int mgaw = Integer.parseInt(v.get("mgaw"));
        long ver = r.reg32(VER);
        assertTrue(bits(ver, 7, 4) >= 3, "VER.MAX: scalable mode is architecture 3.0 or later");
        assertEquals(0, ver >>> 8, "VER bits 31:8 reserved");

        long cap = r.reg64(CAP);
        assertEquals(mgaw - 1, bits(cap, 21, 16), "CAP.MGAW");
        long sagaw = mgaw == 57 ? 0b01110 : mgaw == 48 ? 0b00110 : 0b00010;
        assertEquals(sagaw, bits(cap, 12, 8), "CAP.SAGAW");
        assertEquals(v.get("caching-mode").equals("true") ? 1 : 0, bits(cap, 7, 7), "CAP.CM");
        assertEquals(Long.parseLong(v.get("sllps")), bits(cap, 37, 34), "CAP.SLLPS");
        assertEquals(v.get("fs1gp").equals("true") ? 1 : 0, bits(cap, 56, 56), "CAP.FS1GP");
        assertEquals(v.get("fs5lp").equals("true") ? 1 : 0, bits(cap, 60, 60), "CAP.FS5LP");
        long nfr = bits(cap, 47, 40) + 1;
        long fro = bits(cap, 33, 24) * 16;
        assertEquals(4, nfr, "CAP.NFR: 4 fault recording registers");
        assertEquals(0x220, fro, "CAP.FRO");
        assertTrue(fro >= 0x100 && fro + 16 * nfr <= 0x1000, "fault records inside the register page");
        assertEquals(1, bits(cap, 39, 39), "CAP.PSI");
        assertEquals(18, bits(cap, 53, 48), "CAP.MAMV");

        long ecap = r.reg64(ECAP);
        assertEquals(1, bits(ecap, 1, 1), "ECAP.QI");
        assertEquals(1, bits(ecap, 6, 6), "ECAP.PT");
        assertEquals(1, bits(ecap, 26, 26), "ECAP.NEST");
        assertEquals(Integer.parseInt(v.get("pasid-bits")) - 1, bits(ecap, 39, 35), "ECAP.PSS");
        assertEquals(1, bits(ecap, 40, 40), "ECAP.PASID");
        assertEquals(1, bits(ecap, 43, 43), "ECAP.SMTS");
        assertEquals(v.get("sl-ad").equals("true") ? 1 : 0, bits(ecap, 45, 45), "ECAP.SLADS");
        assertEquals(1, bits(ecap, 46, 46), "ECAP.SLTS");
        assertEquals(1, bits(ecap, 47, 47), "ECAP.FLTS");
        long iro = bits(ecap, 17, 8) * 16;
        assertEquals(0xf0, iro, "ECAP.IRO");
        assertTrue(iro + 16 <= 0x1000 && (iro + 16 <= fro || iro >= fro + 16 * nfr), "IVA/IOTLB registers do not overlap the fault records");
        assertEquals(r.hw.cap(), cap, "cap() equals the register");
        assertEquals(r.hw.ecap(), ecap, "ecap() equals the register");
    }

    @Test
    void defaultConfigurationAdvertisesPss19() {
        VtdRig r = new VtdRig();
        assertEquals(19, bits(r.reg64(ECAP), 39, 35));
        assertEquals(56, bits(r.reg64(CAP), 21, 16));
    }

    @Test
    void sixtyFourBitRegistersReadAsTwoHalves() {
        VtdRig r = new VtdRig();
        r.w64(RTADDR, 0x0000_00ab_cdef_1000L | TTM_SCALABLE);
        r.w64(IQA, 0x0000_0012_3456_7000L | 1);
        for (int off : new int[] {CAP, ECAP, RTADDR, IQA, VER}) {
            long q = r.reg64(off);
            long lo = r.reg32(off);
            long hi = r.reg32(off + 4);
            assertEquals(q, lo | hi << 32, String.format("register 0x%x", off));
        }
        assertEquals(0x0000_00ab_cdef_1000L | TTM_SCALABLE, r.reg64(RTADDR));
    }

    @Test
    void thirtyTwoBitWritesComposeA64BitRegister() {
        VtdRig r = new VtdRig();
        r.w32(RTADDR, 0x5000 | TTM_SCALABLE);
        r.w32(RTADDR + 4, 0x7f);
        assertEquals(0x7f_0000_5000L | TTM_SCALABLE, r.reg64(RTADDR));
        r.w32(RTADDR + 4, 0x1);
        assertEquals(0x1_0000_5000L | TTM_SCALABLE, r.reg64(RTADDR), "an upper-half write keeps the lower half");
        r.w32(RTADDR, 0x9000);
        assertEquals(0x1_0000_9000L, r.reg64(RTADDR), "a lower-half write keeps the upper half");
    }

    @Test
    void gcmdReadsZeroAndGstsFollowsTheCommands() {
        VtdRig r = new VtdRig();
        assertEquals(0, r.reg32(GCMD));
        assertEquals(0, r.gsts(), "GSTS after reset");
        r.w64(RTADDR, ROOT | TTM_SCALABLE);
        r.command(SRTP, true);
        assertEquals(SRTP, r.gsts(), "only RTPS");
        r.enableQueue(false, 0);
        assertEquals(SRTP | QIE, r.gsts());
        r.command(TE, true);
        assertEquals(SRTP | QIE | TE, r.gsts());
        assertEquals(0, r.reg32(GCMD), "GCMD is write-only");
        assertEquals((long) (SRTP | QIE | TE) << 32 & 0xffff_ffff_0000_0000L, r.reg64(GCMD) , "8-byte read: GCMD 0, GSTS above");
        r.command(TE, false);
        assertEquals(SRTP | QIE, r.gsts(), "TE off leaves the others");
        r.command(QIE, false);
        assertEquals(SRTP, r.gsts());
        r.command(TE, true);
        assertEquals(SRTP | TE, r.gsts());
    }

    @Test
    void gcmdEightByteWriteActsOnTheLowHalf() {
        VtdRig r = new VtdRig();
        r.w64(RTADDR, ROOT | TTM_SCALABLE);
        r.w64(GCMD, SRTP & 0xffff_ffffL);
        assertEquals(SRTP, r.gsts());
        r.w64(GCMD, (TE & 0xffff_ffffL) | 0xffff_ffff_0000_0000L);
        assertEquals(SRTP | TE, r.gsts(), "the GSTS half of an 8-byte write is ignored");
    }

    @Test
    void rtaddrTakesEffectOnlyThroughSrtp() {
        VtdRig r = new VtdRig();
        PageTables ss = r.secondStage(2);
        ss.map(0x1000, 0x7000_0000L);
        r.secondStageDevice(SID, 1, ss);
        r.enable();
        assertEquals(0x7000_0000L, r.read(SID, 0x1000));

        long emptyRoot = r.page(); // no root entries at all
        r.w64(RTADDR, emptyRoot | TTM_SCALABLE);
        assertEquals(emptyRoot | TTM_SCALABLE, r.reg64(RTADDR), "RTADDR reads back what was written");
        // Drop every cache so the next request really walks from the latched root.
        r.submit(VtdRig.contextCacheDesc(1, 0, 0, 0), VtdRig.pasidCacheDesc(3, 0, 0), VtdRig.iotlbDesc(1, 0, 0, 0, false));
        r.sync();
        assertEquals(0x7000_0000L, r.read(SID, 0x1000), "still the old root before SRTP");

        r.command(SRTP, true);
        VtdRig.assertFault(r.translate(SID, -1, 0x1000, Access.READ), 0x39);
    }

    @Test
    void writesToReadOnlyRegistersAreIgnored() {
        VtdRig r = new VtdRig();
        long ver = r.reg64(VER);
        long cap = r.reg64(CAP);
        long ecap = r.reg64(ECAP);
        r.w64(VER, -1L);
        r.w64(CAP, ~cap);
        r.w32(ECAP, 0);
        r.w32(ECAP + 4, 0);
        r.w32(GSTS, TE | SRTP | QIE);
        assertEquals(ver, r.reg64(VER));
        assertEquals(cap, r.reg64(CAP));
        assertEquals(ecap, r.reg64(ECAP));
        assertEquals(0, r.gsts(), "GSTS is read-only");
        Translation t = r.translate(0x1234, -1, 0x5000, Access.READ);
        assertEquals(0x5000, t.outputAddress(), "translation still disabled");
    }

    static Stream<Arguments> badAccesses() {
        return Stream.of(
                Arguments.of(0x20L, 0), Arguments.of(0x20L, 1), Arguments.of(0x20L, 2), Arguments.of(0x20L, 3),
                Arguments.of(0x20L, 16), Arguments.of(0x20L, -8),
                Arguments.of(0x22L, 4), Arguments.of(0x24L, 8), Arguments.of(0x19L, 4), Arguments.of(0x1cL, 8),
                Arguments.of(-8L, 8), Arguments.of(-4L, 4), Arguments.of(0x1000L, 4), Arguments.of(0x1000L, 8),
                Arguments.of(0xffcL, 8), Arguments.of(0x1_0000_0020L, 8), Arguments.of(Long.MIN_VALUE, 8));
    }

    @ParameterizedTest
    @MethodSource("badAccesses")
    void badSizeAlignmentOrOffsetIsEinvalAndChangesNothing(long offset, int size) {
        VtdRig r = new VtdRig();
        r.w64(RTADDR, 0x5000);
        IommuException e = assertThrows(IommuException.class, () -> r.hw.read(offset, size));
        assertEquals(Errno.EINVAL, e.errno());
        e = assertThrows(IommuException.class, () -> r.hw.write(offset, -1L, size));
        assertEquals(Errno.EINVAL, e.errno());
        // Bad writes aimed at live registers change nothing either.
        assertThrows(IommuException.class, () -> r.hw.write(GCMD, TE | SRTP | QIE, size == 4 || size == 8 ? 2 : size));
        assertThrows(IommuException.class, () -> r.hw.write(RTADDR + 2, 0x9000, size == 4 ? 4 : 8));
        assertEquals(0, r.gsts());
        assertEquals(0x5000, r.reg64(RTADDR));
    }

    /**
     * VT-d registers live in one 4 KiB page; an offset whose end overflows a {@code long} is still
     * outside it and must be rejected like any other out-of-page offset.
     */
    @ParameterizedTest
    @MethodSource("overflowingOffsets")
    void offsetsWhoseEndOverflowAreEinval(long offset, int size) {
        VtdRig r = new VtdRig();
        IommuException e = assertThrows(IommuException.class, () -> r.hw.read(offset, size),
                String.format("read of %d bytes at 0x%x", size, offset));
        assertEquals(Errno.EINVAL, e.errno());
        e = assertThrows(IommuException.class, () -> r.hw.write(offset, -1L, size),
                String.format("write of %d bytes at 0x%x", size, offset));
        assertEquals(Errno.EINVAL, e.errno());
    }

    static Stream<Arguments> overflowingOffsets() {
        return Stream.of(Arguments.of(Long.MAX_VALUE - 7, 8), Arguments.of(Long.MAX_VALUE - 3, 4));
    }

    @Test
    void lastDwordOfThePageIsAccessible() throws IommuException {
        VtdRig r = new VtdRig();
        assertEquals(0, r.hw.read(0xffc, 4));
        assertEquals(0, r.hw.read(0xff8, 8));
        r.hw.write(0xffc, 0x1234, 4);
    }
}
