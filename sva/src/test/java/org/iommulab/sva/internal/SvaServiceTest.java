package org.iommulab.sva.internal;

import static org.iommulab.sva.internal.SvaStack.dma;
import static org.iommulab.sva.internal.SvaStack.pageRequest;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;

import org.iommulab.api.errno.Errno;
import org.iommulab.api.errno.IommuException;
import org.iommulab.api.fault.PageResponse;
import org.iommulab.api.pasid.PasidSet;
import org.iommulab.api.process.HostProcess;
import org.iommulab.api.process.MmuNotifier;
import org.iommulab.api.spi.IommuInstance;
import org.iommulab.api.sva.SvaBond;
import org.iommulab.api.translation.Access;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.function.Executable;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/** Host SVA over each backend: bind, translate, demand paging, munmap, swap, unbind and exit. */
class SvaServiceTest {
    static final int RID = 0x18;
    static final int RID2 = 0x20;
    static final int RW = Access.READ | Access.WRITE;
    static final long PAGE = 4096;

    final SvaStack stack = new SvaStack();

    @AfterEach
    void tearDown() {
        stack.close();
    }

    static void assertErrno(Errno errno, Executable call) {
        IommuException e = assertThrows(IommuException.class, call);
        assertEquals(errno, e.errno(), e::getMessage);
    }

    private IommuInstance iommu(String vendor) throws IommuException {
        return stack.instance(vendor, "io0", RID, RID2, RID + 1);
    }

    @ParameterizedTest
    @ValueSource(strings = {"vtd", "smmuv3", "riscv"})
    void bindTranslatesToThePagesTheCpuWrote(String vendor) throws Exception {
        IommuInstance io = iommu(vendor);
        HostProcess p = stack.processes.create("app", Long.MAX_VALUE);
        PasidSet set = stack.pasids.createSet("app", 4);
        long a = p.mmap(16 * PAGE);
        p.write64(a + 8, 0x1234); // resident before the bind
        SvaBond bond = stack.sva.bind(p, "io0", RID, set);
        assertTrue(set.contains(bond.pasid()));
        assertTrue(bond.isBound());
        assertSame(p, bond.process());
        assertEquals("io0", bond.iommu());
        assertEquals(RID, bond.requesterId());
        assertSame(set, bond.set());
        assertNotEquals(0, bond.pageTableRoot());
        assertEquals(List.of(bond), stack.sva.bonds());
        assertEquals(p.residentAddress(a) + 8, dma(io, RID, bond.pasid(), a + 8, RW));
        // A page the CPU touches after the bind is mapped at once.
        p.write64(a + 5 * PAGE, 0x5678);
        long pa = dma(io, RID, bond.pasid(), a + 5 * PAGE, Access.READ);
        assertEquals(p.residentAddress(a + 5 * PAGE), pa);
        assertEquals(0x5678, stack.memory.read64(pa));
    }

    @ParameterizedTest
    @ValueSource(strings = {"vtd", "smmuv3", "riscv"})
    void aPageRequestFaultsAnUntouchedPageInAndTheDmaCompletes(String vendor) throws Exception {
        IommuInstance io = iommu(vendor);
        HostProcess p = stack.processes.create("app", Long.MAX_VALUE);
        long a = p.mmap(16 * PAGE);
        SvaBond bond = stack.sva.bind(p, "io0", RID, stack.pasids.createSet("app", 4));
        long va = a + 3 * PAGE;
        assertEquals(-1, dma(io, RID, bond.pasid(), va + 0x10, Access.WRITE), "never touched: the DMA faults");
        assertEquals(PageResponse.SUCCESS, pageRequest(io, RID, bond.pasid(), va, Access.WRITE, 3));
        long pa = dma(io, RID, bond.pasid(), va + 0x10, Access.WRITE);
        assertEquals(p.residentAddress(va) + 0x10, pa, "the retried DMA reaches the process's new page");
        stack.memory.write64(pa, 0xfeed); // the device writes
        assertEquals(0xfeed, p.read64(va + 0x10), "the CPU sees what the device wrote");
        assertEquals(1, bond.pageRequestsResolved());
        assertEquals(0, bond.pageRequestsInvalid());
    }

    @ParameterizedTest
    @ValueSource(strings = {"vtd", "smmuv3", "riscv"})
    void anAddressOutsideTheMappingsIsAnsweredInvalid(String vendor) throws Exception {
        IommuInstance io = iommu(vendor);
        HostProcess p = stack.processes.create("app", Long.MAX_VALUE);
        long a = p.mmap(PAGE);
        SvaBond bond = stack.sva.bind(p, "io0", RID, stack.pasids.createSet("app", 4));
        long frames = stack.memory.allocatedFrames();
        long outside = a + (4L << 20);
        assertEquals(PageResponse.INVALID, pageRequest(io, RID, bond.pasid(), outside, Access.READ, 9));
        assertEquals(-1, dma(io, RID, bond.pasid(), outside, Access.READ));
        assertEquals(-1, p.residentAddress(outside));
        assertEquals(frames, stack.memory.allocatedFrames(), "nothing was mapped");
        assertEquals(1, bond.pageRequestsInvalid());
        assertEquals(0, bond.pageRequestsResolved());
    }

    @ParameterizedTest
    @ValueSource(strings = {"vtd", "smmuv3", "riscv"})
    void munmapLeavesNoStaleTranslation(String vendor) throws Exception {
        IommuInstance io = iommu(vendor);
        HostProcess p = stack.processes.create("app", Long.MAX_VALUE);
        long a = p.mmap(4 * PAGE);
        p.write64(a, 1);
        p.write64(a + PAGE, 2);
        SvaBond bond = stack.sva.bind(p, "io0", RID, stack.pasids.createSet("app", 4));
        assertNotEquals(-1, dma(io, RID, bond.pasid(), a, Access.READ)); // now in the IOTLB
        assertNotEquals(-1, dma(io, RID, bond.pasid(), a + PAGE, Access.READ));
        p.munmap(a, PAGE);
        assertEquals(-1, dma(io, RID, bond.pasid(), a, Access.READ), "the unmapped page faults");
        assertNotEquals(-1, dma(io, RID, bond.pasid(), a + PAGE, Access.READ), "its neighbour stays");
        assertEquals(PageResponse.INVALID, pageRequest(io, RID, bond.pasid(), a, Access.READ, 1));
    }

    @ParameterizedTest
    @ValueSource(strings = {"vtd", "smmuv3", "riscv"})
    void aSwappedOutPageComesBackThroughAPageRequestWithItsContents(String vendor) throws Exception {
        IommuInstance io = iommu(vendor);
        HostProcess p = stack.processes.create("app", Long.MAX_VALUE);
        long a = p.mmap(2 * PAGE);
        p.write64(a + 0x20, 0xabcd);
        SvaBond bond = stack.sva.bind(p, "io0", RID, stack.pasids.createSet("app", 4));
        assertNotEquals(-1, dma(io, RID, bond.pasid(), a + 0x20, Access.READ));
        assertEquals(1, p.swapOut(a, 2 * PAGE));
        assertEquals(-1, dma(io, RID, bond.pasid(), a + 0x20, Access.READ), "swapped out: the DMA faults");
        assertEquals(PageResponse.SUCCESS, pageRequest(io, RID, bond.pasid(), a, Access.READ, 2));
        long pa = dma(io, RID, bond.pasid(), a + 0x20, Access.READ);
        assertNotEquals(-1, pa);
        assertEquals(0xabcd, stack.memory.read64(pa), "the contents came back from swap");
        assertEquals(0, p.swappedPages());
    }

    @ParameterizedTest
    @ValueSource(strings = {"vtd", "smmuv3", "riscv"})
    void oneProcessHasOnePasidPerSet(String vendor) throws Exception {
        IommuInstance io = iommu(vendor);
        HostProcess p = stack.processes.create("app", Long.MAX_VALUE);
        long a = p.mmap(PAGE);
        p.write64(a, 7);
        PasidSet s1 = stack.pasids.createSet("app", 4);
        PasidSet s2 = stack.pasids.createSet("other", 4);
        SvaBond b1 = stack.sva.bind(p, "io0", RID, s1);
        SvaBond b2 = stack.sva.bind(p, "io0", RID2, s1);
        SvaBond b3 = stack.sva.bind(p, "io0", RID + 1, s2);
        assertEquals(b1.pasid(), b2.pasid(), "a second device of the same process in the same set: the same PASID");
        assertNotEquals(b1.pasid(), b3.pasid(), "another set: another PASID");
        assertEquals(b1.pageTableRoot(), b3.pageTableRoot(), "one table per process and format");
        assertEquals(1, s1.size());
        for (SvaBond b : List.of(b1, b2, b3)) {
            assertEquals(p.residentAddress(a), dma(io, b.requesterId(), b.pasid(), a, Access.READ));
        }
        b1.unbind();
        assertTrue(s1.contains(b2.pasid()), "still used by the second device");
        assertEquals(-1, dma(io, RID, b1.pasid(), a, Access.READ));
        assertEquals(p.residentAddress(a), dma(io, RID2, b2.pasid(), a, Access.READ));
        b2.unbind();
        assertFalse(s1.contains(b2.pasid()), "freed with its last bond");
        assertEquals(List.of(b3), stack.sva.bonds());
    }

    @ParameterizedTest
    @ValueSource(strings = {"vtd", "smmuv3", "riscv"})
    void unbindFaultsFreesThePasidAndAnswersWaitingRequestsInvalid(String vendor) throws Exception {
        IommuInstance io = iommu(vendor);
        HostProcess p = stack.processes.create("app", Long.MAX_VALUE);
        long a = p.mmap(4 * PAGE);
        p.write64(a, 1);
        PasidSet set = stack.pasids.createSet("app", 4);
        SvaBond bond = stack.sva.bind(p, "io0", RID, set);
        int pasid = bond.pasid();
        // A page request in flight: the fault handler is held inside the process's fault.
        CountDownLatch inFault = new CountDownLatch(1);
        CountDownLatch letGo = new CountDownLatch(1);
        p.addMmuNotifier(new MmuNotifier() {
            @Override
            public void pageResident(HostProcess process, long vaddr, long hostPhysical) {
                inFault.countDown();
                try {
                    letGo.await(5, TimeUnit.SECONDS);
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                }
            }

            @Override
            public void invalidateRange(HostProcess process, long vaddr, long length) {
            }
        });
        assertTrue(io.pageRequest(RID, pasid, a + PAGE, Access.WRITE, 4));
        assertTrue(inFault.await(5, TimeUnit.SECONDS));
        bond.unbind();
        letGo.countDown();
        assertEquals(PageResponse.INVALID, SvaStack.await(() -> io.pageRequestStatus(RID, pasid, 4), "the response"));
        assertFalse(bond.isBound());
        assertEquals(-1, dma(io, RID, pasid, a, Access.READ));
        assertFalse(set.contains(pasid));
        assertTrue(stack.sva.bonds().isEmpty());
        assertErrno(Errno.ENOENT, bond::unbind);
        assertEquals(1, bond.pageRequestsInvalid());
    }

    @ParameterizedTest
    @ValueSource(strings = {"vtd", "smmuv3", "riscv"})
    void exitUnbindsEverythingAndGivesEveryFrameBack(String vendor) throws Exception {
        IommuInstance io = iommu(vendor);
        PasidSet set = stack.pasids.createSet("app", 4);
        long baseline = stack.memory.allocatedFrames();
        HostProcess p = stack.processes.create("app", Long.MAX_VALUE);
        long a = p.mmap(64 * PAGE);
        for (int i = 0; i < 64; i += 3) {
            p.write64(a + i * PAGE, i);
        }
        p.swapOut(a, 6 * PAGE);
        SvaBond b1 = stack.sva.bind(p, "io0", RID, set);
        SvaBond b2 = stack.sva.bind(p, "io0", RID2, set);
        assertEquals(PageResponse.SUCCESS, pageRequest(io, RID, b1.pasid(), a + PAGE, Access.WRITE, 1));
        stack.processes.exit("app");
        assertFalse(b1.isBound());
        assertFalse(b2.isBound());
        assertTrue(stack.sva.bonds().isEmpty());
        assertEquals(0, set.size(), "the PASID is free");
        assertEquals(-1, dma(io, RID, b1.pasid(), a + 3 * PAGE, Access.READ));
        assertEquals(baseline, stack.memory.allocatedFrames(), "pages, swap, page tables and SVA structures went back");
    }

    @ParameterizedTest
    @ValueSource(strings = {"vtd", "smmuv3", "riscv"})
    void closingTheSetOrRemovingTheIommuUnbinds(String vendor) throws Exception {
        IommuInstance io = iommu(vendor);
        HostProcess p = stack.processes.create("app", Long.MAX_VALUE);
        long a = p.mmap(PAGE);
        p.write64(a, 1);
        PasidSet set = stack.pasids.createSet("app", 4);
        SvaBond bond = stack.sva.bind(p, "io0", RID, set);
        set.close();
        assertFalse(bond.isBound());
        assertEquals(-1, dma(io, RID, bond.pasid(), a, Access.READ));
        assertTrue(stack.sva.bonds().isEmpty());
        PasidSet again = stack.pasids.createSet("app2", 4);
        SvaBond b2 = stack.sva.bind(p, "io0", RID, again);
        stack.registry.destroy("io0");
        assertFalse(b2.isBound());
        assertEquals(0, again.size());
        assertTrue(stack.sva.bonds().isEmpty());
    }

    @ParameterizedTest
    @ValueSource(strings = {"vtd", "smmuv3", "riscv"})
    void badBindsAreRefusedAndChangeNothing(String vendor) throws Exception {
        IommuInstance io = iommu(vendor);
        HostProcess p = stack.processes.create("app", Long.MAX_VALUE);
        long a = p.mmap(PAGE);
        p.write64(a, 1);
        PasidSet set = stack.pasids.createSet("app", 1);
        PasidSet closed = stack.pasids.createSet("closed", 1);
        closed.close();
        PasidSet full = stack.pasids.createSet("full", 1);
        full.allocate();
        long frames = stack.memory.allocatedFrames();
        assertErrno(Errno.EPERM, () -> stack.sva.bind(p, "io0", RID, closed));
        assertErrno(Errno.ENODEV, () -> stack.sva.bind(p, "nope", RID, set));
        assertErrno(Errno.ENOSPC, () -> stack.sva.bind(p, "io0", RID, full));
        assertErrno(Errno.ENOENT, () -> stack.sva.bind(p, "io0", 0x40, set)); // not attached
        assertErrno(Errno.EINVAL, () -> stack.sva.bind(null, "io0", RID, set));
        HostProcess gone = stack.processes.create("gone", Long.MAX_VALUE);
        stack.processes.exit("gone");
        assertErrno(Errno.ENODEV, () -> stack.sva.bind(gone, "io0", RID, set));
        assertEquals(frames, stack.memory.allocatedFrames());
        assertEquals(0, set.size());
        assertEquals(1, full.size());
        assertTrue(stack.sva.bonds().isEmpty());
        SvaBond bond = stack.sva.bind(p, "io0", RID, set);
        long bound = stack.memory.allocatedFrames();
        assertErrno(Errno.EBUSY, () -> stack.sva.bind(p, "io0", RID, set));
        assertEquals(bound, stack.memory.allocatedFrames());
        assertEquals(List.of(bond), stack.sva.bonds());
        assertEquals(p.residentAddress(a), dma(io, RID, bond.pasid(), a, Access.READ));
    }

    @Test
    void theHostFormatFollowsTheIommu() throws Exception {
        for (String vendor : List.of("vtd", "smmuv3", "riscv")) {
            IommuInstance io = stack.instance(vendor, "f-" + vendor);
            assertNotNullFormat(HostFormat.of(io.driver().nestingInfo()));
        }
        assertErrno(Errno.EOPNOTSUPP, () -> HostFormat.of(new org.iommulab.api.nesting.NestingInfo("amd-v1",
                java.util.Set.of(), 48, 20, 0x1000, java.util.Map.of())));
    }

    private static void assertNotNullFormat(HostFormat.Choice c) {
        assertNull(c.format().checkInput(0x7fff_ffff_f000L), c.id() + " takes the top of the user half");
    }
}
