package org.iommulab.vtd.internal.hw;

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
 * The page request queue programmed by registers only (VT-d §7.5): PQA/PQH/PQT, the 256-bit page
 * request descriptor layout, PRS and PECTL, and page group responses written as type-9
 * descriptors on the invalidation queue.
 */
class VtdPageRequestTest {
    static final int PQH = 0xc0;
    static final int PQT = 0xc8;
    static final int PQA = 0xd0;
    static final int PRS = 0xdc;
    static final int PECTL = 0xe0;
    static final int SID = 0x0210;
    static final long PRE = 1L << 4;

    private VtdRig rigWithPageRequests(long prq) {
        VtdRig rig = new VtdRig();
        rig.zero(prq, 4096);
        rig.enable();
        rig.smContext(SID, 0, 0, VtdRig.CTX_PASIDE | PRE);
        rig.w64(PQA, prq);
        rig.w64(PQH, 0);
        return rig;
    }

    @Test
    void pageRequestDescriptorLayoutAndResponse() {
        long prq = 0x7_0000;
        VtdRig rig = rigWithPageRequests(prq);
        assertEquals(1L << 29, rig.reg64(0x10) & (1L << 29), "ECAP.PRS");
        assertTrue(rig.hw.pageRequest(SID, 9, 0x1234_5678L, Access.WRITE | Access.PRIV, 0x1a5));
        assertEquals(32, rig.reg64(PQT), "one 32-byte descriptor queued");
        long q0 = rig.mem.read64(prq);
        long q1 = rig.mem.read64(prq + 8);
        assertEquals(1, q0 & 0xff, "type: page request");
        assertEquals(1, (q0 >>> 8) & 1, "PASID present");
        assertEquals(SID, (q0 >>> 16) & 0xffff, "RID");
        assertEquals(9, (q0 >>> 32) & 0xfffff, "PASID");
        assertEquals(1, (q0 >>> 53) & 1, "PM: privileged");
        assertEquals(0, q1 & 1, "RDR");
        assertEquals(1, (q1 >>> 1) & 1, "WRR");
        assertEquals(1, (q1 >>> 2) & 1, "LPIG");
        assertEquals(0x1a5, (q1 >>> 3) & 0x1ff, "PRG index");
        assertEquals(0x1234_5000L, q1 & ~0xfffL, "page address");
        assertEquals(1, rig.reg32(PRS) & 1, "PRS.PPR");
        assertEquals(1L << 30, rig.reg32(PECTL) & (1L << 30), "PECTL.IP: the event is pending while masked");

        assertNull(rig.hw.pageRequestStatus(SID, 9, 0x1a5));
        // Page group response: type 9, PASID present (4), response code 15:12, RID 31:16, PASID 51:32;
        // LPIG (66) and PRG index 75:67.
        long r0 = 0x9L | (1L << 4) | (0x1L << 12) | ((long) SID << 16) | (9L << 32);
        long r1 = (1L << 2) | (0x1a5L << 3);
        rig.submit(new long[] {r0, r1, 0, 0});
        assertEquals(PageResponse.INVALID, rig.hw.pageRequestStatus(SID, 9, 0x1a5));

        rig.w64(PQH, 32); // software consumed the descriptor
        rig.w32(PRS, 1); // PPR is write-1-to-clear
        assertEquals(0, rig.reg32(PRS) & 1);
        assertEquals(0, rig.reg32(PECTL) & (1L << 30), "nothing left to report: IP cleared");
    }

    @Test
    void pageRequestsNeedPreAndAQueue() {
        VtdRig rig = new VtdRig();
        rig.enable();
        rig.smContext(SID, 0, 0, VtdRig.CTX_PASIDE); // no PRE
        rig.w64(PQA, 0x7_0000);
        assertFalse(rig.hw.pageRequest(SID, Pasids.NO_PASID, 0x1000, Access.READ, 1));
        VtdRig noQueue = new VtdRig();
        noQueue.enable();
        noQueue.smContext(SID, 0, 0, VtdRig.CTX_PASIDE | PRE);
        assertFalse(noQueue.hw.pageRequest(SID, Pasids.NO_PASID, 0x1000, Access.READ, 1));
        VtdRig off = new VtdRig(Map.of("prs", "false"));
        assertEquals(0, off.reg64(0x10) & (1L << 29), "ECAP.PRS clear");
    }

    @Test
    void aFullQueueOverflowsAndTheUnitAnswersSuccess() {
        long prq = 0x7_0000;
        VtdRig rig = rigWithPageRequests(prq);
        for (int g = 0; g < 127; g++) {
            assertTrue(rig.hw.pageRequest(SID, Pasids.NO_PASID, 0x1000L * g, Access.READ, g));
        }
        assertEquals(0, rig.reg32(PRS) & 2, "127 of 128 slots used: no overflow yet");
        assertTrue(rig.hw.pageRequest(SID, Pasids.NO_PASID, 0x80_0000, Access.READ, 200));
        assertEquals(2, rig.reg32(PRS) & 2, "PRS.PRO");
        assertEquals(PageResponse.SUCCESS, rig.hw.pageRequestStatus(SID, Pasids.NO_PASID, 200),
                "the unit answered the request it could not queue, so the device retries");
        assertNull(rig.hw.pageRequestStatus(SID, Pasids.NO_PASID, 3), "queued ones wait for software");
    }
}
