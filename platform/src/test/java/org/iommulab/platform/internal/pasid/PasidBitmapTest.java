package org.iommulab.platform.internal.pasid;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

class PasidBitmapTest {

    private static PasidBitmap filled(int size, int from, int to) {
        PasidBitmap b = new PasidBitmap(size);
        for (int i = from; i <= to; i++) {
            b.set(i);
        }
        return b;
    }

    @Test
    void setClearGetAtWordBoundaries() {
        PasidBitmap b = new PasidBitmap(200);
        for (int bit : new int[] {0, 63, 64, 65, 127, 128, 199}) {
            assertFalse(b.get(bit));
            b.set(bit);
            assertTrue(b.get(bit), "bit " + bit);
        }
        assertFalse(b.get(62));
        assertFalse(b.get(66));
        b.clear(64);
        assertFalse(b.get(64));
        assertTrue(b.get(63));
        assertTrue(b.get(65));
    }

    @Test
    void emptyBitmapReturnsFrom() {
        PasidBitmap b = new PasidBitmap(1 << 20);
        for (int from : new int[] {0, 1, 63, 64, 65, 127, 128, (1 << 20) - 1}) {
            assertEquals(from, b.nextClear(from, (1 << 20) - 1), "from " + from);
            assertEquals(from, b.nextClear(from, from));
        }
    }

    @Test
    void nextClearAroundWordBoundaries() {
        PasidBitmap b = filled(256, 0, 62);
        assertEquals(63, b.nextClear(0, 255));
        b.set(63);
        assertEquals(64, b.nextClear(0, 255), "search continues into the next word");
        assertEquals(64, b.nextClear(63, 64));
        assertEquals(-1, b.nextClear(0, 63), "word 0 full and range ends at 63");
        b.set(64);
        assertEquals(65, b.nextClear(0, 255));
        assertEquals(65, b.nextClear(64, 65));
        assertEquals(-1, b.nextClear(63, 64));
        assertEquals(-1, b.nextClear(64, 64));
        b.set(65);
        assertEquals(66, b.nextClear(63, 255));
        assertEquals(-1, b.nextClear(63, 65));
    }

    @Test
    void nextClearHonoursFromInsideAWord() {
        PasidBitmap b = new PasidBitmap(256);
        b.set(70);
        assertEquals(71, b.nextClear(70, 255));
        assertEquals(65, b.nextClear(65, 255));
        assertEquals(0, b.nextClear(0, 255));
        // bits below 'from' that are clear must not be returned
        PasidBitmap c = filled(256, 64, 127);
        assertEquals(128, c.nextClear(100, 255));
        assertEquals(-1, c.nextClear(100, 127));
    }

    @Test
    void nextClearDoesNotReturnBitsBeyondTo() {
        PasidBitmap b = filled(256, 0, 9);
        assertEquals(-1, b.nextClear(0, 9));
        assertEquals(10, b.nextClear(0, 10));
        PasidBitmap c = filled(256, 0, 130);
        assertEquals(-1, c.nextClear(0, 130));
        assertEquals(131, c.nextClear(0, 131));
        assertEquals(-1, c.nextClear(5, 127), "free bit 131 lies beyond 'to' in a later word");
    }

    @Test
    void nextClearAtTheEnd() {
        int size = 1 << 20;
        PasidBitmap b = filled(size, 0, size - 2);
        assertEquals(size - 1, b.nextClear(0, size - 1));
        assertEquals(size - 1, b.nextClear(size - 64, size - 1));
        b.set(size - 1);
        assertEquals(-1, b.nextClear(0, size - 1));
        assertEquals(-1, b.nextClear(size - 1, size - 1));
        b.clear(size - 64);
        assertEquals(size - 64, b.nextClear(1, size - 1));
        assertEquals(-1, b.nextClear(size - 63, size - 1));
    }

    @Test
    void sizeNotAMultipleOf64() {
        PasidBitmap b = filled(100, 0, 99);
        assertEquals(-1, b.nextClear(0, 99), "bits past the size are not free PASIDs");
        assertEquals(-1, b.nextClear(64, 99));
        b.clear(99);
        assertEquals(99, b.nextClear(0, 99));
    }

    @Test
    void badRangesReturnMinusOne() {
        PasidBitmap b = new PasidBitmap(128);
        assertEquals(-1, b.nextClear(-1, 10));
        assertEquals(-1, b.nextClear(0, 128));
        assertEquals(-1, b.nextClear(10, 9));
        assertEquals(-1, b.nextClear(Integer.MIN_VALUE, Integer.MAX_VALUE));
    }
}
