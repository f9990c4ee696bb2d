package org.iommulab.api.idxd;

import java.util.List;
import java.util.Optional;

import org.iommulab.api.errno.IommuException;
import org.osgi.annotation.versioning.ProviderType;

/**
 * Creates and tracks IDXD devices. Provided by the {@code mdev-idxd} bundle as an OSGi service.
 * Thread safe.
 */
@ProviderType
public interface IdxdService {

    /**
     * Plugs a device in behind an IOMMU instance, registering its requester on the device bus
     * (PASID capable, 20 bits, in a group of its own).
     *
     * @param name a new device name
     * @param iommu the IOMMU instance name
     * @param requesterId its requester id
     * @return the device, disabled and unconfigured, as after reset
     * @throws IommuException {@code EEXIST} for a taken name or requester id, {@code ENODEV} if the
     *     IOMMU instance does not exist
     */
    IdxdDevice create(String name, String iommu, int requesterId) throws IommuException;

    /**
     * Unplugs a device: its mdevs close, its engines stop, its requester leaves the bus.
     *
     * @param name device name
     * @throws IommuException {@code ENOENT} if there is no such device, {@code EBUSY} if its group is
     *     held (by a VFIO container)
     */
    void destroy(String name) throws IommuException;

    /**
     * @param name device name
     * @return the device, or empty
     */
    Optional<IdxdDevice> device(String name);

    /** @return the devices, by name, in a new list */
    List<IdxdDevice> devices();

    /**
     * @param name mdev name
     * @return the mdev, or empty
     */
    Optional<Mdev> mdev(String name);

    /** @return the mdevs, by name, in a new list */
    List<Mdev> mdevs();
}
