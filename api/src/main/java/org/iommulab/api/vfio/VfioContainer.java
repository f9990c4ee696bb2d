package org.iommulab.api.vfio;

import java.util.List;
import java.util.Map;
import java.util.Optional;

import org.iommulab.api.errno.IommuException;
import org.iommulab.api.invalidation.CacheInvalidation;
import org.iommulab.api.nesting.GuestPasidBind;
import org.iommulab.api.nesting.PasidTableConfig;
import org.osgi.annotation.versioning.ProviderType;

/**
 * A VFIO container with the type1 IOMMU model (Linux {@code drivers/vfio/vfio_iommu_type1.c}) and
 * the 2020 vSVA nesting extensions. Groups (the device bus's IOMMU groups) join the container; once
 * its IOMMU type is set, every group is attached to one domain per IOMMU instance, shared by all
 * groups behind that instance, and every mapping is mirrored into every domain. Removing the last
 * group releases the IOMMU: every mapping is unmapped and unpinned, every binding undone and every
 * domain freed.
 *
 * <p><b>Errors.</b> Every call either completes or throws an {@link IommuException} with the errno
 * Linux answers, and then changes nothing. Calls on a closed container fail with {@code ENODEV}.
 *
 * <p><b>Threads.</b> Thread safe. Calls are serialised per container (as Linux's {@code iommu->lock});
 * DMA through the container's domains runs concurrently with them. After {@link #unmapDma} returns,
 * no translation of the unmapped range succeeds.
 *
 * <p>Addresses and sizes are in bytes, unsigned.
 */
@ProviderType
public interface VfioContainer {

    /** {@code VFIO_DMA_MAP_FLAG_READ}: the device may read the mapping. */
    int DMA_MAP_FLAG_READ = 1;
    /** {@code VFIO_DMA_MAP_FLAG_WRITE}: the device may write the mapping. */
    int DMA_MAP_FLAG_WRITE = 1 << 1;
    /** {@code VFIO_DMA_UNMAP_FLAG_ALL}: unmap everything; iova and size must be 0. */
    int DMA_UNMAP_FLAG_ALL = 1 << 1;

    /** @return the container id, unique among containers ever opened by the service */
    int id();

    /** @return the name of the owner process, never {@code null} */
    String owner();

    /**
     * {@code VFIO_CHECK_EXTENSION}.
     *
     * @param type an IOMMU type
     * @return {@code true} if the container could be set to it: type1v2 always; nesting if every
     *     IOMMU behind the container's groups offers a nesting feature (all of them when there is no
     *     group yet)
     */
    boolean checkExtension(VfioIommuType type);

    /**
     * {@code VFIO_GROUP_SET_CONTAINER}: the group joins the container; with the IOMMU type set, its
     * requesters are attached to the domain of their IOMMU instance (allocated and filled with every
     * existing mapping if it is the first group there).
     *
     * @param groupId an IOMMU group of the device bus
     * @throws IommuException {@code ENOENT} for an unknown group, {@code EINVAL} if the group is in a
     *     container already, if a nesting container would span a second IOMMU instance, or if an
     *     existing mapping lies in a reserved region or outside the new domain's aperture;
     *     {@code ENODEV} if the group's IOMMU instance does not exist; attach errors of the driver
     */
    void addGroup(int groupId) throws IommuException;

    /**
     * {@code VFIO_GROUP_UNSET_CONTAINER}: detaches the group's requesters (undoing their PASID
     * bindings) and frees its domain if no other group uses it; the last group releases the IOMMU.
     *
     * @param groupId a group of this container
     * @throws IommuException {@code EINVAL} if the group is not in this container
     */
    void removeGroup(int groupId) throws IommuException;

    /** @return the groups in the container, ascending, in a new array */
    int[] groups();

    /**
     * {@code VFIO_SET_IOMMU}: attaches every group.
     *
     * @param type the IOMMU type, not {@code null}
     * @throws IommuException {@code EINVAL} without groups or if the type is set already;
     *     {@code EINVAL} for nesting on an IOMMU without a nesting feature or across two IOMMU
     *     instances; driver errors of the attach (nothing stays attached then)
     */
    void setIommu(VfioIommuType type) throws IommuException;

    /** @return the IOMMU type, empty until {@link #setIommu} and after the last group left */
    Optional<VfioIommuType> iommuType();

    /**
     * {@code VFIO_IOMMU_GET_INFO}.
     *
     * @return the information, never {@code null}
     * @throws IommuException {@code EINVAL} before the IOMMU type is set
     */
    VfioIommuInfo info() throws IommuException;

    /**
     * {@code VFIO_IOMMU_MAP_DMA}: pins the owner's pages of {@code [vaddr, vaddr + size)}, charges
     * them to its locked-memory limit and maps them at {@code iova} in every domain.
     *
     * @param vaddr the owner's virtual address, aligned to the smallest page size
     * @param iova aligned to the smallest page size
     * @param size bytes, a positive multiple of the smallest page size
     * @param flags {@link #DMA_MAP_FLAG_READ} and/or {@link #DMA_MAP_FLAG_WRITE}
     * @throws IommuException {@code EINVAL} for unknown flags, neither read nor write, zero size,
     *     misalignment, a wrap of either range, or an IOVA outside the usable ranges or before the
     *     IOMMU type is set; {@code EEXIST} if the range overlaps a mapping; {@code ENOSPC} past the
     *     DMA entry limit; {@code ENOMEM} past the locked-memory limit or when frames run out;
     *     {@code EFAULT} if a page is not mapped in the owner
     */
    void mapDma(long vaddr, long iova, long size, int flags) throws IommuException;

    /**
     * {@code VFIO_IOMMU_UNMAP_DMA} with type1v2 semantics: removes every mapping inside
     * {@code [iova, iova + size)}, invalidates the IOMMUs' caches and unpins the pages.
     *
     * @param iova aligned to the smallest page size; 0 with {@link #DMA_UNMAP_FLAG_ALL}
     * @param size a positive multiple of the smallest page size; 0 with {@link #DMA_UNMAP_FLAG_ALL}
     * @param flags 0 or {@link #DMA_UNMAP_FLAG_ALL}
     * @return the bytes unmapped, 0 when no mapping lies in the range
     * @throws IommuException {@code EINVAL} for unknown flags, misalignment, zero size, a wrap, a
     *     range that would bisect a mapping, non-zero iova or size with {@code DMA_UNMAP_FLAG_ALL},
     *     or before the IOMMU type is set
     */
    long unmapDma(long iova, long size, int flags) throws IommuException;

    /** @return the mappings, ascending by IOVA, in a new list */
    List<DmaMapping> mappings();

    /**
     * {@code VFIO_IOMMU_PASID_REQUEST} with {@code VFIO_IOMMU_FLAG_ALLOC_PASID}: allocates a host
     * PASID in {@code [min, max]} from the owner's PASID set.
     *
     * @param min lowest acceptable PASID, at least 1
     * @param max highest acceptable PASID
     * @return the PASID
     * @throws IommuException {@code EOPNOTSUPP} unless a nesting container whose IOMMU has system-wide
     *     PASIDs; {@code EINVAL} for a bad range; {@code ENOSPC} past the set's quota
     */
    int pasidAlloc(int min, int max) throws IommuException;

    /**
     * {@code VFIO_IOMMU_PASID_REQUEST} with {@code VFIO_IOMMU_FLAG_FREE_PASID}: frees every PASID of
     * the owner's set in {@code [min, max]}, unbinding it first if it is bound.
     *
     * @param min lowest PASID
     * @param max highest PASID
     * @return the number of PASIDs freed
     * @throws IommuException {@code EOPNOTSUPP} as for {@link #pasidAlloc}; {@code EINVAL} for a bad range
     */
    int pasidFree(int min, int max) throws IommuException;

    /**
     * {@code VFIO_IOMMU_NESTING_OP} {@code BIND_PGTBL}: binds a guest first-stage table to a host
     * PASID on every PASID-capable requester of the container, nested on its domain.
     *
     * @param bind the bind data, not {@code null}
     * @throws IommuException {@code EOPNOTSUPP} unless a nesting container whose IOMMU binds guest
     *     tables; {@code EPERM} if the host PASID is not the owner's; {@code EBUSY} if bound already;
     *     {@code ENODEV} if no requester is PASID capable; driver errors (no requester stays bound then)
     */
    void bindGuestPageTable(GuestPasidBind bind) throws IommuException;

    /**
     * {@code VFIO_IOMMU_NESTING_OP} {@code UNBIND_PGTBL}.
     *
     * @param hostPasid a PASID bound by {@link #bindGuestPageTable}
     * @throws IommuException {@code EOPNOTSUPP} as for bind; {@code EPERM} if the PASID is not the
     *     owner's; {@code ENOENT} if it is not bound
     */
    void unbindGuestPageTable(int hostPasid) throws IommuException;

    /** @return the guest page tables bound now, by host PASID, in a new map */
    Map<Integer, GuestPasidBind> bindings();

    /**
     * {@code VFIO_IOMMU_NESTING_OP} {@code CACHE_INVLD}: passes a guest's invalidation to the IOMMU
     * driver for every requester of the container and waits for completion.
     *
     * @param invalidation the request, not {@code null}
     * @throws IommuException {@code EOPNOTSUPP} unless a nesting container whose IOMMU has
     *     {@code CACHE_INVLD}; {@code EPERM} for a PASID that is not the owner's; driver errors
     */
    void cacheInvalidate(CacheInvalidation invalidation) throws IommuException;

    /**
     * {@code VFIO_IOMMU_SET_PASID_TABLE} (set): hands the guest's PASID table to every requester of
     * the container, stage 2 from its domain (SMMUv3 nested STEs). Replaces an attached table.
     *
     * @param config the table configuration, not {@code null}
     * @throws IommuException {@code EOPNOTSUPP} unless a nesting container whose IOMMU has
     *     {@code PASID_TABLE}; driver errors ({@code EINVAL} for a malformed configuration; no
     *     requester keeps a new table then)
     */
    void attachPasidTable(PasidTableConfig config) throws IommuException;

    /**
     * {@code VFIO_IOMMU_SET_PASID_TABLE} (unset): returns every requester to plain stage 2.
     *
     * @throws IommuException {@code EOPNOTSUPP} as for attach; {@code ENOENT} if no table is attached
     */
    void detachPasidTable() throws IommuException;

    /** @return the attached PASID table configuration, or empty */
    Optional<PasidTableConfig> pasidTable();

    /**
     * Captures what the container holds for its user (VFIO has no such ioctl; a VMM keeps this
     * state itself, and live migration moves it).
     *
     * @return the state, never {@code null}
     * @throws IommuException {@code ENODEV} if closed, {@code EINVAL} if no IOMMU type is set
     */
    ContainerState saveState() throws IommuException;

    /**
     * Makes this fresh container hold what another held: maps every mapping, allocates exactly the
     * same PASIDs from the owner's PASID set, binds the guest page tables and attaches the guest
     * PASID table. All or nothing: on a refusal every step taken is undone and the container is
     * empty again.
     *
     * @param state from {@link #saveState()} of another container, possibly of another owner
     * @throws IommuException {@code ENODEV} if closed; {@code EINVAL} if the IOMMU type is not set
     *     or differs from the state's; {@code EBUSY} if the container already holds a mapping, a
     *     PASID or a binding, or if one of the PASIDs is taken; and what {@link #mapDma},
     *     {@link #pasidAlloc}, {@link #bindGuestPageTable} or {@link #attachPasidTable} answer
     */
    void restoreState(ContainerState state) throws IommuException;

    /**
     * Closes the container (the last {@code close} of its file): every group is removed and the
     * IOMMU released. Idempotent; never throws.
     */
    void close();

    /** @return {@code true} once closed */
    boolean isClosed();
}
