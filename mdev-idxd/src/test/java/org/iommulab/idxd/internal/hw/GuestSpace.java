package org.iommulab.idxd.internal.hw;

import org.iommulab.api.device.Requester;
import org.iommulab.api.errno.IommuException;
import org.iommulab.api.nesting.GuestPasidBind;
import org.iommulab.api.nesting.NestingInfo;
import org.iommulab.api.process.HostProcess;
import org.iommulab.api.spi.IommuDomain;
import org.iommulab.api.spi.IommuInstance;
import org.iommulab.api.vfio.VfioContainer;
import org.iommulab.api.vfio.VfioIommuType;
import org.iommulab.pgtable.FlushOps;
import org.iommulab.pgtable.IoPageTable;
import org.iommulab.pgtable.format.X86FirstStage;
import org.iommulab.vfio.internal.GuestRam;
import org.iommulab.vfio.internal.VfioStack;

/**
 * A VM's process address space as a DSA descriptor sees it: the VM's RAM mapped through a VFIO
 * nesting container, a guest first-stage table (GVA -> GPA) bound to a host PASID, so that DMA
 * tagged with {@link #pasid} walks GVA -> GPA -> HPA. Test scaffolding for what the vmm will do.
 */
public final class GuestSpace {
    /** Guest virtual addresses start here and map GPA 0 upward. */
    public static final long GVA = 0x7000_0000_0000L;

    public final HostProcess vm;
    public final long ram;
    public final long ramSize;
    public final GuestRam guest;
    public final VfioContainer container;
    public final IoPageTable table;
    public final int pasid;

    /**
     * @param tables bytes at the top of RAM kept for guest page tables
     */
    public GuestSpace(VfioStack stack, Requester dev, String vmName, long ramSize, long tables) throws IommuException {
        this.ramSize = ramSize;
        vm = stack.process(vmName);
        ram = vm.mmap(ramSize);
        guest = new GuestRam(vm, ram, ramSize, ramSize - tables);
        container = stack.container(vm, dev.groupId(), VfioIommuType.NESTING);
        container.mapDma(ram, 0, ramSize, 3);
        table = IoPageTable.create(X86FirstStage.of(4, 48, false, true, true), guest, guest, FlushOps.NONE);
        pasid = container.pasidAlloc(1, 1000);
        container.bindGuestPageTable(new GuestPasidBind(NestingInfo.FORMAT_INTEL_VTD, pasid, pasid, true, table.root(),
                48, 0, 0, 0));
    }

    /** Maps GVA {@code GVA + gpa} to {@code gpa} for {@code size} bytes. */
    public GuestSpace map(long gpa, long size, boolean writable) throws IommuException {
        table.map(GVA + gpa, gpa, size, IommuDomain.PROT_READ | (writable ? IommuDomain.PROT_WRITE : 0));
        return this;
    }

    public static long gva(long gpa) {
        return GVA + gpa;
    }

    public byte[] read(long gpa, int length) throws IommuException {
        byte[] b = new byte[length];
        vm.read(ram + gpa, b, 0, length);
        return b;
    }

    public void write(long gpa, byte[] data) throws IommuException {
        vm.write(ram + gpa, data, 0, data.length);
    }

    /** @return the host physical memory that backs guest RAM (for the IOMMU instance of the test) */
    static IommuInstance vtd(VfioStack stack) throws IommuException {
        return stack.instance("vtd", "vtd0");
    }
}
