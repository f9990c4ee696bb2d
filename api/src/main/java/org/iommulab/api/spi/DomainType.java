package org.iommulab.api.spi;

/** What a domain is for (Linux {@code IOMMU_DOMAIN_*} and iommufd's nest parent). */
public enum DomainType {
    /**
     * An IOVA address space managed by its user through map and unmap: VFIO's domain, and on a
     * nesting-capable IOMMU the second stage (VT-d) / stage 2 (SMMUv3) a guest's tables nest on.
     */
    UNMANAGED,
    /** Requests pass untranslated (VT-d pass-through, SMMUv3 bypass). */
    IDENTITY,
    /** Every request faults. */
    BLOCKED
}
