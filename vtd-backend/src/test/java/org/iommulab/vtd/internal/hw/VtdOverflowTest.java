package org.iommulab.vtd.internal.hw;

import static org.iommulab.vtd.internal.hw.VtdRig.FSTS;
import static org.iommulab.vtd.internal.hw.VtdRig.PFO;
import static org.iommulab.vtd.internal.hw.VtdRig.PPF;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.HashSet;
import java.util.Set;
import java.util.stream.IntStream;

import org.iommulab.api.fault.PageResponse;
import org.iommulab.api.translation.Access;
import org.junit.jupiter.api.Test;

/**
 * Queue overflows under abuse, from several threads at once, programmed by registers only. The
 * single-threaded behaviour is in {@link VtdFaultTest} (FSTS.PFO, §7.2.1, §11.4.9.1) and
 * {@link VtdPageRequestTest} (PRS.PRO, §7.5); here many requesters overrun the primary fault log
 * and the page request queue together: every fault is recorded once or dropped and counted, no
 * record or queued descriptor is overwritten or torn, every page request the queue cannot take is
 * answered by the unit (Success, so the device retries) and writes nothing, and both logs work
 * again once software has serviced them.
 */
class VtdOverflowTest {
    static final int THREADS = 4;
    static final int PQH = VtdPageRequestTest.PQH;
    static final int PQT = VtdPageRequestTest.PQT;
    static final int PQA = VtdPageRequestTest.PQA;
    static final int PRS = VtdPageRequestTest.PRS;
    static final int SID = VtdPageRequestTest.SID;
    static final long PRQ = 0x7_0000;

    private interface Worker {
        void run(int thread, int i);
    }

    /**
     * Steps {@code (t, i)}, {@code i < perThread}, spread over the common pool's workers and the
     * calling thread (every core of the machine) in no set order; the first failure is rethrown.
     */
    private static void hammer(int perThread, Worker w) {
        IntStream.range(0, THREADS * perThread).parallel().forEach(k -> w.run(k % THREADS, k / THREADS));
    }

    /** Source id and page of fault {@code i} of thread {@code t}: each pair names one request. */
    private static int faultSid(int t, int i) {
        return 0x0700 + t * 0x40 + (i & 0x3f);
    }

    private static long faultPage(int t, int i) {
        return ((long) t << 24) | ((long) i << 12);
    }

    @Test
    void concurrentFaultsFillEachRecordOnceAndTheRestSetPfo() throws Exception {
        VtdRig r = new VtdRig();
        r.enable();
        int perThread = 50;
        hammer(perThread, (t, i) -> VtdRig.assertFault(r.translate(faultSid(t, i), -1, faultPage(t, i), Access.READ), 0x39));
        int total = THREADS * perThread;
        assertEquals(VtdReg.NFR, r.pendingRecords(), "every record holds a fault");
        assertEquals(PFO | PPF, r.fsts() & (PFO | PPF), "FSTS.PFO and PPF");
        assertEquals(VtdReg.NFR, r.hw.statistics().get("faults-recorded"));
        assertEquals(total - VtdReg.NFR, r.hw.statistics().get("faults-dropped"), "every other fault dropped and counted");
        Set<Long> seen = new HashSet<>();
        for (int k = 0; k < VtdReg.NFR; k++) {
            int sid = (int) (r.frHi(k) & 0xffff);
            long page = r.frLo(k) & ~0xfffL;
            int t = (int) (page >>> 24);
            int i = (int) ((page >>> 12) & 0xfff);
            assertTrue(t < THREADS && i < perThread && faultSid(t, i) == sid,
                    String.format("record %d (SID 0x%x, page 0x%x) is no request that was made", k, sid, page));
            assertTrue(seen.add(page), "two records of one fault");
        }
        // Software services the log: every record, then PFO; recording resumes.
        for (int k = 0; k < VtdReg.NFR; k++) {
            r.clearRecord(k);
        }
        r.w32(FSTS, PFO);
        assertEquals(0, r.fsts() & (PFO | PPF));
        VtdRig.assertFault(r.translate(0x0600, -1, 0xabc000, Access.READ), 0x39);
        assertEquals(1, r.pendingRecords());
        assertEquals(0, r.fsts() & PFO);
    }

    private static VtdRig pageRequestRig() {
        VtdRig rig = new VtdRig();
        rig.zero(PRQ, 4096);
        rig.enable();
        rig.smContext(SID, 0, 0, VtdRig.CTX_PASIDE | VtdPageRequestTest.PRE);
        rig.w64(PQA, PRQ); // one 4 KiB page: 128 descriptors, 127 usable
        rig.w64(PQH, 0);
        return rig;
    }

    /**
     * Threads send 240 page requests, each with its own PASID, group and page, at a queue with room
     * for 127: exactly 127 are queued intact, PRS.PRO is set, the slot at PQT stays untouched, and
     * each of the other 113 is answered Success by the unit while the queued ones wait for
     * software. Once software consumed the queue and cleared PRO, requests are queued again.
     */
    @Test
    void concurrentPageRequestsNeverOverwriteAQueuedOneAndTheRestAreAnswered() throws Exception {
        VtdRig rig = pageRequestRig();
        int perThread = 60;
        hammer(perThread, (t, i) -> assertTrue(rig.hw.pageRequest(SID, 1 + t, ((long) t << 24) | ((long) i << 12),
                Access.READ, i)));
        int total = THREADS * perThread;
        int slots = 4096 / 32 - 1;
        assertEquals(32L * slots, rig.reg64(PQT), "the queue filled up to the slot before PQH");
        assertEquals(2, rig.reg32(PRS) & 2, "PRS.PRO");
        assertEquals(0, rig.mem.read64(PRQ + 32L * slots), "the unit wrote nothing past the full queue");
        assertEquals((long) total, rig.hw.statistics().get("page-requests"));
        assertEquals((long) total - slots, rig.hw.statistics().get("page-request-overflows"));
        Set<Long> queued = new HashSet<>();
        for (int k = 0; k < slots; k++) {
            long q0 = rig.mem.read64(PRQ + 32L * k);
            long q1 = rig.mem.read64(PRQ + 32L * k + 8);
            int pasid = (int) (q0 >>> 32) & 0xfffff;
            int group = (int) (q1 >>> 3) & 0x1ff;
            long page = q1 & ~0xfffL;
            assertEquals(1, q0 & 0xff, "descriptor " + k + ": a page request");
            assertEquals(((long) (pasid - 1) << 24) | ((long) group << 12), page,
                    String.format("descriptor %d (PASID %d, group %d, page 0x%x) is torn or was never sent", k, pasid, group, page));
            assertTrue(queued.add(page), "descriptor " + k + " queued twice");
        }
        for (int t = 0; t < THREADS; t++) {
            for (int i = 0; i < perThread; i++) {
                PageResponse answer = rig.hw.pageRequestStatus(SID, 1 + t, i);
                if (queued.contains(((long) t << 24) | ((long) i << 12))) {
                    assertNull(answer, "a queued request waits for software");
                } else {
                    assertEquals(PageResponse.SUCCESS, answer, "the unit answered the request it dropped");
                }
            }
        }
        // Software consumes everything and clears PRO: the queue takes requests again.
        rig.w64(PQH, rig.reg64(PQT));
        rig.w32(PRS, 3);
        assertEquals(0, rig.reg32(PRS) & 3);
        assertTrue(rig.hw.pageRequest(SID, 9, 0x5000, Access.WRITE, 7));
        assertNull(rig.hw.pageRequestStatus(SID, 9, 7), "queued");
        assertEquals(0, rig.reg64(PQT), "PQT wrapped to the first slot");
        assertEquals(0, rig.reg32(PRS) & 2, "no new overflow");
    }
}
