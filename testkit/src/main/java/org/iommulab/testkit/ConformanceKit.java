package org.iommulab.testkit;

import java.util.ArrayList;
import java.util.List;
import java.util.Objects;
import java.util.Set;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;

import org.iommulab.api.errno.Errno;
import org.iommulab.api.errno.IommuException;
import org.iommulab.api.fault.FaultListener;
import org.iommulab.api.fault.IommuFault;
import org.iommulab.api.fault.PageRequest;
import org.iommulab.api.invalidation.CacheInvalidation;
import org.iommulab.api.invalidation.CacheType;
import org.iommulab.api.nesting.GuestPasidBind;
import org.iommulab.api.nesting.NestingFeature;
import org.iommulab.api.nesting.NestingInfo;
import org.iommulab.api.pasid.PasidSet;
import org.iommulab.api.pasid.Pasids;
import org.iommulab.api.spi.DomainType;
import org.iommulab.api.spi.IommuDomain;
import org.iommulab.api.spi.IommuDriver;
import org.iommulab.api.spi.IommuInstance;
import org.iommulab.api.translation.Access;
import org.iommulab.api.translation.FaultKind;
import org.iommulab.api.translation.Translation;
import org.iommulab.pgtable.FlushOps;
import org.iommulab.pgtable.IoPageTable;
import org.iommulab.pgtable.PageTableFormat;

/**
 * The checks every backend must pass, through the SPI only.
 *
 * <ul>
 * <li>{@code nesting-info}: the nesting info is sane and consistent with the domains.</li>
 * <li>{@code map-translate-unmap}: a mapping translates where it points, in every page size up to
 * 2 MiB the domain offers; unmap removes it with no stale translation; detach blocks.</li>
 * <li>{@code faults}: unmapped and read-only accesses fault with the right kind, and the fault
 * reaches the driver's fault listeners.</li>
 * <li>{@code bad-input}: malformed or conflicting calls are refused with an errno and change
 * nothing.</li>
 * <li>{@code first-stage-bind}: a process table bound to a PASID translates; a change is stale
 * until invalidated; unbind stops it.</li>
 * <li>{@code nested-bind} ({@code BIND_PGTBL}) or {@code pasid-table} ({@code PASID_TABLE}): a
 * guest's table nested on a second-stage domain translates GVA to host; each invalidation form
 * (address, PASID, domain) leaves a stale translation before and the new one after.</li>
 * <li>{@code close-releases-everything}: closing an instance with live domains and bindings gives
 * every frame back, later calls are refused with an errno, and a new instance works.</li>
 * </ul>
 * A check that does not apply to the backend (it declares no such feature) throws
 * {@link NotApplicable}. {@link #hotSwap} is the container-only check.
 *
 * <p>Thread safe: checks share nothing.
 */
public final class ConformanceKit {
    /** Where the checks map: 1 GiB, aligned for every page size up to 1 GiB. */
    public static final long IOVA = 0x4000_0000L;
    /** Where nested checks put the guest's RAM (GPA). */
    public static final long GUEST_RAM = 0x10_0000L;
    /** A guest virtual address in every first-stage format's lower half. */
    public static final long GVA = 0x40_0000_0000L;
    private static final int RW = IommuDomain.PROT_READ | IommuDomain.PROT_WRITE;

    private ConformanceKit() {
    }

    /** The body of a check. */
    @FunctionalInterface
    public interface Body {
        void run(Session s) throws Exception;
    }

    /**
     * A named check.
     *
     * @param name short name, usable as a test name
     * @param description what it checks
     * @param body the check
     */
    public record Check(String name, String description, Body body) {
        /** Rejects nulls. */
        public Check {
            Objects.requireNonNull(name, "name");
            Objects.requireNonNull(description, "description");
            Objects.requireNonNull(body, "body");
        }

        /**
         * Runs the check with a session of its own, released afterwards.
         *
         * @throws AssertionError when the backend does not conform
         * @throws NotApplicable when the backend declares no feature the check needs
         */
        public void run(BackendUnderTest target) throws Exception {
            try (Session s = new Session(target, name)) {
                body.run(s);
            }
        }

        /**
         * Runs the check, reporting a check that does not apply to {@code skip} instead of
         * throwing: a JUnit 5 adapter passes {@code Assumptions::abort}.
         */
        public void run(BackendUnderTest target, java.util.function.Consumer<String> skip) throws Exception {
            try {
                run(target);
            } catch (NotApplicable e) {
                skip.accept(e.getMessage());
            }
        }

        /** @return the name and what the check checks, for a test report */
        public String displayName() {
            return name + ": " + description;
        }

        @Override
        public String toString() {
            return name;
        }
    }

    /** Thrown by a check that does not apply to the backend under test; test adapters report it as skipped. */
    public static final class NotApplicable extends RuntimeException {
        private static final long serialVersionUID = 1L;

        /** @param reason why */
        public NotApplicable(String reason) {
            super(reason);
        }
    }

    /** @return the checks, in a fixed order */
    public static List<Check> checks() {
        return List.of(
                new Check("nesting-info", "nesting info is sane and consistent with the domains", ConformanceKit::nestingInfo),
                new Check("map-translate-unmap", "mappings translate where they point, unmap leaves nothing stale",
                        ConformanceKit::mapTranslateUnmap),
                new Check("faults", "unmapped and read-only accesses fault, and fault listeners hear it", ConformanceKit::faults),
                new Check("bad-input", "malformed and conflicting calls get an errno and change nothing", ConformanceKit::badInput),
                new Check("first-stage-bind", "a process table bound to a PASID: translate, stale until invalidated, unbind",
                        ConformanceKit::firstStageBind),
                new Check("nested-bind", "BIND_PGTBL: a guest table nested on a domain, every invalidation form",
                        ConformanceKit::nestedBind),
                new Check("pasid-table", "PASID_TABLE: a guest PASID table nested on a domain, every invalidation form",
                        ConformanceKit::pasidTable),
                new Check("close-releases-everything", "close with live domains frees every frame; later calls get an errno",
                        ConformanceKit::closeReleasesEverything));
    }

    /**
     * Runs every check; for adapters without dynamic tests (Pax Exam).
     *
     * @return the names of the checks that did not apply
     * @throws AssertionError listing every failed check
     */
    public static List<String> runAll(BackendUnderTest target) throws Exception {
        List<String> skipped = new ArrayList<>();
        List<String> failed = new ArrayList<>();
        AssertionError first = null;
        for (Check c : checks()) {
            try {
                c.run(target);
            } catch (NotApplicable e) {
                skipped.add(c.name() + " (" + e.getMessage() + ")");
            } catch (AssertionError e) {
                failed.add(e.getMessage());
                first = first == null ? e : first;
            }
        }
        if (first != null) {
            AssertionError all = new AssertionError(failed.size() + " check(s) failed: " + String.join("; ", failed));
            all.initCause(first);
            throw all;
        }
        return skipped;
    }

    // ---- the checks --------------------------------------------------------------------------

    static void nestingInfo(Session s) throws Exception {
        IommuInstance i = s.instance();
        NestingInfo n = i.driver().nestingInfo();
        s.expect(n != null && n.format() != null && !n.format().isBlank(), "nestingInfo() names its format: " + n);
        s.expect(n.addressWidth() >= 32 && n.addressWidth() <= 64, "address width 32..64, not " + n.addressWidth());
        s.expect(n.pasidBits() >= 0 && n.pasidBits() <= 20, "PASID bits 0..20, not " + n.pasidBits());
        s.expect((n.pageSizes() & 0x1000) != 0, String.format("page sizes 0x%x include 4 KiB", n.pageSizes()));
        boolean nests = n.supports(NestingFeature.BIND_PGTBL) || n.supports(NestingFeature.PASID_TABLE);
        s.expect(!nests || n.pasidBits() > 0, "a backend that nests per PASID has PASIDs: " + n);
        s.expect(!n.supports(NestingFeature.BIND_PGTBL) || s.target().firstStageFormat() != null,
                "BIND_PGTBL is declared: the test must say which first-stage format guests use (firstStageFormat)");
        IommuDomain a = s.domain(i);
        IommuDomain b = s.domain(i);
        s.expect(a.id() != b.id(), "two live domains have distinct ids");
        s.expect((a.pageSizes() & 0x1000) != 0, String.format("domain page sizes 0x%x include 4 KiB", a.pageSizes()));
        s.expect(a.inputAddressBits() >= 32 && a.inputAddressBits() <= 64, "domain input bits 32..64, not " + a.inputAddressBits());
    }

    static void mapTranslateUnmap(Session s) throws Exception {
        IommuInstance i = s.instance();
        IommuDriver drv = i.driver();
        int rid = s.target().requesterId();
        IommuDomain d = s.domain(i);
        long pa = s.frames(2);
        d.map(IOVA, pa, 0x1000, RW);
        drv.attach(d, rid);
        s.expectAt(s.translate(i, rid, Pasids.NO_PASID, IOVA + 0x10, Access.READ), pa + 0x10, "read through a 4 KiB mapping");
        s.expectAt(s.translate(i, rid, Pasids.NO_PASID, IOVA + 0xff8, Access.WRITE), pa + 0xff8, "write through it");
        s.expect(d.iovaToPhys(IOVA + 0x10) == pa + 0x10, "iovaToPhys agrees with the hardware");
        if ((d.pageSizes() & (1L << 21)) != 0) {
            long big = 1L << 31; // 2 GiB: aligned, and inside any output range of 32 bits or more
            d.map(IOVA + (1L << 21), big, 1L << 21, IommuDomain.PROT_READ);
            Translation t = s.translate(i, rid, Pasids.NO_PASID, IOVA + (1L << 21) + 0x12_3458, Access.READ);
            s.expectAt(t, big + 0x12_3458, "read through a 2 MiB mapping");
            s.expect(d.unmap(IOVA + (1L << 21), 1L << 21) == 1L << 21, "unmap returns the bytes it removed");
            s.expectFault(s.translate(i, rid, Pasids.NO_PASID, IOVA + (1L << 21), Access.READ), "after the 2 MiB unmap");
        }
        s.expect(d.unmap(IOVA, 0x1000) == 0x1000, "unmap of the 4 KiB page returns 4 KiB");
        s.expectFault(s.translate(i, rid, Pasids.NO_PASID, IOVA + 0x10, Access.READ), "after unmap (no stale IOTLB entry)");
        s.expect(d.iovaToPhys(IOVA + 0x10) == -1, "iovaToPhys after unmap is -1");
        d.map(IOVA, pa + 0x1000, 0x1000, RW);
        s.expectAt(s.translate(i, rid, Pasids.NO_PASID, IOVA + 0x10, Access.READ), pa + 0x1010, "remapped elsewhere");
        drv.detach(d, rid);
        s.expectFault(s.translate(i, rid, Pasids.NO_PASID, IOVA + 0x10, Access.READ), "after detach");
        drv.freeDomain(d);
    }

    static void faults(Session s) throws Exception {
        IommuInstance i = s.instance();
        int rid = s.target().requesterId();
        List<IommuFault> heard = new CopyOnWriteArrayList<>();
        i.driver().addFaultListener(new FaultListener() {
            @Override
            public void fault(IommuFault fault) {
                heard.add(fault);
            }

            @Override
            public void pageRequest(PageRequest request) {
            }
        });
        IommuDomain d = s.domain(i);
        long pa = s.frames(1);
        d.map(IOVA, pa, 0x1000, IommuDomain.PROT_READ);
        i.driver().attach(d, rid);
        Translation ro = s.translate(i, rid, Pasids.NO_PASID, IOVA, Access.WRITE);
        s.expect(!ro.isSuccess() && ro.faultKind() == FaultKind.PERMISSION, "a write to a read-only page: PERMISSION, got " + ro);
        Translation none = s.translate(i, rid, Pasids.NO_PASID, IOVA + 0x10_0000, Access.READ);
        s.expect(!none.isSuccess() && none.faultKind() == FaultKind.TRANSLATION,
                "a read of an unmapped page: TRANSLATION, got " + none);
        s.expect(none.faultName() != null && !none.faultName().isBlank(), "a fault carries the architecture's name");
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(2);
        while (heard.stream().noneMatch(f -> f.address() >>> 12 == (IOVA + 0x10_0000) >>> 12) && System.nanoTime() < deadline) {
            Thread.sleep(1);
        }
        IommuFault f = heard.stream().filter(x -> x.address() >>> 12 == (IOVA + 0x10_0000) >>> 12).findFirst().orElse(null);
        s.expect(f != null, "the unmapped read reached the fault listeners (heard " + heard + ")");
        s.expect(f.requesterId() == rid && f.kind() == FaultKind.TRANSLATION, "the reported fault names the requester and kind: " + f);
        s.expect(heard.stream().anyMatch(x -> x.kind() == FaultKind.PERMISSION), "the write fault was reported too: " + heard);
    }

    static void badInput(Session s) throws Exception {
        IommuInstance i = s.instance();
        IommuDriver drv = i.driver();
        int rid = s.target().requesterId();
        IommuDomain d = s.domain(i);
        IommuDomain other = s.domain(i);
        long pa = s.frames(2);
        d.map(IOVA, pa, 0x2000, RW);
        drv.attach(d, rid);
        List<String> before = snapshot(s, i, d, rid);

        s.expectErrno("map of an unaligned IOVA", () -> d.map(IOVA + 0x10_0001, pa, 0x1000, RW), Errno.EINVAL);
        s.expectErrno("map of an unaligned physical address", () -> d.map(IOVA + 0x10_0000, pa + 1, 0x1000, RW), Errno.EINVAL);
        s.expectErrno("map of zero bytes", () -> d.map(IOVA + 0x10_0000, pa, 0, RW), Errno.EINVAL);
        s.expectErrno("map without read or write", () -> d.map(IOVA + 0x10_0000, pa, 0x1000, 0), Errno.EINVAL);
        s.expectErrno("map over a mapping", () -> d.map(IOVA + 0x1000, pa, 0x1000, RW), Errno.EEXIST);
        s.expectErrno("map beyond the input range", () -> d.map(1L << d.inputAddressBits(), pa, 0x1000, RW),
                Errno.EINVAL, Errno.ERANGE);
        s.expectErrno("unmap of an unaligned range", () -> d.unmap(IOVA + 1, 0x1000), Errno.EINVAL);
        s.expectErrno("attach to a requester id out of range", () -> drv.attach(other, -2), Errno.EINVAL, Errno.ENODEV);
        s.expectErrno("attach of an attached requester", () -> drv.attach(other, rid), Errno.EBUSY, Errno.EEXIST);
        s.expectErrno("free of a domain in use", () -> drv.freeDomain(d), Errno.EBUSY);
        s.expectErrno("detach of a requester not attached there", () -> drv.detach(other, rid), Errno.ENOENT, Errno.EINVAL);
        IommuDomain foreign = s.domain(s.instance());
        s.expectErrno("attach of another instance's domain", () -> drv.attach(foreign, rid + 8), Errno.ENOENT, Errno.EINVAL);
        s.expectErrno("free of another instance's domain", () -> drv.freeDomain(foreign), Errno.ENOENT, Errno.EINVAL);
        s.expectErrno("bindFirstStage of an unaligned table",
                () -> drv.bindFirstStage(rid, 1, 0x1234, 48, 0), Errno.EINVAL, Errno.EOPNOTSUPP, Errno.EBUSY, Errno.ENOENT);
        s.expectErrno("unbindFirstStage of a PASID never bound", () -> drv.unbindFirstStage(rid, 7), Errno.ENOENT,
                Errno.EOPNOTSUPP);
        s.expect(before.equals(snapshot(s, i, d, rid)), "refused calls changed what translates: " + before + " -> "
                + snapshot(s, i, d, rid));
    }

    /** What translates through {@code d} at the check's addresses, as text. */
    private static List<String> snapshot(Session s, IommuInstance i, IommuDomain d, int rid) {
        List<String> out = new ArrayList<>();
        for (long off : new long[] {0, 0x1000, 0x2000, 0x10_0000}) {
            out.add(s.translate(i, rid, Pasids.NO_PASID, IOVA + off, Access.READ).toString());
            out.add(Long.toHexString(d.iovaToPhys(IOVA + off)));
        }
        return out;
    }

    static void firstStageBind(Session s) throws Exception {
        PageTableFormat format = s.target().firstStageFormat();
        if (format == null) {
            throw new NotApplicable("the backend declares no first-stage format");
        }
        IommuInstance i = s.instance();
        IommuDriver drv = i.driver();
        int rid = s.target().requesterId();
        IommuDomain base;
        try {
            base = drv.allocateDomain(DomainType.IDENTITY);
        } catch (IommuException e) {
            base = s.domain(i);
        }
        drv.attach(base, rid);
        IoPageTable process = IoPageTable.create(format, s.target().memory(), s.target().frames(), FlushOps.NONE);
        try {
            long pa = s.frames(2);
            process.map(GVA, pa, 0x1000, RW);
            int width = format.inputBits();
            try {
                drv.bindFirstStage(rid, 1, process.root(), width, 0);
            } catch (IommuException e) {
                if (e.errno() == Errno.EOPNOTSUPP) {
                    throw new NotApplicable("bindFirstStage: " + e.getMessage());
                }
                throw e;
            }
            s.expectAt(s.translate(i, rid, 1, GVA + 0x18, Access.WRITE), pa + 0x18, "DMA with PASID 1 walks the process table");
            s.expectErrno("a second bind of the same PASID", () -> drv.bindFirstStage(rid, 1, process.root(), width, 0),
                    Errno.EBUSY);
            process.unmap(GVA, 0x1000);
            process.map(GVA, pa + 0x1000, 0x1000, RW);
            s.expectAt(s.translate(i, rid, 1, GVA + 0x18, Access.READ), pa + 0x18, "stale until invalidated");
            drv.invalidateFirstStage(rid, 1, GVA, 0x1000);
            s.expectAt(s.translate(i, rid, 1, GVA + 0x18, Access.READ), pa + 0x1018, "after invalidateFirstStage");
            drv.unbindFirstStage(rid, 1);
            s.expectFault(s.translate(i, rid, 1, GVA + 0x18, Access.READ), "after unbind");
            s.expectErrno("unbind of an unbound PASID", () -> drv.unbindFirstStage(rid, 1), Errno.ENOENT);
        } finally {
            process.destroy();
        }
    }

    static void nestedBind(Session s) throws Exception {
        IommuInstance i = s.instance();
        IommuDriver drv = i.driver();
        NestingInfo n = drv.nestingInfo();
        if (!n.supports(NestingFeature.BIND_PGTBL)) {
            throw new NotApplicable("the backend does not declare BIND_PGTBL");
        }
        int rid = s.target().requesterId();
        Nest nest = nest(s, i, "BIND_PGTBL");
        IommuDomain parent = nest.parent();
        IoPageTable table = nest.table();
        PageTableFormat format = table.format();
        PasidSet owner = s.target().pasidSet("kit-guest-" + i.name());
        PasidSet stranger = s.target().pasidSet("kit-stranger-" + i.name());
        try {
            int pasid = owner.allocate();
            GuestPasidBind bind = new GuestPasidBind(n.format(), pasid, 1, true, table.root(), format.inputBits(), 0, 0, 0);
            s.expectErrno("a bind of a PASID the owner does not hold", () -> drv.bindGuestPasid(parent, rid,
                    new GuestPasidBind(n.format(), stranger.allocate(), 1, true, table.root(), format.inputBits(), 0, 0, 0),
                    owner), Errno.EPERM);
            drv.bindGuestPasid(parent, rid, bind, owner);
            s.expectAt(s.translate(i, rid, pasid, GVA + 0x20, Access.READ), nest.host(nest.data()) + 0x20,
                    "GVA -> GPA -> HPA");
            invalidationForms(s, i, rid, pasid, -1, nest, inv -> drv.cacheInvalidate(parent, rid, inv, owner));
            s.expectErrno("an unbind by another owner", () -> drv.unbindGuestPasid(parent, rid, pasid, stranger), Errno.EPERM);
            drv.unbindGuestPasid(parent, rid, pasid, owner);
            s.expectFault(s.translate(i, rid, pasid, GVA + 0x20, Access.READ), "after unbind");
        } finally {
            owner.close();
            stranger.close();
        }
    }

    static void pasidTable(Session s) throws Exception {
        IommuInstance i = s.instance();
        IommuDriver drv = i.driver();
        if (!drv.nestingInfo().supports(NestingFeature.PASID_TABLE)) {
            throw new NotApplicable("the backend does not declare PASID_TABLE");
        }
        int rid = s.target().requesterId();
        Nest nest = nest(s, i, "PASID_TABLE");
        IommuDomain parent = nest.parent();
        int pasid = 1;
        GuestPasidTable t;
        try {
            t = s.target().writeGuestPasidTable(nest.guest(), pasid, nest.table().root());
        } catch (IommuException e) {
            if (e.errno() == Errno.EOPNOTSUPP) {
                throw new NotApplicable("the test supplies no guest PASID table writer: " + e.getMessage());
            }
            throw e;
        }
        drv.attachPasidTable(parent, rid, t.config());
        s.expectAt(s.translate(i, rid, pasid, GVA + 0x20, Access.READ), nest.host(nest.data()) + 0x20, "GVA -> GPA -> HPA");
        invalidationForms(s, i, rid, pasid, t.archId(), nest, inv -> drv.cacheInvalidate(parent, rid, inv, null));
        drv.detachPasidTable(parent, rid);
        s.expectFault(s.translate(i, rid, pasid, GVA + 0x20, Access.READ), "after the PASID table is detached");
    }

    /**
     * A guest for the nesting checks: a second-stage domain attached to the requester, the guest's
     * RAM mapped in it, and a first-stage table in guest memory mapping {@link #GVA} to four
     * pages of data.
     */
    private record Nest(IommuDomain parent, GuestMemory guest, IoPageTable table, long data) {
        long host(long gpa) {
            return guest.toHost(gpa);
        }
    }

    private static Nest nest(Session s, IommuInstance i, String feature) throws Exception {
        PageTableFormat format = s.target().firstStageFormat();
        s.expect(format != null, feature + " is declared: the test must give the guests' first-stage format");
        IommuDomain parent = s.domain(i);
        GuestMemory guest = s.guest(parent, GUEST_RAM, 64);
        i.driver().attach(parent, s.target().requesterId());
        IoPageTable table = IoPageTable.create(format, guest, guest, FlushOps.NONE);
        long data = guest.allocateFrames(4);
        table.map(GVA, data, 0x1000, RW);
        return new Nest(parent, guest, table, data);
    }

    @FunctionalInterface
    private interface Invalidator {
        void invalidate(CacheInvalidation inv) throws IommuException;
    }

    /**
     * For each form (one address, the whole PASID, the whole domain): the guest moves its page
     * without telling; the old translation stays; after the invalidation the new one is used.
     */
    private static void invalidationForms(Session s, IommuInstance i, int rid, int pasid, long archId, Nest nest,
            Invalidator invalidator) throws Exception {
        IoPageTable table = nest.table();
        long data = nest.data();
        CacheInvalidation[] forms = {
            CacheInvalidation.range(Set.of(CacheType.IOTLB), archId >= 0 ? Pasids.NO_PASID : pasid, archId, GVA, 0x1000, 1, true),
            CacheInvalidation.pasid(Set.of(CacheType.IOTLB), pasid, archId),
            CacheInvalidation.domain(Set.of(CacheType.IOTLB)),
        };
        long current = data;
        for (int k = 0; k < forms.length; k++) {
            long next = data + 0x1000L * (k + 1);
            table.unmap(GVA, 0x1000);
            table.map(GVA, next, 0x1000, RW);
            s.expectAt(s.translate(i, rid, pasid, GVA + 0x20, Access.READ), nest.host(current) + 0x20,
                    "stale before the " + forms[k].granularity() + " invalidation");
            invalidator.invalidate(forms[k]);
            s.expectAt(s.translate(i, rid, pasid, GVA + 0x20, Access.READ), nest.host(next) + 0x20,
                    "after the " + forms[k].granularity() + " invalidation");
            current = next;
        }
    }

    static void closeReleasesEverything(Session s) throws Exception {
        long baseline = s.target().frames().allocatedFrames();
        IommuInstance i = s.target().create("kit-close");
        IommuDriver drv = i.driver();
        int rid = s.target().requesterId();
        IommuDomain d = drv.allocateDomain(DomainType.UNMANAGED);
        d.map(IOVA, 1L << 31, 4L << 20, RW);
        drv.attach(d, rid);
        IommuDomain idle = drv.allocateDomain(DomainType.UNMANAGED);
        idle.map(IOVA, 1L << 31, 0x1000, IommuDomain.PROT_READ);
        s.expect(s.target().frames().allocatedFrames() > baseline, "the instance allocated its structures from the frames given");
        i.close();
        s.expect(s.target().frames().allocatedFrames() == baseline, "close gave every frame back: "
                + (s.target().frames().allocatedFrames() - baseline) + " frame(s) left");
        s.expectFault(s.translate(i, rid, Pasids.NO_PASID, IOVA, Access.READ), "translation after close");
        s.expectErrno("a driver call after close", () -> drv.allocateDomain(DomainType.UNMANAGED), Errno.ENODEV);
        s.expectErrno("a map after close", () -> d.map(IOVA + 0x100_0000, 1L << 31, 0x1000, RW), Errno.ENODEV);
        IommuInstance fresh = s.instance();
        IommuDomain d2 = s.domain(fresh);
        d2.map(IOVA, 1L << 31, 0x1000, RW);
        fresh.driver().attach(d2, rid);
        s.expectAt(s.translate(fresh, rid, Pasids.NO_PASID, IOVA + 8, Access.READ), (1L << 31) + 8, "a new instance works");
    }

    // ---- container only ----------------------------------------------------------------------

    /** What the container adapter does to the backend's bundle. */
    public interface HotSwapControl {
        /** Stops the backend's bundle. */
        void stop() throws Exception;

        /** Starts it again and waits until its backend service is back. */
        void start() throws Exception;

        /** @return the names of the instances {@code InstanceListener}s heard leave, so far */
        List<String> removedInstances();
    }

    /**
     * Hot swap with live domains: the bundle stops while an instance has an attached, mapped domain;
     * consumers are told, the instance is closed and every frame is back; after a start, new
     * instances work.
     */
    public static void hotSwap(BackendUnderTest target, HotSwapControl control) throws Exception {
        try (Session s = new Session(target, "hot-swap")) {
            long baseline = target.frames().allocatedFrames();
            IommuInstance i = target.create("kit-swap");
            int rid = target.requesterId();
            IommuDomain d = i.driver().allocateDomain(DomainType.UNMANAGED);
            d.map(IOVA, 1L << 31, 2L << 20, RW);
            i.driver().attach(d, rid);
            s.expectAt(s.translate(i, rid, Pasids.NO_PASID, IOVA, Access.READ), 1L << 31, "before the stop");
            control.stop();
            s.expect(control.removedInstances().contains("kit-swap"), "listeners heard the instance leave: "
                    + control.removedInstances());
            s.expectFault(s.translate(i, rid, Pasids.NO_PASID, IOVA, Access.READ), "a DMA after the stop");
            s.expect(target.frames().allocatedFrames() == baseline, "every frame is back after the stop");
            s.expectErrno("a map through a departed domain", () -> d.map(IOVA + 0x100_0000, 1L << 31, 0x1000, RW), Errno.ENODEV);
            control.start();
            IommuInstance fresh = s.instance();
            IommuDomain d2 = s.domain(fresh);
            d2.map(IOVA, 1L << 31, 0x1000, RW);
            fresh.driver().attach(d2, rid);
            s.expectAt(s.translate(fresh, rid, Pasids.NO_PASID, IOVA + 8, Access.READ), (1L << 31) + 8, "after the start");
        }
    }
}
