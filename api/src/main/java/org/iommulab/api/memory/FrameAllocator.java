package org.iommulab.api.memory;

import org.iommulab.api.errno.IommuException;
import org.osgi.annotation.versioning.ProviderType;

/**
 * Allocates page frames for in-memory structures that drivers build: root and context tables, PASID
 * directories, stream tables, context descriptors, page tables and queues. Frames come from a pool
 * reserved for the allocator, so they never overlap addresses that a register-level script picks by
 * hand below {@link #poolBase()}.
 *
 * <p>Thread safe. Allocation and free take a short lock; they are not on the translation hot path.
 */
@ProviderType
public interface FrameAllocator {

    /** Size of one frame in bytes (4 KiB). */
    long FRAME_SIZE = 4096;

    /**
     * Allocates zeroed, naturally aligned, physically contiguous frames.
     *
     * @param frames number of 4 KiB frames, 1 to 4096; the block is aligned to its size rounded up
     *     to a power of two (as a concatenated stage-2 table or a large queue needs)
     * @return the physical address of the first frame
     * @throws IommuException {@code EINVAL} for a bad count, {@code ENOMEM} when the pool is exhausted
     */
    long allocateFrames(int frames) throws IommuException;

    /**
     * Frees frames returned by {@link #allocateFrames}; their contents are discarded and reading them
     * afterwards fails as unbacked.
     *
     * @param address the address {@link #allocateFrames} returned
     * @param frames the count passed to {@link #allocateFrames}
     * @throws IommuException {@code ENOENT} if that block is not allocated (a double free),
     *     {@code EINVAL} if the address or count does not match an allocation
     */
    void freeFrames(long address, int frames) throws IommuException;

    /** @return the number of frames currently allocated (0 after everything has been freed) */
    long allocatedFrames();

    /** @return the lowest physical address the pool hands out */
    long poolBase();

    /** @return the maximum number of frames that may be allocated at once */
    long poolFrames();
}
