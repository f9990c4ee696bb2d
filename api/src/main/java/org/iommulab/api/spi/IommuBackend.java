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
}
