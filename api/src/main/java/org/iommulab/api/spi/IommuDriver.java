package org.iommulab.api.spi;

import org.iommulab.api.errno.IommuException;
import org.iommulab.api.fault.FaultListener;
import org.iommulab.api.fault.PageResponse;
import org.iommulab.api.invalidation.CacheInvalidation;
import org.iommulab.api.nesting.GuestPasidBind;
import org.iommulab.api.nesting.NestingInfo;
import org.iommulab.api.nesting.PasidTableConfig;
import org.iommulab.api.pasid.PasidSet;
import org.osgi.annotation.versioning.ConsumerType;

/**
 * The host IOMMU driver of one instance: it implements these operations by programming the
 * instance's hardware model the way Linux does (writing table entries to memory, queueing
 * invalidation descriptors or commands and waiting for their completion). Every operation either
 * completes, with the hardware's caches invalidated, or is rejected with an errno and changes
 * nothing.
 *
 * <p>Implemented by backends. Thread safe. Operations may block while the hardware model drains
 * its queue, never indefinitely ({@code ETIMEDOUT}).
 */
@ConsumerType
public interface IommuDriver {

    /** @return what this IOMMU offers nested guests, never {@code null} */
    NestingInfo nestingInfo();

    /**
     * @param type the domain type
     * @return a new domain with an empty page table
     * @throws IommuException {@code EOPNOTSUPP} if the type is not supported, {@code ENOSPC} when
     *     domain ids are exhausted, {@code ENOMEM} when no table frame is left
     */
    IommuDomain allocateDomain(DomainType type) throws IommuException;

    /**
     * Frees a domain and its page-table frames.
     *
     * @param domain a domain of this driver
     * @throws IommuException {@code EBUSY} if requesters are still attached, {@code ENOENT} if not
     *     a live domain of this driver
     */
    void freeDomain(IommuDomain domain) throws IommuException;

    /**
     * Attaches a requester's requests without PASID (and, on SMMUv3, its whole stream) to a domain.
     *
     * @param domain a domain of this driver
     * @param requesterId source id or stream id
     * @throws IommuException {@code EBUSY} if the requester is attached elsewhere, {@code ENOENT}
     *     for a foreign domain, {@code EINVAL} for a requester id the hardware cannot address
     */
    void attach(IommuDomain domain, int requesterId) throws IommuException;

    /**
     * Detaches a requester, unbinding every PASID bound for it.
     *
     * @param domain the domain it is attached to
     * @param requesterId source id or stream id
     * @throws IommuException {@code ENOENT} if it is not attached to that domain
     */
    void detach(IommuDomain domain, int requesterId) throws IommuException;

    /**
     * Attaches a domain to one PASID of a requester, leaving its requests without PASID (and its
     * other PASIDs) alone: Linux's {@code iommu_attach_device_pasid}, the 2020 auxiliary domains
     * through which VFIO gives a mediated device its VM's domain (VT-d: a PASID entry with PGTT
     * second stage). A requester may then nest guest tables on the domain by
     * {@link #bindGuestPasid}.
     *
     * @param domain an {@link DomainType#UNMANAGED} domain of this driver
     * @param requesterId source id or stream id
     * @param pasid the PASID, 1 to the IOMMU's PASID width
     * @throws IommuException {@code EOPNOTSUPP} if the IOMMU cannot translate a PASID by a domain
     *     of its own (the default), {@code EBUSY} if the PASID is attached or bound on that
     *     requester, {@code ENOENT} for a foreign domain, {@code EINVAL} for a bad PASID or domain type
     */
    default void attachPasid(IommuDomain domain, int requesterId, int pasid) throws IommuException {
        throw new IommuException(org.iommulab.api.errno.Errno.EOPNOTSUPP, "PASID-granular attach is not supported");
    }

    /**
     * Undoes {@link #attachPasid}, and unbinds the guest PASIDs nested on the domain through it.
     *
     * @param domain the domain
     * @param requesterId source id or stream id
     * @param pasid the PASID
     * @throws IommuException {@code ENOENT} if the domain is not attached to that PASID
     */
    default void detachPasid(IommuDomain domain, int requesterId, int pasid) throws IommuException {
        throw new IommuException(org.iommulab.api.errno.Errno.ENOENT, "PASID " + pasid + " is not attached");
    }

    /**
     * Binds a process's first-stage page table (CPU format) to a PASID of a requester, first stage
     * only: shared virtual addressing, as Linux's SVA does for a host process and a guest kernel
     * does on its virtual IOMMU (VT-d: a PASID entry with PGTT first stage, its DID the requester's
     * domain's).
     *
     * @param requesterId a requester attached to a domain of this driver
     * @param pasid the PASID, 1 to the IOMMU's width
     * @param pgd physical address of the root table (CR3), 4 KiB aligned
     * @param addressWidth 48 (4-level) or 57 (5-level)
     * @param flags {@link GuestPasidBind} {@code VTD_*} flags (supervisor requests: {@code VTD_SRE})
     * @throws IommuException {@code EOPNOTSUPP} without first-stage support (the default),
     *     {@code ENOENT} if the requester is not attached, {@code EBUSY} if the PASID is in use,
     *     {@code EINVAL} for bad values
     */
    default void bindFirstStage(int requesterId, int pasid, long pgd, int addressWidth, int flags) throws IommuException {
        throw new IommuException(org.iommulab.api.errno.Errno.EOPNOTSUPP, "first-stage binding is not supported");
    }

    /**
     * Removes a first-stage binding and invalidates its cached translations.
     *
     * @param requesterId the requester
     * @param pasid the bound PASID
     * @throws IommuException {@code ENOENT} if not bound
     */
    default void unbindFirstStage(int requesterId, int pasid) throws IommuException {
        throw new IommuException(org.iommulab.api.errno.Errno.ENOENT, "PASID " + pasid + " is not bound");
    }

    /**
     * Invalidates the cached translations of a first-stage binding after its owner changed the
     * page table (Linux {@code intel_flush_svm_range}), and waits for completion.
     *
     * @param requesterId the requester
     * @param pasid the bound PASID
     * @param address first address, 4 KiB aligned
     * @param size bytes, a positive multiple of 4 KiB
     * @throws IommuException {@code ENOENT} if not bound, {@code EINVAL} for a bad range
     */
    default void invalidateFirstStage(int requesterId, int pasid, long address, long size) throws IommuException {
        throw new IommuException(org.iommulab.api.errno.Errno.ENOENT, "PASID " + pasid + " is not bound");
    }

    /**
     * Binds a guest's first-stage page table to a host PASID of a requester, nested on
     * {@code parent} (VT-d: a PASID entry with PGTT nested).
     *
     * @param parent the VM's {@link DomainType#UNMANAGED} domain the requester is attached to (by
     *     requester id, or by a PASID through {@link #attachPasid})
     * @param requesterId source id
     * @param bind the bind data, not {@code null}
     * @param owner the caller's PASID set: {@code bind.hostPasid()} must belong to it
     * @throws IommuException {@code EOPNOTSUPP} without {@code BIND_PGTBL}, {@code EPERM} if the
     *     PASID is not the owner's, {@code EINVAL} for malformed data, {@code EBUSY} if the PASID is
     *     bound already
     */
    void bindGuestPasid(IommuDomain parent, int requesterId, GuestPasidBind bind, PasidSet owner)
            throws IommuException;

    /**
     * Removes a guest PASID binding and invalidates its cached translations.
     *
     * @param parent the domain the binding nests on
     * @param requesterId source id
     * @param hostPasid the bound host PASID
     * @param owner the caller's PASID set
     * @throws IommuException {@code EPERM} if the PASID is not the owner's, {@code ENOENT} if not bound
     */
    void unbindGuestPasid(IommuDomain parent, int requesterId, int hostPasid, PasidSet owner)
            throws IommuException;

    /**
     * Hands a requester's whole PASID table to the guest (SMMUv3: a nested STE pointing at the
     * guest's context-descriptor table, stage 2 from {@code parent}).
     *
     * @param parent the VM's domain the requester is attached to
     * @param requesterId stream id
     * @param config the table configuration, not {@code null}
     * @throws IommuException {@code EOPNOTSUPP} without {@code PASID_TABLE}, {@code EINVAL} for a
     *     malformed configuration, {@code ENOENT} if the requester is not attached to {@code parent}
     */
    void attachPasidTable(IommuDomain parent, int requesterId, PasidTableConfig config) throws IommuException;

    /**
     * Returns a requester to plain stage-2 translation by {@code parent}.
     *
     * @param parent the domain
     * @param requesterId stream id
     * @throws IommuException {@code ENOENT} if no PASID table is attached
     */
    void detachPasidTable(IommuDomain parent, int requesterId) throws IommuException;

    /**
     * Invalidates caches on behalf of a guest and waits for completion.
     *
     * @param domain the VM's domain
     * @param requesterId the requester the guest named (for device-TLB and PASID-table forms)
     * @param invalidation the request, not {@code null}
     * @param owner the caller's PASID set: a PASID in the request must belong to it
     * @throws IommuException {@code EPERM} for a foreign PASID, {@code EOPNOTSUPP} for a form this
     *     IOMMU cannot express, {@code EINVAL} for a malformed request
     */
    void cacheInvalidate(IommuDomain domain, int requesterId, CacheInvalidation invalidation, PasidSet owner)
            throws IommuException;

    /**
     * Answers a page request group.
     *
     * @param requesterId source id or stream id of the request
     * @param pasid the request's PASID or {@link org.iommulab.api.pasid.Pasids#NO_PASID}
     * @param groupIndex the group index of the request
     * @param response the answer, not {@code null}
     * @throws IommuException {@code ENOENT} if no such request is pending
     */
    void pageResponse(int requesterId, int pasid, int groupIndex, PageResponse response) throws IommuException;

    /**
     * The IOVA ranges a requester must not map (Linux {@code iommu_get_resv_regions}): VT-d reports
     * the interrupt window, SMMUv3 the software MSI window.
     *
     * @param requesterId source id or stream id
     * @return the regions, ascending, never {@code null}; empty by default
     */
    default java.util.List<ReservedRegion> reservedRegions(int requesterId) {
        return java.util.List.of();
    }

    /**
     * @param listener receives faults and page requests of this instance; not {@code null}
     */
    void addFaultListener(FaultListener listener);

    /**
     * @param listener a listener added before; unknown listeners are ignored
     */
    void removeFaultListener(FaultListener listener);
}
