package org.iommulab.api.fault;

import java.util.Objects;

import org.iommulab.api.translation.FaultKind;
import org.iommulab.api.translation.Stage;

/**
 * A fault an IOMMU recorded (a VT-d fault record, an SMMUv3 event record), as reported to
 * {@link FaultListener}s. Immutable.
 *
 * @param iommu the instance name, never {@code null}
 * @param requesterId source id or stream id
 * @param pasid the request's PASID, or {@link org.iommulab.api.pasid.Pasids#NO_PASID}
 * @param address the faulting input address, in bytes
 * @param access the request's {@link org.iommulab.api.translation.Access} bits
 * @param kind the neutral fault class, never {@code null}
 * @param stage where it happened, never {@code null}
 * @param code the vendor's architectural code
 * @param name the vendor's name for the code, never {@code null}
 */
public record IommuFault(String iommu, int requesterId, int pasid, long address, int access,
        FaultKind kind, Stage stage, int code, String name) {

    /** Validates the components. */
    public IommuFault {
        Objects.requireNonNull(iommu, "iommu");
        Objects.requireNonNull(kind, "kind");
        Objects.requireNonNull(stage, "stage");
        Objects.requireNonNull(name, "name");
    }
}
