package org.iommulab.platform.internal.pasid;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.Collections;
import java.util.HashSet;
import java.util.List;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.Callable;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;

import org.iommulab.api.dto.PasidSetDTO;
import org.iommulab.api.errno.Errno;
import org.iommulab.api.errno.IommuException;
import org.iommulab.api.pasid.PasidListener;
import org.iommulab.api.pasid.PasidSet;
import org.iommulab.api.pasid.Pasids;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.function.Executable;

class PasidSpaceImplTest {
    private static final int MAX = Pasids.MAX_PASID;

    private final PasidSpaceImpl space = new PasidSpaceImpl();

    /** One call of {@link PasidListener#pasidFreed}. */
    private record Freed(String owner, int setId, int pasid) {
    }

    private static final class Recorder implements PasidListener {
        final List<Freed> calls = Collections.synchronizedList(new ArrayList<>());
        volatile boolean lockHeld;
        private final Object lock;

        Recorder(Object lock) {
            this.lock = lock;
        }

        @Override
        public void pasidFreed(String owner, int setId, int pasid) {
            if (Thread.holdsLock(lock)) {
                lockHeld = true;
            }
            calls.add(new Freed(owner, setId, pasid));
        }
    }

    private static IommuException expect(Errno errno, Executable call) {
        IommuException e = assertThrows(IommuException.class, call);
        assertEquals(errno, e.errno(), e.toString());
        return e;
    }

    // ---- createSet ---------------------------------------------------------------------------

    /** A snapshot restored: the same owner, quota and PASID values, or nothing at all. */
    @Test
    void aSnapshotRestoresTheSamePasidsOrNothing() throws IommuException {
        PasidSet vm = space.createSet("vm", 8);
        vm.allocate(5, 5);
        vm.allocate(9, 9);
        vm.allocate();
        PasidSetDTO snapshot = vm.toDTO();
        vm.close();
        PasidSet other = space.createSet("other", 4);
        int otherPasid = other.allocate(100, 200);

        PasidSet back = space.restoreSet(snapshot);
        assertEquals("vm", back.owner());
        assertEquals(8, back.quota());
        assertArrayEquals(snapshot.pasids, back.pasids());
        assertNotEquals(snapshot.id, back.id(), "a new set, with a new id");

        // Refusals leave nothing behind.
        back.close();
        snapshot.pasids = new int[] {5, otherPasid};
        assertEquals(Errno.EBUSY, assertThrows(IommuException.class, () -> space.restoreSet(snapshot)).errno());
        assertFalse(space.set("vm").isPresent(), "no set was created");
        assertFalse(space.ownerOf(5).isPresent(), "no PASID was taken");
        snapshot.pasids = new int[] {5, 6, 7};
        snapshot.quota = 2;
        assertEquals(Errno.EINVAL, assertThrows(IommuException.class, () -> space.restoreSet(snapshot)).errno());
        snapshot.quota = 8;
        snapshot.pasids = new int[] {0};
        assertEquals(Errno.EINVAL, assertThrows(IommuException.class, () -> space.restoreSet(snapshot)).errno());
        snapshot.pasids = new int[] {6};
        snapshot.owner = "other";
        assertEquals(Errno.EEXIST, assertThrows(IommuException.class, () -> space.restoreSet(snapshot)).errno());
        assertFalse(space.ownerOf(6).isPresent());
    }

    @Test
    void capacityExcludesPasidZero() {
        assertEquals(MAX, space.capacity());
        assertEquals((1 << 20) - 1, space.capacity());
        assertEquals(0, space.reserved());
        assertEquals(0, space.allocated());
    }

    @Test
    void createSetRecordsOwnerQuotaAndUniqueIds() throws IommuException {
        PasidSet a = space.createSet("vm-a", 10);
        PasidSet b = space.createSet("vm-b", 20);
        assertEquals("vm-a", a.owner());
        assertEquals(10, a.quota());
        assertEquals(0, a.size());
        assertFalse(a.isClosed());
        assertNotEquals(a.id(), b.id());
        assertEquals(30, space.reserved());
        assertEquals(Optional.of(a), space.set("vm-a"));
        assertEquals(Optional.empty(), space.set("vm-c"));
        assertEquals(List.of(a, b), space.sets());
    }

    @Test
    void createSetRejectsBlankOwnerAndBadQuota() {
        expect(Errno.EINVAL, () -> space.createSet(null, 1));
        expect(Errno.EINVAL, () -> space.createSet("", 1));
        expect(Errno.EINVAL, () -> space.createSet("  \t", 1));
        expect(Errno.EINVAL, () -> space.createSet("vm", 0));
        expect(Errno.EINVAL, () -> space.createSet("vm", -5));
        expect(Errno.EINVAL, () -> space.createSet("vm", Integer.MIN_VALUE));
        assertEquals(0, space.reserved());
        assertTrue(space.sets().isEmpty());
    }

    @Test
    void createSetRejectsADuplicateOpenOwner() throws IommuException {
        PasidSet a = space.createSet("vm", 4);
        expect(Errno.EEXIST, () -> space.createSet("vm", 4));
        assertEquals(4, space.reserved());
        assertEquals(List.of(a), space.sets());
    }

    @Test
    void createSetRejectsAQuotaBeyondUnreservedCapacity() throws IommuException {
        space.createSet("big", MAX - 10);
        assertEquals(MAX - 10, space.reserved());
        expect(Errno.ENOSPC, () -> space.createSet("vm", 11));
        expect(Errno.ENOSPC, () -> space.createSet("vm", Integer.MAX_VALUE));
        assertEquals(MAX - 10, space.reserved(), "a rejected createSet reserved something");
        PasidSet rest = space.createSet("vm", 10);
        assertEquals(MAX, space.reserved());
        expect(Errno.ENOSPC, () -> space.createSet("more", 1));
        rest.close();
        assertEquals(MAX - 10, space.reserved());
        expect(Errno.ENOSPC, () -> new PasidSpaceImpl().createSet("x", MAX + 1));
    }

    // ---- allocate ----------------------------------------------------------------------------

    @Test
    void allocateHandsOutTheLowestFreePasidStartingAtOne() throws IommuException {
        PasidSet a = space.createSet("a", 10);
        PasidSet b = space.createSet("b", 10);
        assertEquals(1, a.allocate());
        assertEquals(2, b.allocate());
        assertEquals(3, a.allocate());
        a.free(1);
        assertEquals(1, b.allocate(), "the lowest free PASID is reused");
        assertEquals(4, a.allocate());
        assertArrayEquals(new int[] {3, 4}, a.pasids());
        assertArrayEquals(new int[] {1, 2}, b.pasids());
        assertEquals(4, space.allocated());
        assertFalse(a.contains(0));
        assertFalse(b.contains(0));
        assertEquals(Optional.empty(), space.ownerOf(0));
    }

    @Test
    void quotaExhaustionIsEnospcAndChangesNothing() throws IommuException {
        PasidSet a = space.createSet("a", 3);
        a.allocate();
        a.allocate();
        a.allocate();
        expect(Errno.ENOSPC, a::allocate);
        expect(Errno.ENOSPC, () -> a.allocate(100, 200));
        expect(Errno.ENOSPC, () -> a.allocate(500, 500));
        assertEquals(3, a.size());
        assertArrayEquals(new int[] {1, 2, 3}, a.pasids());
        assertFalse(a.contains(4));
        assertFalse(a.contains(500));
        assertEquals(3, space.allocated());
        a.free(2);
        assertEquals(2, a.allocate());
    }

    @Test
    void specificPasidAllocation() throws IommuException {
        PasidSet a = space.createSet("a", 10);
        PasidSet b = space.createSet("b", 10);
        assertEquals(42, a.allocate(42, 42));
        assertTrue(a.contains(42));
        expect(Errno.EBUSY, () -> b.allocate(42, 42));
        expect(Errno.EBUSY, () -> a.allocate(42, 42));
        assertEquals(1, a.size());
        assertEquals(0, b.size());
        assertEquals(Optional.of(a), space.ownerOf(42));
        assertEquals(1, b.allocate(), "a specific allocation leaves the low PASIDs free");
    }

    @Test
    void rangeAllocationPicksTheLowestFreeInRange() throws IommuException {
        PasidSet a = space.createSet("a", 100);
        PasidSet b = space.createSet("b", 100);
        assertEquals(1000, a.allocate(1000, 1003));
        assertEquals(1001, b.allocate(1000, 1003));
        assertEquals(1002, a.allocate(1000, 1003));
        b.free(1001);
        assertEquals(1001, a.allocate(1000, 1003));
        assertEquals(1003, b.allocate(1000, 1003));
        expect(Errno.ENOSPC, () -> a.allocate(1000, 1003));
        expect(Errno.ENOSPC, () -> b.allocate(1000, 1003));
        assertEquals(3, a.size());
        assertEquals(1, b.size());
        assertEquals(1004, a.allocate(1000, 1004));
    }

    @Test
    void aSetWithALargeQuotaCanFillAWholeSmallRange() throws IommuException {
        PasidSet a = space.createSet("a", 1000);
        for (int p = 60; p <= 130; p++) { // crosses the 64 and 128 word boundaries
            assertEquals(p, a.allocate(60, 130));
        }
        expect(Errno.ENOSPC, () -> a.allocate(60, 130));
        assertEquals(71, a.size());
        assertEquals(1, a.allocate());
        assertEquals(131, a.allocate(60, 200));
    }

    @Test
    void invalidRangesAreEinval() throws IommuException {
        PasidSet a = space.createSet("a", 10);
        expect(Errno.EINVAL, () -> a.allocate(0, 10));
        expect(Errno.EINVAL, () -> a.allocate(0, 0));
        expect(Errno.EINVAL, () -> a.allocate(-1, 10));
        expect(Errno.EINVAL, () -> a.allocate(1, MAX + 1));
        expect(Errno.EINVAL, () -> a.allocate(MAX + 1, MAX + 1));
        expect(Errno.EINVAL, () -> a.allocate(1, Integer.MAX_VALUE));
        expect(Errno.EINVAL, () -> a.allocate(10, 9));
        expect(Errno.EINVAL, () -> a.allocate(Integer.MIN_VALUE, Integer.MIN_VALUE));
        assertEquals(0, a.size());
        assertEquals(0, space.allocated());
    }

    @Test
    void theHighestPasidIsAllocatable() throws IommuException {
        PasidSet a = space.createSet("a", 10);
        assertEquals(0xFFFFF, a.allocate(0xFFFFF, 0xFFFFF));
        assertEquals(MAX, 0xFFFFF);
        assertTrue(a.contains(MAX));
        expect(Errno.EBUSY, () -> a.allocate(MAX, MAX));
        expect(Errno.EINVAL, () -> a.allocate(0x100000, 0x100000));
        assertEquals(MAX - 1, a.allocate(MAX - 1, MAX));
        assertArrayEquals(new int[] {MAX - 1, MAX}, a.pasids());
        a.free(MAX);
        assertFalse(a.contains(MAX));
    }

    // ---- free / ownership --------------------------------------------------------------------

    @Test
    void doubleFreeIsEnoent() throws IommuException {
        PasidSet a = space.createSet("a", 10);
        int p = a.allocate();
        a.free(p);
        expect(Errno.ENOENT, () -> a.free(p));
        expect(Errno.ENOENT, () -> a.free(777));
        assertEquals(0, space.allocated());
    }

    @Test
    void freeOutsideThePasidSpaceIsEinval() throws IommuException {
        PasidSet a = space.createSet("a", 10);
        expect(Errno.EINVAL, () -> a.free(0));
        expect(Errno.EINVAL, () -> a.free(-1));
        expect(Errno.EINVAL, () -> a.free(MAX + 1));
    }

    @Test
    void freeingAnotherSetsPasidIsEpermAndKeepsItAllocated() throws IommuException {
        PasidSet a = space.createSet("a", 10);
        PasidSet b = space.createSet("b", 10);
        int p = a.allocate();
        expect(Errno.EPERM, () -> b.free(p));
        assertTrue(a.contains(p));
        assertFalse(b.contains(p));
        assertEquals(Optional.of(a), space.ownerOf(p));
        assertEquals(1, space.allocated());
        expect(Errno.EBUSY, () -> b.allocate(p, p));
    }

    @Test
    void checkOwned() throws IommuException {
        PasidSet a = space.createSet("a", 10);
        PasidSet b = space.createSet("b", 10);
        int mine = a.allocate();
        int theirs = b.allocate();
        a.checkOwned(mine);
        expect(Errno.EPERM, () -> a.checkOwned(theirs));
        expect(Errno.EPERM, () -> a.checkOwned(500)); // held by nobody
        expect(Errno.EPERM, () -> a.checkOwned(0));
        expect(Errno.EINVAL, () -> a.checkOwned(-1));
        expect(Errno.EINVAL, () -> a.checkOwned(MAX + 1));
        expect(Errno.EINVAL, () -> a.checkOwned(Integer.MIN_VALUE));
        a.free(mine);
        expect(Errno.EPERM, () -> a.checkOwned(mine));
    }

    @Test
    void containsAndOwnerOf() throws IommuException {
        PasidSet a = space.createSet("a", 10);
        PasidSet b = space.createSet("b", 10);
        int p = a.allocate();
        int q = b.allocate();
        assertTrue(a.contains(p));
        assertFalse(a.contains(q));
        assertFalse(a.contains(-1));
        assertFalse(a.contains(MAX + 1));
        assertSame(a, space.ownerOf(p).orElseThrow());
        assertSame(b, space.ownerOf(q).orElseThrow());
        assertEquals(Optional.empty(), space.ownerOf(99));
        assertEquals(Optional.empty(), space.ownerOf(-1));
        assertEquals(Optional.empty(), space.ownerOf(MAX + 1));
        a.free(p);
        assertEquals(Optional.empty(), space.ownerOf(p));
    }

    // ---- close -------------------------------------------------------------------------------

    @Test
    void closeFreesEverythingAndReleasesTheQuota() throws IommuException {
        PasidSet a = space.createSet("vm", 50);
        PasidSet other = space.createSet("other", 5);
        int[] held = {a.allocate(), a.allocate(), a.allocate(200, 200), a.allocate(MAX, MAX)};
        int kept = other.allocate();
        assertEquals(55, space.reserved());

        a.close();
        assertTrue(a.isClosed());
        assertEquals(0, a.size());
        assertEquals(0, a.pasids().length);
        assertEquals(5, space.reserved());
        assertEquals(1, space.allocated());
        for (int p : held) {
            assertFalse(a.contains(p));
            assertEquals(Optional.empty(), space.ownerOf(p));
        }
        assertTrue(other.contains(kept));
        assertEquals(Optional.empty(), space.set("vm"));
        assertEquals(List.of(other), space.sets());

        expect(Errno.ENODEV, a::allocate);
        expect(Errno.ENODEV, () -> a.allocate(5, 10));
        expect(Errno.ENODEV, () -> a.checkOwned(held[0]));
        expect(Errno.ENOENT, () -> a.free(held[0]));

        // the freed PASIDs are available to others
        assertEquals(200, other.allocate(200, 200));
    }

    @Test
    void theSameOwnerMayCreateANewSetAfterClose() throws IommuException {
        PasidSet first = space.createSet("vm", 8);
        first.allocate();
        first.close();
        PasidSet second = space.createSet("vm", 8);
        assertNotEquals(first.id(), second.id());
        assertFalse(second.isClosed());
        assertEquals(1, second.allocate());
        assertEquals(Optional.of(second), space.set("vm"));
        assertTrue(first.isClosed());
        expect(Errno.ENODEV, first::allocate);
        first.close(); // must not touch the new set
        assertEquals(Optional.of(second), space.set("vm"));
        assertEquals(8, space.reserved());
        assertTrue(second.contains(1));
    }

    @Test
    void closeIsIdempotent() throws IommuException {
        Recorder recorder = new Recorder(space);
        space.addListener(recorder);
        PasidSet a = space.createSet("vm", 8);
        space.createSet("other", 3);
        a.allocate();
        a.allocate();
        a.close();
        a.close();
        assertTrue(a.isClosed());
        assertEquals(3, space.reserved(), "the quota must be released exactly once");
        assertEquals(2, recorder.calls.size(), "listeners hear each PASID once");
    }

    @Test
    void toDtoSnapshotsTheSet() throws IommuException {
        PasidSet a = space.createSet("vm", 8);
        a.allocate();
        a.allocate(9, 9);
        PasidSetDTO dto = a.toDTO();
        assertEquals(a.id(), dto.id);
        assertEquals("vm", dto.owner);
        assertEquals(8, dto.quota);
        assertArrayEquals(new int[] {1, 9}, dto.pasids);
        assertFalse(dto.closed);
        a.close();
        assertTrue(a.toDTO().closed);
        assertArrayEquals(new int[] {1, 9}, dto.pasids, "a snapshot does not change afterwards");
    }

    // ---- listeners ---------------------------------------------------------------------------

    @Test
    void listenersHearEachFreeOnceWithOwnerAndSetId() throws IommuException {
        Recorder recorder = new Recorder(space);
        space.addListener(recorder);
        PasidSet a = space.createSet("vm-a", 8);
        PasidSet b = space.createSet("vm-b", 8);
        int p = a.allocate();
        int q = b.allocate();
        assertTrue(recorder.calls.isEmpty(), "allocation notifies nobody");
        a.free(p);
        assertEquals(List.of(new Freed("vm-a", a.id(), p)), recorder.calls);
        b.free(q);
        assertEquals(List.of(new Freed("vm-a", a.id(), p), new Freed("vm-b", b.id(), q)), recorder.calls);
        assertFalse(recorder.lockHeld, "listeners must be called with no platform lock held");
    }

    @Test
    void listenersHearEveryPasidOfAClosedSet() throws IommuException {
        Recorder recorder = new Recorder(space);
        space.addListener(recorder);
        PasidSet a = space.createSet("vm", 8);
        PasidSet b = space.createSet("other", 8);
        a.allocate();
        b.allocate();
        a.allocate();
        a.allocate(100, 100);
        a.close();
        Set<Freed> expected = Set.of(new Freed("vm", a.id(), 1), new Freed("vm", a.id(), 3),
                new Freed("vm", a.id(), 100));
        assertEquals(3, recorder.calls.size());
        assertEquals(expected, new HashSet<>(recorder.calls));
        assertFalse(recorder.lockHeld, "listeners must be called with no platform lock held");
    }

    @Test
    void rejectedFreesNotifyNobody() throws IommuException {
        Recorder recorder = new Recorder(space);
        space.addListener(recorder);
        PasidSet a = space.createSet("a", 8);
        PasidSet b = space.createSet("b", 8);
        int p = a.allocate();
        expect(Errno.EPERM, () -> b.free(p));
        expect(Errno.ENOENT, () -> b.free(p + 1));
        expect(Errno.EINVAL, () -> b.free(0));
        assertTrue(recorder.calls.isEmpty());
    }

    @Test
    void aThrowingListenerBreaksNeitherTheFreeNorOtherListeners() throws IommuException {
        PasidListener thrower = (owner, setId, pasid) -> {
            throw new IllegalStateException("listener failure (expected by the test)");
        };
        Recorder before = new Recorder(space);
        Recorder after = new Recorder(space);
        space.addListener(before);
        space.addListener(thrower);
        space.addListener(after);
        PasidSet a = space.createSet("vm", 8);
        int p = a.allocate();
        int q = a.allocate();
        a.free(p);
        assertFalse(a.contains(p));
        assertEquals(1, before.calls.size());
        assertEquals(1, after.calls.size());
        a.close();
        assertTrue(a.isClosed());
        assertEquals(Optional.empty(), space.ownerOf(q));
        assertEquals(2, before.calls.size());
        assertEquals(2, after.calls.size());
    }

    @Test
    void removedListenersAreNotCalled() throws IommuException {
        Recorder recorder = new Recorder(space);
        space.addListener(recorder);
        space.removeListener(recorder);
        PasidSet a = space.createSet("vm", 8);
        a.free(a.allocate());
        assertTrue(recorder.calls.isEmpty());
    }

    // ---- rejected calls change nothing -------------------------------------------------------

    @Test
    void rejectedCallsChangeNothing() throws IommuException {
        PasidSet a = space.createSet("a", 3);
        PasidSet b = space.createSet("b", 10);
        a.allocate();
        a.allocate(50, 50);
        int theirs = b.allocate();
        int[] pasidsBefore = a.pasids();
        int reservedBefore = space.reserved();
        int allocatedBefore = space.allocated();

        expect(Errno.EINVAL, () -> a.allocate(0, 5));
        expect(Errno.EBUSY, () -> a.allocate(theirs, theirs));
        expect(Errno.EBUSY, () -> a.allocate(50, 50)); // already held by this very set
        expect(Errno.EPERM, () -> a.free(theirs));
        expect(Errno.ENOENT, () -> a.free(999));
        expect(Errno.EEXIST, () -> space.createSet("a", 1));
        expect(Errno.ENOSPC, () -> space.createSet("c", MAX));

        assertEquals(2, a.size());
        assertArrayEquals(pasidsBefore, a.pasids());
        assertEquals(reservedBefore, space.reserved());
        assertEquals(allocatedBefore, space.allocated());
        assertTrue(b.contains(theirs));
        assertEquals(1, b.size());
    }

    // ---- concurrency -------------------------------------------------------------------------

    private static List<Integer> runConcurrently(List<Callable<List<Integer>>> tasks) throws Exception {
        ExecutorService pool = Executors.newFixedThreadPool(tasks.size());
        try {
            CountDownLatch ready = new CountDownLatch(tasks.size());
            CountDownLatch start = new CountDownLatch(1);
            List<Future<List<Integer>>> futures = new ArrayList<>();
            for (Callable<List<Integer>> task : tasks) {
                futures.add(pool.submit(() -> {
                    ready.countDown();
                    if (!start.await(10, TimeUnit.SECONDS)) {
                        throw new IllegalStateException("start gate never opened");
                    }
                    return task.call();
                }));
            }
            assertTrue(ready.await(10, TimeUnit.SECONDS), "workers did not start");
            start.countDown();
            List<Integer> all = new ArrayList<>();
            for (Future<List<Integer>> f : futures) {
                all.addAll(f.get(30, TimeUnit.SECONDS));
            }
            return all;
        } finally {
            pool.shutdownNow();
            assertTrue(pool.awaitTermination(10, TimeUnit.SECONDS));
        }
    }

    @Test
    @Timeout(60)
    void concurrentAllocationsFromDifferentSetsNeverCollide() throws Exception {
        int threads = 8;
        int perSet = 2000;
        List<PasidSet> sets = new ArrayList<>();
        for (int t = 0; t < threads; t++) {
            sets.add(space.createSet("vm" + t, perSet));
        }
        List<Callable<List<Integer>>> tasks = new ArrayList<>();
        for (PasidSet set : sets) {
            tasks.add(() -> {
                List<Integer> got = new ArrayList<>();
                for (int i = 0; i < perSet; i++) {
                    got.add(set.allocate());
                }
                return got;
            });
        }
        List<Integer> all = runConcurrently(tasks);
        assertEquals(threads * perSet, all.size());
        assertEquals(threads * perSet, new HashSet<>(all).size(), "a PASID was handed out twice");
        assertEquals(threads * perSet, space.allocated());
        for (PasidSet set : sets) {
            assertEquals(perSet, set.size());
            for (int p : set.pasids()) {
                assertSame(set, space.ownerOf(p).orElseThrow());
            }
        }
        // lowest-free allocation with no frees: exactly 1..N
        assertEquals(threads * perSet, Collections.max(all));
        assertEquals(1, Collections.min(all));
    }

    @Test
    @Timeout(60)
    void concurrentAllocationsFromOneSetNeverCollide() throws Exception {
        int threads = 8;
        int perThread = 2000;
        PasidSet set = space.createSet("big", threads * perThread);
        List<Callable<List<Integer>>> tasks = new ArrayList<>();
        for (int t = 0; t < threads; t++) {
            tasks.add(() -> {
                List<Integer> got = new ArrayList<>();
                for (int i = 0; i < perThread; i++) {
                    got.add(set.allocate());
                }
                return got;
            });
        }
        List<Integer> all = runConcurrently(tasks);
        assertEquals(threads * perThread, all.size());
        assertEquals(threads * perThread, new HashSet<>(all).size(), "a PASID was handed out twice");
        assertEquals(threads * perThread, set.size());
        expect(Errno.ENOSPC, set::allocate);
    }

    @Test
    @Timeout(60)
    void concurrentAllocateAndFreeKeepsTheBooksStraight() throws Exception {
        int threads = 8;
        int rounds = 3000;
        List<PasidSet> sets = new ArrayList<>();
        for (int t = 0; t < threads; t++) {
            sets.add(space.createSet("vm" + t, 4));
        }
        List<Callable<List<Integer>>> tasks = new ArrayList<>();
        for (PasidSet set : sets) {
            tasks.add(() -> {
                for (int i = 0; i < rounds; i++) {
                    int p = set.allocate();
                    set.checkOwned(p);
                    set.free(p);
                }
                return List.of(set.allocate());
            });
        }
        List<Integer> last = runConcurrently(tasks);
        assertEquals(threads, new HashSet<>(last).size());
        assertEquals(threads, space.allocated());
    }

    /**
     * Fills all 2^20 - 1 PASIDs with plain {@code allocate()}: each allocation costs O(1) amortised
     * (a kept count for the quota, a lowest-free hint for the search), so the fill takes well under
     * a second; the timeout catches a return to quadratic cost.
     */
    @Test
    @Timeout(10)
    void theWholeSpaceCanBeFilledAndThenIsFull() throws IommuException {
        PasidSet all = space.createSet("all", MAX);
        assertEquals(MAX, space.reserved());
        for (int expected = 1; expected <= MAX; expected++) {
            int got = all.allocate();
            if (got != expected) {
                assertEquals(expected, got);
            }
        }
        assertEquals(1048575, all.size());
        assertEquals(MAX, space.allocated());
        expect(Errno.ENOSPC, all::allocate);
        all.free(12345);
        assertEquals(12345, all.allocate());
        expect(Errno.ENOSPC, all::allocate);
    }

    @Test
    void theTopOfTheSpaceCanBeFilledAndThenIsFull() throws IommuException {
        PasidSet all = space.createSet("all", MAX);
        for (int p = MAX - 200; p <= MAX; p++) {
            assertEquals(p, all.allocate(MAX - 200, MAX));
        }
        expect(Errno.ENOSPC, () -> all.allocate(MAX - 200, MAX));
        expect(Errno.EBUSY, () -> all.allocate(MAX, MAX));
        assertEquals(201, all.size());
        all.free(MAX - 64);
        assertEquals(MAX - 64, all.allocate(MAX - 200, MAX));
        assertEquals(1, all.allocate());
    }
}
