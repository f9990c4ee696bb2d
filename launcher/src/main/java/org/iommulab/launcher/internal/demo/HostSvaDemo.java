package org.iommulab.launcher.internal.demo;

import static org.iommulab.launcher.internal.demo.PlatformDemo.expect;

import java.io.PrintStream;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.CopyOnWriteArrayList;

import org.iommulab.api.dto.WalkStepDTO;
import org.iommulab.api.errno.Errno;
import org.iommulab.api.errno.IommuException;
import org.iommulab.api.fault.FaultListener;
import org.iommulab.api.fault.IommuFault;
import org.iommulab.api.fault.PageRequest;
import org.iommulab.api.idxd.Dsa;
import org.iommulab.api.idxd.Dsa.CompletionRecord;
import org.iommulab.api.idxd.IdxdDevice;
import org.iommulab.api.idxd.Mdev;
import org.iommulab.api.idxd.UserWq;
import org.iommulab.api.idxd.IdxdService;
import org.iommulab.api.idxd.SubmitStatus;
import org.iommulab.api.idxd.WorkQueueConfig;
import org.iommulab.api.pasid.PasidSet;
import org.iommulab.api.pasid.PasidSpace;
import org.iommulab.api.process.HostProcess;
import org.iommulab.api.process.ProcessTable;
import org.iommulab.api.spi.DomainType;
import org.iommulab.api.spi.IommuInstance;
import org.iommulab.api.spi.IommuRegistry;
import org.iommulab.api.sva.SvaBond;
import org.iommulab.api.sva.SvaService;
import org.iommulab.api.translation.Access;

/**
 * The host SVA story ({@code demo sva}): a host process uses an IDXD device directly, as Linux's
 * idxd user work-queue character device allows. It binds its address space to the device (a
 * PASID of its set; the IOMMU walks the process's own page table), copies with a MEMMOVE it submits
 * by ENQCMD with that PASID and its own virtual addresses, then copies into a page its CPU never
 * touched: the engine's fault becomes a page request the SVA service resolves by faulting the page
 * in, and the copy completes. Unbinding ends it: the PASID is freed and a descriptor with it fails
 * without DMA. Every step is printed and checked; everything it creates is removed at the end.
 */
final class HostSvaDemo {
    private static final int RID = 0x0010;
    private static final int SIZE = 4 * 4096;

    private final IommuRegistry registry;
    private final IdxdService idxd;
    private final SvaService sva;
    private final ProcessTable processes;
    private final PasidSpace pasids;
    private final PrintStream out;

    HostSvaDemo(IommuRegistry registry, IdxdService idxd, SvaService sva, ProcessTable processes, PasidSpace pasids,
            PrintStream out) {
        this.registry = registry;
        this.idxd = idxd;
        this.sva = sva;
        this.processes = processes;
        this.pasids = pasids;
        this.out = out;
    }

    void run(String vendor) throws IommuException, InterruptedException {
        String tag = "sva-" + vendor;
        out.printf("== host SVA on %s: a host process shares its address space with an IDXD device ==%n", vendor);
        IommuInstance host = registry.create(vendor, tag + "-iommu", Map.of());
        try {
            IdxdDevice dsa = idxd.create(tag + "-dsa", host.name(), RID);
            try {
                dsa.configure(0, WorkQueueConfig.shared(16));
                dsa.configure(1, WorkQueueConfig.shared(16));
                dsa.enable();
                dsa.enableWq(0);
                dsa.enableWq(1);
                host.driver().attach(host.driver().allocateDomain(DomainType.IDENTITY), RID);
                out.printf("[host] IOMMU %s, DSA %s at rid 0x%04x in an identity domain, shared work queue 0 "
                        + "(16 entries, block on fault), opened by the process as a user work queue%n",
                        host.name(), dsa.name(), RID);
                HostProcess p = processes.create(tag + "-app", Long.MAX_VALUE);
                PasidSet set = pasids.createSet(tag + "-app", 4);
                try {
                    story(host, dsa, p, set);
                } finally {
                    if (processes.process(p.name()).isPresent()) {
                        processes.exit(p.name());
                    }
                    set.close();
                    out.println("[host] process exited, PASID set closed");
                }
            } finally {
                idxd.destroy(tag + "-dsa");
            }
        } finally {
            registry.destroy(host.name());
        }
    }

    private void story(IommuInstance host, IdxdDevice dsa, HostProcess p, PasidSet set)
            throws IommuException, InterruptedException {
        long base = p.mmap(2L << 20);
        long src = base;
        long dst = base + 0x10000;
        long paged = base + 0x20000;
        long comp = base + 0x30000;
        byte[] data = new byte[SIZE];
        new Random(2012).nextBytes(data);
        p.write(src, data, 0, SIZE);
        p.write(dst, new byte[SIZE], 0, SIZE);
        p.write(comp, new byte[Dsa.COMP_SIZE], 0, Dsa.COMP_SIZE);
        out.printf("[%s] mmap 2 MiB at 0x%x: source 0x%x and destination 0x%x (4 pages each, touched), "
                + "completion record 0x%x%n", p.name(), base, src, dst, comp);

        SvaBond bond = sva.bind(p, host.name(), RID, set);
        out.printf("[sva] bind %s to %s:0x%04x -> PASID %d of set %s; process page table at 0x%x (%s)%n", p.name(),
                host.name(), RID, bond.pasid(), set.owner(), bond.pageTableRoot(),
                host.vendor().equals("vtd") ? "x86 4-level" : host.vendor().equals("smmuv3") ? "VMSAv8-64 stage 1" : "Sv48");
        for (WalkStepDTO step : host.explain(RID, bond.pasid(), src, Access.READ)) {
            String s = step.toString().trim();
            if (s.contains("PASID entry") || s.contains(" CD") || s.startsWith("CD")) {
                out.println("[host] " + s);
            }
        }

        UserWq queue = dsa.openUserWq(0, set, bond.pasid());
        out.printf("[idxd] %s opens work queue 0 as a user queue with PASID %d (claimed by %s)%n", p.name(), queue.pasid(),
                String.join(",", set.consumers(queue.pasid())));
        CompletionRecord c = memmove(queue, p, src, dst, SIZE, comp);
        expect(c.status() == Dsa.COMP_SUCCESS, "the MEMMOVE did not succeed: " + c);
        byte[] copy = new byte[SIZE];
        p.read(dst, copy, 0, SIZE);
        expect(Arrays.equals(data, copy), "the copy differs from the source");
        out.printf("[%s] MEMMOVE of %d bytes by ENQCMD with PASID %d, virtual addresses only: %s; "
                + "the destination matches (read 0x%016x at 0x%x)%n", p.name(), SIZE, bond.pasid(), c,
                p.read64(dst + SIZE - 8), dst + SIZE - 8);

        // A page the CPU never touched: the engine faults, asks the IOMMU, the IOPF queue answers.
        List<PageRequest> requests = new CopyOnWriteArrayList<>();
        FaultListener listener = new FaultListener() {
            @Override
            public void fault(IommuFault fault) {
            }

            @Override
            public void pageRequest(PageRequest request) {
                if (request.pasid() == bond.pasid()) {
                    requests.add(request);
                }
            }
        };
        expect(p.residentAddress(paged) == -1, "the page is resident already");
        host.driver().addFaultListener(listener);
        long resolvedBefore = bond.pageRequestsResolved();
        try {
            c = memmove(queue, p, src, paged, 4096, comp);
        } finally {
            host.driver().removeFaultListener(listener);
        }
        expect(c.status() == Dsa.COMP_SUCCESS, "the demand-paged MEMMOVE did not succeed: " + c);
        expect(requests.size() == 1, "expected one page request, saw " + requests);
        expect(bond.pageRequestsResolved() == resolvedBefore + 1, "the page request was not resolved");
        PageRequest r = requests.get(0);
        out.printf("[%s] MEMMOVE to 0x%x, a page the CPU never touched, with block on fault%n", p.name(), paged);
        out.printf("[iommu] page request: rid 0x%04x PASID %d address 0x%x %s group %d%n", r.requesterId(), r.pasid(),
                r.address(), (r.access() & Access.WRITE) != 0 ? "write" : "read", r.groupIndex());
        out.printf("[sva] IOPF queue: faulted 0x%x into %s (frame 0x%x), mapped it, answered Success "
                + "(resolved %d, invalid %d)%n", r.address() & -4096L, p.name(), p.residentAddress(paged),
                bond.pageRequestsResolved(), bond.pageRequestsInvalid());
        expect(p.read64(paged) == p.read64(src), "the demand-paged copy differs");
        out.printf("[%s] the copy completed after the fault: %s; read 0x%016x at 0x%x%n", p.name(), c, p.read64(paged),
                paged);

        int pasid = bond.pasid();
        // The PASID is a handle: a guest's mdev may not take it while the host queue uses it.
        Mdev guest = dsa.createMdev(host.name() + "-guest-mdev", 1, set);
        try {
            guest.mapGuestPasid(1, pasid);
            throw new IllegalStateException("a guest mdev was given PASID " + pasid + " of a host user queue");
        } catch (IommuException e) {
            expect(e.errno() == Errno.EPERM, "the mdev's claim failed with " + e);
            out.printf("[pasid] a guest mdev asking for PASID %d: %s (the set authorises no sharing)%n", pasid,
                    e.errno());
        } finally {
            guest.close();
        }

        bond.unbind();
        expect(!set.contains(pasid), "the PASID was not freed");
        out.printf("[sva] unbind: PASID entry torn down, caches invalidated, PASID %d freed%n", pasid);
        long swerr = dsa.statistics().getOrDefault("software-errors", 0L);
        SubmitStatus s = dsa.enqcmd(0, Dsa.descriptor(Dsa.OP_MEMMOVE).flags(Dsa.FLAG_CRAV | Dsa.FLAG_RCR).addr1(src)
                .addr2(dst).size(SIZE).completion(comp).build(), pasid, false);
        expect(dsa.awaitIdle(30_000), "the device did not finish");
        expect(s != SubmitStatus.ACCEPTED || dsa.statistics().getOrDefault("software-errors", 0L) > swerr,
                "a descriptor with the unbound PASID did not fail");
        out.printf("[%s] after unbind, a MEMMOVE with PASID %d fails without DMA (its record cannot be written: "
                + "software error)%n", p.name(), pasid);
        expect(!queue.isOpen() && queue.enqcmd(Dsa.descriptor(Dsa.OP_NOOP).build()) == SubmitStatus.REJECTED,
                "the user queue still submits with a freed PASID");
        queue.close();
        out.printf("[idxd] the user queue's PASID was revoked with it: ENQCMD rejected; queue closed%n");
    }

    private static CompletionRecord memmove(UserWq queue, HostProcess p, long src, long dst, int size, long comp)
            throws IommuException, InterruptedException {
        p.write(comp, new byte[Dsa.COMP_SIZE], 0, Dsa.COMP_SIZE);
        byte[] d = Dsa.descriptor(Dsa.OP_MEMMOVE).flags(Dsa.FLAG_BOF | Dsa.FLAG_CRAV | Dsa.FLAG_RCR).addr1(src)
                .addr2(dst).size(size).completion(comp).build();
        SubmitStatus s = queue.enqcmd(d);
        expect(s == SubmitStatus.ACCEPTED, "ENQCMD answered " + s);
        expect(queue.device().awaitIdle(30_000), "the device did not finish");
        byte[] raw = new byte[Dsa.COMP_SIZE];
        p.read(comp, raw, 0, raw.length);
        return CompletionRecord.decode(raw);
    }
}
