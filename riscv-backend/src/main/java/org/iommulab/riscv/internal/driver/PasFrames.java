package org.iommulab.riscv.internal.driver;

import org.iommulab.api.errno.Errno;
import org.iommulab.api.errno.IommuException;
import org.iommulab.api.memory.FrameAllocator;

/**
 * The platform's frame allocator as the unit can use it: a block reaching beyond
 * capabilities.PAS (which the unit cannot address: its queue, table or directory accesses would
 * fault) is given back at once and the allocation fails with {@code ENOMEM}, as Linux allocates
 * the IOMMU's structures within its DMA mask.
 *
 * <p>Thread safe, as the allocator it wraps.
 */
final class PasFrames implements FrameAllocator {
    private final FrameAllocator frames;
    private final int pas;

    /**
     * @param frames the platform's allocator
     * @param pas capabilities.PAS, in bits
     */
    PasFrames(FrameAllocator frames, int pas) {
        this.frames = frames;
        this.pas = pas;
    }

    /** @return the number of 4 KiB frames {@code bytes} take, at least one */
    static int framesFor(long bytes) {
        return (int) Math.max(1, (bytes + FrameAllocator.FRAME_SIZE - 1) / FrameAllocator.FRAME_SIZE);
    }

    /**
     * Gives frames back, ignoring a block that is not allocated: used on paths (close, rollback)
     * that must finish whatever state an earlier failure left.
     *
     * @param address the block, or 0 for none
     */
    static void freeQuietly(FrameAllocator frames, long address, int count) {
        if (address != 0) {
            try {
                frames.freeFrames(address, count);
            } catch (IommuException e) {
                // not allocated: nothing to release
            }
        }
    }

    @Override
    public long allocateFrames(int count) throws IommuException {
        long a = frames.allocateFrames(count);
        if (pas < 64 && (a + (long) count * FRAME_SIZE - 1) >>> pas != 0) {
            frames.freeFrames(a, count);
            throw new IommuException(Errno.ENOMEM, String.format(
                    "frames at 0x%x are beyond the unit's %d-bit physical address space (capabilities.PAS)", a, pas));
        }
        return a;
    }

    @Override
    public void freeFrames(long address, int count) throws IommuException {
        frames.freeFrames(address, count);
    }

    @Override
    public long allocatedFrames() {
        return frames.allocatedFrames();
    }

    @Override
    public long poolBase() {
        return frames.poolBase();
    }

    @Override
    public long poolFrames() {
        return frames.poolFrames();
    }
}
