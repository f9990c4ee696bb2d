package org.iommulab.api.fault;

import org.osgi.annotation.versioning.ConsumerType;

/**
 * Receives faults and page requests from an IOMMU instance's host driver (Linux's
 * {@code iommu_report_device_fault}). Register with
 * {@link org.iommulab.api.spi.IommuDriver#addFaultListener}.
 *
 * <p>Called on the thread that performed the faulting DMA. Implementations must be thread safe,
 * must not block (queue the work and answer page requests later with
 * {@link org.iommulab.api.spi.IommuDriver#pageResponse}) and must not throw.
 */
@ConsumerType
public interface FaultListener {

    /**
     * An unrecoverable fault was recorded.
     *
     * @param fault the fault, never {@code null}
     */
    void fault(IommuFault fault);

    /**
     * A page request arrived and waits for a response.
     *
     * @param request the request, never {@code null}
     */
    default void pageRequest(PageRequest request) {
    }
}
