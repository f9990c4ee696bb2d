package org.iommulab.vmm.internal;

import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.atomic.AtomicLong;

import org.iommulab.api.errno.Errno;
import org.iommulab.api.errno.IommuException;
import org.iommulab.api.memory.PhysicalMemory;
import org.iommulab.api.fault.FaultListener;
import org.iommulab.api.fault.IommuFault;
import org.iommulab.api.fault.PageRequest;
import org.iommulab.api.fault.PageResponse;
import org.iommulab.api.idxd.Mdev;
import org.iommulab.api.spi.DomainType;
import org.iommulab.api.spi.IommuDomain;
import org.iommulab.api.spi.IommuDriver;
import org.iommulab.api.spi.IommuInstance;
import org.iommulab.api.vmm.GuestKernel;
import org.iommulab.api.vmm.GuestProcess;
import org.iommulab.pgtable.format.ArmGranule;
import org.iommulab.pgtable.format.ArmStage1;
import org.iommulab.pgtable.format.X86FirstStage;

/**
 * The guest kernel: its IOMMU driver is the backend's own driver running over guest memory (the
 * guest's intel-iommu), its page allocator a pool of guest frames, and its page-fault handler
 * answers the page requests its virtual IOMMU reports by paging the address back in.
 */
final class GuestKernelImpl implements GuestKernel {
    // The virtual device's registers, as the parent lays them out (Linux drivers/dma/idxd/registers.h).
    private static final int WQCFG = 0x500;
    private static final int CMD = 0xa0;
    private static final int CMDSTS = 0xa8;
    private static final int CMD_ENABLE_DEVICE = 1;
    private static final int CMD_ENABLE_WQ = 6;

    private final VmImpl vm;
    private final IommuInstance viommu;
    private final PhysicalMemory memory;
    private final GuestPool tables;
    private final GuestPool pages;
    private final List<GuestProcessImpl> processes = new CopyOnWriteArrayList<>();
    private final AtomicLong pageRequests = new AtomicLong();
    private final java.util.concurrent.atomic.AtomicInteger nextSsid = new java.util.concurrent.atomic.AtomicInteger(1);
    private boolean listening;
    /** The blocked domain each probed device's requests without PASID are attached to, by virtual rid. */
    private final java.util.Map<Integer, IommuDomain> blocked = new java.util.HashMap<>();
    /** The DMA (IOVA) domains in use, by virtual rid. */
    private final java.util.Map<Integer, GuestDma> dma = new java.util.HashMap<>();

    GuestKernelImpl(VmImpl vm, IommuInstance viommu, PhysicalMemory memory, GuestPool tables, GuestPool pages) {
        this.vm = vm;
        this.viommu = viommu;
        this.memory = memory;
        this.tables = tables;
        this.pages = pages;
    }

    IommuDriver driver() {
        return viommu.driver();
    }

    PhysicalMemory memory() {
        return memory;
    }

    GuestPool tables() {
        return tables;
    }

    GuestPool pages() {
        return pages;
    }

    VmImpl vm() {
        return vm;
    }

    @Override
    public GuestProcess startProcess(String name) throws IommuException {
        GuestProcessImpl p;
        if ("smmuv3".equals(viommu.vendor())) {
            // The guest owns its CD table: its substream ids are its own, 1 to 255.
            int ssid = nextSsid.getAndIncrement();
            if (ssid > 255) {
                throw new IommuException(Errno.ENOSPC, "the guest's CD tables hold 255 substreams");
            }
            p = new GuestProcessImpl(name, ssid, this, ArmStage1.of(ArmGranule.G4K, 16, 48, false, false, false));
        } else {
            p = new GuestProcessImpl(name, vm.allocatePasid(), this, X86FirstStage.of(4, 48, false, true, true));
        }
        processes.add(p);
        vm.log("guest: process %s started with PASID %d, page table at GPA 0x%x", name, p.pasid(), p.pgd());
        return p;
    }

    @Override
    public List<GuestProcess> processes() {
        return List.copyOf(processes);
    }

    @Override
    public synchronized void probeDevice(int virtualRid) throws IommuException {
        Mdev mdev = vm.device(virtualRid).orElseThrow(
                () -> new IommuException(Errno.ENOENT, "no device at virtual rid 0x" + Integer.toHexString(virtualRid))).mdev();
        // A whole device keeps the work queues the host configured; an mdev's virtual queue is the guest's to set up.
        if (!listening) {
            driver().addFaultListener(new FaultListener() {
                @Override
                public void fault(IommuFault fault) {
                }

                @Override
                public void pageRequest(PageRequest request) {
                    handlePageRequest(request);
                }
            });
            listening = true;
        }
        // The device's requests without PASID are blocked: the guest uses it through SVA only.
        IommuDomain blocked = driver().allocateDomain(DomainType.BLOCKED);
        driver().attach(blocked, virtualRid);
        this.blocked.put(virtualRid, blocked);
        if (mdev != null) {
            // The guest's idxd driver: one shared virtual queue, PASIDs from submitters, block on fault.
            mdev.mmioWrite(WQCFG, 16, 4);                                 // wq_size
            mdev.mmioWrite(WQCFG + 8, 1 << 1 | 10 << 4 | 1 << 28, 4);     // shared, bof, priority 10, pasid_en
            mdev.mmioWrite(WQCFG + 12, 20 | 5 << 5, 4);                   // max transfer 1 MiB, batch 32
            command(mdev, CMD_ENABLE_DEVICE, 0);
            command(mdev, CMD_ENABLE_WQ, 0);
        }
        vm.log("guest: probed the device at 0x%x: attached through the virtual IOMMU%s", virtualRid,
                mdev != null ? ", shared virtual queue enabled" : "");
    }

    /**
     * The guest's driver turns DMA remapping on for a probed device: its requests without PASID
     * are translated by a DMA domain of the virtual IOMMU from now on (VT-d: RID_PASID with a
     * first-stage table; SMMUv3: CD 0). Call it before binding processes to the device: the
     * guest's driver drops a device's process bindings when its domain changes.
     *
     * @throws IommuException {@code ENOENT} for a device not probed, {@code EBUSY} if enabled already
     *     or a process is bound to the device
     */
    synchronized GuestDma enableDma(int virtualRid) throws IommuException {
        IommuDomain b = blocked.get(virtualRid);
        if (b == null) {
            throw new IommuException(Errno.ENOENT, "device 0x" + Integer.toHexString(virtualRid) + " is not probed");
        }
        if (dma.containsKey(virtualRid)) {
            throw new IommuException(Errno.EBUSY, "DMA remapping is on for 0x" + Integer.toHexString(virtualRid));
        }
        for (GuestProcessImpl p : processes) {
            if (p.boundTo(virtualRid)) {
                throw new IommuException(Errno.EBUSY, p.name() + " is bound to 0x" + Integer.toHexString(virtualRid));
            }
        }
        GuestDma d = GuestDma.open(this, virtualRid, b);
        dma.put(virtualRid, d);
        vm.log("guest: DMA remapping on for the device at 0x%x (IOVA domain of the virtual IOMMU)", virtualRid);
        return d;
    }

    /**
     * Turns DMA remapping off again: the device is back on its blocked domain (VT-d: the guest's
     * RID_PASID entry is gone, which the VMM traps as an unbind).
     *
     * @throws IommuException {@code ENOENT} if it is not on
     */
    synchronized void disableDma(int virtualRid) throws IommuException {
        GuestDma d = dma.get(virtualRid);
        if (d == null) {
            throw new IommuException(Errno.ENOENT, "DMA remapping is off for 0x" + Integer.toHexString(virtualRid));
        }
        d.close(blocked.get(virtualRid));
        dma.remove(virtualRid);
    }

    private static void command(Mdev mdev, int cmd, int operand) throws IommuException {
        mdev.mmioWrite(CMD, (long) cmd << 20 | operand, 4);
        long sts = mdev.mmioRead(CMDSTS, 4) & 0xff;
        if (sts != 0) {
            throw new IommuException(Errno.EIO, "virtual device command " + cmd + " failed with CMDSTS 0x" + Long.toHexString(sts));
        }
    }

    /** The guest's page-fault handler for device page requests: page the address in, answer. */
    private void handlePageRequest(PageRequest request) {
        PageResponse answer = PageResponse.INVALID;
        for (GuestProcessImpl p : processes) {
            if (p.pasid() == request.pasid()) {
                answer = p.pageIn(request.address()) ? PageResponse.SUCCESS : PageResponse.INVALID;
                break;
            }
        }
        pageRequests.incrementAndGet();
        vm.log("guest: page request for 0x%x (PASID %d) -> paged in, answering %s", request.address(), request.pasid(),
                answer);
        try {
            driver().pageResponse(request.requesterId(), request.pasid(), request.groupIndex(), answer);
        } catch (IommuException e) {
            vm.log("guest: page response failed: %s", e.getMessage());
        }
    }

    @Override
    public long pageRequestsHandled() {
        return pageRequests.get();
    }
}
