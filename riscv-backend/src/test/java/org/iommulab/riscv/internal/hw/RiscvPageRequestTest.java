package org.iommulab.riscv.internal.hw;

import static org.iommulab.riscv.internal.hw.RiscvRig.*;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import java.util.Map;

import org.iommulab.api.fault.PageResponse;
import org.iommulab.api.pasid.Pasids;
import org.iommulab.api.translation.Access;
import org.junit.jupiter.api.Test;

/** Page requests ("PCIe ATS Page Request handling", §3.3) and their answers (ATS.PRGR, §3.1.4). */
class RiscvPageRequestTest {
    static final int NP = Pasids.NO_PASID;
    static final int RW = Access.READ | Access.WRITE;

    final RiscvRig rig = new RiscvRig();

    private long[] record(int index) {
        long a = PQ + 16L * index;
        return new long[] {rig.ram.read64(a), rig.ram.read64(a + 8)};
    }

    @Test
    void aPageRequestIsQueuedAndAnsweredByAtsPrgr() {
        rig.enable();
        rig.dc(0x42, V | EN_ATS | EN_PRI, 0, 0, 0);
        rig.interrupts.clear();
        assertTrue(rig.hw.pageRequest(0x42, 0x1_2345, 0xdead_beef_f123L, RW | Access.PRIV | Access.EXEC, 0x1a5));
        assertEquals(1, rig.r32(PQT));
        assertEquals(List.of(PIP), rig.interrupts);
        assertEquals(PIP, rig.r32(IPSR) & PIP);
        long[] r = record(0);
        assertEquals(0x1_2345, (r[0] >>> 12) & 0xfffff, "PID");
        assertEquals(1, (r[0] >>> 32) & 1, "PV");
        assertEquals(1, (r[0] >>> 33) & 1, "PRIV");
        assertEquals(1, (r[0] >>> 34) & 1, "EXEC");
        assertEquals(0x42, r[0] >>> 40, "DID");
        assertEquals(0, r[0] & 0xfff | (r[0] >>> 35 & 0x1f), "reserved fields 0");
        assertEquals(0xdead_beef_f000L | 1 | 2 | 4 | 0x1a5L << 3, r[1], "page address, R, W, L, PRGI");
        assertNull(rig.hw.pageRequestStatus(0x42, 0x1_2345, 0x1a5), "waiting for software");

        rig.command(prgr(0x42, 0x1_2345), prgrPayload(0x1a5, 0));
        assertEquals(PageResponse.SUCCESS, rig.hw.pageRequestStatus(0x42, 0x1_2345, 0x1a5));
        assertNull(rig.hw.pageRequestStatus(0x42, 0x1_2345, 0x1a5), "consumed");

        // Without a PASID: PV, PRIV, EXEC read 0; Invalid Request and Response Failure codes.
        assertTrue(rig.hw.pageRequest(0x42, NP, 0x5000, Access.READ | Access.PRIV, 3));
        r = record(1);
        assertEquals(0, r[0] & (0xfffffL << 12 | 7L << 32));
        assertEquals(0x5000 | 1 | 4 | 3 << 3, r[1]);
        rig.command(prgr(0x42, -1), prgrPayload(3, 1));
        assertEquals(PageResponse.INVALID, rig.hw.pageRequestStatus(0x42, NP, 3));
        assertTrue(rig.hw.pageRequest(0x42, 7, 0x5000, Access.READ, 4));
        rig.command(prgr(0x42, 7), prgrPayload(4, 0xf));
        assertEquals(PageResponse.FAILURE, rig.hw.pageRequestStatus(0x42, 7, 4));
        // A response without PASID to a group that had one: the function matches the index.
        assertTrue(rig.hw.pageRequest(0x42, 9, 0x5000, Access.READ, 5));
        rig.command(prgr(0x42, -1), prgrPayload(5, 0));
        assertEquals(PageResponse.SUCCESS, rig.hw.pageRequestStatus(0x42, 9, 5));
        // A response nobody waits for is ignored.
        rig.command(prgr(0x42, 9), prgrPayload(6, 0));
        assertNull(rig.hw.pageRequestStatus(0x42, 9, 6));
        assertEquals(0, rig.r32(CQCSR) & CMD_ILL);
    }

    @Test
    void theUnitAnswersWhatItCannotQueue() {
        rig.enable();
        rig.dc(1, V | EN_ATS, 0, 0, 0); // EN_PRI 0
        rig.dc(2, 0, 0, 0, 0); // not valid
        rig.dc(3, V | EN_ATS | EN_PRI, 0, 0, 0);
        assertTrue(rig.hw.pageRequest(1, NP, 0x1000, Access.READ, 1));
        assertEquals(PageResponse.INVALID, rig.hw.pageRequestStatus(1, NP, 1), "EN_PRI 0: Invalid Request");
        assertTrue(rig.hw.pageRequest(2, NP, 0x1000, Access.READ, 1));
        assertEquals(PageResponse.FAILURE, rig.hw.pageRequestStatus(2, NP, 1), "DC not valid: Response Failure");
        assertTrue(rig.hw.pageRequest(0x1_0000, NP, 0x1000, Access.READ, 1));
        assertEquals(PageResponse.INVALID, rig.hw.pageRequestStatus(0x1_0000, NP, 1), "device_id too wide");
        assertEquals(0, rig.r32(PQT), "nothing queued");
        assertEquals(List.of(), rig.faults(), "no fault records for page requests");
        // Queue off: Response Failure.
        rig.w32(PQCSR, 0);
        assertTrue(rig.hw.pageRequest(3, 5, 0x1000, Access.READ, 2));
        assertEquals(PageResponse.FAILURE, rig.hw.pageRequestStatus(3, 5, 2));
        // Bare and Off.
        rig.ddtp(BARE);
        assertTrue(rig.hw.pageRequest(3, 5, 0x1000, Access.READ, 2));
        assertEquals(PageResponse.INVALID, rig.hw.pageRequestStatus(3, 5, 2));
        rig.ddtp(OFF);
        assertTrue(rig.hw.pageRequest(3, 5, 0x1000, Access.READ, 2));
        assertEquals(PageResponse.FAILURE, rig.hw.pageRequestStatus(3, 5, 2));
        // A Stop Marker gets no answer.
        assertTrue(rig.hw.pageRequest(3, 5, 0x1000, 0, 7));
        assertNull(rig.hw.pageRequestStatus(3, 5, 7));
    }

    @Test
    void aFullQueueSetsPqofAndAnswersSuccess() {
        rig.pqLog2 = 1; // two entries: one request fills it
        rig.enable();
        rig.dc(3, V | EN_ATS | EN_PRI, 0, 0, 0);
        assertTrue(rig.hw.pageRequest(3, NP, 0x1000, Access.READ, 1));
        assertEquals(1, rig.r32(PQT));
        rig.interrupts.clear();
        rig.w32(IPSR, PIP);
        assertTrue(rig.hw.pageRequest(3, NP, 0x2000, Access.READ, 2));
        assertEquals(OF, rig.r32(PQCSR) & OF, "pqof");
        assertEquals(PageResponse.SUCCESS, rig.hw.pageRequestStatus(3, NP, 2), "the device retries");
        assertEquals(List.of(PIP), rig.interrupts);
        rig.w32(PQH, 1); // software consumed the record, but pqof still discards
        assertTrue(rig.hw.pageRequest(3, NP, 0x3000, Access.READ, 3));
        assertEquals(PageResponse.SUCCESS, rig.hw.pageRequestStatus(3, NP, 3));
        assertEquals(1, rig.r32(PQT));
        rig.w32(PQCSR, OF | EN | IE); // clear pqof
        assertTrue(rig.hw.pageRequest(3, NP, 0x4000, Access.READ, 4));
        assertEquals(0, rig.r32(PQT), "queued again (index wrapped)");
        assertNull(rig.hw.pageRequestStatus(3, NP, 4));
        assertEquals(0x4000 | 1 | 4 | 4 << 3, record(1)[1]);
    }

    @Test
    void queueMemoryThatFaultsSetsPqmf() {
        rig.enable();
        rig.dc(3, V | EN_ATS | EN_PRI, 0, 0, 0);
        rig.w32(PQCSR, 0);
        rig.w64(PQB, (1L << 52 - 12) << 10); // beyond PAS
        rig.w32(PQCSR, EN | IE);
        assertTrue(rig.hw.pageRequest(3, NP, 0x1000, Access.READ, 1));
        assertEquals(MF, rig.r32(PQCSR) & MF);
        assertEquals(PageResponse.FAILURE, rig.hw.pageRequestStatus(3, NP, 1));
    }

    @Test
    void withoutAtsThereAreNoPageRequests() {
        RiscvRig r = new RiscvRig(Map.of("ats", "false"));
        r.enable();
        assertFalse(r.hw.pageRequest(1, NP, 0, Access.READ, 1));
        r.w64(PQB, PQ >>> 2);
        r.w32(PQCSR, EN);
        assertEquals(0, r.r64(PQB), "no page-request queue registers");
        assertEquals(0, r.r32(PQCSR));
    }
}
