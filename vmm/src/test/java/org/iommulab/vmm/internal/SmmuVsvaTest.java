package org.iommulab.vmm.internal;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.iommulab.api.idxd.Dsa;
import org.iommulab.api.idxd.Dsa.CompletionRecord;
import org.iommulab.api.nesting.PasidTableConfig;
import org.iommulab.api.translation.Access;
import org.iommulab.api.translation.Translation;
import org.iommulab.api.vmm.GuestProcess;
import org.iommulab.api.vmm.Vm;
import org.junit.jupiter.api.Test;

/**
 * vSVA end to end on SMMUv3 with a whole device: the guest's stage-1-only virtual SMMU gets a CD
 * table for the device; the VMM's trap of CFGI_STE hands that table to the host through VFIO
 * (nested STE); the guest's MEMMOVE by substream id lands in guest memory; TLBI and PRI go the same
 * way as on VT-d.
 */
class SmmuVsvaTest extends VsvaTestBase {
    @Override
    String vendor() {
        return "smmuv3";
    }

    @Test
    void aGuestProcessSharesItsAddressSpaceWithAWholeDeviceThroughItsVirtualSmmu() throws Exception {
        Vm vm = vmm.create("vm1", hostName(), 64 * MB);
        vm.assignDevice("dsa0", VRID);
        vm.guest().probeDevice(VRID);
        GuestProcess p = vm.guest().startProcess("app");
        assertEquals(1, p.pasid(), "the guest's own substream id");
        p.map(SRC, 4 * 4096);
        p.map(DST, 4 * 4096);
        p.map(COMP, 4096);
        byte[] data = random(4 * 4096, 1);
        p.write(SRC, data);

        p.bind(VRID);
        PasidTableConfig table = vm.container().pasidTable().orElseThrow();
        assertEquals(PasidTableConfig.TRANSLATE, table.config(), "the trap handed the guest's CD table to the host");
        Translation t = new Translation();
        assertTrue(host.translate(0x10, p.pasid(), SRC, Access.READ, t), "the host walks VA -> IPA -> PA: " + t);

        CompletionRecord c = run(p, Dsa.descriptor(Dsa.OP_MEMMOVE).addr1(SRC).addr2(DST).size(data.length));
        assertEquals(Dsa.COMP_SUCCESS, c.status(), c.toString());
        assertArrayEquals(data, p.read(DST, data.length));

        p.pageOut(DST + 4096, 4096);
        assertFalse(host.translate(0x10, p.pasid(), DST + 4096, Access.WRITE, t), "the guest's TLBI reached the host");
        byte[] more = random(4 * 4096, 2);
        p.write(SRC, more);
        c = run(p, Dsa.descriptor(Dsa.OP_MEMMOVE).flags(Dsa.FLAG_BOF).addr1(SRC).addr2(DST).size(more.length));
        assertEquals(Dsa.COMP_SUCCESS, c.status(), c.toString());
        assertEquals(1, vm.guest().pageRequestsHandled());
        assertArrayEquals(more, p.read(DST, more.length));
        String journal = String.join("\n", vm.takeJournal());
        assertTrue(journal.contains("VFIO SET_PASID_TABLE"), journal);
        assertTrue(journal.contains("VFIO CACHE_INVLD"), journal);
        assertTrue(journal.contains("guest page response SUCCESS"), journal);

        p.unbind(VRID);
        assertFalse(host.translate(0x10, p.pasid(), SRC, Access.READ, t), "the guest's unbind reached the host");
    }

    @Test
    void staleUntilInvalidatedAndTwoVmsStayApart() throws Exception {
        sharedQueueDevice("dsa1", 0x20);
        Vm a = vmm.create("vm1", hostName(), 32 * MB);
        Vm b = vmm.create("vm2", hostName(), 32 * MB);
        a.assignDevice("dsa0", VRID);
        b.assignDevice("dsa1", VRID);
        GuestProcess pa = start(a);
        GuestProcess pb = start(b);
        assertEquals(pa.pasid(), pb.pasid(), "both guests use substream 1 of their own device");
        pa.write(SRC, random(4096, 5));
        pb.write(SRC, random(4096, 6));
        Translation t = new Translation();
        assertTrue(host.translate(0x10, pa.pasid(), SRC, Access.READ, t));
        long aSrc = t.outputAddress();
        assertTrue(host.translate(0x20, pb.pasid(), SRC, Access.READ, t));
        assertTrue(aSrc != t.outputAddress(), "the same VA and substream reach each VM's own memory");

        // Forgetting the TLBI leaves the host's cached translation, as on hardware.
        assertTrue(host.translate(0x10, pa.pasid(), DST, Access.WRITE, t));
        long hpa = t.outputAddress();
        pa.pageOutWithoutInvalidation(DST, 4096);
        assertTrue(host.translate(0x10, pa.pasid(), DST, Access.WRITE, t));
        assertEquals(hpa, t.outputAddress(), "stale");
        pa.pageOut(COMP, 4096); // an invalidation by VA elsewhere keeps it
        assertTrue(host.translate(0x10, pa.pasid(), DST, Access.WRITE, t));
        vmm.destroy("vm1");
        assertFalse(host.translate(0x10, pa.pasid(), DST, Access.WRITE, t), "gone with the VM");
        assertTrue(host.translate(0x20, pb.pasid(), SRC, Access.READ, t), "the other VM is untouched");
    }

    private static GuestProcess start(Vm vm) throws Exception {
        vm.guest().probeDevice(VRID);
        GuestProcess p = vm.guest().startProcess("app");
        p.map(SRC, 4096);
        p.map(DST, 4096);
        p.map(COMP, 4096);
        p.bind(VRID);
        return p;
    }

    /** The VM moves to a fresh container: the guest CD table follows and DMA by substream goes on. */
    @Test
    void aVmMovesToAFreshContainerWithItsCdTable() throws Exception {
        Vm vm = vmm.create("vm1", hostName(), 64 * MB);
        GuestProcess p = boundApp(vm);
        org.iommulab.api.vfio.VfioContainer old = vm.container();
        PasidTableConfig table = old.pasidTable().orElseThrow();

        vm.moveToFreshContainer();
        assertTrue(old.isClosed());
        assertEquals(table, vm.container().pasidTable().orElseThrow(), "the guest's CD table, attached again");
        assertEquals(old.mappings().size(), 0, "the closed container holds nothing");
        byte[] data = random(2 * 4096, 5);
        p.write(SRC, data);
        CompletionRecord c = run(p, Dsa.descriptor(Dsa.OP_MEMMOVE).addr1(SRC).addr2(DST).size(data.length));
        assertEquals(Dsa.COMP_SUCCESS, c.status(), c.toString());
        assertArrayEquals(data, p.read(DST, data.length));
        p.unbind(VRID);
        Translation t = new Translation();
        assertFalse(host.translate(0x10, p.pasid(), SRC, Access.READ, t), "the guest's unbind reached the fresh container");
    }

    /** A live update of the SMMUv3 backend while the guest copies: the guest's CD table stays attached, nothing fails. */
    @Test
    void aLiveUpdateOfTheBackendUnderARunningVmLosesNothing() throws Exception {
        Vm vm = vmm.create("vm1", hostName(), 64 * MB);
        GuestProcess p = boundApp(vm);
        byte[] data = random(2 * 4096, 12);
        p.write(SRC, data);
        PasidTableConfig table = vm.container().pasidTable().orElseThrow();
        java.util.List<String> carried = liveUpdateUnderLoad(p, data.length);
        assertEquals(java.util.List.of("smmuv3" + "0", "vm1-viommu"), carried);
        assertEquals(table, vm.container().pasidTable().orElseThrow());
        p.pageOut(DST + 4096, 4096);
        CompletionRecord c = run(p, Dsa.descriptor(Dsa.OP_MEMMOVE).flags(Dsa.FLAG_BOF).addr1(SRC).addr2(DST).size(data.length));
        assertEquals(Dsa.COMP_SUCCESS, c.status(), c.toString());
        p.unbind(VRID);
        Translation t = new Translation();
        assertFalse(host.translate(0x10, p.pasid(), SRC, Access.READ, t), "the guest's unbind reached the new build");
        vmm.destroy("vm1");
    }

    /** The device assigned whole and probed; an app with two source, two destination and a completion page, bound. */
    private static GuestProcess boundApp(Vm vm) throws Exception {
        vm.assignDevice("dsa0", VRID);
        vm.guest().probeDevice(VRID);
        GuestProcess p = vm.guest().startProcess("app");
        p.map(SRC, 2 * 4096);
        p.map(DST, 2 * 4096);
        p.map(COMP, 4096);
        p.bind(VRID);
        return p;
    }
}
