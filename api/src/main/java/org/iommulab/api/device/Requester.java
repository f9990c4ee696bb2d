package org.iommulab.api.device;

import java.util.Objects;

/**
 * A DMA requester: a PCI function (requester id {@code bus << 8 | devfn}) behind a VT-d unit, or a
 * device with a stream id behind an SMMUv3, together with its PASID capability and IOMMU group; or
 * a mediated device, which has no requester id of its own and issues DMA through its parent's
 * requester id with PASIDs (Linux's IOMMU-backed mdev: VFIO attaches its domain to a PASID of the
 * parent, an auxiliary domain). Immutable.
 *
 * @param name a unique name, for example {@code "0000:00:02.0"} or {@code "dsa0"}, never {@code null}
 * @param iommu the name of the IOMMU instance the requester sits behind, never {@code null}
 * @param requesterId the VT-d source id or SMMUv3 stream id, 0 to 2^32 - 1 as an unsigned int (a
 *     mediated device: its parent's)
 * @param pasidBits the width of PASIDs the device can emit, 0 (no PASID capability) to 20
 * @param groupId the IOMMU group: requesters the IOMMU cannot isolate from each other share one
 * @param parent the parent requester's name for a mediated device, else {@code null}
 */
public record Requester(String name, String iommu, int requesterId, int pasidBits, int groupId, String parent) {

    /** Validates the components. */
    public Requester {
        Objects.requireNonNull(name, "name");
        Objects.requireNonNull(iommu, "iommu");
    }

    /**
     * A physical requester.
     *
     * @param name name
     * @param iommu IOMMU instance
     * @param requesterId requester id
     * @param pasidBits PASID width
     * @param groupId group
     */
    public Requester(String name, String iommu, int requesterId, int pasidBits, int groupId) {
        this(name, iommu, requesterId, pasidBits, groupId, null);
    }

    /** @return {@code true} if the requester can emit PASID-tagged requests */
    public boolean pasidCapable() {
        return pasidBits > 0;
    }

    /** @return {@code true} for a mediated device, whose DMA is its parent's tagged with PASIDs */
    public boolean mediated() {
        return parent != null;
    }
}
