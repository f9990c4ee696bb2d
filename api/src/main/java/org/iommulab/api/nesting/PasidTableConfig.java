package org.iommulab.api.nesting;

import java.util.Objects;

/**
 * Attach a guest-owned PASID table to a device (Linux {@code iommu_pasid_table_config}, SMMUv3
 * format): the host writes a nested STE whose S1ContextPtr is the guest's context-descriptor table
 * (an IPA) and whose stage 2 is the VM's domain. Immutable.
 *
 * @param format {@link NestingInfo#FORMAT_ARM_SMMUV3}, never {@code null}
 * @param basePtr IPA of the guest's context-descriptor table (or L1 descriptor table)
 * @param pasidBits log2 of the number of substreams (S1CDMax), 0 to 20
 * @param config {@link #TRANSLATE}, {@link #BYPASS} or {@link #ABORT}
 * @param s1fmt STE S1Fmt: 0 linear, 1 two-level 4K L2 tables, 2 two-level 64K L2 tables
 * @param s1dss STE S1DSS: 0 terminate, 1 bypass, 2 substream 0 for requests without SSID
 */
public record PasidTableConfig(String format, long basePtr, int pasidBits, int config, int s1fmt, int s1dss) {

    /** Stage 1 translates with the guest's table. */
    public static final int TRANSLATE = 1;
    /** Stage 1 is bypassed: only stage 2 applies. */
    public static final int BYPASS = 2;
    /** Every transaction of the device aborts. */
    public static final int ABORT = 3;

    /** Validates the components that cannot be null. */
    public PasidTableConfig {
        Objects.requireNonNull(format, "format");
    }
}
