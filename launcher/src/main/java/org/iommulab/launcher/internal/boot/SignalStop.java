package org.iommulab.launcher.internal.boot;

/**
 * Turns SIGTERM into a graceful framework stop so that the process exits 0 like any normal stop
 * (the JVM's default would exit 143). Uses {@code sun.misc.Signal} when the platform offers it.
 */
final class SignalStop {
    private SignalStop() {
    }

    static void install(Runnable stop) {
        try {
            sun.misc.Signal.handle(new sun.misc.Signal("TERM"), signal -> {
                Thread t = new Thread(stop, "iommulab-sigterm");
                t.setDaemon(true);
                t.start();
            });
        } catch (IllegalArgumentException | UnsupportedOperationException | LinkageError e) {
            // no SIGTERM on this platform: the shutdown hook still stops the framework
        }
    }
}
