package org.iommulab.platform.internal.events;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.annotation.Annotation;
import java.util.List;

import org.iommulab.api.dto.EventDTO;
import org.junit.jupiter.api.Test;

class EventLogImplTest {

    private static EventLogImpl log(int capacity) {
        return new EventLogImpl(new EventLogImpl.Config() {
            @Override
            public Class<? extends Annotation> annotationType() {
                return EventLogImpl.Config.class;
            }

            @Override
            public int capacity() {
                return capacity;
            }
        });
    }

    private static List<String> messages(List<EventDTO> events) {
        return events.stream().map(e -> e.message).toList();
    }

    private static List<Long> sequences(List<EventDTO> events) {
        return events.stream().map(e -> e.sequence).toList();
    }

    @Test
    void emptyLog() {
        EventLogImpl log = log(4);
        assertTrue(log.recent(10).isEmpty());
        assertEquals(0, log.nextSequence());
        assertEquals(0, log.dropped());
    }

    @Test
    void eventsComeBackInOrderWithTheirFields() {
        EventLogImpl log = log(8);
        long before = System.currentTimeMillis();
        log.record("vtd0", "fault 1");
        log.record("dsa0", "fault 2");
        log.record("vm1", "fault 3");
        List<EventDTO> events = log.recent(10);
        assertEquals(List.of("fault 1", "fault 2", "fault 3"), messages(events));
        assertEquals(List.of("vtd0", "dsa0", "vm1"), events.stream().map(e -> e.source).toList());
        assertEquals(List.of(0L, 1L, 2L), sequences(events));
        assertTrue(events.get(0).timeMillis >= before);
        assertEquals(3, log.nextSequence());
        assertEquals(0, log.dropped());
        assertEquals("#1 dsa0: fault 2", events.get(1).toString());
    }

    @Test
    void nullsAreRecordedAsText() {
        EventLogImpl log = log(2);
        log.record(null, null);
        EventDTO e = log.recent(1).get(0);
        assertEquals("null", e.source);
        assertEquals("null", e.message);
    }

    @Test
    void recentReturnsTheNewestNOldestFirst() {
        EventLogImpl log = log(10);
        for (int i = 0; i < 6; i++) {
            log.record("s", "m" + i);
        }
        assertEquals(List.of("m3", "m4", "m5"), messages(log.recent(3)));
        assertEquals(List.of("m5"), messages(log.recent(1)));
        assertEquals(List.of(), log.recent(0));
        assertEquals(List.of(), log.recent(-3));
        assertEquals(6, log.recent(6).size());
        assertEquals(6, log.recent(Integer.MAX_VALUE).size());
    }

    @Test
    void fullRingOverwritesTheOldestAndCountsDrops() {
        EventLogImpl log = log(4);
        for (int i = 0; i < 10; i++) {
            log.record("s", "m" + i);
        }
        assertEquals(10, log.nextSequence());
        assertEquals(6, log.dropped());
        List<EventDTO> kept = log.recent(100);
        assertEquals(List.of("m6", "m7", "m8", "m9"), messages(kept));
        assertEquals(List.of(6L, 7L, 8L, 9L), sequences(kept), "sequence numbers continue across the wrap");
        assertEquals(List.of("m8", "m9"), messages(log.recent(2)));
        log.record("s", "m10");
        assertEquals(7, log.dropped());
        assertEquals(List.of(7L, 8L, 9L, 10L), sequences(log.recent(4)));
    }

    @Test
    void exactlyFullDropsNothing() {
        EventLogImpl log = log(3);
        log.record("s", "a");
        log.record("s", "b");
        log.record("s", "c");
        assertEquals(0, log.dropped());
        assertEquals(List.of("a", "b", "c"), messages(log.recent(3)));
    }

    @Test
    void capacityIsAtLeastOne() {
        EventLogImpl log = log(0);
        log.record("s", "a");
        log.record("s", "b");
        assertEquals(List.of("b"), messages(log.recent(5)));
        assertEquals(1, log.dropped());
    }

    @Test
    void recentReturnsCopies() {
        EventLogImpl log = log(4);
        log.record("s", "original");
        List<EventDTO> first = log.recent(1);
        first.get(0).message = "changed";
        first.get(0).source = "changed";
        first.get(0).sequence = 99;
        EventDTO again = log.recent(1).get(0);
        assertEquals("original", again.message);
        assertEquals("s", again.source);
        assertEquals(0, again.sequence);
        List<EventDTO> list = log.recent(1);
        list.clear();
        assertEquals(1, log.recent(1).size(), "the returned list is a new list");
    }
}
