package org.iommulab.pgtable.tlb;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Random;

import org.junit.jupiter.api.Test;

class TlbTest {
    private static final long T1 = 7;
    private static final long T2 = 42;
    private static final int K4 = 12;
    private static final int M2 = 21;
    private static final int G1 = 30;

    private final TlbHit hit = new TlbHit();

    private static void leaf(Tlb tlb, long tag1, long tag2, long va, int shift, long pa) {
        tlb.insert(tag1, tag2, va, shift, pa, 3, 0, true);
    }

    private static void nonLeaf(Tlb tlb, long tag1, long tag2, long va, int shift, long pa) {
        tlb.insert(tag1, tag2, va, shift, pa, 3, 0, false);
    }

    private boolean has(Tlb tlb, long tag1, long tag2, long va) {
        return tlb.lookup(tag1, tag2, va, true, hit);
    }

    // ------------------------------------------------------------------ construction, insert, lookup

    @Test
    void constructorValidatesArguments() {
        assertThrows(IllegalArgumentException.class, () -> new Tlb("t", 0));
        assertThrows(IllegalArgumentException.class, () -> new Tlb("t", -1));
        assertThrows(IllegalArgumentException.class, () -> new Tlb("t", Tlb.MAX_CAPACITY + 1));
        assertThrows(NullPointerException.class, () -> new Tlb(null, 1));
        Tlb tlb = new Tlb("iotlb", 1);
        assertEquals("iotlb", tlb.name());
        assertEquals(1, tlb.capacity());
        assertEquals(0, tlb.size());
        assertThrows(NullPointerException.class, () -> tlb.lookup(1, 2, 3, true, null));
    }

    @Test
    void hitsTranslateOffsetsWithin4K2MAnd1GPages() {
        for (int shift : new int[] {K4, M2, G1}) {
            Tlb tlb = new Tlb("t", 16);
            long size = 1L << shift;
            long va = 0x40_0000_0000L + 5 * size;
            long pa = 0x80_0000_0000L + 3 * size;
            tlb.insert(T1, T2, va, shift, pa, 0b101, 0xAB, true);
            for (long offset : new long[] {0, 1, 0x123, size / 2, size - 1}) {
                assertTrue(tlb.lookup(T1, T2, va + offset, true, hit), "shift " + shift);
                assertEquals(pa + offset, hit.outputAddress());
                assertEquals(pa, hit.outputPage());
                assertEquals(va + offset, hit.inputAddress());
                assertEquals(shift, hit.pageShift());
                assertEquals(size, hit.pageSize());
                assertEquals(0b101, hit.permissions());
                assertEquals(0xAB, hit.attributes());
                assertTrue(hit.leaf());
            }
            assertFalse(has(tlb, T1, T2, va - 1));
            assertFalse(has(tlb, T1, T2, va + size));
        }
    }

    @Test
    void missesOtherTagsOtherLeafnessAndOtherPages() {
        Tlb tlb = new Tlb("t", 16);
        leaf(tlb, T1, T2, 0x5000, K4, 0x9000);
        assertTrue(has(tlb, T1, T2, 0x5010));
        assertFalse(has(tlb, T1 + 1, T2, 0x5010));
        assertFalse(has(tlb, T1, T2 + 1, 0x5010));
        assertFalse(has(tlb, T2, T1, 0x5010));
        assertFalse(tlb.lookup(T1, T2, 0x5010, false, hit));
        assertFalse(has(tlb, T1, T2, 0x4fff));
        assertFalse(has(tlb, T1, T2, 0x6000));
        // A miss leaves the previous result alone.
        assertEquals(0x9010, hit.outputAddress());
    }

    @Test
    void storesOnlyTheOutputPageBase() {
        Tlb tlb = new Tlb("t", 4);
        // The translation of the inserted address itself, low bits and all.
        leaf(tlb, T1, T2, 0x9000_0abcL, K4, 0x1234_5abcL);
        assertTrue(has(tlb, T1, T2, 0x9000_0010L));
        assertEquals(0x1234_5000L, hit.outputPage());
        assertEquals(0x1234_5010L, hit.outputAddress());
        leaf(tlb, T1, T2, 0x20_1234L, M2, 0x7fe1_2345L);
        assertTrue(has(tlb, T1, T2, 0x3f_ffffL));
        assertEquals(0x7fe0_0000L, hit.outputPage());
        assertEquals(0x7fff_ffffL, hit.outputAddress());
    }

    @Test
    void insertingTheSameKeyReplacesTheEntry() {
        Tlb tlb = new Tlb("t", 4);
        tlb.insert(T1, T2, 0x3000, K4, 0xa000, 1, 10, true);
        tlb.insert(T1, T2, 0x3fff, K4, 0xb000, 2, 20, true);
        assertEquals(1, tlb.size());
        assertTrue(has(tlb, T1, T2, 0x3004));
        assertEquals(0xb004, hit.outputAddress());
        assertEquals(2, hit.permissions());
        assertEquals(20, hit.attributes());
        // Same page but non-leaf, or another page size: distinct entries.
        tlb.insert(T1, T2, 0x3000, K4, 0xc000, 3, 30, false);
        tlb.insert(T1, T2, 0x3000, M2, 0x0, 3, 30, true);
        assertEquals(3, tlb.size());
        assertTrue(has(tlb, T1, T2, 0x3004));
        assertEquals(0xb004, hit.outputAddress());
        assertTrue(tlb.lookup(T1, T2, 0x3004, false, hit));
        assertEquals(0xc004, hit.outputAddress());
        assertFalse(hit.leaf());
        tlb.checkInvariants();
    }

    @Test
    void mixedPageSizesInOneSpaceAndSmallestPageWins() {
        Tlb tlb = new Tlb("t", 16);
        leaf(tlb, T1, T2, 0x1000, K4, 0x11_1000L);
        leaf(tlb, T1, T2, 0x20_0000, M2, 0x4000_0000L);
        leaf(tlb, T1, T2, 0x4000_0000L, G1, 0x1_0000_0000L);
        assertTrue(has(tlb, T1, T2, 0x1abc));
        assertEquals(0x11_1abcL, hit.outputAddress());
        assertTrue(has(tlb, T1, T2, 0x21_2345));
        assertEquals(0x4001_2345L, hit.outputAddress());
        assertEquals(M2, hit.pageShift());
        assertTrue(has(tlb, T1, T2, 0x7fff_ffffL));
        assertEquals(0x1_3fff_ffffL, hit.outputAddress());
        assertEquals(G1, hit.pageShift());
        assertFalse(has(tlb, T1, T2, 0x2000));

        // A 4K entry inside the 2M page takes precedence there only.
        leaf(tlb, T1, T2, 0x20_5000, K4, 0x77_7000L);
        assertTrue(has(tlb, T1, T2, 0x20_5008));
        assertEquals(0x77_7008L, hit.outputAddress());
        assertEquals(K4, hit.pageShift());
        assertTrue(has(tlb, T1, T2, 0x20_6008));
        assertEquals(0x4000_6008L, hit.outputAddress());
        tlb.checkInvariants();
    }

    @Test
    void granuleShiftsOf16KAnd64KWork() {
        Tlb tlb = new Tlb("t", 16);
        int[] shifts = {14, 16, 25, 29, 36, 42, Tlb.MAX_PAGE_SHIFT};
        for (int i = 0; i < shifts.length; i++) {
            long va = 3L << shifts[i];
            leaf(tlb, T1, T2 + i, va, shifts[i], 5L << shifts[i]);
        }
        for (int i = 0; i < shifts.length; i++) {
            long size = 1L << shifts[i];
            long va = 3L << shifts[i];
            for (long offset : new long[] {0, size / 3, size - 1}) {
                assertTrue(has(tlb, T1, T2 + i, va + offset), "shift " + shifts[i]);
                assertEquals((5L << shifts[i]) + offset, hit.outputAddress());
                assertEquals(shifts[i], hit.pageShift());
            }
            assertFalse(has(tlb, T1, T2 + i, va - 1));
        }
    }

    @Test
    void rejectsPageShiftsOutOfRange() {
        Tlb tlb = new Tlb("t", 4);
        for (int shift : new int[] {-1, 0, 11, 63, 64}) {
            assertThrows(IllegalArgumentException.class,
                    () -> tlb.insert(T1, T2, 0, shift, 0, 0, 0, true), "shift " + shift);
        }
        assertEquals(0, tlb.size());
    }

    // ---------------------------------------------------------------------------- replacement

    @Test
    void fullCacheEvictsOneEntryPerInsert() {
        int n = 64;
        Tlb tlb = new Tlb("t", n);
        for (int i = 0; i < 2 * n; i++) {
            leaf(tlb, T1, T2, (long) i << K4, K4, (long) i << 32);
            assertEquals(Math.min(i + 1, n), tlb.size());
            assertTrue(has(tlb, T1, T2, (long) i << K4), "just inserted " + i);
        }
        assertEquals(n, tlb.stats().evictions);
        int present = 0;
        for (int i = 0; i < 2 * n; i++) {
            if (has(tlb, T1, T2, (long) i << K4)) {
                assertEquals((long) i << 32, hit.outputPage());
                present++;
            }
        }
        assertEquals(n, present);
        tlb.checkInvariants();
    }

    @Test
    void clockGivesHitEntriesASecondChance() {
        int n = 64;
        Tlb tlb = new Tlb("t", n);
        for (int i = 0; i < n; i++) {
            leaf(tlb, T1, T2, (long) i << K4, K4, 0);
        }
        for (int i = 0; i < n / 2; i++) {
            assertTrue(has(tlb, T1, T2, (long) i << K4));
        }
        for (int i = n; i < n + n / 2; i++) {
            leaf(tlb, T1, T2, (long) i << K4, K4, 0);
        }
        for (int i = 0; i < n / 2; i++) {
            assertTrue(has(tlb, T1, T2, (long) i << K4), "hit entry " + i + " evicted");
        }
        for (int i = n / 2; i < n; i++) {
            assertFalse(has(tlb, T1, T2, (long) i << K4), "untouched entry " + i + " kept");
        }
        assertEquals(n, tlb.size());
    }

    @Test
    void randomTraceOverTwiceTheCapacityKeepsHitting() {
        int n = 256;
        Tlb tlb = new Tlb("t", n);
        Random random = new Random(1);
        for (int i = 0; i < 20_000; i++) {
            long va = (long) random.nextInt(2 * n) << K4;
            if (!has(tlb, T1, T2, va)) {
                leaf(tlb, T1, T2, va, K4, va);
            }
        }
        TlbStats stats = tlb.stats();
        // Any sane policy keeps about half of a uniform working set twice its size.
        assertTrue(stats.hitRate() > 0.3, stats.toString());
        assertEquals(n, stats.size);
        assertTrue(stats.evictions > 0);
    }

    @Test
    void hotSetSurvivesAStreamOfColdInserts() {
        int n = 128;
        int hot = 32;
        Tlb tlb = new Tlb("t", n);
        long hotMisses = 0;
        for (int step = 0; step < 2_000; step++) {
            for (int h = 0; h < hot; h++) {
                long va = (long) h << K4;
                if (!has(tlb, T1, T2, va)) {
                    leaf(tlb, T1, T2, va, K4, va);
                    hotMisses += step > 0 ? 1 : 0;
                }
            }
            leaf(tlb, T1 + 1, T2, (long) step << K4, K4, 0);
        }
        assertEquals(0, hotMisses);
        assertEquals(n, tlb.size());
        tlb.checkInvariants();
    }

    // ----------------------------------------------------------------------------- invalidation

    @Test
    void invalidateAllRemovesEverything() {
        Tlb tlb = new Tlb("t", 16);
        leaf(tlb, 1, 1, 0x1000, K4, 0);
        leaf(tlb, 1, 2, 0x1000, K4, 0);
        nonLeaf(tlb, 2, 1, 0x20_0000, M2, 0);
        assertEquals(3, tlb.invalidateAll());
        assertEquals(0, tlb.size());
        assertFalse(has(tlb, 1, 1, 0x1000));
        assertFalse(tlb.lookup(2, 1, 0x20_0000, false, hit));
        assertEquals(0, tlb.invalidateAll());
        leaf(tlb, 1, 1, 0x1000, K4, 0x5000);
        assertTrue(has(tlb, 1, 1, 0x1000));
        assertEquals(3, tlb.stats().invalidated);
        tlb.checkInvariants();
    }

    @Test
    void invalidateTag1KeepsOtherTag1() {
        Tlb tlb = new Tlb("t", 16);
        leaf(tlb, 1, 1, 0x1000, K4, 0);
        leaf(tlb, 1, 1, 0x2000, K4, 0);
        nonLeaf(tlb, 1, 2, 0x1000, K4, 0);
        leaf(tlb, 1, 3, 0x1000, M2, 0);
        leaf(tlb, 2, 1, 0x1000, K4, 0);
        assertEquals(4, tlb.invalidateTag1(1));
        assertFalse(has(tlb, 1, 1, 0x1000));
        assertFalse(has(tlb, 1, 3, 0x1000));
        assertFalse(tlb.lookup(1, 2, 0x1000, false, hit));
        assertTrue(has(tlb, 2, 1, 0x1000));
        assertEquals(0, tlb.invalidateTag1(1));
        assertEquals(0, tlb.invalidateTag1(99));
        assertEquals(1, tlb.size());
        tlb.checkInvariants();
    }

    @Test
    void invalidateTagKeepsOtherTag2AndOtherTag1() {
        Tlb tlb = new Tlb("t", 16);
        leaf(tlb, 1, 1, 0x1000, K4, 0);
        nonLeaf(tlb, 1, 1, 0x1000, K4, 0);
        leaf(tlb, 1, 2, 0x1000, K4, 0);
        leaf(tlb, 2, 1, 0x1000, K4, 0);
        assertEquals(2, tlb.invalidateTag(1, 1));
        assertFalse(has(tlb, 1, 1, 0x1000));
        assertFalse(tlb.lookup(1, 1, 0x1000, false, hit));
        assertTrue(has(tlb, 1, 2, 0x1000));
        assertTrue(has(tlb, 2, 1, 0x1000));
        assertEquals(0, tlb.invalidateTag(1, 1));
        assertEquals(0, tlb.invalidateTag(3, 3));
        tlb.checkInvariants();
    }

    @Test
    void invalidateRangeRemovesOverlappingPagesOnly() {
        Tlb tlb = new Tlb("t", 32);
        leaf(tlb, T1, T2, 0x1000, K4, 0);
        leaf(tlb, T1, T2, 0x2000, K4, 0);
        leaf(tlb, T1, T2, 0x3000, K4, 0);
        leaf(tlb, T1, T2, 0x40_0000, M2, 0);
        leaf(tlb, T1, T2, 0x4000_0000L, G1, 0);
        leaf(tlb, T1, T2 + 1, 0x2000, K4, 0);
        leaf(tlb, T1 + 1, T2, 0x2000, K4, 0);

        assertEquals(1, tlb.invalidateRange(T1, T2, 0x2000, 0x1000, false));
        assertFalse(has(tlb, T1, T2, 0x2000));
        assertTrue(has(tlb, T1, T2, 0x1000));
        assertTrue(has(tlb, T1, T2, 0x3000));
        assertTrue(has(tlb, T1, T2 + 1, 0x2000));
        assertTrue(has(tlb, T1 + 1, T2, 0x2000));

        // A 4K range in the middle of a 2M page removes the whole 2M entry.
        assertEquals(1, tlb.invalidateRange(T1, T2, 0x45_0000, 0x1000, false));
        assertFalse(has(tlb, T1, T2, 0x40_0000));
        assertFalse(has(tlb, T1, T2, 0x5f_ffff));

        // Unaligned two-byte range straddling 0x1000..0x3000's boundary; a range ending just
        // before the 1G page does not touch it, one reaching its first byte does.
        leaf(tlb, T1, T2, 0x2000, K4, 0);
        assertEquals(2, tlb.invalidateRange(T1, T2, 0x1fff, 2, false));
        assertTrue(has(tlb, T1, T2, 0x3000));
        assertEquals(0, tlb.invalidateRange(T1, T2, 0x3fff_f000L, 0x1000, false));
        assertTrue(has(tlb, T1, T2, 0x4000_0000L));
        assertEquals(1, tlb.invalidateRange(T1, T2, 0x3fff_f000L, 0x1001, false));
        assertFalse(has(tlb, T1, T2, 0x4000_0000L));

        assertEquals(0, tlb.invalidateRange(99, 99, 0, 1L << 40, false));
        assertEquals(3, tlb.size());
        tlb.checkInvariants();
    }

    @Test
    void invalidateRangeAnyTag2CoversEveryTag2OfTag1() {
        Tlb tlb = new Tlb("t", 32);
        leaf(tlb, 1, 10, 0x8000, K4, 0);
        leaf(tlb, 1, 11, 0x8000, K4, 0);
        leaf(tlb, 1, 12, 0x0, M2, 0);
        leaf(tlb, 1, 12, 0x9000, K4, 0);
        leaf(tlb, 2, 10, 0x8000, K4, 0);
        assertEquals(3, tlb.invalidateRangeAnyTag2(1, 0x8000, 0x1000, false));
        assertFalse(has(tlb, 1, 10, 0x8000));
        assertFalse(has(tlb, 1, 11, 0x8000));
        assertFalse(has(tlb, 1, 12, 0x1000));
        assertTrue(has(tlb, 1, 12, 0x9000));
        assertTrue(has(tlb, 2, 10, 0x8000));
        assertEquals(0, tlb.invalidateRangeAnyTag2(3, 0, -1L, false));
        tlb.checkInvariants();
    }

    @Test
    void leafOnlyKeepsPagingStructureEntries() {
        Tlb tlb = new Tlb("t", 256);
        leaf(tlb, T1, T2, 0x20_0000, K4, 0x1000);
        nonLeaf(tlb, T1, T2, 0x20_0000, M2, 0x5000);
        nonLeaf(tlb, T1, T2, 0x0, G1, 0x6000);
        leaf(tlb, T1, T2 + 1, 0x20_0000, K4, 0x1000);
        nonLeaf(tlb, T1, T2 + 1, 0x20_0000, M2, 0x5000);

        assertEquals(1, tlb.invalidateRange(T1, T2, 0x20_0000, 0x1000, true));
        assertFalse(has(tlb, T1, T2, 0x20_0000));
        assertTrue(tlb.lookup(T1, T2, 0x20_0000, false, hit));
        assertEquals(M2, hit.pageShift());
        assertEquals(1, tlb.invalidateRangeAnyTag2(T1, 0x20_0000, 0x1000, true));
        assertTrue(tlb.lookup(T1, T2 + 1, 0x20_0000, false, hit));
        assertEquals(3, tlb.invalidateRangeAnyTag2(T1, 0x20_0000, 0x1000, false));
        assertEquals(0, tlb.size());

        // The same through the list walk (a huge range in a small space).
        for (int i = 0; i < 100; i++) {
            leaf(tlb, T1, T2, (long) i << K4, K4, 0);
            nonLeaf(tlb, T1, T2, (long) i << M2, M2, 0);
        }
        long work = tlb.invalidationWork;
        assertEquals(100, tlb.invalidateRange(T1, T2, 0, Long.MIN_VALUE, true));
        assertTrue(tlb.invalidationWork - work <= 200);
        assertEquals(100, tlb.size());
        assertTrue(tlb.lookup(T1, T2, 99L << M2, false, hit));
        tlb.checkInvariants();
    }

    @Test
    void rangesAtZeroAndAtTheTopOfTheAddressSpace() {
        Tlb tlb = new Tlb("t", 32);
        long top4k = 0xFFFF_FFFF_FFFF_F000L;
        long top2m = 0xFFFF_FFFF_FFE0_0000L;
        long top62 = 0xC000_0000_0000_0000L;
        leaf(tlb, T1, T2, 0, K4, 0x1000);
        leaf(tlb, T1, T2, top4k, K4, 0x2000);
        leaf(tlb, T1, T2 + 1, top2m, M2, 0x20_0000);
        leaf(tlb, T1, T2 + 2, top62, Tlb.MAX_PAGE_SHIFT, 0);
        assertTrue(has(tlb, T1, T2, -1L));
        assertEquals(0x2fffL, hit.outputAddress());
        assertTrue(has(tlb, T1, T2 + 2, -1L));
        assertEquals(0x3fff_ffff_ffff_ffffL, hit.outputAddress());

        // Ranges running past 2^64 clamp instead of wrapping round to page 0.
        assertEquals(1, tlb.invalidateRange(T1, T2, top4k + 0x800, 0x10_0000, false));
        assertTrue(has(tlb, T1, T2, 0));
        assertEquals(1, tlb.invalidateRange(T1, T2 + 1, -1L, -1L, false));
        assertEquals(1, tlb.invalidateRangeAnyTag2(T1, -1L, 1, false));
        assertEquals(1, tlb.size());
        assertEquals(1, tlb.invalidateRange(T1, T2, 0, 1, false));

        // The whole address space, [0, 2^64 - 1).
        leaf(tlb, T1, T2, 0, K4, 0);
        leaf(tlb, T1, T2, top4k, K4, 0);
        assertEquals(2, tlb.invalidateRange(T1, T2, 0, -1L, false));
        tlb.checkInvariants();
    }

    @Test
    void emptyRangesAreRejected() {
        Tlb tlb = new Tlb("t", 4);
        leaf(tlb, T1, T2, 0, K4, 0);
        assertThrows(IllegalArgumentException.class, () -> tlb.invalidateRange(T1, T2, 0, 0, false));
        assertThrows(IllegalArgumentException.class,
                () -> tlb.invalidateRangeAnyTag2(T1, 0, 0, false));
        assertEquals(1, tlb.size());
    }

    // -------------------------------------------------------------------------------- scaling

    @Test
    void invalidatingOnePageOfAFullCacheTouchesAHandfulOfEntries() {
        int n = 65536;
        Tlb tlb = new Tlb("t", n + 2);
        for (int i = 0; i < n; i++) {
            leaf(tlb, T1, T2, (long) i << K4, K4, (long) i << K4);
        }
        // Other page sizes present elsewhere add one probe each, no more.
        leaf(tlb, T1 + 1, T2, 0, M2, 0);
        nonLeaf(tlb, T1 + 1, T2, 0, G1, 0);
        long work = tlb.invalidationWork;
        assertEquals(1, tlb.invalidateRange(T1, T2, 12345L << K4, 0x1000, false));
        assertTrue(tlb.invalidationWork - work <= 4, "work " + (tlb.invalidationWork - work));
        assertFalse(has(tlb, T1, T2, 12345L << K4));
        assertTrue(has(tlb, T1, T2, 12344L << K4));
        assertTrue(has(tlb, T1, T2, 12346L << K4));

        work = tlb.invalidationWork;
        assertEquals(16, tlb.invalidateRange(T1, T2, 0x100_0000, 0x10_000, true));
        assertTrue(tlb.invalidationWork - work <= 32, "work " + (tlb.invalidationWork - work));
        assertEquals(n - 17, tlb.invalidateRange(T1, T2, 0, -1L, false));
        tlb.checkInvariants();
    }

    @Test
    void tagInvalidationsCostWhatTheyRemove() {
        int n = 65536;
        Tlb tlb = new Tlb("t", n);
        for (int i = 0; i < n - 30; i++) {
            leaf(tlb, T1, T2, (long) i << K4, K4, 0);
        }
        for (int i = 0; i < 10; i++) {
            leaf(tlb, 5, 1, (long) i << G1, G1, 0);
            leaf(tlb, 5, 2, (long) i << K4, K4, 0);
            leaf(tlb, 6, 1, (long) i << K4, K4, 0);
        }
        long work = tlb.invalidationWork;
        assertEquals(10, tlb.invalidateTag(5, 2));
        assertEquals(10, tlb.invalidationWork - work);

        work = tlb.invalidationWork;
        assertEquals(10, tlb.invalidateRange(6, 1, 0, -1L, false));
        assertEquals(10, tlb.invalidationWork - work);

        leaf(tlb, 5, 2, 0, K4, 0);
        work = tlb.invalidationWork;
        assertEquals(11, tlb.invalidateTag1(5));
        assertEquals(11, tlb.invalidationWork - work);
        assertEquals(n - 30, tlb.size());
        tlb.checkInvariants();
    }

    // ---------------------------------------------------------------------------------- stats

    @Test
    void statsCountLookupsInsertsEvictionsAndInvalidations() {
        Tlb tlb = new Tlb("stats", 2);
        leaf(tlb, T1, T2, 0x1000, K4, 0);
        leaf(tlb, T1, T2, 0x1000, K4, 0);
        leaf(tlb, T1, T2, 0x2000, K4, 0);
        leaf(tlb, T1, T2, 0x3000, K4, 0);
        has(tlb, T1, T2, 0x3000);
        has(tlb, T1, T2, 0x3000);
        has(tlb, T1, T2, 0x9000);
        tlb.invalidateTag(T1, T2);
        TlbStats stats = tlb.stats();
        assertEquals(2, stats.hits());
        assertEquals(1, stats.misses());
        assertEquals(4, stats.inserts());
        assertEquals(1, stats.evictions());
        assertEquals(2, stats.invalidated());
        assertEquals(0, stats.size());
        assertEquals(2, stats.capacity());
        assertEquals(2.0 / 3, stats.hitRate(), 1e-9);
        assertTrue(stats.toString().contains("hits=2"), stats.toString());
        assertTrue(tlb.toString().contains("stats"));
        // Snapshots do not change afterwards.
        has(tlb, T1, T2, 0x3000);
        assertEquals(1, stats.misses);
        assertEquals(2, tlb.stats().misses);
    }
}
