package org.iommulab.api.vfio;

/** The IOMMU models a container can be set to ({@code VFIO_SET_IOMMU}). */
public enum VfioIommuType {
    /** {@code VFIO_TYPE1v2_IOMMU} (3): DMA mapping with type1v2 unmap semantics. */
    TYPE1V2(3),
    /**
     * {@code VFIO_TYPE1_NESTING_IOMMU} (6): type1v2 plus the nesting extensions; the domain is the
     * second stage (VT-d) or stage 2 (SMMUv3) that a guest's tables nest on.
     */
    NESTING(6);

    private final int uapiValue;

    VfioIommuType(int uapiValue) {
        this.uapiValue = uapiValue;
    }

    /** @return the value of the uAPI constant */
    public int uapiValue() {
        return uapiValue;
    }
}
