package org.iommulab.platform.internal.events;

import java.util.ArrayList;
import java.util.List;

import org.iommulab.api.dto.EventDTO;
import org.iommulab.api.events.EventLog;
import org.osgi.service.component.annotations.Activate;
import org.osgi.service.component.annotations.Component;
import org.osgi.service.metatype.annotations.AttributeDefinition;
import org.osgi.service.metatype.annotations.Designate;
import org.osgi.service.metatype.annotations.ObjectClassDefinition;

/** A ring buffer of events: when full, the oldest event is overwritten and counted as dropped. */
@Component(service = EventLog.class, immediate = true, configurationPid = EventLogImpl.PID)
@Designate(ocd = EventLogImpl.Config.class)
public final class EventLogImpl implements EventLog {
    /** Configuration PID. */
    public static final String PID = "org.iommulab.platform.events";

    /** Event log configuration. */
    @ObjectClassDefinition(name = "IOMMU Lab event log")
    public @interface Config {
        /** @return the capacity */
        @AttributeDefinition(description = "Most events kept (older ones are dropped)")
        int capacity() default 4096;
    }

    private final EventDTO[] ring;
    private long next;

    /** @param config the configuration */
    @Activate
    public EventLogImpl(Config config) {
        this.ring = new EventDTO[Math.max(1, config.capacity())];
    }

    @Override
    public void record(String source, String message) {
        EventDTO event = new EventDTO();
        event.timeMillis = System.currentTimeMillis();
        event.source = String.valueOf(source);
        event.message = String.valueOf(message);
        synchronized (this) {
            event.sequence = next;
            ring[(int) (next % ring.length)] = event;
            next++;
        }
    }

    @Override
    public synchronized List<EventDTO> recent(int max) {
        long kept = Math.min(next, ring.length);
        long count = Math.min(kept, Math.max(0, max));
        List<EventDTO> events = new ArrayList<>((int) count);
        for (long seq = next - count; seq < next; seq++) {
            EventDTO e = ring[(int) (seq % ring.length)];
            EventDTO copy = new EventDTO();
            copy.sequence = e.sequence;
            copy.timeMillis = e.timeMillis;
            copy.source = e.source;
            copy.message = e.message;
            events.add(copy);
        }
        return events;
    }

    @Override
    public synchronized long nextSequence() {
        return next;
    }

    @Override
    public synchronized long dropped() {
        return Math.max(0, next - ring.length);
    }
}
