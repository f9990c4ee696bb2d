package org.iommulab.vfio.internal;

import java.util.ArrayList;
import java.util.Collection;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.TreeMap;

import org.iommulab.api.device.Requester;
import org.iommulab.api.errno.Errno;
import org.iommulab.api.errno.IommuException;
import org.iommulab.api.invalidation.CacheInvalidation;
import org.iommulab.api.nesting.GuestPasidBind;
import org.iommulab.api.nesting.NestingFeature;
import org.iommulab.api.nesting.NestingInfo;
import org.iommulab.api.nesting.PasidTableConfig;
import org.iommulab.api.pasid.PasidSet;
import org.iommulab.api.process.HostProcess;
import org.iommulab.api.spi.DomainType;
import org.iommulab.api.spi.IommuDomain;
import org.iommulab.api.spi.IommuInstance;
import org.iommulab.api.spi.ReservedRegion;
import org.iommulab.api.vfio.ContainerState;
import org.iommulab.api.vfio.DmaMapping;
import org.iommulab.api.vfio.IovaRange;
import org.iommulab.api.vfio.VfioContainer;
import org.iommulab.api.vfio.VfioIommuInfo;
import org.iommulab.api.vfio.VfioIommuType;

/**
 * A VFIO container and its type1 IOMMU ({@code struct vfio_iommu}): groups, one domain per IOMMU
 * instance, the DMA mappings and the nesting state. Every public call holds the container's monitor
 * (Linux's {@code iommu->lock}), checks everything it can before changing anything, and undoes its
 * own partial work when a driver refuses.
 */
final class Container implements VfioContainer {
    private final int id;
    private final HostProcess owner;
    private final VfioContext context;
    private final int dmaEntryLimit;
    /** Groups by id, with the members they had when they joined. */
    private final TreeMap<Integer, List<Requester>> groups = new TreeMap<>();
    /** Domains by IOMMU instance name, in attach order. */
    private final Map<String, ContainerDomain> domains = new java.util.LinkedHashMap<>();
    private final DmaMappings dma;
    private final Nesting nesting;
    private VfioIommuType type;
    private boolean closed;
    /** The PASID each mediated requester's domain is attached to (its default PASID), by requester name. */
    private final Map<String, Integer> mediatedPasids = new java.util.HashMap<>();

    Container(int id, HostProcess owner, VfioContext context, int dmaEntryLimit) {
        this.id = id;
        this.owner = owner;
        this.context = context;
        this.dmaEntryLimit = dmaEntryLimit;
        this.dma = new DmaMappings(owner);
        this.nesting = new Nesting(owner.name(), context);
    }

    @Override
    public int id() {
        return id;
    }

    @Override
    public String owner() {
        return owner.name();
    }

    @Override
    public synchronized boolean checkExtension(VfioIommuType type) {
        if (type == VfioIommuType.TYPE1V2) {
            return true;
        }
        // Linux's type1 answers 1 for the nesting type whatever the IOMMU: VFIO_SET_IOMMU decides.
        return type == VfioIommuType.NESTING && !closed;
    }

    static boolean nestingCapable(IommuInstance instance) {
        NestingInfo info = instance.driver().nestingInfo();
        return info.supports(NestingFeature.BIND_PGTBL) || info.supports(NestingFeature.PASID_TABLE);
    }

    // ---- groups ---------------------------------------------------------------------------------

    @Override
    public synchronized void addGroup(int groupId) throws IommuException {
        live();
        if (groups.containsKey(groupId)) {
            throw new IommuException(Errno.EINVAL, "group " + groupId + " is in this container already");
        }
        if (type == VfioIommuType.NESTING) {
            throw new IommuException(Errno.EINVAL, "a nesting container holds one group");
        }
        context.claimGroup(groupId, this);
        try {
            // Claimed: the membership cannot change until the group leaves.
            List<Requester> members = context.bus().group(groupId);
            if (type != null) {
                attach(members);
            }
            groups.put(groupId, members);
        } catch (IommuException | RuntimeException e) {
            context.releaseGroup(groupId, this);
            throw e;
        }
    }

    @Override
    public synchronized void removeGroup(int groupId) throws IommuException {
        live();
        List<Requester> members = groups.get(groupId);
        if (members == null) {
            throw new IommuException(Errno.EINVAL, "group " + groupId + " is not in container " + id);
        }
        if (type != null) {
            detach(members);
        }
        groups.remove(groupId);
        context.releaseGroup(groupId, this);
        if (groups.isEmpty()) {
            releaseIommu();
        }
    }

    @Override
    public synchronized int[] groups() {
        return groups.keySet().stream().mapToInt(Integer::intValue).toArray();
    }

    @Override
    public synchronized void setIommu(VfioIommuType type) throws IommuException {
        live();
        if (type == null) {
            throw new IommuException(Errno.EINVAL, "no IOMMU type");
        }
        if (groups.isEmpty()) {
            throw new IommuException(Errno.EINVAL, "container " + id + " has no group: add one before setting the IOMMU");
        }
        if (this.type != null) {
            throw new IommuException(Errno.EINVAL, "container " + id + " is set to " + this.type + " already");
        }
        if (type == VfioIommuType.NESTING && groups.size() > 1) {
            // As the series' attach_group: a nesting container includes only one group.
            throw new IommuException(Errno.EINVAL, "a nesting container holds one group, container " + id + " has "
                    + groups.size());
        }
        this.type = type;
        List<List<Requester>> attached = new ArrayList<>();
        try {
            for (List<Requester> members : groups.values()) {
                attach(members);
                attached.add(members);
            }
            if (type == VfioIommuType.NESTING) {
                nesting.start(domains.values().iterator().next().driver().nestingInfo()
                        .supports(NestingFeature.SYSWIDE_PASID));
            }
        } catch (IommuException | RuntimeException e) {
            for (List<Requester> members : attached) {
                detach(members);
            }
            nesting.stop();
            this.type = null;
            throw e;
        }
    }

    @Override
    public synchronized Optional<VfioIommuType> iommuType() {
        return Optional.ofNullable(type);
    }

    /**
     * Attaches a group's requesters to the domain of their instance (allocating it, and replaying
     * every mapping into it, when it is the instance's first group), then replays the nesting state
     * onto them. Undoes everything on failure.
     */
    private void attach(List<Requester> members) throws IommuException {
        String instanceName = members.get(0).iommu();
        IommuInstance instance = context.registry().instance(instanceName)
                .orElseThrow(() -> new IommuException(Errno.ENODEV, "no IOMMU instance '" + instanceName + "'"));
        ContainerDomain cd = domains.get(instanceName);
        boolean fresh = cd == null;
        if (type == VfioIommuType.NESTING) {
            if (!nestingCapable(instance)) {
                throw new IommuException(Errno.EINVAL, instanceName + " offers no nesting (neither BIND_PGTBL nor PASID_TABLE)");
            }
        }
        if (fresh) {
            IommuDomain domain = instance.driver().allocateDomain(DomainType.UNMANAGED);
            cd = new ContainerDomain(instance, domain);
            try {
                checkMappingsFit(instance, members, domain.inputAddressBits());
                List<DmaEntry> replayed = new ArrayList<>();
                try {
                    for (DmaEntry entry : dma.all()) {
                        DmaMappings.mapInto(domain, entry);
                        replayed.add(entry);
                    }
                } catch (IommuException e) {
                    replayed.forEach(entry -> DmaMappings.unmapQuietly(domain, entry));
                    throw e;
                }
            } catch (IommuException | RuntimeException e) {
                freeQuietly(cd);
                throw e;
            }
        } else {
            checkMappingsFit(instance, members, 64);
        }
        List<Requester> done = new ArrayList<>();
        try {
            for (Requester r : members) {
                if (r.mediated()) {
                    attachMediated(cd, r);
                } else {
                    cd.driver().attach(cd.domain, r.requesterId());
                }
                done.add(r);
            }
        } catch (IommuException | RuntimeException e) {
            for (Requester r : done) {
                detachQuietly(cd, r);
            }
            if (fresh) {
                freeQuietly(cd);
            }
            throw e;
        }
        cd.requesters.addAll(members);
        if (fresh) {
            domains.put(instanceName, cd);
        }
    }

    /** Every mapping must stay inside the usable IOVA ranges once the group's domain and regions count. */
    private void checkMappingsFit(IommuInstance instance, List<Requester> members, int newDomainBits)
            throws IommuException {
        if (dma.count() == 0) {
            return;
        }
        int bits = Math.min(apertureBits(), newDomainBits);
        List<ReservedRegion> reserved = reservedRegions();
        for (Requester r : members) {
            reserved.addAll(instance.driver().reservedRegions(r.requesterId()));
        }
        List<IovaRange> usable = IovaSpace.usable(bits, reserved);
        for (DmaEntry e : dma.all()) {
            if (!IovaSpace.fits(usable, e.iova, e.last())) {
                throw new IommuException(Errno.EINVAL, String.format(
                        "mapping 0x%x+0x%x lies outside the IOVA ranges usable with the group behind %s",
                        e.iova, e.size, instance.name()));
            }
        }
    }

    /**
     * Detaches a group's requesters (the driver undoes their PASID bindings) and frees an unused
     * domain.
     *
     * @return {@code false} if a driver refused to detach or free (a domain may still translate)
     */
    private boolean detach(List<Requester> members) {
        ContainerDomain cd = domains.get(members.get(0).iommu());
        if (cd == null) {
            return true; // its instance went away and took the domain with it
        }
        boolean clean = true;
        for (Requester r : members) {
            nesting.forget(cd, r);
            clean &= detachQuietly(cd, r);
            cd.requesters.remove(r);
        }
        if (cd.requesters.isEmpty()) {
            domains.remove(cd.instance.name());
            clean &= freeQuietly(cd);
        }
        return clean;
    }

    /**
     * A mediated requester has no requester id of its own: the domain is attached to a default
     * PASID of its parent's (the 2020 series' auxiliary domain, {@code iommu_aux_attach_device}),
     * taken from VFIO's own host set so that the VM can never free it.
     */
    private void attachMediated(ContainerDomain cd, Requester r) throws IommuException {
        PasidSet defaults = context.defaultPasids();
        int pasid = defaults.allocate();
        try {
            cd.driver().attachPasid(cd.domain, r.requesterId(), pasid);
        } catch (IommuException | RuntimeException e) {
            freeDefaultPasid(pasid);
            throw e;
        }
        mediatedPasids.put(r.name(), pasid);
    }

    private void freeDefaultPasid(int pasid) {
        try {
            context.defaultPasids().free(pasid);
        } catch (IommuException ignored) {
            // the service's set is closed: it freed every PASID
        }
    }

    /** @return {@code true} once detached: done, never attached (ENOENT) or instance closed (ENODEV) */
    private boolean detachQuietly(ContainerDomain cd, Requester r) {
        try {
            if (r.mediated()) {
                Integer pasid = mediatedPasids.get(r.name());
                if (pasid != null) {
                    try {
                        cd.driver().detachPasid(cd.domain, r.requesterId(), pasid);
                    } catch (IommuException e) {
                        if (e.errno() != Errno.ENOENT && e.errno() != Errno.ENODEV) {
                            throw e; // still attached: the PASID stays allocated, never reused while live
                        }
                    }
                    mediatedPasids.remove(r.name());
                    freeDefaultPasid(pasid);
                }
            } else {
                cd.driver().detach(cd.domain, r.requesterId());
            }
            return true;
        } catch (IommuException e) {
            return e.errno() == Errno.ENOENT || e.errno() == Errno.ENODEV;
        }
    }

    /** @return {@code true} once freed, by us or by the closed instance (ENODEV) */
    private static boolean freeQuietly(ContainerDomain cd) {
        try {
            cd.driver().freeDomain(cd.domain);
            return true;
        } catch (IommuException e) {
            return e.errno() == Errno.ENODEV;
        }
    }

    /**
     * The last group left (or the container closes): undo everything the IOMMU type set up. Pages
     * are unpinned only if every domain was detached and freed; if a driver refused, they stay
     * pinned (a leak, never a device reaching freed memory).
     */
    private void releaseIommu() {
        boolean clean = true;
        for (ContainerDomain cd : new ArrayList<>(domains.values())) {
            clean &= detach(new ArrayList<>(cd.requesters));
        }
        domains.clear();
        if (clean) {
            for (DmaEntry entry : new ArrayList<>(dma.all())) {
                dma.release(entry);
            }
        }
        nesting.stop();
        type = null;
    }

    /**
     * The instance is about to close (its backend is stopping): the groups behind it leave the
     * container, as if unplugged; the last one releases the IOMMU.
     */
    synchronized void instanceRemoved(String instanceName) {
        if (closed) {
            return;
        }
        List<Integer> leaving = new ArrayList<>();
        groups.forEach((gid, members) -> {
            if (members.get(0).iommu().equals(instanceName)) {
                leaving.add(gid);
            }
        });
        for (int gid : leaving) {
            if (type != null) {
                detach(groups.get(gid));
            }
            groups.remove(gid);
            context.releaseGroup(gid, this);
        }
        if (!leaving.isEmpty() && groups.isEmpty()) {
            releaseIommu();
        }
    }

    // ---- GET_INFO, MAP_DMA, UNMAP_DMA ----------------------------------------------------------

    @Override
    public synchronized VfioIommuInfo info() throws IommuException {
        live();
        iommuSet();
        Optional<NestingInfo> nestingInfo = type == VfioIommuType.NESTING
                ? Optional.of(domains.values().iterator().next().driver().nestingInfo())
                : Optional.empty();
        return new VfioIommuInfo(pageSizes(), usableRanges(), dmaEntryLimit - dma.count(), nestingInfo);
    }

    private long pageSizes() {
        long sizes = -1L;
        for (ContainerDomain cd : domains.values()) {
            sizes &= cd.domain.pageSizes();
        }
        return sizes;
    }

    private int apertureBits() {
        int bits = 64;
        for (ContainerDomain cd : domains.values()) {
            bits = Math.min(bits, cd.domain.inputAddressBits());
        }
        return bits;
    }

    private List<ReservedRegion> reservedRegions() {
        List<ReservedRegion> reserved = new ArrayList<>();
        for (ContainerDomain cd : domains.values()) {
            for (Requester r : cd.requesters) {
                reserved.addAll(cd.driver().reservedRegions(r.requesterId()));
            }
        }
        return reserved;
    }

    private List<IovaRange> usableRanges() {
        return IovaSpace.usable(apertureBits(), reservedRegions());
    }

    private long minPageSize() throws IommuException {
        long sizes = pageSizes();
        if (sizes == 0) {
            throw new IommuException(Errno.EINVAL, "the container's IOMMUs share no page size");
        }
        return Long.lowestOneBit(sizes);
    }

    @Override
    public synchronized void mapDma(long vaddr, long iova, long size, int flags) throws IommuException {
        live();
        iommuSet();
        int known = DMA_MAP_FLAG_READ | DMA_MAP_FLAG_WRITE;
        if ((flags & ~known) != 0) {
            throw new IommuException(Errno.EINVAL, String.format("unknown MAP_DMA flags 0x%x", flags & ~known));
        }
        if ((flags & known) == 0) {
            throw new IommuException(Errno.EINVAL, "MAP_DMA needs READ and/or WRITE");
        }
        long pgsize = minPageSize();
        if (size == 0 || ((size | iova | vaddr) & (pgsize - 1)) != 0) {
            throw new IommuException(Errno.EINVAL, String.format(
                    "MAP_DMA vaddr 0x%x iova 0x%x size 0x%x: size must be non-zero and all aligned to 0x%x",
                    vaddr, iova, size, pgsize));
        }
        long last = iova + size - 1;
        if (Long.compareUnsigned(last, iova) < 0 || Long.compareUnsigned(vaddr + size - 1, vaddr) < 0) {
            throw new IommuException(Errno.EINVAL, String.format("MAP_DMA iova 0x%x or vaddr 0x%x + 0x%x wraps", iova, vaddr, size));
        }
        DmaEntry clash = dma.overlapping(iova, last);
        if (clash != null) {
            throw new IommuException(Errno.EEXIST, String.format("iova 0x%x+0x%x overlaps the mapping 0x%x+0x%x",
                    iova, size, clash.iova, clash.size));
        }
        if (dma.count() >= dmaEntryLimit) {
            throw new IommuException(Errno.ENOSPC, "container " + id + " holds " + dma.count()
                    + " mappings, its dma_entry_limit");
        }
        if (!IovaSpace.fits(usableRanges(), iova, last)) {
            throw new IommuException(Errno.EINVAL, String.format(
                    "iova 0x%x+0x%x is outside the usable IOVA ranges (aperture minus reserved regions)", iova, size));
        }
        dma.map(vaddr, iova, size, flags, domainObjects());
    }

    @Override
    public synchronized long unmapDma(long iova, long size, int flags) throws IommuException {
        live();
        iommuSet();
        if ((flags & ~DMA_UNMAP_FLAG_ALL) != 0) {
            throw new IommuException(Errno.EINVAL, String.format("unknown UNMAP_DMA flags 0x%x", flags & ~DMA_UNMAP_FLAG_ALL));
        }
        long first;
        long last;
        if ((flags & DMA_UNMAP_FLAG_ALL) != 0) {
            if (iova != 0 || size != 0) {
                throw new IommuException(Errno.EINVAL, "UNMAP_DMA with FLAG_ALL needs iova = size = 0");
            }
            first = 0;
            last = -1L;
        } else {
            long pgsize = minPageSize();
            if ((iova & (pgsize - 1)) != 0 || size == 0 || (size & (pgsize - 1)) != 0) {
                throw new IommuException(Errno.EINVAL, String.format(
                        "UNMAP_DMA iova 0x%x size 0x%x: size must be non-zero and both aligned to 0x%x", iova, size, pgsize));
            }
            first = iova;
            last = iova + size - 1;
            if (Long.compareUnsigned(last, first) < 0) {
                throw new IommuException(Errno.EINVAL, String.format("UNMAP_DMA 0x%x+0x%x wraps", iova, size));
            }
            // type1v2: an unmap may not bisect a mapping.
            DmaEntry head = dma.containing(first);
            if (head != null && head.iova != first) {
                throw new IommuException(Errno.EINVAL, String.format(
                        "UNMAP_DMA 0x%x+0x%x would bisect the mapping 0x%x+0x%x", iova, size, head.iova, head.size));
            }
            DmaEntry tail = dma.containing(last);
            if (tail != null && tail.last() != last) {
                throw new IommuException(Errno.EINVAL, String.format(
                        "UNMAP_DMA 0x%x+0x%x would bisect the mapping 0x%x+0x%x", iova, size, tail.iova, tail.size));
            }
        }
        long unmapped = 0;
        Collection<IommuDomain> targets = domainObjects();
        for (DmaEntry entry : dma.within(first, last)) {
            dma.unmap(entry, targets);
            unmapped += entry.size;
        }
        return unmapped;
    }

    @Override
    public synchronized List<DmaMapping> mappings() {
        List<DmaMapping> list = new ArrayList<>();
        for (DmaEntry e : dma.all()) {
            list.add(e.toMapping());
        }
        return list;
    }

    private List<IommuDomain> domainObjects() {
        List<IommuDomain> list = new ArrayList<>();
        for (ContainerDomain cd : domains.values()) {
            list.add(cd.domain);
        }
        return list;
    }

    // ---- nesting ---------------------------------------------------------------------------------

    @Override
    public synchronized int pasidAlloc(int min, int max) throws IommuException {
        nestingDomain(NestingFeature.SYSWIDE_PASID);
        return nesting.alloc(min, max);
    }

    @Override
    public synchronized int pasidFree(int min, int max) throws IommuException {
        return nesting.free(nestingDomain(NestingFeature.SYSWIDE_PASID), min, max);
    }

    @Override
    public synchronized void bindGuestPageTable(GuestPasidBind bind) throws IommuException {
        nesting.bind(nestingDomain(NestingFeature.BIND_PGTBL), bind);
    }

    @Override
    public synchronized void unbindGuestPageTable(int hostPasid) throws IommuException {
        nesting.unbind(nestingDomain(NestingFeature.BIND_PGTBL), hostPasid);
    }

    @Override
    public synchronized Map<Integer, GuestPasidBind> bindings() {
        return nesting.bindings();
    }

    @Override
    public synchronized void cacheInvalidate(CacheInvalidation invalidation) throws IommuException {
        nesting.invalidate(nestingDomain(NestingFeature.CACHE_INVLD), invalidation);
    }

    @Override
    public synchronized void attachPasidTable(PasidTableConfig config) throws IommuException {
        nesting.attachTable(nestingDomain(NestingFeature.PASID_TABLE), config);
    }

    @Override
    public synchronized void detachPasidTable() throws IommuException {
        nesting.detachTable(nestingDomain(NestingFeature.PASID_TABLE));
    }

    @Override
    public synchronized Optional<PasidTableConfig> pasidTable() {
        return nesting.table();
    }

    // ---- state hand-over -------------------------------------------------------------------------

    @Override
    public synchronized ContainerState saveState() throws IommuException {
        live();
        iommuSet();
        boolean nested = type == VfioIommuType.NESTING;
        return new ContainerState(type, mappings(), nested ? nesting.allocated() : List.of(),
                nested ? nesting.bindings() : Map.of(), nested ? nesting.table() : Optional.empty());
    }

    @Override
    public synchronized void restoreState(ContainerState state) throws IommuException {
        live();
        iommuSet();
        if (state == null || state.type() != type) {
            throw new IommuException(Errno.EINVAL, "container " + id + " is " + type + ", the state "
                    + (state == null ? "is null" : "is of a " + state.type() + " container"));
        }
        boolean nested = type == VfioIommuType.NESTING;
        if (!dma.all().isEmpty() || nested && (!nesting.allocated().isEmpty() || !nesting.bindings().isEmpty()
                || nesting.table().isPresent())) {
            throw new IommuException(Errno.EBUSY, "container " + id + " is not fresh: it holds mappings or PASIDs");
        }
        List<DmaMapping> mapped = new ArrayList<>();
        List<Integer> allocated = new ArrayList<>();
        List<Integer> bound = new ArrayList<>();
        try {
            for (DmaMapping m : state.mappings()) {
                mapDma(m.vaddr(), m.iova(), m.size(), m.flags());
                mapped.add(m);
            }
            for (int pasid : state.pasids()) {
                allocated.add(pasidAlloc(pasid, pasid)); // fixed: EBUSY if another set holds it
            }
            for (GuestPasidBind bind : state.bindings().values()) {
                bindGuestPageTable(bind);
                bound.add(bind.hostPasid());
            }
            if (state.pasidTable().isPresent()) {
                attachPasidTable(state.pasidTable().get());
            }
        } catch (IommuException | RuntimeException e) {
            for (int pasid : bound) {
                quietly(() -> unbindGuestPageTable(pasid));
            }
            for (int pasid : allocated) {
                quietly(() -> pasidFree(pasid, pasid));
            }
            for (DmaMapping m : mapped) {
                quietly(() -> unmapDma(m.iova(), m.size(), 0));
            }
            throw e;
        }
    }

    private interface Step {
        void run() throws IommuException;
    }

    /** Undo during a rollback: the step's own failure must not hide the refusal being reported. */
    private static void quietly(Step step) {
        try {
            step.run();
        } catch (IommuException | RuntimeException e) {
            // left as it is: the rollback goes on with the next step
        }
    }

    /**
     * @return the nesting container's one domain, if its IOMMU offers {@code feature}
     * @throws IommuException {@code EOPNOTSUPP} otherwise
     */
    private ContainerDomain nestingDomain(NestingFeature feature) throws IommuException {
        live();
        if (type != VfioIommuType.NESTING) {
            throw new IommuException(Errno.EOPNOTSUPP, "container " + id + " is not a nesting container"
                    + (type == null ? " (no IOMMU type set)" : " (" + type + ")"));
        }
        ContainerDomain cd = domains.values().iterator().next();
        if (!cd.driver().nestingInfo().supports(feature)) {
            throw new IommuException(Errno.EOPNOTSUPP, cd.instance.name() + " does not offer " + feature);
        }
        return cd;
    }

    // ---- lifecycle ---------------------------------------------------------------------------------

    @Override
    public void close() {
        synchronized (this) {
            if (closed) {
                return;
            }
            for (int gid : new ArrayList<>(groups.keySet())) {
                if (type != null) {
                    detach(groups.get(gid));
                }
                context.releaseGroup(gid, this);
            }
            groups.clear();
            releaseIommu();
            closed = true;
        }
        context.closed(this);
    }

    @Override
    public synchronized boolean isClosed() {
        return closed;
    }

    private void live() throws IommuException {
        if (closed) {
            throw new IommuException(Errno.ENODEV, "container " + id + " is closed");
        }
    }

    private void iommuSet() throws IommuException {
        if (type == null) {
            throw new IommuException(Errno.EINVAL, "container " + id + " has no IOMMU type: VFIO_SET_IOMMU first");
        }
    }

    @Override
    public String toString() {
        return "container " + id + " of " + owner.name();
    }
}
