package org.iommulab.pgtable.unit;

import java.util.concurrent.atomic.AtomicBoolean;

/**
 * Runs a driver's queue interrupt handler (an event, fault or page-request queue) so that the
 * thread that raised the interrupt, a device thread whose request faulted or sent a page request,
 * never waits for another thread's handler: if one is draining, the caller flags more work and
 * returns, and the draining thread loops until no flag is left (the shape of a threaded IRQ
 * handler in Linux).
 *
 * <p>Thread safe.
 *
 * @since 1.2
 */
public final class Drainer {
    private final Runnable drain;
    private final AtomicBoolean draining = new AtomicBoolean();
    private final AtomicBoolean moreWork = new AtomicBoolean();

    /** @param drain empties the queue once; must not throw */
    public Drainer(Runnable drain) {
        this.drain = java.util.Objects.requireNonNull(drain, "drain");
    }

    /** The interrupt: drains now, or leaves the work to the thread already draining. */
    public void interrupt() {
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
