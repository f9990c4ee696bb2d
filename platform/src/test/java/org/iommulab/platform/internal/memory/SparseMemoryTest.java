package org.iommulab.platform.internal.memory;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;

import org.iommulab.api.memory.MemoryAccessException;
import org.iommulab.api.memory.MemoryAccessException.Reason;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.function.Executable;

class SparseMemoryTest {
    private static final int BITS = 52;
    private static final long LIMIT = 1L << BITS;
    private static final long PAGE = SparseMemory.PAGE_SIZE;

    private final SparseMemory memory = new SparseMemory(BITS);

    private static MemoryAccessException expect(Reason reason, Executable access) {
        MemoryAccessException e = assertThrows(MemoryAccessException.class, access);
        assertEquals(reason, e.reason(), e.getMessage());
        return e;
    }

    private static MemoryAccessException expect(Reason reason, long address, Executable access) {
        MemoryAccessException e = expect(reason, access);
        assertEquals(address, e.address(), () -> String.format("reported address 0x%x", e.address()));
        return e;
    }

    private static byte[] pattern(int length, int seed) {
        byte[] b = new byte[length];
        for (int i = 0; i < length; i++) {
            b[i] = (byte) (i * 31 + seed * 7 + (i >>> 8));
        }
        return b;
    }

    // ---- construction -------------------------------------------------------------------------

    @Test
    void addressWidthIsReportedAndValidated() {
        assertEquals(52, memory.addressBits());
        assertEquals(32, new SparseMemory(32).addressBits());
        assertEquals(63, new SparseMemory(63).addressBits());
        assertThrows(IllegalArgumentException.class, () -> new SparseMemory(31));
        assertThrows(IllegalArgumentException.class, () -> new SparseMemory(64));
    }

    // ---- 64/32-bit accesses ------------------------------------------------------------------

    @Test
    void write64Read64RoundTripAligned() {
        memory.write64(0x1000, 0x0123_4567_89ab_cdefL);
        memory.write64(0x1008, -1L);
        memory.write64(0x1ff8, Long.MIN_VALUE);
        assertEquals(0x0123_4567_89ab_cdefL, memory.read64(0x1000));
        assertEquals(-1L, memory.read64(0x1008));
        assertEquals(Long.MIN_VALUE, memory.read64(0x1ff8));
    }

    @Test
    void write64Read64RoundTripUnalignedInsidePage() {
        memory.write64(0x2003, 0x1122_3344_5566_7788L);
        assertEquals(0x1122_3344_5566_7788L, memory.read64(0x2003));
        // the neighbouring bytes of the page were zero-filled and stay untouched
        assertEquals(0x88L << 24, memory.read64(0x2000) & 0xffff_ffffL);
        assertEquals(0L, memory.read64(0x2010));
    }

    @Test
    void write64Read64CrossingPageBoundary() {
        long address = 0xffd; // bytes 0xffd..0x1004: three in page 0, five in page 1
        memory.write64(address, 0x8877_6655_4433_2211L);
        assertTrue(memory.isBacked(0x0));
        assertTrue(memory.isBacked(0x1000));
        assertEquals(0x8877_6655_4433_2211L, memory.read64(address));
        byte[] bytes = new byte[8];
        memory.read(address, bytes, 0, 8);
        assertArrayEquals(new byte[] {0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, (byte) 0x88}, bytes);
        assertEquals(0x11, memory.read32(0xffc) >>> 8 & 0xff);
    }

    @Test
    void read64CrossingIntoUnbackedPageFailsWithTheUnbackedAddress() {
        memory.write64(0x5ff8, 7);
        expect(Reason.UNBACKED, 0x6000, () -> memory.read64(0x5ffd));
        expect(Reason.UNBACKED, 0x6000, () -> memory.read32(0x5ffe));
    }

    @Test
    void valuesAreStoredLittleEndian() {
        memory.write64(0x3000, 0x0807_0605_0403_0201L);
        byte[] bytes = new byte[8];
        memory.read(0x3000, bytes, 0, 8);
        assertArrayEquals(new byte[] {1, 2, 3, 4, 5, 6, 7, 8}, bytes);

        memory.write32(0x3010, 0xa1b2c3d4);
        byte[] four = new byte[4];
        memory.read(0x3010, four, 0, 4);
        assertArrayEquals(new byte[] {(byte) 0xd4, (byte) 0xc3, (byte) 0xb2, (byte) 0xa1}, four);

        memory.write(0x3020, new byte[] {(byte) 0xef, (byte) 0xcd, (byte) 0xab, (byte) 0x89}, 0, 4);
        assertEquals(0x89abcdef, memory.read32(0x3020));
    }

    @Test
    void write32Read32RoundTripAlignedUnalignedAndCrossing() {
        memory.write32(0x4000, 0xdeadbeef);
        memory.write32(0x4005, 0x12345678);
        memory.write32(0x4ffe, 0xcafebabe); // crosses into 0x5000
        assertEquals(0xdeadbeef, memory.read32(0x4000));
        assertEquals(0x12345678, memory.read32(0x4005));
        assertEquals(0xcafebabe, memory.read32(0x4ffe));
        assertEquals(0xcafe, memory.read32(0x5000) & 0xffff);
        // a 32-bit write touches exactly 4 bytes
        assertEquals(0xdeadbeefL, memory.read64(0x4000) & 0xff_ffff_ffffL);
    }

    @Test
    void readingANeverWrittenPageThrowsUnbackedWithTheAddress() {
        expect(Reason.UNBACKED, 0x7000, () -> memory.read64(0x7000));
        expect(Reason.UNBACKED, 0x7123, () -> memory.read32(0x7123));
        expect(Reason.UNBACKED, 0x7008, () -> memory.read(0x7008, new byte[16], 0, 16));
        MemoryAccessException e = expect(Reason.UNBACKED, 0x12_3456_7000L, () -> memory.read64(0x12_3456_7000L));
        assertTrue(e.getMessage().contains("0x1234567000"), e.getMessage());
        // a failed read backs nothing
        assertFalse(memory.isBacked(0x7000));
        assertEquals(0, memory.backedPages());
    }

    @Test
    void bulkReadFailsAtTheFirstUnbackedPage() {
        memory.write(0x10000, pattern(4096, 1), 0, 4096);
        expect(Reason.UNBACKED, 0x11000, () -> memory.read(0x10800, new byte[4096], 0, 4096));
    }

    // ---- address width -----------------------------------------------------------------------

    @Test
    void everyAccessAtOrBeyondTheWidthThrowsAddressSize() {
        long[] bad = {LIMIT, LIMIT + 8, Long.MAX_VALUE & ~7L, 1L << 62};
        for (long a : bad) {
            expect(Reason.ADDRESS_SIZE, a, () -> memory.read64(a));
            expect(Reason.ADDRESS_SIZE, a, () -> memory.write64(a, 1));
            expect(Reason.ADDRESS_SIZE, a, () -> memory.read32(a));
            expect(Reason.ADDRESS_SIZE, a, () -> memory.write32(a, 1));
            expect(Reason.ADDRESS_SIZE, a, () -> memory.compareAndSet64(a, 0, 1));
            expect(Reason.ADDRESS_SIZE, a, () -> memory.read(a, new byte[4], 0, 4));
            expect(Reason.ADDRESS_SIZE, a, () -> memory.write(a, new byte[4], 0, 4));
            expect(Reason.ADDRESS_SIZE, a, () -> memory.fill(a, 4, (byte) 1));
            expect(Reason.ADDRESS_SIZE, () -> memory.copy(a, 0, 4));
            expect(Reason.ADDRESS_SIZE, () -> memory.copy(0, a, 4));
            assertFalse(memory.isBacked(a));
        }
        assertEquals(0, memory.backedPages());
    }

    @Test
    void negativeAddressesThrowAddressSize() {
        long[] bad = {-1L, -8L, Long.MIN_VALUE, -4096L};
        for (long a : bad) {
            expect(Reason.ADDRESS_SIZE, () -> memory.read64(a));
            expect(Reason.ADDRESS_SIZE, () -> memory.write64(a, 1));
            expect(Reason.ADDRESS_SIZE, () -> memory.read32(a));
            expect(Reason.ADDRESS_SIZE, () -> memory.write32(a, 1));
            expect(Reason.ADDRESS_SIZE, () -> memory.compareAndSet64(a, 0, 1));
            expect(Reason.ADDRESS_SIZE, () -> memory.write(a, new byte[4], 0, 4));
            expect(Reason.ADDRESS_SIZE, () -> memory.fill(a, 4, (byte) 1));
            assertFalse(memory.isBacked(a));
        }
        assertEquals(0, memory.backedPages());
    }

    @Test
    void lastValidBytesWork() {
        memory.write64(LIMIT - 8, 0x55);
        assertEquals(0x55, memory.read64(LIMIT - 8));
        memory.write32(LIMIT - 4, 0x66);
        assertEquals(0x66, memory.read32(LIMIT - 4));
        assertTrue(memory.isBacked(LIMIT - 1));
    }

    @Test
    void accessesCrossingTheWidthFailAndWriteNothing() {
        expect(Reason.ADDRESS_SIZE, () -> memory.write64(LIMIT - 4, -1L));
        expect(Reason.ADDRESS_SIZE, () -> memory.write32(LIMIT - 2, -1));
        expect(Reason.ADDRESS_SIZE, () -> memory.write(LIMIT - 4, new byte[8], 0, 8));
        expect(Reason.ADDRESS_SIZE, () -> memory.fill(LIMIT - 4, 8, (byte) 1));
        assertFalse(memory.isBacked(LIMIT - 4), "a rejected write must not back the last page");
        assertEquals(0, memory.backedPages());

        memory.write64(LIMIT - 8, 0x0102030405060708L);
        expect(Reason.ADDRESS_SIZE, () -> memory.write64(LIMIT - 4, -1L));
        expect(Reason.ADDRESS_SIZE, () -> memory.read64(LIMIT - 4));
        assertEquals(0x0102030405060708L, memory.read64(LIMIT - 8), "a rejected write changed memory");
    }

    @Test
    void otherWidthsBoundTheirOwnRange() {
        SparseMemory small = new SparseMemory(32);
        small.write64(0xffff_fff8L, 3);
        assertEquals(3, small.read64(0xffff_fff8L));
        expect(Reason.ADDRESS_SIZE, 0x1_0000_0000L, () -> small.write64(0x1_0000_0000L, 1));
        SparseMemory wide = new SparseMemory(63);
        wide.write64(Long.MAX_VALUE - 7, 9);
        assertEquals(9, wide.read64(Long.MAX_VALUE - 7));
        expect(Reason.ADDRESS_SIZE, () -> wide.read64(-8));
    }

    // ---- compare-and-set ---------------------------------------------------------------------

    @Test
    void compareAndSetSucceedsOnlyWithTheExpectedValue() {
        memory.write64(0x8000, 5);
        assertTrue(memory.compareAndSet64(0x8000, 5, 6));
        assertEquals(6, memory.read64(0x8000));
        assertFalse(memory.compareAndSet64(0x8000, 5, 7));
        assertEquals(6, memory.read64(0x8000));
        assertTrue(memory.compareAndSet64(0x8ff8, 0, -1L));
        assertEquals(-1L, memory.read64(0x8ff8));
    }

    @Test
    void compareAndSetRejectsMisalignedAndUnbacked() {
        memory.write64(0x9000, 5);
        for (long a : new long[] {0x9001, 0x9004, 0x9007, 0x9ffc}) {
            expect(Reason.MISALIGNED, a, () -> memory.compareAndSet64(a, 5, 6));
        }
        assertEquals(5, memory.read64(0x9000));
        expect(Reason.UNBACKED, 0xa000, () -> memory.compareAndSet64(0xa000, 0, 1));
        assertFalse(memory.isBacked(0xa000), "compare-and-set must not back a page");
    }

    // ---- bulk --------------------------------------------------------------------------------

    @Test
    void bulkWriteAndReadAcrossSeveralPages() {
        byte[] data = pattern(3 * 4096 + 100, 3);
        long address = 0x20_0f80;
        memory.write(address, data, 0, data.length);
        byte[] back = new byte[data.length];
        memory.read(address, back, 0, back.length);
        assertArrayEquals(data, back);
        assertEquals(4, memory.backedPages()); // pages 0x200000 .. 0x203000 touched

        // offsets inside the arrays are honoured
        byte[] window = new byte[20];
        memory.read(address + 4090, window, 5, 10);
        for (int i = 0; i < 10; i++) {
            assertEquals(data[4090 + i], window[5 + i]);
        }
        assertEquals(0, window[4]);
        assertEquals(0, window[15]);
        memory.write(0x30_0000, data, 100, 50);
        byte[] part = new byte[50];
        memory.read(0x30_0000, part, 0, 50);
        for (int i = 0; i < 50; i++) {
            assertEquals(data[100 + i], part[i]);
        }
    }

    @Test
    void bulkAccessRejectsBadArrayBounds() {
        assertThrows(IndexOutOfBoundsException.class, () -> memory.write(0, new byte[4], 2, 4));
        assertThrows(IndexOutOfBoundsException.class, () -> memory.write(0, new byte[4], -1, 1));
        assertThrows(IndexOutOfBoundsException.class, () -> memory.read(0, new byte[4], 0, -1));
        assertEquals(0, memory.backedPages());
    }

    @Test
    void copyForwardAcrossPagesWithDifferentOffsets() {
        byte[] data = pattern(10_000, 4);
        long src = 0x40_0123;
        long dst = 0x50_0f00;
        memory.write(src, data, 0, data.length);
        memory.copy(src, dst, data.length);
        byte[] back = new byte[data.length];
        memory.read(dst, back, 0, back.length);
        assertArrayEquals(data, back);
        memory.read(src, back, 0, back.length);
        assertArrayEquals(data, back, "the source must be unchanged");
    }

    @Test
    void copyOverlappingToHigherAddressIsMemmove() {
        byte[] data = pattern(9000, 5);
        long src = 0x60_0100;
        long dst = src + 0x1234; // overlaps, different page offset, crosses several pages
        memory.write(src, data, 0, data.length);
        memory.copy(src, dst, data.length);
        byte[] back = new byte[data.length];
        memory.read(dst, back, 0, back.length);
        assertArrayEquals(data, back);
        // the bytes before dst still hold the original source start
        byte[] head = new byte[0x1234];
        memory.read(src, head, 0, head.length);
        for (int i = 0; i < head.length; i++) {
            assertEquals(data[i], head[i]);
        }
    }

    @Test
    void copyOverlappingToLowerAddressIsMemmove() {
        byte[] data = pattern(9000, 6);
        long src = 0x70_1e00;
        long dst = src - 0x0a51;
        memory.write(src, data, 0, data.length);
        memory.copy(src, dst, data.length);
        byte[] back = new byte[data.length];
        memory.read(dst, back, 0, back.length);
        assertArrayEquals(data, back);
        // the tail past the destination keeps the source's last bytes
        byte[] tail = new byte[0x0a51];
        memory.read(dst + data.length, tail, 0, tail.length);
        for (int i = 0; i < tail.length; i++) {
            assertEquals(data[data.length - 0x0a51 + i], tail[i]);
        }
    }

    @Test
    void copyOverlappingBySmallDistancesBothWays() {
        for (int shift : new int[] {1, 7, 8, 4095, 4096, 4097}) {
            for (int dir : new int[] {1, -1}) {
                SparseMemory m = new SparseMemory(BITS);
                byte[] data = pattern(3 * 4096 + 17, shift);
                long src = 0x10_0000 + 0x3f1;
                long dst = src + dir * shift;
                m.write(src, data, 0, data.length);
                m.copy(src, dst, data.length);
                byte[] back = new byte[data.length];
                m.read(dst, back, 0, back.length);
                assertArrayEquals(data, back, "shift " + dir * shift);
            }
        }
    }

    @Test
    void copyFromUnbackedSourceThrowsUnbacked() {
        expect(Reason.UNBACKED, 0x80_0000, () -> memory.copy(0x80_0000, 0x90_0000, 16));
        assertFalse(memory.isBacked(0x90_0000), "nothing may be written when the first source page is unbacked");
        memory.copy(0x80_0000, 0x90_0000, 0); // zero length is a no-op
    }

    @Test
    void fillSetsExactlyTheRange() {
        memory.write64(0xa0_0ff8, 0);
        memory.fill(0xa0_0ffc, 4096 + 8, (byte) 0x5a);
        assertEquals(0x5a5a5a5a_00000000L, memory.read64(0xa0_0ff8));
        assertEquals(0x5a5a5a5a5a5a5a5aL, memory.read64(0xa0_1800));
        byte[] tail = new byte[8];
        memory.read(0xa0_2000, tail, 0, 8);
        assertArrayEquals(new byte[] {0x5a, 0x5a, 0x5a, 0x5a, 0, 0, 0, 0}, tail);
        memory.fill(0xb0_0000, 0, (byte) 1);
        assertFalse(memory.isBacked(0xb0_0000), "an empty fill backs nothing");
    }

    // ---- backing -----------------------------------------------------------------------------

    @Test
    void isBackedReflectsWrites() {
        assertFalse(memory.isBacked(0x1000));
        memory.write32(0x1ffc, 1);
        assertTrue(memory.isBacked(0x1000));
        assertTrue(memory.isBacked(0x1fff));
        assertFalse(memory.isBacked(0x2000));
        assertFalse(memory.isBacked(0x0fff));
        assertFalse(memory.isBacked(-1));
        assertFalse(memory.isBacked(LIMIT));
    }

    @Test
    void backedPagesCountsTouchedPagesOnly() {
        assertEquals(0, memory.backedPages());
        byte[] one = {1};
        memory.write(0x0, one, 0, 1);
        memory.write(0x1234_5678_9000L, one, 0, 1);
        memory.write(LIMIT - 1, one, 0, 1);
        assertEquals(3, memory.backedPages());
        memory.write64(0x8, 1); // same page again
        assertEquals(3, memory.backedPages());
    }

    @Test
    void sparseWritesFarApartWork() {
        memory.write64(0, 1);
        memory.write64(1L << 51, 2);
        assertEquals(1, memory.read64(0));
        assertEquals(2, memory.read64(1L << 51));
        assertEquals(2, memory.backedPages());
        expect(Reason.UNBACKED, () -> memory.read64((1L << 51) + PAGE));
    }

    @Test
    void installZeroPagesReplacesContentsAndDiscardPagesUnbacks() {
        memory.write64(0xc0_0000, -1L);
        memory.write64(0xc0_1008, -1L);
        memory.installZeroPages(0xc0_0000, 3 * PAGE);
        assertEquals(3, memory.backedPages());
        assertEquals(0, memory.read64(0xc0_0000));
        assertEquals(0, memory.read64(0xc0_1008));
        assertEquals(0, memory.read64(0xc0_2ff8));

        memory.discardPages(0xc0_1000, 2 * PAGE);
        assertEquals(1, memory.backedPages());
        assertTrue(memory.isBacked(0xc0_0000));
        assertFalse(memory.isBacked(0xc0_1000));
        assertFalse(memory.isBacked(0xc0_2000));
        expect(Reason.UNBACKED, 0xc0_1008, () -> memory.read64(0xc0_1008));

        // discarding pages that are not backed is harmless and counts nothing
        memory.discardPages(0xd0_0000, 4 * PAGE);
        memory.discardPages(1L << 50, PAGE);
        assertEquals(1, memory.backedPages());
        expect(Reason.ADDRESS_SIZE, () -> memory.installZeroPages(LIMIT - PAGE, 2 * PAGE));
        assertFalse(memory.isBacked(LIMIT - PAGE));
    }

    // ---- concurrency -------------------------------------------------------------------------

    @Test
    void concurrentFirstWritesToFreshPagesAllLand() throws Exception {
        int threads = 8;
        // fresh pages in one leaf node, fresh pages in new leaf nodes, fresh pages in new top slots
        List<Long> pages = new ArrayList<>();
        for (long i = 0; i < 512; i++) {
            pages.add(0x1000_0000L + i * PAGE);
        }
        for (long i = 1; i <= 256; i++) {
            pages.add(0x2_0000_0000L + (i << (13 + 12)));
        }
        for (long i = 1; i <= 128; i++) {
            pages.add(i << (26 + 12));
        }
        ExecutorService pool = Executors.newFixedThreadPool(threads);
        try {
            CountDownLatch ready = new CountDownLatch(threads);
            CountDownLatch start = new CountDownLatch(1);
            List<Future<?>> futures = new ArrayList<>();
            for (int t = 0; t < threads; t++) {
                int slot = t;
                futures.add(pool.submit(() -> {
                    ready.countDown();
                    assertTrue(start.await(10, TimeUnit.SECONDS));
                    for (long page : pages) {
                        memory.write64(page + 8L * slot, page ^ (slot + 1));
                    }
                    return null;
                }));
            }
            assertTrue(ready.await(10, TimeUnit.SECONDS));
            start.countDown();
            for (Future<?> f : futures) {
                f.get(30, TimeUnit.SECONDS);
            }
        } finally {
            pool.shutdownNow();
        }
        for (long page : pages) {
            for (int slot = 0; slot < threads; slot++) {
                assertEquals(page ^ (slot + 1), memory.read64(page + 8L * slot),
                        String.format("lost write of slot %d on page 0x%x", slot, page));
            }
        }
        assertEquals(pages.size(), memory.backedPages(), "each page must be counted once");
    }

    @Test
    void concurrentCompareAndSetIncrementsAreNotLost() throws Exception {
        memory.write64(0xe0_0000, 0);
        int threads = 4;
        int perThread = 20_000;
        ExecutorService pool = Executors.newFixedThreadPool(threads);
        try {
            CountDownLatch start = new CountDownLatch(1);
            List<Future<?>> futures = new ArrayList<>();
            for (int t = 0; t < threads; t++) {
                futures.add(pool.submit(() -> {
                    assertTrue(start.await(10, TimeUnit.SECONDS));
                    for (int i = 0; i < perThread; i++) {
                        long v;
                        do {
                            v = memory.read64(0xe0_0000);
                        } while (!memory.compareAndSet64(0xe0_0000, v, v + 1));
                    }
                    return null;
                }));
            }
            start.countDown();
            for (Future<?> f : futures) {
                f.get(30, TimeUnit.SECONDS);
            }
        } finally {
            pool.shutdownNow();
        }
        assertEquals((long) threads * perThread, memory.read64(0xe0_0000));
    }

    @Test
    void memoryAccessExceptionIsCheapAndDescriptive() {
        MemoryAccessException e = expect(Reason.ADDRESS_SIZE, LIMIT, () -> memory.read64(LIMIT));
        assertEquals(0, e.getStackTrace().length, "no stack trace is captured");
        assertTrue(e.getMessage().startsWith("0x10000000000000:"), e.getMessage());
        assertSame(Reason.MISALIGNED, new MemoryAccessException(Reason.MISALIGNED, 3).reason());
        assertTrue(new MemoryAccessException(Reason.MISALIGNED, 3).getMessage().contains("misaligned"));
    }
}
