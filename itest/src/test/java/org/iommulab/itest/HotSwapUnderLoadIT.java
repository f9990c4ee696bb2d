package org.iommulab.itest;

import static org.junit.Assert.assertArrayEquals;
import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertFalse;
import static org.junit.Assert.assertTrue;

import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;
import java.util.stream.Collectors;

import javax.inject.Inject;

import org.iommulab.api.idxd.Dsa;
import org.iommulab.api.idxd.IdxdDevice;
import org.iommulab.api.idxd.IdxdService;
import org.iommulab.api.idxd.SubmitStatus;
import org.iommulab.api.idxd.WorkQueueConfig;
import org.iommulab.api.memory.HostMemory;
import org.iommulab.api.spi.DomainType;
import org.iommulab.api.spi.IommuDomain;
import org.iommulab.api.spi.IommuInstance;
import org.iommulab.api.spi.IommuRegistry;
import org.junit.Test;
import org.junit.runner.RunWith;
import org.ops4j.pax.exam.Configuration;
import org.ops4j.pax.exam.Option;
import org.ops4j.pax.exam.junit.PaxExam;
import org.ops4j.pax.exam.spi.reactors.ExamReactorStrategy;
import org.ops4j.pax.exam.spi.reactors.PerMethod;
import org.osgi.framework.Bundle;
import org.osgi.framework.BundleContext;

/**
 * A backend bundle stops while a DSA device is moving data through one of its instances, on VT-d
 * and on SMMUv3. What a user relies on:
 * <ul>
 * <li>every descriptor in flight ends: it completes byte exact, or its DMA faults, or (when even
 * the completion record cannot be written through the departed IOMMU) it lands in SWERR; none is
 * lost and nothing is written to memory once the instance is gone;</li>
 * <li>consumers are told (an {@link InstanceListener} hears the instance leave);</li>
 * <li>nothing leaks: every host memory frame the instance's driver allocated is back in the pool,
 * and no thread started for the work outlives it;</li>
 * <li>the bundle starts again and new work proceeds on a new instance.</li>
 * </ul>
 */
@RunWith(PaxExam.class)
@ExamReactorStrategy(PerMethod.class)
public class HotSwapUnderLoadIT {
    private static final long WAIT_MS = 10_000;
    private static final int RID = 0x10;
    /** IOVA window of the device's domain: 1 MiB at 0x100000 onto HPA 0x40000000. */
    private static final long IOVA = 0x10_0000L;
    private static final long HPA = 0x4000_0000L;
    private static final long WINDOW = 0x10_0000L;
    private static final int BATCH = 4;
    private static final int CHUNK = 16 * 1024;
    /** Per slot: source, destination, completion record, all in the window. */
    private static final long SRC = 0, DST = 0x4_0000, COMP = 0x8_0000;

    @Inject
    private BundleContext context;

    @Inject
    private IommuRegistry registry;

    @Inject
    private IdxdService idxd;

    @Inject
    private HostMemory memory;

    /** @return the container */
    @Configuration
    public Option[] config() {
        return Container.options();
    }

    @Test
    public void vtdBundleStopsUnderDmaLoad() throws Exception {
        stopUnderLoad("vtd", "org.iommulab.vtd-backend");
    }

    @Test
    public void smmuv3BundleStopsUnderDmaLoad() throws Exception {
        stopUnderLoad("smmuv3", "org.iommulab.smmuv3-backend");
    }

    private void stopUnderLoad(String vendor, String bsn) throws Exception {
        long framesBefore = memory.stats().allocatedFrames;
        Set<Thread> threadsBefore = Thread.getAllStackTraces().keySet();
        List<String> removed = Container.instanceRemovals(context);
        IommuInstance iommu = registry.create(vendor, vendor + "-load", Map.of());
        IdxdDevice dev = device(iommu, "dsa-load");
        assertTrue("the instance's driver allocated its structures", memory.stats().allocatedFrames > framesBefore);

        Load load = new Load(dev);
        Thread worker = new Thread(load, "hot-swap-load");
        worker.start();
        assertTrue("DMA ran before the stop", Container.await(() -> load.succeeded.get() >= 8, WAIT_MS));

        bundle(bsn).stop();
        load.instanceGone.set(true);
        long afterStop = load.batches.get();
        assertTrue("the load went on after the stop",
                Container.await(() -> load.batches.get() >= afterStop + 4, WAIT_MS));
        load.running.set(false);
        worker.join(WAIT_MS);
        assertFalse(worker.isAlive());
        if (load.failure.get() != null) {
            throw new AssertionError(load.failure.get());
        }

        assertEquals("consumers were told", List.of(vendor + "-load"), removed);
        assertFalse(registry.instance(vendor + "-load").isPresent());
        assertTrue("descriptors failed once the instance was gone", load.failed.get() > 0);
        assertEquals("every descriptor ended: completed, faulted or in SWERR", load.submitted.get(),
                load.succeeded.get() + load.faulted.get() + load.unrecorded.get());
        assertTrue("each unrecorded completion is a software error",
                dev.statistics().get("software-errors") >= load.unrecorded.get());
        assertEquals("every frame the driver allocated is back in the pool", framesBefore,
                memory.stats().allocatedFrames);

        // Start again: new work proceeds on a new instance.
        bundle(bsn).start();
        assertTrue(Container.await(() -> registry.backends().stream().anyMatch(b -> b.vendor.equals(vendor)), WAIT_MS));
        idxd.destroy("dsa-load");
        IommuInstance again = registry.create(vendor, vendor + "-again", Map.of());
        IdxdDevice fresh = device(again, "dsa-again");
        Load more = new Load(fresh);
        more.runBatches(3);
        assertEquals(3 * BATCH, more.succeeded.get());
        assertEquals(0, more.failed.get());

        idxd.destroy("dsa-again");
        registry.destroy(vendor + "-again");
        assertEquals("nothing leaked across the swap", framesBefore, memory.stats().allocatedFrames);
        assertTrue("no thread started for the work outlives it: " + newThreads(threadsBefore),
                Container.await(() -> newThreads(threadsBefore).isEmpty(), WAIT_MS));
    }

    /** A device with a dedicated queue whose requester id is attached to a domain over the window. */
    private IdxdDevice device(IommuInstance iommu, String name) throws Exception {
        IdxdDevice dev = idxd.create(name, iommu.name(), RID);
        IommuDomain d = iommu.driver().allocateDomain(DomainType.UNMANAGED);
        d.map(IOVA, HPA, WINDOW, IommuDomain.PROT_READ | IommuDomain.PROT_WRITE);
        iommu.driver().attach(d, RID);
        dev.configure(0, WorkQueueConfig.dedicated(2 * BATCH, -1));
        dev.enable();
        dev.enableWq(0);
        return dev;
    }

    private static Set<String> newThreads(Set<Thread> before) {
        Set<Thread> now = new HashSet<>(Thread.getAllStackTraces().keySet());
        now.removeAll(before);
        return now.stream().filter(Thread::isAlive).map(Thread::getName).collect(Collectors.toSet());
    }

    private Bundle bundle(String bsn) {
        return Container.installed(context, bsn);
    }

    /**
     * Batches of {@link #BATCH} MEMMOVEs of {@link #CHUNK} bytes with fresh data each time; after
     * each batch the device is awaited and every completion record classified.
     */
    private final class Load implements Runnable {
        final IdxdDevice dev;
        final AtomicBoolean running = new AtomicBoolean(true);
        /** Set once the bundle stop returned: batches started later must not reach memory at all. */
        final AtomicBoolean instanceGone = new AtomicBoolean();
        final AtomicLong batches = new AtomicLong();
        final AtomicLong submitted = new AtomicLong();
        final AtomicLong succeeded = new AtomicLong();
        final AtomicLong faulted = new AtomicLong();
        final AtomicLong unrecorded = new AtomicLong();
        final AtomicLong failed = new AtomicLong();
        final AtomicReference<String> failure = new AtomicReference<>();
        private long generation;

        Load(IdxdDevice dev) {
            this.dev = dev;
        }

        @Override
        public void run() {
            try {
                while (running.get()) {
                    batch();
                }
            } catch (Throwable t) {
                failure.set(t.toString());
            }
        }

        void runBatches(int n) throws Exception {
            for (int i = 0; i < n; i++) {
                batch();
            }
        }

        private void batch() throws Exception {
            boolean gone = instanceGone.get();
            byte[][] expected = new byte[BATCH][];
            for (int slot = 0; slot < BATCH; slot++) {
                expected[slot] = pattern(++generation);
                memory.write(HPA + SRC + (long) slot * CHUNK, expected[slot], 0, CHUNK);
                memory.write(HPA + DST + (long) slot * CHUNK, new byte[CHUNK], 0, CHUNK);
                memory.write(HPA + COMP + slot * 64L, new byte[64], 0, 64);
            }
            for (int slot = 0; slot < BATCH; slot++) {
                byte[] d = Dsa.descriptor(Dsa.OP_MEMMOVE).flags(Dsa.FLAG_CRAV | Dsa.FLAG_RCR)
                        .addr1(IOVA + SRC + (long) slot * CHUNK).addr2(IOVA + DST + (long) slot * CHUNK)
                        .size(CHUNK).completion(IOVA + COMP + slot * 64L).build();
                if (dev.movdir64b(0, d) != SubmitStatus.ACCEPTED) {
                    throw new AssertionError("a dedicated queue twice the batch size refused a descriptor");
                }
                submitted.incrementAndGet();
            }
            if (!dev.awaitIdle(WAIT_MS)) {
                throw new AssertionError("the device hung");
            }
            for (int slot = 0; slot < BATCH; slot++) {
                byte[] raw = new byte[32];
                memory.read(HPA + COMP + slot * 64L, raw, 0, 32);
                Dsa.CompletionRecord cr = Dsa.CompletionRecord.decode(raw);
                byte[] got = new byte[CHUNK];
                memory.read(HPA + DST + (long) slot * CHUNK, got, 0, CHUNK);
                if (gone) {
                    assertEquals("no completion is written through a departed IOMMU", 0, cr.status());
                    assertArrayEquals("no data is written through a departed IOMMU", new byte[CHUNK], got);
                }
                if (cr.status() == Dsa.COMP_SUCCESS) {
                    assertArrayEquals("a successful move is byte exact", expected[slot], got);
                    succeeded.incrementAndGet();
                    continue;
                }
                failed.incrementAndGet();
                if (cr.status() == 0) {
                    unrecorded.incrementAndGet();
                } else if ((cr.status() & 0x7f) == Dsa.COMP_PAGE_FAULT_NOBOF
                        || (cr.status() & 0x7f) == Dsa.COMP_TRANSLATION_FAIL) {
                    faulted.incrementAndGet();
                } else {
                    throw new AssertionError("unexpected completion " + cr);
                }
            }
            batches.incrementAndGet();
        }

        private byte[] pattern(long seed) {
            byte[] b = new byte[CHUNK];
            java.util.Random r = new java.util.Random(seed);
            r.nextBytes(b);
            return b;
        }
    }
}
