package org.iommulab.launcher.internal.shell;

import java.util.ArrayList;
import java.util.Collections;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Set;

import org.apache.felix.service.command.CommandSession;
import org.apache.felix.service.command.CommandSessionListener;
import org.osgi.service.component.annotations.Component;
import org.osgi.service.component.annotations.Deactivate;

/**
 * Works around a Gogo runtime 1.1.6 race: the command processor keeps its sessions in a
 * {@code WeakHashMap} and, when it stops, copies the keys into an array sized before iterating; a
 * session that became garbage meanwhile (the jline bundle's finished profile session) leaves a
 * {@code null} and the stop fails with a NullPointerException. This listener keeps every session
 * that runs a command strongly reachable and closes them when the launcher bundle stops, which
 * happens at start level 4, before Gogo's bundles at level 3.
 */
@Component(service = CommandSessionListener.class)
public final class SessionKeeper implements CommandSessionListener {
    private final Set<CommandSession> sessions = Collections.newSetFromMap(new IdentityHashMap<>());

    @Override
    public void beforeExecute(CommandSession session, CharSequence command) {
        synchronized (sessions) {
            sessions.add(session);
        }
    }

    @Override
    public void afterExecute(CommandSession session, CharSequence command, Exception exception) {
        // nothing to do: the session was recorded before it ran
    }

    @Override
    public void afterExecute(CommandSession session, CharSequence command, Object result) {
        // nothing to do: the session was recorded before it ran
    }

    /** Closes the recorded sessions so the processor's map holds no garbage when it stops. */
    @Deactivate
    void closeAll() {
        List<CommandSession> open;
        synchronized (sessions) {
            open = new ArrayList<>(sessions);
            sessions.clear();
        }
        for (CommandSession session : open) {
            try {
                session.close();
            } catch (RuntimeException e) {
                // the session was closed already
            }
        }
    }
}
