package org.iommulab.api.invalidation;

/** The caches a guest invalidation targets (Linux {@code IOMMU_CACHE_INV_TYPE_*}). */
public enum CacheType {
    /** The IOMMU's TLB (VT-d IOTLB / PASID-based IOTLB, SMMUv3 TLB). */
    IOTLB,
    /** Device TLBs (PCIe ATS address translation caches). */
    DEV_IOTLB,
    /** The PASID cache (VT-d PASID cache, SMMUv3 CD cache). */
    PASID
}
