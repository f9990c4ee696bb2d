package org.iommulab.vmm.internal;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.iommulab.api.idxd.Dsa;
import org.iommulab.api.idxd.Dsa.CompletionRecord;
import org.iommulab.api.idxd.Mdev;
import org.iommulab.api.idxd.SubmitStatus;
import org.iommulab.api.translation.Access;
import org.iommulab.api.translation.Translation;
import org.iommulab.api.vmm.GuestProcess;
import org.iommulab.api.vmm.Vm;
import org.junit.jupiter.api.Test;

/**
 * vSVA end to end on VT-d: a guest binds a process through its virtual IOMMU, the VMM's traps make
 * the host bind it nested through VFIO, the guest's MEMMOVE by guest PASID lands in guest memory, a
 * page-out with invalidation makes the next descriptor fault and a guest page request resolves it.
 */
class VtdVsvaTest extends VsvaTestBase {
    @Override
    String vendor() {
        return "vtd";
    }

    @Test
    void aGuestProcessSharesItsAddressSpaceWithAnMdevThroughItsVirtualIommu() throws Exception {
        Vm vm = vmm.create("vm1", hostName(), 64 * MB);
        Mdev mdev = vm.assignMdev("dsa0", 0, VRID);
        vm.guest().probeDevice(VRID);
        GuestProcess p = vm.guest().startProcess("app");
        assertTrue(stack.pasids.set("vm1").orElseThrow().contains(p.pasid()), "the guest's PASID is the VM's host PASID");
        p.map(SRC, 4 * 4096);
        p.map(DST, 4 * 4096);
        p.map(COMP, 4096);
        byte[] data = random(4 * 4096, 1);
        p.write(SRC, data);

        p.bind(VRID);
        assertTrue(vm.container().bindings().containsKey(p.pasid()), "the trap bound the guest table through VFIO");
        assertEquals(p.pgd(), vm.container().bindings().get(p.pasid()).guestPgd());
        assertEquals(p.pasid(), mdev.pasidTranslations().get(p.pasid()));
        Translation t = new Translation();
        assertTrue(host.translate(0x10, p.pasid(), SRC, Access.READ, t), "the host walks GVA -> GPA -> HPA: " + t);

        CompletionRecord c = run(p, Dsa.descriptor(Dsa.OP_MEMMOVE).addr1(SRC).addr2(DST).size(data.length));
        assertEquals(Dsa.COMP_SUCCESS, c.status(), c.toString());
        assertArrayEquals(data, p.read(DST, data.length), "the copy is in guest memory");

        // Page out the second destination page and invalidate: the next copy faults there, the guest
        // gets the page request through its virtual IOMMU, pages in, answers, and the copy completes.
        p.pageOut(DST + 4096, 4096);
        assertFalse(host.translate(0x10, p.pasid(), DST + 4096, Access.WRITE, t), "the host saw the invalidation");
        byte[] more = random(4 * 4096, 2);
        p.write(SRC, more);
        c = run(p, Dsa.descriptor(Dsa.OP_MEMMOVE).flags(Dsa.FLAG_BOF).addr1(SRC).addr2(DST).size(more.length));
        assertEquals(Dsa.COMP_SUCCESS, c.status(), c.toString());
        assertEquals(1, vm.guest().pageRequestsHandled());
        assertArrayEquals(more, p.read(DST, more.length));
        String journal = String.join("\n", vm.takeJournal());
        assertTrue(journal.contains("VFIO BIND_PGTBL"), journal);
        assertTrue(journal.contains("VFIO CACHE_INVLD"), journal);
        assertTrue(journal.contains("injected into the guest's virtual IOMMU"), journal);
        assertTrue(journal.contains("guest page response SUCCESS"), journal);

        p.unbind(VRID);
        assertTrue(vm.container().bindings().isEmpty(), "the guest's unbind reached the host");
        assertFalse(host.translate(0x10, p.pasid(), SRC, Access.READ, t));
        assertEquals(SubmitStatus.REJECTED, p.enqcmd(VRID, Dsa.descriptor(Dsa.OP_NOOP).build()),
                "the PASID translation went with the binding");
    }

    @Test
    void aGuestThatForgetsToInvalidateSeesTheStaleTranslation() throws Exception {
        Vm vm = vmm.create("vm1", hostName(), 64 * MB);
        vm.assignMdev("dsa0", 0, VRID);
        vm.guest().probeDevice(VRID);
        GuestProcess p = vm.guest().startProcess("app");
        p.map(DST, 4096);
        p.map(COMP, 4096);
        p.bind(VRID);
        Translation t = new Translation();
        assertTrue(host.translate(0x10, p.pasid(), DST, Access.WRITE, t));
        long hpa = t.outputAddress();
        p.pageOutWithoutInvalidation(DST, 4096);
        assertTrue(host.translate(0x10, p.pasid(), DST, Access.WRITE, t), "the IOTLB still holds it, as on hardware");
        assertEquals(hpa, t.outputAddress());
        p.pageOut(COMP, 4096);
        vm.container().cacheInvalidate(org.iommulab.api.invalidation.CacheInvalidation.pasid(
                java.util.Set.of(org.iommulab.api.invalidation.CacheType.IOTLB), p.pasid(), -1));
        assertFalse(host.translate(0x10, p.pasid(), DST, Access.WRITE, t), "gone once invalidated");
    }

    @Test
    void aVmCannotReachAnotherVmsMemoryNorItsPasids() throws Exception {
        Vm a = vmm.create("vm1", hostName(), 32 * MB);
        Vm b = vmm.create("vm2", hostName(), 32 * MB);
        Mdev ma = a.assignMdev("dsa0", 0, VRID);
        Mdev mb = b.assignMdev("dsa0", 0, VRID);
        a.guest().probeDevice(VRID);
        b.guest().probeDevice(VRID);
        GuestProcess pa = a.guest().startProcess("app");
        GuestProcess pb = b.guest().startProcess("app");
        for (GuestProcess p : new GuestProcess[] {pa, pb}) {
            p.map(SRC, 4096);
            p.map(DST, 4096);
            p.map(COMP, 4096);
            p.bind(VRID);
        }
        pa.write(SRC, random(4096, 3));
        pb.write(SRC, random(4096, 4));
        assertEquals(Dsa.COMP_SUCCESS, run(pa, Dsa.descriptor(Dsa.OP_MEMMOVE).addr1(SRC).addr2(DST).size(4096)).status());
        assertEquals(Dsa.COMP_SUCCESS, run(pb, Dsa.descriptor(Dsa.OP_MEMMOVE).addr1(SRC).addr2(DST).size(4096)).status());
        assertArrayEquals(random(4096, 3), pa.read(DST, 4096));
        assertArrayEquals(random(4096, 4), pb.read(DST, 4096));
        assertTrue(pa.pasid() != pb.pasid());
        assertEquals(org.iommulab.api.errno.Errno.EPERM, org.junit.jupiter.api.Assertions.assertThrows(
                org.iommulab.api.errno.IommuException.class, () -> ma.mapGuestPasid(77, pb.pasid())).errno(),
                "VM 1 cannot take VM 2's PASID");
        assertEquals(SubmitStatus.REJECTED, ma.enqcmd(Dsa.descriptor(Dsa.OP_NOOP).build(), pb.pasid()),
                "a guest PASID VM 1 was never given");
        assertTrue(mb.pasidTranslations().containsKey(pb.pasid()));
    }

    @Test
    void aGuestCannotAnswerAPageRequestItWasNeverGiven() throws Exception {
        Vm vm = vmm.create("vm1", hostName(), 32 * MB);
        vm.assignMdev("dsa0", 0, VRID);
        vm.guest().probeDevice(VRID);
        vm.takeJournal();
        // A crafted page group response (what a raw descriptor in the guest's queue would trap as).
        ((VmImpl) vm).pageResponse(VRID, 7, 42, org.iommulab.api.fault.PageResponse.INVALID);
        assertTrue(String.join("\n", vm.takeJournal()).contains("ignored: no such request was injected"));
    }

    @Test
    void aBoundEntryChangedInPlaceIsRebound() throws Exception {
        Vm vm = vmm.create("vm1", hostName(), 32 * MB);
        vm.assignMdev("dsa0", 0, VRID);
        vm.guest().probeDevice(VRID);
        GuestProcess p = vm.guest().startProcess("app");
        p.bind(VRID);
        org.iommulab.api.nesting.GuestPasidBind moved = new org.iommulab.api.nesting.GuestPasidBind(
                org.iommulab.api.nesting.NestingInfo.FORMAT_INTEL_VTD, p.pasid(), p.pasid(), true, p.pgd() + 0x1000, 48, 0, 0, 0);
        ((VmImpl) vm).pasidEntryChanged(VRID, p.pasid(), java.util.Optional.of(moved));
        assertEquals(p.pgd() + 0x1000, vm.container().bindings().get(p.pasid()).guestPgd(), "the host follows the new root");
        assertEquals(p.pasid(), vm.devices().get(0).pasidTranslations().get(p.pasid()));
    }

    /**
     * The migration case: the VM moves to a fresh VFIO container while two guest processes are
     * bound; the host PASIDs the guest was handed keep their values (fixed allocation), the
     * bindings and mappings follow, the old container is closed, and DMA by both PASIDs works
     * afterwards, page requests included.
     */
    @Test
    void aVmMovesToAFreshContainerKeepingItsPasids() throws Exception {
        Vm vm = vmm.create("vm1", hostName(), 64 * MB);
        Mdev mdev = vm.assignMdev("dsa0", 0, VRID);
        vm.guest().probeDevice(VRID);
        GuestProcess p1 = vm.guest().startProcess("app1");
        GuestProcess p2 = vm.guest().startProcess("app2");
        for (GuestProcess p : new GuestProcess[] {p1, p2}) {
            p.map(SRC, 2 * 4096);
            p.map(DST, 2 * 4096);
            p.map(COMP, 4096);
            p.bind(VRID);
        }
        // Another VM takes PASIDs meanwhile: a plain allocation after the move would get other values.
        Vm other = vmm.create("vm2", hostName(), 32 * MB);
        other.assignMdev("dsa0", 0, VRID);
        other.guest().probeDevice(VRID);
        other.guest().startProcess("app");

        org.iommulab.api.vfio.VfioContainer old = vm.container();
        java.util.Map<Integer, org.iommulab.api.nesting.GuestPasidBind> bindings = old.bindings();
        java.util.List<org.iommulab.api.vfio.DmaMapping> mappings = old.mappings();
        vm.moveToFreshContainer();

        org.iommulab.api.vfio.VfioContainer fresh = vm.container();
        assertTrue(old.isClosed());
        assertTrue(fresh.id() != old.id());
        assertEquals(bindings, fresh.bindings(), "same host PASIDs, same guest tables");
        assertEquals(mappings, fresh.mappings());
        assertTrue(stack.pasids.set("vm1").orElseThrow().contains(p1.pasid()));
        assertTrue(stack.pasids.set("vm1").orElseThrow().contains(p2.pasid()));
        assertEquals(p1.pasid(), mdev.pasidTranslations().get(p1.pasid()));
        assertTrue(String.join("\n", vm.takeJournal()).contains("moved to fresh VFIO container"));

        for (GuestProcess p : new GuestProcess[] {p1, p2}) {
            byte[] data = random(2 * 4096, p.pasid());
            p.write(SRC, data);
            CompletionRecord c = run(p, Dsa.descriptor(Dsa.OP_MEMMOVE).addr1(SRC).addr2(DST).size(data.length));
            assertEquals(Dsa.COMP_SUCCESS, c.status(), c.toString());
            assertArrayEquals(data, p.read(DST, data.length));
        }
        // Demand paging through the guest still works on the fresh container.
        p1.pageOut(DST + 4096, 4096);
        CompletionRecord c = run(p1, Dsa.descriptor(Dsa.OP_MEMMOVE).flags(Dsa.FLAG_BOF).addr1(SRC).addr2(DST).size(2 * 4096));
        assertEquals(Dsa.COMP_SUCCESS, c.status(), c.toString());

        // The guest unbinds as usual; the fresh container follows.
        p2.unbind(VRID);
        assertFalse(fresh.bindings().containsKey(p2.pasid()));
    }

    /**
     * A live update of the VT-d backend under a running VM: guest DMA goes on in another thread
     * while the host IOMMU and the VM's virtual IOMMU are handed over to a new backend object and
     * resumed. Not one descriptor fails, the PASIDs and bindings stay, no frame is allocated or
     * freed by the update, and afterwards the guest's unbind, the VFIO container and page requests
     * all work through the new build.
     */
    @Test
    void aLiveUpdateOfTheBackendUnderARunningVmLosesNothing() throws Exception {
        Vm vm = vmm.create("vm1", hostName(), 64 * MB);
        Mdev mdev = vm.assignMdev("dsa0", 0, VRID);
        vm.guest().probeDevice(VRID);
        GuestProcess p = vm.guest().startProcess("app");
        p.map(SRC, 2 * 4096);
        p.map(DST, 2 * 4096);
        p.map(COMP, 4096);
        p.bind(VRID);
        byte[] data = random(2 * 4096, 11);
        p.write(SRC, data);
        java.util.List<String> carried = liveUpdateUnderLoad(p, data.length);
        assertEquals(java.util.List.of("vtd0", "vm1-viommu"), carried);
        assertEquals(1, stack.bundleUpdates.get());
        assertTrue(stack.registry.instance("vtd0").orElseThrow() == host, "consumers keep the same instance object");
        assertArrayEquals(data, p.read(DST, data.length));
        assertEquals(p.pasid(), mdev.pasidTranslations().get(p.pasid()));

        // The new build serves the guest's page requests and unbind, and VFIO's calls.
        p.pageOut(DST + 4096, 4096);
        CompletionRecord c = run(p, Dsa.descriptor(Dsa.OP_MEMMOVE).flags(Dsa.FLAG_BOF).addr1(SRC).addr2(DST).size(data.length));
        assertEquals(Dsa.COMP_SUCCESS, c.status(), c.toString());
        assertTrue(vm.guest().pageRequestsHandled() >= 1);
        p.unbind(VRID);
        assertFalse(vm.container().bindings().containsKey(p.pasid()), "the guest's unbind went through the new builds");
        Translation t = new Translation();
        assertFalse(host.translate(0x10, p.pasid(), SRC, Access.READ, t));
        vmm.destroy("vm1");
    }
}
