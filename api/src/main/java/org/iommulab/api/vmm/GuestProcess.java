package org.iommulab.api.vmm;

import org.iommulab.api.errno.IommuException;
import org.iommulab.api.idxd.SubmitStatus;
import org.osgi.annotation.versioning.ProviderType;

/**
 * A guest process: its PASID and its page table (x86 4-level, GVA -> GPA, in guest memory).
 * Guest physical pages are allocated from the guest kernel's page pool as the process maps memory.
 */
@ProviderType
public interface GuestProcess {

    /** @return the process name */
    String name();

    /** @return its PASID (the guest's, equal to the host PASID the VMM obtained) */
    int pasid();

    /** @return guest physical address of its root table (CR3) */
    long pgd();

    /**
     * Maps fresh, zeroed guest pages at a virtual address.
     *
     * @param gva page-aligned virtual address
     * @param bytes a multiple of 4 KiB
     * @throws IommuException {@code EEXIST} if mapped, {@code ENOMEM} without guest memory
     */
    void map(long gva, long bytes) throws IommuException;

    /**
     * Pages a range out: the PTEs are cleared (the pages are kept for a later page-in) and the
     * guest invalidates its IOMMU's caches for the range through its driver.
     *
     * @param gva page-aligned virtual address
     * @param bytes a multiple of 4 KiB
     * @throws IommuException {@code EINVAL} for a range not mapped
     */
    void pageOut(long gva, long bytes) throws IommuException;

    /**
     * Pages a range out without invalidating: the mistake a device-visible stale translation shows.
     *
     * @param gva page-aligned virtual address
     * @param bytes a multiple of 4 KiB
     * @throws IommuException {@code EINVAL} for a range not mapped
     */
    void pageOutWithoutInvalidation(long gva, long bytes) throws IommuException;

    /**
     * The CPU writes the process's memory (faulting paged-out pages back in).
     *
     * @param gva virtual address
     * @param data bytes
     * @throws IommuException {@code EFAULT} for an unmapped address
     */
    void write(long gva, byte[] data) throws IommuException;

    /**
     * The CPU reads the process's memory.
     *
     * @param gva virtual address
     * @param length bytes
     * @return the bytes
     * @throws IommuException {@code EFAULT} for an unmapped address
     */
    byte[] read(long gva, int length) throws IommuException;

    /**
     * Binds the process's address space to a device through the guest's IOMMU driver (SVA bind:
     * a first-stage PASID entry on the virtual IOMMU, which the VMM traps).
     *
     * @param virtualRid the device's guest requester id
     * @throws IommuException driver and trapped VFIO errors
     */
    void bind(int virtualRid) throws IommuException;

    /**
     * Unbinds it from the device.
     *
     * @param virtualRid the device
     * @throws IommuException {@code ENOENT} if not bound
     */
    void unbind(int virtualRid) throws IommuException;

    /**
     * ENQCMD from this process to a device's shared virtual work queue: the CPU puts the process's
     * PASID in the descriptor.
     *
     * @param virtualRid the device
     * @param descriptor 64 bytes
     * @return the portal's answer
     * @throws IommuException {@code ENOENT} for an unknown device
     */
    SubmitStatus enqcmd(int virtualRid, byte[] descriptor) throws IommuException;
}
