package org.iommulab.testkit;

import java.util.Objects;

import org.iommulab.api.nesting.PasidTableConfig;

/**
 * A guest PASID table a {@link BackendUnderTest} wrote for the nesting checks.
 *
 * @param config what to attach with {@code IommuDriver.attachPasidTable}, not {@code null}
 * @param archId the architecture id its entry tags translations with (SMMUv3 ASID), or -1
 */
public record GuestPasidTable(PasidTableConfig config, long archId) {
    /** Rejects a missing configuration. */
    public GuestPasidTable {
        Objects.requireNonNull(config, "config");
    }
}
