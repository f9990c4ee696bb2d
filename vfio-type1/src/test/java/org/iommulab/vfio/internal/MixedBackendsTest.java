package org.iommulab.vfio.internal;

import static org.iommulab.vfio.internal.ContainerContract.MB;
import static org.iommulab.vfio.internal.ContainerContract.RW;
import static org.iommulab.vfio.internal.ContainerContract.assertErrno;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.iommulab.api.device.Requester;
import org.iommulab.api.errno.Errno;
import org.iommulab.api.pasid.Pasids;
import org.iommulab.api.process.HostProcess;
import org.iommulab.api.spi.DomainType;
import org.iommulab.api.spi.IommuInstance;
import org.iommulab.api.translation.Access;
import org.iommulab.api.translation.Translation;
import org.iommulab.api.vfio.VfioContainer;
import org.iommulab.api.vfio.VfioIommuInfo;
import org.iommulab.api.vfio.VfioIommuType;
import org.junit.jupiter.api.Test;

/** One type1v2 container over a VT-d and an SMMUv3 instance: one domain each, mappings mirrored into both. */
class MixedBackendsTest {
    private final VfioStack stack = new VfioStack();
    private final Translation t = new Translation();

    @Test
    void aGroupBehindASecondIommuGetsADomainWithEveryMapping() throws Exception {
        IommuInstance vtd = stack.instance("vtd", "vtd0");
        IommuInstance smmu = stack.instance("smmuv3", "smmu0");
        Requester a = stack.device("a", vtd, 0x10, 0);
        Requester b = stack.device("b", smmu, 0x10, 0);
        HostProcess vm = stack.process("vm1");
        long ram = vm.mmap(16 * MB);
        VfioContainer c = stack.container(vm, a.groupId(), VfioIommuType.TYPE1V2);
        c.mapDma(ram, 0x10_0000, MB, RW);
        c.mapDma(ram + MB, 0x800_0000, 0x1000, RW); // fine on VT-d, inside SMMUv3's software MSI window

        // Bring the SMMUv3 driver up first: its stream table and queues live as long as the instance.
        smmu.driver().freeDomain(smmu.driver().allocateDomain(DomainType.UNMANAGED));
        long framesBefore = stack.memory.allocatedFrames();
        assertErrno(Errno.EINVAL, () -> c.addGroup(b.groupId()));
        assertEquals(1, c.groups().length);
        assertEquals(framesBefore, stack.memory.allocatedFrames(), "the refused group left no domain behind");
        assertFalse(smmu.translate(0x10, Pasids.NO_PASID, 0x10_0000, Access.READ, t));

        c.unmapDma(0x800_0000, 0x1000, 0);
        c.addGroup(b.groupId());
        assertTrue(smmu.translate(0x10, Pasids.NO_PASID, 0x10_8000, Access.READ, t), "replayed into the new domain");
        assertEquals(vm.residentAddress(ram + 0x8000), t.outputAddress());
        VfioIommuInfo info = c.info();
        assertTrue(info.iovaRanges().stream().noneMatch(r -> r.contains(0x800_0000)), "SMMUv3's window counts now");
        assertTrue(info.iovaRanges().stream().noneMatch(r -> r.contains(0xfee0_0000L)), "and VT-d's");
        assertErrno(Errno.EINVAL, () -> c.mapDma(ram + MB, 0x800_0000, 0x1000, RW));

        c.mapDma(ram + 2 * MB, 0x4000_0000L, 0x2000, RW);
        assertTrue(vtd.translate(0x10, Pasids.NO_PASID, 0x4000_1000L, Access.WRITE, t));
        assertTrue(smmu.translate(0x10, Pasids.NO_PASID, 0x4000_1000L, Access.WRITE, t));

        stack.registry.destroy("smmu0");
        assertEquals(1, c.groups().length, "the SMMUv3 group left with its instance");
        assertEquals(2, c.mappings().size(), "the mappings stay for the VT-d domain");
        assertTrue(vtd.translate(0x10, Pasids.NO_PASID, 0x10_0000, Access.READ, t));
        c.close();
        assertEquals(0, vm.pinnedPages());
    }

    @Test
    void aMediatedRequesterGetsItsDomainOnADefaultPasidOfItsParent() throws Exception {
        IommuInstance vtd = stack.instance("vtd", "vtd0");
        stack.device("dsa0", vtd, 0x10, 20);
        Requester mdev = stack.bus.registerMediated("dsa0-vm1", "dsa0");
        HostProcess vm = stack.process("vm1");
        long ram = vm.mmap(MB);
        VfioContainer c = stack.container(vm, mdev.groupId(), VfioIommuType.TYPE1V2);
        c.mapDma(ram, 0x10_0000, MB, RW);
        int defaultPasid = stack.pasids.set(VfioService.DEFAULT_PASID_OWNER).orElseThrow().pasids()[0];
        assertTrue(stack.pasids.set("vm1").isEmpty(), "the default PASID is VFIO's, not the VM's to free");
        assertTrue(vtd.translate(0x10, defaultPasid, 0x10_0008, Access.WRITE, t), "the mdev's PASID reaches the VM's memory");
        assertEquals(vm.residentAddress(ram) + 8, t.outputAddress());
        assertFalse(vtd.translate(0x10, Pasids.NO_PASID, 0x10_0008, Access.READ, t), "the parent's own requests do not");
        c.close();
        assertFalse(vtd.translate(0x10, defaultPasid, 0x10_0008, Access.READ, t));
        assertEquals(0, stack.pasids.set(VfioService.DEFAULT_PASID_OWNER).orElseThrow().size(), "the default PASID is freed");

        // SMMUv3 cannot give a substream a stage 2 of its own: the group is refused and nothing stays.
        IommuInstance smmu = stack.instance("smmuv3", "smmu0");
        stack.device("nic0", smmu, 0x20, 20);
        Requester vf = stack.bus.registerMediated("nic0-vm2", "nic0");
        VfioContainer c2 = stack.vfio.open(stack.process("vm2"));
        c2.addGroup(vf.groupId());
        assertErrno(Errno.EOPNOTSUPP, () -> c2.setIommu(VfioIommuType.TYPE1V2));
        assertTrue(c2.iommuType().isEmpty());
        assertEquals(0, stack.pasids.set(VfioService.DEFAULT_PASID_OWNER).orElseThrow().size(), "no PASID stays allocated");
    }
}
