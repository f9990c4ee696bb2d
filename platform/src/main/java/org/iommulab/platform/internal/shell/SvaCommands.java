package org.iommulab.platform.internal.shell;

import java.util.IdentityHashMap;
import java.util.Locale;
import java.util.Map;

import org.apache.felix.service.command.Descriptor;
import org.apache.felix.service.command.Parameter;
import org.iommulab.api.errno.Errno;
import org.iommulab.api.errno.IommuException;
import org.iommulab.api.idxd.Dsa;
import org.iommulab.api.idxd.IdxdDevice;
import org.iommulab.api.idxd.IdxdService;
import org.iommulab.api.idxd.SubmitStatus;
import org.iommulab.api.idxd.UserWq;
import org.iommulab.api.pasid.PasidSet;
import org.iommulab.api.pasid.PasidSpace;
import org.iommulab.api.process.HostProcess;
import org.iommulab.api.process.ProcessTable;
import org.iommulab.api.spi.DomainType;
import org.iommulab.api.spi.IommuDomain;
import org.iommulab.api.spi.IommuDriver;
import org.iommulab.api.spi.IommuInstance;
import org.iommulab.api.spi.IommuRegistry;
import org.iommulab.api.sva.SvaBond;
import org.iommulab.api.sva.SvaService;
import org.osgi.service.component.annotations.Activate;
import org.osgi.service.component.annotations.Component;
import org.osgi.service.component.annotations.Reference;

/**
 * {@code sva:} commands: host processes (start, map, touch, swap out, exit), their binds to
 * devices (host SVA: a PASID of a set, the process's own page table walked by the IOMMU), and
 * descriptors an IDXD device runs from a process directly (a user shared work queue, ENQCMD with
 * the process's PASID, every address a virtual address of the process).
 */
@Component(service = SvaCommands.class, property = {
        "osgi.command.scope=sva",
        "osgi.command.function=process",
        "osgi.command.function=exit",
        "osgi.command.function=mmap",
        "osgi.command.function=write",
        "osgi.command.function=read",
        "osgi.command.function=swapout",
        "osgi.command.function=bind",
        "osgi.command.function=unbind",
        "osgi.command.function=list",
        "osgi.command.function=info",
        "osgi.command.function=memmove" })
public final class SvaCommands {
    private static final long WAIT_MS = 30_000;
    /** Quota of a PASID set {@code bind} creates for a process. */
    static final int DEFAULT_QUOTA = 16;

    private final SvaService sva;
    private final ProcessTable processes;
    private final IdxdService idxd;
    private final PasidSpace pasids;
    private final IommuRegistry registry;
    /** Per process: a page of its own for the completion records of {@code memmove}. */
    private final Map<HostProcess, Long> completionPages = new IdentityHashMap<>();

    /**
     * @param sva the SVA service
     * @param processes the host's processes
     * @param idxd the IDXD devices
     * @param pasids the PASID space
     * @param registry the IOMMU instances
     */
    @Activate
    public SvaCommands(@Reference SvaService sva, @Reference ProcessTable processes, @Reference IdxdService idxd,
            @Reference PasidSpace pasids, @Reference IommuRegistry registry) {
        this.sva = sva;
        this.processes = processes;
        this.idxd = idxd;
        this.pasids = pasids;
        this.registry = registry;
    }

    /**
     * @param name process name
     * @throws IommuException EEXIST
     */
    @Descriptor("start a host process (no locked-memory limit); prints its name")
    public void process(@Descriptor("process name") String name) throws IommuException {
        System.out.println(processes.create(name, Long.MAX_VALUE).name());
    }

    /**
     * @param name process name
     * @throws IommuException ENOENT
     */
    @Descriptor("end a host process: its bonds go, then its address space")
    public void exit(@Descriptor("process name") String name) throws IommuException {
        proc(name);
        processes.exit(name);
        synchronized (completionPages) {
            completionPages.keySet().removeIf(p -> p.name().equals(name));
        }
    }

    /**
     * @param name process
     * @param length bytes
     * @throws IommuException ENOENT, EINVAL, ENOMEM
     */
    @Descriptor("map anonymous memory into a process (2 MiB aligned, pages come on first touch); prints the address")
    public void mmap(@Descriptor("process name") String name, @Descriptor("length in bytes") String length)
            throws IommuException {
        System.out.println("0x" + Long.toHexString(proc(name).mmap(Numbers.u64("length", length))));
    }

    /**
     * @param name process
     * @param vaddr virtual address
     * @param value the value
     * @throws IommuException ENOENT, EFAULT
     */
    @Descriptor("the process's CPU writes 8 bytes (faulting the page in)")
    public void write(@Descriptor("process name") String name, @Descriptor("virtual address") String vaddr,
            @Descriptor("u64") String value) throws IommuException {
        proc(name).write64(Numbers.u64("vaddr", vaddr), Numbers.u64("value", value));
    }

    /**
     * @param name process
     * @param vaddr virtual address
     * @throws IommuException ENOENT, EFAULT
     */
    @Descriptor("the process's CPU reads 8 bytes; prints 0x<16 hex digits>")
    public void read(@Descriptor("process name") String name, @Descriptor("virtual address") String vaddr)
            throws IommuException {
        System.out.println(Numbers.hex64(proc(name).read64(Numbers.u64("vaddr", vaddr))));
    }

    /**
     * @param name process
     * @param vaddr virtual address
     * @param length bytes
     * @throws IommuException ENOENT, EINVAL, EFAULT
     */
    @Descriptor("swap a range of a process out (resident, unpinned pages); prints the pages swapped out")
    public void swapout(@Descriptor("process name") String name, @Descriptor("virtual address") String vaddr,
            @Descriptor("length in bytes") String length) throws IommuException {
        System.out.println(proc(name).swapOut(Numbers.u64("vaddr", vaddr), Numbers.u64("length", length)));
    }

    /**
     * @param owner PASID set owner
     * @param name process
     * @param iommu IOMMU instance
     * @param requesterId device
     * @throws IommuException what {@link SvaService#bind} answers
     */
    @Descriptor("bind a process to a device (host SVA); prints the PASID. A device without a domain gets an identity domain first")
    public void bind(
            @Descriptor("owner of the PASID set (default: the process name; created with quota 16 if new)") @Parameter(names = "--set", absentValue = "") String owner,
            @Descriptor("process name") String name, @Descriptor("IOMMU instance") String iommu,
            @Descriptor("requester id") String requesterId) throws IommuException {
        HostProcess p = proc(name);
        int rid = Numbers.u32("requester id", requesterId);
        String setOwner = owner.isEmpty() ? name : owner;
        PasidSet set = pasids.set(setOwner).orElse(null);
        boolean freshSet = set == null;
        if (freshSet) {
            set = pasids.createSet(setOwner, DEFAULT_QUOTA);
        }
        try {
            System.out.println(bindOrAttach(p, iommu, rid, set).pasid());
        } catch (IommuException | RuntimeException e) {
            if (freshSet) {
                set.close();
            }
            throw e;
        }
    }

    /** Binds; a device not attached to any domain (ENOENT) is given an identity domain, as at probe. */
    private SvaBond bindOrAttach(HostProcess p, String iommu, int rid, PasidSet set) throws IommuException {
        try {
            return sva.bind(p, iommu, rid, set);
        } catch (IommuException e) {
            if (e.errno() != Errno.ENOENT) {
                throw e;
            }
        }
        IommuInstance instance = registry.instance(iommu)
                .orElseThrow(() -> new IommuException(Errno.ENODEV, "no IOMMU instance '" + iommu + "'"));
        IommuDriver driver = instance.driver();
        IommuDomain identity = driver.allocateDomain(DomainType.IDENTITY);
        try {
            driver.attach(identity, rid);
        } catch (IommuException | RuntimeException e) {
            driver.freeDomain(identity);
            throw e;
        }
        try {
            return sva.bind(p, iommu, rid, set);
        } catch (IommuException | RuntimeException e) {
            driver.detach(identity, rid);
            driver.freeDomain(identity);
            throw e;
        }
    }

    /**
     * @param name process
     * @param iommu IOMMU instance
     * @param requesterId device
     * @throws IommuException ENOENT
     */
    @Descriptor("unbind a process from a device: the PASID entry goes, waiting page requests are answered invalid")
    public void unbind(@Descriptor("process name") String name, @Descriptor("IOMMU instance") String iommu,
            @Descriptor("requester id") String requesterId) throws IommuException {
        bond(name, iommu, Numbers.u32("requester id", requesterId)).unbind();
    }

    /** Prints one line per bond. */
    @Descriptor("list the bonds: process, IOMMU, requester id, PASID, set, page requests resolved and invalid")
    public void list() {
        for (SvaBond b : sva.bonds()) {
            System.out.println(line(b));
        }
    }

    static String line(SvaBond b) {
        return String.format("%s iommu=%s rid=0x%x pasid=%d set=%s resolved=%d invalid=%d", b.process().name(), b.iommu(),
                b.requesterId(), b.pasid(), b.set().owner(), b.pageRequestsResolved(), b.pageRequestsInvalid());
    }

    /**
     * @param name process
     * @throws IommuException ENOENT
     */
    @Descriptor("a process: its pages, its PASIDs and its bonds with their page requests (resolved, and faults answered invalid)")
    public void info(@Descriptor("process name") String name) throws IommuException {
        HostProcess p = proc(name);
        System.out.printf("process %s resident=%d swapped=%d pinned=%d%n", p.name(), p.residentMappings().length / 2,
                p.swappedPages(), p.pinnedPages());
        for (SvaBond b : sva.bonds()) {
            if (b.process() == p) {
                System.out.printf("bond iommu=%s rid=0x%x pasid=%d set=%s root=0x%x resolved=%d invalid=%d%n", b.iommu(),
                        b.requesterId(), b.pasid(), b.set().owner(), b.pageTableRoot(), b.pageRequestsResolved(),
                        b.pageRequestsInvalid());
            }
        }
    }

    /**
     * @param noBof without block on fault
     * @param name process
     * @param device IDXD device
     * @param wq shared work queue
     * @param src source virtual address
     * @param dst destination virtual address
     * @param length bytes
     * @throws IommuException ENOENT (not bound), EAGAIN (queue full or disabled), EINVAL (not a shared queue), ETIMEDOUT
     * @throws InterruptedException if interrupted while waiting
     */
    @Descriptor("the process opens a shared queue as a user queue with its PASID, submits a MEMMOVE by ENQCMD and waits; prints the completion status, then the page requests it caused")
    public void memmove(
            @Descriptor("without block on fault: a page the process never touched ends the copy with PAGE_FAULT_NOBOF") @Parameter(names = "--no-bof", presentValue = "true", absentValue = "false") boolean noBof,
            @Descriptor("process name") String name, @Descriptor("IDXD device") String device,
            @Descriptor("shared work queue") String wq, @Descriptor("source virtual address") String src,
            @Descriptor("destination virtual address") String dst, @Descriptor("length in bytes") String length)
            throws IommuException, InterruptedException {
        HostProcess p = proc(name);
        IdxdDevice d = idxd.device(device).orElseThrow(() -> new IommuException(Errno.ENOENT, "no device '" + device + "'"));
        SvaBond bond = bond(name, d.iommu(), d.requesterId());
        long comp = completionPage(p);
        p.write(comp, new byte[Dsa.COMP_SIZE], 0, Dsa.COMP_SIZE);
        int flags = Dsa.FLAG_CRAV | Dsa.FLAG_RCR | (noBof ? 0 : Dsa.FLAG_BOF);
        byte[] desc = Dsa.descriptor(Dsa.OP_MEMMOVE).flags(flags).addr1(Numbers.u64("src", src))
                .addr2(Numbers.u64("dst", dst)).size(Numbers.u64("length", length, 0xffff_ffffL)).completion(comp).build();
        long resolved = bond.pageRequestsResolved();
        long invalid = bond.pageRequestsInvalid();
        // The process opens the queue with its PASID (a user-wq claim), submits, and closes it again.
        UserWq queue = d.openUserWq(Numbers.nonNegativeInt("wq", wq), bond.set(), bond.pasid());
        try {
            SubmitStatus s = queue.enqcmd(desc);
            if (s == SubmitStatus.RETRY) {
                throw new IommuException(Errno.EAGAIN, "ENQCMD to " + device + " wq " + wq + ": retry (queue full or disabled)");
            }
            if (s != SubmitStatus.ACCEPTED) {
                throw new IommuException(Errno.EINVAL, "ENQCMD to " + device + " wq " + wq + ": "
                        + s.name().toLowerCase(Locale.ROOT));
            }
            if (!d.awaitIdle(WAIT_MS)) {
                throw new IommuException(Errno.ETIMEDOUT, d.name() + " did not finish within " + WAIT_MS + " ms");
            }
        } finally {
            queue.close();
        }
        byte[] raw = new byte[Dsa.COMP_SIZE];
        p.read(comp, raw, 0, raw.length);
        Dsa.CompletionRecord c = Dsa.CompletionRecord.decode(raw);
        System.out.println(Dsa.statusName(c.status()));
        System.out.printf("bytes=%d fault=0x%x page-requests resolved=+%d invalid=+%d%n", c.bytesCompleted(),
                c.faultAddress(), bond.pageRequestsResolved() - resolved, bond.pageRequestsInvalid() - invalid);
    }

    /** The process's completion-record page: a mapping of its own, made at its first {@code memmove}. */
    private long completionPage(HostProcess p) throws IommuException {
        synchronized (completionPages) {
            Long page = completionPages.get(p);
            if (page == null) {
                page = p.mmap(2L << 20);
                completionPages.put(p, page);
            }
            return page;
        }
    }

    private HostProcess proc(String name) throws IommuException {
        return processes.process(name).orElseThrow(() -> new IommuException(Errno.ENOENT, "no process '" + name + "'"));
    }

    private SvaBond bond(String name, String iommu, int rid) throws IommuException {
        for (SvaBond b : sva.bonds()) {
            if (b.process().name().equals(name) && b.iommu().equals(iommu) && b.requesterId() == rid) {
                return b;
            }
        }
        throw new IommuException(Errno.ENOENT, String.format("%s is not bound to %s:0x%x", name, iommu, rid));
    }
}
