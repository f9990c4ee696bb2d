package org.iommulab.platform.internal.util;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.HashMap;
import java.util.Map;
import java.util.Random;

import org.junit.jupiter.api.Test;

class LongIntMapTest {

    @Test
    void agreesWithHashMapOverARandomMixOfAlignedKeysAndZero() {
        long seed = 20261121L;
        Random random = new Random(seed);
        LongIntMap map = new LongIntMap();
        Map<Long, Integer> reference = new HashMap<>();
        for (int step = 0; step < 200_000; step++) {
            // Page-aligned keys from a small range collide in their low bits; 0 and -1 are edge keys.
            long key = switch (random.nextInt(20)) {
                case 0 -> 0L;
                case 1 -> -1L;
                default -> (1L << 40) + ((long) random.nextInt(5000) << 12);
            };
            switch (random.nextInt(3)) {
                case 0 -> {
                    int value = random.nextInt();
                    map.put(key, value);
                    reference.put(key, value);
                }
                case 1 -> {
                    Integer old = reference.remove(key);
                    assertEquals(old == null ? -7 : old, map.remove(key, -7), "seed " + seed + " step " + step);
                }
                default -> {
                    assertEquals(reference.getOrDefault(key, -7), map.get(key, -7), "seed " + seed + " step " + step);
                    assertEquals(reference.containsKey(key), map.containsKey(key));
                }
            }
            assertEquals(reference.size(), map.size(), "seed " + seed + " step " + step);
        }
        for (Map.Entry<Long, Integer> e : reference.entrySet()) {
            assertEquals(e.getValue(), map.get(e.getKey(), -7));
        }
    }

    @Test
    void growsToAMillionEntriesAndShrinksBackWhenEmptied() {
        LongIntMap map = new LongIntMap();
        for (long i = 1; i <= 1_000_000; i++) {
            map.put(i << 12, (int) i);
        }
        assertEquals(1_000_000, map.size());
        assertEquals(500_000, map.get(500_000L << 12, 0));
        for (long i = 1; i <= 1_000_000; i++) {
            assertEquals((int) i, map.remove(i << 12, 0));
        }
        assertEquals(0, map.size());
        assertFalse(map.containsKey(4096));
        map.put(0, 5);
        assertTrue(map.containsKey(0));
        map.clear();
        assertEquals(0, map.size());
        assertEquals(-1, map.get(0, -1));
    }
}
