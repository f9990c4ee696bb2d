package org.iommulab.sva.internal;

import static org.iommulab.sva.internal.SvaStack.dma;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicIntegerArray;
import java.util.concurrent.atomic.AtomicLong;

import org.iommulab.api.process.HostProcess;
import org.iommulab.api.spi.IommuInstance;
import org.iommulab.api.sva.SvaBond;
import org.iommulab.api.translation.Access;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * munmap and swap-out racing the device's translations and a CPU that reuses the freed frames: a
 * translation that starts after the page left never succeeds, and a successful one always reaches
 * the page's own frame, never a frame handed out again.
 */
class SvaConcurrencyTest {
    static final int RID = 0x18;
    static final long PAGE = 4096;
    static final int PAGES = 256;

    final SvaStack stack = new SvaStack();

    @AfterEach
    void tearDown() {
        stack.close();
    }

    @ParameterizedTest
    @ValueSource(strings = {"vtd", "smmuv3", "riscv"})
    void translationsNeverReachAFreedFrame(String vendor) throws Exception {
        IommuInstance io = stack.instance(vendor, "io0", RID);
        HostProcess p = stack.processes.create("app", Long.MAX_VALUE);
        long a = p.mmap(PAGES * PAGE);
        long[] frames = new long[PAGES];
        for (int i = 0; i < PAGES; i++) {
            p.write64(a + i * PAGE, i);
            frames[i] = p.residentAddress(a + i * PAGE);
        }
        SvaBond bond = stack.sva.bind(p, "io0", RID, stack.pasids.createSet("app", 4));
        AtomicIntegerArray gone = new AtomicIntegerArray(PAGES);
        AtomicBoolean done = new AtomicBoolean();
        List<String> errors = new CopyOnWriteArrayList<>();
        AtomicLong hits = new AtomicLong();
        Thread device = new Thread(() -> {
            int i = 0;
            while (!done.get()) {
                boolean left = gone.get(i) != 0;
                long pa = dma(io, RID, bond.pasid(), a + i * PAGE + 8, Access.READ | Access.WRITE);
                if (pa != -1 && errors.size() < 10) {
                    hits.incrementAndGet();
                    if (left) {
                        errors.add("page " + i + " translated after it left");
                    } else if (pa != frames[i] + 8) {
                        errors.add(String.format("page %d reached 0x%x, not its frame 0x%x", i, pa, frames[i]));
                    }
                }
                i = (i + 1) % PAGES;
            }
        }, "device");
        Thread cpu = new Thread(() -> {
            try {
                long b = p.mmap(PAGES * PAGE);
                for (int i = 0; !done.get(); i = (i + 1) % PAGES) {
                    p.write64(b + i * PAGE, -1); // takes the frames the other pages give back
                }
            } catch (Exception e) {
                errors.add("cpu: " + e);
            }
        }, "cpu");
        device.start();
        cpu.start();
        try {
            for (int i = 0; i < PAGES; i++) {
                if (i % 2 == 0) {
                    p.munmap(a + i * PAGE, PAGE);
                } else {
                    p.swapOut(a + i * PAGE, PAGE);
                }
                gone.set(i, 1);
                Thread.yield();
            }
        } finally {
            done.set(true);
            device.join(10_000);
            cpu.join(10_000);
        }
        assertEquals(List.of(), errors);
        assertTrue(hits.get() > 0, "the device translated something");
    }
}
