package org.iommulab.vfio.internal;

import org.iommulab.api.device.DeviceBus;
import org.iommulab.api.errno.IommuException;
import org.iommulab.api.spi.IommuRegistry;

/**
 * What a container needs from the VFIO service: the platform services, group ownership across
 * containers, and the owner process's PASID set ({@code vfio_mm}).
 */
interface VfioContext {

    DeviceBus bus();

    IommuRegistry registry();

    /**
     * Claims a group for a container ({@code group->container}) and its DMA ownership on the bus.
     *
     * @throws IommuException {@code EINVAL} if another container holds it, {@code EBUSY} if another
     *     user owns its DMA, {@code ENOENT} for an unknown group
     */
    void claimGroup(int groupId, Container container) throws IommuException;

    void releaseGroup(int groupId, Container container);

    /**
     * @param owner the owner process name
     * @return a lease on the owner's PASID set, created with the service's quota if it has none;
     *     each lease must be released once with {@link #releasePasidSet}
     * @throws IommuException {@code ENOSPC} if no set can be created
     */
    VfioService.SetLease acquirePasidSet(String owner) throws IommuException;

    void releasePasidSet(VfioService.SetLease lease);

    void closed(Container container);

    /**
     * @return VFIO's own PASID set, from which mediated devices get their default PASIDs (host
     *     owned: no VM can free them)
     * @throws IommuException {@code ENOSPC} if it cannot be created
     */
    org.iommulab.api.pasid.PasidSet defaultPasids() throws IommuException;
}
