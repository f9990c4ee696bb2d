package org.iommulab.platform.internal.device;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import java.util.Optional;

import org.iommulab.api.device.DeviceBus;
import org.iommulab.api.device.Requester;
import org.iommulab.api.errno.Errno;
import org.iommulab.api.errno.IommuException;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.function.Executable;

class DeviceBusImplTest {
    private final DeviceBusImpl bus = new DeviceBusImpl();

    private static IommuException expect(Errno errno, Executable call) {
        IommuException e = assertThrows(IommuException.class, call);
        assertEquals(errno, e.errno(), e.toString());
        return e;
    }

    @Test
    void registerAndLookUpByNameAndByIommuAndRid() throws IommuException {
        Requester r = bus.register("0000:00:02.0", "vtd0", 0x0010, 20, DeviceBus.NEW_GROUP);
        assertEquals("0000:00:02.0", r.name());
        assertEquals("vtd0", r.iommu());
        assertEquals(0x0010, r.requesterId());
        assertEquals(20, r.pasidBits());
        assertTrue(r.pasidCapable());
        assertEquals(Optional.of(r), bus.requester("0000:00:02.0"));
        assertEquals(Optional.of(r), bus.requester("vtd0", 0x0010));
        assertEquals(Optional.empty(), bus.requester("nope"));
        assertEquals(Optional.empty(), bus.requester("vtd0", 0x0011));
        assertEquals(Optional.empty(), bus.requester("vtd1", 0x0010));
        assertEquals(List.of(r), bus.requesters());
        assertEquals(List.of(r), bus.group(r.groupId()));
    }

    @Test
    void requestersAreListedByName() throws IommuException {
        Requester c = bus.register("c", "vtd0", 3, 0, DeviceBus.NEW_GROUP);
        Requester a = bus.register("a", "vtd0", 1, 0, DeviceBus.NEW_GROUP);
        Requester b = bus.register("b", "vtd0", 2, 0, DeviceBus.NEW_GROUP);
        assertEquals(List.of(a, b, c), bus.requesters());
        assertFalse(a.pasidCapable());
    }

    @Test
    void aGroupNeverSpansTwoIommus() throws IommuException {
        Requester a = bus.register("a", "vtd0", 1, 0, DeviceBus.NEW_GROUP);
        expect(Errno.EINVAL, () -> bus.register("b", "vtd1", 1, 0, a.groupId()));
        assertEquals(List.of(a), bus.group(a.groupId()));
        Requester c = bus.register("c", "vtd0", 2, 0, a.groupId());
        assertEquals(List.of(a, c), bus.group(a.groupId()));
    }

    @Test
    void aClaimedGroupKeepsItsMembersUntilReleased() throws IommuException {
        Requester a = bus.register("a", "vtd0", 1, 0, DeviceBus.NEW_GROUP);
        Object vfio = new Object();
        bus.claimDmaOwner(a.groupId(), vfio);
        bus.claimDmaOwner(a.groupId(), vfio);
        expect(Errno.EBUSY, () -> bus.claimDmaOwner(a.groupId(), new Object()));
        expect(Errno.EBUSY, () -> bus.unregister("a"));
        expect(Errno.EBUSY, () -> bus.register("b", "vtd0", 2, 0, a.groupId()));
        expect(Errno.ENOENT, () -> bus.claimDmaOwner(99, vfio));
        bus.releaseDmaOwner(a.groupId(), new Object());
        expect(Errno.EBUSY, () -> bus.unregister("a"));
        bus.releaseDmaOwner(a.groupId(), vfio);
        bus.unregister("a");
        assertEquals(List.of(), bus.requesters());
    }

    @Test
    void mediatedDevicesShareTheirParentsIdInGroupsOfTheirOwn() throws IommuException {
        Requester dsa = bus.register("dsa0", "vtd0", 0x10, 20, DeviceBus.NEW_GROUP);
        Requester mdev = bus.registerMediated("dsa0-vm1", "dsa0");
        assertEquals(0x10, mdev.requesterId());
        assertEquals("vtd0", mdev.iommu());
        assertTrue(mdev.mediated());
        assertTrue(mdev.groupId() != dsa.groupId());
        assertEquals(dsa, bus.requester("vtd0", 0x10).orElseThrow(), "the id still names the parent");
        expect(Errno.EBUSY, () -> bus.unregister("dsa0"));
        expect(Errno.EEXIST, () -> bus.registerMediated("dsa0-vm1", "dsa0"));
        expect(Errno.ENOENT, () -> bus.registerMediated("x", "nope"));
        bus.register("nic", "vtd0", 0x20, 0, DeviceBus.NEW_GROUP);
        expect(Errno.EINVAL, () -> bus.registerMediated("y", "nic"));
        expect(Errno.EINVAL, () -> bus.registerMediated("z", "dsa0-vm1"));
        bus.unregister("dsa0-vm1");
        bus.unregister("dsa0");
    }

    @Test
    void duplicateNameIsEexist() throws IommuException {
        Requester r = bus.register("dev", "vtd0", 1, 0, DeviceBus.NEW_GROUP);
        expect(Errno.EEXIST, () -> bus.register("dev", "vtd1", 2, 0, DeviceBus.NEW_GROUP));
        assertEquals(List.of(r), bus.requesters());
        assertEquals(Optional.empty(), bus.requester("vtd1", 2));
    }

    @Test
    void duplicateIommuAndRidIsEexist() throws IommuException {
        Requester r = bus.register("dev0", "vtd0", 0x100, 0, DeviceBus.NEW_GROUP);
        expect(Errno.EEXIST, () -> bus.register("dev1", "vtd0", 0x100, 0, DeviceBus.NEW_GROUP));
        assertEquals(Optional.empty(), bus.requester("dev1"));
        assertEquals(Optional.of(r), bus.requester("vtd0", 0x100));
    }

    @Test
    void theSameRidBehindAnotherIommuIsFine() throws IommuException {
        Requester a = bus.register("dev0", "vtd0", 0x100, 0, DeviceBus.NEW_GROUP);
        Requester b = bus.register("dev1", "smmu0", 0x100, 0, DeviceBus.NEW_GROUP);
        assertEquals(Optional.of(a), bus.requester("vtd0", 0x100));
        assertEquals(Optional.of(b), bus.requester("smmu0", 0x100));
    }

    @Test
    void unsignedRequesterIdsWork() throws IommuException {
        Requester r = bus.register("dev", "smmu0", 0xffff_ffff, 0, DeviceBus.NEW_GROUP);
        assertEquals(Optional.of(r), bus.requester("smmu0", -1));
    }

    @Test
    void newGroupAllocatesDistinctGroups() throws IommuException {
        Requester a = bus.register("a", "vtd0", 1, 0, DeviceBus.NEW_GROUP);
        Requester b = bus.register("b", "vtd0", 2, 0, DeviceBus.NEW_GROUP);
        Requester c = bus.register("c", "vtd1", 1, 0, DeviceBus.NEW_GROUP);
        assertNotEquals(a.groupId(), b.groupId());
        assertNotEquals(a.groupId(), c.groupId());
        assertNotEquals(b.groupId(), c.groupId());
        assertNotEquals(DeviceBus.NEW_GROUP, a.groupId());
        assertEquals(List.of(a), bus.group(a.groupId()));
    }

    @Test
    void joiningAnExistingGroup() throws IommuException {
        Requester a = bus.register("a", "vtd0", 1, 0, DeviceBus.NEW_GROUP);
        Requester b = bus.register("b", "vtd0", 2, 8, a.groupId());
        Requester other = bus.register("z", "vtd0", 3, 0, DeviceBus.NEW_GROUP);
        assertEquals(a.groupId(), b.groupId());
        assertEquals(List.of(a, b), bus.group(a.groupId()));
        assertEquals(List.of(other), bus.group(other.groupId()));
    }

    @Test
    void unknownGroupIsEnoentAndChangesNothing() throws IommuException {
        Requester a = bus.register("a", "vtd0", 1, 0, DeviceBus.NEW_GROUP);
        expect(Errno.ENOENT, () -> bus.register("b", "vtd0", 2, 0, a.groupId() + 1000));
        expect(Errno.ENOENT, () -> bus.register("b", "vtd0", 2, 0, 0));
        expect(Errno.ENOENT, () -> bus.register("b", "vtd0", 2, 0, -2));
        assertEquals(Optional.empty(), bus.requester("b"));
        assertEquals(List.of(), bus.group(a.groupId() + 1000));
        assertEquals(List.of(a), bus.requesters());
    }

    @Test
    void badPasidWidthIsEinval() throws IommuException {
        expect(Errno.EINVAL, () -> bus.register("a", "vtd0", 1, -1, DeviceBus.NEW_GROUP));
        expect(Errno.EINVAL, () -> bus.register("a", "vtd0", 1, 21, DeviceBus.NEW_GROUP));
        assertTrue(bus.requesters().isEmpty());
        bus.register("a", "vtd0", 1, 0, DeviceBus.NEW_GROUP);
        bus.register("b", "vtd0", 2, 20, DeviceBus.NEW_GROUP);
        assertEquals(2, bus.requesters().size());
    }

    @Test
    void blankNamesAreEinval() {
        expect(Errno.EINVAL, () -> bus.register(null, "vtd0", 1, 0, DeviceBus.NEW_GROUP));
        expect(Errno.EINVAL, () -> bus.register(" ", "vtd0", 1, 0, DeviceBus.NEW_GROUP));
        expect(Errno.EINVAL, () -> bus.register("a", null, 1, 0, DeviceBus.NEW_GROUP));
        expect(Errno.EINVAL, () -> bus.register("a", "", 1, 0, DeviceBus.NEW_GROUP));
        assertTrue(bus.requesters().isEmpty());
    }

    @Test
    void aRejectedRegistrationDoesNotUseUpAGroup() throws IommuException {
        Requester a = bus.register("a", "vtd0", 1, 0, DeviceBus.NEW_GROUP);
        expect(Errno.EEXIST, () -> bus.register("a", "vtd0", 2, 0, DeviceBus.NEW_GROUP));
        Requester b = bus.register("b", "vtd0", 2, 0, DeviceBus.NEW_GROUP);
        assertTrue(bus.group(b.groupId()).contains(b));
        assertEquals(1, bus.group(b.groupId()).size());
        assertNotEquals(a.groupId(), b.groupId());
    }

    @Test
    void unregisterRemovesTheRequester() throws IommuException {
        Requester a = bus.register("a", "vtd0", 1, 0, DeviceBus.NEW_GROUP);
        Requester b = bus.register("b", "vtd0", 2, 0, a.groupId());
        bus.unregister("a");
        assertEquals(Optional.empty(), bus.requester("a"));
        assertEquals(Optional.empty(), bus.requester("vtd0", 1));
        assertEquals(List.of(b), bus.requesters());
        assertEquals(List.of(b), bus.group(a.groupId()));
        expect(Errno.ENOENT, () -> bus.unregister("a"));
        expect(Errno.ENOENT, () -> bus.unregister("never"));
        // the name and the (iommu, rid) pair are free again
        Requester again = bus.register("a", "vtd0", 1, 0, a.groupId());
        assertEquals(a.groupId(), again.groupId());
    }

    @Test
    void aGroupDisappearsWithItsLastMember() throws IommuException {
        Requester a = bus.register("a", "vtd0", 1, 0, DeviceBus.NEW_GROUP);
        bus.register("b", "vtd0", 2, 0, a.groupId());
        bus.unregister("a");
        bus.register("c", "vtd0", 3, 0, a.groupId()); // still has b
        bus.unregister("b");
        bus.unregister("c");
        assertTrue(bus.group(a.groupId()).isEmpty());
        expect(Errno.ENOENT, () -> bus.register("d", "vtd0", 4, 0, a.groupId()));
        assertEquals(Optional.empty(), bus.requester("d"));
        Requester fresh = bus.register("d", "vtd0", 4, 0, DeviceBus.NEW_GROUP);
        assertNotEquals(a.groupId(), fresh.groupId(), "a vanished group id is not handed out again");
    }
}
