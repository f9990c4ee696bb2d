package org.iommulab.vtd.internal.driver;

import org.iommulab.api.errno.Errno;
import org.iommulab.api.errno.IommuException;
import org.iommulab.api.memory.FrameAllocator;
import org.iommulab.api.memory.PhysicalMemory;
import org.iommulab.pgtable.unit.StateWords;
import org.iommulab.vtd.internal.hw.VtdHardware;

/**
 * The driver's side of queued invalidation (Linux {@code qi_submit_sync}): 128-bit descriptors
 * written at the tail of a 4 KiB queue, each batch followed by an invalidation wait descriptor whose
 * status write the driver checks before returning, so that a caller knows the hardware's caches are
 * clean. Thread safe: one submission at a time.
 */
final class InvalidationQueue {
    static final long IQA = 0x90;
    static final long IQT = 0x88;
    static final long IQH = 0x80;
    static final long FSTS = 0x34;
    private static final int SLOTS = 256;
    private static final int FSTS_IQE = 1 << 4;

    private final VtdHardware hw;
    private final PhysicalMemory memory;
    private final long base;
    private final long status;
    private int tail;
    private int sequence;

    InvalidationQueue(VtdHardware hw, PhysicalMemory memory, FrameAllocator frames) throws IommuException {
        this.hw = hw;
        this.memory = memory;
        this.base = frames.allocateFrames(1);
        try {
            this.status = frames.allocateFrames(1);
        } catch (IommuException e) {
            frames.freeFrames(base, 1);
            throw e;
        }
    }

    private InvalidationQueue(VtdHardware hw, PhysicalMemory memory, long base, long status, int tail, int sequence) {
        this.hw = hw;
        this.memory = memory;
        this.base = base;
        this.status = status;
        this.tail = tail;
        this.sequence = sequence;
    }

    /** Records the queue's frames and position; lists the frames in {@code owned} as (address, count). */
    synchronized void save(StateWords out, StateWords owned) {
        out.put(base).put(status).put(tail).put(sequence);
        owned.put(base).put(1).put(status).put(1);
    }

    /** The queue a previous build's driver left, where {@link #save} recorded it; IQA already points there. */
    static InvalidationQueue restore(VtdHardware hw, PhysicalMemory memory, StateWords in) throws IommuException {
        return new InvalidationQueue(hw, memory, in.next(), in.next(), in.nextInt(), in.nextInt());
    }

    /** Programs IQA (QS = 0: 256 descriptors of 128 bits) and resets the tail; QI must be off. */
    void program() throws IommuException {
        hw.write(IQA, base, 8);
        hw.write(IQT, 0, 8);
        tail = 0;
    }

    /** Frees the queue and status frames. */
    void release(FrameAllocator frames) {
        for (long frame : new long[] {base, status}) {
            try {
                frames.freeFrames(frame, 1);
            } catch (IommuException e) {
                // already freed
            }
        }
    }

    /**
     * Submits descriptors and waits for them.
     *
     * @param descriptors pairs of (qw0, qw1)
     * @throws IommuException {@code EIO} if the hardware rejected a descriptor (FSTS.IQE),
     *     {@code ETIMEDOUT} if the wait descriptor's status never arrived
     */
    synchronized void submitSync(long... descriptors) throws IommuException {
        for (int i = 0; i < descriptors.length; i += 2) {
            put(descriptors[i], descriptors[i + 1]);
        }
        int value = ++sequence;
        memory.write32(status, 0);
        // Invalidation wait: type 5, SW (bit 5), FN (bit 6), status data 63:32, status address.
        put(0x5L | (1L << 5) | (1L << 6) | ((long) value << 32), status);
        hw.write(IQT, (long) tail << 4, 8);
        if (((int) hw.read(FSTS, 4) & FSTS_IQE) != 0) {
            // Skip the rejected descriptor as Linux does, clear IQE and report the error.
            long head = hw.read(IQH, 8);
            hw.write(FSTS, FSTS_IQE, 4);
            tail = (int) (head >>> 4);
            hw.write(IQT, (long) tail << 4, 8);
            throw new IommuException(Errno.EIO, String.format("invalidation descriptor at 0x%x rejected (FSTS.IQE)", head));
        }
        if (memory.read32(status) != value) {
            throw new IommuException(Errno.ETIMEDOUT, "invalidation wait descriptor did not complete");
        }
    }

    private void put(long q0, long q1) {
        long slot = base + ((long) tail << 4);
        memory.write64(slot, q0);
        memory.write64(slot + 8, q1);
        tail = (tail + 1) % SLOTS;
    }
}
