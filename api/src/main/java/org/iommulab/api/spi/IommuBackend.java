package org.iommulab.api.spi;

import java.util.Map;

import org.iommulab.api.errno.IommuException;
import org.iommulab.api.memory.FrameAllocator;
import org.iommulab.api.memory.PhysicalMemory;
import org.osgi.annotation.versioning.ConsumerType;

/**
 * A vendor backend: registers as an OSGi service and creates IOMMU instances of its kind. The
 * {@link IommuRegistry} tracks backends dynamically; when a backend goes away, the registry closes
 * its instances and tells {@link InstanceListener}s.
 *
 * <p>Implemented by backends. Thread safe.
 */
@ConsumerType
public interface IommuBackend {

    /** @return the vendor id used by {@code iommu:create}, lower case, never {@code null} */
    String vendor();

    /** @return one line describing the backend, never {@code null} */
    String description();

    /**
     * @return the most capable configuration the model implements, every key with its default
     *     value (what {@code iommu:create} uses with no key=value), unmodifiable
     */
    Map<String, String> defaultConfiguration();

    /**
     * Creates an instance.
     *
     * @param name the instance name, not blank
     * @param configuration keys to override, a subset of {@link #defaultConfiguration()}'s keys
     * @param memory the physical memory the hardware model reads and writes
     * @param frames where the host driver allocates its table frames
     * @return the new instance
     * @throws IommuException {@code EINVAL} for an unknown key or a bad value
     */
    IommuInstance create(String name, Map<String, String> configuration, PhysicalMemory memory,
            FrameAllocator frames) throws IommuException;

    /**
     * Live update, second half: gives an instance that an earlier build of this backend handed
     * over a new hardware model and driver built from {@code state} over the same memory, and
     * wakes its waiting callers. Domains keep their ids; fault and guest listeners stay registered.
     *
     * @param handedOver the instance, after {@link IommuInstance#handOver()}
     * @param state what {@code handOver} returned
     * @throws IommuException {@code EOPNOTSUPP} if this backend cannot resume (the default),
     *     {@code EINVAL} if the instance or the state is not one it understands; the instance is
     *     still handed over then and the caller closes it
     */
    default void resume(IommuInstance handedOver, InstanceState state) throws IommuException {
        throw new IommuException(org.iommulab.api.errno.Errno.EOPNOTSUPP, vendor() + " cannot resume a handed-over instance");
    }
}
