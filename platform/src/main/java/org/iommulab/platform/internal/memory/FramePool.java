package org.iommulab.platform.internal.memory;

import java.util.ArrayDeque;

import org.iommulab.api.errno.Errno;
import org.iommulab.api.errno.IommuException;
import org.iommulab.api.memory.FrameAllocator;
import org.iommulab.platform.internal.util.LongIntMap;

/**
 * Hands out naturally aligned blocks of page frames from a reserved region of a
 * {@link SparseMemory}. Blocks come in power-of-two sizes (orders 0 to 12); freed blocks go to a
 * free list of their order and are reused first. A block is backed with zero pages on allocation
 * and unbacked on free, so freed memory costs nothing and stale table contents never leak into a
 * new table.
 *
 * <p>Thread safe (one monitor); not on the translation hot path.
 */
public final class FramePool implements FrameAllocator {
    /** Largest block: 2^12 frames (16 MiB). */
    public static final int MAX_ORDER = 12;

    private final SparseMemory memory;
    private final long base;
    private final long maxFrames;
    private final long end;
    private final ArrayDeque<Long>[] freeBlocks;
    /** Frame count by block address. */
    private final LongIntMap allocated = new LongIntMap();
    private long next;
    private long allocatedFrames;

    /**
     * @param memory the memory frames are taken from
     * @param base first address of the pool, 4 KiB aligned
     * @param maxFrames the most frames allocated at once, at least 1
     */
    @SuppressWarnings("unchecked")
    public FramePool(SparseMemory memory, long base, long maxFrames) {
        if ((base & (FRAME_SIZE - 1)) != 0 || base < 0 || base >>> memory.addressBits() != 0) {
            throw new IllegalArgumentException(String.format("pool base 0x%x must be page aligned and inside memory", base));
        }
        if (maxFrames < 1) {
            throw new IllegalArgumentException("pool must allow at least one frame");
        }
        this.memory = memory;
        this.base = base;
        this.maxFrames = maxFrames;
        this.end = 1L << memory.addressBits();
        this.next = base;
        this.freeBlocks = new ArrayDeque[MAX_ORDER + 1];
        for (int i = 0; i <= MAX_ORDER; i++) {
            freeBlocks[i] = new ArrayDeque<>();
        }
    }

    private static int order(int frames) {
        return 32 - Integer.numberOfLeadingZeros(frames - 1);
    }

    @Override
    public synchronized long allocateFrames(int frames) throws IommuException {
        if (frames < 1 || frames > 1 << MAX_ORDER) {
            throw new IommuException(Errno.EINVAL, "frame count must be 1 to " + (1 << MAX_ORDER) + ", not " + frames);
        }
        if (allocatedFrames + frames > maxFrames) {
            throw new IommuException(Errno.ENOMEM, "frame pool exhausted: " + allocatedFrames + " of " + maxFrames
                    + " frames allocated, " + frames + " more requested");
        }
        int order = order(frames);
        long blockBytes = FRAME_SIZE << order;
        Long reused = freeBlocks[order].pollFirst();
        long address;
        if (reused != null) {
            address = reused;
        } else {
            address = (next + blockBytes - 1) & -blockBytes;
            if (address + blockBytes > end || address + blockBytes < address) {
                throw new IommuException(Errno.ENOMEM, "frame pool address space exhausted");
            }
            next = address + blockBytes;
        }
        memory.installZeroPages(address, frames * FRAME_SIZE);
        allocated.put(address, frames);
        allocatedFrames += frames;
        return address;
    }

    @Override
    public synchronized void freeFrames(long address, int frames) throws IommuException {
        int count = allocated.get(address, 0);
        if (count == 0) {
            throw new IommuException(Errno.ENOENT, String.format("no frames allocated at 0x%x (double free?)", address));
        }
        if (count != frames) {
            throw new IommuException(Errno.EINVAL,
                    String.format("0x%x was allocated as %d frames, not %d", address, count, frames));
        }
        allocated.remove(address, 0);
        memory.discardPages(address, frames * FRAME_SIZE);
        freeBlocks[order(frames)].addFirst(address);
        allocatedFrames -= frames;
    }

    @Override
    public synchronized long allocatedFrames() {
        return allocatedFrames;
    }

    @Override
    public long poolBase() {
        return base;
    }

    @Override
    public long poolFrames() {
        return maxFrames;
    }
}
