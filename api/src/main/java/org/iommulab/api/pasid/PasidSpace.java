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
 * <p>An owner (a VM, a process, a user) may hold several sets: {@link #createSet} gives an owner its
 * one named set, {@link #openSet} opens one more each time it is called (each "open of /dev/sva").
 * Beside each set's quota, an owner may be given an owner quota ({@link #setOwnerQuota}), the
 * cgroup-like limit on the PASIDs all its open sets hold together, charged at allocation.
 *
 * <p>Provided by the platform as an OSGi service. Thread safe.
 */
@ProviderType
public interface PasidSpace {

    /**
     * Creates the named set of an owner.
     *
     * @param owner the owner token (a VM or process name); refused while the owner has any open set
     * @param quota how many PASIDs the set may hold, at least 1
     * @return the new set
     * @throws IommuException {@code EINVAL} for a blank owner or a quota below 1, {@code EEXIST}
     *     if the owner has an open set, {@code ENOSPC} if the unreserved capacity is smaller than
     *     the quota
     */
    PasidSet createSet(String owner, int quota) throws IommuException;

    /**
     * Opens one more set for an owner, whatever sets it holds already (the "open /dev/sva" of the
     * 2020 discussion: every open is a set of its own, closed with the file).
     *
     * @param owner the owner token
     * @param quota how many PASIDs the set may hold, at least 1
     * @return the new set
     * @throws IommuException {@code EINVAL} for a blank owner or a quota below 1, {@code ENOSPC} if
     *     the unreserved capacity is smaller than the quota
     * @since 1.2
     */
    PasidSet openSet(String owner, int quota) throws IommuException;

    /**
     * @param id a {@link PasidSet#id()}
     * @return the open set with that id, or empty
     * @since 1.2
     */
    Optional<PasidSet> setById(int id);

    /**
     * @param owner an owner token
     * @return the owner's open sets, in creation order, in a new list
     * @since 1.2
     */
    List<PasidSet> sets(String owner);

    /**
     * Limits the PASIDs an owner's open sets may hold together. A limit below what they hold now is
     * accepted (as a cgroup limit is): it refuses further allocations until they come under it.
     *
     * @param owner the owner token
     * @param quota the limit, at least 0
     * @throws IommuException {@code EINVAL} for a blank owner or a negative quota
     * @since 1.2
     */
    void setOwnerQuota(String owner, int quota) throws IommuException;

    /**
     * Lifts an owner's limit; an owner without one does nothing.
     *
     * @param owner the owner token
     * @since 1.2
     */
    void clearOwnerQuota(String owner);

    /**
     * @param owner the owner token
     * @return the owner's limit, or empty if it has none
     * @since 1.2
     */
    java.util.OptionalInt ownerQuota(String owner);

    /**
     * @param owner the owner token
     * @return the PASIDs the owner's open sets hold now, together
     * @since 1.2
     */
    int ownerUsage(String owner);

    /**
     * @return one snapshot per owner that has an open set or a limit, by owner token
     * @since 1.2
     */
    List<org.iommulab.api.dto.PasidOwnerDTO> owners();

    /**
     * Restores a set from a snapshot ({@link PasidSet#toDTO()}): a new set for the snapshot's owner
     * and quota holding exactly the snapshot's PASIDs (fixed-PASID allocation, as a migration
     * destination needs). All or nothing.
     *
     * @param snapshot the owner, quota and PASIDs to restore; its id and closed flag are ignored
     * @return the new set, with a new id
     * @throws IommuException {@code EINVAL} for a bad owner, quota or PASID, or more PASIDs than the
     *     quota; {@code EEXIST} if the owner has an open set; {@code ENOSPC} if the quota does not
     *     fit or the PASIDs exceed the owner's limit; {@code EBUSY} if one of the PASIDs is held by
     *     another set (nothing created then)
     */
    default PasidSet restoreSet(org.iommulab.api.dto.PasidSetDTO snapshot) throws IommuException {
        throw new IommuException(org.iommulab.api.errno.Errno.EOPNOTSUPP, "PASID sets cannot be restored here");
    }

    /**
     * @param owner an owner token
     * @return the owner's oldest open set, or empty
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
