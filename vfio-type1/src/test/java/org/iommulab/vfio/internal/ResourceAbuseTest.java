package org.iommulab.vfio.internal;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.BitSet;
import java.util.List;
import java.util.Random;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;
import java.util.concurrent.atomic.AtomicReferenceArray;

import org.iommulab.api.device.Requester;
import org.iommulab.api.errno.Errno;
import org.iommulab.api.errno.IommuException;
import org.iommulab.api.pasid.PasidSet;
import org.iommulab.api.pasid.Pasids;
import org.iommulab.api.process.HostProcess;
import org.iommulab.api.spi.IommuInstance;
import org.iommulab.api.vfio.DmaMapping;
import org.iommulab.api.vfio.VfioContainer;
import org.iommulab.api.vfio.VfioIommuType;
import org.iommulab.platform.internal.pasid.PasidSpaceImpl;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.function.Executable;

/**
 * Resource limits under abuse: the PASID quota of a set (ENOSPC, the set unchanged), many sets
 * hammering one PASID space from several threads (never more PASIDs than the space or a quota
 * allows, never one PASID twice), the DMA entry limit (ENOSPC, no partial state) and the
 * locked-memory limit and frame exhaustion (ENOMEM, nothing left pinned or charged), each also
 * from several threads at once, and a MAP_DMA far larger than the owner's memory.
 *
 * <p>The random choices are seeded ({@code -Diommulab.seed=N}, default per test); the thread
 * interleavings are not, so each test checks invariants that hold for every interleaving.
 */
class ResourceAbuseTest {
    static final long PAGE = 4096;
    static final long MB = 1 << 20;
    static final int RW = VfioContainer.DMA_MAP_FLAG_READ | VfioContainer.DMA_MAP_FLAG_WRITE;
    static final long JOIN_MILLIS = 60_000;

    /** A nesting container over VT-d (system-wide PASIDs) of a new process. */
    private record Nest(VfioStack stack, HostProcess vm, VfioContainer c) {
        static Nest of(int dmaEntryLimit, int pasidQuota) throws IommuException {
            VfioStack stack = new VfioStack(dmaEntryLimit, pasidQuota);
            IommuInstance vtd = stack.instance("vtd", "vtd0");
            Requester dev = stack.device("dev0", vtd, 0x10, 20);
            HostProcess vm = stack.process("vm1");
            return new Nest(stack, vm, stack.container(vm, dev.groupId(), VfioIommuType.NESTING));
        }

        int[] held() {
            return stack.pasids.set(vm.name()).map(PasidSet::pasids).orElse(new int[0]);
        }
    }

    private static Random random(long defaultSeed) {
        return new Random(Long.getLong("iommulab.seed", defaultSeed));
    }

    private static void assertErrno(Errno expected, Executable call) {
        assertEquals(expected, assertThrows(IommuException.class, call).errno());
    }

    /** Runs {@code threads} workers released together; rethrows the first failure. */
    private static void race(int threads, Worker worker) throws Exception {
        CountDownLatch go = new CountDownLatch(1);
        AtomicReference<Throwable> failure = new AtomicReference<>();
        List<Thread> list = new ArrayList<>();
        for (int t = 0; t < threads; t++) {
            int id = t;
            Thread th = new Thread(() -> {
                try {
                    go.await();
                    worker.run(id);
                } catch (Throwable e) {
                    failure.compareAndSet(null, e);
                }
            }, "abuse-" + t);
            list.add(th);
            th.start();
        }
        go.countDown();
        for (Thread th : list) {
            th.join(JOIN_MILLIS);
            assertTrue(!th.isAlive(), th.getName() + " finished within " + JOIN_MILLIS + " ms");
        }
        if (failure.get() != null) {
            throw new AssertionError(failure.get());
        }
    }

    private interface Worker {
        void run(int id) throws Exception;
    }

    // ---- PASID quota ------------------------------------------------------------------------------

    @Test
    void pasidRequestsPastTheQuotaGetEnospcAndLeaveTheSetAsItWas() throws Exception {
        Nest n = Nest.of(65535, 5);
        for (int i = 0; i < 5; i++) {
            n.c().pasidAlloc(1, Pasids.MAX_PASID);
        }
        int[] before = n.held();
        assertEquals(5, before.length);
        for (int[] range : new int[][] {{1, Pasids.MAX_PASID}, {1, 1}, {before[0], before[0]}, {900, 1000}}) {
            assertErrno(Errno.ENOSPC, () -> n.c().pasidAlloc(range[0], range[1]));
            assertArrayEquals(before, n.held(), "a refused request changes nothing");
        }
        assertEquals(1, n.c().pasidFree(before[2], before[2]));
        int again = n.c().pasidAlloc(1, Pasids.MAX_PASID);
        assertEquals(before[2], again, "freeing one makes room for exactly one");
        assertErrno(Errno.ENOSPC, () -> n.c().pasidAlloc(1, Pasids.MAX_PASID));
        n.c().close();
        assertEquals(0, n.held().length, "closing the container returned them all");
    }

    /**
     * Sets whose quotas add up to nearly the whole space fill it from six threads (two per set for
     * half the sets): each set ends at exactly its quota, the space holds their sum, no PASID is
     * handed out twice, and every further request is ENOSPC.
     */
    @Test
    void setsFillingTheWholeSpaceFromSeveralThreadsNeverDoubleAllocate() throws Exception {
        PasidSpaceImpl space = new PasidSpaceImpl();
        int sets = 4;
        int quota = space.capacity() / sets;
        PasidSet[] set = new PasidSet[sets];
        for (int i = 0; i < sets; i++) {
            set[i] = space.createSet("vm" + i, quota);
        }
        assertErrno(Errno.ENOSPC, () -> space.createSet("late", space.capacity() - space.reserved() + 1));
        int threads = 6;
        int[][] got = new int[threads][];
        race(threads, id -> {
            PasidSet mine = set[id % sets];
            int[] list = new int[quota];
            int count = 0;
            while (true) {
                try {
                    list[count++] = mine.allocate();
                } catch (IommuException e) {
                    assertEquals(Errno.ENOSPC, e.errno());
                    count--;
                    break;
                }
                if ((count & 0xfff) == 0) {
                    assertTrue(mine.size() <= quota, "a set beyond its quota: " + mine.size());
                }
            }
            got[id] = java.util.Arrays.copyOf(list, count);
        });
        BitSet seen = new BitSet();
        long total = 0;
        for (int[] list : got) {
            for (int p : list) {
                assertTrue(p >= 1 && p <= Pasids.MAX_PASID, "PASID " + p + " outside the space");
                assertTrue(!seen.get(p), "PASID " + p + " handed out twice");
                seen.set(p);
            }
            total += list.length;
        }
        assertEquals((long) quota * sets, total, "every set reached exactly its quota");
        assertEquals(total, space.allocated());
        for (PasidSet s : set) {
            assertEquals(quota, s.size());
            assertErrno(Errno.ENOSPC, s::allocate);
        }
        assertTrue(total <= space.capacity());
    }

    /**
     * Many small sets contend for a narrow range from several threads, allocating, freeing and
     * re-allocating: a PASID belongs to at most one set at a time (checked with a claim taken on
     * allocation and dropped before the free), a set never exceeds its quota, and at the end the
     * space, the sets and the claims agree.
     */
    @Test
    void setsContendingForANarrowRangeNeverShareAPasidNorPassTheirQuota() throws Exception {
        PasidSpaceImpl space = new PasidSpaceImpl();
        int range = 48;
        int sets = 8;
        int quota = 9; // 8 x 9 = 72 > 48: the range, not the quotas, runs out first
        PasidSet[] set = new PasidSet[sets];
        for (int i = 0; i < sets; i++) {
            set[i] = space.createSet("vm" + i, quota);
        }
        AtomicReferenceArray<PasidSet> claims = new AtomicReferenceArray<>(range + 1);
        AtomicInteger enospc = new AtomicInteger();
        long seed = Long.getLong("iommulab.seed", 0xAB05EL);
        race(4, id -> {
            Random r = new Random(seed + id);
            List<int[]> mine = new ArrayList<>(); // {set, pasid}
            for (int step = 0; step < 20_000; step++) {
                if (!mine.isEmpty() && r.nextInt(5) < 2) {
                    int[] held = mine.remove(r.nextInt(mine.size()));
                    assertTrue(claims.compareAndSet(held[1], set[held[0]], null), "PASID " + held[1] + " lost its owner");
                    set[held[0]].free(held[1]);
                    continue;
                }
                int s = r.nextInt(sets);
                try {
                    int p = set[s].allocate(1, range);
                    PasidSet previous = claims.getAndSet(p, set[s]);
                    assertNull(previous, "PASID " + p + " given to " + set[s] + " while " + previous + " holds it");
                    mine.add(new int[] {s, p});
                    assertTrue(set[s].size() <= quota, set[s] + " holds " + set[s].size());
                } catch (IommuException e) {
                    assertEquals(Errno.ENOSPC, e.errno(), e.getMessage());
                    enospc.incrementAndGet();
                }
            }
        });
        assertTrue(enospc.get() > 0, "the range or a quota ran out at some point");
        int claimed = 0;
        for (int p = 1; p <= range; p++) {
            PasidSet owner = claims.get(p);
            assertEquals(owner, space.ownerOf(p).orElse(null), "PASID " + p + ": the space and the claims agree");
            claimed += owner == null ? 0 : 1;
        }
        assertEquals(claimed, space.allocated());
        int sum = 0;
        for (PasidSet s : set) {
            assertTrue(s.size() <= quota);
            sum += s.size();
        }
        assertEquals(claimed, sum);
    }

    // ---- DMA entry limit --------------------------------------------------------------------------

    /**
     * Four threads race to map distinct IOVAs into one container whose limit is 20: exactly 20
     * succeed, every other call is ENOSPC, and the pinned and locked pages are exactly the mapped
     * ones (a refused map leaves no pin, no charge, no mapping).
     */
    @Test
    void theDmaEntryLimitHoldsUnderConcurrentMapsAndARefusalLeavesNoPartialState() throws Exception {
        VfioStack stack = new VfioStack(20, 10);
        IommuInstance vtd = stack.instance("vtd", "vtd0");
        Requester dev = stack.device("dev0", vtd, 0x10, 0);
        HostProcess vm = stack.process("vm1");
        long ram = vm.mmap(16 * MB);
        VfioContainer c = stack.container(vm, dev.groupId(), VfioIommuType.TYPE1V2);
        AtomicInteger ok = new AtomicInteger();
        AtomicInteger full = new AtomicInteger();
        race(4, id -> {
            for (int i = 0; i < 15; i++) {
                int slot = id * 15 + i;
                long pages = 1 + slot % 3;
                try {
                    c.mapDma(ram + slot * 4 * PAGE, 0x100_0000L + slot * 0x1_0000L, pages * PAGE, RW);
                    ok.incrementAndGet();
                } catch (IommuException e) {
                    assertEquals(Errno.ENOSPC, e.errno(), e.getMessage());
                    full.incrementAndGet();
                }
            }
        });
        assertEquals(20, ok.get(), "exactly dma_entry_limit mappings");
        assertEquals(40, full.get());
        List<DmaMapping> mappings = c.mappings();
        assertEquals(20, mappings.size());
        long pages = mappings.stream().mapToLong(m -> m.size() / PAGE).sum();
        assertEquals(pages, vm.pinnedPages(), "pins are exactly those of the mappings");
        assertEquals(pages, vm.lockedPages(), "and so are the charges");
        assertEquals(0, c.info().dmaAvailable());
        assertErrno(Errno.ENOSPC, () -> c.mapDma(ram + 15 * MB, 0x4000_0000L, 64 * PAGE, RW));
        assertEquals(mappings, c.mappings());
        assertEquals(pages, vm.pinnedPages());
        c.unmapDma(mappings.get(0).iova(), mappings.get(0).size(), 0);
        c.mapDma(ram + 15 * MB, 0x4000_0000L, 64 * PAGE, RW);
        c.close();
        assertEquals(0, vm.pinnedPages());
        assertEquals(0, vm.lockedPages());
    }

    // ---- locked memory and frames -----------------------------------------------------------------

    /**
     * Two containers of one process (so one RLIMIT_MEMLOCK) map from four threads until the limit
     * refuses: every refusal is ENOMEM, the charge never passes the limit, and what is charged and
     * pinned is exactly what is mapped in the two containers.
     */
    @Test
    void theLockedMemoryLimitHoldsAcrossContainersAndThreads() throws Exception {
        VfioStack stack = new VfioStack();
        IommuInstance vtd = stack.instance("vtd", "vtd0");
        Requester a = stack.device("devA", vtd, 0x10, 0);
        Requester b = stack.device("devB", vtd, 0x18, 0);
        HostProcess vm = stack.process("vm1");
        long limitPages = 100;
        vm.setLockedLimit(limitPages * PAGE);
        long ram = vm.mmap(16 * MB);
        VfioContainer[] cs = {stack.container(vm, a.groupId(), VfioIommuType.TYPE1V2),
            stack.container(vm, b.groupId(), VfioIommuType.TYPE1V2)};
        Random seeds = random(0x10C4EDL);
        long[] seed = {seeds.nextLong(), seeds.nextLong(), seeds.nextLong(), seeds.nextLong()};
        AtomicInteger refused = new AtomicInteger();
        race(4, id -> {
            Random r = new Random(seed[id]);
            VfioContainer c = cs[id % 2];
            for (int i = 0; i < 40; i++) {
                long pages = 1 + r.nextInt(12);
                int slot = id * 40 + i;
                try {
                    c.mapDma(ram + slot * 16 * PAGE, 0x100_0000L + slot * 0x10_0000L, pages * PAGE, RW);
                } catch (IommuException e) {
                    assertEquals(Errno.ENOMEM, e.errno(), e.getMessage());
                    refused.incrementAndGet();
                }
                assertTrue(vm.lockedPages() <= limitPages, "charged " + vm.lockedPages() + " pages, the limit is " + limitPages);
            }
        });
        assertTrue(refused.get() > 0, "the limit refused some maps");
        long mapped = 0;
        for (VfioContainer c : cs) {
            mapped += c.mappings().stream().mapToLong(m -> m.size() / PAGE).sum();
        }
        assertEquals(mapped, vm.lockedPages(), "charged: exactly the mapped pages");
        assertEquals(mapped, vm.pinnedPages(), "pinned: exactly the mapped pages (no two share a page)");
        for (VfioContainer c : cs) {
            c.close();
        }
        assertEquals(0, vm.lockedPages());
        assertEquals(0, vm.pinnedPages());
    }

    /**
     * Maps that fail part-way leave nothing: past the locked-memory limit (ENOMEM before a page is
     * pinned), over a hole in the owner's address space (EFAULT after some pages were pinned), when
     * host frames run out (ENOMEM after some were), and a size far beyond the owner's memory, which
     * must be refused with an errno (not an OutOfMemoryError) at once.
     */
    @Test
    void mapsFailingPartWayLeaveNothingPinnedOrCharged() throws Exception {
        VfioStack stack = new VfioStack(65535, 10, 2048); // 8 MiB of host frames
        IommuInstance vtd = stack.instance("vtd", "vtd0");
        Requester dev = stack.device("dev0", vtd, 0x10, 0);
        HostProcess vm = stack.process("vm1");
        long ram = vm.mmap(32 * MB);
        VfioContainer c = stack.container(vm, dev.groupId(), VfioIommuType.TYPE1V2);
        c.mapDma(ram, 0, 16 * PAGE, RW);

        vm.setLockedLimit(40 * PAGE);
        assertErrno(Errno.ENOMEM, () -> c.mapDma(ram + MB, MB, 25 * PAGE, RW));
        assertUnchanged(vm, c, 16);
        vm.setLockedLimit(Long.MAX_VALUE);

        vm.munmap(ram + 2 * MB + 8 * PAGE, PAGE); // a hole in the middle of the range
        assertErrno(Errno.EFAULT, () -> c.mapDma(ram + 2 * MB, 2 * MB, 16 * PAGE, RW));
        assertUnchanged(vm, c, 16);

        assertErrno(Errno.ENOMEM, () -> c.mapDma(ram + 4 * MB, 4 * MB, 16 * MB, RW)); // more than the host has
        assertUnchanged(vm, c, 16);

        long t0 = System.nanoTime();
        for (long size : new long[] {1L << 36, 1L << 40, 1L << 42, 1L << 43}) {
            IommuException e = assertThrows(IommuException.class, () -> c.mapDma(ram, 1L << 44, size, RW),
                    "MAP_DMA of 0x" + Long.toHexString(size) + " bytes");
            assertTrue(e.errno() == Errno.EFAULT || e.errno() == Errno.ENOMEM, e.toString());
            assertUnchanged(vm, c, 16);
        }
        assertTrue(System.nanoTime() - t0 < TimeUnit.SECONDS.toNanos(5), "refused at once");
        c.close();
        assertEquals(0, vm.pinnedPages());
        assertEquals(0, vm.lockedPages());
    }

    private static void assertUnchanged(HostProcess vm, VfioContainer c, long pages) {
        assertEquals(1, c.mappings().size(), "no mapping was added");
        assertEquals(pages, vm.pinnedPages(), "no page stays pinned");
        assertEquals(pages, vm.lockedPages(), "no page stays charged");
    }
}
