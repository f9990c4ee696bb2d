package org.iommulab.platform.internal.process;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;


import org.iommulab.api.errno.Errno;
import org.iommulab.api.errno.IommuException;
import org.iommulab.api.process.HostProcess;
import org.iommulab.platform.internal.memory.HostMemoryComponent;
import org.iommulab.platform.internal.memory.TestHostMemory;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.function.Executable;

class HostProcessImplTest {
    private final HostMemoryComponent memory = TestHostMemory.create(48, 1L << 40, 256);
    private final ProcessTableImpl table = new ProcessTableImpl(memory);

    private static void assertErrno(Errno errno, Executable call) {
        assertEquals(errno, assertThrows(IommuException.class, call).errno());
    }

    @Test
    void pagesAreBackedOnFirstTouchAndReadBackWhatTheCpuWrote() throws Exception {
        HostProcess p = table.create("qemu", Long.MAX_VALUE);
        long a = p.mmap(3 * 4096 + 1);
        assertEquals(0, a & ((2 << 20) - 1), "mappings are 2 MiB aligned");
        assertEquals(-1, p.residentAddress(a), "nothing is backed before a touch");
        assertEquals(0, memory.allocatedFrames());
        p.write64(a + 4096 - 4, 0x1122_3344_5566_7788L); // straddles two pages
        assertEquals(0x1122_3344_5566_7788L, p.read64(a + 4096 - 4));
        assertEquals(2, memory.allocatedFrames());
        assertEquals(0, p.read64(a + 3 * 4096), "the rounded-up last page reads zero");
        byte[] src = new byte[10_000];
        for (int i = 0; i < src.length; i++) {
            src[i] = (byte) i;
        }
        p.write(a + 100, src, 0, src.length);
        byte[] back = new byte[src.length];
        p.read(a + 100, back, 0, back.length);
        assertArrayEquals(src, back);
        assertEquals(4 * 4096, p.toDTO().mappedBytes);
        assertEquals(4, p.toDTO().residentPages);
    }

    @Test
    void accessesOutsideMappingsFaultWithoutTouchingAnything() throws Exception {
        HostProcess p = table.create("qemu", Long.MAX_VALUE);
        long a = p.mmap(4096);
        assertErrno(Errno.EFAULT, () -> p.read64(a + 4096));
        assertErrno(Errno.EFAULT, () -> p.pin(a - 4096));
        assertErrno(Errno.EFAULT, () -> p.write(a + 4000, new byte[200], 0, 200));
        assertEquals(0, memory.allocatedFrames(), "a faulting write backs nothing");
        assertErrno(Errno.EINVAL, () -> p.mmap(0));
        assertErrno(Errno.EINVAL, () -> p.munmap(a + 1, 4096));
    }

    @Test
    void munmapSplitsMappingsAndFreesTheirFrames() throws Exception {
        HostProcess p = table.create("qemu", Long.MAX_VALUE);
        long a = p.mmap(4 * 4096);
        for (int i = 0; i < 4; i++) {
            p.write64(a + i * 4096L, i + 1);
        }
        p.munmap(a + 4096, 2 * 4096);
        assertEquals(2, memory.allocatedFrames());
        assertEquals(1, p.read64(a));
        assertEquals(4, p.read64(a + 3 * 4096));
        assertErrno(Errno.EFAULT, () -> p.read64(a + 4096));
        p.munmap(a, 1L << 30); // holes are ignored
        assertEquals(0, memory.allocatedFrames());
        assertEquals(0, p.toDTO().mappedBytes);
    }

    @Test
    void aPinnedPageOutlivesMunmapUntilItsLastUnpin() throws Exception {
        HostProcess p = table.create("qemu", Long.MAX_VALUE);
        long a = p.mmap(4096);
        long hpa = p.pin(a);
        assertEquals(hpa, p.pin(a), "the same page");
        assertEquals(1, p.pinnedPages());
        memory.write64(hpa, 42);
        p.munmap(a, 4096);
        assertEquals(1, memory.allocatedFrames(), "pinned: still allocated");
        assertEquals(42, memory.read64(hpa));
        p.unpin(hpa);
        assertEquals(1, memory.allocatedFrames());
        p.unpin(hpa);
        assertEquals(0, memory.allocatedFrames(), "freed at the last unpin");
        assertErrno(Errno.ENOENT, () -> p.unpin(hpa));
        long b = p.mmap(4096);
        assertNotEquals(-1, p.pin(b));
    }

    @Test
    void lockedMemoryIsChargedAgainstTheLimit() throws Exception {
        HostProcess p = table.create("qemu", 3 * 4096);
        p.accountLocked(2);
        assertErrno(Errno.ENOMEM, () -> p.accountLocked(2));
        assertEquals(2, p.lockedPages(), "a refused charge charges nothing");
        p.accountLocked(1);
        assertErrno(Errno.EINVAL, () -> p.accountLocked(-4));
        p.setLockedLimit(4096);
        p.accountLocked(-3);
        assertErrno(Errno.ENOMEM, () -> p.accountLocked(2));
        assertErrno(Errno.EINVAL, () -> p.setLockedLimit(-1));
    }

    @Test
    void exitFreesUnpinnedFramesAndTheTableForgetsTheProcess() throws Exception {
        HostProcess p = table.create("qemu", Long.MAX_VALUE);
        assertErrno(Errno.EEXIST, () -> table.create("qemu", 0));
        assertErrno(Errno.EINVAL, () -> table.create("bad name", 0));
        long a = p.mmap(2 * 4096);
        long pinned = p.pin(a);
        p.write64(a + 4096, 7);
        table.exit("qemu");
        assertTrue(table.process("qemu").isEmpty());
        assertEquals(1, memory.allocatedFrames(), "the pinned page waits for its unpin");
        p.unpin(pinned);
        assertEquals(0, memory.allocatedFrames());
        assertErrno(Errno.ENODEV, () -> p.mmap(4096));
        assertErrno(Errno.ENOENT, () -> table.exit("qemu"));
    }
}
