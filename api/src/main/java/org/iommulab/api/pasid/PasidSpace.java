package org.iommulab.api.pasid;

import java.util.List;
import java.util.Optional;

import org.iommulab.api.errno.IommuException;
import org.osgi.annotation.versioning.ProviderType;

/**
 * The system-wide PASID space (20 bits; PASID 0 reserved). PASIDs are system wide, as VT-d's
 * ECAP and Linux's SVA require: one PASID means one address space on every IOMMU. Capacity is
 * handed to {@link PasidSet}s as quotas: creating a set reserves its quota, so a set can always
 * allocate up to its quota.
 *
 * <p>Provided by the platform as an OSGi service. Thread safe.
 */
@ProviderType
public interface PasidSpace {

    /**
     * Creates a set for an owner.
     *
     * @param owner the owner token (a VM or process name); at most one open set per token
     * @param quota how many PASIDs the set may hold, at least 1
     * @return the new set
     * @throws IommuException {@code EINVAL} for a blank owner or a quota below 1, {@code EEXIST}
     *     if the owner has an open set, {@code ENOSPC} if the unreserved capacity is smaller than
     *     the quota
     */
    PasidSet createSet(String owner, int quota) throws IommuException;

    /**
     * Restores a set from a snapshot ({@link PasidSet#toDTO()}): a new set for the snapshot's owner
     * and quota holding exactly the snapshot's PASIDs (fixed-PASID allocation, as a migration
     * destination needs). All or nothing.
     *
     * @param snapshot the owner, quota and PASIDs to restore; its id and closed flag are ignored
     * @return the new set, with a new id
     * @throws IommuException {@code EINVAL} for a bad owner, quota or PASID, or more PASIDs than the
     *     quota; {@code EEXIST} if the owner has an open set; {@code ENOSPC} if the quota does not
     *     fit; {@code EBUSY} if one of the PASIDs is held by another set (nothing created then)
     */
    default PasidSet restoreSet(org.iommulab.api.dto.PasidSetDTO snapshot) throws IommuException {
        throw new IommuException(org.iommulab.api.errno.Errno.EOPNOTSUPP, "PASID sets cannot be restored here");
    }

    /**
     * @param owner an owner token
     * @return the open set of that owner, or empty
     */
    Optional<PasidSet> set(String owner);

    /** @return the open sets, in creation order, in a new list */
    List<PasidSet> sets();

    /**
     * @param pasid any value
     * @return the set that holds {@code pasid} now, or empty
     */
    Optional<PasidSet> ownerOf(int pasid);

    /** @return the number of allocatable PASIDs: {@link Pasids#MAX_PASID} */
    int capacity();

    /** @return the sum of the quotas of open sets */
    int reserved();

    /** @return the number of PASIDs allocated now, over all sets */
    int allocated();
}
