package org.iommulab.platform.internal.memory;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;

import org.iommulab.api.errno.Errno;
import org.iommulab.api.errno.IommuException;
import org.iommulab.api.memory.FrameAllocator;
import org.iommulab.api.memory.MemoryAccessException;
import org.iommulab.api.memory.MemoryAccessException.Reason;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.function.Executable;

class FramePoolTest {
    private static final long FRAME = FrameAllocator.FRAME_SIZE;
    /** Deliberately not aligned beyond 4 KiB, so block alignment has to be computed. */
    private static final long BASE = 0x1_0000_1000L;

    private final SparseMemory memory = new SparseMemory(52);
    private final FramePool pool = new FramePool(memory, BASE, 1024);

    private static IommuException expect(Errno errno, Executable call) {
        IommuException e = assertThrows(IommuException.class, call);
        assertEquals(errno, e.errno(), e.toString());
        return e;
    }

    private void assertZeroed(long address, int frames) {
        byte[] page = new byte[(int) FRAME];
        for (int f = 0; f < frames; f++) {
            memory.read(address + f * FRAME, page, 0, page.length);
            for (int i = 0; i < page.length; i++) {
                if (page[i] != 0) {
                    throw new AssertionError(String.format("byte 0x%x of frame 0x%x is 0x%x, not zero",
                            i, address + f * FRAME, page[i]));
                }
            }
        }
    }

    @Test
    void allocatedFramesShareOneZeroPageUntilWritten() throws IommuException {
        long a = pool.allocateFrames(4);
        long b = pool.allocateFrames(1);
        assertEquals(5, memory.zeroPages(), "no heap page per frame until it is written");
        assertEquals(0, memory.read64(a + 3 * FRAME + 8));
        memory.write64(a + FRAME, 0x55);
        assertEquals(4, memory.zeroPages());
        assertEquals(0x55, memory.read64(a + FRAME));
        assertEquals(0, memory.read64(b), "the shared zero page was not written");
        assertEquals(false, memory.compareAndSet64(b, 1, 2), "a zero word is not 1");
        assertEquals(true, memory.compareAndSet64(b + 8, 0, 7));
        assertEquals(7, memory.read64(b + 8));
        assertEquals(0, memory.read64(a + 2 * FRAME + 8));
        memory.fill(a + 2 * FRAME, 16, (byte) 1);
        assertEquals(0x0101_0101_0101_0101L, memory.read64(a + 2 * FRAME));
        assertEquals(0, memory.read64(a + 3 * FRAME), "other frames untouched");
        assertEquals(2, memory.zeroPages());
    }

    @Test
    void reportsItsConfiguration() {
        assertEquals(BASE, pool.poolBase());
        assertEquals(1024, pool.poolFrames());
        assertEquals(0, pool.allocatedFrames());
    }

    @Test
    void constructorRejectsBadPools() {
        assertThrows(IllegalArgumentException.class, () -> new FramePool(memory, BASE + 1, 10));
        assertThrows(IllegalArgumentException.class, () -> new FramePool(memory, -4096, 10));
        assertThrows(IllegalArgumentException.class, () -> new FramePool(memory, 1L << 52, 10));
        assertThrows(IllegalArgumentException.class, () -> new FramePool(memory, BASE, 0));
    }

    @Test
    void allocationsAreZeroedAndBacked() throws IommuException {
        long a = pool.allocateFrames(3);
        for (int f = 0; f < 3; f++) {
            assertTrue(memory.isBacked(a + f * FRAME));
        }
        assertZeroed(a, 3);
    }

    @Test
    void reusedFramesAreZeroedAgain() throws IommuException {
        long a = pool.allocateFrames(2);
        memory.fill(a, 2 * FRAME, (byte) 0xa5);
        pool.freeFrames(a, 2);
        long b = pool.allocateFrames(2);
        assertEquals(a, b, "the freed block is reused");
        assertZeroed(b, 2);
    }

    @Test
    void blocksAreAlignedToTheirSizeRoundedUpToAPowerOfTwo() throws IommuException {
        int[] counts = {1, 3, 16, 2, 5, 1, 64, 17, 4096};
        FramePool big = new FramePool(memory, BASE, 1 << 14);
        for (int n : counts) {
            long a = big.allocateFrames(n);
            long block = FRAME * Integer.highestOneBit(n == 1 ? 1 : (n - 1) << 1);
            assertEquals(0, a & (block - 1), String.format("%d frames at 0x%x not aligned to 0x%x", n, a, block));
            assertTrue(a >= BASE, String.format("0x%x below the pool base", a));
        }
        long three = big.allocateFrames(3);
        assertEquals(0, three % (16 * 1024));
        long sixteen = big.allocateFrames(16);
        assertEquals(0, sixteen % (64 * 1024));
    }

    @Test
    void liveBlocksNeverOverlap() throws IommuException {
        List<long[]> blocks = new ArrayList<>();
        int[] counts = {1, 2, 3, 4, 5, 8, 1, 16, 7, 1, 33};
        for (int n : counts) {
            blocks.add(new long[] {pool.allocateFrames(n), n});
        }
        Set<Long> frames = new HashSet<>();
        for (long[] b : blocks) {
            for (int f = 0; f < b[1]; f++) {
                assertTrue(frames.add(b[0] + f * FRAME), String.format("frame 0x%x handed out twice", b[0] + f * FRAME));
            }
        }
    }

    @Test
    void allocatedFramesAccountingReturnsToZero() throws IommuException {
        long a = pool.allocateFrames(1);
        long b = pool.allocateFrames(3);
        long c = pool.allocateFrames(16);
        assertEquals(20, pool.allocatedFrames());
        pool.freeFrames(b, 3);
        assertEquals(17, pool.allocatedFrames());
        pool.freeFrames(a, 1);
        pool.freeFrames(c, 16);
        assertEquals(0, pool.allocatedFrames());
    }

    @Test
    void doubleFreeIsEnoent() throws IommuException {
        long a = pool.allocateFrames(2);
        pool.freeFrames(a, 2);
        expect(Errno.ENOENT, () -> pool.freeFrames(a, 2));
        assertEquals(0, pool.allocatedFrames());
        expect(Errno.ENOENT, () -> pool.freeFrames(BASE + 0x100_0000, 1));
    }

    @Test
    void freeWithWrongCountIsEinvalAndKeepsTheBlock() throws IommuException {
        long a = pool.allocateFrames(3);
        memory.write64(a, 42);
        expect(Errno.EINVAL, () -> pool.freeFrames(a, 4));
        expect(Errno.EINVAL, () -> pool.freeFrames(a, 1));
        assertEquals(3, pool.allocatedFrames());
        assertEquals(42, memory.read64(a), "a rejected free must not discard the frames");
        pool.freeFrames(a, 3);
        assertEquals(0, pool.allocatedFrames());
    }

    @Test
    void badCountsAreEinval() {
        for (int n : new int[] {0, -1, 4097, Integer.MAX_VALUE, Integer.MIN_VALUE}) {
            expect(Errno.EINVAL, () -> pool.allocateFrames(n));
        }
        assertEquals(0, pool.allocatedFrames());
        assertEquals(0, memory.backedPages());
    }

    @Test
    void maximumCountIsAccepted() throws IommuException {
        FramePool big = new FramePool(memory, BASE, 4096);
        long a = big.allocateFrames(4096);
        assertEquals(0, a % (4096 * FRAME));
        assertEquals(4096, big.allocatedFrames());
    }

    @Test
    void exhaustionIsEnomemAndChangesNothing() throws IommuException {
        FramePool small = new FramePool(memory, BASE, 8);
        long a = small.allocateFrames(4);
        long b = small.allocateFrames(3);
        long c = small.allocateFrames(1);
        assertEquals(8, small.allocatedFrames());
        long backed = memory.backedPages();
        expect(Errno.ENOMEM, () -> small.allocateFrames(1));
        expect(Errno.ENOMEM, () -> small.allocateFrames(2));
        assertEquals(8, small.allocatedFrames());
        assertEquals(backed, memory.backedPages());
        small.freeFrames(b, 3);
        assertEquals(5, small.allocatedFrames());
        long d = small.allocateFrames(3);
        assertEquals(b, d, "the freed order-2 block is reused for another order-2 request");
        expect(Errno.ENOMEM, () -> small.allocateFrames(1));
        small.freeFrames(a, 4);
        small.freeFrames(c, 1);
        small.freeFrames(d, 3);
        assertEquals(0, small.allocatedFrames());
    }

    @Test
    void addressSpaceExhaustionIsEnomemAndChangesNothing() throws IommuException {
        SparseMemory small = new SparseMemory(32);
        FramePool top = new FramePool(small, (1L << 32) - 3 * FRAME, 100);
        expect(Errno.ENOMEM, () -> top.allocateFrames(4)); // a 16 KiB block would start at 2^32
        assertEquals(0, top.allocatedFrames());
        long a = top.allocateFrames(1);
        assertEquals((1L << 32) - 3 * FRAME, a, "the failed request must not have moved the pool");
        long b = top.allocateFrames(2);
        assertEquals((1L << 32) - 2 * FRAME, b);
        expect(Errno.ENOMEM, () -> top.allocateFrames(1));
        assertEquals(3, top.allocatedFrames());
    }

    @Test
    void freedFramesAreUnbacked() throws IommuException {
        long a = pool.allocateFrames(3);
        memory.write64(a + FRAME, 7);
        pool.freeFrames(a, 3);
        for (int f = 0; f < 3; f++) {
            long addr = a + f * FRAME;
            assertFalse(memory.isBacked(addr));
            MemoryAccessException e = assertThrows(MemoryAccessException.class, () -> memory.read64(addr));
            assertEquals(Reason.UNBACKED, e.reason());
            assertEquals(addr, e.address());
        }
        assertEquals(0, memory.backedPages());
    }

    @Test
    void freedBlocksAreReusedLastInFirstOut() throws IommuException {
        long a = pool.allocateFrames(1);
        long b = pool.allocateFrames(1);
        long c = pool.allocateFrames(1);
        pool.freeFrames(a, 1);
        pool.freeFrames(c, 1);
        assertEquals(c, pool.allocateFrames(1));
        assertEquals(a, pool.allocateFrames(1));
        long fresh = pool.allocateFrames(1);
        assertNotEquals(a, fresh);
        assertNotEquals(b, fresh);
        assertNotEquals(c, fresh);
    }

    @Test
    void freedBlocksAreReusedOnlyForTheirOwnOrder() throws IommuException {
        long four = pool.allocateFrames(4);
        pool.freeFrames(four, 4);
        long one = pool.allocateFrames(1);
        assertNotEquals(four, one, "an order-2 block is not handed out for an order-0 request");
        assertEquals(four, pool.allocateFrames(3), "3 frames use an order-2 block");
    }
}
