package org.iommulab.platform.internal.shell;

import java.util.EnumSet;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.stream.Collectors;

import org.apache.felix.service.command.Descriptor;
import org.apache.felix.service.command.Parameter;
import org.iommulab.api.errno.Errno;
import org.iommulab.api.errno.IommuException;
import org.iommulab.api.invalidation.CacheInvalidation;
import org.iommulab.api.invalidation.CacheType;
import org.iommulab.api.nesting.GuestPasidBind;
import org.iommulab.api.nesting.NestingInfo;
import org.iommulab.api.nesting.PasidTableConfig;
import org.iommulab.api.pasid.Pasids;
import org.iommulab.api.process.HostProcess;
import org.iommulab.api.process.ProcessTable;
import org.iommulab.api.vfio.DmaMapping;
import org.iommulab.api.vfio.IovaRange;
import org.iommulab.api.vfio.Vfio;
import org.iommulab.api.vfio.VfioContainer;
import org.iommulab.api.vfio.VfioIommuInfo;
import org.iommulab.api.vfio.VfioIommuType;
import org.osgi.service.component.annotations.Activate;
import org.osgi.service.component.annotations.Component;
import org.osgi.service.component.annotations.Reference;

/**
 * {@code vfio:} commands: the VFIO type1 ioctls on containers named by id. A container's owner is
 * a host process, created on first use; {@code vfio:map} without {@code --vaddr} maps fresh memory
 * of that process, as a VMM maps a RAM block.
 */
@Component(service = VfioCommands.class, property = {
        "osgi.command.scope=vfio",
        "osgi.command.function=create",
        "osgi.command.function=attach",
        "osgi.command.function=detach",
        "osgi.command.function=info",
        "osgi.command.function=map",
        "osgi.command.function=unmap",
        "osgi.command.function=mappings",
        "osgi.command.function=pasid",
        "osgi.command.function=bind",
        "osgi.command.function=unbind",
        "osgi.command.function=invalidate",
        "osgi.command.function=pasidtable",
        "osgi.command.function=list",
        "osgi.command.function=close" })
public final class VfioCommands {
    private final Vfio vfio;
    private final ProcessTable processes;

    /**
     * @param vfio the VFIO service
     * @param processes the process table
     */
    @Activate
    public VfioCommands(@Reference Vfio vfio, @Reference ProcessTable processes) {
        this.vfio = vfio;
        this.processes = processes;
    }

    /**
     * @param memlock locked-memory limit for a new process
     * @param owner process name
     * @throws IommuException EINVAL
     */
    @Descriptor("open a container owned by a process (started if new); prints the container id")
    public void create(
            @Descriptor("locked-memory limit in bytes of a new process (default unlimited)") @Parameter(names = "--memlock", absentValue = "") String memlock,
            @Descriptor("owner process name, for example the VM's") String owner) throws IommuException {
        HostProcess process = processes.process(owner).orElse(null);
        long limit = memlock.isEmpty() ? Long.MAX_VALUE : Numbers.u64("memlock", memlock, Long.MAX_VALUE);
        if (process == null) {
            process = processes.create(owner, limit);
        } else if (!memlock.isEmpty()) {
            process.setLockedLimit(limit);
        }
        System.out.println(vfio.open(process).id());
    }

    /**
     * @param type IOMMU type
     * @param container id
     * @param group group id
     * @throws IommuException ENOENT, EINVAL, driver errors
     */
    @Descriptor("add a group to a container (VFIO_GROUP_SET_CONTAINER) and, on the first, set the IOMMU type")
    public void attach(
            @Descriptor("IOMMU type when not set yet: type1v2 (default) or nesting") @Parameter(names = "--type", absentValue = "") String type,
            @Descriptor("container id") String container,
            @Descriptor("IOMMU group id (device:list shows them)") String group) throws IommuException {
        VfioContainer c = container(container);
        VfioIommuType t = switch (type.isEmpty() ? "type1v2" : type.toLowerCase(Locale.ROOT)) {
            case "type1v2" -> VfioIommuType.TYPE1V2;
            case "nesting" -> VfioIommuType.NESTING;
            default -> throw new IommuException(Errno.EINVAL, "type must be type1v2 or nesting, not '" + type + "'");
        };
        if (!type.isEmpty() && c.iommuType().isPresent() && c.iommuType().get() != t) {
            throw new IommuException(Errno.EINVAL, "container " + c.id() + " is set to "
                    + c.iommuType().get().name().toLowerCase(Locale.ROOT) + " already");
        }
        int groupId = Numbers.nonNegativeInt("group", group);
        c.addGroup(groupId);
        if (c.iommuType().isEmpty()) {
            try {
                c.setIommu(t);
            } catch (IommuException e) {
                c.removeGroup(groupId);
                throw e;
            }
        }
    }

    /**
     * @param container id
     * @param group group id
     * @throws IommuException ENOENT, EINVAL
     */
    @Descriptor("remove a group from a container (VFIO_GROUP_UNSET_CONTAINER); the last one releases the IOMMU")
    public void detach(@Descriptor("container id") String container, @Descriptor("IOMMU group id") String group)
            throws IommuException {
        container(container).removeGroup(Numbers.nonNegativeInt("group", group));
    }

    /**
     * @param container id
     * @throws IommuException ENOENT, EINVAL
     */
    @Descriptor("VFIO_IOMMU_GET_INFO: type, page sizes, usable IOVA ranges, free mapping slots, nesting info")
    public void info(@Descriptor("container id") String container) throws IommuException {
        VfioContainer c = container(container);
        VfioIommuInfo info = c.info();
        System.out.println("type " + c.iommuType().map(t -> t.name().toLowerCase(Locale.ROOT)).orElse("none"));
        System.out.printf("pagesizes 0x%x%n", info.pageSizes());
        for (IovaRange r : info.iovaRanges()) {
            System.out.printf("iova 0x%x-0x%x%n", r.start(), r.end());
        }
        System.out.println("dma-avail " + info.dmaAvailable());
        if (info.nesting().isPresent()) {
            NestingInfo n = info.nesting().get();
            System.out.printf("nesting format=%s features=%s addr-width=%d pasid-bits=%d%n", n.format(),
                    n.features().stream().map(Enum::name).sorted().collect(Collectors.joining(",")), n.addressWidth(),
                    n.pasidBits());
            n.vendorData().entrySet().stream().sorted(Map.Entry.comparingByKey())
                    .forEach(e -> System.out.printf("nesting %s=0x%x%n", e.getKey(), e.getValue()));
        }
    }

    /**
     * @param vaddr the owner's address, or absent for fresh memory
     * @param readOnly map without write
     * @param container id
     * @param iova IOVA
     * @param size bytes
     * @throws IommuException the MAP_DMA errors
     */
    @Descriptor("VFIO_IOMMU_MAP_DMA; prints 'iova 0x.. size 0x.. vaddr 0x..'")
    public void map(
            @Descriptor("owner virtual address (default: fresh memory of the owner)") @Parameter(names = "--vaddr", absentValue = "") String vaddr,
            @Descriptor("map read-only (default read-write)") @Parameter(names = "--read-only", presentValue = "true", absentValue = "false") boolean readOnly,
            @Descriptor("container id") String container,
            @Descriptor("IOVA") String iova,
            @Descriptor("size in bytes") String size) throws IommuException {
        VfioContainer c = container(container);
        long io = Numbers.u64("iova", iova);
        long bytes = Numbers.u64("size", size);
        HostProcess owner = owner(c);
        boolean fresh = vaddr.isEmpty();
        long va = fresh ? owner.mmap(bytes) : Numbers.u64("vaddr", vaddr);
        int flags = VfioContainer.DMA_MAP_FLAG_READ | (readOnly ? 0 : VfioContainer.DMA_MAP_FLAG_WRITE);
        try {
            c.mapDma(va, io, bytes, flags);
        } catch (IommuException e) {
            if (fresh) {
                owner.munmap(va, bytes);
            }
            throw e;
        }
        System.out.printf("iova 0x%x size 0x%x vaddr 0x%x%n", io, bytes, va);
    }

    /**
     * @param all unmap everything
     * @param container id
     * @param iova IOVA
     * @param size bytes
     * @throws IommuException the UNMAP_DMA errors
     */
    @Descriptor("VFIO_IOMMU_UNMAP_DMA; prints the bytes unmapped as 0x<hex>")
    public void unmap(
            @Descriptor("unmap everything (VFIO_DMA_UNMAP_FLAG_ALL; iova and size 0)") @Parameter(names = "--all", presentValue = "true", absentValue = "false") boolean all,
            @Descriptor("container id") String container,
            @Descriptor("IOVA") String iova,
            @Descriptor("size in bytes") String size) throws IommuException {
        long done = container(container).unmapDma(Numbers.u64("iova", iova), Numbers.u64("size", size),
                all ? VfioContainer.DMA_UNMAP_FLAG_ALL : 0);
        System.out.printf("0x%x%n", done);
    }

    /**
     * @param container id
     * @throws IommuException ENOENT
     */
    @Descriptor("list a container's mappings: iova size vaddr access")
    public void mappings(@Descriptor("container id") String container) throws IommuException {
        for (DmaMapping m : container(container).mappings()) {
            System.out.printf("0x%x 0x%x vaddr=0x%x %s%n", m.iova(), m.size(), m.vaddr(),
                    (m.flags() & VfioContainer.DMA_MAP_FLAG_WRITE) != 0 ? "rw" : "r");
        }
    }

    /**
     * @param container id
     * @param op alloc or free
     * @param min lowest PASID
     * @param max highest PASID
     * @throws IommuException EOPNOTSUPP, EINVAL, ENOSPC
     */
    @Descriptor("VFIO_IOMMU_PASID_REQUEST: 'alloc' prints the PASID, 'free' prints how many were freed")
    public void pasid(@Descriptor("container id") String container, @Descriptor("alloc or free") String op,
            @Descriptor("lowest PASID") String min, @Descriptor("highest PASID") String max) throws IommuException {
        VfioContainer c = container(container);
        int lo = (int) Numbers.u64("min", min, Pasids.MAX_PASID);
        int hi = (int) Numbers.u64("max", max, Pasids.MAX_PASID);
        switch (op) {
            case "alloc" -> System.out.println(c.pasidAlloc(lo, hi));
            case "free" -> System.out.println(c.pasidFree(lo, hi));
            default -> throw new IommuException(Errno.EINVAL, "PASID request must be alloc or free, not '" + op + "'");
        }
    }

    /**
     * @param container id
     * @param op alloc (any PASID) or free
     * @param pasid the PASID to free, for free
     * @throws IommuException as above
     */
    @Descriptor("'alloc' any PASID of the owner's set, or 'free' one PASID")
    public void pasid(@Descriptor("container id") String container, @Descriptor("alloc or free") String op,
            @Descriptor("the PASID (free)") String pasid) throws IommuException {
        pasid(container, op, op.equals("alloc") ? "1" : pasid, op.equals("alloc") ? String.valueOf(Pasids.MAX_PASID) : pasid);
    }

    /**
     * @param container id
     * @param op alloc
     * @throws IommuException as above
     */
    @Descriptor("'alloc' any PASID of the owner's set")
    public void pasid(@Descriptor("container id") String container, @Descriptor("alloc") String op) throws IommuException {
        pasid(container, op, "1", String.valueOf(Pasids.MAX_PASID));
    }

    /**
     * @param gpasid guest PASID
     * @param addressWidth guest address width
     * @param sre supervisor requests
     * @param container id
     * @param hostPasid host PASID
     * @param gpgd guest page-table root
     * @throws IommuException EOPNOTSUPP, EPERM, EBUSY, EINVAL
     */
    @Descriptor("VFIO_IOMMU_NESTING_OP BIND_PGTBL: bind a guest first-stage table (VT-d) to a host PASID")
    public void bind(
            @Descriptor("the guest's PASID (default: none given)") @Parameter(names = "--gpasid", absentValue = "") String gpasid,
            @Descriptor("guest address width: 48 or 57") @Parameter(names = "--aw", absentValue = "48") String addressWidth,
            @Descriptor("allow supervisor requests (SRE)") @Parameter(names = "--sre", presentValue = "true", absentValue = "false") boolean sre,
            @Descriptor("container id") String container,
            @Descriptor("host PASID from 'vfio:pasid <c> alloc'") String hostPasid,
            @Descriptor("guest physical address of the first-stage root (CR3)") String gpgd) throws IommuException {
        boolean gValid = !gpasid.isEmpty();
        GuestPasidBind bind = new GuestPasidBind(NestingInfo.FORMAT_INTEL_VTD, pasidArg("host PASID", hostPasid),
                gValid ? pasidArg("guest PASID", gpasid) : 0, gValid, Numbers.u64("gpgd", gpgd),
                (int) Numbers.u64("address width", addressWidth, 64), sre ? GuestPasidBind.VTD_SRE : 0, 0, 0);
        container(container).bindGuestPageTable(bind);
    }

    /**
     * @param container id
     * @param hostPasid host PASID
     * @throws IommuException EOPNOTSUPP, EPERM, ENOENT
     */
    @Descriptor("VFIO_IOMMU_NESTING_OP UNBIND_PGTBL")
    public void unbind(@Descriptor("container id") String container, @Descriptor("bound host PASID") String hostPasid)
            throws IommuException {
        container(container).unbindGuestPageTable(pasidArg("host PASID", hostPasid));
    }

    /**
     * @param pasid PASID
     * @param asid ASID
     * @param addr address
     * @param granule granule size
     * @param count granules
     * @param leaf leaf only
     * @param container id
     * @param caches caches
     * @param granularity granularity
     * @throws IommuException EOPNOTSUPP, EPERM, EINVAL
     */
    @Descriptor("VFIO_IOMMU_NESTING_OP CACHE_INVLD: pass a guest invalidation to the host IOMMU")
    public void invalidate(
            @Descriptor("PASID (pasid and addr granularity)") @Parameter(names = "--pasid", absentValue = "") String pasid,
            @Descriptor("architecture id: SMMUv3 ASID") @Parameter(names = "--asid", absentValue = "") String asid,
            @Descriptor("first address (addr granularity)") @Parameter(names = "--addr", absentValue = "0") String addr,
            @Descriptor("granule size in bytes") @Parameter(names = "--granule", absentValue = "4096") String granule,
            @Descriptor("number of granules") @Parameter(names = "--count", absentValue = "1") String count,
            @Descriptor("leaf entries only") @Parameter(names = "--leaf", presentValue = "true", absentValue = "false") boolean leaf,
            @Descriptor("container id") String container,
            @Descriptor("caches, comma separated: iotlb, dev-iotlb, pasid") String caches,
            @Descriptor("granularity: domain, pasid or addr") String granularity) throws IommuException {
        Set<CacheType> types = EnumSet.noneOf(CacheType.class);
        for (String name : caches.split(",")) {
            types.add(switch (name.trim().toLowerCase(Locale.ROOT)) {
                case "iotlb" -> CacheType.IOTLB;
                case "dev-iotlb" -> CacheType.DEV_IOTLB;
                case "pasid" -> CacheType.PASID;
                default -> throw new IommuException(Errno.EINVAL, "cache must be iotlb, dev-iotlb or pasid, not '" + name + "'");
            });
        }
        int p = pasid.isEmpty() ? Pasids.NO_PASID : pasidArg("pasid", pasid);
        long archId = asid.isEmpty() ? -1 : Numbers.u64("asid", asid, 0xffff);
        CacheInvalidation inv = switch (granularity.toLowerCase(Locale.ROOT)) {
            case "domain" -> CacheInvalidation.domain(types);
            case "pasid" -> CacheInvalidation.pasid(types, p, archId);
            case "addr" -> CacheInvalidation.range(types, p, archId, Numbers.u64("addr", addr), Numbers.u64("granule", granule),
                    Numbers.u64("count", count), leaf);
            default -> throw new IommuException(Errno.EINVAL, "granularity must be domain, pasid or addr, not '" + granularity + "'");
        };
        container(container).cacheInvalidate(inv);
    }

    /**
     * @param bits S1CDMax
     * @param config translate, bypass or abort
     * @param s1fmt S1Fmt
     * @param s1dss S1DSS
     * @param container id
     * @param op set
     * @param base table IPA
     * @throws IommuException EOPNOTSUPP, EINVAL, ENOENT
     */
    @Descriptor("VFIO_IOMMU_SET_PASID_TABLE set: hand the guest's CD table at <base> to the devices (SMMUv3)")
    public void pasidtable(
            @Descriptor("log2 of the number of context descriptors (S1CDMax)") @Parameter(names = "--bits", absentValue = "0") String bits,
            @Descriptor("translate (default), bypass or abort") @Parameter(names = "--config", absentValue = "translate") String config,
            @Descriptor("S1Fmt: 0 linear, 1 or 2 two-level") @Parameter(names = "--s1fmt", absentValue = "0") String s1fmt,
            @Descriptor("S1DSS: 0 terminate, 1 bypass, 2 substream 0") @Parameter(names = "--s1dss", absentValue = "0") String s1dss,
            @Descriptor("container id") String container,
            @Descriptor("set") String op,
            @Descriptor("IPA of the guest's CD table") String base) throws IommuException {
        VfioContainer c = container(container);
        if (!op.equals("set")) {
            throw new IommuException(Errno.EINVAL, "pasidtable takes set or unset, not '" + op + "'");
        }
        int cfg = switch (config.toLowerCase(Locale.ROOT)) {
            case "translate" -> PasidTableConfig.TRANSLATE;
            case "bypass" -> PasidTableConfig.BYPASS;
            case "abort" -> PasidTableConfig.ABORT;
            default -> throw new IommuException(Errno.EINVAL, "config must be translate, bypass or abort, not '" + config + "'");
        };
        c.attachPasidTable(new PasidTableConfig(NestingInfo.FORMAT_ARM_SMMUV3, Numbers.u64("base", base),
                (int) Numbers.u64("bits", bits, 32), cfg, (int) Numbers.u64("s1fmt", s1fmt, 3),
                (int) Numbers.u64("s1dss", s1dss, 3)));
    }

    /**
     * @param container id
     * @param op unset
     * @throws IommuException EOPNOTSUPP, ENOENT
     */
    @Descriptor("VFIO_IOMMU_SET_PASID_TABLE unset: every device returns to plain stage 2")
    public void pasidtable(@Descriptor("container id") String container, @Descriptor("unset") String op)
            throws IommuException {
        if (!op.equals("unset")) {
            throw new IommuException(Errno.EINVAL, "without a base, pasidtable takes unset, not '" + op + "'");
        }
        container(container).detachPasidTable();
    }

    /** Prints one line per container. */
    @Descriptor("list containers: id, owner, type, groups, mappings, bound PASIDs")
    public void list() {
        for (VfioContainer c : vfio.containers()) {
            String groups = java.util.Arrays.stream(c.groups()).mapToObj(String::valueOf).collect(Collectors.joining(","));
            System.out.printf("%d owner=%s type=%s groups=[%s] mappings=%d bound=%s%n", c.id(), c.owner(),
                    c.iommuType().map(t -> t.name().toLowerCase(Locale.ROOT)).orElse("none"), groups, c.mappings().size(),
                    c.bindings().keySet());
        }
    }

    /**
     * @param container id
     * @throws IommuException ENOENT
     */
    @Descriptor("close a container: its groups leave, its mappings are unmapped and unpinned")
    public void close(@Descriptor("container id") String container) throws IommuException {
        container(container).close();
    }

    private VfioContainer container(String id) throws IommuException {
        int n = Numbers.nonNegativeInt("container", id);
        return vfio.container(n).orElseThrow(() -> new IommuException(Errno.ENOENT, "no container " + id));
    }

    private HostProcess owner(VfioContainer c) throws IommuException {
        return processes.process(c.owner())
                .orElseThrow(() -> new IommuException(Errno.ENODEV, "the owner " + c.owner() + " of container " + c.id() + " has exited"));
    }

    private static int pasidArg(String what, String text) throws IommuException {
        return (int) Numbers.u64(what, text, Pasids.MAX_PASID);
    }
}
