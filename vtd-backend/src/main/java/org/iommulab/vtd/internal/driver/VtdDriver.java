package org.iommulab.vtd.internal.driver;

import java.util.BitSet;
import java.util.EnumSet;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.CopyOnWriteArrayList;

import org.iommulab.api.errno.Errno;
import org.iommulab.api.errno.IommuException;
import org.iommulab.api.fault.FaultListener;
import org.iommulab.api.fault.IommuFault;
import org.iommulab.api.fault.PageResponse;
import org.iommulab.api.invalidation.CacheInvalidation;
import org.iommulab.api.invalidation.CacheType;
import org.iommulab.api.invalidation.Granularity;
import org.iommulab.api.memory.FrameAllocator;
import org.iommulab.api.memory.PhysicalMemory;
import org.iommulab.api.nesting.GuestPasidBind;
import org.iommulab.api.nesting.NestingFeature;
import org.iommulab.api.nesting.NestingInfo;
import org.iommulab.api.nesting.PasidTableConfig;
import org.iommulab.api.pasid.PasidSet;
import org.iommulab.api.pasid.Pasids;
import org.iommulab.api.spi.DomainType;
import org.iommulab.api.spi.IommuDomain;
import org.iommulab.api.spi.IommuDriver;
import org.iommulab.api.spi.ReservedRegion;
import org.iommulab.api.translation.Access;
import org.iommulab.api.translation.Stage;
import org.iommulab.pgtable.FlushOps;
import org.iommulab.pgtable.IoPageTable;
import org.iommulab.pgtable.format.VtdSecondStage;
import org.iommulab.pgtable.unit.ModeledInstance;
import org.iommulab.pgtable.unit.PendingPageRequests;
import org.iommulab.pgtable.unit.StateWords;
import org.iommulab.vtd.internal.hw.VtdHardware;

/**
 * The VT-d host driver: programs the hardware model as Linux's intel-iommu driver does. It takes
 * the unit over lazily, on first use, so that a register-level session that never uses the driver
 * finds the unit as reset left it. Structures live in frames from the frame pool: the root table,
 * scalable-mode context tables, a PASID directory per device (PDTS 7: 2^14 entries, 20-bit PASIDs)
 * and PASID tables; every change is followed by the invalidations Linux issues (context cache,
 * PASID cache, IOTLB) and an invalidation wait.
 *
 * <p>Thread safe: configuration changes are serialized by the driver's monitor; map and unmap run
 * concurrently through each domain's page table.
 */
public final class VtdDriver implements IommuDriver {
    /**
     * The interrupt window (VT-d 3.0 section 3.14: requests to 0xFEEx_xxxx are interrupt requests,
     * never translated), as Linux's {@code intel_iommu_get_resv_regions} reports it.
     */
    private static final ReservedRegion INTERRUPT_WINDOW = new ReservedRegion(0xfee0_0000L, 0x10_0000L, ReservedRegion.Kind.MSI);

    private static final int PDTS = 7;
    private static final int DIR_FRAMES = (8 << (PDTS + 7)) / 4096;

    private final String name;
    private final VtdHardware hw;
    private final PhysicalMemory memory;
    private final FrameAllocator frames;
    private final List<FaultListener> listeners = new CopyOnWriteArrayList<>();
    private final BitSet dids = new BitSet();
    private final Map<Integer, VtdDomain> domains = new HashMap<>();
    private final Map<Integer, Device> devices = new HashMap<>();
    private final Map<Integer, long[]> contextTables = new HashMap<>();
    private InvalidationQueue queue;
    private long rootTable;
    private long pageRequestQueue;
    /** Page request groups delivered to listeners and not answered yet, by (sid, pasid, group). */
    private final PendingPageRequests pendingGroups = new PendingPageRequests();
    /** Set while one thread drains the page request queue; others only flag {@link #prqMoreWork}. */
    private final java.util.concurrent.atomic.AtomicBoolean prqDraining = new java.util.concurrent.atomic.AtomicBoolean();
    private final java.util.concurrent.atomic.AtomicBoolean prqMoreWork = new java.util.concurrent.atomic.AtomicBoolean();
    private boolean closed;

    /**
     * What the driver set up for one source id: its PASID directory, the domain of its requests
     * without PASID (null when only PASIDs are attached), the domains attached to single PASIDs
     * (auxiliary domains) and the guest PASIDs bound with the domain each nests on.
     */
    private static final class Device {
        final int sid;
        VtdDomain domain;
        final long directory;
        final Map<Integer, Long> pasidTables = new HashMap<>();
        final Map<Integer, Integer> boundPasids = new HashMap<>(); // host PASID -> owner set id
        final Map<Integer, VtdDomain> boundParents = new HashMap<>(); // host PASID -> domain it nests on
        final Map<Integer, VtdDomain> auxPasids = new HashMap<>(); // PASID -> domain attached to it
        final Map<Integer, Integer> firstStagePasids = new HashMap<>(); // PASID -> DID of its entry

        Device(int sid, VtdDomain domain, long directory) {
            this.sid = sid;
            this.domain = domain;
            this.directory = directory;
        }

        /** @return {@code true} if {@code d} is attached by requester id or by a PASID */
        boolean attachedTo(VtdDomain d) {
            return domain == d || auxPasids.containsValue(d);
        }

        boolean empty() {
            return domain == null && auxPasids.isEmpty() && boundPasids.isEmpty() && firstStagePasids.isEmpty();
        }

        boolean pasidInUse(int pasid) {
            return boundPasids.containsKey(pasid) || auxPasids.containsKey(pasid) || firstStagePasids.containsKey(pasid);
        }
    }

    /**
     * @param name the instance name, for fault reports
     * @param hw the hardware model
     * @param memory the memory the structures live in
     * @param frames where structure frames come from
     */
    public VtdDriver(String name, VtdHardware hw, PhysicalMemory memory, FrameAllocator frames) {
        this.name = name;
        this.hw = hw;
        this.memory = memory;
        this.frames = frames;
    }

    // ---- bring-up ----------------------------------------------------------------------------

    /**
     * Takes the unit over: every frame is allocated first (and released if one is missing), then
     * the root table, queued invalidation, fault and page request events, and translation are
     * programmed.
     */
    private void init() throws IommuException {
        if (closed) {
            throw new IommuException(Errno.ENODEV, "IOMMU " + name + " is closed");
        }
        if (queue != null) {
            return;
        }
        boolean prs = (hw.ecap() & (1L << 29)) != 0;
        long root = 0;
        long prq = 0;
        InvalidationQueue q = null;
        try {
            q = new InvalidationQueue(hw, memory, frames);
            root = frames.allocateFrames(1);
            if (prs) {
                prq = frames.allocateFrames(1);
            }
        } catch (IommuException e) {
            freeQuietly(root, 1);
            if (q != null) {
                q.release(frames);
            }
            throw e;
        }
        rootTable = root;
        pageRequestQueue = prq;
        hw.write(0x20, rootTable | (1L << 10), 8); // RTADDR, TTM = 01 scalable mode
        hw.write(0x18, 1 << 30, 4); // SRTP
        q.program();
        hw.write(0x18, 1 << 26, 4); // QIE
        hw.setFaultInterrupt(this::faultInterrupt);
        hw.write(0x38, 0, 4); // FECTL: unmask fault events
        if (prs) {
            hw.write(0xd0, pageRequestQueue, 8); // PQA: one 4 KiB page, 128 descriptors
            hw.write(0xc0, 0, 8); // PQH
            hw.setPageRequestInterrupt(this::pageRequestInterrupt);
            hw.write(0xe0, 0, 4); // PECTL: unmask page request events
        }
        hw.write(0x18, (1 << 26) | (1 << 31), 4); // QIE + TE
        if ((hw.read(0x1c, 4) & ((1L << 31) | (1L << 26) | (1L << 30))) != ((1L << 31) | (1L << 26) | (1L << 30))) {
            throw new IommuException(Errno.EIO, "the unit did not report TES, QIES and RTPS in GSTS");
        }
        queue = q;
    }

    private void freeQuietly(long address, int count) {
        if (address != 0) {
            try {
                frames.freeFrames(address, count);
            } catch (IommuException e) {
                // not allocated: nothing to release
            }
        }
    }

    // ---- IommuDriver -------------------------------------------------------------------------

    @Override
    public NestingInfo nestingInfo() {
        long cap = hw.cap();
        long ecap = hw.ecap();
        boolean fs5 = (cap & (1L << 60)) != 0;
        long pageSizes = (1L << 12) | (1L << 21) | ((cap & (1L << 56)) != 0 ? 1L << 30 : 0);
        Set<NestingFeature> features = EnumSet.of(NestingFeature.SYSWIDE_PASID, NestingFeature.BIND_PGTBL,
                NestingFeature.CACHE_INVLD);
        if ((ecap & (1L << 29)) != 0) { // ECAP.PRS: the driver runs a page request queue
            features.add(NestingFeature.PAGE_RESP);
        }
        return new NestingInfo(NestingInfo.FORMAT_INTEL_VTD, features,
                fs5 ? 57 : 48, (int) ((ecap >>> 35) & 0x1f) + 1, pageSizes, Map.of("cap", cap, "ecap", ecap));
    }

    @Override
    public synchronized IommuDomain allocateDomain(DomainType type) throws IommuException {
        init();
        int did = dids.nextClearBit(1);
        if (did > 0xffff) {
            throw new IommuException(Errno.ENOSPC, "all 65535 domain ids are in use");
        }
        VtdDomain domain = newDomain(did, type, 0);
        dids.set(did);
        domains.put(did, domain);
        return domain;
    }

    /**
     * A domain object: UNMANAGED ones get a page table in the unit's format, a new one or, with a
     * non-zero {@code adoptRoot}, the one a previous build left at that address (live update).
     */
    private VtdDomain newDomain(int did, DomainType type, long adoptRoot) throws IommuException {
        if (type != DomainType.UNMANAGED) {
            return new VtdDomain(did, type, null, 0, false);
        }
        boolean firstStage = hw.config().firstStageDomains();
        int haw = Integer.parseInt(hw.config().values().get("haw"));
        int aw;
        org.iommulab.pgtable.PageTableFormat format;
        if (firstStage) {
            aw = 0; // FLPM 0: 4-level, 48-bit IOVAs
            format = org.iommulab.pgtable.format.X86FirstStage.of(4, haw, (hw.cap() & (1L << 56)) != 0, true, true);
        } else {
            aw = hw.config().values().get("mgaw").equals("39") ? 1 : 2;
            format = VtdSecondStage.of(aw, haw, (hw.cap() & (1L << 34)) != 0, (hw.cap() & (1L << 35)) != 0, false, false);
        }
        // First-stage entries are cached per PASID: flush RID_PASID (0) with PASID-based invalidations.
        int flushPasid = firstStage ? 0 : Pasids.NO_PASID;
        VtdDomain[] box = new VtdDomain[1];
        FlushOps flush = new FlushOps() {
            @Override
            public void flushLeaves(long iova, long size, long granule) throws IommuException {
                flushParent(box[0], flushPasid, iova, size, true);
            }

            @Override
            public void flushWalk(long iova, long size) throws IommuException {
                flushParent(box[0], flushPasid, iova, size, false);
            }
        };
        IoPageTable table = adoptRoot == 0 ? IoPageTable.create(format, memory, frames, flush)
                : IoPageTable.adopt(format, memory, frames, flush, format.pageSizes(), adoptRoot);
        box[0] = new VtdDomain(did, type, table, aw, firstStage);
        return box[0];
    }

    @Override
    public synchronized void freeDomain(IommuDomain domain) throws IommuException {
        VtdDomain d = own(domain);
        for (Device dev : devices.values()) {
            if (dev.attachedTo(d)) {
                throw new IommuException(Errno.EBUSY, "domain " + d.did() + " has attached devices");
            }
        }
        d.free();
        domains.remove(d.did());
        dids.clear(d.did());
    }

    @Override
    public synchronized void attach(IommuDomain domain, int requesterId) throws IommuException {
        VtdDomain d = own(domain);
        if (requesterId < 0 || requesterId > 0xffff) {
            throw new IommuException(Errno.EINVAL, "VT-d source ids are 16 bits, not " + requesterId);
        }
        Device existing = devices.get(requesterId);
        if (existing != null) {
            if (existing.domain != null) {
                throw new IommuException(Errno.EBUSY, String.format("%04x is attached to a domain already", requesterId));
            }
            // Only PASIDs were attached: its requests without PASID get the domain now.
            writePasidEntry(existing, 0, ridPasidEntry(d));
            existing.domain = d;
            try {
                queue.submitSync(pasidCache(d.did(), 0), 0, iotlbDomain(d.did()), 0);
            } catch (IommuException e) {
                clearPasidEntry(existing, 0);
                existing.domain = null;
                throw e;
            }
            return;
        }
        init();
        newDevice(requesterId, d, ridPasidEntry(d), d.did());
    }

    /**
     * Sets up a source id: PASID directory, PASID entry 0 (RID_PASID) and the scalable-mode context
     * entry, then invalidates the context cache. Leaves nothing behind on failure.
     */
    private Device newDevice(int requesterId, VtdDomain d, long[] ridPasid, int did) throws IommuException {
        long directory = frames.allocateFrames(DIR_FRAMES);
        Device dev = new Device(requesterId, d, directory);
        long entry = 0;
        try {
            writePasidEntry(dev, 0, ridPasid);
            entry = contextTable(requesterId >>> 8, (requesterId & 0x80) != 0) + (requesterId & 0x7f) * 32L;
            memory.write64(entry + 8, 0); // RID_PASID = 0
            // P, PASIDE (requests with PASID allowed), PRE (page requests) when supported, PDTS, directory.
            long pre = pageRequestQueue != 0 ? 1L << 4 : 0;
            memory.write64(entry, directory | ((long) PDTS << 9) | pre | (1L << 3) | 1L);
            devices.put(requesterId, dev);
            queue.submitSync(contextCacheDevice(did, requesterId), 0, pasidCache(did, 0), 0, iotlbDomain(did), 0);
            return dev;
        } catch (IommuException e) {
            // Rejected: leave nothing behind.
            if (entry != 0) {
                memory.write64(entry, 0);
            }
            devices.remove(requesterId);
            releaseDevice(dev);
            throw e;
        }
    }

    /** The RID_PASID (PASID 0) entry of a device: second stage, pass-through, or not present (blocked). */
    private long[] ridPasidEntry(VtdDomain d) {
        switch (d.type()) {
            case UNMANAGED:
                if (d.firstStage) {
                    // PGTT 1, FLPTPTR, FLPM, NXE (bit 5); RID_PASID requests are user requests, as Linux sets U/S.
                    return new long[] {(1L << 6) | 1L, d.did(), d.table().root() | (1L << 5) | ((long) d.aw << 2)};
                }
                return new long[] {d.table().root() | (2L << 6) | ((long) d.aw << 2) | 1L, d.did(), 0};
            case IDENTITY:
                return new long[] {(4L << 6) | 1L, d.did(), 0};
            default:
                return new long[] {0, d.did(), 0};
        }
    }

    @Override
    public synchronized void detach(IommuDomain domain, int requesterId) throws IommuException {
        VtdDomain d = own(domain);
        Device dev = devices.get(requesterId);
        if (dev == null || dev.domain != d) {
            throw new IommuException(Errno.ENOENT, String.format("%04x is not attached to domain %d", requesterId, d.did()));
        }
        dev.domain = null;
        if (!dev.auxPasids.containsValue(d)) {
            unbindNestedOn(dev, d);
        } else if (dev.boundParents.get(Pasids.RESERVED_PASID) == d) {
            teardown(dev, d, Pasids.RESERVED_PASID); // guest IOVA nests on the requests without PASID only
        }
        // First-stage bindings carry the detached domain's DID: they go with it, as SVA needs a domain.
        for (int pasid : new java.util.ArrayList<>(dev.firstStagePasids.keySet())) {
            unbindFirstStage(requesterId, pasid);
        }
        if (dev.empty()) {
            removeDevice(dev, d.did());
            return;
        }
        // PASIDs stay attached: only requests without PASID are blocked now.
        writePasidEntry(dev, 0, new long[] {0, d.did(), 0});
        queue.submitSync(pasidCache(d.did(), 0), 0, iotlbDomain(d.did()), 0);
    }

    /** Tears down the guest PASIDs of a device that nest on {@code d}. */
    private void unbindNestedOn(Device dev, VtdDomain d) throws IommuException {
        for (Map.Entry<Integer, VtdDomain> e : new HashMap<>(dev.boundParents).entrySet()) {
            if (e.getValue() == d) {
                teardown(dev, d, e.getKey());
            }
        }
    }

    /** Clears a source id's context entry and frees its PASID structures. */
    private void removeDevice(Device dev, int did) throws IommuException {
        int requesterId = dev.sid;
        long entry = contextTable(requesterId >>> 8, (requesterId & 0x80) != 0) + (requesterId & 0x7f) * 32L;
        memory.write64(entry, 0);
        devices.remove(requesterId);
        queue.submitSync(contextCacheDevice(did, requesterId), 0, pasidCacheDomain(did), 0, iotlbDomain(did), 0);
        releaseDevice(dev);
    }

    @Override
    public synchronized void attachPasid(IommuDomain domain, int requesterId, int pasid) throws IommuException {
        VtdDomain d = own(domain);
        if (d.type() != DomainType.UNMANAGED || d.firstStage) {
            throw new IommuException(Errno.EINVAL, "a PASID takes an UNMANAGED second-stage domain");
        }
        if (requesterId < 0 || requesterId > 0xffff) {
            throw new IommuException(Errno.EINVAL, "VT-d source ids are 16 bits, not " + requesterId);
        }
        int pasidBits = (int) ((hw.ecap() >>> 35) & 0x1f) + 1;
        if (!Pasids.isAllocatable(pasid) || pasid >= 1 << pasidBits) {
            throw new IommuException(Errno.EINVAL, "PASID " + pasid + " is outside 1.." + ((1 << pasidBits) - 1));
        }
        init();
        Device dev = devices.get(requesterId);
        if (dev != null && dev.pasidInUse(pasid)) {
            throw new IommuException(Errno.EBUSY, String.format("PASID %d of %04x is in use", pasid, requesterId));
        }
        boolean created = dev == null;
        if (created) {
            dev = newDevice(requesterId, null, new long[] {0, d.did(), 0}, d.did());
        }
        // PGTT 2 (second stage only), AW, SLPTPTR, DID: the PASID translates as the domain does.
        writePasidEntry(dev, pasid, new long[] {d.table().root() | (2L << 6) | ((long) d.aw << 2) | 1L, d.did(), 0});
        dev.auxPasids.put(pasid, d);
        try {
            queue.submitSync(pasidCache(d.did(), pasid), 0, pasidIotlbAll(d.did(), pasid), 0);
        } catch (IommuException e) {
            clearPasidEntry(dev, pasid);
            dev.auxPasids.remove(pasid);
            if (created) {
                removeDevice(dev, d.did());
            }
            throw e;
        }
    }

    @Override
    public synchronized void bindFirstStage(int requesterId, int pasid, long pgd, int addressWidth, int flags)
            throws IommuException {
        Device dev = devices.get(requesterId);
        if (dev == null || dev.domain == null) {
            throw new IommuException(Errno.ENOENT, String.format("%04x is not attached to a domain", requesterId));
        }
        int pasidBits = (int) ((hw.ecap() >>> 35) & 0x1f) + 1;
        if (!Pasids.isAllocatable(pasid) || pasid >= 1 << pasidBits) {
            throw new IommuException(Errno.EINVAL, "PASID " + pasid + " is outside 1.." + ((1 << pasidBits) - 1));
        }
        if ((flags & ~GuestPasidBind.VTD_FLAGS_MASK) != 0) {
            throw new IommuException(Errno.EINVAL, "unknown VT-d bind flags 0x" + Integer.toHexString(flags));
        }
        int flpm;
        if (addressWidth == 48) {
            flpm = 0;
        } else if (addressWidth == 57 && (hw.cap() & (1L << 60)) != 0) {
            flpm = 1;
        } else {
            throw new IommuException(Errno.EINVAL, "address width must be 48 or 57 (with FS5LP), not " + addressWidth);
        }
        if ((pgd & 0xfffL) != 0 || pgd < 0) {
            throw new IommuException(Errno.EINVAL, String.format("page table 0x%x is not 4 KiB aligned", pgd));
        }
        if (dev.pasidInUse(pasid)) {
            throw new IommuException(Errno.EBUSY, String.format("PASID %d of %04x is in use", pasid, requesterId));
        }
        int did = dev.domain.did();
        long sre = (flags & GuestPasidBind.VTD_SRE) != 0 ? 1 : 0;
        // PGTT 1 (first stage only), DID; FLPTPTR, NXE, FLPM, SRE (VT-d 3.x §9.6).
        writePasidEntry(dev, pasid, new long[] {(1L << 6) | 1L, did, pgd | (1L << 5) | ((long) flpm << 2) | sre});
        dev.firstStagePasids.put(pasid, did);
        try {
            queue.submitSync(pasidCache(did, pasid), 0, pasidIotlbAll(did, pasid), 0);
        } catch (IommuException e) {
            clearPasidEntry(dev, pasid);
            dev.firstStagePasids.remove(pasid);
            throw e;
        }
    }

    @Override
    public synchronized void unbindFirstStage(int requesterId, int pasid) throws IommuException {
        Device dev = devices.get(requesterId);
        Integer did = dev == null ? null : dev.firstStagePasids.get(pasid);
        if (did == null) {
            throw new IommuException(Errno.ENOENT, String.format("PASID %d of %04x is not bound", pasid, requesterId));
        }
        clearPasidEntry(dev, pasid);
        dev.firstStagePasids.remove(pasid);
        queue.submitSync(pasidCache(did, pasid), 0, pasidIotlbAll(did, pasid), 0);
    }

    @Override
    public synchronized void invalidateFirstStage(int requesterId, int pasid, long address, long size)
            throws IommuException {
        Device dev = devices.get(requesterId);
        Integer did = dev == null ? null : dev.firstStagePasids.get(pasid);
        if (did == null) {
            throw new IommuException(Errno.ENOENT, String.format("PASID %d of %04x is not bound", pasid, requesterId));
        }
        if ((address & 0xfff) != 0 || size <= 0 || (size & 0xfff) != 0 || address + size - 1 < address) {
            throw new IommuException(Errno.EINVAL, String.format("bad range 0x%x+0x%x", address, size));
        }
        flushRangeChecked(did, pasid, address, size, false);
    }

    @Override
    public synchronized void detachPasid(IommuDomain domain, int requesterId, int pasid) throws IommuException {
        VtdDomain d = own(domain);
        Device dev = devices.get(requesterId);
        if (dev == null || dev.auxPasids.get(pasid) != d) {
            throw new IommuException(Errno.ENOENT, String.format("domain %d is not attached to PASID %d of %04x",
                    d.did(), pasid, requesterId));
        }
        clearPasidEntry(dev, pasid);
        dev.auxPasids.remove(pasid);
        queue.submitSync(pasidCache(d.did(), pasid), 0, pasidIotlbAll(d.did(), pasid), 0);
        if (!dev.attachedTo(d)) {
            unbindNestedOn(dev, d);
        }
        if (dev.empty()) {
            removeDevice(dev, d.did());
        }
    }

    private void releaseDevice(Device dev) {
        for (long table : dev.pasidTables.values()) {
            freeQuietly(table, 1);
        }
        dev.pasidTables.clear();
        freeQuietly(dev.directory, DIR_FRAMES);
    }

    @Override
    public synchronized void bindGuestPasid(IommuDomain parent, int requesterId, GuestPasidBind bind, PasidSet owner)
            throws IommuException {
        VtdDomain d = own(parent);
        if (!NestingInfo.FORMAT_INTEL_VTD.equals(bind.format())) {
            throw new IommuException(Errno.EINVAL, "bind format must be " + NestingInfo.FORMAT_INTEL_VTD);
        }
        boolean ridPasid = bind.hostPasid() == Pasids.RESERVED_PASID;
        if (!ridPasid) {
            owner.checkOwned(bind.hostPasid());
        }
        if (!ridPasid && !Pasids.isAllocatable(bind.hostPasid())) {
            throw new IommuException(Errno.EINVAL, "host PASID " + bind.hostPasid() + " cannot be bound");
        }
        if ((bind.vtdFlags() & ~GuestPasidBind.VTD_FLAGS_MASK) != 0) {
            throw new IommuException(Errno.EINVAL, "unknown VT-d bind flags 0x" + Integer.toHexString(bind.vtdFlags()));
        }
        int flpm;
        if (bind.addressWidth() == 48) {
            flpm = 0;
        } else if (bind.addressWidth() == 57 && (hw.cap() & (1L << 60)) != 0) {
            flpm = 1;
        } else {
            throw new IommuException(Errno.EINVAL, "guest address width must be 48 or 57 (with FS5LP), not " + bind.addressWidth());
        }
        if ((bind.guestPgd() & 0xfffL) != 0 || bind.guestPgd() < 0) {
            throw new IommuException(Errno.EINVAL, String.format("guest page table 0x%x is not 4 KiB aligned", bind.guestPgd()));
        }
        if (d.type() != DomainType.UNMANAGED || d.firstStage) {
            throw new IommuException(Errno.EINVAL, "nesting needs an UNMANAGED second-stage parent domain");
        }
        Device dev = devices.get(requesterId);
        if (dev == null || !dev.attachedTo(d)) {
            throw new IommuException(Errno.ENOENT, String.format("%04x is not attached to domain %d", requesterId, d.did()));
        }
        if (ridPasid && dev.domain != d) {
            // Attached by a PASID only (an mdev's auxiliary domain): its requests without PASID are
            // the host's, not the binder's.
            throw new IommuException(Errno.EPERM, String.format(
                    "the RID_PASID of %04x is not translated by domain %d: only its PASIDs are attached", requesterId, d.did()));
        }
        if (dev.pasidInUse(bind.hostPasid())) {
            throw new IommuException(Errno.EBUSY, "PASID " + bind.hostPasid() + " is bound already");
        }
        long sre = (bind.vtdFlags() & GuestPasidBind.VTD_SRE) != 0 ? 1 : 0;
        long[] entry = {
            d.table().root() | (3L << 6) | ((long) d.aw << 2) | 1L,  // P, AW, PGTT = nested, SLPTPTR
            d.did(),                                                   // DID
            bind.guestPgd() | (1L << 5) | ((long) flpm << 2) | sre  // FLPTPTR, NXE, FLPM, SRE
        };
        writePasidEntry(dev, bind.hostPasid(), entry);
        try {
            flushBinding(d, bind.hostPasid());
        } catch (IommuException e) {
            if (ridPasid) {
                writePasidEntry(dev, 0, ridPasidEntry(d));
            } else {
                clearPasidEntry(dev, bind.hostPasid());
            }
            throw e;
        }
        dev.boundPasids.put(bind.hostPasid(), owner == null ? -1 : owner.id());
        dev.boundParents.put(bind.hostPasid(), d);
        d.nestedPasids.add(bind.hostPasid());
    }

    @Override
    public synchronized void unbindGuestPasid(IommuDomain parent, int requesterId, int hostPasid, PasidSet owner)
            throws IommuException {
        VtdDomain d = own(parent);
        if (hostPasid != Pasids.RESERVED_PASID) {
            owner.checkOwned(hostPasid);
        }
        Device dev = devices.get(requesterId);
        if (dev == null || dev.boundParents.get(hostPasid) != d) {
            throw new IommuException(Errno.ENOENT, "PASID " + hostPasid + " is not bound for " + String.format("%04x", requesterId));
        }
        teardown(dev, d, hostPasid);
    }

    /**
     * Removes a binding: entry cleared (RID_PASID: back to the device's own domain, second stage
     * only), PASID cache and PASID-based IOTLB invalidated.
     */
    private void teardown(Device dev, VtdDomain d, int hostPasid) throws IommuException {
        if (hostPasid == Pasids.RESERVED_PASID) {
            writePasidEntry(dev, 0, dev.domain != null ? ridPasidEntry(dev.domain) : new long[] {0, d.did(), 0});
        } else {
            clearPasidEntry(dev, hostPasid);
        }
        dev.boundPasids.remove(hostPasid);
        dev.boundParents.remove(hostPasid);
        if (devices.values().stream().noneMatch(other -> other.boundParents.get(hostPasid) == d)) {
            d.nestedPasids.remove(hostPasid);
        }
        flushBinding(d, hostPasid);
    }

    /**
     * After a nested binding changed: the PASID cache and PASID-based IOTLB of the PASID; for the
     * RID_PASID also the domain's second-stage-only IOTLB entries, which the change replaced.
     */
    private void flushBinding(VtdDomain d, int hostPasid) throws IommuException {
        if (hostPasid == Pasids.RESERVED_PASID) {
            queue.submitSync(pasidCache(d.did(), 0), 0, pasidIotlbAll(d.did(), 0), 0, iotlbDomain(d.did()), 0);
        } else {
            queue.submitSync(pasidCache(d.did(), hostPasid), 0, pasidIotlbAll(d.did(), hostPasid), 0);
        }
    }

    private void clearPasidEntry(Device dev, int pasid) {
        Long table = dev.pasidTables.get(pasid >>> 6);
        if (table != null) {
            memory.write64(table + ((long) (pasid & 0x3f) << 6), 0);
        }
    }

    /**
     * A PASID left its set (freed, or the set closed): every binding through it stops (the
     * {@link org.iommulab.api.pasid.PasidListener} contract), so that a later owner can bind it.
     *
     * @param setId the set that held it
     * @param pasid the PASID
     */
    public synchronized void pasidFreed(int setId, int pasid) {
        if (queue == null) {
            return;
        }
        for (Device dev : new java.util.ArrayList<>(devices.values())) {
            Integer owner = dev.boundPasids.get(pasid);
            try {
                if (owner != null && owner == setId) {
                    teardown(dev, dev.boundParents.get(pasid), pasid);
                }
                // A domain attached to a PASID that was freed under it stops translating too.
                VtdDomain aux = dev.auxPasids.get(pasid);
                if (aux != null) {
                    detachPasid(aux, dev.sid, pasid);
                }
            } catch (IommuException e) {
                // the entry is cleared; a failed invalidation was reported by the queue
            }
        }
    }

    @Override
    public void attachPasidTable(IommuDomain parent, int requesterId, PasidTableConfig config) throws IommuException {
        throw new IommuException(Errno.EOPNOTSUPP, "VT-d binds guest page tables per PASID; it has no guest-owned PASID table");
    }

    @Override
    public void detachPasidTable(IommuDomain parent, int requesterId) throws IommuException {
        throw new IommuException(Errno.EOPNOTSUPP, "VT-d has no guest-owned PASID table");
    }

    @Override
    public synchronized void cacheInvalidate(IommuDomain domain, int requesterId, CacheInvalidation inv, PasidSet owner)
            throws IommuException {
        VtdDomain d = own(domain);
        if (inv.pasid() == Pasids.RESERVED_PASID) {
            // Guest IOVA: PASID 0 is in no set; it is the binder's when its RID_PASID nests on the domain.
            Device dev = devices.get(requesterId);
            if (dev == null || dev.boundParents.get(Pasids.RESERVED_PASID) != d) {
                throw new IommuException(Errno.EPERM, String.format("the RID_PASID of %04x is not bound on domain %d",
                        requesterId, d.did()));
            }
        } else if (inv.pasid() != Pasids.NO_PASID) {
            owner.checkOwned(inv.pasid());
        }
        init();
        if (inv.caches().contains(CacheType.PASID)) {
            queue.submitSync(inv.granularity() == Granularity.DOMAIN ? pasidCacheDomain(d.did()) : pasidCache(d.did(), inv.pasid()), 0);
        }
        if (inv.caches().contains(CacheType.IOTLB)) {
            switch (inv.granularity()) {
                case DOMAIN:
                    queue.submitSync(iotlbDomain(d.did()), 0, pasidIotlbDomainWide(d.did()), 0);
                    break;
                case PASID:
                    queue.submitSync(pasidIotlbAll(d.did(), inv.pasid()), 0);
                    break;
                default:
                    flushRangeChecked(d.did(), inv.pasid(), inv.address(), inv.size(), inv.leaf());
                    break;
            }
        }
        // DEV_IOTLB: no device TLBs are modelled; the PASID-based device-TLB descriptor would be a no-op.
    }

    @Override
    public List<ReservedRegion> reservedRegions(int requesterId) {
        return List.of(INTERRUPT_WINDOW);
    }

    @Override
    public void pageResponse(int requesterId, int pasid, int groupIndex, PageResponse response) throws IommuException {
        pendingGroups.answer(requesterId, pasid, groupIndex, response, this::respond);
    }

    /** Page group response descriptor (type 9): PASID present, response code, RID, PASID; LPIG and group index. */
    private void respond(int sid, int pasid, int group, PageResponse response) throws IommuException {
        long q0 = 0x9L | ((long) response.code() << 12) | ((long) (sid & 0xffff) << 16);
        if (pasid != Pasids.NO_PASID) {
            q0 |= (1L << 4) | ((long) pasid << 32);
        }
        long q1 = (1L << 2) | ((long) (group & 0x1ff) << 3);
        synchronized (this) {
            init();
            queue.submitSync(q0, q1);
        }
    }

    /**
     * The page request interrupt handler (Linux {@code prq_event_thread}): reads descriptors from
     * PQH to PQT, hands each to the listeners (or answers INVALID when nobody listens), moves PQH
     * and clears PRS.PPR. A request without PASID (or with PASID 0, the RID_PASID) is answered
     * INVALID at once, as Linux's {@code handle_bad_prq_event}: listeners hear of it afterwards, and
     * their answer finds no pending group.
     */
    private void pageRequestInterrupt() {
        // The event arrives on a device thread, which must never wait for another thread's handler:
        // if one is draining, flag more work and return; the drainer loops until nothing is left.
        prqMoreWork.set(true);
        while (prqMoreWork.get() && prqDraining.compareAndSet(false, true)) {
            try {
                prqMoreWork.set(false);
                drainPageRequests();
            } finally {
                prqDraining.set(false);
            }
        }
    }

    private void drainPageRequests() {
        try {
            hw.write(0xdc, 1, 4); // clear PPR first: a request arriving now raises a new event
            long head = hw.read(0xc0, 8);
            long tail = hw.read(0xc8, 8);
            while (head != tail) {
                int guard = 128;
                while (head != tail && guard-- > 0) {
                    handlePageRequest(head);
                    head = (head + 32) % 4096;
                }
                hw.write(0xc0, head, 8);
                tail = hw.read(0xc8, 8); // requests that arrived while the listeners ran
            }
            hw.write(0xdc, 2, 4); // PRO: the unit answered what it could not queue
        } catch (IommuException e) {
            // offsets are valid; a failed response submission leaves the device waiting until reset
        }
    }

    private void handlePageRequest(long offset) throws IommuException {
        long q0 = memory.read64(pageRequestQueue + offset);
        long q1 = memory.read64(pageRequestQueue + offset + 8);
        int sid = (int) (q0 >>> 16) & 0xffff;
        int pasid = (q0 & (1L << 8)) != 0 ? (int) (q0 >>> 32) & 0xfffff : Pasids.NO_PASID;
        int group = (int) (q1 >>> 3) & 0x1ff;
        int access = ((q1 & 1) != 0 ? Access.READ : 0) | ((q1 & 2) != 0 ? Access.WRITE : 0)
                | ((q0 & (1L << 52)) != 0 ? Access.EXEC : 0) | ((q0 & (1L << 53)) != 0 ? Access.PRIV : 0);
        org.iommulab.api.fault.PageRequest request = new org.iommulab.api.fault.PageRequest(name, sid, pasid,
                q1 & ~0xfffL, access, group, (q1 & 4) != 0);
        if (listeners.isEmpty()) {
            respond(sid, pasid, group, PageResponse.INVALID);
            return;
        }
        if (pasid == Pasids.NO_PASID || pasid == Pasids.RESERVED_PASID) {
            // No PASID (or the RID_PASID): IOVA, which nobody pages in. Answered INVALID at once, as
            // Linux's prq handler does (handle_bad_prq_event); listeners only hear of it, and an
            // answer of theirs finds no pending group (ENOENT).
            if ((q1 & 4) != 0) {
                respond(sid, pasid, group, PageResponse.INVALID);
            }
            notifyListeners(request);
            return;
        }
        pendingGroups.add(sid, pasid, group);
        notifyListeners(request);
    }

    /** Hands a request to every listener; one listener's failure does not stop the others. */
    private void notifyListeners(org.iommulab.api.fault.PageRequest request) {
        for (FaultListener l : listeners) {
            try {
                l.pageRequest(request);
            } catch (RuntimeException e) {
                // a listener's failure must not stop the queue
            }
        }
    }

    @Override
    public void addFaultListener(FaultListener listener) {
        listeners.add(listener);
    }

    @Override
    public void removeFaultListener(FaultListener listener) {
        listeners.remove(listener);
    }

    /**
     * Turns translation, queued invalidation and page requests off first, so no walk can reach a
     * freed frame, then frees every structure and domain, each on its own. Later calls fail with
     * ENODEV; idempotent.
     */
    public synchronized void close() {
        if (closed) {
            return;
        }
        // IommuInstance.close: groups still waiting are answered INVALID while the queue runs.
        pendingGroups.denyAll(-1, this::respond);
        closed = true;
        if (queue != null) {
            try {
                hw.write(0x18, 0, 4); // TE and QIE off
                hw.write(0xd0, 0, 8); // no page request queue
            } catch (IommuException e) {
                // valid offsets: cannot happen
            }
        }
        hw.setFaultInterrupt(null);
        hw.setPageRequestInterrupt(null);
        for (VtdDomain d : domains.values()) {
            d.free();
        }
        domains.clear();
        for (Device dev : devices.values()) {
            releaseDevice(dev);
        }
        devices.clear();
        for (long[] halves : contextTables.values()) {
            freeQuietly(halves[0], 1);
            freeQuietly(halves[1], 1);
        }
        contextTables.clear();
        if (queue != null) {
            freeQuietly(pageRequestQueue, 1);
            freeQuietly(rootTable, 1);
            queue.release(frames);
        }
        pageRequestQueue = 0;
        pendingGroups.clear();
        queue = null;
    }

    // ---- live update -----------------------------------------------------------------------------

    /** Version of the {@code drv.*} sections below. */
    public static final int STATE_FORMAT = 1;

    /**
     * Records what this driver knows of the structures it built (sections {@code drv.main},
     * {@code drv.domains}, {@code drv.contexts}, {@code drv.devices}, {@code drv.pending} and the
     * frames it owns in {@code frames}), then lets the unit go without freeing or reprogramming
     * anything: the unit keeps translating from the same tables for the next build's driver.
     *
     * @param sections where the sections go
     */
    public synchronized void saveAndLetGo(Map<String, long[]> sections) {
        StateWords owned = StateWords.writer();
        StateWords main = StateWords.writer().put(queue != null).put(rootTable).put(pageRequestQueue);
        if (queue != null) {
            queue.save(main, owned);
            owned.put(rootTable).put(1);
            if (pageRequestQueue != 0) {
                owned.put(pageRequestQueue).put(1);
            }
        }
        StateWords ds = StateWords.writer();
        for (VtdDomain d : domains.values()) {
            IoPageTable t = d.table();
            ds.put(d.did()).put(d.type().ordinal()).put(t == null ? 0 : t.root()).put(d.nestedPasids.size());
            for (int pasid : d.nestedPasids) {
                ds.put(pasid);
            }
            if (t != null) {
                for (long w : t.ownedFrames()) {
                    owned.put(w);
                }
            }
        }
        StateWords cs = StateWords.writer();
        contextTables.forEach((bus, halves) -> {
            cs.put(bus).put(halves[0]).put(halves[1]);
            for (long half : halves) {
                if (half != 0) {
                    owned.put(half).put(1);
                }
            }
        });
        StateWords devs = StateWords.writer();
        for (Device dev : devices.values()) {
            devs.put(dev.sid).put(dev.domain == null ? 0 : dev.domain.did()).put(dev.directory);
            owned.put(dev.directory).put(DIR_FRAMES);
            devs.put(dev.pasidTables.size());
            dev.pasidTables.forEach((index, table) -> {
                devs.put(index).put(table);
                owned.put(table).put(1);
            });
            devs.put(dev.boundPasids.size());
            dev.boundPasids.forEach((pasid, set) -> devs.put(pasid).put(set).put(dev.boundParents.get(pasid).did()));
            devs.put(dev.auxPasids.size());
            dev.auxPasids.forEach((pasid, d) -> devs.put(pasid).put(d.did()));
            devs.put(dev.firstStagePasids.size());
            dev.firstStagePasids.forEach((pasid, did) -> devs.put(pasid).put(did));
        }
        sections.put("drv.main", main.toArray());
        sections.put("drv.domains", ds.toArray());
        sections.put("drv.contexts", cs.toArray());
        sections.put("drv.devices", devs.toArray());
        sections.put("drv.pending", pendingGroups.save());
        sections.put(ModeledInstance.FRAMES, owned.toArray());
        // Let go: this object answers no more calls and takes no more interrupts; nothing is freed.
        closed = true;
        hw.setFaultInterrupt(null);
        hw.setPageRequestInterrupt(null);
    }

    /**
     * A driver taking over the structures a previous build's driver left, as {@link #saveAndLetGo}
     * recorded them, on a unit restored from the same state.
     *
     * @throws IommuException {@code EINVAL} if a section is missing, short or inconsistent
     */
    public static VtdDriver restore(String name, VtdHardware hw, PhysicalMemory memory, FrameAllocator frames,
            Map<String, long[]> sections) throws IommuException {
        VtdDriver drv = new VtdDriver(name, hw, memory, frames);
        synchronized (drv) {
            drv.restoreFrom(sections);
        }
        return drv;
    }

    private void restoreFrom(Map<String, long[]> sections) throws IommuException {
        StateWords main = StateWords.reader(sections.getOrDefault("drv.main", new long[0]));
        boolean started = main.nextBoolean();
        rootTable = main.next();
        pageRequestQueue = main.next();
        if (started) {
            queue = InvalidationQueue.restore(hw, memory, main);
        }
        StateWords ds = StateWords.reader(sections.getOrDefault("drv.domains", new long[0]));
        DomainType[] types = DomainType.values();
        while (ds.hasNext()) {
            int did = ds.nextInt();
            int type = ds.nextInt();
            long root = ds.next();
            if (type < 0 || type >= types.length || (types[type] == DomainType.UNMANAGED) != (root != 0)) {
                throw new IommuException(Errno.EINVAL, "saved domain " + did + " is inconsistent");
            }
            VtdDomain d = newDomain(did, types[type], root);
            for (int n = ds.nextInt(); n > 0; n--) {
                d.nestedPasids.add(ds.nextInt());
            }
            dids.set(did);
            domains.put(did, d);
        }
        StateWords cs = StateWords.reader(sections.getOrDefault("drv.contexts", new long[0]));
        while (cs.hasNext()) {
            contextTables.put(cs.nextInt(), new long[] {cs.next(), cs.next()});
        }
        StateWords devs = StateWords.reader(sections.getOrDefault("drv.devices", new long[0]));
        while (devs.hasNext()) {
            int sid = devs.nextInt();
            int did = devs.nextInt();
            Device dev = new Device(sid, did == 0 ? null : savedDomain(did), devs.next());
            for (int n = devs.nextInt(); n > 0; n--) {
                dev.pasidTables.put(devs.nextInt(), devs.next());
            }
            for (int n = devs.nextInt(); n > 0; n--) {
                int pasid = devs.nextInt();
                dev.boundPasids.put(pasid, devs.nextInt());
                dev.boundParents.put(pasid, savedDomain(devs.nextInt()));
            }
            for (int n = devs.nextInt(); n > 0; n--) {
                dev.auxPasids.put(devs.nextInt(), savedDomain(devs.nextInt()));
            }
            for (int n = devs.nextInt(); n > 0; n--) {
                dev.firstStagePasids.put(devs.nextInt(), devs.nextInt());
            }
            devices.put(sid, dev);
        }
        pendingGroups.restore(sections.getOrDefault("drv.pending", new long[0]));
        if (started) {
            hw.setFaultInterrupt(this::faultInterrupt);
            if (pageRequestQueue != 0) {
                hw.setPageRequestInterrupt(this::pageRequestInterrupt);
            }
        }
    }

    private VtdDomain savedDomain(int did) throws IommuException {
        VtdDomain d = domains.get(did);
        if (d == null) {
            throw new IommuException(Errno.EINVAL, "saved state refers to domain " + did + ", which it does not list");
        }
        return d;
    }

    /** @return the live domains by id, for the instance's stable handles after a live update */
    public synchronized Map<Integer, IommuDomain> domainsById() {
        return new HashMap<>(domains);
    }

    // ---- structures --------------------------------------------------------------------------

    private VtdDomain own(IommuDomain domain) throws IommuException {
        if (!(domain instanceof VtdDomain) || domains.get(domain.id()) != domain) {
            throw new IommuException(Errno.ENOENT, "not a live domain of " + name);
        }
        return (VtdDomain) domain;
    }

    /** The context table for a bus half, created (and linked from the root entry) on first use. */
    private long contextTable(int bus, boolean upper) throws IommuException {
        long[] halves = contextTables.computeIfAbsent(bus, b -> new long[2]);
        int half = upper ? 1 : 0;
        if (halves[half] == 0) {
            halves[half] = frames.allocateFrames(1);
            memory.write64(rootTable + bus * 16L + half * 8L, halves[half] | 1L);
        }
        return halves[half];
    }

    /** Writes a PASID entry: upper words first, then the word with P, as Linux does. */
    private void writePasidEntry(Device dev, int pasid, long[] words) throws IommuException {
        int dirIndex = pasid >>> 6;
        Long table = dev.pasidTables.get(dirIndex);
        if (table == null) {
            table = frames.allocateFrames(1);
            dev.pasidTables.put(dirIndex, table);
            memory.write64(dev.directory + dirIndex * 8L, table | 1L);
        }
        long entry = table + ((long) (pasid & 0x3f) << 6);
        memory.write64(entry + 16, words[2]);
        memory.write64(entry + 8, words[1]);
        memory.write64(entry, words[0]);
    }

    // ---- invalidation descriptors (VT-d §6.5.2) ------------------------------------------------

    private static long contextCacheDevice(int did, int sid) {
        return 0x1L | (3L << 4) | ((long) did << 16) | ((long) sid << 32);
    }

    private static long pasidCache(int did, int pasid) {
        return 0x7L | (1L << 4) | ((long) did << 16) | ((long) pasid << 32);
    }

    private static long pasidCacheDomain(int did) {
        return 0x7L | ((long) did << 16);
    }

    private static long iotlbDomain(int did) {
        return 0x2L | (2L << 4) | ((long) did << 16);
    }

    private static long pasidIotlbAll(int did, int pasid) {
        return 0x6L | (2L << 4) | ((long) did << 16) | ((long) pasid << 32);
    }

    /** Domain-wide PASID-based IOTLB flush: a domain-selective IOTLB covers first-stage entries too here. */
    private static long pasidIotlbDomainWide(int did) {
        return iotlbDomain(did);
    }

    /**
     * Flushes a domain's range, and when guests nest on it, every bound PASID too: their cached
     * translations are keyed by guest virtual address, which a parent (GPA) range cannot name
     * (Linux: parent_domain_flush).
     */
    private void flushParent(VtdDomain d, int pasid, long iova, long size, boolean leaf) throws IommuException {
        flushRangeChecked(d.did(), pasid, iova, size, leaf);
        Integer[] nested = d.nestedPasids.toArray(new Integer[0]);
        if (nested.length > 0) {
            long[] descriptors = new long[2 * nested.length];
            for (int i = 0; i < nested.length; i++) {
                descriptors[2 * i] = pasidIotlbAll(d.did(), nested[i]);
            }
            queue.submitSync(descriptors);
        }
    }

    /** Page-selective flushes of naturally aligned power-of-two blocks (AM up to CAP.MAMV), else domain-wide. */
    private void flushRangeChecked(int did, int pasid, long iova, long size, boolean leaf) throws IommuException {
        long[] descriptors = new long[2 * 16];
        int n = 0;
        long addr = iova & ~0xfffL;
        long end = iova + size;
        while (Long.compareUnsigned(addr, end) < 0) {
            if (n == descriptors.length) {
                queue.submitSync(pasid == Pasids.NO_PASID ? iotlbDomain(did) : pasidIotlbAll(did, pasid), 0);
                return;
            }
            int am = Math.min(18, Long.numberOfTrailingZeros(addr >>> 12 | (1L << 18)));
            while (am > 0 && Long.compareUnsigned(addr + (4096L << am), end) > 0) {
                am--;
            }
            long q1 = addr | (leaf ? 1L << 6 : 0) | am;
            descriptors[n++] = pasid == Pasids.NO_PASID ? 0x2L | (3L << 4) | ((long) did << 16)
                    : 0x6L | (3L << 4) | ((long) did << 16) | ((long) pasid << 32);
            descriptors[n++] = q1;
            addr += 4096L << am;
        }
        queue.submitSync(java.util.Arrays.copyOf(descriptors, n));
    }

    // ---- faults ------------------------------------------------------------------------------

    /** The fault interrupt handler: drains the fault recording registers as Linux's dmar_fault does. */
    private void faultInterrupt() {
        try {
            int fsts = (int) hw.read(0x34, 4);
            if ((fsts & 2) == 0) {
                return;
            }
            int index = (fsts >>> 8) & 0xff;
            int nfr = (int) ((hw.cap() >>> 40) & 0xff) + 1;
            int fro = (int) ((hw.cap() >>> 24) & 0x3ff) * 16;
            for (int i = 0; i < nfr; i++) {
                int reg = fro + ((index + i) % nfr) * 16;
                long high = hw.read(reg + 8, 8);
                if (high >= 0) {
                    break; // F clear
                }
                long low = hw.read(reg, 8);
                hw.write(reg + 12, 1L << 31, 4); // clear F
                int reason = (int) (high >>> 32) & 0xff;
                int pasid = (high & (1L << 31)) != 0 ? (int) (high >>> 40) & 0xfffff : Pasids.NO_PASID;
                int access = ((high & (1L << 62)) != 0 ? Access.READ : Access.WRITE)
                        | ((high & (1L << 29)) != 0 ? Access.PRIV : 0) | ((high & (1L << 30)) != 0 ? Access.EXEC : 0);
                IommuFault fault = new IommuFault(name, (int) (high & 0xffff), pasid, low & ~0xfffL, access,
                        VtdHardware.faultKind(reason), stageOf(reason), reason, VtdHardware.faultName(reason));
                for (FaultListener l : listeners) {
                    try {
                        l.fault(fault);
                    } catch (RuntimeException e) {
                        // a listener's failure must not stop fault handling
                    }
                }
            }
            hw.write(0x34, 1, 4); // clear PFO
        } catch (IommuException e) {
            // register offsets above are valid; nothing else can fail
        }
    }

    private static Stage stageOf(int reason) {
        if (reason >= 0x78 && reason < 0x80) {
            return Stage.STAGE2;
        }
        if (reason >= 0x70 || reason == 0x91) {
            return Stage.STAGE1;
        }
        return Stage.CONFIG;
    }
}
