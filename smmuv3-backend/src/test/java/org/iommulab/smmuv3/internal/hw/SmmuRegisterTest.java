package org.iommulab.smmuv3.internal.hw;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.util.Map;

import org.iommulab.api.errno.Errno;
import org.iommulab.api.errno.IommuException;
import org.junit.jupiter.api.Test;

/** ID registers from the configuration, control registers, and register access rules (§6). */
class SmmuRegisterTest {

    private static int field(long reg, int hi, int lo) {
        return (int) ((reg >>> lo) & ((1L << (hi - lo + 1)) - 1));
    }

    @Test
    void idRegistersDefaultToTheMostCapableUnit() {
        SmmuRig r = new SmmuRig();
        long idr0 = r.r32(SmmuRig.IDR0);
        assertEquals(1, field(idr0, 0, 0), "S2P");
        assertEquals(1, field(idr0, 1, 1), "S1P");
        assertEquals(2, field(idr0, 3, 2), "TTF AArch64");
        assertEquals(1, field(idr0, 4, 4), "COHACC");
        assertEquals(2, field(idr0, 7, 6), "HTTU");
        assertEquals(1, field(idr0, 12, 12), "ASID16");
        assertEquals(1, field(idr0, 16, 16), "PRI");
        assertEquals(1, field(idr0, 18, 18), "VMID16");
        assertEquals(1, field(idr0, 19, 19), "CD2L");
        assertEquals(2, field(idr0, 22, 21), "TTENDIAN little");
        assertEquals(1, field(idr0, 28, 27), "ST_LEVEL two-level");
        long idr1 = r.r32(SmmuRig.IDR1);
        assertEquals(16, field(idr1, 5, 0));
        assertEquals(20, field(idr1, 10, 6));
        assertEquals(8, field(idr1, 20, 16));
        assertEquals(8, field(idr1, 25, 21));
        assertEquals(1, field(r.r32(SmmuRig.IDR3), 10, 10), "RIL");
        long idr5 = r.r32(SmmuRig.IDR5);
        assertEquals(5, field(idr5, 2, 0));
        assertEquals(7, field(idr5, 6, 4));
        // 64-bit read of IDR0/IDR1 together.
        assertEquals(idr0 | idr1 << 32, r.r64(SmmuRig.IDR0));
    }

    @Test
    void idRegistersFollowTheConfiguration() {
        SmmuRig r = new SmmuRig(Map.of("sidsize", "8", "ssidsize", "0", "oas", "40", "granules", "4k,64k", "stage2", "false",
                "two-level-stream-table", "false", "asid16", "false", "vmid16", "false", "cmdq-log2size", "5",
                "eventq-log2size", "3"));
        long idr0 = r.r32(SmmuRig.IDR0);
        assertEquals(0, field(idr0, 0, 0));
        assertEquals(1, field(idr0, 1, 1));
        assertEquals(0, field(idr0, 12, 12));
        assertEquals(0, field(idr0, 18, 18));
        assertEquals(0, field(idr0, 28, 27));
        long idr1 = r.r32(SmmuRig.IDR1);
        assertEquals(8, field(idr1, 5, 0));
        assertEquals(0, field(idr1, 10, 6));
        assertEquals(3, field(idr1, 20, 16));
        assertEquals(5, field(idr1, 25, 21));
        long idr5 = r.r32(SmmuRig.IDR5);
        assertEquals(2, field(idr5, 2, 0));
        assertEquals(0b101, field(idr5, 6, 4));
    }

    @Test
    void badConfigurationIsEinval() {
        for (Map<String, String> bad : new Map[] {Map.of("nope", "1"), Map.of("oas", "41"), Map.of("sidsize", "33"),
                Map.of("granules", "8k"), Map.of("stage1", "maybe"), Map.of("config-cache-size", "100"),
                Map.of("stage1", "false", "stage2", "false")}) {
            IommuException e = assertThrows(IommuException.class, () -> SmmuConfig.of(bad), bad::toString);
            assertEquals(Errno.EINVAL, e.errno());
        }
    }

    @Test
    void badAccessesAreEinval() {
        SmmuRig r = new SmmuRig();
        for (long[] a : new long[][] {{0x2, 4}, {0x4, 8}, {0x20000, 4}, {0x1fffc, 8}, {-4, 4}, {0x20, 2}}) {
            IommuException e = assertThrows(IommuException.class, () -> r.hw.read(a[0], (int) a[1]));
            assertEquals(Errno.EINVAL, e.errno());
            e = assertThrows(IommuException.class, () -> r.hw.write(a[0], 0, (int) a[1]));
            assertEquals(Errno.EINVAL, e.errno());
        }
    }

    @Test
    void reservedReadZeroAndReadOnlyIgnoresWrites() {
        SmmuRig r = new SmmuRig();
        assertEquals(0, r.r64(0x1000));
        assertEquals(0, r.r32(0x1fffc));
        long idr0 = r.r32(SmmuRig.IDR0);
        r.w32(SmmuRig.IDR0, 0);
        r.w32(0x1000, 0x1234);
        assertEquals(idr0, r.r32(SmmuRig.IDR0));
        assertEquals(0, r.r32(0x1000));
        r.w32(SmmuRig.CR0ACK, 0xf);
        assertEquals(0, r.r32(SmmuRig.CR0ACK));
        r.w32(SmmuRig.GERROR, 1);
        assertEquals(0, r.r32(SmmuRig.GERROR));
    }

    @Test
    void cr0AckMirrorsCr0AndStrtabIsLockedWhileEnabled() {
        SmmuRig r = new SmmuRig();
        r.w64(SmmuRig.STRTAB_BASE, 0x12_3440L | 0x3f);
        assertEquals(0x12_3440L, r.r64(SmmuRig.STRTAB_BASE), "ADDR 51:6");
        r.w32(SmmuRig.STRTAB_BASE_CFG, 8 | 6 << 6 | 1 << 16);
        assertEquals(8 | 6 << 6 | 1 << 16, r.r32(SmmuRig.STRTAB_BASE_CFG));
        r.cr0(SmmuRig.SMMUEN | SmmuRig.EVTQEN);
        r.w64(SmmuRig.STRTAB_BASE, 0x40_0000);
        assertEquals(0x12_3440L, r.r64(SmmuRig.STRTAB_BASE), "ignored while SMMUEN");
        r.cr0(0);
    }

    @Test
    void queueBaseAndIndexRegisters() {
        SmmuRig r = new SmmuRig();
        r.w64(SmmuRig.CMDQ_BASE, 0x20_0000L | 3);
        assertEquals(0x20_0000L | 3, r.r64(SmmuRig.CMDQ_BASE));
        r.w32(SmmuRig.CMDQ_CONS, 0xff);
        assertEquals(0xff, r.r32(SmmuRig.CMDQ_CONS), "writable while CMDQEN is clear");
        r.w32(SmmuRig.CMDQ_CONS, 0);
        r.w32(SmmuRig.CMDQ_PROD, 0xff);
        assertEquals(0xf, r.r32(SmmuRig.CMDQ_PROD), "index and wrap bit of a 2^3 queue");
        r.w32(SmmuRig.CMDQ_PROD, 0);
        // PRIQ registers are plain storage.
        r.w64(0xc0, 0x50_0000L | 4);
        assertEquals(0x50_0000L | 4, r.r64(0xc0));
        r.w32(0x100cc, 3);
        assertEquals(3, r.r32(0x100cc));
        // Event queue: PROD owned by the unit while enabled.
        r.w64(SmmuRig.EVENTQ_BASE, SmmuRig.EVENTQ | 2);
        r.w32(SmmuRig.EVENTQ_PROD, 3);
        assertEquals(3, r.r32(SmmuRig.EVENTQ_PROD));
        r.cr0(SmmuRig.EVTQEN);
        r.w32(SmmuRig.EVENTQ_PROD, 0);
        assertEquals(3, r.r32(SmmuRig.EVENTQ_PROD));
        r.w64(SmmuRig.EVENTQ_BASE, 0);
        assertEquals(SmmuRig.EVENTQ | 2, r.r64(SmmuRig.EVENTQ_BASE), "base ignored while enabled");
    }
}
