package org.iommulab.vfio.internal;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;

import org.iommulab.api.spi.DomainType;
import org.iommulab.api.spi.IommuDomain;
import org.iommulab.api.spi.IommuDriver;
import org.iommulab.api.spi.IommuInstance;
import org.iommulab.api.translation.Access;
import org.iommulab.api.translation.Translation;
import org.iommulab.pgtable.FlushOps;
import org.iommulab.pgtable.IoPageTable;
import org.iommulab.pgtable.PageTableFormat;
import org.iommulab.pgtable.format.ArmGranule;
import org.iommulab.pgtable.format.ArmStage1;
import org.iommulab.pgtable.format.X86FirstStage;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * Bind, unbind and invalidate against concurrent DMA, through the driver API on VT-d and SMMUv3.
 *
 * <p>Per PASID, one thread plays the OS: it moves a page of a process's first-stage table to a
 * new frame and invalidates ({@code invalidateFirstStage}, which the drivers end with a wait
 * descriptor on VT-d and CMD_SYNC on SMMUv3), or unbinds the PASID, or binds it again; each time
 * the call returns it publishes the state reached. Other threads translate the page in a loop.
 * The barrier property: a translation that starts after a publication never uses an older frame
 * (no stale IOTLB or PASID-cache entry survives a completed invalidation), and never succeeds while
 * the PASID is published unbound. Two PASIDs run at once, each on frames of its own, so a
 * translation landing on the other PASID's frames is caught too.
 *
 * <p>Bounded by {@code -Diommulab.concurrency.millis} per backend (default 1500); run longer with
 * e.g. {@code mvn -pl vfio-type1 test -Dtest=BindInvalidateConcurrencyTest -Diommulab.concurrency.millis=600000}.
 */
class BindInvalidateConcurrencyTest {
    static final int RID = 0x0010;
    static final long VA = 0x7f00_0040_0000L;
    static final int TRANSLATORS_PER_PASID = 2;
    static final long MILLIS = Long.getLong("iommulab.concurrency.millis", 1500);

    @Test
    @Timeout(60)
    void vtdInvalidationsAreBarriers() throws Exception {
        run("vtd", DomainType.UNMANAGED, X86FirstStage.of(4, 48, false, true, true));
    }

    @Test
    @Timeout(60)
    void smmuv3InvalidationsAreBarriers() throws Exception {
        run("smmuv3", DomainType.IDENTITY, ArmStage1.of(ArmGranule.G4K, 16, 48, false, false, false));
    }

    private void run(String vendor, DomainType type, PageTableFormat format) throws Exception {
        VfioStack stack = new VfioStack();
        long framesBefore = stack.memory.allocatedFrames();
        IommuInstance iommu = stack.instance(vendor, vendor + "0");
        IommuDriver driver = iommu.driver();
        IommuDomain domain = driver.allocateDomain(type);
        driver.attach(domain, RID);

        AtomicReference<Throwable> failure = new AtomicReference<>();
        long deadline = System.nanoTime() + MILLIS * 1_000_000L;
        List<Thread> threads = new ArrayList<>();
        List<Os> oses = new ArrayList<>();
        for (int pasid : new int[] {3, 9}) {
            IoPageTable table = IoPageTable.create(format, iommu.memory(), stack.memory, FlushOps.NONE);
            Os os = new Os(driver, table, pasid, deadline, failure);
            oses.add(os);
            threads.add(new Thread(os, vendor + "-os-" + pasid));
            for (int i = 0; i < TRANSLATORS_PER_PASID; i++) {
                threads.add(new Thread(new Dma(iommu, os, deadline, failure), vendor + "-dma-" + pasid + "-" + i));
            }
        }
        threads.forEach(Thread::start);
        for (Thread t : threads) {
            t.join();
        }
        assertNull(failure.get(), () -> "seeded " + Os.SEED + ": " + failure.get());
        for (Os os : oses) {
            assertTrue(os.steps.get() > 20, "the OS thread made progress: " + os.steps.get());
            assertTrue(os.translated.get() > 100, "translations ran: " + os.translated.get());
            if (os.isBound()) {
                driver.unbindFirstStage(RID, os.pasid);
            }
            os.table.destroy();
        }
        driver.detach(domain, RID);
        driver.freeDomain(domain);
        stack.registry.destroy(vendor + "0");
        assertEquals(framesBefore, stack.memory.allocatedFrames(), "no table frame left behind");
    }

    /**
     * The OS side of one PASID. State published after each call returns: bit 0 bound, the rest
     * the generation whose frame the page maps to.
     */
    static final class Os implements Runnable {
        static final long SEED = Long.getLong("iommulab.seed", 0x5eedL);
        final IommuDriver driver;
        final IoPageTable table;
        final int pasid;
        final long deadline;
        final AtomicReference<Throwable> failure;
        /** Frames of this PASID: FRAMES + pasid * 2^32 + generation * 4 KiB. */
        final long base;
        final AtomicLong steps = new AtomicLong();
        final AtomicLong translated = new AtomicLong();
        volatile long published;
        /** Set while a bind is under way: the PASID may go live before the bind returns. */
        volatile boolean binding;
        /** Newest generation ever put in the table (may be ahead of published). */
        volatile long newest;

        Os(IommuDriver driver, IoPageTable table, int pasid, long deadline, AtomicReference<Throwable> failure) {
            this.driver = driver;
            this.table = table;
            this.pasid = pasid;
            this.deadline = deadline;
            this.failure = failure;
            this.base = 0x10_0000_0000L + ((long) pasid << 32);
        }

        boolean isBound() {
            return (published & 1) != 0;
        }

        @Override
        public void run() {
            Random rnd = new Random(SEED ^ pasid);
            long generation = 0;
            try {
                // The anchor keeps the page's tables alive: unmapping the page alone would free them
                // before the invalidation, and a walk cache could then read a frame another table
                // reuses (an OS must invalidate before it frees page-table pages).
                table.map(VA + 0x1000, base, 0x1000, IommuDomain.PROT_READ);
                table.map(VA, base, 0x1000, IommuDomain.PROT_READ | IommuDomain.PROT_WRITE);
                binding = true;
                driver.bindFirstStage(RID, pasid, table.root(), 48, 0);
                published = 1;
                binding = false;
                while (System.nanoTime() < deadline && failure.get() == null) {
                    steps.incrementAndGet();
                    boolean bound = isBound();
                    if (bound && rnd.nextInt(8) == 0) {
                        driver.unbindFirstStage(RID, pasid);
                        published = generation << 1;
                    } else {
                        generation++;
                        newest = generation;
                        table.unmap(VA, 0x1000);
                        table.map(VA, base + generation * 0x1000, 0x1000, IommuDomain.PROT_READ | IommuDomain.PROT_WRITE);
                        if (bound) {
                            driver.invalidateFirstStage(RID, pasid, VA, 0x1000);
                        } else {
                            binding = true;
                            driver.bindFirstStage(RID, pasid, table.root(), 48, 0);
                        }
                        published = generation << 1 | 1;
                        binding = false;
                    }
                }
            } catch (Throwable t) {
                failure.compareAndSet(null, t);
            }
        }
    }

    /** A DMA thread of one PASID, checking every translation against the state published before it. */
    static final class Dma implements Runnable {
        final IommuInstance iommu;
        final Os os;
        final long deadline;
        final AtomicReference<Throwable> failure;

        Dma(IommuInstance iommu, Os os, long deadline, AtomicReference<Throwable> failure) {
            this.iommu = iommu;
            this.os = os;
            this.deadline = deadline;
            this.failure = failure;
        }

        @Override
        public void run() {
            Translation t = new Translation();
            try {
                while (System.nanoTime() < deadline && failure.get() == null) {
                    long state = os.published;
                    boolean ok = iommu.translate(RID, os.pasid, VA + 0x10, Access.READ, t);
                    os.translated.incrementAndGet();
                    if (!ok) {
                        continue; // a fault is always allowed: the OS may be between unmap and map
                    }
                    if ((state & 1) == 0 && !os.binding && os.published == state) {
                        // no bind had started when the translation ended, and the unbind had returned before it began
                        throw new AssertionError("PASID " + os.pasid + " translated after its unbind returned: "
                                + t + " (state generation " + (state >> 1) + ")");
                    }
                    long frame = t.outputAddress() - 0x10 - os.base;
                    if (frame < 0 || frame % 0x1000 != 0 || frame / 0x1000 > os.newest) {
                        throw new AssertionError(String.format("PASID %d reached 0x%x, not one of its frames",
                                os.pasid, t.outputAddress()));
                    }
                    long generation = frame / 0x1000;
                    if (generation < state >> 1) {
                        throw new AssertionError("PASID " + os.pasid + " used generation " + generation
                                + " after the invalidation for generation " + (state >> 1) + " returned");
                    }
                }
            } catch (Throwable e) {
                failure.compareAndSet(null, e);
            }
        }
    }
}
