package org.iommulab.api.spi;

import java.util.List;
import java.util.Map;
import java.util.Optional;

import org.iommulab.api.dto.BackendDTO;
import org.iommulab.api.dto.IommuInstanceDTO;
import org.iommulab.api.errno.IommuException;
import org.osgi.annotation.versioning.ProviderType;

/**
 * The platform's registry of backends and IOMMU instances over host memory. It tracks
 * {@link IommuBackend} services as they come and go.
 *
 * <p>Provided by the platform as an OSGi service. Thread safe.
 */
@ProviderType
public interface IommuRegistry {

    /**
     * Creates an instance over host memory.
     *
     * @param vendor a backend's vendor id
     * @param name a new instance name: letters, digits, '-', '_' and '.'
     * @param configuration keys to override the backend's defaults; not {@code null}
     * @return the instance
     * @throws IommuException {@code ENODEV} if no backend has that vendor id, {@code EEXIST} if the
     *     name is taken, {@code EINVAL} for a bad name or configuration
     */
    IommuInstance create(String vendor, String name, Map<String, String> configuration) throws IommuException;

    /**
     * Creates an instance over another physical address space, for a VMM's guest: the guest's
     * virtual IOMMU, whose structures live in guest memory. It is not listed among the registry's
     * instances; the caller owns it and closes it. It is closed if its backend leaves.
     *
     * @param vendor a backend's vendor id
     * @param name a name for messages (need not be unique)
     * @param configuration keys to override the backend's defaults, not {@code null}
     * @param memory the address space the instance's hardware model reads, not {@code null}
     * @param frames where its driver allocates structures within {@code memory}, not {@code null}
     * @return the instance
     * @throws IommuException {@code ENODEV} if no backend has that vendor id, {@code EINVAL} for a
     *     bad configuration
     */
    IommuInstance createGuest(String vendor, String name, Map<String, String> configuration,
            org.iommulab.api.memory.PhysicalMemory memory, org.iommulab.api.memory.FrameAllocator frames)
            throws IommuException;

    /**
     * Closes and forgets an instance.
     *
     * @param name instance name
     * @throws IommuException {@code ENOENT} if there is no such instance
     */
    void destroy(String name) throws IommuException;

    /**
     * @param name instance name
     * @return the live instance, or empty
     */
    Optional<IommuInstance> instance(String name);

    /** @return the live instances, by name, in a new list */
    List<IommuInstance> instances();

    /** @return snapshots of the registered backends, by vendor */
    List<BackendDTO> backends();

    /** @return snapshots of the live instances, by name */
    List<IommuInstanceDTO> instanceDTOs();

    /**
     * Updates the bundle of the backend offering {@code vendor} to a new build while its instances
     * live on (a live update). Every instance of the backend, host and guest, is first handed over
     * ({@link IommuInstance#handOver()}); the bundle is then updated; the new build's backend
     * resumes each instance from its state as it registers. Callers holding an instance, its driver
     * or its domains notice nothing but a pause: their calls wait meanwhile. Listeners are not told
     * of anything, since no instance leaves.
     *
     * @param vendor a backend's vendor id
     * @param location where to read the new build (a URL), or {@code null} for the bundle's own location
     * @return the names of the instances carried over, host instances by name first, then guests
     * @throws IommuException {@code ENODEV} if no backend has that vendor id;
     *     {@code EOPNOTSUPP} if the platform runs outside OSGi or an instance cannot be handed over
     *     (nothing changed then); {@code EIO} if the bundle update failed: the build still running
     *     resumes the instances (if the bundle had stopped, a build has 10 s to come back);
     *     {@code ETIMEDOUT} if no build resumed the instances within 30 s. Instances nobody resumes
     *     are closed and listeners told, as when a backend leaves
     */
    default List<String> liveUpdate(String vendor, String location) throws IommuException {
        throw new IommuException(org.iommulab.api.errno.Errno.EOPNOTSUPP, "live update is not supported");
    }
}
