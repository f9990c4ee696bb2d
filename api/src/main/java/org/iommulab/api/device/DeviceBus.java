package org.iommulab.api.device;

import java.util.List;
import java.util.Optional;

import org.iommulab.api.errno.IommuException;
import org.osgi.annotation.versioning.ProviderType;

/**
 * The device bus: which requesters exist, which IOMMU instance each sits behind and how they are
 * grouped. A group is the unit of ownership that VFIO hands to one user, as Linux's
 * {@code iommu_group}. Hardware models never need it: they decide from registers and tables alone.
 *
 * <p>Provided by the platform as an OSGi service. Thread safe.
 */
@ProviderType
public interface DeviceBus {

    /** Pass as {@code groupId} to {@link #register} to put the requester in a new group of its own. */
    int NEW_GROUP = -1;

    /**
     * Adds a requester.
     *
     * @param name unique requester name, not blank
     * @param iommu the IOMMU instance name it sits behind, not blank
     * @param requesterId source id or stream id (unsigned)
     * @param pasidBits 0 to 20
     * @param groupId an existing group, or {@link #NEW_GROUP}
     * @return the registered requester
     * @throws IommuException {@code EINVAL} for blank names or bad PASID width, {@code EEXIST} if the
     *     name or the (iommu, requester id) pair is taken, {@code ENOENT} if the group does not exist,
     *     {@code EINVAL} if the group sits behind another IOMMU instance, {@code EBUSY} if the group
     *     has a DMA owner
     */
    Requester register(String name, String iommu, int requesterId, int pasidBits, int groupId)
            throws IommuException;

    /**
     * Adds a mediated device of a PASID-capable requester, in a group of its own: it shares its
     * parent's IOMMU and requester id and is isolated by PASID.
     *
     * @param name unique mdev name, not blank
     * @param parent the parent requester's name
     * @return the registered mediated requester
     * @throws IommuException {@code EINVAL} for a blank name, {@code EEXIST} if the name is taken,
     *     {@code ENOENT} if there is no such parent, {@code EINVAL} if the parent has no PASID
     *     capability or is itself mediated
     */
    Requester registerMediated(String name, String parent) throws IommuException;

    /**
     * Removes a requester; its group disappears with its last member.
     *
     * @param name requester name
     * @throws IommuException {@code ENOENT} if there is no such requester, {@code EBUSY} if its
     *     group has a DMA owner or it has mediated devices
     */
    void unregister(String name) throws IommuException;

    /**
     * Claims a group for a user that will own its DMA (Linux {@code iommu_group_claim_dma_owner}):
     * until released, no requester joins or leaves the group, so the user's domain keeps isolating
     * exactly the requesters it attached.
     *
     * @param groupId the group
     * @param owner the claiming user, compared by identity, not {@code null}
     * @throws IommuException {@code ENOENT} for an unknown group, {@code EBUSY} if another owner
     *     holds it
     */
    void claimDmaOwner(int groupId, Object owner) throws IommuException;

    /**
     * Releases a claim; a release by anyone but the owner is ignored.
     *
     * @param groupId the group
     * @param owner the owner that claimed it
     */
    void releaseDmaOwner(int groupId, Object owner);

    /**
     * @param name requester name
     * @return the requester, or empty
     */
    Optional<Requester> requester(String name);

    /**
     * @param iommu IOMMU instance name
     * @param requesterId source id or stream id
     * @return the physical requester with that id behind that IOMMU (never a mediated one), or empty
     */
    Optional<Requester> requester(String iommu, int requesterId);

    /**
     * @param groupId a group id
     * @return the members of the group, by name, in a new list (empty if there is no such group)
     */
    List<Requester> group(int groupId);

    /** @return every requester, by name, in a new list */
    List<Requester> requesters();
}
