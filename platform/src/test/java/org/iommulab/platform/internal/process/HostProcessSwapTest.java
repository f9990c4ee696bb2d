package org.iommulab.platform.internal.process;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.List;

import org.iommulab.api.errno.Errno;
import org.iommulab.api.errno.IommuException;
import org.iommulab.api.process.HostProcess;
import org.iommulab.api.process.MmuNotifier;
import org.iommulab.platform.internal.memory.HostMemoryComponent;
import org.iommulab.platform.internal.memory.TestHostMemory;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.function.Executable;

/** Demand faults, swap and MMU notifiers of a host process. */
class HostProcessSwapTest {
    private final HostMemoryComponent memory = TestHostMemory.create(48, 1L << 40, 256);
    private final ProcessTableImpl table = new ProcessTableImpl(memory);

    private static void assertErrno(Errno errno, Executable call) {
        assertEquals(errno, assertThrows(IommuException.class, call).errno());
    }

    /** Records every notification as a line. */
    private static final class Recorder implements MmuNotifier {
        final List<String> events = new ArrayList<>();

        @Override
        public synchronized void pageResident(HostProcess process, long vaddr, long hostPhysical) {
            events.add(String.format("resident 0x%x 0x%x", vaddr, hostPhysical));
        }

        @Override
        public synchronized void invalidateRange(HostProcess process, long vaddr, long length) {
            events.add(String.format("invalidate 0x%x 0x%x", vaddr, length));
        }

        @Override
        public synchronized void release(HostProcess process) {
            events.add("release " + process.name());
        }
    }

    @Test
    void contentsSurviveSwapOutAndInAndFramesGoBackToThePool() throws Exception {
        HostProcess p = table.create("app", Long.MAX_VALUE);
        long a = p.mmap(4 * 4096);
        for (int i = 0; i < 4; i++) {
            p.write64(a + i * 4096L + 8, 0x1000 + i);
        }
        assertEquals(4, memory.allocatedFrames());
        assertEquals(3, p.swapOut(a, 3 * 4096));
        assertEquals(3, p.swappedPages());
        assertEquals(1, memory.allocatedFrames(), "swapped frames are back in the pool");
        assertEquals(-1, p.residentAddress(a));
        assertEquals(1, p.toDTO().residentPages);
        // A CPU read and a device fault both read the contents back.
        assertEquals(0x1000, p.read64(a + 8));
        long pa = p.faultIn(a + 4096 + 5, true);
        assertEquals(pa, p.residentAddress(a + 4096));
        assertEquals(0x1001, memory.read64(pa + 8));
        assertEquals(1, p.swappedPages());
        assertEquals(3, memory.allocatedFrames());
        // Swapping out again what is out already, or a hole, swaps nothing.
        assertEquals(0, p.swapOut(a + 2 * 4096, 4096));
        // munmap drops swapped pages with the rest.
        p.munmap(a, 4 * 4096);
        assertEquals(0, p.swappedPages());
        assertEquals(0, memory.allocatedFrames());
    }

    @Test
    void pinnedPagesStayResident() throws Exception {
        HostProcess p = table.create("app", Long.MAX_VALUE);
        long a = p.mmap(2 * 4096);
        long pinned = p.pin(a);
        p.write64(a + 4096, 7);
        assertEquals(1, p.swapOut(a, 2 * 4096));
        assertEquals(pinned, p.residentAddress(a));
        p.unpin(pinned);
        assertEquals(1, p.swapOut(a, 2 * 4096), "unpinned now");
        assertEquals(7, p.read64(a + 4096));
    }

    @Test
    void notifiersHearResidencyAndInvalidateBeforeTheFrameIsFreed() throws Exception {
        HostProcess p = table.create("app", Long.MAX_VALUE);
        long a = p.mmap(3 * 4096);
        List<String> seen = new ArrayList<>();
        MmuNotifier reader = new MmuNotifier() {
            @Override
            public void invalidateRange(HostProcess process, long vaddr, long length) {
                // The frames still hold the page: nothing was freed or written back yet.
                seen.add(String.format("0x%x allocated %d", vaddr, memory.allocatedFrames()));
            }
        };
        Recorder rec = new Recorder();
        p.addMmuNotifier(rec);
        p.addMmuNotifier(rec); // once only
        p.addMmuNotifier(reader);
        p.write64(a, 42); // first CPU touch
        long pa = p.residentAddress(a);
        p.read64(a); // resident: no event
        long pb = p.faultIn(a + 4096, false);
        assertEquals(pb, p.faultIn(a + 4096, true), "a resident page is left as it is");
        assertEquals(List.of(String.format("resident 0x%x 0x%x", a, pa), String.format("resident 0x%x 0x%x", a + 4096, pb)),
                rec.events);
        rec.events.clear();
        assertEquals(2, p.swapOut(a, 3 * 4096));
        assertEquals(List.of(String.format("invalidate 0x%x 0x2000", a)), rec.events);
        assertEquals(List.of(String.format("0x%x allocated 2", a)), seen);
        rec.events.clear();
        long back = p.faultIn(a, true);
        assertEquals(42, memory.read64(back));
        assertEquals(List.of(String.format("resident 0x%x 0x%x", a, back)), rec.events);
        rec.events.clear();
        seen.clear();
        p.munmap(a, 4096);
        assertEquals(List.of(String.format("invalidate 0x%x 0x1000", a)), rec.events);
        assertEquals(List.of(String.format("0x%x allocated 1", a)), seen);
        assertEquals(0, memory.allocatedFrames());
        // Removed notifiers hear nothing.
        p.removeMmuNotifier(rec);
        rec.events.clear();
        p.write64(a + 4096, 1);
        assertTrue(rec.events.isEmpty());
    }

    @Test
    void aFaultDuringWriteBackTakesTheFrameBackFromTheSwapCache() throws Exception {
        HostProcess p = table.create("app", Long.MAX_VALUE);
        long a = p.mmap(4096);
        p.write64(a, 99);
        long pa = p.residentAddress(a);
        long[] again = {-1};
        p.addMmuNotifier((process, vaddr, length) -> {
            try {
                again[0] = process.faultIn(vaddr, false);
            } catch (IommuException e) {
                throw new AssertionError(e);
            }
        });
        assertEquals(0, p.swapOut(a, 4096), "nothing written back: the page came back");
        assertEquals(pa, again[0]);
        assertEquals(pa, p.residentAddress(a));
        assertEquals(0, p.swappedPages());
        assertEquals(99, p.read64(a));
        assertEquals(1, memory.allocatedFrames());
    }

    @Test
    void badCallsChangeNothing() throws Exception {
        HostProcess p = table.create("app", Long.MAX_VALUE);
        long a = p.mmap(4096);
        p.write64(a, 5);
        Recorder rec = new Recorder();
        p.addMmuNotifier(rec);
        assertErrno(Errno.EFAULT, () -> p.faultIn(a + 4096, false));
        assertErrno(Errno.EFAULT, () -> p.faultIn(a - 1, true));
        assertErrno(Errno.EINVAL, () -> p.swapOut(a + 8, 4096));
        assertErrno(Errno.EINVAL, () -> p.swapOut(a, 0));
        assertErrno(Errno.EINVAL, () -> p.swapOut(-4096, 8192));
        assertErrno(Errno.EINVAL, () -> p.swapOut(Long.MAX_VALUE - 4095, 8192));
        assertErrno(Errno.EINVAL, () -> p.munmap(Long.MAX_VALUE - 4095, 8192));
        assertErrno(Errno.EINVAL, () -> p.munmap(-4096, 8192));
        assertErrno(Errno.EINVAL, () -> p.munmap(a, -1));
        assertTrue(rec.events.isEmpty());
        assertEquals(1, memory.allocatedFrames());
        assertEquals(0, p.swappedPages());
        assertEquals(5, p.read64(a));
        assertArrayEquals(new long[] {a, p.residentAddress(a)}, p.residentMappings());
    }

    @Test
    void residentMappingsListThePresentPagesInOrder() throws Exception {
        HostProcess p = table.create("app", Long.MAX_VALUE);
        long a = p.mmap(4 * 4096);
        long b = p.mmap(4096);
        p.write64(b, 1);
        p.write64(a + 2 * 4096, 1);
        p.write64(a, 1);
        assertArrayEquals(new long[] {a, p.residentAddress(a), a + 2 * 4096, p.residentAddress(a + 2 * 4096), b,
            p.residentAddress(b)}, p.residentMappings());
        p.swapOut(a, 4096);
        assertEquals(4, p.residentMappings().length);
    }

    @Test
    void exitReleasesNotifiersBeforeTheAddressSpaceGoes() throws Exception {
        HostProcess p = table.create("app", Long.MAX_VALUE);
        long a = p.mmap(2 * 4096);
        p.write64(a, 3);
        p.write64(a + 4096, 4);
        p.swapOut(a + 4096, 4096);
        long[] atRelease = new long[2];
        Recorder rec = new Recorder();
        p.addMmuNotifier(rec);
        p.addMmuNotifier(new MmuNotifier() {
            @Override
            public void invalidateRange(HostProcess process, long vaddr, long length) {
            }

            @Override
            public void release(HostProcess process) {
                atRelease[0] = process.residentAddress(a);
                atRelease[1] = memory.allocatedFrames();
            }
        });
        table.exit("app");
        assertEquals(List.of("release app"), rec.events);
        assertNotEquals(-1, atRelease[0], "the address space was intact at release");
        assertEquals(1, atRelease[1]);
        assertEquals(0, memory.allocatedFrames());
        assertEquals(0, p.swappedPages());
        assertErrno(Errno.ENODEV, () -> p.faultIn(a, false));
        assertErrno(Errno.ENODEV, () -> p.swapOut(a, 4096));
        assertEquals(0, p.residentMappings().length);
    }
}
