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
import org.iommulab.api.nesting.NestingInfo;
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
import org.iommulab.pgtable.format.X86FirstStage;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * Guest IOVA over first stage at the container level: BIND_PGTBL for PASID 0 (RID_PASID) nests
 * the guest's IOVA table on the container's domain for requests without PASID. PASID 0 is in no
 * PASID set, so the rule is the container's: a NESTING container, whole devices only (EPERM for a
 * mediated one), once (EBUSY); a refused call changes nothing, unbind restores second stage only.
 */
class RidPasidNestingTest {
    static final long IOVA = 0x1_2345_6000L; // beyond guest RAM: second stage alone cannot translate it
    static final long DATA_GPA = 0x10_0000;

    final VfioStack stack = new VfioStack(65535, 4);
    final Translation t = new Translation();
    IommuInstance iommu;
    Requester dev;
    HostProcess vm;
    long ram;
    GuestRam guest;

    @BeforeEach
    void setUp() throws Exception {
        iommu = stack.instance("vtd", "iommu0");
        dev = stack.device("dsa0", iommu, 0x10, 20);
        vm = stack.process("vm1");
        ram = vm.mmap(16 * MB);
        guest = new GuestRam(vm, ram, 16 * MB, 8 * MB);
    }

    private VfioContainer container(Requester r, VfioIommuType type) throws Exception {
        VfioContainer c = stack.container(vm, r.groupId(), type);
        c.mapDma(ram, 0, 16 * MB, RW);
        return c;
    }

    /** The guest's IOVA table: first stage, user pages (requests without PASID are user requests). */
    private IoPageTable iovaTable() throws Exception {
        IoPageTable table = IoPageTable.create(X86FirstStage.of(4, 48, false, true, true), guest, guest, FlushOps.NONE);
        table.map(IOVA, DATA_GPA, 4096, IommuDomain.PROT_READ | IommuDomain.PROT_WRITE);
        return table;
    }

    private static GuestPasidBind ridPasid(long pgd) {
        return new GuestPasidBind(NestingInfo.FORMAT_INTEL_VTD, Pasids.RESERVED_PASID, 0, true, pgd, 48, 0, 0, 0);
    }

    /** @return the host address requests without PASID of 0x10 reach at {@code address}, or -1 */
    private long noPasid(long address) {
        return iommu.translate(0x10, Pasids.NO_PASID, address, Access.READ, t) ? t.outputAddress() : -1;
    }

    @Test
    void pasidZeroNestsTheGuestIovaTableForRequestsWithoutPasidAndUnbindRestoresSecondStage() throws Exception {
        VfioContainer c = container(dev, VfioIommuType.NESTING);
        long hpa = noPasid(DATA_GPA);
        assertTrue(hpa >= 0, "second stage only: GPA -> HPA");
        assertEquals(-1, noPasid(IOVA));
        IoPageTable table = iovaTable();

        c.bindGuestPageTable(ridPasid(table.root()));
        assertEquals(Set.of(0), c.bindings().keySet());
        assertFalse(stack.pasids.set("vm1").orElseThrow().contains(0), "PASID 0 stays out of the VM's set");
        assertEquals(hpa, noPasid(IOVA), "IOVA -> GPA (guest first stage) -> HPA");
        assertEquals(-1, noPasid(DATA_GPA), "the guest's table decides now: a GPA is no IOVA");

        // Double bind: EBUSY, nothing changes.
        assertErrno(Errno.EBUSY, () -> c.bindGuestPageTable(ridPasid(table.root() + 0x1000)));
        assertEquals(table.root(), c.bindings().get(0).guestPgd());
        assertEquals(hpa, noPasid(IOVA));

        // A guest unmap is stale until the guest's invalidation for PASID 0 reaches the host.
        table.unmap(IOVA, 4096);
        assertEquals(hpa, noPasid(IOVA), "cached, as on hardware");
        c.cacheInvalidate(CacheInvalidation.pasid(Set.of(CacheType.IOTLB), 0, -1));
        assertEquals(-1, noPasid(IOVA), "gone once invalidated");
        assertTrue(c.pasidAlloc(1, 100) > 0, "allocation never hands out PASID 0");

        c.unbindGuestPageTable(0);
        assertTrue(c.bindings().isEmpty());
        assertEquals(hpa, noPasid(DATA_GPA), "second stage only again");
        assertErrno(Errno.ENOENT, () -> c.unbindGuestPageTable(0));
    }

    @Test
    void pasidZeroBindingsFollowTheContainerStateAndStayOnFree() throws Exception {
        VfioContainer c = container(dev, VfioIommuType.NESTING);
        long hpa = noPasid(DATA_GPA);
        IoPageTable table = iovaTable();
        c.bindGuestPageTable(ridPasid(table.root()));
        int pasid = c.pasidAlloc(1, 100);
        assertEquals(1, c.pasidFree(1, Pasids.MAX_PASID), "freeing the VM's PASIDs leaves RID_PASID alone");
        assertTrue(c.bindings().containsKey(0));
        assertTrue(pasid > 0);
        org.iommulab.api.vfio.ContainerState state = c.saveState();
        assertTrue(state.bindings().containsKey(0));
        c.close();
        assertEquals(-1, noPasid(IOVA), "closing the container takes the binding along");

        VfioContainer fresh = stack.vfio.open(vm);
        fresh.addGroup(dev.groupId());
        fresh.setIommu(VfioIommuType.NESTING);
        fresh.restoreState(state);
        assertEquals(hpa, noPasid(IOVA), "restored on a fresh container");
        fresh.close();
    }

    @Test
    void refusedBindsReturnTheErrnoAndChangeNothing() throws Exception {
        IoPageTable table = iovaTable();
        // Not a nesting container.
        VfioContainer plain = container(dev, VfioIommuType.TYPE1V2);
        long hpa = noPasid(DATA_GPA);
        assertErrno(Errno.EOPNOTSUPP, () -> plain.bindGuestPageTable(ridPasid(table.root())));
        assertEquals(hpa, noPasid(DATA_GPA));
        assertEquals(-1, noPasid(IOVA));
        plain.close();
    }

    @Test
    void aMediatedDeviceGetsEpermForPasidZero() throws Exception {
        IoPageTable table = iovaTable();
        Requester mdev = stack.bus.registerMediated("dsa0-vm1", "dsa0");
        VfioContainer mediated = container(mdev, VfioIommuType.NESTING);
        assertErrno(Errno.EPERM, () -> mediated.bindGuestPageTable(ridPasid(table.root())));
        assertTrue(mediated.bindings().isEmpty());
        assertEquals(-1, noPasid(IOVA), "the parent's RID_PASID is untouched");
        assertErrno(Errno.EPERM, () -> mediated.cacheInvalidate(CacheInvalidation.pasid(Set.of(CacheType.IOTLB), 0, -1)));
        mediated.close();
    }

    @Test
    void aRequesterTheContainerDoesNotHoldKeepsItsOwnRidPasid() throws Exception {
        IoPageTable table = iovaTable();
        Requester other = stack.device("dsa1", iommu, 0x20, 20);
        HostProcess host = stack.process("host");
        long hostRam = host.mmap(MB);
        VfioContainer hostContainer = stack.container(host, other.groupId(), VfioIommuType.TYPE1V2);
        hostContainer.mapDma(hostRam, 0, MB, RW);
        assertTrue(iommu.translate(0x20, Pasids.NO_PASID, DATA_GPA & (MB - 1), Access.READ, t));
        long otherHpa = t.outputAddress();
        VfioContainer c = container(dev, VfioIommuType.NESTING);
        c.bindGuestPageTable(ridPasid(table.root()));
        assertTrue(iommu.translate(0x20, Pasids.NO_PASID, DATA_GPA & (MB - 1), Access.READ, t));
        assertEquals(otherHpa, t.outputAddress(), "the other device still translates by its own domain");
        assertFalse(iommu.translate(0x20, Pasids.NO_PASID, IOVA, Access.READ, t));
        c.close();
        hostContainer.close();
    }
}
