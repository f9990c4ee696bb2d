package org.iommulab.riscv.internal.hw;

import java.util.function.IntConsumer;

import org.iommulab.riscv.internal.spec.Reg;

/**
 * The interrupt-pending status register {@code ipsr} (spec "Interrupt pending status register (ipsr)", RW1C: cip 0, fip 1, pmip 2,
 * pip 3) and the wired interrupt it drives. capabilities.IGS is WSI: with fctl.WSI = 1 each
 * pending bit drives its wire; the model's wire is a Java hook, called with the bits that became
 * pending (0 to 1) on the thread that caused them, after the register lock is released. With
 * fctl.WSI = 0 (message-signaled, which this unit cannot generate) bits become pending silently,
 * and setting WSI later signals the bits still pending. pmip is never set (no HPM).
 *
 * <p>Not thread safe: guarded by the owner's register lock, except {@link #signal}.
 */
final class Interrupts {
    static final int IPSR_MASK = Reg.IPSR_CIP | Reg.IPSR_FIP | Reg.IPSR_PMIP | Reg.IPSR_PIP;

    int ipsr;
    boolean wsi;
    private int toSignal;
    private volatile IntConsumer handler;
    /** Handler calls (not under the lock: approximate under concurrency). */
    volatile long signalled;

    void setHandler(IntConsumer h) {
        this.handler = h;
    }

    /** Makes {@code bits} pending; the ones that were not pending are signalled (with WSI). */
    void raise(int bits) {
        int rising = bits & ~ipsr & IPSR_MASK;
        ipsr |= rising;
        if (wsi) {
            toSignal |= rising;
        }
    }

    /** ipsr write: RW1C. */
    void writeIpsr(long value) {
        ipsr &= ~((int) value & IPSR_MASK);
    }

    /** fctl.WSI write: turning it on signals what is pending. */
    void setWsi(boolean on) {
        if (on && !wsi) {
            toSignal |= ipsr;
        }
        wsi = on;
    }

    /** @return the bits to signal, forgetting them (under the lock) */
    int take() {
        int t = toSignal;
        toSignal = 0;
        return t;
    }

    /** Per thread: [0] handler nesting depth, [1] bits raised while the handler ran. */
    private static final ThreadLocal<int[]> IN_HANDLER = ThreadLocal.withInitial(() -> new int[2]);

    /**
     * Calls the handler with {@code bits} (outside the lock); nothing for 0 or no handler. Bits
     * raised by register writes the handler itself makes (clearing ipsr while an error bit still
     * holds it pending, as the ipsr section says) are delivered after it returns, not by a nested call, so a handler
     * that clears ipsr before the error bit runs again once instead of recursing.
     */
    void signal(int bits) {
        IntConsumer h = handler;
        if (bits == 0 || h == null) {
            return;
        }
        int[] state = IN_HANDLER.get();
        if (state[0] > 0) {
            state[1] |= bits;
            return;
        }
        state[0]++;
        try {
            for (int round = 0; bits != 0 && round < 64; round++) {
                signalled++;
                h.accept(bits);
                bits = state[1];
                state[1] = 0;
            }
        } finally {
            state[0]--;
            state[1] = 0;
        }
    }

    void reset() {
        ipsr = 0;
        wsi = false;
        toSignal = 0;
    }
}
