package org.iommulab.sva.internal;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Map;
import java.util.Random;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;

import org.iommulab.api.idxd.Dsa;
import org.iommulab.api.idxd.Dsa.CompletionRecord;
import org.iommulab.api.idxd.IdxdDevice;
import org.iommulab.api.idxd.SubmitStatus;
import org.iommulab.api.idxd.WorkQueueConfig;
import org.iommulab.api.process.HostProcess;
import org.iommulab.api.process.MmuNotifier;
import org.iommulab.api.sva.SvaBond;
import org.iommulab.idxd.internal.IdxdServiceImpl;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * The IDXD device used from a host process directly, as Linux's idxd user work-queue character
 * device allows: the process opens the queue, binds its address space to the device (SVA), and
 * submits descriptors with ENQCMD tagged with its PASID; every address in them is one of its own
 * virtual addresses.
 */
class SvaIdxdTest {
    static final int RID = 0x18;
    static final long PAGE = 4096;
    static final int SIZE = 4 * (int) PAGE;
    static final int BOF = Dsa.FLAG_BOF | Dsa.FLAG_CRAV | Dsa.FLAG_RCR;
    static final int NO_BOF = Dsa.FLAG_CRAV | Dsa.FLAG_RCR;

    final SvaStack stack = new SvaStack();
    final IdxdServiceImpl idxd = new IdxdServiceImpl(stack.registry, stack.bus);

    @AfterEach
    void tearDown() {
        idxd.deactivate();
        stack.close();
    }

    /** An IOMMU of the vendor with a DSA behind it: shared queue 0 with block on fault, enabled. */
    private IdxdDevice dsa(String vendor) throws Exception {
        stack.instance(vendor, "io0", RID);
        IdxdDevice d = idxd.create("dsa0", "io0", RID);
        d.configure(0, WorkQueueConfig.shared(16));
        d.enable();
        d.enableWq(0);
        return d;
    }

    /** A user's buffers: source (written), destination and completion record, in one mapping. */
    private record Buffers(HostProcess p, long src, long dst, long comp) {
        static Buffers of(HostProcess p, boolean touchDestination) throws Exception {
            long a = p.mmap(2 << 20);
            Buffers b = new Buffers(p, a, a + 16 * PAGE, a + 32 * PAGE);
            if (touchDestination) {
                p.write(b.dst, new byte[SIZE], 0, SIZE);
            }
            p.write(b.comp, new byte[Dsa.COMP_SIZE], 0, Dsa.COMP_SIZE);
            return b;
        }

        byte[] fill(long seed) throws Exception {
            byte[] data = new byte[SIZE];
            new Random(seed).nextBytes(data);
            p.write(src, data, 0, SIZE);
            return data;
        }

        byte[] destination() throws Exception {
            byte[] data = new byte[SIZE];
            p.read(dst, data, 0, SIZE);
            return data;
        }

        CompletionRecord completion() throws Exception {
            byte[] raw = new byte[Dsa.COMP_SIZE];
            p.read(comp, raw, 0, raw.length);
            return CompletionRecord.decode(raw);
        }
    }

    /** ENQCMD of a MEMMOVE with the bond's PASID, then waits for the device. */
    private static CompletionRecord memmove(IdxdDevice d, SvaBond bond, Buffers b, long dst, int flags) throws Exception {
        submit(d, bond.pasid(), b, dst, flags);
        assertTrue(d.awaitIdle(20_000), "the device finished (no hang)");
        return b.completion();
    }

    private static void submit(IdxdDevice d, int pasid, Buffers b, long dst, int flags) throws Exception {
        b.p.write(b.comp, new byte[Dsa.COMP_SIZE], 0, Dsa.COMP_SIZE);
        byte[] desc = Dsa.descriptor(Dsa.OP_MEMMOVE).flags(flags).addr1(b.src).addr2(dst).size(SIZE)
                .completion(b.comp).build();
        assertEquals(SubmitStatus.ACCEPTED, d.enqcmd(0, desc, pasid, false));
    }

    private static long stat(IdxdDevice d, String name) {
        return d.statistics().getOrDefault(name, 0L);
    }

    @ParameterizedTest
    @ValueSource(strings = {"vtd", "smmuv3", "riscv"})
    void aHostProcessCopiesInItsOwnAddressSpaceByEnqcmd(String vendor) throws Exception {
        IdxdDevice d = dsa(vendor);
        HostProcess p = stack.processes.create("app", Long.MAX_VALUE);
        Buffers b = Buffers.of(p, true);
        SvaBond bond = stack.sva.bind(p, "io0", RID, stack.pasids.createSet("app", 4));
        byte[] data = b.fill(1);
        CompletionRecord c = memmove(d, bond, b, b.dst, NO_BOF);
        assertEquals(Dsa.COMP_SUCCESS, c.status(), c::toString);
        assertEquals(SIZE, c.bytesCompleted() == 0 ? SIZE : c.bytesCompleted());
        assertArrayEquals(data, b.destination(), "the copy landed in the process's memory");
        assertEquals(p.read64(b.src + SIZE - 8), p.read64(b.dst + SIZE - 8));
        assertEquals(0, bond.pageRequestsResolved(), "every page was resident: no page request");
    }

    @ParameterizedTest
    @ValueSource(strings = {"vtd", "smmuv3", "riscv"})
    void anUntouchedDestinationIsDemandPagedThroughPageRequests(String vendor) throws Exception {
        IdxdDevice d = dsa(vendor);
        HostProcess p = stack.processes.create("app", Long.MAX_VALUE);
        Buffers b = Buffers.of(p, false);
        SvaBond bond = stack.sva.bind(p, "io0", RID, stack.pasids.createSet("app", 4));
        byte[] data = b.fill(2);
        // Without block on fault the engine stops at the first page the CPU never touched.
        CompletionRecord c = memmove(d, bond, b, b.dst, NO_BOF);
        assertEquals(Dsa.COMP_PAGE_FAULT_NOBOF, c.status() & 0x7f, c::toString);
        assertEquals(b.dst, c.faultAddress());
        assertEquals(-1, p.residentAddress(b.dst), "nothing faulted the page in");
        // With block on fault the engine asks, the IOPF queue faults the pages in, the copy completes.
        long before = bond.pageRequestsResolved();
        c = memmove(d, bond, b, b.dst, BOF);
        assertEquals(Dsa.COMP_SUCCESS, c.status(), c::toString);
        assertTrue(bond.pageRequestsResolved() > before, "page requests were resolved");
        assertEquals(SIZE / PAGE, bond.pageRequestsResolved() - before, "one per destination page");
        assertEquals(0, bond.pageRequestsInvalid());
        assertTrue(stat(d, "page-responses.success") >= SIZE / PAGE);
        assertArrayEquals(data, b.destination());
        assertTrue(p.residentAddress(b.dst + SIZE - 1) != -1, "the pages are the process's now");
    }

    @ParameterizedTest
    @ValueSource(strings = {"vtd", "smmuv3", "riscv"})
    void anAddressOutsideTheMappingsCompletesWithAPageFaultStatus(String vendor) throws Exception {
        IdxdDevice d = dsa(vendor);
        HostProcess p = stack.processes.create("app", Long.MAX_VALUE);
        Buffers b = Buffers.of(p, true);
        SvaBond bond = stack.sva.bind(p, "io0", RID, stack.pasids.createSet("app", 4));
        b.fill(3);
        long outside = b.src + (64L << 20);
        CompletionRecord c = memmove(d, bond, b, outside, BOF);
        assertEquals(Dsa.COMP_PAGE_FAULT_IR, c.status() & 0x7f, c::toString);
        assertEquals(outside, c.faultAddress());
        assertEquals(1, bond.pageRequestsInvalid(), "the page request was answered Invalid Request");
        c = memmove(d, bond, b, outside, NO_BOF);
        assertEquals(Dsa.COMP_PAGE_FAULT_NOBOF, c.status() & 0x7f, c::toString);
        assertEquals(-1, p.residentAddress(outside));
        // The device and the bond carry on.
        byte[] data = b.fill(4);
        assertEquals(Dsa.COMP_SUCCESS, memmove(d, bond, b, b.dst, NO_BOF).status());
        assertArrayEquals(data, b.destination());
    }

    @ParameterizedTest
    @ValueSource(strings = {"vtd", "smmuv3", "riscv"})
    void unbindWithADescriptorInFlight(String vendor) throws Exception {
        inFlight(vendor, false);
    }

    @ParameterizedTest
    @ValueSource(strings = {"vtd", "smmuv3", "riscv"})
    void exitWithADescriptorInFlight(String vendor) throws Exception {
        inFlight(vendor, true);
    }

    /**
     * A descriptor waits for a page request while the process unbinds (or exits): it completes
     * with an error (its record cannot be written any more: a software error), the device
     * writes nothing into the process's (or the freed) frames, later descriptors with the old
     * PASID fail too, and the device works for the next process.
     */
    private void inFlight(String vendor, boolean exit) throws Exception {
        IdxdDevice d = dsa(vendor);
        long baseline = stack.memory.allocatedFrames();
        HostProcess p = stack.processes.create("app", Long.MAX_VALUE);
        Buffers b = Buffers.of(p, false);
        SvaBond bond = stack.sva.bind(p, "io0", RID, stack.pasids.createSet("app", 4));
        int pasid = bond.pasid();
        b.fill(5);
        // The fault handler is held inside the process's fault of the first destination page.
        CountDownLatch inFault = new CountDownLatch(1);
        CountDownLatch letGo = new CountDownLatch(1);
        AtomicBoolean once = new AtomicBoolean();
        p.addMmuNotifier(new MmuNotifier() {
            @Override
            public void pageResident(HostProcess process, long vaddr, long hostPhysical) {
                if (vaddr == b.dst && once.compareAndSet(false, true)) {
                    inFault.countDown();
                    try {
                        letGo.await(10, TimeUnit.SECONDS);
                    } catch (InterruptedException e) {
                        Thread.currentThread().interrupt();
                    }
                }
            }

            @Override
            public void invalidateRange(HostProcess process, long vaddr, long length) {
            }
        });
        long completedBefore = stat(d, "completed.PAGE_FAULT_IR");
        submit(d, pasid, b, b.dst, BOF);
        assertTrue(inFault.await(10, TimeUnit.SECONDS), "the descriptor waits on a page request");
        // Another user's pages, written before the descriptor can go on: after an exit they may
        // well be the frames the process just gave back.
        HostProcess other = stack.processes.create("other", Long.MAX_VALUE);
        if (exit) {
            stack.processes.exit("app");
        } else {
            bond.unbind();
        }
        assertFalse(bond.isBound());
        Buffers ob = Buffers.of(other, true);
        byte[] otherData = ob.fill(6);
        other.write(ob.dst, otherData, 0, SIZE);
        letGo.countDown();
        assertTrue(d.awaitIdle(20_000), "the descriptor finished (no hang)");
        Map<String, Long> stats = d.statistics();
        assertEquals(completedBefore + 1, stat(d, "completed.PAGE_FAULT_IR"), stats::toString);
        assertTrue(stats.getOrDefault("page-responses.invalid", 0L) >= 1, stats::toString);
        assertTrue(stats.getOrDefault("software-errors", 0L) >= 1, "the record had nowhere to go: " + stats);
        if (!exit) {
            assertTrue(b.completion().status() == 0, "nothing was written through the unbound PASID");
            assertTrue(p.residentAddress(b.dst + PAGE) == -1, "the device did not go on to the next page");
        }
        // A descriptor with the old PASID now: the device takes it and it fails, as translation does.
        long swerr = stat(d, "software-errors");
        byte[] stale = Dsa.descriptor(Dsa.OP_MEMMOVE).flags(BOF).addr1(b.src).addr2(b.dst).size(SIZE)
                .completion(b.comp).build();
        SubmitStatus s = d.enqcmd(0, stale, pasid, false);
        assertTrue(d.awaitIdle(20_000));
        assertTrue(s != SubmitStatus.ACCEPTED || stat(d, "software-errors") > swerr, "the stale PASID did no DMA: "
                + d.statistics());
        assertArrayEquals(otherData, otherDestination(ob), "the other process's frames are untouched");
        assertArrayEquals(otherData, sourceOf(ob));

        // The device works for the next process.
        SvaBond next = stack.sva.bind(other, "io0", RID, stack.pasids.createSet("other", 4));
        byte[] data = ob.fill(7);
        CompletionRecord c = memmove(d, next, ob, ob.dst, BOF);
        assertEquals(Dsa.COMP_SUCCESS, c.status(), c::toString);
        assertArrayEquals(data, ob.destination());
        if (exit) {
            stack.processes.exit("other");
            assertEquals(baseline, stack.memory.allocatedFrames(), "every frame went back");
        }
    }

    private static byte[] otherDestination(Buffers b) throws Exception {
        return b.destination();
    }

    private static byte[] sourceOf(Buffers b) throws Exception {
        byte[] data = new byte[SIZE];
        b.p.read(b.src, data, 0, SIZE);
        return data;
    }
}
