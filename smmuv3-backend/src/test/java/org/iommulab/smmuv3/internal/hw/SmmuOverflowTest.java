package org.iommulab.smmuv3.internal.hw;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.stream.IntStream;

import org.iommulab.api.fault.PageResponse;
import org.iommulab.api.translation.Access;
import org.junit.jupiter.api.Test;

/**
 * Event queue and PRI queue overflow under abuse, from several threads at once, programmed by
 * registers only. The single-threaded behaviour is in {@link SmmuEventTest} (EVENTQ_PROD.OVFLG,
 * §7.4) and {@link SmmuPriTest} (PRIQ_PROD.OVFLG, §8.1); here many streams overrun both queues
 * together: exactly the queue's capacity is written, intact and once each, OVFLG toggles once per
 * overflow condition, every other event is lost and counted, every PRI request that is not queued is
 * answered by the SMMU itself (Success, so the device retries) and writes nothing, no PRI entry is
 * written while the overflow is unacknowledged, and both queues flow again once software consumed
 * them and acknowledged the overflow.
 */
class SmmuOverflowTest {
    static final int THREADS = 4;
    static final int RW = Access.READ | Access.WRITE;

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

    /** Stream ids beyond a 4-entry stream table: each translation records one C_BAD_STREAMID. */
    private static int badStream(int round, int t, int i) {
        return 0x1000 * (round + 1) + 0x100 * t + i;
    }

    @Test
    void concurrentEventsFillTheQueueOnceToggleOvflgOnceAndTheRestAreLost() throws Exception {
        SmmuRig r = new SmmuRig();
        r.eventqLog2 = 3; // 8 records
        r.enable(2);
        int perThread = 30;
        for (int round = 0; round < 2; round++) {
            int n = round;
            long eventsBefore = r.hw.statistics().get("events");
            long droppedBefore = r.hw.statistics().get("events-dropped");
            hammer(perThread, (t, i) -> r.translate(badStream(n, t, i), -1, 0, RW));
            long prod = r.r32(SmmuRig.EVENTQ_PROD);
            // Round 0 starts with OVFLG = OVACKFLG = 0 and toggles it to 1; round 1, acknowledged, back to 0.
            assertEquals(round == 0 ? 1 : 0, prod >>> 31, "OVFLG toggled once for the overflow of round " + round);
            assertEquals(8, r.hw.statistics().get("events") - eventsBefore, "exactly the queue's 8 records written");
            assertEquals(THREADS * perThread - 8, r.hw.statistics().get("events-dropped") - droppedBefore,
                    "every other event lost and counted");
            List<SmmuRig.Event> events = r.events();
            assertEquals(8, events.size());
            Set<Integer> sids = new HashSet<>();
            for (SmmuRig.Event e : events) {
                int t = (e.sid >>> 8) & 0xf;
                int i = e.sid & 0xff;
                assertEquals(SmmuEvent.C_BAD_STREAMID.code, e.type, e.toString());
                assertTrue(t < THREADS && i < perThread && e.sid == badStream(round, t, i), "a record of no request made: " + e);
                assertTrue(sids.add(e.sid), "recorded twice: " + e);
            }
            // Consumed (SmmuRig.events moved CONS); acknowledge the overflow: OVACKFLG = OVFLG.
            r.w32(SmmuRig.EVENTQ_CONS, r.r32(SmmuRig.EVENTQ_CONS) & 0x7fff_ffffL | prod & 1L << 31);
        }
    }

    private static final long PRIQ = SmmuPriTest.PRIQ;
    private static final int SID = SmmuPriTest.SID;

    /** A 4-entry PRI queue, enabled with the SMMU, as {@link SmmuPriTest} programs it. */
    private static SmmuRig priRig() {
        SmmuRig rig = new SmmuRig();
        rig.ram.fill(PRIQ, 4096, (byte) 0);
        rig.enable();
        rig.ste(SID, new SmmuRig.Ste(SmmuRig.CFG_BYPASS));
        rig.cr0(SmmuRig.EVTQEN | SmmuRig.CMDQEN);
        rig.w64(SmmuPriTest.PRIQ_BASE, PRIQ | 2);
        rig.w32(SmmuPriTest.PRIQ_PROD, 0);
        rig.w32(SmmuPriTest.PRIQ_CONS, 0);
        rig.cr0(SmmuRig.EVTQEN | SmmuRig.CMDQEN | SmmuPriTest.PRIQEN | SmmuRig.SMMUEN);
        return rig;
    }

    private static long page(int t, int i) {
        return ((long) t << 24) | ((long) i << 12);
    }

    @Test
    void concurrentPriRequestsQueueFourIntactAndTheSmmuAnswersTheRest() throws Exception {
        SmmuRig rig = priRig();
        int perThread = 25;
        hammer(perThread, (t, i) -> assertTrue(rig.hw.pageRequest(SID, 1 + t, page(t, i), Access.READ, i)));
        long prod = rig.r32(SmmuPriTest.PRIQ_PROD);
        assertEquals(1L << 31 | 0b100, prod, "full (wrap set, index 0) with OVFLG set");
        assertEquals((long) THREADS * perThread - 4, rig.hw.statistics().get("page-request-overflows"));
        assertEquals(0, rig.ram.read64(PRIQ + 16 * 4), "nothing written past the queue");
        Set<Long> queued = new HashSet<>();
        for (int k = 0; k < 4; k++) {
            long q0 = rig.ram.read64(PRIQ + 16L * k);
            long q1 = rig.ram.read64(PRIQ + 16L * k + 8);
            int ssid = (int) (q0 >>> 32) & 0xfffff;
            int group = (int) (q1 & 0x1ff);
            long address = q1 & ~0xfffL;
            assertEquals(SID, q0 & 0xffff_ffffL);
            assertEquals(page(ssid - 1, group), address,
                    String.format("entry %d (SSID %d, group %d, page 0x%x) is torn or was never sent", k, ssid, group, address));
            assertTrue(queued.add(address), "entry " + k + " queued twice");
        }
        for (int t = 0; t < THREADS; t++) {
            for (int i = 0; i < perThread; i++) {
                PageResponse answer = rig.hw.pageRequestStatus(SID, 1 + t, i);
                if (queued.contains(page(t, i))) {
                    assertNull(answer, "a queued request waits for software");
                } else {
                    assertEquals(PageResponse.SUCCESS, answer, "the SMMU answered the request it could not queue");
                }
            }
        }
        // Consumed but not acknowledged: the overflow still inhibits new entries (§8.1).
        rig.w32(SmmuPriTest.PRIQ_CONS, 0b100);
        hammer(3, (t, i) -> assertTrue(rig.hw.pageRequest(SID, 10 + t, page(t, 100 + i), Access.WRITE, 100 + i)));
        assertEquals(prod, rig.r32(SmmuPriTest.PRIQ_PROD), "nothing written while the overflow is unacknowledged");
        for (int t = 0; t < THREADS; t++) {
            for (int i = 0; i < 3; i++) {
                assertEquals(PageResponse.SUCCESS, rig.hw.pageRequestStatus(SID, 10 + t, 100 + i));
            }
        }
        // Acknowledged: exactly the queue's capacity flows again, then it overflows anew.
        rig.w32(SmmuPriTest.PRIQ_CONS, 0b100 | 1L << 31);
        hammer(1, (t, i) -> assertTrue(rig.hw.pageRequest(SID, 20 + t, page(t, 200 + i), Access.READ, 200 + i)));
        assertEquals(1L << 31 | 0b000, rig.r32(SmmuPriTest.PRIQ_PROD), "four more queued (wrapped), no new overflow yet");
        for (int t = 0; t < THREADS; t++) {
            assertNull(rig.hw.pageRequestStatus(SID, 20 + t, 200), "queued, waiting for software");
        }
        rig.hw.pageRequest(SID, 30, 0x9000, Access.READ, 300);
        assertEquals(0b000, rig.r32(SmmuPriTest.PRIQ_PROD), "the next overflow toggles OVFLG back");
        assertEquals(PageResponse.SUCCESS, rig.hw.pageRequestStatus(SID, 30, 300));
    }
}
