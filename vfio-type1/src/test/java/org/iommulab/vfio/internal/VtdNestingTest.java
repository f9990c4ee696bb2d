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
import org.iommulab.api.pasid.PasidSet;
import org.iommulab.api.process.HostProcess;
import org.iommulab.api.spi.IommuDomain;
import org.iommulab.api.spi.IommuInstance;
import org.iommulab.api.translation.Access;
import org.iommulab.api.translation.Translation;
import org.iommulab.api.vfio.VfioContainer;
import org.iommulab.api.vfio.VfioIommuInfo;
import org.iommulab.api.vfio.VfioIommuType;
import org.iommulab.pgtable.FlushOps;
import org.iommulab.pgtable.IoPageTable;
import org.iommulab.pgtable.format.X86FirstStage;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * A nesting container over VT-d: PASID requests against the process's set, a guest's first-stage
 * table bound through VFIO and walked nested on the container's domain, invalidation, free.
 */
class VtdNestingTest {
    static final long GVA = 0x7f00_0020_1000L;
    static final long DATA_GPA = 0x10_0000;

    VfioStack stack = new VfioStack(65535, 4);
    IommuInstance iommu;
    Requester dev;
    HostProcess vm;
    long ram;
    GuestRam guest;
    VfioContainer c;
    final Translation t = new Translation();

    @BeforeEach
    void setUp() throws Exception {
        iommu = stack.instance("vtd", "iommu0");
        dev = stack.device("dsa0", iommu, 0x10, 20);
        vm = stack.process("vm1");
        ram = vm.mmap(16 * MB);
        guest = new GuestRam(vm, ram, 16 * MB, 8 * MB);
        c = stack.container(vm, dev.groupId(), VfioIommuType.NESTING);
        c.mapDma(ram, 0, 16 * MB, RW); // guest RAM: GPA 0..16 MiB
    }

    /** The guest builds a 4-level process table: GVA -> DATA_GPA. */
    IoPageTable guestTable() throws Exception {
        IoPageTable table = IoPageTable.create(X86FirstStage.of(4, 48, false, true, true), guest, guest, FlushOps.NONE);
        table.map(GVA, DATA_GPA, 4096, IommuDomain.PROT_READ | IommuDomain.PROT_WRITE);
        return table;
    }

    GuestPasidBind bind(int hostPasid, long pgd) {
        return new GuestPasidBind(NestingInfo.FORMAT_INTEL_VTD, hostPasid, 5, true, pgd, 48, 0, 0, 0);
    }

    @Test
    void infoCarriesTheNestingCapability() throws Exception {
        VfioIommuInfo info = c.info();
        NestingInfo nesting = info.nesting().orElseThrow();
        assertEquals(NestingInfo.FORMAT_INTEL_VTD, nesting.format());
        assertTrue(nesting.supports(NestingFeature.BIND_PGTBL));
        assertTrue(nesting.supports(NestingFeature.SYSWIDE_PASID));
        assertTrue(nesting.vendorData().containsKey("ecap"));
        assertTrue(c.checkExtension(VfioIommuType.NESTING));
    }

    @Test
    void aBoundGuestTableTranslatesNestedAndUnbindStopsIt() throws Exception {
        IoPageTable table = guestTable();
        int pasid = c.pasidAlloc(1, 100);
        PasidSet set = stack.pasids.set("vm1").orElseThrow();
        assertTrue(set.contains(pasid), "the PASID comes from the process's set");
        vm.write64(ram + DATA_GPA + 0x10, 0x1234_5678L);

        c.bindGuestPageTable(bind(pasid, table.root()));
        assertTrue(iommu.translate(dev.requesterId(), pasid, GVA + 0x10, Access.WRITE, t), t.toString());
        assertEquals(vm.residentAddress(ram + DATA_GPA) + 0x10, t.outputAddress(), "GVA -> GPA -> HPA");
        assertEquals(0x1234_5678L, stack.memory.read64(t.outputAddress()));
        assertEquals(Set.of(pasid), c.bindings().keySet());

        // The guest remaps; the stale entry stays until its invalidation travels down.
        table.unmap(GVA, 4096);
        table.map(GVA, DATA_GPA + 0x1000, 4096, IommuDomain.PROT_READ);
        assertTrue(iommu.translate(dev.requesterId(), pasid, GVA, Access.READ, t));
        assertEquals(vm.residentAddress(ram + DATA_GPA), t.outputAddress(), "stale until invalidated");
        c.cacheInvalidate(CacheInvalidation.range(Set.of(CacheType.IOTLB), pasid, -1, GVA, 4096, 1, true));
        assertTrue(iommu.translate(dev.requesterId(), pasid, GVA, Access.READ, t));
        assertEquals(vm.residentAddress(ram + DATA_GPA + 0x1000), t.outputAddress());
        assertFalse(iommu.translate(dev.requesterId(), pasid, GVA, Access.WRITE, t), "the guest made it read-only");

        c.unbindGuestPageTable(pasid);
        assertFalse(iommu.translate(dev.requesterId(), pasid, GVA, Access.READ, t), "unbound: faults");
        assertErrno(Errno.ENOENT, () -> c.unbindGuestPageTable(pasid));
    }

    @Test
    void nestingOpsCheckOwnershipAndState() throws Exception {
        IoPageTable table = guestTable();
        int pasid = c.pasidAlloc(1, 100);
        PasidSet stranger = stack.pasids.createSet("vm2", 1);
        int foreign = stranger.allocate();
        assertErrno(Errno.EPERM, () -> c.bindGuestPageTable(bind(foreign, table.root())));
        assertErrno(Errno.EPERM, () -> c.cacheInvalidate(CacheInvalidation.pasid(Set.of(CacheType.IOTLB), foreign, -1)));
        assertErrno(Errno.EPERM, () -> c.unbindGuestPageTable(foreign));
        assertErrno(Errno.EINVAL, () -> c.bindGuestPageTable(
                new GuestPasidBind(NestingInfo.FORMAT_INTEL_VTD, pasid, 5, true, table.root(), 39, 0, 0, 0)));
        assertTrue(c.bindings().isEmpty(), "rejected binds leave nothing bound");
        c.bindGuestPageTable(bind(pasid, table.root()));
        assertErrno(Errno.EBUSY, () -> c.bindGuestPageTable(bind(pasid, table.root())));
        assertErrno(Errno.EOPNOTSUPP, () -> c.attachPasidTable(
                new PasidTableConfig(NestingInfo.FORMAT_ARM_SMMUV3, 0, 4, PasidTableConfig.TRANSLATE, 0, 1)));
        assertErrno(Errno.EINVAL, () -> c.pasidAlloc(0, 10));
        assertErrno(Errno.EINVAL, () -> c.pasidAlloc(10, 5));
        assertErrno(Errno.EINVAL, () -> c.pasidFree(5, 1));
    }

    @Test
    void closingWithSeveralPasidsBoundAndUnboundFreesThemAll() throws Exception {
        IoPageTable table = guestTable();
        int bound = c.pasidAlloc(1, 100);
        c.pasidAlloc(1, 100); // two more, unbound: freeing them one by one while iterating used to throw
        c.pasidAlloc(1, 100);
        c.bindGuestPageTable(bind(bound, table.root()));
        c.close();
        assertTrue(stack.pasids.set("vm1").isEmpty(), "the last container of the process closed its set");
        assertFalse(iommu.translate(dev.requesterId(), bound, GVA, Access.READ, t), "the binding is gone");
    }

    @Test
    void theProcessQuotaBoundsPasidRequests() throws Exception {
        for (int i = 0; i < 4; i++) {
            c.pasidAlloc(1, 1000);
        }
        assertErrno(Errno.ENOSPC, () -> c.pasidAlloc(1, 1000));
        assertEquals(4, c.pasidFree(1, 1000));
        c.pasidAlloc(1, 1000);
    }

    @Test
    void freeingABoundPasidUnbindsItFirst() throws Exception {
        IoPageTable table = guestTable();
        int pasid = c.pasidAlloc(1, 100);
        c.bindGuestPageTable(bind(pasid, table.root()));
        assertEquals(1, c.pasidFree(pasid, pasid));
        assertTrue(c.bindings().isEmpty());
        assertFalse(iommu.translate(dev.requesterId(), pasid, GVA, Access.READ, t));
        assertFalse(stack.pasids.set("vm1").orElseThrow().contains(pasid));
        assertEquals(0, c.pasidFree(pasid, pasid), "nothing left to free");
    }

    @Test
    void aNestingContainerHoldsOneGroupAndClosingUndoesEverything() throws Exception {
        IoPageTable table = guestTable();
        int pasid = c.pasidAlloc(1, 100);
        c.bindGuestPageTable(bind(pasid, table.root()));
        Requester second = stack.device("dsa1", iommu, 0x18, 20);
        assertErrno(Errno.EINVAL, () -> c.addGroup(second.groupId()));
        assertErrno(Errno.EBUSY, () -> stack.bus.unregister("dsa0"));
        c.close();
        assertFalse(iommu.translate(dev.requesterId(), pasid, GVA, Access.READ, t));
        assertTrue(stack.pasids.set("vm1").isEmpty(), "the set VFIO created for the process closes with its last container");
        assertEquals(0, vm.pinnedPages());
        stack.bus.unregister("dsa0");
    }

    @Test
    void twoContainersOfOneProcessShareItsPasidSet() throws Exception {
        IoPageTable table = guestTable();
        Requester other = stack.device("dsa1", iommu, 0x18, 20);
        VfioContainer c2 = stack.container(vm, other.groupId(), VfioIommuType.NESTING);
        int pasid = c.pasidAlloc(1, 100);
        c.bindGuestPageTable(bind(pasid, table.root()));
        assertEquals(1, c2.pasidFree(pasid, pasid), "the other container frees the process's PASID");
        assertTrue(c.bindings().isEmpty(), "the binding went with the PASID");
        assertFalse(iommu.translate(dev.requesterId(), pasid, GVA, Access.READ, t));
        int again = c.pasidAlloc(pasid, pasid);
        c.bindGuestPageTable(bind(again, table.root()));
        assertTrue(iommu.translate(dev.requesterId(), again, GVA, Access.READ, t));
        c2.close();
        assertTrue(stack.pasids.set("vm1").isPresent(), "c still holds the set");
        assertTrue(iommu.translate(dev.requesterId(), again, GVA, Access.READ, t));
    }

    @Test
    void aNestingContainerNeedsPasidDevicesAndOneGroup() throws Exception {
        IommuInstance other = stack.instance("vtd", "iommu1");
        Requester far = stack.device("far", other, 0x10, 20);
        Requester near = stack.device("near", other, 0x18, 20);
        VfioContainer two = stack.vfio.open(stack.process("vm3"));
        two.addGroup(far.groupId());
        two.addGroup(near.groupId());
        assertErrno(Errno.EINVAL, () -> two.setIommu(VfioIommuType.NESTING));
        assertTrue(two.iommuType().isEmpty());
        two.setIommu(VfioIommuType.TYPE1V2);

        HostProcess vm2 = stack.process("vm2");
        Requester plain = stack.device("nic", other, 0x20, 0);
        VfioContainer c2 = stack.container(vm2, plain.groupId(), VfioIommuType.NESTING);
        long ram2 = vm2.mmap(MB);
        c2.mapDma(ram2, 0, MB, RW);
        int pasid = c2.pasidAlloc(1, 10);
        assertErrno(Errno.ENODEV, () -> c2.bindGuestPageTable(bind(pasid, 0x1000)));
    }

    @Test
    void type1v2ContainersHaveNoNestingOps() throws Exception {
        HostProcess vm2 = stack.process("vm2");
        Requester nic = stack.device("nic", iommu, 0x20, 20);
        VfioContainer plain = stack.container(vm2, nic.groupId(), VfioIommuType.TYPE1V2);
        assertErrno(Errno.EOPNOTSUPP, () -> plain.pasidAlloc(1, 10));
        assertErrno(Errno.EOPNOTSUPP, () -> plain.pasidFree(1, 10));
        assertErrno(Errno.EOPNOTSUPP, () -> plain.bindGuestPageTable(bind(1, 0x1000)));
        assertErrno(Errno.EOPNOTSUPP, () -> plain.unbindGuestPageTable(1));
        assertErrno(Errno.EOPNOTSUPP, () -> plain.cacheInvalidate(CacheInvalidation.domain(Set.of(CacheType.IOTLB))));
        assertErrno(Errno.EOPNOTSUPP, plain::detachPasidTable);
        assertTrue(stack.pasids.set("vm2").isEmpty(), "no PASID set for a type1v2 container");
    }

    /**
     * A fresh container takes over a closed one's state: same mappings, the same PASID values
     * (fixed allocation), the same bindings, and the nested walk works again.
     */
    @Test
    void aFreshContainerTakesOverTheStateWithTheSamePasids() throws Exception {
        IoPageTable table = guestTable();
        c.pasidAlloc(1, 100);
        int bound = c.pasidAlloc(1, 100);
        c.bindGuestPageTable(bind(bound, table.root()));
        // Another owner holds the next PASID: after the close, a plain allocation would not give
        // these values back in order; the restore asks for exactly them.
        HostProcess other = stack.process("other");
        VfioContainer elsewhere = stack.container(other, stack.device("dsa1", iommu, 0x18, 20).groupId(),
                VfioIommuType.NESTING);
        assertEquals(bound + 1, elsewhere.pasidAlloc(1, 100));
        org.iommulab.api.vfio.ContainerState state = c.saveState();
        assertEquals(java.util.List.of(bound - 1, bound), state.pasids());
        c.close();
        assertEquals(0, vm.pinnedPages(), "the old container let go of everything");

        VfioContainer fresh = stack.container(vm, dev.groupId(), VfioIommuType.NESTING);
        fresh.restoreState(state);
        assertEquals(state.mappings(), fresh.mappings());
        assertEquals(state.bindings(), fresh.bindings());
        assertEquals(state.pasids(), fresh.saveState().pasids());
        vm.write64(ram + DATA_GPA + 0x10, 0x5151L);
        assertTrue(iommu.translate(dev.requesterId(), bound, GVA + 0x10, Access.READ, t), t.toString());
        assertEquals(0x5151L, stack.memory.read64(t.outputAddress()));
    }

    /** A refused restore leaves the fresh container empty: no mapping, no pin, no PASID, no binding. */
    @Test
    void aRefusedRestoreChangesNothing() throws Exception {
        IoPageTable table = guestTable();
        int first = c.pasidAlloc(1, 100);
        int second = c.pasidAlloc(1, 100);
        c.bindGuestPageTable(bind(second, table.root()));
        org.iommulab.api.vfio.ContainerState state = c.saveState();
        c.close();
        // Another owner takes the second PASID in the window: the restore must give up whole.
        HostProcess other = stack.process("other");
        VfioContainer elsewhere = stack.container(other, stack.device("dsa1", iommu, 0x18, 20).groupId(),
                VfioIommuType.NESTING);
        assertEquals(second, elsewhere.pasidAlloc(second, second));

        VfioContainer fresh = stack.container(vm, dev.groupId(), VfioIommuType.NESTING);
        assertErrno(Errno.EBUSY, () -> fresh.restoreState(state));
        assertTrue(fresh.mappings().isEmpty());
        assertTrue(fresh.bindings().isEmpty());
        assertEquals(0, vm.pinnedPages());
        assertFalse(stack.pasids.set("vm1").orElseThrow().contains(first), "the PASID taken on the way was given back");
        assertFalse(iommu.translate(dev.requesterId(), second, GVA, Access.READ, t));

        // Not fresh, or of another type: refused before anything happens.
        fresh.mapDma(ram, 0, 2 * MB, RW);
        assertErrno(Errno.EBUSY, () -> fresh.restoreState(state));
        assertEquals(1, fresh.mappings().size());
        VfioContainer plain = stack.container(stack.process("p3"), stack.device("dsa2", iommu, 0x20, 20).groupId(),
                VfioIommuType.TYPE1V2);
        assertErrno(Errno.EINVAL, () -> plain.restoreState(state));
        assertTrue(plain.mappings().isEmpty());
    }
}
