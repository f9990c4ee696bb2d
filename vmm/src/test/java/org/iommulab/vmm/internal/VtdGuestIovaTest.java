package org.iommulab.vmm.internal;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.iommulab.api.errno.Errno;
import org.iommulab.api.errno.IommuException;
import org.iommulab.api.idxd.Dsa;
import org.iommulab.api.idxd.Dsa.CompletionRecord;
import org.iommulab.api.idxd.IdxdDevice;
import org.iommulab.api.idxd.SubmitStatus;
import org.iommulab.api.nesting.GuestPasidBind;
import org.iommulab.api.nesting.NestingInfo;
import org.iommulab.api.pasid.Pasids;
import org.iommulab.api.translation.Access;
import org.iommulab.api.translation.Translation;
import org.iommulab.api.vmm.Vm;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * Guest IOVA over first stage on VT-d: the guest's driver turns DMA remapping on for a whole
 * assigned DSA, its RID_PASID entry with a first-stage table becomes VFIO BIND_PGTBL for PASID 0,
 * and the DSA's dedicated work queue without PASID copies at guest IOVAs, IOVA -> GPA -> HPA. A
 * guest unmap makes the next descriptor fault; its page request is answered INVALID by the host
 * at once, never injected; turning remapping off restores the second-stage-only entry.
 */
class VtdGuestIovaTest extends VsvaTestBase {
    static final int IOVA_RID = 0x20;
    /** IOVAs beyond the guest's RAM: without the guest's table the device could not reach them. */
    static final long SRC_IOVA = 0x1_0000_0000L;
    static final long DST_IOVA = 0x1_0010_0000L;
    static final long COMP_IOVA = 0x1_0020_0000L;

    IdxdDevice dsa1;
    final Translation t = new Translation();

    @Override
    String vendor() {
        return "vtd";
    }

    @BeforeEach
    void iovaDevice() throws Exception {
        dsa1 = noPasidQueueDevice("dsa1", IOVA_RID);
    }

    /** @return the host address the device's requests without PASID reach at {@code address}, or -1 */
    long noPasid(long address, int access) {
        return host.translate(IOVA_RID, Pasids.NO_PASID, address, access, t) ? t.outputAddress() : -1;
    }

    /** MOVDIR64B to the whole device's dedicated portal (the guest's write reaches the device as it is). */
    CompletionRecord movdir64b(Vm vm, GuestDma dma, Dsa.Builder d) throws Exception {
        long comp = dma.gpa(COMP_IOVA);
        vm.guestMemory().write(comp, new byte[32], 0, 32);
        assertEquals(SubmitStatus.ACCEPTED, dsa1.movdir64b(0, d.completion(COMP_IOVA).build()));
        assertTrue(dsa1.awaitIdle(20_000));
        byte[] record = new byte[32];
        vm.guestMemory().read(comp, record, 0, 32);
        return CompletionRecord.decode(record);
    }

    Vm vmWithDevice() throws Exception {
        Vm vm = vmm.create("vm1", hostName(), 64 * MB);
        vm.assignDevice("dsa1", VRID);
        vm.guest().probeDevice(VRID);
        return vm;
    }

    static GuestKernelImpl kernel(Vm vm) {
        return (GuestKernelImpl) vm.guest();
    }

    @Test
    void aDmaWithoutPasidAtAGuestIovaLandsInGuestMemoryAndUnmapMakesItFault() throws Exception {
        Vm vm = vmWithDevice();
        assertTrue(noPasid(0x10_0000, Access.READ) >= 0, "before: second stage only (GPA = IOVA)");
        assertEquals(-1, noPasid(SRC_IOVA, Access.READ));

        GuestDma dma = kernel(vm).enableDma(VRID);
        GuestPasidBind bound = vm.container().bindings().get(Pasids.RESERVED_PASID);
        assertTrue(bound != null, "the trap bound the guest's RID_PASID table: " + vm.container().bindings());
        long src = dma.map(SRC_IOVA, 2 * 4096);
        long dst = dma.map(DST_IOVA, 2 * 4096);
        dma.map(COMP_IOVA, 4096);
        assertTrue(noPasid(SRC_IOVA, Access.READ) >= 0, "IOVA -> GPA -> HPA: " + t);
        assertEquals(-1, noPasid(0x10_0000, Access.READ), "the guest's table decides now");

        byte[] data = random(2 * 4096, 21);
        vm.guestMemory().write(src, data, 0, data.length);
        CompletionRecord c = movdir64b(vm, dma, Dsa.descriptor(Dsa.OP_MEMMOVE).addr1(SRC_IOVA).addr2(DST_IOVA).size(data.length));
        assertEquals(Dsa.COMP_SUCCESS, c.status(), c.toString());
        byte[] copied = new byte[data.length];
        vm.guestMemory().read(dst, copied, 0, copied.length);
        assertArrayEquals(data, copied, "the copy is at the guest pages the IOVAs map");
        assertEquals(dst + 4096, dma.gpa(DST_IOVA + 4096));
        long hpa = noPasid(DST_IOVA + 4096, Access.WRITE);
        assertTrue(hpa >= 0);
        byte[] viaHost = new byte[4096];
        stack.memory.read(hpa, viaHost, 0, 4096);
        assertArrayEquals(java.util.Arrays.copyOfRange(data, 4096, 8192), viaHost, "the right host page");

        // Guest unmap + invalidation (the guest driver's PASID-based IOTLB flush for PASID 0).
        vm.takeJournal();
        dma.unmap(DST_IOVA + 4096, 4096);
        assertEquals(-1, noPasid(DST_IOVA + 4096, Access.WRITE), "the guest's invalidation reached the host");
        String journal = String.join("\n", vm.takeJournal());
        assertTrue(journal.contains("VFIO CACHE_INVLD"), journal);
        c = movdir64b(vm, dma, Dsa.descriptor(Dsa.OP_MEMMOVE).addr1(SRC_IOVA).addr2(DST_IOVA).size(data.length));
        assertEquals(Dsa.COMP_PAGE_FAULT_NOBOF, c.status() & ~Dsa.COMP_STATUS_WRITE, c.toString());
        assertEquals(DST_IOVA + 4096, c.faultAddress(), c.toString());
    }

    @Test
    void pageRequestsWithoutPasidAreAnsweredInvalidByTheHostOnceAndNeverInjected() throws Exception {
        Vm vm = vmWithDevice();
        GuestDma dma = kernel(vm).enableDma(VRID);
        dma.map(SRC_IOVA, 4096);
        dma.map(DST_IOVA, 4096);
        dma.map(COMP_IOVA, 4096);
        dma.unmap(DST_IOVA, 4096);
        vm.takeJournal();
        long started = System.nanoTime();
        for (int i = 0; i < 3; i++) {
            CompletionRecord c = movdir64b(vm, dma,
                    Dsa.descriptor(Dsa.OP_MEMMOVE).flags(Dsa.FLAG_BOF).addr1(SRC_IOVA).addr2(DST_IOVA).size(4096));
            assertEquals(Dsa.COMP_PAGE_FAULT_IR, c.status() & ~Dsa.COMP_STATUS_WRITE, "the device's page-fault status, no hang: " + c);
        }
        assertTrue(System.nanoTime() - started < 5_000_000_000L, "answered at once, not after the device's timeout");
        java.util.Map<String, Long> stats = dsa1.statistics();
        assertEquals(3L, stats.get("page-requests"));
        assertEquals(3L, stats.get("page-responses.invalid"), "exactly one INVALID answer per request: " + stats);
        assertEquals(null, stats.get("page-request-timeouts"), stats.toString());
        assertEquals(3L, ((VmImpl) vm).iovaPageRequests());
        assertEquals(0, vm.guest().pageRequestsHandled(), "the guest never saw them");
        String journal = String.join("\n", vm.takeJournal());
        assertTrue(journal.contains("answered INVALID by the host, not injected"), journal);
        assertFalse(journal.contains("injected into the guest's virtual IOMMU"), journal);
    }

    @Test
    void turningRemappingOffUnbindsAndRestoresTheSecondStageOnlyEntry() throws Exception {
        Vm vm = vmWithDevice();
        long before = noPasid(0x10_0000, Access.READ);
        GuestDma dma = kernel(vm).enableDma(VRID);
        dma.map(SRC_IOVA, 4096);
        assertTrue(noPasid(SRC_IOVA, Access.READ) >= 0);
        vm.takeJournal();

        kernel(vm).disableDma(VRID);
        assertTrue(vm.container().bindings().isEmpty(), "the guest's cleared RID_PASID entry unbound it");
        assertEquals(-1, noPasid(SRC_IOVA, Access.READ), "no IOVA after the unbind");
        assertEquals(before, noPasid(0x10_0000, Access.READ), "second stage only, as before");
        assertTrue(String.join("\n", vm.takeJournal()).contains("VFIO UNBIND_PGTBL (RID_PASID"));

        // On again: a new table, bound again.
        GuestDma again = kernel(vm).enableDma(VRID);
        assertEquals(again.gpa(SRC_IOVA), -1L);
        assertTrue(vm.container().bindings().containsKey(Pasids.RESERVED_PASID));
        assertEquals(Errno.EBUSY, assertThrows(IommuException.class, () -> kernel(vm).enableDma(VRID)).errno());
    }

    @Test
    void refusedBindsOfPasidZeroChangeNothing() throws Exception {
        Vm vm = vmWithDevice();
        GuestDma dma = kernel(vm).enableDma(VRID);
        dma.map(SRC_IOVA, 4096);
        long hpa = noPasid(SRC_IOVA, Access.READ);
        GuestPasidBind bound = vm.container().bindings().get(Pasids.RESERVED_PASID);
        GuestPasidBind other = new GuestPasidBind(NestingInfo.FORMAT_INTEL_VTD, 0, 0, true, bound.guestPgd() + 0x1000, 48, 0, 0, 0);
        assertEquals(Errno.EBUSY, assertThrows(IommuException.class, () -> vm.container().bindGuestPageTable(other)).errno(),
                "double bind");
        assertEquals(bound, vm.container().bindings().get(Pasids.RESERVED_PASID));
        assertEquals(hpa, noPasid(SRC_IOVA, Access.READ), "the host entry is unchanged");

        // The guest programs PASID 0 for a requester the VM does not hold: nothing reaches the host.
        ((VmImpl) vm).pasidEntryChanged(VRID + 1, 0, java.util.Optional.of(other));
        assertEquals(bound, vm.container().bindings().get(Pasids.RESERVED_PASID));
        assertEquals(hpa, noPasid(SRC_IOVA, Access.READ));
    }

    /**
     * An mdev's DMA always carries a host PASID (its default PASID for the guest's requests without
     * PASID), so its guest RID_PASID is not bound: VFIO refuses PASID 0 with EPERM, the VMM logs
     * it, and the parent's requests without PASID are untouched.
     */
    @Test
    void anMdevsGuestIovaIsRefusedWithEperm() throws Exception {
        Vm vm = vmm.create("vm1", hostName(), 64 * MB);
        vm.assignMdev("dsa0", 0, VRID);
        vm.guest().probeDevice(VRID);
        boolean parentBefore = host.translate(0x10, Pasids.NO_PASID, 0x10_0000, Access.READ, t);
        vm.takeJournal();
        GuestDma dma = kernel(vm).enableDma(VRID);
        dma.map(SRC_IOVA, 4096);
        assertTrue(vm.container().bindings().isEmpty(), "not bound: " + vm.container().bindings());
        String journal = String.join("\n", vm.takeJournal());
        assertTrue(journal.contains("PASID 0: the host refused"), journal);
        assertEquals(parentBefore, host.translate(0x10, Pasids.NO_PASID, 0x10_0000, Access.READ, t));
        assertFalse(host.translate(0x10, Pasids.NO_PASID, SRC_IOVA, Access.READ, t));
        GuestPasidBind bind = new GuestPasidBind(NestingInfo.FORMAT_INTEL_VTD, 0, 0, true, 0x1000, 48, 0, 0, 0);
        assertEquals(Errno.EPERM, assertThrows(IommuException.class, () -> vm.container().bindGuestPageTable(bind)).errno());
        assertTrue(vm.devices().get(0).pasidTranslations().isEmpty(), "no guest PASID 0 translation on the mdev");
    }

    /** The VM moves to a fresh container: the RID_PASID binding follows and IOVA DMA goes on. */
    @Test
    void theRidPasidBindingFollowsAMoveToAFreshContainer() throws Exception {
        Vm vm = vmWithDevice();
        GuestDma dma = kernel(vm).enableDma(VRID);
        long src = dma.map(SRC_IOVA, 4096);
        long dst = dma.map(DST_IOVA, 4096);
        dma.map(COMP_IOVA, 4096);
        vm.moveToFreshContainer();
        assertTrue(vm.container().bindings().containsKey(Pasids.RESERVED_PASID));
        byte[] data = random(4096, 22);
        vm.guestMemory().write(src, data, 0, data.length);
        CompletionRecord c = movdir64b(vm, dma, Dsa.descriptor(Dsa.OP_MEMMOVE).addr1(SRC_IOVA).addr2(DST_IOVA).size(4096));
        assertEquals(Dsa.COMP_SUCCESS, c.status(), c.toString());
        byte[] copied = new byte[4096];
        vm.guestMemory().read(dst, copied, 0, 4096);
        assertArrayEquals(data, copied);
    }
}
