package org.iommulab.pgtable.tlb;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/** Lookups racing with inserts and invalidations. Each test runs for well under two seconds. */
class TlbConcurrencyTest {
    private static final int READERS = 4;
    private static final long RUN_NANOS = 700_000_000L;

    /** Starts the readers, runs the writer on this thread, then stops and joins the readers. */
    private static void race(Runnable writer, Runnable reader) throws InterruptedException {
        AtomicReference<Throwable> failure = new AtomicReference<>();
        List<Thread> threads = new ArrayList<>();
        for (int r = 0; r < READERS; r++) {
            Thread thread = new Thread(() -> {
                try {
                    reader.run();
                } catch (Throwable t) {
                    failure.compareAndSet(null, t);
                }
            }, "tlb-reader-" + r);
            thread.setDaemon(true);
            threads.add(thread);
            thread.start();
        }
        try {
            writer.run();
        } finally {
            for (Thread thread : threads) {
                thread.interrupt();
                thread.join(5_000);
            }
        }
        if (failure.get() != null) {
            throw new AssertionError("reader failed", failure.get());
        }
    }

    /**
     * The writer maps page P to A_k, waits until a reader has seen A_k, invalidates P (by one of
     * the four forms that cover it) and publishes epoch k + 1. A reader that read the epoch
     * before starting a lookup must never get A_j for any j below that epoch: it was invalidated
     * before the epoch was published. In between the writer maps P to a B page, which readers may
     * see, and churns other entries so that lookups keep failing validation.
     */
    @Test
    @Timeout(10)
    void noLookupSeesATranslationAfterItsInvalidationReturned() throws InterruptedException {
        Tlb tlb = new Tlb("iotlb", 256);
        long tag1 = 3;
        long tag2 = 9;
        long page = 0x7_0000_0000L;
        long aBase = 0x10_0000_0000L;
        long bFlag = 1L << 50;
        AtomicLong epoch = new AtomicLong();
        AtomicLong seenA = new AtomicLong(-1);
        AtomicLong violations = new AtomicLong();
        AtomicLong readerHits = new AtomicLong();
        AtomicBoolean done = new AtomicBoolean();
        long[] iterations = new long[1];

        Runnable reader = () -> {
            TlbHit hit = new TlbHit();
            Random random = new Random(Thread.currentThread().getId());
            long hits = 0;
            while (!done.get()) {
                long before = epoch.get();
                if (tlb.lookup(tag1, tag2, page + 0x123, true, hit)) {
                    hits++;
                    long out = hit.outputPage();
                    if ((out & bFlag) == 0) {
                        long k = (out - aBase) >>> 12;
                        if (k < before) {
                            violations.incrementAndGet();
                        }
                        seenA.set(k);
                    }
                }
                // Churned entries must translate to what their key says, never torn values.
                long va = (long) random.nextInt(64) << 12;
                if (tlb.lookup(tag1 + 1, tag2, va, true, hit) && hit.outputPage() != (va ^ aBase)) {
                    violations.incrementAndGet();
                }
            }
            readerHits.addAndGet(hits);
        };

        Runnable writer = () -> {
            Random random = new Random(7);
            long deadline = System.nanoTime() + RUN_NANOS;
            long k = 0;
            try {
                for (; System.nanoTime() < deadline; k++) {
                    tlb.insert(tag1, tag2, page, 12, aBase + (k << 12), 3, k, true);
                    while (seenA.get() != k) {
                        if (System.nanoTime() > deadline + RUN_NANOS) {
                            fail("readers never saw mapping " + k);
                        }
                        Thread.onSpinWait();
                    }
                    for (int i = 0; i < 8; i++) {
                        long va = (long) random.nextInt(64) << 12;
                        tlb.insert(tag1 + 1, tag2, va, 12, va ^ aBase, 3, 0, true);
                        if (random.nextInt(4) == 0) {
                            tlb.invalidateRange(tag1 + 1, tag2, va, 0x3000, false);
                        }
                    }
                    long removed;
                    switch ((int) (k % 4)) {
                        case 0: removed = tlb.invalidateRange(tag1, tag2, page + 0x800, 1, true); break;
                        case 1: removed = tlb.invalidateRangeAnyTag2(tag1, page, 0x1000, false); break;
                        case 2: removed = tlb.invalidateTag(tag1, tag2); break;
                        default: removed = tlb.invalidateTag1(tag1); break;
                    }
                    assertEquals(1, removed);
                    epoch.set(k + 1);
                    if (random.nextBoolean()) {
                        tlb.insert(tag1, tag2, page, 12, bFlag | (k << 12), 3, 0, true);
                    }
                }
            } finally {
                iterations[0] = k;
                done.set(true);
            }
        };

        race(writer, reader);
        assertEquals(0, violations.get());
        assertTrue(iterations[0] > 10, "only " + iterations[0] + " iterations");
        assertTrue(readerHits.get() > 0);
        tlb.checkInvariants();
    }

    /**
     * The writer keeps rewriting a few keys with a new generation number in every field (output
     * page, permissions, attributes), in a TLB small enough that CLOCK evicts constantly, and now
     * and then invalidates. Readers check that each hit's fields all carry one generation and the
     * key looked up: a torn optimistic read that escaped validation would mix them.
     */
    @Test
    @Timeout(10)
    void hitsAreNeverTornUnderReplacementEvictionAndInvalidation() throws InterruptedException {
        Tlb tlb = new Tlb("iotlb", 24);
        AtomicBoolean done = new AtomicBoolean();
        AtomicLong lookups = new AtomicLong();
        AtomicLong hits = new AtomicLong();

        Runnable reader = () -> {
            TlbHit hit = new TlbHit();
            Random random = new Random(Thread.currentThread().getId());
            long n = 0;
            long h = 0;
            while (!done.get()) {
                long tag2 = random.nextInt(2);
                boolean leaf = random.nextInt(4) != 0;
                int shift = leaf ? 12 : 21;
                long pageNumber = random.nextInt(32);
                long va = (pageNumber << shift) + random.nextInt(1 << 12);
                n++;
                if (tlb.lookup(1, tag2, va, leaf, hit)) {
                    h++;
                    long value = hit.outputPage() >>> shift;
                    if (value != hit.attributes() || (int) value != hit.permissions()
                            || value % 128 != keyBits(tag2, pageNumber, leaf)
                            || hit.pageShift() != shift || hit.leaf() != leaf) {
                        throw new AssertionError("torn hit " + hit + " for page " + pageNumber);
                    }
                }
            }
            lookups.addAndGet(n);
            hits.addAndGet(h);
        };

        Runnable writer = () -> {
            Random random = new Random(11);
            long deadline = System.nanoTime() + RUN_NANOS;
            try {
                for (long generation = 1; System.nanoTime() < deadline; generation++) {
                    long tag2 = random.nextInt(2);
                    boolean leaf = random.nextInt(4) != 0;
                    int shift = leaf ? 12 : 21;
                    long pageNumber = random.nextInt(32);
                    long value = generation * 128 + keyBits(tag2, pageNumber, leaf);
                    tlb.insert(1, tag2, pageNumber << shift, shift, value << shift, (int) value,
                            value, leaf);
                    switch (random.nextInt(256)) {
                        case 0: tlb.invalidateRange(1, tag2, pageNumber << 12, 1 << 16, false); break;
                        case 1: tlb.invalidateRangeAnyTag2(1, pageNumber << 21, 1 << 21, true); break;
                        case 2: tlb.invalidateTag(1, tag2); break;
                        case 3: tlb.invalidateTag1(1); break;
                        case 4: tlb.invalidateAll(); break;
                        default: break;
                    }
                }
            } finally {
                done.set(true);
            }
        };

        race(writer, reader);
        assertTrue(lookups.get() > 0 && hits.get() > 0, lookups + " lookups, " + hits + " hits");
        assertTrue(tlb.stats().evictions > 0);
        tlb.checkInvariants();
    }

    /** Seven bits that identify a key of the test above: tag2, leaf flag and page number. */
    private static long keyBits(long tag2, long pageNumber, boolean leaf) {
        return tag2 << 6 | (leaf ? 32 : 0) | pageNumber;
    }
}
