package org.iommulab.api.pasid;

import org.iommulab.api.dto.PasidSetDTO;
import org.iommulab.api.errno.IommuException;
import org.osgi.annotation.versioning.ProviderType;

/**
 * A set of PASIDs owned by one party (a VM, a process), carved out of the system-wide PASID space
 * with a quota, after Linux's {@code ioasid_set}. A PASID can be bound, invalidated or used for DMA
 * only on behalf of the set that owns it: callers check with {@link #checkOwned}.
 *
 * <p>Thread safe: allocations from many threads never return the same PASID twice. A rejected call
 * changes nothing.
 */
@ProviderType
public interface PasidSet {

    /** @return a number unique among all sets ever created in this PASID space */
    int id();

    /** @return the owner token this set was created with, never {@code null} */
    String owner();

    /** @return the number of PASIDs this set may hold at once */
    int quota();

    /** @return the number of PASIDs this set holds now */
    int size();

    /**
     * Allocates the lowest free PASID.
     *
     * @return a PASID from 1 to {@link Pasids#MAX_PASID}
     * @throws IommuException {@code ENOSPC} if the quota is used up or no PASID is free,
     *     {@code ENODEV} if the set is closed
     */
    int allocate() throws IommuException;

    /**
     * Allocates the lowest free PASID in {@code [min, max]}; with {@code min == max}, that specific
     * PASID (the migration case, where a VM must keep its PASIDs).
     *
     * @param min lowest acceptable PASID, at least 1
     * @param max highest acceptable PASID, at most {@link Pasids#MAX_PASID}
     * @return the allocated PASID
     * @throws IommuException {@code EINVAL} for a bad range, {@code ENOSPC} if the quota is used up
     *     or the range has no free PASID, {@code EBUSY} if a specific PASID is taken,
     *     {@code ENODEV} if the set is closed
     */
    int allocate(int min, int max) throws IommuException;

    /**
     * Frees a PASID of this set and tells every {@link PasidListener}, so bindings through it stop.
     *
     * @param pasid the PASID
     * @throws IommuException {@code ENOENT} if no set holds it (including a double free),
     *     {@code EPERM} if another set holds it, {@code EINVAL} if it is outside the PASID space
     */
    void free(int pasid) throws IommuException;

    /**
     * @param pasid any value
     * @return {@code true} if this set holds {@code pasid} now
     */
    boolean contains(int pasid);

    /**
     * The ownership check every bind, invalidate and DMA-submission path makes.
     *
     * @param pasid the PASID the caller wants to act on
     * @throws IommuException {@code EINVAL} if outside the PASID space, {@code EPERM} if another set
     *     holds it or this set does not hold it, {@code ENODEV} if the set is closed
     */
    void checkOwned(int pasid) throws IommuException;

    /** @return the PASIDs held now, ascending, in a new array */
    int[] pasids();

    /**
     * Frees every PASID of the set (telling listeners of each) and releases its quota. Closing a
     * closed set does nothing.
     */
    void close();

    /** @return {@code true} once {@link #close} has run */
    boolean isClosed();

    /** @return a snapshot of this set, never {@code null} */
    PasidSetDTO toDTO();
}
