package org.iommulab.api.spi;

import org.osgi.annotation.versioning.ConsumerType;

/**
 * Told when IOMMU instances appear and disappear, for example when a backend bundle stops (hot
 * swap). Register an implementation as an OSGi service (whiteboard).
 *
 * <p>Called synchronously on the thread that changed the registry, with no registry lock held.
 * Implementations must be thread safe, must not block and must not throw.
 */
@ConsumerType
public interface InstanceListener {

    /**
     * @param instance the new instance, not {@code null}
     */
    void instanceAdded(IommuInstance instance);

    /**
     * Called before the instance is closed, so consumers can stop using it.
     *
     * @param instance the departing instance, not {@code null}
     */
    void instanceRemoved(IommuInstance instance);
}
