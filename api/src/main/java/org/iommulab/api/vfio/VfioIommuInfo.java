package org.iommulab.api.vfio;

import java.util.List;
import java.util.Objects;
import java.util.Optional;

import org.iommulab.api.nesting.NestingInfo;

/**
 * {@code VFIO_IOMMU_GET_INFO}: the page sizes usable for mappings, the usable IOVA ranges
 * ({@code VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE}: every domain's aperture minus reserved regions
 * such as the x86 MSI window), how many more mappings the container accepts
 * ({@code VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL}) and, for a nesting container, the domain nesting info
 * ({@code VFIO_IOMMU_TYPE1_INFO_CAP_NESTING}). Immutable.
 *
 * @param pageSizes bitmap of page sizes (bit n set: 2^n bytes) every domain supports
 * @param iovaRanges usable IOVA ranges, ascending, never {@code null}
 * @param dmaAvailable how many more mappings {@code MAP_DMA} accepts
 * @param nesting the nesting info, present for a {@link VfioIommuType#NESTING} container
 */
public record VfioIommuInfo(long pageSizes, List<IovaRange> iovaRanges, int dmaAvailable, Optional<NestingInfo> nesting) {

    /** Copies the list. */
    public VfioIommuInfo {
        iovaRanges = List.copyOf(iovaRanges);
        Objects.requireNonNull(nesting, "nesting");
    }
}
