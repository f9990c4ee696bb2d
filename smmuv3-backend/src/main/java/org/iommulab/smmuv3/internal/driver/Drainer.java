package org.iommulab.smmuv3.internal.driver;

import java.util.concurrent.atomic.AtomicBoolean;

/**
 * Runs a queue's interrupt handler so that the device thread that raised the interrupt never waits
 * for another thread's handler: if one is draining, the caller flags more work and returns, and the
 * drainer loops until no flag is left (the shape of a threaded IRQ handler in Linux).
 *
 * <p>Thread safe.
 */
final class Drainer {
    private final Runnable drain;
    private final AtomicBoolean draining = new AtomicBoolean();
    private final AtomicBoolean moreWork = new AtomicBoolean();

    /** @param drain empties the queue once; must not throw */
    Drainer(Runnable drain) {
        this.drain = drain;
    }

    /** The interrupt: drains now, or leaves the work to the thread already draining. */
    void interrupt() {
        moreWork.set(true);
        while (moreWork.get() && draining.compareAndSet(false, true)) {
            try {
                moreWork.set(false);
                drain.run();
            } finally {
                draining.set(false);
            }
        }
    }
}
