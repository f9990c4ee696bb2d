package org.iommulab.pgtable.tlb;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.math.BigInteger;
import java.util.HashMap;
import java.util.Map;
import java.util.Random;

import org.junit.jupiter.api.Test;

/**
 * Random operations checked against a trivially correct model (a map of every entry inserted and
 * not invalidated, with ranges compared in BigInteger so the model cannot share the TLB's
 * overflow mistakes). Without evictions the TLB must agree with the model exactly; with them,
 * every hit must still be an entry of the model, which catches stale entries.
 */
class TlbModelTest {
    private static final int[] SHIFTS = {12, 13, 14, 16, 21, 25, 29, 30, 39};
    private static final BigInteger TWO_64 = BigInteger.ONE.shiftLeft(64);

    private record Key(long tag1, long tag2, long pageNumber, int shift, boolean leaf) {
        BigInteger start() {
            return new BigInteger(Long.toUnsignedString(pageNumber)).shiftLeft(shift);
        }

        BigInteger end() {
            return start().add(BigInteger.ONE.shiftLeft(shift));
        }
    }

    private static BigInteger unsigned(long value) {
        return new BigInteger(Long.toUnsignedString(value));
    }

    /** Addresses clustered near 0, near 2^47 and near 2^64, where boundaries are likeliest. */
    private static long address(Random random) {
        long offset = random.nextInt(1 << 24) & ~0x3ffL;
        switch (random.nextInt(3)) {
            case 0: return offset;
            case 1: return (1L << 47) + offset - (1 << 23);
            default: return -1L - offset;
        }
    }

    private static long size(Random random) {
        switch (random.nextInt(4)) {
            case 0: return 1 + random.nextInt(0x3000);
            case 1: return 1L << (12 + random.nextInt(20));
            case 2: return random.nextLong() | Long.MIN_VALUE; // ≥ 2^63: clamps at the top
            default: return 1 + random.nextInt(1 << 24);
        }
    }

    private static long removeRange(Map<Key, Long> model, long tag1, Long tag2, long address,
            long size, boolean leafOnly) {
        BigInteger start = unsigned(address);
        BigInteger end = start.add(unsigned(size)).min(TWO_64);
        long before = model.size();
        model.keySet().removeIf(k -> k.tag1 == tag1 && (tag2 == null || k.tag2 == tag2)
                && (k.leaf || !leafOnly)
                && k.start().compareTo(end) < 0 && k.end().compareTo(start) > 0);
        return before - model.size();
    }

    /** The model's answer: the smallest covering page of the right tags and leaf-ness. */
    private static Key find(Map<Key, Long> model, long tag1, long tag2, long address, boolean leaf) {
        for (int shift : SHIFTS) {
            Key key = new Key(tag1, tag2, address >>> shift, shift, leaf);
            if (model.containsKey(key)) {
                return key;
            }
        }
        return null;
    }

    private static void run(int capacity, long seed, int operations) {
        Tlb tlb = new Tlb("model", capacity);
        Map<Key, Long> model = new HashMap<>();
        Random random = new Random(seed);
        TlbHit hit = new TlbHit();
        boolean exact = true;
        long hits = 0;
        for (int op = 0; op < operations; op++) {
            long tag1 = random.nextInt(3);
            long tag2 = random.nextInt(3);
            long address = address(random);
            boolean leaf = random.nextInt(3) != 0;
            boolean leafOnly = random.nextBoolean();
            int choice = random.nextInt(100);
            if (choice < 45) {
                int shift = SHIFTS[random.nextInt(SHIFTS.length)];
                long output = random.nextLong();
                tlb.insert(tag1, tag2, address, shift, output, 0, 0, leaf);
                model.put(new Key(tag1, tag2, address >>> shift, shift, leaf), output & -(1L << shift));
                exact &= tlb.stats().evictions == 0;
            } else if (choice < 85) {
                Key expected = find(model, tag1, tag2, address, leaf);
                boolean found = tlb.lookup(tag1, tag2, address, leaf, hit);
                if (exact) {
                    assertEquals(expected != null, found, "op " + op);
                }
                if (found) {
                    hits++;
                    Key key = new Key(tag1, tag2, address >>> hit.pageShift(), hit.pageShift(), leaf);
                    assertTrue(model.containsKey(key), "stale or unknown hit " + hit + " at op " + op);
                    assertEquals(model.get(key), hit.outputPage());
                    if (exact) {
                        assertEquals(expected, key);
                    }
                }
            } else if (choice < 93) {
                long size = size(random);
                long removed = removeRange(model, tag1, tag2, address, size, leafOnly);
                long actual = tlb.invalidateRange(tag1, tag2, address, size, leafOnly);
                if (exact) {
                    assertEquals(removed, actual, "op " + op);
                }
            } else if (choice < 97) {
                long size = size(random);
                long removed = removeRange(model, tag1, null, address, size, leafOnly);
                long actual = tlb.invalidateRangeAnyTag2(tag1, address, size, leafOnly);
                if (exact) {
                    assertEquals(removed, actual, "op " + op);
                }
            } else if (choice < 98) {
                model.keySet().removeIf(k -> k.tag1 == tag1 && k.tag2 == tag2);
                tlb.invalidateTag(tag1, tag2);
            } else if (choice < 99) {
                model.keySet().removeIf(k -> k.tag1 == tag1);
                tlb.invalidateTag1(tag1);
            } else {
                model.clear();
                assertFalse(tlb.invalidateAll() < 0);
            }
            if (exact) {
                assertEquals(model.size(), tlb.size(), "op " + op);
            }
            assertTrue(tlb.size() <= capacity);
            if (op % 997 == 0) {
                tlb.checkInvariants();
            }
        }
        tlb.checkInvariants();
        assertTrue(hits > 0);
        assertEquals(capacity >= operations, exact);
    }

    @Test
    void agreesExactlyWithTheModelWithoutEvictions() {
        run(20_000, 42, 20_000);
    }

    @Test
    void neverHitsAnEntryTheModelLacksUnderEvictions() {
        run(64, 43, 20_000);
    }
}
