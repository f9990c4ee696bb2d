package org.iommulab.api.vfio;

import java.util.List;
import java.util.Optional;

import org.iommulab.api.errno.IommuException;
import org.iommulab.api.process.HostProcess;
import org.osgi.annotation.versioning.ProviderType;

/**
 * The VFIO type1 IOMMU driver: opening {@code /dev/vfio/vfio} gives a container owned by the calling
 * process. Provided by the {@code vfio-type1} bundle as an OSGi service; it works over every
 * backend through the SPI only. Thread safe.
 */
@ProviderType
public interface Vfio {

    /**
     * Opens a container ({@code open("/dev/vfio/vfio")}).
     *
     * @param owner the process that owns the container: {@code MAP_DMA} virtual addresses are its
     *     addresses, pinned pages are charged to its locked-memory limit, and its PASID set (owner
     *     token = process name) holds the PASIDs a nesting container requests
     * @return the new container
     * @throws IommuException {@code ENODEV} if the service is stopping
     */
    VfioContainer open(HostProcess owner) throws IommuException;

    /**
     * @param id a container id
     * @return the open container, or empty
     */
    Optional<VfioContainer> container(int id);

    /** @return the open containers, by id, in a new list */
    List<VfioContainer> containers();

    /** @return the number of entries a new container may map ({@code dma_entry_limit}) */
    int dmaEntryLimit();

    /** @return the default size of a process's PASID set created by a nesting container ({@code pasid_quota}) */
    int pasidQuota();
}
