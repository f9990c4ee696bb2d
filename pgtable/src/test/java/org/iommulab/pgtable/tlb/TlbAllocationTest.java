package org.iommulab.pgtable.tlb;

import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.lang.management.ManagementFactory;

import org.junit.jupiter.api.Test;

/**
 * Checks that the hot paths allocate nothing, using the JDK's per-thread allocation counter. An
 * allocation of even one small object per call would show up as megabytes over the loops here,
 * so the few hundred bytes of slack only absorb the measuring itself.
 */
class TlbAllocationTest {
    private static final int CALLS = 100_000;
    private static final long SLACK = 1024;

    private static com.sun.management.ThreadMXBean threads() {
        java.lang.management.ThreadMXBean bean = ManagementFactory.getThreadMXBean();
        assumeTrue(bean instanceof com.sun.management.ThreadMXBean, "no allocation counter");
        com.sun.management.ThreadMXBean threads = (com.sun.management.ThreadMXBean) bean;
        assumeTrue(threads.isThreadAllocatedMemorySupported() && threads.isThreadAllocatedMemoryEnabled(),
                "allocation counter disabled");
        return threads;
    }

    private static void lookups(Tlb tlb, TlbHit hit) {
        for (int i = 0; i < CALLS; i++) {
            // Hits in 4K and 2M pages and misses, leaf and non-leaf.
            tlb.lookup(1, i & 3, (long) (i & 1023) << 12, (i & 4) == 0, hit);
        }
    }

    private static void churn(Tlb tlb) {
        for (int i = 0; i < CALLS; i++) {
            long va = (long) (i & 8191) << 12;
            tlb.insert(1 + (i & 7), i & 3, va, 12, va, 3, 0, true);
            if ((i & 15) == 0) {
                tlb.invalidateRange(1 + (i & 7), i & 3, va, 0x4000, (i & 16) == 0);
            }
            if ((i & 1023) == 0) {
                tlb.invalidateTag(2, 1); // frees a space that the next inserts recreate
                tlb.invalidateTag1(3);
                tlb.invalidateRangeAnyTag2(4, 0, -1L, false);
            }
        }
    }

    @Test
    void lookupAllocatesNothing() {
        com.sun.management.ThreadMXBean threads = threads();
        Tlb tlb = new Tlb("t", 4096);
        for (int i = 0; i < 1024; i++) {
            for (int tag2 = 0; tag2 < 4; tag2++) {
                tlb.insert(1, tag2, (long) i << 12, 12, (long) i << 12, 3, 0, true);
            }
            tlb.insert(1, 0, (long) i << 21, 21, 0, 3, 0, false);
        }
        TlbHit hit = new TlbHit();
        lookups(tlb, hit); // warm up
        long before = threads.getCurrentThreadAllocatedBytes();
        lookups(tlb, hit);
        long allocated = threads.getCurrentThreadAllocatedBytes() - before;
        assertTrue(allocated < SLACK, allocated + " bytes allocated by " + CALLS + " lookups");
    }

    @Test
    void insertAndInvalidateAllocateNothingInSteadyState() {
        com.sun.management.ThreadMXBean threads = threads();
        Tlb tlb = new Tlb("t", 1024); // much smaller than the churn's footprint: CLOCK evicts
        churn(tlb); // warm up
        long before = threads.getCurrentThreadAllocatedBytes();
        churn(tlb);
        long allocated = threads.getCurrentThreadAllocatedBytes() - before;
        assertTrue(allocated < SLACK, allocated + " bytes allocated by " + CALLS + " mutations");
        assertTrue(tlb.stats().evictions > 0);
        tlb.checkInvariants();
    }
}
