package org.iommulab.api.memory;

import org.iommulab.api.dto.MemoryStatsDTO;
import org.osgi.annotation.versioning.ProviderType;

/**
 * The host's physical memory: the address space every physical IOMMU and device works in, with the
 * frame allocator drivers use for their tables. Provided by the platform as an OSGi service.
 *
 * <p>Thread safe; see {@link PhysicalMemory} and {@link FrameAllocator}.
 */
@ProviderType
public interface HostMemory extends PhysicalMemory, FrameAllocator {

    /** @return a snapshot of usage counters, never {@code null} */
    MemoryStatsDTO stats();
}
