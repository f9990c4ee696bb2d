package org.iommulab.smmuv3.internal.hw;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Map;

import org.iommulab.api.fault.PageResponse;
import org.iommulab.api.pasid.Pasids;
import org.iommulab.api.translation.Access;
import org.junit.jupiter.api.Test;

/**
 * The PRI queue programmed by registers only (§8): PRIQ_BASE/PROD/CONS, the 16-byte entry layout,
 * CR0.PRIQEN, IDR0.PRI, overflow, and CMD_PRI_RESP answering the device.
 */
class SmmuPriTest {
    static final int PRIQ_BASE = 0xc0;
    static final int PRIQ_PROD = 0x100c8;
    static final int PRIQ_CONS = 0x100cc;
    static final int PRIQEN = 1 << 1;
    static final long PRIQ = 0x50_0000;
    static final int SID = 3;

    private SmmuRig rig(int log2) {
        SmmuRig rig = new SmmuRig();
        rig.ram.fill(PRIQ, 4096, (byte) 0);
        rig.enable();
        rig.ste(SID, new SmmuRig.Ste(SmmuRig.CFG_BYPASS));
        rig.cr0(SmmuRig.EVTQEN | SmmuRig.CMDQEN); // queue bases change only while the queue is off
        rig.w64(PRIQ_BASE, PRIQ | log2);
        rig.w32(PRIQ_PROD, 0);
        rig.w32(PRIQ_CONS, 0);
        rig.cr0(SmmuRig.EVTQEN | SmmuRig.CMDQEN | PRIQEN | SmmuRig.SMMUEN);
        return rig;
    }

    @Test
    void pageRequestEntryLayoutAndPriResp() {
        SmmuRig rig = rig(4);
        assertEquals(1L << 16, rig.r32(SmmuRig.IDR0) & (1L << 16), "IDR0.PRI");
        assertTrue(rig.hw.pageRequest(SID, 0x2a, 0x1234_5678L, Access.WRITE | Access.PRIV, 0x1a5));
        assertEquals(1, rig.r32(PRIQ_PROD) & 0xff, "one entry queued");
        long q0 = rig.ram.read64(PRIQ);
        long q1 = rig.ram.read64(PRIQ + 8);
        assertEquals(SID, q0 & 0xffff_ffffL, "StreamID");
        assertEquals(0x2a, (q0 >>> 32) & 0xfffff, "SSID");
        assertEquals(1, q0 >>> 63, "SSV");
        assertEquals(1, (q0 >>> 62) & 1, "last in group");
        assertEquals(1, (q0 >>> 61) & 1, "write");
        assertEquals(0, (q0 >>> 60) & 1, "read");
        assertEquals(1, (q0 >>> 58) & 1, "privileged");
        assertEquals(0x1a5, q1 & 0x1ff, "PRG index");
        assertEquals(0x1234_5000L, q1 & ~0xfffL, "page address");
        assertNull(rig.hw.pageRequestStatus(SID, 0x2a, 0x1a5), "pending");
        // CMD_ATC_INV with the same field values is not a response.
        rig.cmd(0x40L | 1L << 11 | 0x2aL << 12 | (long) SID << 32, 0x1a5L | 2L << 12);
        rig.sync();
        assertNull(rig.hw.pageRequestStatus(SID, 0x2a, 0x1a5), "still pending after CMD_ATC_INV");
        // CMD_PRI_RESP: SSV 11, SSID 31:12, SID 63:32; GRPID 8:0, Resp 13:12 (2 = success).
        rig.cmd(0x41L | 1L << 11 | 0x2aL << 12 | (long) SID << 32, 0x1a5L | 2L << 12);
        rig.sync();
        assertEquals(PageResponse.SUCCESS, rig.hw.pageRequestStatus(SID, 0x2a, 0x1a5));
        assertNull(rig.hw.pageRequestStatus(SID, 0x2a, 0x1a5), "consumed");
        // Deny (Resp 0) reaches the device as INVALID.
        assertTrue(rig.hw.pageRequest(SID, Pasids.NO_PASID, 0x9000, Access.READ, 7));
        rig.cmd(0x41L | (long) SID << 32, 7L);
        rig.sync();
        assertEquals(PageResponse.INVALID, rig.hw.pageRequestStatus(SID, Pasids.NO_PASID, 7));
    }

    @Test
    void requestsNeedPriqenAndAValidStream() {
        SmmuRig rig = rig(4);
        rig.ste(4, new SmmuRig.Ste(SmmuRig.CFG_ABORT));
        assertFalse(rig.hw.pageRequest(4, Pasids.NO_PASID, 0x1000, Access.READ, 1), "aborting stream");
        rig.cr0(SmmuRig.EVTQEN | SmmuRig.CMDQEN | SmmuRig.SMMUEN);
        assertFalse(rig.hw.pageRequest(SID, Pasids.NO_PASID, 0x1000, Access.READ, 1), "PRIQEN clear");
        SmmuRig off = new SmmuRig(Map.of("pri", "false"));
        assertEquals(0, off.r32(SmmuRig.IDR0) & (1L << 16), "IDR0.PRI clear");
    }

    @Test
    void aFullQueueTogglesOverflowAndTheUnitAnswers() {
        SmmuRig rig = rig(1); // 2 entries
        assertTrue(rig.hw.pageRequest(SID, Pasids.NO_PASID, 0x1000, Access.READ, 1));
        assertTrue(rig.hw.pageRequest(SID, Pasids.NO_PASID, 0x2000, Access.READ, 2));
        assertEquals(0, rig.r32(PRIQ_PROD) & (1L << 31), "not yet overflowed");
        assertTrue(rig.hw.pageRequest(SID, Pasids.NO_PASID, 0x3000, Access.READ, 3));
        assertEquals(1L << 31, rig.r32(PRIQ_PROD) & (1L << 31), "PRIQ_PROD.OVFLG");
        assertEquals(PageResponse.SUCCESS, rig.hw.pageRequestStatus(SID, Pasids.NO_PASID, 3));
        assertNull(rig.hw.pageRequestStatus(SID, Pasids.NO_PASID, 1), "queued ones wait for software");
        // Software consumes one entry but has not acknowledged the overflow: still no new entries (§8.1).
        rig.w32(PRIQ_CONS, 1);
        assertTrue(rig.hw.pageRequest(SID, Pasids.NO_PASID, 0x4000, Access.READ, 4));
        assertEquals(PageResponse.SUCCESS, rig.hw.pageRequestStatus(SID, Pasids.NO_PASID, 4), "answered by the unit");
        assertEquals(2, rig.r32(PRIQ_PROD) & 3, "nothing written");
        // OVACKFLG = OVFLG: entries flow again.
        rig.w32(PRIQ_CONS, 1 | 1 << 31);
        assertTrue(rig.hw.pageRequest(SID, 7, 0x5000, Access.READ | Access.PRIV | Access.EXEC, 5));
        assertNull(rig.hw.pageRequestStatus(SID, 7, 5), "queued");
        assertEquals(3, rig.r32(PRIQ_PROD) & 3);
    }

    @Test
    void privAndExecNeedASubstreamId() {
        SmmuRig rig = rig(4);
        assertTrue(rig.hw.pageRequest(SID, Pasids.NO_PASID, 0x1000, Access.READ | Access.PRIV | Access.EXEC, 1));
        long q0 = rig.ram.read64(PRIQ);
        assertEquals(0, (q0 >>> 58) & 3, "Priv and Exec are 0 without SSV");
        assertEquals(1, (q0 >>> 60) & 1, "read");
    }
}
