package org.iommulab.vmm.internal;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.annotation.Annotation;
import java.util.Random;

import org.iommulab.api.idxd.Dsa;
import org.iommulab.api.idxd.Dsa.CompletionRecord;
import org.iommulab.api.idxd.IdxdDevice;
import org.iommulab.api.idxd.SubmitStatus;
import org.iommulab.api.idxd.WorkQueueConfig;
import org.iommulab.api.spi.IommuInstance;
import org.iommulab.api.vmm.GuestProcess;
import org.iommulab.idxd.internal.IdxdServiceImpl;
import org.iommulab.platform.internal.events.EventLogImpl;
import org.iommulab.vfio.internal.VfioStack;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;

/**
 * What every vSVA test of the VMM stands on: the platform, both backends, VFIO, IDXD and the VMM
 * wired by hand; a host IOMMU of the subclass's vendor with a DSA at requester id 0x10 whose shared
 * work queue 0 blocks on faults; and the guest-side helpers.
 */
abstract class VsvaTestBase {
    static final long MB = 1 << 20;
    static final int VRID = 0x0008;
    static final long SRC = 0x7000_0000_0000L;
    static final long DST = 0x7000_0010_0000L;
    static final long COMP = 0x7000_0020_0000L;

    final VfioStack stack = new VfioStack();
    IdxdServiceImpl idxd;
    VmManagerImpl vmm;
    IommuInstance host;
    IdxdDevice dsa;

    /** @return the host IOMMU's vendor */
    abstract String vendor();

    /** @return the host IOMMU instance's name */
    String hostName() {
        return vendor() + "0";
    }

    @BeforeEach
    void setUp() throws Exception {
        idxd = new IdxdServiceImpl(stack.registry, stack.bus);
        EventLogImpl events = new EventLogImpl(new EventLogImpl.Config() {
            @Override
            public Class<? extends Annotation> annotationType() {
                return EventLogImpl.Config.class;
            }

            @Override
            public int capacity() {
                return 1000;
            }
        });
        vmm = new VmManagerImpl(stack.registry, stack.processes, stack.pasids, stack.vfio, idxd, events, stack.bus);
        host = stack.instance(vendor(), hostName());
        dsa = sharedQueueDevice("dsa0", 0x10);
    }

    /** A DSA behind the host IOMMU with shared work queue 0 enabled. */
    /**
     * A DSA whose dedicated work queue 0 runs without PASID (pasid_en 0), with block on fault and page
     * requests allowed: its DMA are requests without PASID, the guest-IOVA case.
     */
    IdxdDevice noPasidQueueDevice(String name, int rid) throws Exception {
        IdxdDevice d = idxd.create(name, hostName(), rid);
        d.configure(0, new WorkQueueConfig(16, true, 10, true, false, 0, false, false,
                WorkQueueConfig.MAX_TRANSFER_SHIFT, WorkQueueConfig.MAX_BATCH_SHIFT));
        d.enable();
        d.enableWq(0);
        return d;
    }

    IdxdDevice sharedQueueDevice(String name, int rid) throws Exception {
        IdxdDevice d = idxd.create(name, hostName(), rid);
        d.configure(0, WorkQueueConfig.shared(16));
        d.enable();
        d.enableWq(0);
        return d;
    }

    @AfterEach
    void tearDown() {
        vmm.deactivate();
        idxd.deactivate();
    }

    static byte[] random(int n, long seed) {
        byte[] b = new byte[n];
        new Random(seed).nextBytes(b);
        return b;
    }

    /** ENQCMD from the guest process, then the completion record it reads back. */
    CompletionRecord run(GuestProcess p, Dsa.Builder d) throws Exception {
        p.write(COMP, new byte[32]);
        assertEquals(SubmitStatus.ACCEPTED, p.enqcmd(VRID, d.completion(COMP).build()));
        assertTrue(dsa.awaitIdle(20_000));
        return CompletionRecord.decode(p.read(COMP, 32));
    }

    /**
     * A guest workload on its own thread: MEMMOVEs of {@code bytes} from SRC to DST in a loop,
     * counting them and keeping the first completion that is not SUCCESS (or the first exception).
     */
    final class GuestLoad {
        final java.util.concurrent.atomic.AtomicInteger copies = new java.util.concurrent.atomic.AtomicInteger();
        final java.util.concurrent.atomic.AtomicReference<String> failure = new java.util.concurrent.atomic.AtomicReference<>();
        private final java.util.concurrent.atomic.AtomicBoolean running = new java.util.concurrent.atomic.AtomicBoolean(true);
        private final Thread thread;

        GuestLoad(GuestProcess p, int bytes) {
            thread = new Thread(() -> {
                try {
                    while (running.get()) {
                        CompletionRecord c = run(p, Dsa.descriptor(Dsa.OP_MEMMOVE).addr1(SRC).addr2(DST).size(bytes));
                        if (c.status() != Dsa.COMP_SUCCESS) {
                            failure.compareAndSet(null, c.toString());
                        }
                        copies.incrementAndGet();
                    }
                } catch (Throwable t) {
                    failure.compareAndSet(null, t.toString());
                }
            }, "guest-load");
            thread.start();
        }

        /** Waits until {@code n} more copies completed. */
        void awaitMore(int n) throws InterruptedException {
            int target = copies.get() + n;
            long deadline = System.nanoTime() + 20_000_000_000L;
            while (copies.get() < target && failure.get() == null && System.nanoTime() < deadline) {
                Thread.sleep(1);
            }
        }

        /** Stops the loop after the copy under way. @return the first failure, or {@code null} */
        String stop() throws InterruptedException {
            running.set(false);
            thread.join(20_000);
            return failure.get();
        }
    }

    /**
     * Updates the backend bundle live while {@code p} copies {@code bytes} in a loop, and checks
     * what a VM relies on: no copy failed across the update, and the update allocated and freed no
     * frame.
     *
     * @return the names of the instances carried over
     */
    java.util.List<String> liveUpdateUnderLoad(GuestProcess p, int bytes) throws Exception {
        long frames = stack.memory.allocatedFrames();
        GuestLoad load = new GuestLoad(p, bytes);
        load.awaitMore(3);
        java.util.List<String> carried = stack.registry.liveUpdate(vendor(), null);
        load.awaitMore(3);
        assertEquals(null, load.stop(), "no descriptor failed across the update");
        assertEquals(frames, stack.memory.allocatedFrames(), "the update allocated and freed nothing");
        return carried;
    }
}
