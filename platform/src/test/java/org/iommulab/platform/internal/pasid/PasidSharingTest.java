package org.iommulab.platform.internal.pasid;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.List;
import java.util.OptionalInt;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.atomic.AtomicInteger;

import org.iommulab.api.dto.PasidOwnerDTO;
import org.iommulab.api.dto.PasidSetDTO;
import org.iommulab.api.errno.Errno;
import org.iommulab.api.errno.IommuException;
import org.iommulab.api.pasid.PasidClaim;
import org.iommulab.api.pasid.PasidConsumers;
import org.iommulab.api.pasid.PasidSet;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/** PASIDs as handles passed between consumers (claims, authorisation) and the per-owner limit. */
class PasidSharingTest {
    private static final String MDEV = PasidConsumers.VFIO_MDEV;
    private static final String USER_WQ = PasidConsumers.USER_WQ;

    private final PasidSpaceImpl space = new PasidSpaceImpl();

    private static Errno errno(org.junit.jupiter.api.function.Executable call) {
        return assertThrows(IommuException.class, call).errno();
    }

    // ---- claims and authorisation ----------------------------------------------------------------

    @Test
    void oneConsumerMayClaimAPasidManyTimes() throws IommuException {
        PasidSet set = space.openSet("alice", 4);
        int pasid = set.allocate();
        PasidClaim a = set.claim(pasid, USER_WQ);
        PasidClaim b = set.claim(pasid, USER_WQ);
        assertTrue(a.isValid() && b.isValid());
        assertArrayEquals(new String[] {USER_WQ}, set.consumers(pasid));
        assertEquals(2, set.toDTO().claims[0].count);
        a.release();
        assertFalse(a.isValid());
        assertTrue(b.isValid());
        b.release();
        assertArrayEquals(new String[0], set.consumers(pasid));
        assertEquals(0, set.toDTO().claims.length);
    }

    @Test
    void aSecondConsumerIsRefusedUnlessTheSetAuthorisesBoth() throws IommuException {
        PasidSet set = space.openSet("alice", 4);
        int pasid = set.allocate();
        PasidClaim wq = set.claim(pasid, USER_WQ);
        assertEquals(Errno.EPERM, errno(() -> set.claim(pasid, MDEV)));
        set.authorize(MDEV);
        assertEquals(Errno.EPERM, errno(() -> set.claim(pasid, MDEV)), "the holder must be authorised as well");
        assertArrayEquals(new String[] {USER_WQ}, set.consumers(pasid), "a refused claim leaves nothing behind");
        set.authorize(USER_WQ);
        PasidClaim mdev = set.claim(pasid, MDEV);
        assertArrayEquals(new String[] {USER_WQ, MDEV}, set.consumers(pasid));
        assertArrayEquals(new String[] {USER_WQ, MDEV}, set.authorized());
        wq.release();
        mdev.release();
    }

    @Test
    void anUnsharedPasidNeedsNoAuthorisationAndAReleasedOneIsFreeForAnotherConsumer() throws IommuException {
        PasidSet set = space.openSet("alice", 4);
        int pasid = set.allocate();
        PasidClaim wq = set.claim(pasid, USER_WQ);
        wq.release();
        wq.release(); // idempotent
        PasidClaim mdev = set.claim(pasid, MDEV);
        assertTrue(mdev.isValid());
        assertEquals(Errno.EPERM, errno(() -> set.claim(pasid, USER_WQ)));
    }

    @Test
    void claimsAreCheckedAgainstOwnership() throws IommuException {
        PasidSet alice = space.openSet("alice", 4);
        PasidSet bob = space.openSet("bob", 4);
        int pasid = bob.allocate();
        assertEquals(Errno.EPERM, errno(() -> alice.claim(pasid, USER_WQ)), "another set's PASID");
        assertEquals(Errno.EPERM, errno(() -> alice.claim(77, USER_WQ)), "a PASID no one holds");
        assertEquals(Errno.EINVAL, errno(() -> alice.claim(-5, USER_WQ)));
        assertEquals(Errno.EINVAL, errno(() -> alice.claim(1 << 20, USER_WQ)));
        int own = alice.allocate();
        assertEquals(Errno.EINVAL, errno(() -> alice.claim(own, " ")));
        assertEquals(Errno.EINVAL, errno(() -> alice.claim(own, null)));
        assertEquals(Errno.EINVAL, errno(() -> alice.authorize("")));
        assertArrayEquals(new String[0], alice.consumers(own));
        assertArrayEquals(new String[0], alice.consumers(pasid), "another set's claims are not shown");
    }

    @Test
    void freeingAPasidRevokesItsClaimsBeforeListenersHear() throws IommuException {
        PasidSet set = space.openSet("alice", 4);
        set.authorize(MDEV);
        set.authorize(USER_WQ);
        int pasid = set.allocate();
        PasidClaim wq = set.claim(pasid, USER_WQ);
        PasidClaim mdev = set.claim(pasid, MDEV);
        List<Boolean> seen = new ArrayList<>();
        space.addListener((owner, setId, p) -> seen.add(wq.isValid() || mdev.isValid()));
        set.free(pasid);
        assertFalse(wq.isValid());
        assertFalse(mdev.isValid());
        assertEquals(List.of(false), seen);
        int again = set.allocate();
        assertEquals(pasid, again, "the lowest free PASID comes back");
        assertArrayEquals(new String[0], set.consumers(again), "a reallocated PASID starts with no claims");
        wq.release(); // a revoked claim releases quietly
        assertArrayEquals(new String[0], set.consumers(again));
    }

    @Test
    void closingTheSetRevokesEveryClaimAndRefusesNewOnes() throws IommuException {
        PasidSet set = space.openSet("alice", 4);
        set.authorize(MDEV);
        set.authorize(USER_WQ);
        int p1 = set.allocate();
        int p2 = set.allocate();
        List<PasidClaim> claims = List.of(set.claim(p1, USER_WQ), set.claim(p1, MDEV), set.claim(p2, MDEV));
        set.close();
        claims.forEach(c -> assertFalse(c.isValid(), c.toString()));
        assertEquals(Errno.ENODEV, errno(() -> set.claim(p1, USER_WQ)));
        assertEquals(Errno.ENODEV, errno(() -> set.authorize("x")));
        assertEquals(0, set.toDTO().claims.length);
    }

    @Test
    @Timeout(30)
    void claimsRacingAFreeNeverOutliveIt() throws Exception {
        PasidSet set = space.openSet("alice", 2);
        ExecutorService pool = Executors.newFixedThreadPool(2);
        try {
            for (int round = 0; round < 300; round++) {
                int pasid = set.allocate();
                Future<PasidClaim> claimer = pool.submit(() -> {
                    try {
                        return set.claim(pasid, USER_WQ);
                    } catch (IommuException e) {
                        return null; // lost the race to the free
                    }
                });
                set.free(pasid);
                PasidClaim claim = claimer.get();
                assertTrue(claim == null || !claim.isValid(), "a claim taken before the free is revoked by it");
                assertArrayEquals(new String[0], set.consumers(pasid));
            }
        } finally {
            pool.shutdownNow();
        }
    }

    @Test
    void authorisationsTravelInASnapshotButClaimsDoNot() throws IommuException {
        PasidSet set = space.createSet("vm1", 4);
        set.authorize(MDEV);
        int pasid = set.allocate();
        set.claim(pasid, MDEV);
        PasidSetDTO snapshot = set.toDTO();
        assertArrayEquals(new String[] {MDEV}, snapshot.authorized);
        assertEquals(MDEV, snapshot.claims[0].consumer);
        assertEquals(pasid, snapshot.claims[0].pasid);
        set.close();
        PasidSet restored = space.restoreSet(snapshot);
        assertArrayEquals(new String[] {MDEV}, restored.authorized());
        assertArrayEquals(new int[] {pasid}, restored.pasids());
        assertArrayEquals(new String[0], restored.consumers(pasid));
    }

    // ---- several sets per owner and the owner limit ------------------------------------------------

    @Test
    void anOwnerMayOpenSeveralSetsButCreateGivesOnlyOne() throws IommuException {
        PasidSet first = space.openSet("alice", 2);
        PasidSet second = space.openSet("alice", 3);
        assertNotEquals(first.id(), second.id());
        assertEquals(List.of(first, second), space.sets("alice"));
        assertEquals(first, space.set("alice").orElseThrow(), "set(owner) is the oldest");
        assertEquals(second, space.setById(second.id()).orElseThrow());
        assertEquals(Errno.EEXIST, errno(() -> space.createSet("alice", 1)));
        assertEquals(5, space.reserved());
        first.close();
        assertEquals(List.of(second), space.sets("alice"));
        assertTrue(space.setById(first.id()).isEmpty());
    }

    @Test
    void theOwnerLimitCapsWhatAllItsSetsHoldTogether() throws IommuException {
        space.setOwnerQuota("alice", 3);
        PasidSet a = space.openSet("alice", 2);
        PasidSet b = space.openSet("alice", 2);
        a.allocate();
        a.allocate();
        b.allocate();
        assertEquals(3, space.ownerUsage("alice"));
        assertEquals(Errno.ENOSPC, errno(b::allocate), "the owner's limit, though b has room");
        assertEquals(Errno.ENOSPC, errno(() -> b.allocate(500, 500)));
        assertEquals(1, b.size(), "a refused allocation leaves nothing behind");
        PasidSet other = space.openSet("bob", 2);
        other.allocate(); // other owners are not charged
        a.close();
        assertEquals(1, space.ownerUsage("alice"));
        b.allocate();
        assertEquals(OptionalInt.of(3), space.ownerQuota("alice"));
        space.clearOwnerQuota("alice");
        assertTrue(space.ownerQuota("alice").isEmpty());
    }

    @Test
    void aLimitBelowUsageRefusesOnlyNewAllocations() throws IommuException {
        PasidSet a = space.openSet("alice", 4);
        int p1 = a.allocate();
        a.allocate();
        space.setOwnerQuota("alice", 1);
        assertEquals(Errno.ENOSPC, errno(a::allocate));
        a.free(p1);
        assertEquals(Errno.ENOSPC, errno(a::allocate), "still at the limit of one");
        assertEquals(1, a.size());
        space.setOwnerQuota("alice", 0);
        assertEquals(Errno.EINVAL, errno(() -> space.setOwnerQuota("alice", -1)));
        assertEquals(Errno.EINVAL, errno(() -> space.setOwnerQuota(" ", 3)));
        assertEquals(OptionalInt.of(0), space.ownerQuota("alice"));
    }

    @Test
    void restoringASetRespectsTheOwnerLimitAllOrNothing() throws IommuException {
        PasidSet set = space.createSet("vm1", 4);
        set.allocate();
        set.allocate();
        PasidSetDTO snapshot = set.toDTO();
        set.close();
        space.setOwnerQuota("vm1", 1);
        int setsBefore = space.sets().size();
        assertEquals(Errno.ENOSPC, errno(() -> space.restoreSet(snapshot)));
        assertEquals(setsBefore, space.sets().size());
        assertEquals(0, space.allocated());
        space.setOwnerQuota("vm1", 2);
        assertEquals(2, space.restoreSet(snapshot).size());
    }

    @Test
    void ownersAreReportedWithLimitUsageAndSets() throws IommuException {
        space.setOwnerQuota("carol", 5);
        PasidSet a = space.openSet("alice", 2);
        PasidSet b = space.openSet("alice", 2);
        a.allocate();
        b.allocate();
        List<PasidOwnerDTO> owners = space.owners();
        assertEquals(2, owners.size());
        PasidOwnerDTO alice = owners.get(0);
        assertEquals("alice", alice.owner);
        assertEquals(-1, alice.quota);
        assertEquals(2, alice.used);
        assertArrayEquals(new int[] {a.id(), b.id()}, alice.sets);
        PasidOwnerDTO carol = owners.get(1);
        assertEquals(5, carol.quota);
        assertEquals(0, carol.used);
        assertEquals(0, carol.sets.length);
    }

    @Test
    @Timeout(30)
    void concurrentAllocationsNeverPassTheOwnerLimit() throws Exception {
        space.setOwnerQuota("alice", 50);
        List<PasidSet> sets = new ArrayList<>();
        for (int i = 0; i < 4; i++) {
            sets.add(space.openSet("alice", 40));
        }
        AtomicInteger granted = new AtomicInteger();
        ExecutorService pool = Executors.newFixedThreadPool(4);
        try {
            List<Future<?>> futures = new ArrayList<>();
            for (PasidSet set : sets) {
                futures.add(pool.submit(() -> {
                    for (int i = 0; i < 40; i++) {
                        try {
                            set.allocate();
                            granted.incrementAndGet();
                        } catch (IommuException e) {
                            assertEquals(Errno.ENOSPC, e.errno());
                        }
                    }
                }));
            }
            for (Future<?> f : futures) {
                f.get();
            }
        } finally {
            pool.shutdownNow();
        }
        assertEquals(50, granted.get());
        assertEquals(50, space.ownerUsage("alice"));
        assertEquals(50, space.allocated());
    }
}
