package org.iommulab.api.vfio;

/**
 * One {@code MAP_DMA} mapping of a container. Immutable.
 *
 * @param iova first I/O virtual address
 * @param size bytes
 * @param vaddr the owner process's virtual address backing {@code iova}
 * @param flags {@link VfioContainer#DMA_MAP_FLAG_READ} and/or {@link VfioContainer#DMA_MAP_FLAG_WRITE}
 */
public record DmaMapping(long iova, long size, long vaddr, int flags) {
}
