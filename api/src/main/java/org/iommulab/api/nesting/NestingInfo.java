package org.iommulab.api.nesting;

import java.util.Map;
import java.util.Objects;
import java.util.Set;

/**
 * What a nesting-capable IOMMU offers a guest (Linux {@code iommu_nesting_info}): the stage-1
 * format the guest must use, the features, address and PASID widths, and the vendor's raw
 * capability registers so that a vIOMMU can mirror them. Immutable.
 *
 * @param format the stage-1 format, for example {@link #FORMAT_INTEL_VTD}, never {@code null}
 * @param features supported features, never {@code null}
 * @param addressWidth the stage-1 input address width in bits
 * @param pasidBits the PASID width in bits, 0 without PASID support
 * @param pageSizes bitmap of supported page sizes (bit n set: 2^n bytes)
 * @param vendorData named raw registers: VT-d {@code cap}, {@code ecap}; SMMUv3 {@code idr0} to
 *     {@code idr5}; never {@code null}
 */
public record NestingInfo(String format, Set<NestingFeature> features, int addressWidth, int pasidBits,
        long pageSizes, Map<String, Long> vendorData) {

    /** Format of Intel VT-d first-stage tables bound per PASID. */
    public static final String FORMAT_INTEL_VTD = "intel-vtd";
    /** Format of Arm SMMUv3 context-descriptor tables attached per stream. */
    public static final String FORMAT_ARM_SMMUV3 = "arm-smmuv3";

    /** Validates and copies the components. */
    public NestingInfo {
        Objects.requireNonNull(format, "format");
        features = Set.copyOf(features);
        vendorData = Map.copyOf(vendorData);
    }

    /**
     * @param feature a feature
     * @return {@code true} if supported
     */
    public boolean supports(NestingFeature feature) {
        return features.contains(feature);
    }
}
