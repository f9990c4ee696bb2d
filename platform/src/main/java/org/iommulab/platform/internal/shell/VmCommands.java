package org.iommulab.platform.internal.shell;

import java.util.Locale;

import org.apache.felix.service.command.Descriptor;
import org.apache.felix.service.command.Parameter;
import org.iommulab.api.errno.Errno;
import org.iommulab.api.errno.IommuException;
import org.iommulab.api.idxd.Dsa;
import org.iommulab.api.idxd.Mdev;
import org.iommulab.api.idxd.SubmitStatus;
import org.iommulab.api.vmm.GuestProcess;
import org.iommulab.api.vmm.Vm;
import org.iommulab.api.vmm.VmManager;
import org.osgi.service.component.annotations.Activate;
import org.osgi.service.component.annotations.Component;
import org.osgi.service.component.annotations.Reference;

/**
 * {@code vm:} commands: boot a VM, assign an mdev, and run the guest's steps by hand (start a
 * process, map its memory, bind it through the virtual IOMMU, submit a copy, page out), with the
 * VMM's traps printed after each step.
 */
@Component(service = VmCommands.class, property = {
        "osgi.command.scope=vm",
        "osgi.command.function=create",
        "osgi.command.function=destroy",
        "osgi.command.function=list",
        "osgi.command.function=assign",
        "osgi.command.function=passthrough",
        "osgi.command.function=probe",
        "osgi.command.function=process",
        "osgi.command.function=map",
        "osgi.command.function=write",
        "osgi.command.function=read",
        "osgi.command.function=bind",
        "osgi.command.function=unbind",
        "osgi.command.function=memmove",
        "osgi.command.function=pageout",
        "osgi.command.function=info" })
public final class VmCommands {
    private final VmManager vmm;

    /** @param vmm the VMM */
    @Activate
    public VmCommands(@Reference VmManager vmm) {
        this.vmm = vmm;
    }

    /**
     * @param name VM name
     * @param iommu host IOMMU
     * @param ramMiB RAM in MiB
     * @throws IommuException EEXIST, ENODEV, EINVAL
     */
    @Descriptor("boot a VM with RAM and a virtual IOMMU of the host IOMMU's vendor")
    public void create(@Descriptor("VM name") String name, @Descriptor("host IOMMU instance") String iommu,
            @Descriptor("guest RAM in MiB (16-4096, even)") String ramMiB) throws IommuException {
        Vm vm = vmm.create(name, iommu, Numbers.u64("ram", ramMiB, 4096) << 20);
        journal(vm);
    }

    /**
     * @param name VM name
     * @throws IommuException ENOENT
     */
    @Descriptor("shut a VM down")
    public void destroy(@Descriptor("VM name") String name) throws IommuException {
        vmm.destroy(name);
    }

    /** Prints one line per VM. */
    @Descriptor("list VMs")
    public void list() {
        for (Vm vm : vmm.vms()) {
            System.out.printf("%s iommu=%s ram=%dMiB devices=%d processes=%d%n", vm.name(), vm.hostIommu(),
                    vm.ramSize() >> 20, vm.devices().size(), vm.guest().processes().size());
        }
    }

    /**
     * @param name VM
     * @param device IDXD device
     * @param wq shared work queue
     * @param virtualRid guest requester id
     * @throws IommuException EBUSY, driver errors
     */
    @Descriptor("assign an mdev of an IDXD device's shared work queue, at a guest requester id")
    public void assign(@Descriptor("VM name") String name, @Descriptor("IDXD device") String device,
            @Descriptor("shared work queue") String wq, @Descriptor("guest requester id") String virtualRid)
            throws IommuException {
        Vm vm = vm(name);
        vm.assignMdev(device, Numbers.nonNegativeInt("wq", wq), Numbers.u32("virtual rid", virtualRid));
        journal(vm);
    }

    /**
     * @param name VM
     * @param device IDXD device
     * @param virtualRid guest requester id
     * @throws IommuException EBUSY, VFIO errors
     */
    @Descriptor("assign a whole IDXD device (its work queues as the host configured them) at a guest requester id")
    public void passthrough(@Descriptor("VM name") String name, @Descriptor("IDXD device") String device,
            @Descriptor("guest requester (stream) id") String virtualRid) throws IommuException {
        Vm vm = vm(name);
        vm.assignDevice(device, Numbers.u32("virtual rid", virtualRid));
        journal(vm);
    }

    /**
     * @param name VM
     * @param virtualRid device
     * @throws IommuException driver errors
     */
    @Descriptor("guest: bring the IOMMU driver and the device's virtual work queue up")
    public void probe(@Descriptor("VM name") String name, @Descriptor("guest requester id") String virtualRid)
            throws IommuException {
        Vm vm = vm(name);
        vm.guest().probeDevice(Numbers.u32("virtual rid", virtualRid));
        journal(vm);
    }

    /**
     * @param name VM
     * @param process process name
     * @throws IommuException ENOSPC
     */
    @Descriptor("guest: start a process (a PASID through the paravirtual call, an empty page table); prints its PASID")
    public void process(@Descriptor("VM name") String name, @Descriptor("process name") String process)
            throws IommuException {
        Vm vm = vm(name);
        System.out.println(vm.guest().startProcess(process).pasid());
        journal(vm);
    }

    /**
     * @param name VM
     * @param process process
     * @param gva address
     * @param bytes size
     * @throws IommuException EEXIST, ENOMEM
     */
    @Descriptor("guest: map fresh pages into a process")
    public void map(@Descriptor("VM name") String name, @Descriptor("process name") String process,
            @Descriptor("virtual address") String gva, @Descriptor("bytes") String bytes) throws IommuException {
        process(vm(name), process).map(Numbers.u64("gva", gva), Numbers.u64("bytes", bytes));
    }

    /**
     * @param name VM
     * @param process process
     * @param gva address
     * @param value value
     * @throws IommuException EFAULT
     */
    @Descriptor("guest CPU: write 8 bytes into a process")
    public void write(@Descriptor("VM name") String name, @Descriptor("process name") String process,
            @Descriptor("virtual address") String gva, @Descriptor("value") String value) throws IommuException {
        long v = Numbers.u64("value", value);
        byte[] b = new byte[8];
        for (int i = 0; i < 8; i++) {
            b[i] = (byte) (v >>> (8 * i));
        }
        process(vm(name), process).write(Numbers.u64("gva", gva), b);
    }

    /**
     * @param name VM
     * @param process process
     * @param gva address
     * @throws IommuException EFAULT
     */
    @Descriptor("guest CPU: read 8 bytes of a process; prints 0x<16 hex digits>")
    public void read(@Descriptor("VM name") String name, @Descriptor("process name") String process,
            @Descriptor("virtual address") String gva) throws IommuException {
        byte[] b = process(vm(name), process).read(Numbers.u64("gva", gva), 8);
        long v = 0;
        for (int i = 7; i >= 0; i--) {
            v = v << 8 | (b[i] & 0xff);
        }
        System.out.println(Numbers.hex64(v));
    }

    /**
     * @param name VM
     * @param process process
     * @param virtualRid device
     * @throws IommuException driver and VFIO errors
     */
    @Descriptor("guest: bind a process to a device through the virtual IOMMU (SVA)")
    public void bind(@Descriptor("VM name") String name, @Descriptor("process name") String process,
            @Descriptor("guest requester id") String virtualRid) throws IommuException {
        Vm vm = vm(name);
        process(vm, process).bind(Numbers.u32("virtual rid", virtualRid));
        journal(vm);
    }

    /**
     * @param name VM
     * @param process process
     * @param virtualRid device
     * @throws IommuException ENOENT
     */
    @Descriptor("guest: unbind a process from a device")
    public void unbind(@Descriptor("VM name") String name, @Descriptor("process name") String process,
            @Descriptor("guest requester id") String virtualRid) throws IommuException {
        Vm vm = vm(name);
        process(vm, process).unbind(Numbers.u32("virtual rid", virtualRid));
        journal(vm);
    }

    /**
     * @param bof block on fault
     * @param name VM
     * @param process process
     * @param virtualRid device
     * @param src source
     * @param dst destination
     * @param size bytes
     * @param comp completion record address
     * @throws IommuException EFAULT, ENOENT
     * @throws InterruptedException if interrupted
     */
    @Descriptor("guest: ENQCMD a MEMMOVE with the process's PASID and wait; prints the answer and the completion record")
    public void memmove(
            @Descriptor("block on fault (page requests)") @Parameter(names = "--bof", presentValue = "true", absentValue = "false") boolean bof,
            @Descriptor("VM name") String name, @Descriptor("process name") String process,
            @Descriptor("guest requester id") String virtualRid, @Descriptor("source GVA") String src,
            @Descriptor("destination GVA") String dst, @Descriptor("bytes") String size,
            @Descriptor("completion record GVA (32-byte aligned, mapped)") String comp)
            throws IommuException, InterruptedException {
        Vm vm = vm(name);
        GuestProcess p = process(vm, process);
        long c = Numbers.u64("comp", comp);
        p.write(c, new byte[32]);
        Dsa.Builder d = Dsa.descriptor(Dsa.OP_MEMMOVE).addr1(Numbers.u64("src", src)).addr2(Numbers.u64("dst", dst))
                .size(Numbers.u64("size", size, 0xffff_ffffL)).completion(c);
        if (bof) {
            d.flags(Dsa.FLAG_BOF | Dsa.FLAG_CRAV | Dsa.FLAG_RCR);
        }
        SubmitStatus status = p.enqcmd(Numbers.u32("virtual rid", virtualRid), d.build());
        System.out.println(status.name().toLowerCase(Locale.ROOT));
        if (status == SubmitStatus.ACCEPTED) {
            // The completion record's status byte is written last: poll it, as software does.
            long deadline = System.nanoTime() + 30_000_000_000L;
            while (p.read(c, 1)[0] == 0) {
                if (System.nanoTime() > deadline) {
                    throw new IommuException(Errno.ETIMEDOUT, "no completion record within 30 s");
                }
                Thread.sleep(1);
            }
            System.out.println("completion " + Dsa.CompletionRecord.decode(p.read(c, 32)));
        }
        journal(vm);
    }

    /**
     * @param noInvalidate skip the invalidation
     * @param name VM
     * @param process process
     * @param gva address
     * @param bytes size
     * @throws IommuException EINVAL
     */
    @Descriptor("guest: page a range out of a process and invalidate its IOMMU (or forget to)")
    public void pageout(
            @Descriptor("forget the invalidation: the device keeps a stale translation") @Parameter(names = "--no-invalidate", presentValue = "true", absentValue = "false") boolean noInvalidate,
            @Descriptor("VM name") String name, @Descriptor("process name") String process,
            @Descriptor("virtual address") String gva, @Descriptor("bytes") String bytes) throws IommuException {
        Vm vm = vm(name);
        GuestProcess p = process(vm, process);
        if (noInvalidate) {
            p.pageOutWithoutInvalidation(Numbers.u64("gva", gva), Numbers.u64("bytes", bytes));
        } else {
            p.pageOut(Numbers.u64("gva", gva), Numbers.u64("bytes", bytes));
        }
        journal(vm);
    }

    /**
     * @param name VM
     * @throws IommuException ENOENT
     */
    @Descriptor("the guest's view and the host's side by side: processes and PASIDs, host bindings, mdev PASID translations")
    public void info(@Descriptor("VM name") String name) throws IommuException {
        Vm vm = vm(name);
        System.out.printf("vm %s: %d MiB, host IOMMU %s, virtual IOMMU %s%n", vm.name(), vm.ramSize() >> 20,
                vm.hostIommu(), vm.viommu().name());
        for (GuestProcess p : vm.guest().processes()) {
            System.out.printf("guest process %s: PASID %d, page table at GPA 0x%x%n", p.name(), p.pasid(), p.pgd());
        }
        vm.container().bindings().forEach((pasid, b) -> System.out.printf(
                "host binding: PASID %d nested, guest table at GPA 0x%x, %d-bit%n", pasid, b.guestPgd(), b.addressWidth()));
        for (Mdev m : vm.devices()) {
            System.out.printf("mdev %s: guest->host PASIDs %s%n", m.name(), m.pasidTranslations());
        }
        System.out.printf("page requests answered by the guest: %d%n", vm.guest().pageRequestsHandled());
    }

    private Vm vm(String name) throws IommuException {
        return vmm.vm(name).orElseThrow(() -> new IommuException(Errno.ENOENT, "no VM '" + name + "'"));
    }

    private static GuestProcess process(Vm vm, String name) throws IommuException {
        return vm.guest().processes().stream().filter(p -> p.name().equals(name)).findFirst()
                .orElseThrow(() -> new IommuException(Errno.ENOENT, "no process '" + name + "' in " + vm.name()));
    }

    private static void journal(Vm vm) {
        for (String line : vm.takeJournal()) {
            System.out.println("[vmm] " + line);
        }
    }
}
