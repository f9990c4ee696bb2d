package org.iommulab.api.nesting;

import java.util.Optional;

import org.iommulab.api.fault.PageResponse;
import org.iommulab.api.invalidation.CacheInvalidation;
import org.osgi.annotation.versioning.ConsumerType;

/**
 * What a VMM traps from an IOMMU instance it runs as a guest's virtual IOMMU (QEMU's caching-mode
 * notifiers): each time the guest's driver invalidates a cache the hardware model reads the
 * guest's structures and reports the nesting-relevant change in vendor-neutral terms, which the VMM
 * turns into VFIO nesting operations on the host.
 *
 * <p>Implemented by the VMM. Called synchronously on the thread that wrote the register or queue
 * tail (the guest's CPU), in order; implementations may call into the host stack but must not
 * call back into the same instance. Every method has a no-op default.
 */
@ConsumerType
public interface GuestIommuListener {

    /**
     * VT-d: the guest invalidated a PASID-cache entry; its PASID entry now binds a first-stage
     * table (PGTT 1), or is absent or something else (empty: unbind).
     *
     * @param requesterId the guest-visible source id whose PASID entry changed
     * @param pasid the guest PASID
     * @param firstStage the bind data read from the entry ({@code hostPasid} = the guest PASID),
     *     or empty
     */
    default void pasidEntryChanged(int requesterId, int pasid, Optional<GuestPasidBind> firstStage) {
    }

    /**
     * SMMUv3: the guest invalidated a stream table entry; it now points at a context-descriptor
     * table (stage 1 translate), bypasses, aborts, or is invalid (empty).
     *
     * @param streamId the guest-visible stream id
     * @param config the configuration read from the STE, or empty
     */
    default void streamEntryChanged(int streamId, Optional<PasidTableConfig> config) {
    }

    /**
     * The guest invalidated translations of its first-stage tables (VT-d PASID-based IOTLB, SMMUv3
     * TLBI by ASID or VA).
     *
     * @param invalidation the request in neutral form, not {@code null}
     */
    default void invalidated(CacheInvalidation invalidation) {
    }

    /**
     * The guest answered a page request group (VT-d page group response, SMMUv3 CMD_PRI_RESP).
     *
     * @param requesterId the guest-visible requester id
     * @param pasid the PASID, or {@link org.iommulab.api.pasid.Pasids#NO_PASID}
     * @param groupIndex the group index
     * @param response the answer
     */
    default void pageResponse(int requesterId, int pasid, int groupIndex, PageResponse response) {
    }
}
