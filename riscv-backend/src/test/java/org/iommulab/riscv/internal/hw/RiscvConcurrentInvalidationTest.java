package org.iommulab.riscv.internal.hw;

import static org.iommulab.riscv.internal.hw.RiscvRig.*;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;

import org.iommulab.api.pasid.Pasids;
import org.iommulab.api.translation.Access;
import org.iommulab.api.translation.Translation;
import org.junit.jupiter.api.Test;

/**
 * Translations on several threads while software remaps a page and invalidates: nothing throws,
 * every translation gives one of the two mappings, and once IOTINVAL + IOFENCE.C have completed
 * (cqh reached cqt) no translation that starts afterwards sees the old one.
 */
class RiscvConcurrentInvalidationTest {
    @Test
    void afterTheFenceNoTranslationSeesTheOldMapping() throws Exception {
        RiscvRig rig = new RiscvRig();
        rig.enable();
        long root = rig.page();
        long pte = rig.handPte(root, 3, false, 0x1000, leaf(DATA, PTE_V | PTE_R | PTE_W | PTE_U | PTE_A | PTE_D));
        rig.dc(1, V | SADE, 0, dcTa(5), atp(SV39, root));
        // Mapping k is DATA + k pages. curRound: the newest mapping written; oldest: the oldest a
        // translation may still return (raised to k once the fence after writing k completed).
        AtomicInteger curRound = new AtomicInteger();
        AtomicInteger oldest = new AtomicInteger();
        AtomicBoolean stop = new AtomicBoolean();
        AtomicReference<Throwable> failure = new AtomicReference<>();
        Thread[] threads = new Thread[3];
        for (int i = 0; i < threads.length; i++) {
            threads[i] = new Thread(() -> {
                Translation t = new Translation();
                try {
                    while (!stop.get()) {
                        int lo = oldest.get();
                        rig.hw.translate(1, Pasids.NO_PASID, 0x1008, Access.READ, t);
                        int hi = curRound.get();
                        long k = (t.outputAddress() - 8 - DATA) >> 12;
                        if (!t.isSuccess() || k < lo || k > hi) {
                            throw new AssertionError("mapping " + k + " outside [" + lo + ", " + hi + "]: " + t);
                        }
                    }
                } catch (Throwable e) {
                    failure.compareAndSet(null, e);
                }
            });
            threads[i].start();
        }
        Translation t = new Translation();
        for (int round = 1; round <= 5000; round++) {
            long next = DATA + 0x1000L * round;
            curRound.set(round);
            rig.ram.write64(pte, leaf(next, PTE_V | PTE_R | PTE_W | PTE_U | PTE_A | PTE_D)); // one atomic store
            rig.queue(iotinvalVma(false, 0, true, 5, true), addr(0x1000));
            rig.queue(iofence(false, false, 0), 0);
            rig.submit();
            assertEquals(rig.cqTail(), rig.r32(CQH));
            oldest.set(round); // the fence completed: the old mapping is gone for everyone
            rig.hw.translate(1, Pasids.NO_PASID, 0x1000, Access.READ, t);
            assertEquals(next, t.outputAddress(), "round " + round);
        }
        stop.set(true);
        for (Thread th : threads) {
            th.join();
        }
        if (failure.get() != null) {
            throw new AssertionError(failure.get());
        }
        assertTrue(rig.hw.statistics().get("translations") > 300);
        assertEquals(0, rig.r32(CQCSR) & (CMD_ILL | MF));
    }
}
