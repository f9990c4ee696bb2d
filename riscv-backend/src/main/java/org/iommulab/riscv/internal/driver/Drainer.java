package org.iommulab.riscv.internal.driver;

import java.util.concurrent.atomic.AtomicBoolean;

/**
 * Runs a queue's interrupt handler so that the thread that raised the interrupt (a device thread
 * whose request faulted, or sent a page request) never waits for another thread's handler: if one
 * is draining, the caller flags more work and returns, and the draining thread loops until no
 * flag is left (the shape of Linux's threaded IRQ handlers {@code riscv_iommu_fltq_process} and
 * {@code riscv_iommu_priq_process}).
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
