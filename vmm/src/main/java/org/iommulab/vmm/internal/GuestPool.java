package org.iommulab.vmm.internal;

import org.iommulab.api.errno.Errno;
import org.iommulab.api.errno.IommuException;
import org.iommulab.api.memory.FrameAllocator;
import org.iommulab.api.memory.PhysicalMemory;

/**
 * The guest kernel's page allocator: a bump allocator of zeroed, naturally aligned guest frames in
 * {@code [start, end)} of guest memory. Freed frames are not reused (a guest here is short lived).
 * Thread safe.
 */
final class GuestPool implements FrameAllocator {
    private final PhysicalMemory memory;
    private final long start;
    private final long end;
    private long next;
    private long allocated;

    GuestPool(PhysicalMemory memory, long start, long end) {
        this.memory = memory;
        this.start = start;
        this.end = end;
        this.next = start;
    }

    @Override
    public synchronized long allocateFrames(int frames) throws IommuException {
        if (frames < 1 || frames > 4096) {
            throw new IommuException(Errno.EINVAL, "frame count must be 1 to 4096, not " + frames);
        }
        long bytes = Long.highestOneBit(frames * FRAME_SIZE - 1) << 1; // aligned to the power of two that holds it
        long at = (next + bytes - 1) & -bytes;
        if (at + frames * FRAME_SIZE > end) {
            throw new IommuException(Errno.ENOMEM, "guest memory pool exhausted");
        }
        next = at + frames * FRAME_SIZE;
        memory.fill(at, frames * FRAME_SIZE, (byte) 0);
        allocated += frames;
        return at;
    }

    @Override
    public synchronized void freeFrames(long address, int frames) {
        allocated -= Math.min(allocated, frames);
    }

    @Override
    public synchronized long allocatedFrames() {
        return allocated;
    }

    @Override
    public long poolBase() {
        return start;
    }

    @Override
    public long poolFrames() {
        return (end - start) / FRAME_SIZE;
    }
}
