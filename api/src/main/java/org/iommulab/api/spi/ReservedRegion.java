package org.iommulab.api.spi;

import java.util.Objects;

/**
 * An IOVA range a requester must not use for DMA mappings (Linux {@code struct iommu_resv_region}),
 * for example the x86 interrupt window that VT-d decodes as MSI writes. VFIO removes these from the
 * usable IOVA ranges. Immutable.
 *
 * @param start first address
 * @param length bytes, at least 1
 * @param kind what the range is, never {@code null}
 */
public record ReservedRegion(long start, long length, Kind kind) {

    /** Reserved-region types (Linux {@code IOMMU_RESV_*}). */
    public enum Kind {
        /** Memory mapped 1:1 for the device by firmware (RMRR); not usable for other mappings. */
        DIRECT,
        /** Unusable: never translated. */
        RESERVED,
        /** The hardware MSI window (x86 0xfee00000-0xfeefffff): writes there are interrupts. */
        MSI,
        /** The software-managed MSI window the driver maps doorbells into (Arm). */
        SW_MSI
    }

    /** Validates the components. */
    public ReservedRegion {
        Objects.requireNonNull(kind, "kind");
        if (length < 1 || start + length - 1 < start) {
            throw new IllegalArgumentException("bad reserved region " + start + "+" + length);
        }
    }

    /** @return the last address, inclusive */
    public long end() {
        return start + length - 1;
    }
}
