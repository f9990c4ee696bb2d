package org.iommulab.api.sva;

import org.iommulab.api.errno.IommuException;
import org.iommulab.api.pasid.PasidSet;
import org.iommulab.api.process.HostProcess;
import org.osgi.annotation.versioning.ProviderType;

/**
 * One process bound to one device (Linux {@code struct iommu_sva}). Thread safe.
 */
@ProviderType
public interface SvaBond {
    /** @return the PASID the device tags the process's DMA with */
    int pasid();

    /** @return the bound process, never {@code null} */
    HostProcess process();

    /** @return the IOMMU instance name, never {@code null} */
    String iommu();

    /** @return the device's requester id */
    int requesterId();

    /** @return the set the PASID belongs to, never {@code null} */
    PasidSet set();

    /** @return {@code true} until unbound (by {@link #unbind}, the process exiting, the set closing or the IOMMU leaving) */
    boolean isBound();

    /** @return the host physical address of the process's page-table root the IOMMU walks */
    long pageTableRoot();

    /** @return page requests of this bond answered Success so far */
    long pageRequestsResolved();

    /** @return page requests of this bond answered Invalid Request so far */
    long pageRequestsInvalid();

    /**
     * Unbinds: the PASID entry is torn down and the IOMMU's caches for it invalidated, pending page
     * requests are answered Invalid Request, and the PASID is freed if no other bond of the process
     * in the set uses it.
     *
     * @throws IommuException {@code ENOENT} if already unbound
     */
    void unbind() throws IommuException;
}
