package org.iommulab.vfio.internal;

import static org.iommulab.vfio.internal.ContainerContract.MB;
import static org.iommulab.vfio.internal.ContainerContract.RW;
import static org.iommulab.vfio.internal.ContainerContract.assertErrno;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Set;

import org.iommulab.api.device.Requester;
import org.iommulab.api.errno.Errno;
import org.iommulab.api.invalidation.CacheInvalidation;
import org.iommulab.api.invalidation.CacheType;
import org.iommulab.api.nesting.GuestPasidBind;
import org.iommulab.api.nesting.NestingFeature;
import org.iommulab.api.nesting.NestingInfo;
import org.iommulab.api.nesting.PasidTableConfig;
import org.iommulab.api.pasid.Pasids;
import org.iommulab.api.process.HostProcess;
import org.iommulab.api.spi.IommuDomain;
import org.iommulab.api.spi.IommuInstance;
import org.iommulab.api.translation.Access;
import org.iommulab.api.translation.Translation;
import org.iommulab.api.vfio.VfioContainer;
import org.iommulab.api.vfio.VfioIommuType;
import org.iommulab.pgtable.FlushOps;
import org.iommulab.pgtable.IoPageTable;
import org.iommulab.pgtable.format.ArmGranule;
import org.iommulab.pgtable.format.ArmStage1;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * A nesting container over SMMUv3: the guest's context-descriptor table attached through VFIO, its
 * stage-1 tables walked nested on the container's stage 2, TLBI by ASID travelling down, detach.
 */
class SmmuNestingTest {
    static final long IOVA = 0x40_0000_1000L;
    static final long DATA_GPA = 0x10_0000;
    static final long CD_GPA = 0x20_0000;
    static final int ASID = 9;

    VfioStack stack = new VfioStack();
    IommuInstance iommu;
    Requester dev;
    HostProcess vm;
    long ram;
    GuestRam guest;
    VfioContainer c;
    final Translation t = new Translation();

    @BeforeEach
    void setUp() throws Exception {
        iommu = stack.instance("smmuv3", "smmu0");
        dev = stack.device("dev0", iommu, 0x10, 20);
        vm = stack.process("vm1");
        ram = vm.mmap(16 * MB);
        guest = new GuestRam(vm, ram, 16 * MB, 8 * MB);
        c = stack.container(vm, dev.groupId(), VfioIommuType.NESTING);
        c.mapDma(ram, 0, 16 * MB, RW);
    }

    /** The guest's stage 1 (IOVA -> DATA_GPA) and CD 1 of its 16-entry CD table. */
    IoPageTable guestStage1() throws Exception {
        IoPageTable s1 = IoPageTable.create(ArmStage1.of(ArmGranule.G4K, 16, 48, false, false, false), guest, guest,
                FlushOps.NONE);
        s1.map(IOVA, DATA_GPA, 4096, IommuDomain.PROT_READ | IommuDomain.PROT_WRITE);
        // CD (SMMUv3 §5.4): T0SZ 16, TG0 4K, EPD1, V; IPS 48 bits, AA64, R, A, ASID; TTB0 an IPA.
        long w0 = 16 | 1L << 30 | 1L << 31;
        long w1 = 5 | 1L << 9 | 1L << 13 | 1L << 14 | (long) ASID << 16;
        guest.write64(CD_GPA + 64, w0 | w1 << 32);
        guest.write64(CD_GPA + 64 + 8, s1.root());
        return s1;
    }

    static PasidTableConfig table(int config) {
        return new PasidTableConfig(NestingInfo.FORMAT_ARM_SMMUV3, CD_GPA, 4, config, 0, 1);
    }

    @Test
    void theGuestsCdTableTranslatesNestedOnTheContainersStage2() throws Exception {
        NestingInfo info = c.info().nesting().orElseThrow();
        assertEquals(NestingInfo.FORMAT_ARM_SMMUV3, info.format());
        assertTrue(info.supports(NestingFeature.PASID_TABLE));
        IoPageTable s1 = guestStage1();
        vm.write64(ram + DATA_GPA + 0x40, 0xfeed_beefL);

        c.attachPasidTable(table(PasidTableConfig.TRANSLATE));
        assertTrue(iommu.translate(dev.requesterId(), 1, IOVA + 0x40, Access.READ, t), t.toString());
        assertEquals(vm.residentAddress(ram + DATA_GPA) + 0x40, t.outputAddress(), "IOVA -> IPA -> PA");
        assertEquals(0xfeed_beefL, stack.memory.read64(t.outputAddress()));
        assertTrue(iommu.translate(dev.requesterId(), Pasids.NO_PASID, DATA_GPA, Access.READ, t),
                "S1DSS bypass: requests without SSID see stage 2 only");
        assertEquals(vm.residentAddress(ram + DATA_GPA), t.outputAddress());

        s1.unmap(IOVA, 4096);
        s1.map(IOVA, DATA_GPA + 0x1000, 4096, IommuDomain.PROT_READ);
        assertTrue(iommu.translate(dev.requesterId(), 1, IOVA, Access.READ, t));
        assertEquals(vm.residentAddress(ram + DATA_GPA), t.outputAddress(), "stale until the guest's TLBI");
        c.cacheInvalidate(CacheInvalidation.range(Set.of(CacheType.IOTLB), Pasids.NO_PASID, ASID, IOVA, 4096, 1, true));
        assertTrue(iommu.translate(dev.requesterId(), 1, IOVA, Access.READ, t));
        assertEquals(vm.residentAddress(ram + DATA_GPA + 0x1000), t.outputAddress());

        c.attachPasidTable(table(PasidTableConfig.ABORT));
        assertFalse(iommu.translate(dev.requesterId(), Pasids.NO_PASID, DATA_GPA, Access.READ, t), "ABORT: every access aborts");
        c.detachPasidTable();
        assertTrue(c.pasidTable().isEmpty());
        assertTrue(iommu.translate(dev.requesterId(), Pasids.NO_PASID, DATA_GPA, Access.READ, t), "plain stage 2 again");
        assertFalse(iommu.translate(dev.requesterId(), 1, IOVA, Access.READ, t), "no stage 1 any more");
        assertErrno(Errno.ENOENT, c::detachPasidTable);
    }

    @Test
    void malformedTablesAndVtdOnlyOpsAreRejected() throws Exception {
        assertErrno(Errno.EINVAL, () -> c.attachPasidTable(
                new PasidTableConfig(NestingInfo.FORMAT_ARM_SMMUV3, CD_GPA, 4, 7, 0, 1)));
        assertErrno(Errno.EINVAL, () -> c.attachPasidTable(
                new PasidTableConfig(NestingInfo.FORMAT_INTEL_VTD, CD_GPA, 4, PasidTableConfig.TRANSLATE, 0, 1)));
        assertTrue(c.pasidTable().isEmpty(), "a rejected table leaves none attached");
        assertErrno(Errno.EOPNOTSUPP, () -> c.bindGuestPageTable(
                new GuestPasidBind(NestingInfo.FORMAT_INTEL_VTD, 1, 1, true, 0x1000, 48, 0, 0, 0)));
        assertErrno(Errno.EOPNOTSUPP, () -> c.pasidAlloc(1, 10));
    }

    @Test
    void removingTheGroupTakesTheTableBack() throws Exception {
        guestStage1();
        c.attachPasidTable(table(PasidTableConfig.TRANSLATE));
        assertTrue(iommu.translate(dev.requesterId(), 1, IOVA, Access.READ, t));
        Requester second = stack.device("dev1", iommu, 0x18, 20);
        assertErrno(Errno.EINVAL, () -> c.addGroup(second.groupId()));
        assertTrue(stack.pasids.sets().isEmpty(), "no PASID set without system-wide PASIDs");
        c.removeGroup(dev.groupId());
        assertFalse(iommu.translate(dev.requesterId(), 1, IOVA, Access.READ, t));
        assertFalse(iommu.translate(dev.requesterId(), Pasids.NO_PASID, DATA_GPA, Access.READ, t), "detached: aborts");
        assertTrue(c.pasidTable().isEmpty());
        assertEquals(0, vm.pinnedPages());
    }
}
