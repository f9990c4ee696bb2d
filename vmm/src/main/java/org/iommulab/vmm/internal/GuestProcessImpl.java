package org.iommulab.vmm.internal;

import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.CopyOnWriteArraySet;

import org.iommulab.api.errno.Errno;
import org.iommulab.api.errno.IommuException;
import org.iommulab.api.idxd.SubmitStatus;
import org.iommulab.api.spi.IommuDomain;
import org.iommulab.api.vmm.GuestProcess;
import org.iommulab.pgtable.FlushOps;
import org.iommulab.pgtable.IoPageTable;
import org.iommulab.pgtable.PageTableFormat;

/**
 * A guest process: its PASID and its page table in guest memory in the CPU's format (which SVA
 * shares with devices), with 4 KiB pages from the guest kernel's pool. Pages it pages out
 * keep their frame, so a page request can page them back in. One monitor guards it.
 */
final class GuestProcessImpl implements GuestProcess {
    private static final long PAGE = 4096;

    private final String name;
    private final int pasid;
    private final GuestKernelImpl kernel;
    private final IoPageTable table;
    /** Paged-out pages: GVA -> GPA. */
    private final Map<Long, Long> pagedOut = new TreeMap<>();
    private final java.util.Set<Integer> boundTo = new CopyOnWriteArraySet<>();

    /**
     * @param format the CPU's page-table format: x86 4-level on a VT-d guest, VMSAv8-64 stage 1 (4 KiB
     *     granule, 48-bit VAs) on an SMMUv3 guest
     */
    GuestProcessImpl(String name, int pasid, GuestKernelImpl kernel, PageTableFormat format) throws IommuException {
        this.name = name;
        this.pasid = pasid;
        this.kernel = kernel;
        this.table = IoPageTable.create(format, kernel.memory(), kernel.tables(), FlushOps.NONE);
    }

    @Override
    public String name() {
        return name;
    }

    @Override
    public int pasid() {
        return pasid;
    }

    @Override
    public long pgd() {
        return table.root();
    }

    @Override
    public synchronized void map(long gva, long bytes) throws IommuException {
        check(gva, bytes);
        for (long off = 0; off < bytes; off += PAGE) {
            if (table.iovaToPhys(gva + off) != -1 || pagedOut.containsKey(gva + off)) {
                throw new IommuException(Errno.EEXIST, String.format("0x%x is mapped", gva + off));
            }
        }
        for (long off = 0; off < bytes; off += PAGE) {
            table.map(gva + off, kernel.pages().allocateFrames(1), PAGE, IommuDomain.PROT_READ | IommuDomain.PROT_WRITE);
        }
    }

    @Override
    public void pageOut(long gva, long bytes) throws IommuException {
        pageOutWithoutInvalidation(gva, bytes);
        for (int rid : boundTo) {
            kernel.driver().invalidateFirstStage(rid, pasid, gva, bytes);
        }
        kernel.vm().log("guest: %s paged out 0x%x+0x%x and invalidated its IOMMU", name, gva, bytes);
    }

    @Override
    public synchronized void pageOutWithoutInvalidation(long gva, long bytes) throws IommuException {
        check(gva, bytes);
        for (long off = 0; off < bytes; off += PAGE) {
            if (table.iovaToPhys(gva + off) == -1) {
                throw new IommuException(Errno.EINVAL, String.format("0x%x is not mapped", gva + off));
            }
        }
        for (long off = 0; off < bytes; off += PAGE) {
            long gpa = table.iovaToPhys(gva + off);
            table.unmap(gva + off, PAGE);
            pagedOut.put(gva + off, gpa);
        }
    }

    /** @return {@code true} if the page holding {@code gva} is present now (it was paged back in) */
    synchronized boolean pageIn(long gva) {
        long page = gva & -PAGE;
        Long gpa = pagedOut.remove(page);
        if (gpa == null) {
            return table.iovaToPhys(page) != -1;
        }
        try {
            table.map(page, gpa, PAGE, IommuDomain.PROT_READ | IommuDomain.PROT_WRITE);
            return true;
        } catch (IommuException e) {
            return false;
        }
    }

    private long physical(long gva) throws IommuException {
        if (!pageIn(gva)) {
            throw new IommuException(Errno.EFAULT, String.format("%s: 0x%x is not mapped", name, gva));
        }
        return table.iovaToPhys(gva);
    }

    @Override
    public void write(long gva, byte[] data) throws IommuException {
        int done = 0;
        while (done < data.length) {
            long at = gva + done;
            int n = (int) Math.min(data.length - done, PAGE - (at & (PAGE - 1)));
            kernel.memory().write(physical(at), data, done, n);
            done += n;
        }
    }

    @Override
    public byte[] read(long gva, int length) throws IommuException {
        byte[] out = new byte[length];
        int done = 0;
        while (done < length) {
            long at = gva + done;
            int n = (int) Math.min(length - done, PAGE - (at & (PAGE - 1)));
            kernel.memory().read(physical(at), out, done, n);
            done += n;
        }
        return out;
    }

    /** @return {@code true} if bound to the device at {@code virtualRid} */
    boolean boundTo(int virtualRid) {
        return boundTo.contains(virtualRid);
    }

    @Override
    public void bind(int virtualRid) throws IommuException {
        kernel.driver().bindFirstStage(virtualRid, pasid, table.root(), 48, 0);
        boundTo.add(virtualRid);
        kernel.vm().log("guest: %s (PASID %d) bound to device 0x%x through the virtual IOMMU", name, pasid, virtualRid);
    }

    @Override
    public void unbind(int virtualRid) throws IommuException {
        kernel.driver().unbindFirstStage(virtualRid, pasid);
        boundTo.remove(virtualRid);
    }

    @Override
    public SubmitStatus enqcmd(int virtualRid, byte[] descriptor) throws IommuException {
        VmImpl.Assigned dev = kernel.vm().device(virtualRid).orElseThrow(
                () -> new IommuException(Errno.ENOENT, "no device at virtual rid 0x" + Integer.toHexString(virtualRid)));
        return kernel.vm().submit(dev, descriptor, pasid);
    }

    private static void check(long gva, long bytes) throws IommuException {
        if ((gva & (PAGE - 1)) != 0 || bytes <= 0 || (bytes & (PAGE - 1)) != 0) {
            throw new IommuException(Errno.EINVAL, String.format("0x%x+0x%x is not a page-aligned range", gva, bytes));
        }
    }
}
