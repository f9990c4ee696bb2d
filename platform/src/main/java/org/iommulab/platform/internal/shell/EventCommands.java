package org.iommulab.platform.internal.shell;

import org.apache.felix.service.command.Descriptor;
import org.iommulab.api.errno.IommuException;
import org.iommulab.api.dto.EventDTO;
import org.iommulab.api.events.EventLog;
import org.osgi.service.component.annotations.Activate;
import org.osgi.service.component.annotations.Component;
import org.osgi.service.component.annotations.Reference;

/** {@code events:show}: the platform's event log. */
@Component(service = EventCommands.class, property = {
        "osgi.command.scope=events",
        "osgi.command.function=show" })
public final class EventCommands {
    private final EventLog log;

    /** @param log the event log */
    @Activate
    public EventCommands(@Reference EventLog log) {
        this.log = log;
    }

    /**
     * Prints the newest 20 events.
     *
     * @throws IommuException never for the fixed count
     */
    @Descriptor("print the newest 20 events, '#<seq> <source>: <message>'")
    public void show() throws IommuException {
        show("20");
    }

    /**
     * @param count how many
     * @throws IommuException EINVAL for a bad count
     */
    @Descriptor("print the newest events, '#<seq> <source>: <message>'")
    public void show(@Descriptor("how many events") String count) throws IommuException {
        for (EventDTO e : log.recent(Numbers.nonNegativeInt("count", count))) {
            System.out.println(e);
        }
    }
}
