package org.iommulab.api.pasid;

import org.iommulab.api.dto.PasidSetDTO;
import org.iommulab.api.errno.IommuException;
import org.osgi.annotation.versioning.ProviderType;

/**
 * A set of PASIDs owned by one party (a VM, a process), carved out of the system-wide PASID space
 * with a quota, after Linux's {@code ioasid_set}. A PASID can be bound, invalidated or used for DMA
 * only on behalf of the set that owns it: callers check with {@link #checkOwned}.
 *
 * <p>A PASID is a handle for an IOMMU page table that its holder may pass to several consumers
 * (the "/dev/sva" proposal of the 2020 vSVA discussion): each consumer that submits DMA with it
 * takes a {@link #claim}. One consumer may claim a PASID any number of times (one page table used
 * by several of its devices); two different consumers may share a PASID only if the set
 * {@link #authorize authorises} both. Freeing a PASID or closing the set revokes every claim on it.
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
     * @throws IommuException {@code ENOSPC} if the set's quota or its owner's limit is used up or no
     *     PASID is free,
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
     * @throws IommuException {@code EINVAL} for a bad range, {@code ENOSPC} if the set's quota or its
     *     owner's limit is used up or the range has no free PASID, {@code EBUSY} if a specific PASID is taken,
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

    /**
     * Lets a consumer share this set's PASIDs with other authorised consumers. Authorising twice
     * does nothing.
     *
     * @param consumer a consumer name, for example {@link PasidConsumers#USER_WQ}
     * @throws IommuException {@code EINVAL} for a blank name, {@code ENODEV} if the set is closed
     * @since 1.2
     */
    void authorize(String consumer) throws IommuException;

    /**
     * @return the consumers this set authorises to share its PASIDs, sorted, in a new array
     * @since 1.2
     */
    String[] authorized();

    /**
     * A consumer starts using one of the set's PASIDs. Allowed when the PASID has no claim by
     * another consumer, or when the set authorises this consumer and every other consumer holding a
     * claim on it.
     *
     * @param pasid a PASID of this set
     * @param consumer the consumer's name, for example {@link PasidConsumers#VFIO_MDEV}
     * @return the claim, valid until released or revoked
     * @throws IommuException {@code EINVAL} for a blank consumer or a PASID outside the space,
     *     {@code EPERM} if the set does not hold the PASID or another consumer holds it and the set
     *     does not authorise both, {@code ENODEV} if the set is closed
     * @since 1.2
     */
    PasidClaim claim(int pasid, String consumer) throws IommuException;

    /**
     * @param pasid any value
     * @return the consumers holding a claim on {@code pasid} now, sorted, in a new array (empty if
     *     none, or if the set does not hold it)
     * @since 1.2
     */
    String[] consumers(int pasid);

    /** @return a snapshot of this set, never {@code null} */
    PasidSetDTO toDTO();
}
