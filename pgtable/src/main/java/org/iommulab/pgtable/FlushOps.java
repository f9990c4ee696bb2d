package org.iommulab.pgtable;

import org.iommulab.api.errno.IommuException;
import org.osgi.annotation.versioning.ConsumerType;

/**
 * Tells the owner of an {@link IoPageTable} which cached translations an unmap made stale (Linux
 * {@code iommu_flush_ops}). Called under the table's lock, after the entries were cleared and
 * before {@code unmap} returns, so that when it returns no translation of the range survives.
 * Tables an unmap emptied are returned to the frame allocator only after the flush, so a walk
 * cached before the unmap can never follow a reused frame.
 *
 * <p>Implemented by backends: they turn these calls into invalidation descriptors or commands and
 * wait for their completion.
 */
@ConsumerType
public interface FlushOps {

    /**
     * Leaf entries covering {@code [iova, iova + size)} were removed.
     *
     * @param iova first address, aligned to {@code granule}
     * @param size bytes
     * @param granule the smallest page size removed, in bytes
     * @throws IommuException if the hardware did not complete the invalidation ({@code EIO},
     *     {@code ETIMEDOUT}); the table edit stands and the caller reports the error
     */
    void flushLeaves(long iova, long size, long granule) throws IommuException;

    /**
     * Tables covering {@code [iova, iova + size)} were freed: paging-structure (walk) caches must
     * forget them too.
     *
     * @param iova first address
     * @param size bytes
     * @throws IommuException if the hardware did not complete the invalidation
     */
    void flushWalk(long iova, long size) throws IommuException;

    /** Flushes nothing: for tables that no hardware caches yet. */
    FlushOps NONE = new FlushOps() {
        @Override
        public void flushLeaves(long iova, long size, long granule) {
        }

        @Override
        public void flushWalk(long iova, long size) {
        }
    };
}
