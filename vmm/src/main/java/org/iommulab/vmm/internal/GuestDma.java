package org.iommulab.vmm.internal;

import org.iommulab.api.errno.Errno;
import org.iommulab.api.errno.IommuException;
import org.iommulab.api.spi.DomainType;
import org.iommulab.api.spi.IommuDomain;

/**
 * The guest kernel's DMA API for one device: an IOVA domain of its virtual IOMMU in place of the
 * blocked domain the probe attached, as a guest driver's {@code dma_map_*} uses it. On VT-d the
 * guest's driver builds DMA domains from first-stage tables, so attaching writes the device's
 * RID_PASID entry with PGTT 1 (the VMM's trap binds it nested as PASID 0); on SMMUv3 it writes
 * CD 0 of the device's CD table. Mapping and unmapping invalidate through the virtual IOMMU as
 * the guest driver always does. Buffers are 4 KiB pages of the guest kernel's pool. One monitor
 * guards it.
 */
final class GuestDma {
    private static final long PAGE = 4096;

    private final GuestKernelImpl kernel;
    private final int virtualRid;
    private final IommuDomain domain;
    private boolean closed;

    private GuestDma(GuestKernelImpl kernel, int virtualRid, IommuDomain domain) {
        this.kernel = kernel;
        this.virtualRid = virtualRid;
        this.domain = domain;
    }

    /**
     * Detaches the device from {@code blocked} and attaches a new DMA domain; on failure the
     * device is attached to {@code blocked} again.
     */
    static GuestDma open(GuestKernelImpl kernel, int virtualRid, IommuDomain blocked) throws IommuException {
        IommuDomain d = kernel.driver().allocateDomain(DomainType.UNMANAGED);
        try {
            kernel.driver().detach(blocked, virtualRid);
            try {
                kernel.driver().attach(d, virtualRid);
            } catch (IommuException | RuntimeException e) {
                kernel.driver().attach(blocked, virtualRid);
                throw e;
            }
        } catch (IommuException | RuntimeException e) {
            kernel.driver().freeDomain(d);
            throw e;
        }
        return new GuestDma(kernel, virtualRid, d);
    }

    /** @return the device's virtual requester id */
    int virtualRid() {
        return virtualRid;
    }

    /**
     * Maps {@code bytes} at {@code iova} to fresh guest pages (read and write).
     *
     * @return the guest physical address of the first page
     * @throws IommuException {@code EINVAL} for an unaligned range, {@code EEXIST} if mapped
     */
    synchronized long map(long iova, long bytes) throws IommuException {
        live();
        check(iova, bytes);
        long first = -1;
        for (long off = 0; off < bytes; off += PAGE) {
            long gpa = kernel.pages().allocateFrames(1);
            domain.map(iova + off, gpa, PAGE, IommuDomain.PROT_READ | IommuDomain.PROT_WRITE);
            first = first < 0 ? gpa : first;
        }
        kernel.vm().log("guest: DMA map 0x%x+0x%x for device 0x%x", iova, bytes, virtualRid);
        return first;
    }

    /** Unmaps a range; the guest driver's unmap invalidates the virtual IOMMU's IOTLB. */
    synchronized void unmap(long iova, long bytes) throws IommuException {
        live();
        check(iova, bytes);
        domain.unmap(iova, bytes);
        kernel.vm().log("guest: DMA unmap 0x%x+0x%x for device 0x%x and invalidated", iova, bytes, virtualRid);
    }

    /** @return the guest physical address {@code iova} maps to, or -1 */
    synchronized long gpa(long iova) {
        return closed ? -1 : domain.iovaToPhys(iova);
    }

    /** The driver lets the device go: its DMA domain is detached and freed, the blocked domain attached again. */
    synchronized void close(IommuDomain blocked) throws IommuException {
        live();
        kernel.driver().detach(domain, virtualRid);
        kernel.driver().attach(blocked, virtualRid);
        kernel.driver().freeDomain(domain);
        closed = true;
        kernel.vm().log("guest: device 0x%x back to the blocked domain", virtualRid);
    }

    private void live() throws IommuException {
        if (closed) {
            throw new IommuException(Errno.ENODEV, "the DMA domain of 0x" + Integer.toHexString(virtualRid) + " is gone");
        }
    }

    private static void check(long iova, long bytes) throws IommuException {
        if ((iova & (PAGE - 1)) != 0 || bytes <= 0 || (bytes & (PAGE - 1)) != 0) {
            throw new IommuException(Errno.EINVAL, String.format("0x%x+0x%x is not a page-aligned range", iova, bytes));
        }
    }
}
