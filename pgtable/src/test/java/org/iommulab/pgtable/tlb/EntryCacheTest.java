package org.iommulab.pgtable.tlb;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

class EntryCacheTest {
    private final long[] out = new long[2];

    @Test
    void keepsTheWordsItWasGivenUntilInvalidated() {
        EntryCache c = new EntryCache(16, 2);
        assertFalse(c.lookup(7, out));
        assertTrue(c.fill(7, new long[] {1, 2}, c.generation()));
        assertTrue(c.lookup(7, out));
        assertArrayEquals(new long[] {1, 2}, out);
        assertEquals(1, c.hits());
        assertEquals(1, c.misses());
        c.invalidateKeys(k -> k == 8);
        assertTrue(c.lookup(7, out), "another key's invalidation keeps it");
        c.invalidate((key, data, o) -> data[o + 1] == 2);
        assertFalse(c.lookup(7, out), "selected by its words");
    }

    @Test
    void aFillOvertakenByAnInvalidationIsDropped() {
        EntryCache c = new EntryCache(16, 2);
        long generation = c.generation();
        c.invalidateAll(); // software invalidated while the entry was being fetched
        assertFalse(c.fill(7, new long[] {1, 2}, generation));
        assertFalse(c.lookup(7, out));
    }

    @Test
    void aNewKeyEvictsTheOneSharingItsSlot() {
        EntryCache c = new EntryCache(1, 1);
        c.fill(1, new long[] {10}, c.generation());
        c.fill(2, new long[] {20}, c.generation());
        assertFalse(c.lookup(1, out));
        assertTrue(c.lookup(2, out));
        assertEquals(20, out[0]);
    }

    @Test
    void rejectsBadGeometry() {
        assertThrows(IllegalArgumentException.class, () -> new EntryCache(3, 1));
        assertThrows(IllegalArgumentException.class, () -> new EntryCache(4, 0));
    }
}
