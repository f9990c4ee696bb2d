package org.iommulab.platform.internal.shell;

import java.util.Locale;
import java.util.Map;

import org.apache.felix.service.command.Descriptor;
import org.apache.felix.service.command.Parameter;
import org.iommulab.api.device.DeviceBus;
import org.iommulab.api.errno.Errno;
import org.iommulab.api.errno.IommuException;
import org.iommulab.api.idxd.Dsa;
import org.iommulab.api.idxd.IdxdDevice;
import org.iommulab.api.idxd.IdxdService;
import org.iommulab.api.idxd.Mdev;
import org.iommulab.api.idxd.SubmitStatus;
import org.iommulab.api.idxd.WorkQueueConfig;
import org.iommulab.api.pasid.PasidSet;
import org.iommulab.api.pasid.PasidSpace;
import org.iommulab.api.pasid.Pasids;
import org.iommulab.api.spi.IommuInstance;
import org.iommulab.api.spi.IommuRegistry;
import org.iommulab.api.translation.Access;
import org.iommulab.api.translation.Translation;
import org.osgi.service.component.annotations.Activate;
import org.osgi.service.component.annotations.Component;
import org.osgi.service.component.annotations.Reference;

/**
 * {@code idxd:} commands: DSA-like devices, their work queues, mdevs, descriptors and counters.
 * Descriptor addresses are device addresses (IOVAs or GVAs, as the PASID says); the completion
 * record is read back through the IOMMU as the device wrote it.
 */
@Component(service = IdxdCommands.class, property = {
        "osgi.command.scope=idxd",
        "osgi.command.function=create",
        "osgi.command.function=destroy",
        "osgi.command.function=list",
        "osgi.command.function=wq",
        "osgi.command.function=enable",
        "osgi.command.function=disable",
        "osgi.command.function=mdev",
        "osgi.command.function=submit",
        "osgi.command.function=stats" })
public final class IdxdCommands {
    private static final long WAIT_MS = 30_000;

    private final IdxdService idxd;
    private final IommuRegistry registry;
    private final PasidSpace pasids;
    private final DeviceBus bus;

    /**
     * @param idxd the IDXD service
     * @param registry the IOMMU registry
     * @param pasids the PASID space
     * @param bus the device bus
     */
    @Activate
    public IdxdCommands(@Reference IdxdService idxd, @Reference IommuRegistry registry, @Reference PasidSpace pasids,
            @Reference DeviceBus bus) {
        this.idxd = idxd;
        this.registry = registry;
        this.pasids = pasids;
        this.bus = bus;
    }

    /**
     * @param name device name
     * @param iommu IOMMU instance
     * @param requesterId requester id
     * @throws IommuException EEXIST, ENODEV
     */
    @Descriptor("plug a DSA-like device in behind an IOMMU (its requester joins the device bus); prints '<name> group <g>'")
    public void create(@Descriptor("device name") String name, @Descriptor("IOMMU instance") String iommu,
            @Descriptor("requester id") String requesterId) throws IommuException {
        IdxdDevice d = idxd.create(name, iommu, Numbers.u32("requester id", requesterId));
        System.out.println(d.name() + " group " + bus.requester(d.name()).map(r -> r.groupId()).orElse(-1));
    }

    /**
     * @param name device name
     * @throws IommuException ENOENT, EBUSY
     */
    @Descriptor("unplug a device")
    public void destroy(@Descriptor("device name") String name) throws IommuException {
        idxd.destroy(name);
    }

    /**
     * @throws IommuException never for a live device
     */
    @Descriptor("list devices, their work queues and mdevs")
    public void list() throws IommuException {
        for (IdxdDevice d : idxd.devices()) {
            boolean on = (d.mmioRead(0x90, 4) & 3) == 1;
            System.out.printf("%s iommu=%s rid=0x%x %s%n", d.name(), d.iommu(), d.requesterId(), on ? "enabled" : "disabled");
            for (int q = 0; q < d.queues(); q++) {
                WorkQueueConfig c = d.wqConfig(q);
                if (c.size() == 0) {
                    continue;
                }
                System.out.printf("%s wq%d %s size=%d priority=%d pasid=%s%s %s%n", d.name(), q,
                        c.dedicated() ? "dedicated" : "shared", c.size(), c.priority(),
                        c.pasidEnabled() ? (c.dedicated() ? String.valueOf(c.pasid()) : "submitter") : "none",
                        c.blockOnFault() ? " bof" : "", d.wqEnabled(q) ? "enabled" : "disabled");
            }
        }
        for (Mdev m : idxd.mdevs()) {
            System.out.printf("mdev %s parent=%s group=%d pasids=%s%n", m.name(), m.parent().name(), m.requester().groupId(),
                    m.pasidTranslations());
        }
    }

    /**
     * @param dedicated dedicated mode
     * @param size entries
     * @param pasid PASID of a dedicated queue
     * @param priority priority
     * @param noBof without block on fault
     * @param device device
     * @param wq queue
     * @throws IommuException EINVAL, EBUSY
     */
    @Descriptor("configure a work queue (WQCFG) in group 0; shared by default")
    public void wq(
            @Descriptor("dedicated queue (MOVDIR64B, PASID from --pasid)") @Parameter(names = "--dedicated", presentValue = "true", absentValue = "false") boolean dedicated,
            @Descriptor("entries (default 16)") @Parameter(names = "--size", absentValue = "16") String size,
            @Descriptor("PASID of a dedicated queue (default: none)") @Parameter(names = "--pasid", absentValue = "") String pasid,
            @Descriptor("priority 1-15 (default 10)") @Parameter(names = "--priority", absentValue = "10") String priority,
            @Descriptor("no block on fault") @Parameter(names = "--no-bof", presentValue = "true", absentValue = "false") boolean noBof,
            @Descriptor("device name") String device,
            @Descriptor("queue index") String wq) throws IommuException {
        int p = pasid.isEmpty() ? -1 : (int) Numbers.u64("pasid", pasid, Pasids.MAX_PASID);
        WorkQueueConfig c = new WorkQueueConfig((int) Numbers.u64("size", size, 0xffff), dedicated,
                (int) Numbers.u64("priority", priority, 15), !noBof, !dedicated || p >= 0, Math.max(p, 0), false, false,
                WorkQueueConfig.MAX_TRANSFER_SHIFT, WorkQueueConfig.MAX_BATCH_SHIFT);
        device(device).configure(Numbers.nonNegativeInt("wq", wq), c);
    }

    /**
     * @param device device
     * @throws IommuException EIO with the CMDSTS error
     */
    @Descriptor("ENABLE_DEVICE")
    public void enable(@Descriptor("device name") String device) throws IommuException {
        device(device).enable();
    }

    /**
     * @param device device
     * @param wq queue
     * @throws IommuException EIO with the CMDSTS error
     */
    @Descriptor("ENABLE_WQ")
    public void enable(@Descriptor("device name") String device, @Descriptor("queue index") String wq) throws IommuException {
        device(device).enableWq(Numbers.nonNegativeInt("wq", wq));
    }

    /**
     * @param device device
     * @throws IommuException EIO with the CMDSTS error
     */
    @Descriptor("DISABLE_DEVICE")
    public void disable(@Descriptor("device name") String device) throws IommuException {
        device(device).disable();
    }

    /**
     * @param device device
     * @param wq queue
     * @throws IommuException EIO with the CMDSTS error
     */
    @Descriptor("DISABLE_WQ")
    public void disable(@Descriptor("device name") String device, @Descriptor("queue index") String wq) throws IommuException {
        device(device).disableWq(Numbers.nonNegativeInt("wq", wq));
    }

    /**
     * @param name mdev name
     * @param device parent
     * @param wq backing queue
     * @param vm owner of the VM's PASID set
     * @throws IommuException ENOENT, EEXIST, EBUSY
     */
    @Descriptor("create an mdev for a VM over a work queue; prints '<name> group <g>' (vfio:attach takes the group)")
    public void mdev(@Descriptor("mdev name") String name, @Descriptor("parent device") String device,
            @Descriptor("backing queue") String wq, @Descriptor("the VM (owner of its PASID set)") String vm)
            throws IommuException {
        PasidSet set = pasids.set(vm).orElseThrow(() -> new IommuException(Errno.ENOENT, "no PASID set of '" + vm
                + "': pasid:create it (or open a nesting VFIO container for it) first"));
        Mdev m = device(device).createMdev(name, Numbers.nonNegativeInt("wq", wq), set);
        System.out.println(m.name() + " group " + m.requester().groupId());
    }

    /**
     * @param pasid PASID (shared queue) or guest PASID (mdev)
     * @param comp completion record address
     * @param mdev submit through this mdev
     * @param device device
     * @param wq queue
     * @param opcode operation
     * @param addr1 source / pattern
     * @param addr2 destination / second source
     * @param size bytes
     * @throws IommuException ENOENT, EINVAL
     * @throws InterruptedException if interrupted while waiting
     */
    @Descriptor("submit one descriptor and wait; prints the portal's answer and the completion record")
    public void submit(
            @Descriptor("PASID for ENQCMD to a shared queue (the guest PASID with --mdev)") @Parameter(names = "--pasid", absentValue = "") String pasid,
            @Descriptor("completion record address (device address)") @Parameter(names = "--comp", absentValue = "") String comp,
            @Descriptor("submit through this mdev's virtual queue (device and wq are its parent's)") @Parameter(names = "--mdev", absentValue = "") String mdev,
            @Descriptor("device name") String device,
            @Descriptor("queue index") String wq,
            @Descriptor("noop, memmove, fill, compare, compval, crcgen, copycrc, drain") String opcode,
            @Descriptor("source address, or the fill pattern") String addr1,
            @Descriptor("destination or second source, or the compare pattern") String addr2,
            @Descriptor("transfer size in bytes") String size) throws IommuException, InterruptedException {
        IdxdDevice d = device(device);
        int q = Numbers.nonNegativeInt("wq", wq);
        int op = switch (opcode.toLowerCase(Locale.ROOT)) {
            case "noop" -> Dsa.OP_NOOP;
            case "drain" -> Dsa.OP_DRAIN;
            case "memmove" -> Dsa.OP_MEMMOVE;
            case "fill" -> Dsa.OP_MEMFILL;
            case "compare" -> Dsa.OP_COMPARE;
            case "compval" -> Dsa.OP_COMPVAL;
            case "crcgen" -> Dsa.OP_CRCGEN;
            case "copycrc" -> Dsa.OP_COPY_CRC;
            default -> throw new IommuException(Errno.EINVAL, "unknown opcode '" + opcode + "'");
        };
        Dsa.Builder b = Dsa.descriptor(op);
        if (op != Dsa.OP_NOOP && op != Dsa.OP_DRAIN) {
            b.addr1(Numbers.u64("addr1", addr1)).addr2(Numbers.u64("addr2", addr2)).size(Numbers.u64("size", size, 0xffff_ffffL));
        }
        long compAddr = comp.isEmpty() ? 0 : Numbers.u64("comp", comp);
        if (!comp.isEmpty()) {
            b.completion(compAddr);
        }
        int p = pasid.isEmpty() ? Pasids.NO_PASID : (int) Numbers.u64("pasid", pasid, Pasids.MAX_PASID);
        SubmitStatus status;
        int devicePasid;
        if (!mdev.isEmpty()) {
            Mdev m = idxd.mdev(mdev).orElseThrow(() -> new IommuException(Errno.ENOENT, "no mdev '" + mdev + "'"));
            status = pasid.isEmpty() ? m.movdir64b(b.build()) : m.enqcmd(b.build(), p);
            devicePasid = pasid.isEmpty() ? d.wqConfig(q).pasid() : m.pasidTranslations().getOrDefault(p, Pasids.NO_PASID);
        } else if (pasid.isEmpty()) {
            status = d.movdir64b(q, b.build());
            WorkQueueConfig c = d.wqConfig(q);
            devicePasid = c.pasidEnabled() ? c.pasid() : Pasids.NO_PASID;
        } else {
            status = d.enqcmd(q, b.build(), p, false);
            devicePasid = p;
        }
        System.out.println(status.name().toLowerCase(Locale.ROOT));
        if (status != SubmitStatus.ACCEPTED) {
            return;
        }
        if (!d.awaitIdle(WAIT_MS)) {
            throw new IommuException(Errno.ETIMEDOUT, d.name() + " did not finish within " + WAIT_MS + " ms");
        }
        if (!comp.isEmpty()) {
            System.out.println("completion " + readCompletion(d, devicePasid, compAddr));
        }
    }

    /** Reads the completion record the way the device wrote it: through the IOMMU with its PASID. */
    private String readCompletion(IdxdDevice d, int pasid, long address) throws IommuException {
        IommuInstance iommu = registry.instance(d.iommu())
                .orElseThrow(() -> new IommuException(Errno.ENODEV, "no IOMMU instance '" + d.iommu() + "'"));
        Translation t = new Translation();
        if (!iommu.translate(d.requesterId(), pasid, address, Access.READ, t)) {
            return "unreadable: " + t;
        }
        byte[] raw = new byte[Dsa.COMP_SIZE];
        iommu.memory().read(t.outputAddress(), raw, 0, raw.length);
        return Dsa.CompletionRecord.decode(raw).toString();
    }

    /**
     * @param device device
     * @throws IommuException ENOENT
     */
    @Descriptor("a device's counters: descriptors, completions by status, interrupts, page requests, retries")
    public void stats(@Descriptor("device name") String device) throws IommuException {
        for (Map.Entry<String, Long> e : device(device).statistics().entrySet()) {
            System.out.println(e.getKey() + " " + e.getValue());
        }
    }

    private IdxdDevice device(String name) throws IommuException {
        return idxd.device(name).orElseThrow(() -> new IommuException(Errno.ENOENT, "no device '" + name + "'"));
    }
}
