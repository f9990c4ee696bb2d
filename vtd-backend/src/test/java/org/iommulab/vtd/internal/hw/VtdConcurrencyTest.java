package org.iommulab.vtd.internal.hw;

import static org.iommulab.vtd.internal.hw.PageTables.SL_R;
import static org.iommulab.vtd.internal.hw.PageTables.SL_W;
import static org.iommulab.vtd.internal.hw.VtdRig.DATA;
import static org.iommulab.vtd.internal.hw.VtdRig.STATUS;
import static org.iommulab.vtd.internal.hw.VtdRig.iotlbDesc;
import static org.iommulab.vtd.internal.hw.VtdRig.waitDesc;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;

import org.iommulab.api.translation.Access;
import org.iommulab.api.translation.Translation;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * Translations on several threads while software remaps a page and invalidates (VT-d §6.5.2.8:
 * once the wait descriptor's status is written, every invalidation before it is complete, so no
 * request issued afterwards may use the old translation).
 */
class VtdConcurrencyTest {
    static final int S = 0x0010;
    static final int DID = 1;
    static final long FLIP = 0x100_0000L;
    static final long FIXED = 0x200_0000L;
    static final int FIXED_PAGES = 64;
    static final long FIXED_PA = DATA + 0x4000_0000L;

    static long phasePa(long k) {
        return DATA + k * 0x1000;
    }

    @Test
    @Timeout(20)
    void noTranslationStartedAfterAnInvalidationCompletesReturnsTheOldAddress() throws Exception {
        VtdRig r = new VtdRig();
        PageTables ss = r.secondStage(2);
        long leaf = ss.map(FLIP, phasePa(0));
        for (int i = 0; i < FIXED_PAGES; i++) {
            ss.map(FIXED + 0x1000L * i, FIXED_PA + 0x1000L * i);
        }
        r.secondStageDevice(S, DID, ss);
        r.enable();

        AtomicLong published = new AtomicLong(phasePa(0));
        AtomicBoolean stop = new AtomicBoolean();
        AtomicReference<String> error = new AtomicReference<>();
        AtomicLong translations = new AtomicLong();
        CountDownLatch started = new CountDownLatch(4);
        List<Thread> threads = new ArrayList<>();
        for (int w = 0; w < 4; w++) {
            final int id = w;
            Thread t = new Thread(() -> {
                Translation out = new Translation();
                long n = 0;
                long seed = id * 0x9e37_79b9L + 1;
                started.countDown();
                while (!stop.get()) {
                    seed = seed * 6364136223846793005L + 1442695040888963407L;
                    // Threads 0 and 1 hammer the page being remapped; 2 and 3 mostly the fixed pages.
                    if (id < 2 || (seed >>> 60) == 0) {
                        long floor = published.get();
                        long off = (seed >>> 20) & 0xff8;
                        if (!r.hw.translate(S, -1, FLIP + off, id % 2 == 0 ? Access.READ : Access.WRITE, out)) {
                            error.compareAndSet(null, "remapped page faulted: " + out);
                        } else if (out.outputAddress() < floor + off || ((out.outputAddress() - DATA) & 0xfff) != off) {
                            error.compareAndSet(null, String.format("stale translation: 0x%x, expected at least 0x%x",
                                    out.outputAddress(), floor + off));
                        }
                    } else {
                        int page = (int) ((seed >>> 40) % FIXED_PAGES);
                        long a = FIXED + 0x1000L * page + 0x10;
                        if (!r.hw.translate(S, page, a, Access.READ, out) && page != 0) {
                            // PASIDs other than 0 are not set up: they fault, and the faults must be consistent.
                            if (out.faultCode() != 0x51 && out.faultCode() != 0x59) {
                                error.compareAndSet(null, "unexpected fault " + out);
                            }
                        } else if (page == 0 && out.outputAddress() != FIXED_PA + 0x10) {
                            error.compareAndSet(null, "fixed page wrong: " + out);
                        }
                        if (!r.hw.translate(S, -1, a, Access.READ, out) || out.outputAddress() != FIXED_PA + 0x1000L * page + 0x10) {
                            error.compareAndSet(null, "fixed page " + page + " wrong: " + out);
                        }
                    }
                    n++;
                }
                translations.addAndGet(n);
            }, "translator-" + w);
            t.start();
            threads.add(t);
        }
        started.await();
        long deadline = System.nanoTime() + 500_000_000L;
        long k = 0;
        while (System.nanoTime() < deadline && error.get() == null) {
            k++;
            r.mem.write64(leaf, phasePa(k) | SL_R | SL_W);
            long[] inv;
            switch ((int) (k % 4)) {
                case 0:
                    inv = iotlbDesc(1, 0, 0, 0, false);
                    break;
                case 1:
                    inv = iotlbDesc(2, DID, 0, 0, false);
                    break;
                case 2:
                    inv = iotlbDesc(3, DID, FLIP, 0, false);
                    break;
                default:
                    inv = iotlbDesc(3, DID, FLIP & ~0x1f_ffffL, 9, true);
                    break;
            }
            r.mem.write32(STATUS, 0);
            r.submit(inv, waitDesc(true, false, (int) k, STATUS));
            assertEquals((int) k, r.mem.read32(STATUS), "wait status");
            published.set(phasePa(k));
        }
        stop.set(true);
        for (Thread t : threads) {
            t.join(5000);
        }
        assertNull(error.get(), () -> error.get() + " (after " + translations.get() + " translations)");
        assertTrue(k > 100, "remapped " + k + " times");
        assertTrue(translations.get() > 10_000, "translations: " + translations.get());
    }

    /**
     * A walk that read the old leaf before the invalidation and finishes after the wait descriptor
     * completed must not leave its old translation in the IOTLB for later requests. A read hook
     * holds the walking thread right after it has read the leaf, which makes the interleaving
     * deterministic.
     */
    @Test
    @Timeout(10)
    void walkInFlightDuringAnIotlbInvalidationLeavesNoStaleEntry() throws Exception {
        VtdRig r = new VtdRig();
        PageTables ss = r.secondStage(2);
        long leaf = ss.map(FLIP, phasePa(1));
        r.secondStageDevice(S, DID, ss);
        r.enable();
        Translation inFlight = new Translation();
        Thread walker = new Thread(() -> r.hw.translate(S, -1, FLIP, Access.READ, inFlight), "walker");
        CountDownLatch leafRead = new CountDownLatch(1);
        CountDownLatch release = new CountDownLatch(1);
        r.mem.readHook = a -> {
            if (a == leaf && Thread.currentThread() == walker) {
                leafRead.countDown();
                await(release);
            }
        };
        walker.start();
        assertTrue(leafRead.await(5, TimeUnit.SECONDS), "walker reached the leaf");
        r.mem.write64(leaf, phasePa(2) | SL_R | SL_W);
        r.submit(iotlbDesc(1, 0, 0, 0, false));
        r.sync();
        release.countDown();
        walker.join(5000);
        r.mem.readHook = null;
        assertTrue(inFlight.isSuccess(), inFlight::toString);
        assertEquals(phasePa(2), r.read(S, FLIP), "a request issued after the invalidation completed used the translation "
                + "of a walk that read the old entry (in-flight walk got " + inFlight + ")");
    }

    /** The same for the PASID cache: an entry read before a PASID-cache invalidation must not be cached after it. */
    @Test
    @Timeout(10)
    void pasidEntryReadDuringAPasidCacheInvalidationIsNotCachedAfterIt() throws Exception {
        VtdRig r = new VtdRig();
        PageTables ss = r.secondStage(2);
        ss.map(FLIP, phasePa(1));
        r.secondStageDevice(S, DID, ss);
        long entry = r.pasidEntry(S, 0, VtdRig.pe0(VtdRig.PGTT_SS, 2, ss.root), DID, 0);
        r.enable();
        Translation inFlight = new Translation();
        Thread walker = new Thread(() -> r.hw.translate(S, -1, FLIP, Access.READ, inFlight), "walker");
        CountDownLatch entryRead = new CountDownLatch(1);
        CountDownLatch release = new CountDownLatch(1);
        r.mem.readHook = a -> {
            if (a == entry + 16 && Thread.currentThread() == walker) {
                entryRead.countDown();
                await(release);
            }
        };
        walker.start();
        assertTrue(entryRead.await(5, TimeUnit.SECONDS), "walker read the PASID entry");
        r.pasidEntry(S, 0, VtdRig.pe0(VtdRig.PGTT_PT, 0, 0), DID, 0); // now pass-through
        r.submit(VtdRig.pasidCacheDesc(3, 0, 0), iotlbDesc(1, 0, 0, 0, false));
        r.sync();
        release.countDown();
        walker.join(5000);
        r.mem.readHook = null;
        assertEquals(FLIP, r.read(S, FLIP), "a request issued after the PASID-cache invalidation completed used the old "
                + "PASID entry (in-flight request got " + inFlight + ")");
    }

    private static void await(CountDownLatch latch) {
        try {
            latch.await(5, TimeUnit.SECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }
}
