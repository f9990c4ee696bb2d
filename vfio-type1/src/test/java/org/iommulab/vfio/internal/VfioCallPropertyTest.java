package org.iommulab.vfio.internal;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.fail;

import java.util.ArrayList;
import java.util.EnumSet;
import java.util.List;
import java.util.Optional;
import java.util.Set;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.concurrent.atomic.AtomicInteger;

import org.iommulab.api.device.Requester;
import org.iommulab.api.errno.Errno;
import org.iommulab.api.errno.IommuException;
import org.iommulab.api.invalidation.CacheInvalidation;
import org.iommulab.api.invalidation.CacheType;
import org.iommulab.api.nesting.GuestPasidBind;
import org.iommulab.api.nesting.NestingInfo;
import org.iommulab.api.nesting.PasidTableConfig;
import org.iommulab.api.pasid.PasidSet;
import org.iommulab.api.pasid.Pasids;
import org.iommulab.api.process.HostProcess;
import org.iommulab.api.vfio.DmaMapping;
import org.iommulab.api.vfio.IovaRange;
import org.iommulab.api.vfio.VfioContainer;
import org.iommulab.api.vfio.VfioIommuInfo;
import org.iommulab.api.vfio.VfioIommuType;

import net.jqwik.api.Arbitraries;
import net.jqwik.api.Arbitrary;
import net.jqwik.api.Combinators;
import net.jqwik.api.EdgeCasesMode;
import net.jqwik.api.ForAll;
import net.jqwik.api.Property;
import net.jqwik.api.Provide;
import net.jqwik.api.Tuple;
import net.jqwik.api.lifecycle.BeforeContainer;
import net.jqwik.api.statistics.Statistics;
import net.jqwik.api.statistics.StatisticsReport;

/**
 * Random sequences of VFIO container calls with random and edge-case arguments, on VT-d and on
 * SMMUv3: attach and detach of groups (the container's, another IOMMU's, unknown ones), SET_IOMMU
 * (type1v2 or nesting), GET_INFO, MAP_DMA / UNMAP_DMA with random iova, vaddr, size and flags,
 * PASID request alloc/free, bind/unbind of guest page tables, cache invalidation with random fields,
 * and attach/detach of a PASID table.
 *
 * <p>Invariants: every call either returns or throws an {@link IommuException} carrying an
 * {@link Errno}, never another exception or error; a rejected call changes nothing (the mappings,
 * the owner's pinned and locked pages, the PASIDs its set holds, the bindings, the groups, the
 * IOMMU type and the PASID table compare equal before and after); MAP_DMA and UNMAP_DMA succeed or
 * fail exactly as a reference model of the type1v2 rules predicts (with the errno it predicts) and,
 * when they succeed, leave the mappings, the locked pages (one per mapped page) and the pinned pages
 * (one per distinct page mapped) that the model says; closing the container releases everything.
 *
 * <p><b>Reproducing.</b> jqwik prints the {@code seed} of a failing property and the shrunk call
 * sequence; the next run of this class tries the failing sample first (the jqwik database in
 * {@code target/jqwik-database}), and {@code @Property(seed = "<seed>")} pins it. Short pass:
 * {@code jqwik.tries.default} (200) sequences; long run:
 * {@code mvn -B -o -q -pl vfio-type1 test -Dtest=VfioCallPropertyTest -Djqwik.tries.default=1000000}.
 */
class VfioCallPropertyTest {
    static final long PAGE = 4096;
    static final long MB = 1 << 20;
    /** The owner's RAM: one mapping of its address space. */
    static final long RAM = 4 * MB;
    static final int DMA_ENTRY_LIMIT = 12;
    static final int PASID_QUOTA = 6;
    static final int UNKNOWN_GROUP = 4242;

    enum Vendor { VTD, SMMUV3 }

    enum Kind { ADD_GROUP, REMOVE_GROUP, SET_IOMMU, INFO, MAP, UNMAP, PASID_ALLOC, PASID_FREE, BIND, UNBIND, INVALIDATE,
        ATTACH_TABLE, DETACH_TABLE }

    /** One call; the meaning of {@code a}..{@code e} depends on the kind (see {@link #apply}). */
    record Call(Kind kind, long a, long b, long c, int d, int e) {
        @Override
        public String toString() {
            return String.format("%s(0x%x, 0x%x, 0x%x, %d, %d)", kind, a, b, c, d, e);
        }
    }

    static VfioStack stack;
    /** Group ids: [vendor][0] PASID-capable requester, [vendor][1] one without PASIDs. */
    static final int[][] GROUPS = new int[2][2];
    static final AtomicInteger TRIES = new AtomicInteger();

    @BeforeContainer
    static void start() throws Exception {
        stack = new VfioStack(DMA_ENTRY_LIMIT, PASID_QUOTA);
        String[] names = {"vtd0", "smmu0"};
        String[] vendors = {"vtd", "smmuv3"};
        for (int v = 0; v < 2; v++) {
            var iommu = stack.instance(vendors[v], names[v]);
            Requester pasidCapable = stack.device("dev" + v + "a", iommu, 0x10, 20);
            Requester plain = stack.device("dev" + v + "b", iommu, 0x18, 0);
            GROUPS[v][0] = pasidCapable.groupId();
            GROUPS[v][1] = plain.groupId();
        }
    }

    // ---- generation ---------------------------------------------------------------------------

    static Arbitrary<Long> pages(long max) {
        return Arbitraries.longs().between(0, max / PAGE - 1).map(p -> p * PAGE);
    }

    /** vaddr as an offset from the owner's RAM (a wild value is taken as is, see {@link #vaddr}). */
    static Arbitrary<Long> vaddrs() {
        return Arbitraries.frequencyOf(
                Tuple.of(8, pages(RAM)),
                Tuple.of(1, Arbitraries.longs().between(1, RAM).filter(v -> v % PAGE != 0)),
                Tuple.of(1, Arbitraries.of(RAM - PAGE, RAM, 64 * MB, -PAGE, -RAM)),
                Tuple.of(1, Arbitraries.longs().map(v -> v | 1L << 62)));
    }

    static Arbitrary<Long> iovas() {
        return Arbitraries.frequencyOf(
                Tuple.of(8, pages(2 * MB)),
                Tuple.of(1, Arbitraries.of(0xfee0_0000L, 0xfedf_f000L, 0x8_0000_0000L, (1L << 39) - PAGE, (1L << 48) - PAGE,
                        1L << 48, -PAGE, 0x800L, Long.MIN_VALUE)),
                Tuple.of(1, Arbitraries.longs()));
    }

    static Arbitrary<Long> sizes() {
        return Arbitraries.frequencyOf(
                Tuple.of(8, Arbitraries.longs().between(1, 16).map(n -> n * PAGE)),
                Tuple.of(1, Arbitraries.of(0L, 0x800L, PAGE + 1, RAM, RAM + PAGE, 1L << 30, 1L << 40, 1L << 42, 1L << 46,
                        (1L << 47) - PAGE, -PAGE, Long.MIN_VALUE)),
                Tuple.of(1, Arbitraries.longs()));
    }

    static Arbitrary<Integer> mapFlags() {
        return Arbitraries.frequencyOf(Tuple.of(8, Arbitraries.of(1, 2, 3, 3)), Tuple.of(1, Arbitraries.of(0, 4, 7, -1)),
                Tuple.of(1, Arbitraries.integers()));
    }

    static Arbitrary<Integer> pasids() {
        return Arbitraries.frequencyOf(Tuple.of(6, Arbitraries.integers().between(1, 12)),
                Tuple.of(1, Arbitraries.of(0, -1, Pasids.MAX_PASID, Pasids.MAX_PASID + 1, Integer.MIN_VALUE, Integer.MAX_VALUE)),
                Tuple.of(1, Arbitraries.integers()));
    }

    /** {@link #HELD} - k stands for the owner's k-th PASID at the time of the call (see {@link #pasid}). */
    static final int HELD = -100;

    /** Mostly a PASID the owner holds (when it holds one), else anything. */
    static Arbitrary<Integer> targets() {
        return Arbitraries.frequencyOf(Tuple.of(3, Arbitraries.integers().between(0, 5).map(k -> HELD - k)),
                Tuple.of(2, pasids()));
    }

    static Arbitrary<Call> calls() {
        Arbitrary<Long> any = Arbitraries.longs();
        Arbitrary<Integer> anyInt = Arbitraries.integers();
        Arbitrary<Integer> small = Arbitraries.integers().between(0, 7);
        return Arbitraries.frequencyOf(
                Tuple.of(2, Combinators.combine(Arbitraries.integers().between(0, 3), small)
                        .as((g, x) -> new Call(Kind.ADD_GROUP, g, 0, 0, x, 0))),
                Tuple.of(1, Combinators.combine(Arbitraries.integers().between(0, 3), small)
                        .as((g, x) -> new Call(Kind.REMOVE_GROUP, g, 0, 0, x, 0))),
                Tuple.of(2, Arbitraries.of(0, 0, 1, 1, 2).map(t -> new Call(Kind.SET_IOMMU, t, 0, 0, 0, 0))),
                Tuple.of(1, Arbitraries.just(new Call(Kind.INFO, 0, 0, 0, 0, 0))),
                Tuple.of(12, Combinators.combine(vaddrs(), iovas(), sizes(), mapFlags())
                        .as((v, i, s, f) -> new Call(Kind.MAP, v, i, s, f, 0))),
                Tuple.of(6, Combinators.combine(iovas(), sizes(), Arbitraries.frequencyOf(Tuple.of(8, Arbitraries.just(0)),
                        Tuple.of(1, Arbitraries.of(VfioContainer.DMA_UNMAP_FLAG_ALL, 1, 3)), Tuple.of(1, anyInt)),
                        Arbitraries.integers().between(0, 3))
                        .as((i, s, f, shape) -> new Call(Kind.UNMAP, i, s, 0, f, shape))),
                // Mostly [lo, lo + span]; sometimes any upper bound (below lo, beyond 20 bits).
                Tuple.of(4, Combinators.combine(pasids(), Arbitraries.integers().between(0, 20), pasids(), Arbitraries.integers().between(0, 4))
                        .as((lo, span, hi, pick) -> new Call(Kind.PASID_ALLOC, 0, 0, 0, lo, pick == 0 ? hi : lo + span))),
                Tuple.of(2, Combinators.combine(pasids(), pasids()).as((lo, hi) -> new Call(Kind.PASID_FREE, 0, 0, 0, lo, hi))),
                Tuple.of(3, Combinators.combine(targets(), Arbitraries.frequencyOf(Tuple.of(3, Arbitraries.just(48L)),
                        Tuple.of(1, Arbitraries.of(57L, 39L, 0L))), Arbitraries.frequencyOf(Tuple.of(3, pages(RAM)), Tuple.of(1, any)),
                        Arbitraries.integers().between(0, 127), Arbitraries.frequencyOf(Tuple.of(4, Arbitraries.just(1)), Tuple.of(1, small)))
                        .as((p, aw, pgd, fl, fmt) -> new Call(Kind.BIND, pgd, aw, 0, p, fl | fmt << 8))),
                Tuple.of(2, targets().map(p -> new Call(Kind.UNBIND, 0, 0, 0, p, 0))),
                Tuple.of(3, Combinators.combine(Arbitraries.integers().between(0, 7), Arbitraries.integers().between(0, 3),
                        targets(), any, Arbitraries.longs().between(-2, 70_000), Arbitraries.integers().between(0, 20))
                        .as((caches, gran, p, addr, gr, gs) -> new Call(Kind.INVALIDATE, addr, gr, gs, p, caches | gran << 3))),
                Tuple.of(2, Combinators.combine(any, Arbitraries.integers().between(-1, 21), Arbitraries.integers().between(0, 4),
                        Arbitraries.integers().between(0, 3), Arbitraries.integers().between(0, 3))
                        .as((base, bits, cfg, fmt, dss) -> new Call(Kind.ATTACH_TABLE, base & ~0x3fL, bits, 0, cfg, fmt | dss << 4))),
                Tuple.of(1, Arbitraries.just(new Call(Kind.DETACH_TABLE, 0, 0, 0, 0, 0))));
    }

    @Provide
    Arbitrary<List<Call>> sequences() {
        // Mostly the container is set up first (a group of the vendor's, then an IOMMU type), so
        // that most calls reach the IOMMU; shrinking may drop the set-up like any other call.
        Arbitrary<List<Call>> setUp = Arbitraries.frequencyOf(
                Tuple.of(1, Arbitraries.just(List.of())),
                Tuple.of(6, Combinators.combine(Arbitraries.integers().between(0, 1), Arbitraries.integers().between(0, 1))
                        .as((g, t) -> List.of(new Call(Kind.ADD_GROUP, g, 0, 0, 0, 0), new Call(Kind.SET_IOMMU, t, 0, 0, 0, 0)))));
        return Combinators.combine(setUp, calls().list().ofMinSize(1).ofMaxSize(40)).as((a, b) -> {
            List<Call> all = new ArrayList<>(a);
            all.addAll(b);
            return all;
        });
    }

    // ---- the property -----------------------------------------------------------------------------

    /** What a rejected call must leave as it was. */
    record State(List<DmaMapping> mappings, long pinned, long locked, Set<Integer> pasids, Set<Integer> bound,
            List<Integer> groups, Optional<VfioIommuType> type, Optional<PasidTableConfig> table) {
    }

    /** One try's world: the owner, its container, and the reference model of its mappings. */
    static final class World {
        final Vendor vendor;
        final HostProcess owner;
        final long ram;
        final VfioContainer c;
        final TreeMap<Long, DmaMapping> model = new TreeMap<>(Long::compareUnsigned);

        World(Vendor vendor, HostProcess owner, long ram, VfioContainer c) {
            this.vendor = vendor;
            this.owner = owner;
            this.ram = ram;
            this.c = c;
        }

        State state() {
            Set<Integer> pasids = new TreeSet<>();
            stack.pasids.set(owner.name()).ifPresent(s -> {
                for (int p : s.pasids()) {
                    pasids.add(p);
                }
            });
            List<Integer> groups = new ArrayList<>();
            for (int g : c.groups()) {
                groups.add(g);
            }
            return new State(c.mappings(), owner.pinnedPages(), owner.lockedPages(), pasids,
                    new TreeSet<>(c.bindings().keySet()), groups, c.iommuType(), c.pasidTable());
        }
    }

    @StatisticsReport(onFailureOnly = true) // the coverage checks below fail a property that gets nowhere
    @Property(edgeCases = EdgeCasesMode.NONE) // the generators weigh their own edge cases
    void everyCallSucceedsAsModelledOrFailsWithAnErrnoAndChangesNothing(@ForAll("sequences") List<Call> calls,
            @ForAll Vendor vendor, @ForAll boolean smallLockLimit) throws Exception {
        HostProcess owner = stack.processes.create("vm" + TRIES.incrementAndGet(), smallLockLimit ? 24 * PAGE : Long.MAX_VALUE);
        long ram = owner.mmap(RAM);
        World w = new World(vendor, owner, ram, stack.vfio.open(owner));
        try {
            for (int i = 0; i < calls.size(); i++) {
                step(w, calls.get(i), "call " + i + " " + calls.get(i));
            }
        } finally {
            w.c.close();
            stack.processes.exit(owner.name());
        }
        assertEquals(0, owner.pinnedPages(), "closing the container unpinned everything");
        assertEquals(0, owner.lockedPages(), "and uncharged it");
        assertEquals(Optional.empty(), stack.pasids.set(owner.name()), "and closed the owner's PASID set");
        // The sequences must get somewhere: mappings made and removed, PASIDs and PASID tables taken.
        Statistics.label("outcome").coverage(c -> {
            for (Kind k : List.of(Kind.MAP, Kind.UNMAP, Kind.PASID_ALLOC, Kind.ATTACH_TABLE)) {
                c.check(k, "ok").count(n -> n > 0);
            }
        });
    }

    private static void step(World w, Call call, String what) {
        State before = w.state();
        Errno predicted = predict(w, call);
        long result;
        try {
            result = apply(w, call);
        } catch (IommuException e) {
            Statistics.label("outcome").collect(call.kind(), String.valueOf(e.errno()));
            assertNotNull(e.errno(), what + ": an IommuException without an errno");
            if (predicted != null) {
                assertEquals(predicted, e.errno(), what + ": the model predicted " + predicted + " (" + e.getMessage() + ")");
            } else if (modelled(call)) {
                fail(what + ": the model predicted success, the container said " + e.errno() + ": " + e.getMessage());
            }
            assertEquals(before, w.state(), what + " was rejected with " + e.errno() + " but changed the container");
            return;
        } catch (Throwable e) {
            throw new AssertionError(what + " threw " + e + " instead of an IommuException", e);
        }
        Statistics.label("outcome").collect(call.kind(), "ok");
        if (predicted != null) {
            fail(what + " succeeded, the model predicted " + predicted);
        }
        follow(w, call, result, before);
        State after = w.state();
        if (call.kind() == Kind.INVALIDATE || call.kind() == Kind.INFO) {
            assertEquals(before, after, what + " changes no state");
        }
        assertEquals(new ArrayList<>(w.model.values()), after.mappings(), what + ": the mappings");
        long pages = 0;
        Set<Long> distinct = new TreeSet<>();
        for (DmaMapping m : w.model.values()) {
            pages += m.size() / PAGE;
            for (long off = 0; off < m.size(); off += PAGE) {
                distinct.add(m.vaddr() + off);
            }
        }
        assertEquals(pages, after.locked(), what + ": one locked page per mapped page");
        assertEquals(distinct.size(), after.pinned(), what + ": one pin per distinct page mapped");
    }

    private static boolean modelled(Call call) {
        return call.kind() == Kind.MAP || call.kind() == Kind.UNMAP;
    }

    /** The owner's virtual address of a generated vaddr: an offset inside its RAM, else taken as is. */
    private static long vaddr(World w, long generated) {
        return generated >= -RAM && generated <= 64 * MB ? w.ram + generated : generated;
    }

    /** The UNMAP range of a call: free, or (shape 1-3) a run of existing mappings when there are some. */
    private static long[] unmapRange(World w, Call call) {
        if ((call.d() & VfioContainer.DMA_UNMAP_FLAG_ALL) != 0 && call.e() > 0) {
            return new long[] {0, 0};
        }
        if (call.e() == 0 || w.model.isEmpty() || call.d() != 0) {
            return new long[] {call.a(), call.b()};
        }
        List<DmaMapping> all = new ArrayList<>(w.model.values());
        int from = (int) Long.remainderUnsigned(call.a(), all.size());
        int to = Math.min(all.size() - 1, from + call.e() - 1);
        long iova = all.get(from).iova();
        return new long[] {iova, all.get(to).iova() + all.get(to).size() - iova};
    }

    /** The errno the type1v2 rules give MAP_DMA or UNMAP_DMA, or {@code null} for success (other calls: unknown). */
    private static Errno predict(World w, Call call) {
        if (!modelled(call)) {
            return null;
        }
        if (w.c.iommuType().isEmpty()) {
            return Errno.EINVAL;
        }
        VfioIommuInfo info;
        try {
            info = w.c.info();
        } catch (IommuException e) {
            throw new AssertionError("GET_INFO failed on a set container", e);
        }
        long pg = Long.lowestOneBit(info.pageSizes());
        if (call.kind() == Kind.MAP) {
            long vaddr = vaddr(w, call.a());
            long iova = call.b();
            long size = call.c();
            int flags = call.d();
            if ((flags & ~3) != 0 || (flags & 3) == 0 || size == 0 || ((vaddr | iova | size) & (pg - 1)) != 0) {
                return Errno.EINVAL;
            }
            long last = iova + size - 1;
            if (Long.compareUnsigned(last, iova) < 0 || Long.compareUnsigned(vaddr + size - 1, vaddr) < 0) {
                return Errno.EINVAL;
            }
            if (!overlapping(w, iova, last).isEmpty()) {
                return Errno.EEXIST;
            }
            if (w.model.size() >= DMA_ENTRY_LIMIT) {
                return Errno.ENOSPC;
            }
            if (info.iovaRanges().stream().noneMatch(r -> within(r, iova, last))) {
                return Errno.EINVAL;
            }
            long pages = size / PAGE;
            if (pages > Integer.MAX_VALUE || w.owner.lockedPages() + pages > w.owner.lockedLimit() / PAGE) {
                return Errno.ENOMEM; // too large to pin, or past RLIMIT_MEMLOCK: charged before pinning
            }
            if (Long.compareUnsigned(vaddr - w.ram, RAM) >= 0 || Long.compareUnsigned(vaddr - w.ram + size, RAM) > 0) {
                return Errno.EFAULT;
            }
            return null;
        }
        if ((call.d() & ~VfioContainer.DMA_UNMAP_FLAG_ALL) != 0) {
            return Errno.EINVAL;
        }
        long[] r = unmapRange(w, call);
        if ((call.d() & VfioContainer.DMA_UNMAP_FLAG_ALL) != 0) {
            return r[0] != 0 || r[1] != 0 ? Errno.EINVAL : null;
        }
        long first = r[0];
        long last = r[0] + r[1] - 1;
        if (((first | r[1]) & (pg - 1)) != 0 || r[1] == 0 || Long.compareUnsigned(last, first) < 0) {
            return Errno.EINVAL;
        }
        boolean bisects = overlapping(w, first, last).stream().anyMatch(m -> Long.compareUnsigned(m.iova(), first) < 0
                || Long.compareUnsigned(m.iova() + m.size() - 1, last) > 0);
        return bisects ? Errno.EINVAL : null;
    }

    private static boolean within(IovaRange r, long first, long last) {
        return Long.compareUnsigned(r.start(), first) <= 0 && Long.compareUnsigned(last, r.end()) <= 0;
    }

    private static List<DmaMapping> overlapping(World w, long first, long last) {
        List<DmaMapping> hit = new ArrayList<>();
        for (DmaMapping m : w.model.values()) {
            if (Long.compareUnsigned(m.iova(), last) <= 0 && Long.compareUnsigned(first, m.iova() + m.size() - 1) <= 0) {
                hit.add(m);
            }
        }
        return hit;
    }

    /** A generated PASID: {@link #HELD} - k is the owner's k-th PASID (modulo how many it holds), if it holds any. */
    private static int pasid(World w, int generated) {
        if (generated > HELD || generated <= HELD - 10) {
            return generated;
        }
        int[] held = stack.pasids.set(w.owner.name()).map(PasidSet::pasids).orElse(new int[0]);
        return held.length == 0 ? generated : held[(HELD - generated) % held.length];
    }

    private static int group(World w, long which) {
        int v = w.vendor.ordinal();
        return switch ((int) which) {
            case 0 -> GROUPS[v][0];
            case 1 -> GROUPS[v][1];
            case 2 -> GROUPS[1 - v][0];
            default -> UNKNOWN_GROUP;
        };
    }

    /** Makes the call. @return what it returns (sizes, counts, PASIDs), or 0 */
    private static long apply(World w, Call call) throws IommuException {
        VfioContainer c = w.c;
        switch (call.kind()) {
            case ADD_GROUP -> c.addGroup(group(w, call.a()));
            case REMOVE_GROUP -> c.removeGroup(group(w, call.a()));
            case SET_IOMMU -> c.setIommu(call.a() == 0 ? VfioIommuType.TYPE1V2 : call.a() == 1 ? VfioIommuType.NESTING : null);
            case INFO -> c.info();
            case MAP -> c.mapDma(vaddr(w, call.a()), call.b(), call.c(), call.d());
            case UNMAP -> {
                long[] r = unmapRange(w, call);
                return c.unmapDma(r[0], r[1], call.d());
            }
            case PASID_ALLOC -> {
                return c.pasidAlloc(call.d(), call.e());
            }
            case PASID_FREE -> {
                return c.pasidFree(call.d(), call.e());
            }
            case BIND -> {
                int fmt = call.e() >>> 8;
                String format = fmt == 0 ? "bogus" : fmt < 5 ? NestingInfo.FORMAT_INTEL_VTD : NestingInfo.FORMAT_ARM_SMMUV3;
                int p = pasid(w, call.d());
                c.bindGuestPageTable(new GuestPasidBind(format, p, p + 100, (call.e() & 64) != 0,
                        call.a() & ~0xfffL, (int) call.b(), call.e() & 63, 0, 0));
            }
            case UNBIND -> c.unbindGuestPageTable(pasid(w, call.d()));
            case INVALIDATE -> c.cacheInvalidate(invalidation(call, pasid(w, call.d())));
            case ATTACH_TABLE -> c.attachPasidTable(new PasidTableConfig(
                    (call.e() & 8) != 0 ? NestingInfo.FORMAT_INTEL_VTD : NestingInfo.FORMAT_ARM_SMMUV3,
                    call.a(), (int) call.b(), call.d(), call.e() & 3, (call.e() >>> 4) & 3));
            case DETACH_TABLE -> c.detachPasidTable();
        }
        return 0;
    }

    private static CacheInvalidation invalidation(Call call, int pasid) throws IommuException {
        Set<CacheType> caches = EnumSet.noneOf(CacheType.class);
        for (CacheType t : CacheType.values()) {
            if ((call.e() & 1 << t.ordinal()) != 0) {
                caches.add(t);
            }
        }
        int gran = (call.e() >>> 3) & 3;
        return switch (gran) {
            case 0 -> CacheInvalidation.domain(caches);
            case 1 -> CacheInvalidation.pasid(caches, pasid, call.b() < 0 ? call.b() : -1);
            default -> CacheInvalidation.range(caches, gran == 2 ? pasid : Pasids.NO_PASID, -1, call.a() & ~0xfffL,
                    1L << (12 + call.c() % 9), call.b(), (call.a() & 1) != 0);
        };
    }

    /** Brings the model up to date with a successful call and checks what it returned. */
    private static void follow(World w, Call call, long result, State before) {
        switch (call.kind()) {
            case MAP -> w.model.put(call.b(), new DmaMapping(call.b(), call.c(), vaddr(w, call.a()), call.d()));
            case UNMAP -> {
                long[] r = unmapRange(w, call);
                long first = r[0];
                long last = (call.d() & VfioContainer.DMA_UNMAP_FLAG_ALL) != 0 ? -1L : r[0] + r[1] - 1;
                long removed = 0;
                for (DmaMapping m : overlapping(w, first, last)) {
                    removed += m.size();
                    w.model.remove(m.iova());
                }
                assertEquals(removed, result, call + " returns the bytes it unmapped");
            }
            case REMOVE_GROUP -> {
                if (w.c.groups().length == 0) {
                    w.model.clear(); // the last group released the IOMMU
                    assertEquals(Set.of(), w.state().pasids(), "releasing the IOMMU freed the PASIDs it allocated");
                }
            }
            case PASID_ALLOC -> {
                int p = (int) result;
                assertEquals(false, before.pasids().contains(p), "PASID " + p + " was allocated twice");
                assertEquals(true, p >= Math.max(1, call.d()) && p <= call.e(), "PASID " + p + " inside the range asked for");
                PasidSet set = stack.pasids.set(w.owner.name()).orElseThrow();
                assertEquals(true, set.size() <= set.quota(), "the set stays within its quota");
            }
            case PASID_FREE -> {
                long inRange = before.pasids().stream().filter(p -> p >= call.d() && p <= call.e()).count();
                assertEquals(inRange, result, "PASID_FREE frees exactly the owner's PASIDs in the range");
            }
            default -> {
            }
        }
    }
}
