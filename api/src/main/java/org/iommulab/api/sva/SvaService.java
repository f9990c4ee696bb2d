package org.iommulab.api.sva;

import java.util.List;

import org.iommulab.api.errno.IommuException;
import org.iommulab.api.pasid.PasidSet;
import org.iommulab.api.process.HostProcess;
import org.osgi.annotation.versioning.ProviderType;

/**
 * Binds host processes to devices for shared virtual addressing (Linux
 * {@code iommu_sva_bind_device}, {@code iommu_sva_unbind_device}, the IOPF handler and the SVA
 * {@code mmu_notifier}).
 *
 * <p>The process's address space is a CPU page table in host memory, in the format of the host
 * architecture that the IOMMU belongs to (x86 4-level for VT-d, VMSAv8-64 stage 1 with 4 KiB
 * granule for SMMUv3, Sv48 for the RISC-V IOMMU), kept by this service in step with the process:
 * resident pages are mapped, munmapped and swapped-out pages are removed with the IOMMU's caches
 * invalidated before their frames are freed. The IOMMU driver installs a first-stage-only PASID
 * entry (VT-d PGTT 1, an SMMUv3 CD, a RISC-V process context) pointing at that table.
 *
 * <p>Page requests for a bound PASID are resolved as the kernel's IOPF handler does: the page is
 * faulted into the process and the request answered Success; an address outside the process's
 * mappings is answered Invalid Request.
 *
 * <p>Thread safe.
 */
@ProviderType
public interface SvaService {
    /**
     * Binds {@code process} to the device {@code requesterId} behind IOMMU {@code iommu}. The PASID
     * is the process's PASID in {@code set}: allocated from the set at the process's first bind
     * in it, reused by its later binds there (one PASID per address space, as Linux's
     * {@code mm->pasid}), and freed when the last of those bonds goes.
     *
     * @param process a live process, not {@code null}
     * @param iommu an IOMMU instance name
     * @param requesterId the device's requester id on that IOMMU
     * @param set the PASID set the PASID comes from, not {@code null}
     * @return the bond
     * @throws IommuException {@code ENODEV} if there is no such instance or the process has exited, {@code EOPNOTSUPP} if its
     *     backend binds no first-stage tables or the host format is unknown, {@code EBUSY} if the
     *     process is already bound to that device, {@code EPERM} if the set is closed,
     *     {@code ENOSPC} if the set is at its quota, or what the driver answers (the device must
     *     be attached to an identity domain, or on VT-d/SMMUv3 to a domain of its own); nothing is
     *     changed then
     */
    SvaBond bind(HostProcess process, String iommu, int requesterId, PasidSet set) throws IommuException;

    /** @return the live bonds, in bind order, in a new list */
    List<SvaBond> bonds();
}
