package org.iommulab.api.invalidation;

/** How much an invalidation covers (Linux {@code IOMMU_INV_GRANU_*}). */
public enum Granularity {
    /** Everything tagged with the domain. */
    DOMAIN,
    /** Everything tagged with one PASID (or architecture id: ASID) in the domain. */
    PASID,
    /** An address range, optionally within one PASID. */
    ADDR
}
