package org.iommulab.api.fault;

import java.util.Objects;

/**
 * A page request (PCIe PRI, VT-d page request descriptor, SMMUv3 PRI queue entry or stall): a
 * device asks for a page to be made present and waits for a {@link PageResponse}. Immutable.
 *
 * @param iommu the instance name, never {@code null}
 * @param requesterId source id or stream id
 * @param pasid the request's PASID, or {@link org.iommulab.api.pasid.Pasids#NO_PASID}
 * @param address the page-aligned input address, in bytes
 * @param access the requested {@link org.iommulab.api.translation.Access} bits
 * @param groupIndex the page request group index the response must name
 * @param lastInGroup {@code true} for the last request of its group (only that one is answered)
 */
public record PageRequest(String iommu, int requesterId, int pasid, long address, int access,
        int groupIndex, boolean lastInGroup) {

    /** Validates the components. */
    public PageRequest {
        Objects.requireNonNull(iommu, "iommu");
    }
}
