package org.iommulab.smmuv3.internal.hw;

import static org.junit.jupiter.api.Assertions.fail;

import java.util.concurrent.atomic.AtomicReference;
import java.util.function.Supplier;

/**
 * Time bounds for the fuzzing properties: a whole try runs on its own daemon thread and fails if it
 * has not returned within its bound (a hang cannot stall the build), and each call into the model
 * is timed.
 */
final class Bounded {
    /** What one register access, command batch or translation may take, generously. */
    static final long CALL_NANOS = 2_000_000_000L;
    /** What one try may take. */
    static final long TRY_MILLIS = 60_000;

    private Bounded() {
    }

    /** Runs {@code body} on a fresh daemon thread, rethrowing what it throws; fails if it hangs. */
    static void run(String what, Runnable body) {
        AtomicReference<Throwable> thrown = new AtomicReference<>();
        Thread t = new Thread(() -> {
            try {
                body.run();
            } catch (Throwable e) {
                thrown.set(e);
            }
        }, "bounded " + what);
        t.setDaemon(true);
        t.start();
        try {
            t.join(TRY_MILLIS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new AssertionError(e);
        }
        if (t.isAlive()) {
            fail(what + " did not return within " + TRY_MILLIS + " ms (a hang in the model)");
        }
        Throwable e = thrown.get();
        if (e instanceof RuntimeException) {
            throw (RuntimeException) e;
        }
        if (e instanceof Error) {
            throw (Error) e;
        }
    }

    /** Calls {@code call} and fails if it took longer than {@link #CALL_NANOS}. */
    static <T> T call(String what, Supplier<T> call) {
        long t0 = System.nanoTime();
        T result = call.get();
        long took = System.nanoTime() - t0;
        if (took > CALL_NANOS) {
            fail(what + " took " + took / 1_000_000 + " ms");
        }
        return result;
    }
}
