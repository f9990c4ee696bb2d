package org.iommulab.api.nesting;

/** Features a nesting-capable domain reports (Linux {@code IOMMU_NESTING_FEAT_*}). */
public enum NestingFeature {
    /** PASIDs are system wide: the guest must allocate them from the host (VT-d). */
    SYSWIDE_PASID,
    /** The guest's first-stage page table can be bound per PASID (VT-d bind guest PASID). */
    BIND_PGTBL,
    /** The guest owns a whole PASID table, attached per device (SMMUv3 context-descriptor table). */
    PASID_TABLE,
    /** Guest cache invalidations are passed down. */
    CACHE_INVLD,
    /** Page requests are reported and can be answered with a page response. */
    PAGE_RESP
}
