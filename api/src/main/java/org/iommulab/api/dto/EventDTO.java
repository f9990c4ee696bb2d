package org.iommulab.api.dto;

/** One event of the platform's event log. */
public class EventDTO {
    /** Position in the log, from 0. */
    public long sequence;
    /** Wall-clock time in milliseconds since the epoch. */
    public long timeMillis;
    /** Who reported it. */
    public String source;
    /** What happened. */
    public String message;

    @Override
    public String toString() {
        return String.format("#%d %s: %s", sequence, source, message);
    }
}
