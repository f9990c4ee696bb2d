package org.iommulab.bench;

import org.iommulab.api.device.Requester;
import org.iommulab.api.nesting.GuestPasidBind;
import org.iommulab.api.nesting.NestingInfo;
import org.iommulab.api.nesting.PasidTableConfig;
import org.iommulab.api.process.HostProcess;
import org.iommulab.api.spi.IommuDomain;
import org.iommulab.api.spi.IommuInstance;
import org.iommulab.api.vfio.VfioContainer;
import org.iommulab.api.vfio.VfioIommuType;
import org.iommulab.pgtable.FlushOps;
import org.iommulab.pgtable.IoPageTable;
import org.iommulab.pgtable.format.ArmGranule;
import org.iommulab.pgtable.format.ArmStage1;
import org.iommulab.pgtable.format.X86FirstStage;
import org.iommulab.vfio.internal.GuestRam;
import org.iommulab.vfio.internal.VfioStack;

/**
 * A device doing nested translation as a vSVA guest sets it up: guest RAM mapped through a VFIO
 * nesting container, a guest first-stage table (x86 on VT-d, VMSAv8-64 stage 1 on SMMUv3) mapping
 * {@code pages} 4 KiB pages at {@link #GVA}, bound to a PASID (VT-d) or through the guest's CD
 * table (SMMUv3, substream 1).
 */
final class NestedFixture {
    static final long MB = 1 << 20;
    static final long GVA = 0x7000_0000_0000L;
    static final long DATA_GPA = 16 * MB;
    static final int RID = 0x10;

    final VfioStack stack = new VfioStack();
    final IommuInstance iommu;
    final HostProcess vm;
    final long ram;
    final GuestRam guest;
    final VfioContainer container;
    final int pasid;

    NestedFixture(String vendor, long ramBytes, long pages) throws Exception {
        this(vendor, ramBytes, pages, java.util.Map.of());
    }

    /** @param config configuration of the IOMMU instance (for example a 1-entry IOTLB) */
    NestedFixture(String vendor, long ramBytes, long pages, java.util.Map<String, String> config) throws Exception {
        iommu = stack.registry.create(vendor, vendor + "0", config);
        Requester dev = stack.device("dev0", iommu, RID, 20);
        vm = stack.process("vm");
        ram = vm.mmap(ramBytes);
        guest = new GuestRam(vm, ram, ramBytes, ramBytes - 16 * MB);
        container = stack.container(vm, dev.groupId(), VfioIommuType.NESTING);
        container.mapDma(ram, 0, ramBytes, 3);
        IoPageTable table;
        if (vendor.equals("vtd")) {
            table = IoPageTable.create(X86FirstStage.of(4, 48, false, true, true), guest, guest, FlushOps.NONE, 1L << 12);
            table.map(GVA, DATA_GPA, pages * 4096, IommuDomain.PROT_READ | IommuDomain.PROT_WRITE);
            pasid = container.pasidAlloc(1, 1000);
            container.bindGuestPageTable(new GuestPasidBind(NestingInfo.FORMAT_INTEL_VTD, pasid, pasid, true, table.root(),
                    48, 0, 0, 0));
        } else {
            table = IoPageTable.create(ArmStage1.of(ArmGranule.G4K, 16, 48, false, false, false), guest, guest,
                    FlushOps.NONE, 1L << 12);
            table.map(GVA, DATA_GPA, pages * 4096, IommuDomain.PROT_READ | IommuDomain.PROT_WRITE);
            long cd = guest.allocateFrames(1);
            // CD 1: T0SZ 16, TG0 4K, EPD1, V; IPS 48, AA64, R, A, ASID 5; TTB0 the guest table (an IPA).
            guest.write64(cd + 64 + 8, table.root());
            guest.write64(cd + 64, 16 | 1L << 30 | 1L << 31 | (5L | 1L << 9 | 1L << 13 | 1L << 14 | 5L << 16) << 32);
            container.attachPasidTable(new PasidTableConfig(NestingInfo.FORMAT_ARM_SMMUV3, cd, 4,
                    PasidTableConfig.TRANSLATE, 0, 1));
            pasid = 1;
        }
        // Fault every data page in on the host, so that translations end in backed memory.
        for (long p = 0; p < pages; p++) {
            vm.write64(ram + DATA_GPA + p * 4096, p);
        }
    }
}
