package org.iommulab.launcher.internal.demo;

import static org.iommulab.launcher.internal.demo.PlatformDemo.expect;

import java.io.PrintStream;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Random;

import org.iommulab.api.dto.WalkStepDTO;
import org.iommulab.api.errno.IommuException;
import org.iommulab.api.idxd.Dsa;
import org.iommulab.api.idxd.Dsa.CompletionRecord;
import org.iommulab.api.idxd.IdxdDevice;
import org.iommulab.api.idxd.IdxdService;
import org.iommulab.api.idxd.Mdev;
import org.iommulab.api.idxd.SubmitStatus;
import org.iommulab.api.idxd.WorkQueueConfig;
import org.iommulab.api.spi.IommuInstance;
import org.iommulab.api.spi.IommuRegistry;
import org.iommulab.api.translation.Access;
import org.iommulab.api.vmm.GuestProcess;
import org.iommulab.api.vmm.Vm;
import org.iommulab.api.vmm.VmManager;

/**
 * The main story: a guest with a virtual IOMMU doing vSVA end to end on one vendor's IOMMU. A VM
 * gets an IDXD mdev; its guest allocates a PASID, builds a process page table, binds it through
 * its virtual IOMMU (trapped and replayed through VFIO), submits a MEMMOVE by guest PASID with
 * virtual addresses, pages a destination page out, and the next descriptor faults and is resolved
 * by a page request the guest answers. Every step is printed and checked; everything it creates
 * is removed at the end.
 */
final class VsvaDemo {
    private static final int VIRTUAL_RID = 0x0008; // 00:01.0 in the guest
    private static final int HOST_RID = 0x0010;    // 00:02.0 on the host
    private static final long SRC = 0x7000_0000_0000L;
    private static final long DST = 0x7000_0010_0000L;
    private static final long COMP = 0x7000_0020_0000L;
    private static final int SIZE = 4 * 4096;

    private final IommuRegistry registry;
    private final IdxdService idxd;
    private final VmManager vmm;
    private final PrintStream out;

    VsvaDemo(IommuRegistry registry, IdxdService idxd, VmManager vmm, PrintStream out) {
        this.registry = registry;
        this.idxd = idxd;
        this.vmm = vmm;
        this.out = out;
    }

    void run(String vendor) throws IommuException, InterruptedException {
        String tag = "demo-" + vendor;
        boolean smmu = vendor.equals("smmuv3");
        out.printf("== vSVA on %s: a guest shares a process address space with %s ==%n", vendor,
                smmu ? "a whole IDXD device (its CD table handed to the host)" : "an IDXD mdev");
        IommuInstance host = registry.create(vendor, tag + "-iommu", Map.of());
        try {
            IdxdDevice dsa = idxd.create(tag + "-dsa", host.name(), HOST_RID);
            try {
                dsa.configure(0, WorkQueueConfig.shared(16));
                dsa.enable();
                dsa.enableWq(0);
                out.printf("[host] IOMMU %s, DSA %s at rid 0x%04x, shared work queue 0 (16 entries, block on fault)%n",
                        host.name(), dsa.name(), HOST_RID);
                Vm vm = vmm.create(tag + "-vm", host.name(), 64L << 20);
                try {
                    story(host, dsa, vm, smmu);
                } finally {
                    vmm.destroy(vm.name());
                    out.println("[vmm] VM shut down: container closed, PASIDs freed, memory released");
                }
            } finally {
                idxd.destroy(tag + "-dsa");
            }
        } finally {
            registry.destroy(host.name());
        }
    }

    private void story(IommuInstance host, IdxdDevice dsa, Vm vm, boolean smmu) throws IommuException, InterruptedException {
        journal(vm);
        if (smmu) {
            vm.assignDevice(dsa.name(), VIRTUAL_RID);
        } else {
            vm.assignMdev(dsa.name(), 0, VIRTUAL_RID);
        }
        journal(vm);
        vm.guest().probeDevice(VIRTUAL_RID);
        journal(vm);
        GuestProcess p = vm.guest().startProcess("app");
        journal(vm);
        p.map(SRC, SIZE);
        p.map(DST, SIZE);
        p.map(COMP, 4096);
        out.printf("[guest] page table of app: GVA 0x%x (source), 0x%x (destination), 0x%x (completion), 4 KiB pages%n",
                SRC, DST, COMP);
        p.bind(VIRTUAL_RID);
        journal(vm);
        for (WalkStepDTO step : host.explain(HOST_RID, p.pasid(), SRC, Access.READ)) {
            if (step.toString().contains("PASID entry") || step.toString().contains("STE ")) {
                out.println("[host] " + step.toString().trim());
            }
        }

        byte[] data = new byte[SIZE];
        new Random(2020).nextBytes(data);
        p.write(SRC, data);
        CompletionRecord c = copy(p, dsa, false);
        expect(c.status() == Dsa.COMP_SUCCESS, "the MEMMOVE did not succeed: " + c);
        expect(Arrays.equals(data, p.read(DST, SIZE)), "the copy differs from the source");
        out.printf("[guest] MEMMOVE of %d bytes by ENQCMD with %s %d: %s; the destination matches the source%n",
                SIZE, smmu ? "substream" : "PASID", p.pasid(), c);

        liveUpdate(host, dsa, vm, p);

        p.pageOut(DST + 4096, 4096);
        journal(vm);
        new Random(2021).nextBytes(data);
        p.write(SRC, data);
        c = copy(p, dsa, true);
        journal(vm);
        expect(c.status() == Dsa.COMP_SUCCESS, "the MEMMOVE after the page-out did not succeed: " + c);
        expect(vm.guest().pageRequestsHandled() == 1, "the guest answered " + vm.guest().pageRequestsHandled()
                + " page requests, not 1");
        expect(Arrays.equals(data, p.read(DST, SIZE)), "the second copy differs from the source");
        out.printf("[guest] MEMMOVE with block-on-fault: %s after %d page request; the destination matches%n", c,
                vm.guest().pageRequestsHandled());

        p.unbind(VIRTUAL_RID);
        journal(vm);
        if (smmu) {
            // The device still takes the descriptor; its DMA finds no valid CD for the substream.
            expect(dsa.enqcmd(0, Dsa.descriptor(Dsa.OP_MEMFILL).addr1(0).addr2(DST).size(64).build(), p.pasid(), false)
                    == SubmitStatus.ACCEPTED, "the device refused a descriptor");
            expect(dsa.awaitIdle(30_000), "the device did not finish");
            expect(host.explain(HOST_RID, p.pasid(), DST, Access.WRITE).stream()
                    .anyMatch(step -> step.toString().contains("fault")), "an unbound substream still translates");
            out.printf("[guest] after unbind, DMA with substream %d faults on the host (no valid CD)%n", p.pasid());
        } else {
            Mdev mdev = vm.devices().get(0);
            expect(mdev.enqcmd(Dsa.descriptor(Dsa.OP_NOOP).build(), p.pasid()) == SubmitStatus.REJECTED,
                    "an unbound PASID still reached the device");
            out.printf("[guest] after unbind, ENQCMD with PASID %d is rejected%n", p.pasid());
        }
    }

    /**
     * The backend bundle is replaced by a new build (a new bundle revision) while the VM runs: the
     * host IOMMU and the VM's virtual IOMMU are handed over and resumed; the guest's next copy goes
     * through the new build without the guest noticing.
     */
    private void liveUpdate(IommuInstance host, IdxdDevice dsa, Vm vm, GuestProcess p)
            throws IommuException, InterruptedException {
        long start = System.nanoTime();
        List<String> carried = registry.liveUpdate(host.vendor(), null);
        long micros = (System.nanoTime() - start) / 1000;
        expect(carried.contains(host.name()) && carried.contains(vm.viommu().name()),
                "the live update did not carry " + host.name() + " and " + vm.viommu().name() + ": " + carried);
        expect(registry.instance(host.name()).orElse(null) == host, "the host IOMMU is not the same object");
        out.printf("[host] live update: the %s backend bundle replaced by a new build in %d us; %s handed over and resumed%n",
                host.vendor(), micros, String.join(" and ", carried));
        byte[] data = new byte[SIZE];
        new Random(2022).nextBytes(data);
        p.write(SRC, data);
        CompletionRecord c = copy(p, dsa, false);
        expect(c.status() == Dsa.COMP_SUCCESS, "the MEMMOVE after the live update did not succeed: " + c);
        expect(Arrays.equals(data, p.read(DST, SIZE)), "the copy after the live update differs from the source");
        out.printf("[guest] MEMMOVE after the update, same %s %d: %s; the destination matches%n",
                host.vendor().equals("smmuv3") ? "substream" : "PASID", p.pasid(), c);
    }

    private CompletionRecord copy(GuestProcess p, IdxdDevice dsa, boolean blockOnFault)
            throws IommuException, InterruptedException {
        p.write(COMP, new byte[32]);
        Dsa.Builder d = Dsa.descriptor(Dsa.OP_MEMMOVE).addr1(SRC).addr2(DST).size(SIZE).completion(COMP);
        if (blockOnFault) {
            d.flags(Dsa.FLAG_BOF | Dsa.FLAG_CRAV | Dsa.FLAG_RCR);
        }
        SubmitStatus s = p.enqcmd(VIRTUAL_RID, d.build());
        expect(s == SubmitStatus.ACCEPTED, "ENQCMD answered " + s);
        expect(dsa.awaitIdle(30_000), "the device did not finish");
        return CompletionRecord.decode(p.read(COMP, 32));
    }

    private void journal(Vm vm) {
        for (String line : vm.takeJournal()) {
            out.println("[vmm] " + line);
        }
    }
}
