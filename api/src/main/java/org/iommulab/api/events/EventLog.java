package org.iommulab.api.events;

import java.util.List;

import org.iommulab.api.dto.EventDTO;
import org.osgi.annotation.versioning.ProviderType;

/**
 * A bounded, ordered log of events. When full, the oldest events are dropped and counted.
 *
 * <p>Provided by the platform as an OSGi service. Thread safe; {@link #record} does not block
 * beyond a short lock.
 */
@ProviderType
public interface EventLog {

    /**
     * Appends an event.
     *
     * @param source who reports it (an instance, VM or device name), not {@code null}
     * @param message one line, not {@code null}
     */
    void record(String source, String message);

    /**
     * @param max the most events to return, at least 0
     * @return the newest {@code max} events, oldest first, in a new list
     */
    List<EventDTO> recent(int max);

    /** @return the sequence number the next event will get (events recorded so far) */
    long nextSequence();

    /** @return how many events were dropped because the log was full */
    long dropped();
}
