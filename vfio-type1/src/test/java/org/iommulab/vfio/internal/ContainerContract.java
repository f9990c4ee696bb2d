package org.iommulab.vfio.internal;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicReference;

import org.iommulab.api.device.Requester;
import org.iommulab.api.errno.Errno;
import org.iommulab.api.errno.IommuException;
import org.iommulab.api.pasid.Pasids;
import org.iommulab.api.process.HostProcess;
import org.iommulab.api.spi.IommuInstance;
import org.iommulab.api.translation.Access;
import org.iommulab.api.translation.Translation;
import org.iommulab.api.vfio.DmaMapping;
import org.iommulab.api.vfio.IovaRange;
import org.iommulab.api.vfio.VfioContainer;
import org.iommulab.api.vfio.VfioIommuInfo;
import org.iommulab.api.vfio.VfioIommuType;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.function.Executable;

/**
 * The VFIO type1 contract, run over each backend by a subclass: the MAP_DMA / UNMAP_DMA errno
 * matrix, pinning and accounting, groups sharing a domain, release, and DMA through the mappings.
 */
abstract class ContainerContract {
    static final int RW = VfioContainer.DMA_MAP_FLAG_READ | VfioContainer.DMA_MAP_FLAG_WRITE;
    static final long MB = 1 << 20;

    VfioStack stack;
    IommuInstance iommu;
    Requester dev;
    HostProcess vm;
    long ram;
    VfioContainer c;
    final Translation t = new Translation();

    /** @return the backend's vendor id */
    abstract String vendor();

    /** @return a reserved IOVA the backend reports (its MSI window) */
    abstract long reservedIova();

    @BeforeEach
    void setUp() throws Exception {
        stack = newStack();
        iommu = stack.instance(vendor(), "iommu0");
        dev = stack.device("dev0", iommu, 0x10, 20);
        vm = stack.process("vm1");
        ram = vm.mmap(64 * MB);
        c = stack.container(vm, dev.groupId(), VfioIommuType.TYPE1V2);
    }

    VfioStack newStack() {
        return new VfioStack();
    }

    static void assertErrno(Errno expected, Executable call) {
        assertEquals(expected, assertThrows(IommuException.class, call).errno());
    }

    boolean translates(int rid, long iova, int access) {
        return iommu.translate(rid, Pasids.NO_PASID, iova, access, t);
    }

    @Test
    void aMappingIsBackedByTheOwnersMemoryAndFaultsOnceUnmapped() throws Exception {
        for (int i = 0; i < 16; i++) {
            vm.write64(ram + i * 4096L + 8, 0xc0ffee00L + i);
        }
        c.mapDma(ram, 0x10_0000, 64 * 1024, RW);
        assertEquals(List.of(new DmaMapping(0x10_0000, 64 * 1024, ram, RW)), c.mappings());
        for (int i = 0; i < 16; i++) {
            assertTrue(translates(dev.requesterId(), 0x10_0000 + i * 4096L + 8, Access.READ), t.toString());
            assertEquals(vm.residentAddress(ram + i * 4096L) + 8, t.outputAddress(), "the IOVA reaches the pinned page");
            assertEquals(0xc0ffee00L + i, stack.memory.read64(t.outputAddress()));
        }
        assertEquals(16, vm.pinnedPages());
        assertEquals(16, vm.lockedPages());
        assertEquals(64 * 1024, c.unmapDma(0x10_0000, 64 * 1024, 0));
        assertFalse(translates(dev.requesterId(), 0x10_0000 + 8, Access.READ), "unmapped: the device faults");
        assertEquals(0, vm.pinnedPages());
        assertEquals(0, vm.lockedPages());
        assertEquals(0xc0ffee00L, vm.read64(ram + 8), "the memory stays the process's");
    }

    @Test
    void readOnlyMappingsRefuseWrites() throws Exception {
        c.mapDma(ram, 0x20_0000, 4096, VfioContainer.DMA_MAP_FLAG_READ);
        assertTrue(translates(dev.requesterId(), 0x20_0000, Access.READ));
        assertFalse(translates(dev.requesterId(), 0x20_0000, Access.WRITE));
    }

    @Test
    void mapRejectionsChangeNothing() throws Exception {
        c.mapDma(ram, 0x10_0000, 0x4000, RW);
        List<DmaMapping> before = c.mappings();
        long aperture = 1L << iommuInputBits();
        Object[][] cases = {
            // vaddr, iova, size, flags, errno
            {ram, 0x40_0000L, 0x1000L, 4, Errno.EINVAL},                 // unknown flag
            {ram, 0x40_0000L, 0x1000L, 0, Errno.EINVAL},                 // neither read nor write
            {ram, 0x40_0000L, 0L, RW, Errno.EINVAL},                     // zero size
            {ram, 0x40_0800L, 0x1000L, RW, Errno.EINVAL},                // misaligned iova
            {ram + 0x800, 0x40_0000L, 0x1000L, RW, Errno.EINVAL},        // misaligned vaddr
            {ram, 0x40_0000L, 0x1800L, RW, Errno.EINVAL},                // misaligned size
            {ram, -0x1000L, 0x2000L, RW, Errno.EINVAL},                  // iova wraps
            {-0x1000L, 0x40_0000L, 0x2000L, RW, Errno.EINVAL},           // vaddr wraps
            {ram, 0x10_0000L, 0x4000L, RW, Errno.EEXIST},                // the same range
            {ram, 0x10_2000L, 0x4000L, RW, Errno.EEXIST},                // overlaps the tail
            {ram, 0x0F_F000L, 0x2000L, RW, Errno.EEXIST},                // overlaps the head
            {ram, 0x0F_0000L, 0x20_000L, RW, Errno.EEXIST},              // encloses it
            {ram, aperture - 0x1000, 0x2000L, RW, Errno.EINVAL},         // beyond the aperture
            {ram, reservedIova(), 0x1000L, RW, Errno.EINVAL},            // the MSI window
            {ram + 128 * MB, 0x40_0000L, 0x1000L, RW, Errno.EFAULT},     // not the process's memory
            {ram + 64 * MB - 0x1000, 0x40_0000L, 0x2000L, RW, Errno.EFAULT}, // runs off the mapping
        };
        for (Object[] k : cases) {
            long vaddr = (Long) k[0];
            long iova = (Long) k[1];
            long size = (Long) k[2];
            int flags = (Integer) k[3];
            assertEquals(k[4], assertThrows(IommuException.class, () -> c.mapDma(vaddr, iova, size, flags),
                    String.format("map vaddr 0x%x iova 0x%x size 0x%x flags %d", vaddr, iova, size, flags)).errno(),
                    String.format("map vaddr 0x%x iova 0x%x size 0x%x flags %d", vaddr, iova, size, flags));
            assertEquals(before, c.mappings());
            assertEquals(4, vm.pinnedPages(), "a rejected map pins nothing");
            assertEquals(4, vm.lockedPages(), "a rejected map charges nothing");
        }
        assertFalse(translates(dev.requesterId(), 0x40_0000, Access.READ));
    }

    abstract int iommuInputBits();

    @Test
    void unmapFollowsType1v2() throws Exception {
        c.mapDma(ram, 0x10_0000, 0x1_0000, RW);
        c.mapDma(ram + 0x1_0000, 0x20_0000, 0x4000, RW);
        c.mapDma(ram + 0x2_0000, 0x30_0000, 0x1000, VfioContainer.DMA_MAP_FLAG_READ);
        List<DmaMapping> before = c.mappings();
        assertErrno(Errno.EINVAL, () -> c.unmapDma(0x10_4000, 0x1000, 0));   // bisects the head
        assertErrno(Errno.EINVAL, () -> c.unmapDma(0x0F_F000, 0x2000, 0));   // bisects the tail
        assertErrno(Errno.EINVAL, () -> c.unmapDma(0x1F_0000, 0x1_2000, 0)); // would take the head of the second
        assertEquals(before, c.mappings());
        assertErrno(Errno.EINVAL, () -> c.unmapDma(0x10_0000, 0, 0));        // zero size
        assertErrno(Errno.EINVAL, () -> c.unmapDma(0x10_0800, 0x1000, 0));   // misaligned
        assertErrno(Errno.EINVAL, () -> c.unmapDma(0x10_0000, 0x800, 0));    // misaligned size
        assertErrno(Errno.EINVAL, () -> c.unmapDma(-0x1000, 0x2000, 0));     // wraps
        assertErrno(Errno.EINVAL, () -> c.unmapDma(0x10_0000, 0x1000, 1));   // unknown flag (GET_DIRTY_BITMAP)
        assertErrno(Errno.EINVAL, () -> c.unmapDma(0x10_0000, 0, VfioContainer.DMA_UNMAP_FLAG_ALL));
        assertErrno(Errno.EINVAL, () -> c.unmapDma(0, 0x1000, VfioContainer.DMA_UNMAP_FLAG_ALL));
        assertEquals(before, c.mappings(), "rejected unmaps change nothing");
        assertEquals(0, c.unmapDma(0x50_0000, 0x10_0000, 0), "an empty range unmaps nothing");
        assertEquals(0x1_4000, c.unmapDma(0x0, 0x28_0000, 0), "whole mappings inside the range go");
        assertEquals(List.of(new DmaMapping(0x30_0000, 0x1000, ram + 0x2_0000, VfioContainer.DMA_MAP_FLAG_READ)), c.mappings());
        c.mapDma(ram, 0x10_0000, 0x1_0000, RW);
        assertEquals(0x1_1000, c.unmapDma(0, 0, VfioContainer.DMA_UNMAP_FLAG_ALL));
        assertTrue(c.mappings().isEmpty());
        assertEquals(0, vm.pinnedPages());
        assertEquals(0, vm.lockedPages());
        assertFalse(translates(dev.requesterId(), 0x30_0000, Access.READ));
    }

    @Test
    void callsBeforeTheIommuIsSetAreRejected() throws Exception {
        Requester other = stack.device("dev1", iommu, 0x18, 0);
        VfioContainer fresh = stack.vfio.open(vm);
        assertErrno(Errno.EINVAL, () -> fresh.setIommu(VfioIommuType.TYPE1V2));   // no group yet
        assertErrno(Errno.ENOENT, () -> fresh.addGroup(999));
        assertErrno(Errno.EINVAL, () -> fresh.addGroup(dev.groupId()));            // in c already
        fresh.addGroup(other.groupId());
        assertErrno(Errno.EINVAL, () -> fresh.addGroup(other.groupId()));
        assertErrno(Errno.EINVAL, () -> fresh.mapDma(ram, 0, 4096, RW));
        assertErrno(Errno.EINVAL, () -> fresh.unmapDma(0, 4096, 0));
        assertErrno(Errno.EINVAL, fresh::info);
        assertErrno(Errno.EOPNOTSUPP, () -> fresh.pasidAlloc(1, 10));
        fresh.setIommu(VfioIommuType.TYPE1V2);
        assertErrno(Errno.EINVAL, () -> fresh.setIommu(VfioIommuType.TYPE1V2));
        fresh.close();
        assertErrno(Errno.ENODEV, () -> fresh.mapDma(ram, 0, 4096, RW));
        assertTrue(fresh.isClosed());
        assertTrue(stack.vfio.container(fresh.id()).isEmpty());
    }

    @Test
    void infoReportsPageSizesRangesAndAvailability() throws Exception {
        c.mapDma(ram, 0x10_0000, 0x1000, RW);
        VfioIommuInfo info = c.info();
        assertTrue((info.pageSizes() & 4096) != 0, "4 KiB pages");
        assertEquals(65534, info.dmaAvailable());
        assertTrue(info.nesting().isEmpty(), "type1v2 has no nesting capability");
        long reserved = reservedIova();
        assertTrue(info.iovaRanges().stream().noneMatch(r -> r.contains(reserved)), "the MSI window is excluded");
        assertTrue(info.iovaRanges().stream().anyMatch(r -> r.contains(reserved - 1)));
        assertTrue(info.iovaRanges().stream().anyMatch(r -> r.contains(reserved + MB)));
        IovaRange last = info.iovaRanges().get(info.iovaRanges().size() - 1);
        assertEquals((1L << iommuInputBits()) - 1, last.end(), "the aperture ends at the domain's input width");
    }

    @Test
    void theLockedMemoryLimitRefusesPinsAndUnmapReleasesThem() throws Exception {
        vm.setLockedLimit(16 * 1024);
        assertErrno(Errno.ENOMEM, () -> c.mapDma(ram, 0, 32 * 1024, RW));
        assertEquals(0, vm.pinnedPages());
        assertEquals(0, vm.lockedPages());
        assertTrue(c.mappings().isEmpty());
        c.mapDma(ram, 0, 16 * 1024, RW);
        assertErrno(Errno.ENOMEM, () -> c.mapDma(ram + 16 * 1024, 0x10_0000, 4096, RW));
        assertEquals(4, vm.lockedPages());
        c.unmapDma(0, 16 * 1024, 0);
        assertEquals(0, vm.lockedPages());
        c.mapDma(ram, 0x10_0000, 16 * 1024, RW);
    }

    @Test
    void theDmaEntryLimitRefusesTheNextMapping() throws Exception {
        stack = new VfioStack(3, 10);
        iommu = stack.instance(vendor(), "iommu0");
        dev = stack.device("dev0", iommu, 0x10, 0);
        vm = stack.process("vm1");
        ram = vm.mmap(MB);
        c = stack.container(vm, dev.groupId(), VfioIommuType.TYPE1V2);
        for (int i = 0; i < 3; i++) {
            c.mapDma(ram + i * 4096L, i * 0x10_0000L, 4096, RW);
        }
        assertEquals(0, c.info().dmaAvailable());
        assertErrno(Errno.ENOSPC, () -> c.mapDma(ram + 0x8000, 0x80_0000, 4096, RW));
        assertEquals(3, vm.pinnedPages());
        c.unmapDma(0, 4096, 0);
        c.mapDma(ram + 0x8000, 0x80_0000, 4096, RW);
    }

    @Test
    void aStormOfMapsAndUnmapsLeavesNoPinAndNoTablePage() throws Exception {
        for (long off = 0; off < 8 * MB; off += 4096) {
            vm.write64(ram + off, off); // fault the memory in first: its frames stay the process's
        }
        long baseline = stack.memory.allocatedFrames();
        Random random = new Random(42);
        List<long[]> live = new ArrayList<>();
        for (int round = 0; round < 400; round++) {
            if (!live.isEmpty() && random.nextInt(3) == 0) {
                long[] m = live.remove(random.nextInt(live.size()));
                assertEquals(m[1], c.unmapDma(m[0], m[1], 0));
                continue;
            }
            long iova = (random.nextInt(1 << 12) * 4096L) << random.nextInt(12); // spread over many tables
            long size = (1 + random.nextInt(64)) * 4096L;
            long vaddr = ram + random.nextInt(1024) * 4096L;
            try {
                c.mapDma(vaddr, iova, size, RW);
                live.add(new long[] {iova, size});
            } catch (IommuException e) {
                assertTrue(e.errno() == Errno.EEXIST || e.errno() == Errno.EINVAL, e.toString());
            }
        }
        assertTrue(live.size() > 10, "the storm kept mappings alive");
        long mapped = live.stream().mapToLong(m -> m[1]).sum();
        assertEquals(mapped, c.unmapDma(0, 0, VfioContainer.DMA_UNMAP_FLAG_ALL));
        assertEquals(0, vm.pinnedPages());
        assertEquals(0, vm.lockedPages());
        assertEquals(baseline, stack.memory.allocatedFrames(), "every table page the mappings needed is freed");
    }

    @Test
    void groupsBehindOneIommuShareADomainAndTheLastOneReleasesIt() throws Exception {
        c.mapDma(ram, 0x10_0000, 0x2000, RW);
        Requester second = stack.device("dev1", iommu, 0x18, 0);
        c.addGroup(second.groupId());
        assertTrue(translates(second.requesterId(), 0x10_1000, Access.WRITE), "existing mappings reach the new group");
        assertEquals(vm.residentAddress(ram + 0x1000), t.outputAddress());
        c.mapDma(ram + 0x4000, 0x20_0000, 0x1000, RW);
        assertTrue(translates(dev.requesterId(), 0x20_0000, Access.READ), "new mappings reach both");
        assertTrue(translates(second.requesterId(), 0x20_0000, Access.READ));
        assertArrayEquals(new int[] {dev.groupId(), second.groupId()}, c.groups());

        c.removeGroup(dev.groupId());
        assertFalse(translates(dev.requesterId(), 0x20_0000, Access.READ), "a detached requester is blocked");
        assertTrue(translates(second.requesterId(), 0x20_0000, Access.READ));
        assertErrno(Errno.EINVAL, () -> c.removeGroup(dev.groupId()));
        c.removeGroup(second.groupId());
        assertTrue(c.iommuType().isEmpty(), "the last group released the IOMMU");
        assertTrue(c.mappings().isEmpty());
        assertEquals(0, vm.pinnedPages());
        assertEquals(0, vm.lockedPages());
        assertErrno(Errno.EINVAL, () -> c.mapDma(ram, 0, 4096, RW));
        // The released container can take a group again and start over.
        c.addGroup(dev.groupId());
        c.setIommu(VfioIommuType.TYPE1V2);
        c.mapDma(ram, 0, 4096, RW);
        assertTrue(translates(dev.requesterId(), 0, Access.READ));
    }

    @Test
    void aGroupIsInOneContainerAtATime() throws Exception {
        HostProcess other = stack.process("vm2");
        VfioContainer theirs = stack.vfio.open(other);
        assertErrno(Errno.EINVAL, () -> theirs.addGroup(dev.groupId()));
        c.close();
        theirs.addGroup(dev.groupId());
        theirs.setIommu(VfioIommuType.TYPE1V2);
    }

    @Test
    void aHeldGroupKeepsItsMembersAndNewLimitsApplyToNewContainers() throws Exception {
        assertErrno(Errno.EBUSY, () -> stack.bus.unregister("dev0"));
        assertErrno(Errno.EBUSY, () -> stack.bus.register("late", iommu.name(), 0x11, 0, dev.groupId()));
        stack.vfio.modified(VfioStack.config(1, 10));
        assertEquals(65535, c.info().dmaAvailable(), "an open container keeps its limit");
        Requester other = stack.device("dev1", iommu, 0x18, 0);
        VfioContainer small = stack.container(stack.process("vm2"), other.groupId(), VfioIommuType.TYPE1V2);
        assertEquals(1, small.info().dmaAvailable());
        c.removeGroup(dev.groupId());
        stack.bus.unregister("dev0");
    }

    @Test
    void closingReleasesEverything() throws Exception {
        long baseline = stack.memory.allocatedFrames();
        c.mapDma(ram, 0x10_0000, 0x10_000, RW);
        c.close();
        c.close();
        assertFalse(translates(dev.requesterId(), 0x10_0000, Access.READ));
        assertEquals(0, vm.pinnedPages());
        assertEquals(0, vm.lockedPages());
        assertTrue(stack.memory.allocatedFrames() < baseline + 16, "the domain's tables are freed");
        assertErrno(Errno.ENODEV, () -> c.addGroup(dev.groupId()));
        assertTrue(stack.vfio.containers().isEmpty());
    }

    @Test
    void aDepartingIommuTakesItsGroupsAndReleasesThePins() throws Exception {
        c.mapDma(ram, 0x10_0000, 0x4000, RW);
        stack.registry.destroy("iommu0");
        assertEquals(0, c.groups().length);
        assertTrue(c.iommuType().isEmpty());
        assertEquals(0, vm.pinnedPages());
        assertEquals(0, vm.lockedPages());
    }

    @Test
    void unmappedRangesNeverTranslateWhileOtherThreadsMapAndDma() throws Exception {
        int workers = 3;
        AtomicBoolean stop = new AtomicBoolean();
        AtomicReference<Throwable> failure = new AtomicReference<>();
        CountDownLatch done = new CountDownLatch(workers);
        List<Thread> threads = new ArrayList<>();
        for (int w = 0; w < workers; w++) {
            long iova = (w + 1) * 0x100_0000L;
            long vaddr = ram + w * 4 * MB;
            threads.add(new Thread(() -> {
                Translation mine = new Translation();
                try {
                    for (int round = 0; round < 150; round++) {
                        long size = (1 + round % 8) * 4096L;
                        c.mapDma(vaddr, iova, size, RW);
                        if (!iommu.translate(dev.requesterId(), Pasids.NO_PASID, iova + size - 1, Access.WRITE, mine)) {
                            throw new AssertionError("mapped range faults: " + mine);
                        }
                        c.unmapDma(iova, size, 0);
                        for (long off = 0; off < size; off += 4096) {
                            if (iommu.translate(dev.requesterId(), Pasids.NO_PASID, iova + off, Access.READ, mine)) {
                                throw new AssertionError("unmapped IOVA 0x" + Long.toHexString(iova + off) + " still translates");
                            }
                        }
                    }
                } catch (Throwable e) {
                    failure.compareAndSet(null, e);
                } finally {
                    done.countDown();
                }
            }));
        }
        Thread dma = new Thread(() -> {
            Translation mine = new Translation();
            Random random = new Random(7);
            try {
                while (!stop.get()) {
                    long iova = (1 + random.nextInt(workers)) * 0x100_0000L + random.nextInt(8) * 4096L;
                    if (iommu.translate(dev.requesterId(), Pasids.NO_PASID, iova, Access.READ, mine)) {
                        long w = iova / 0x100_0000L - 1;
                        long expected = vm.residentAddress(ram + w * 4 * MB + (iova & 0xf_ffff));
                        if (mine.outputAddress() != expected) {
                            throw new AssertionError("IOVA 0x" + Long.toHexString(iova) + " reached a page it was never mapped to");
                        }
                    }
                }
            } catch (Throwable e) {
                failure.compareAndSet(null, e);
            }
        });
        threads.forEach(Thread::start);
        dma.start();
        assertTrue(done.await(120, TimeUnit.SECONDS), "workers finished");
        stop.set(true);
        dma.join(10_000);
        if (failure.get() != null) {
            throw new AssertionError(failure.get());
        }
        assertTrue(c.mappings().isEmpty());
        assertEquals(0, vm.pinnedPages());
    }
}
