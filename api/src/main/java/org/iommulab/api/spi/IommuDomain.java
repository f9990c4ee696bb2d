package org.iommulab.api.spi;

import org.iommulab.api.errno.IommuException;
import org.osgi.annotation.versioning.ConsumerType;

/**
 * A translation domain of a host driver: one I/O address space, shared by every requester
 * attached to it. {@link #map} and {@link #unmap} edit its page table in physical memory and issue
 * the invalidations the hardware needs before returning, so that after {@code unmap} returns no
 * translation of the range succeeds.
 *
 * <p>Implemented by backends. Thread safe: maps and unmaps of disjoint ranges may run concurrently
 * with each other and with DMA.
 */
@ConsumerType
public interface IommuDomain {

    /** Protection flag: reads allowed. */
    int PROT_READ = 1;
    /** Protection flag: writes allowed. */
    int PROT_WRITE = 2;
    /** Protection flag: instruction fetches allowed. */
    int PROT_EXEC = 4;

    /** @return an id unique within its driver (VT-d domain id, SMMUv3 VMID or ASID) */
    int id();

    /** @return the type this domain was allocated with, never {@code null} */
    DomainType type();

    /** @return the bitmap of page sizes {@link #map} can use (bit n set: 2^n bytes) */
    long pageSizes();

    /** @return the input (IOVA) address width in bits */
    int inputAddressBits();

    /**
     * Maps {@code [iova, iova + size)} to {@code [pa, pa + size)} with the largest pages alignment
     * allows.
     *
     * @param iova I/O virtual address, aligned to the smallest page size
     * @param pa physical address, aligned to the smallest page size
     * @param size bytes, a positive multiple of the smallest page size
     * @param prot {@code PROT_*} flags, at least read or write
     * @throws IommuException {@code EINVAL} for misalignment, zero size, wrap, no permission or a
     *     range beyond the input width; {@code EEXIST} if part of the range is mapped;
     *     {@code ENOMEM} if no table frame could be allocated. Nothing is mapped then.
     */
    void map(long iova, long pa, long size, int prot) throws IommuException;

    /**
     * Unmaps every mapping inside {@code [iova, iova + size)} and invalidates the caches.
     *
     * @param iova first address, aligned to the smallest page size
     * @param size bytes, a positive multiple of the smallest page size
     * @return the number of bytes unmapped (0 if nothing was mapped there)
     * @throws IommuException {@code EINVAL} for misalignment or if the range would split a larger
     *     page; nothing is unmapped then
     */
    long unmap(long iova, long size) throws IommuException;

    /**
     * @param iova an I/O virtual address
     * @return the physical address it maps to, or -1 if unmapped
     */
    long iovaToPhys(long iova);
}
