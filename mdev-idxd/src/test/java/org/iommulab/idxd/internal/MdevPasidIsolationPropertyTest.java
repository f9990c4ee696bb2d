package org.iommulab.idxd.internal;

import static org.iommulab.idxd.internal.hw.GuestSpace.gva;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;

import org.iommulab.api.errno.Errno;
import org.iommulab.api.errno.IommuException;
import org.iommulab.api.idxd.Dsa;
import org.iommulab.api.idxd.Dsa.CompletionRecord;
import org.iommulab.api.idxd.IdxdDevice;
import org.iommulab.api.idxd.Mdev;
import org.iommulab.api.idxd.SubmitStatus;
import org.iommulab.api.idxd.WorkQueueConfig;
import org.iommulab.api.pasid.PasidSet;
import org.iommulab.idxd.internal.hw.DsaRegisters;
import org.iommulab.idxd.internal.hw.GuestSpace;
import org.iommulab.vfio.internal.VfioStack;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * PASID isolation through mdevs, as a seeded property: three VMs share one DSA through mdevs on one
 * shared queue. Each round one VM maps a guest PASID to a host PASID chosen at random (its own
 * bound one, its own unbound one, another VM's, or one nobody holds), unmaps one, frees its
 * unbound PASID or allocates it again, or submits a copy with a random guest PASID. A reference
 * decides every outcome:
 * <ul>
 * <li>a mapping succeeds exactly when the host PASID is in the VM's own set (EPERM otherwise, and
 * nothing changes);</li>
 * <li>ENQCMD is accepted exactly when the guest PASID maps to a host PASID still in the VM's set;
 * once a PASID is freed, its guest PASIDs are rejected at once;</li>
 * <li>an accepted copy through the bound PASID lands in the VM's own memory; through an unbound
 * one it reaches no memory at all; and no round ever changes another VM's memory.</li>
 * </ul>
 * {@code mvn verify} runs {@value #DEFAULT_ROUNDS} rounds; {@code -Diommulab.isolation.rounds=N}
 * runs more, {@code -Diommulab.seed=N} replays one (the seed is in the failure message).
 */
class MdevPasidIsolationPropertyTest {
    static final long MB = 1 << 20;
    static final int DEFAULT_ROUNDS = 300;
    static final long SRC = MB;
    static final long DST = 4 * MB;
    static final long COMP = 12 * MB;
    static final int SIZE = 4096;

    final VfioStack stack = new VfioStack();
    /** Coverage: copies that landed, submissions rejected, mappings refused, PASIDs freed. */
    int landed;
    int rejected;
    int refused;
    int freed;
    IdxdServiceImpl service;
    IdxdDevice dsa;

    /** One VM and what the reference knows of it. */
    final class Vm {
        final String name;
        final PasidSet pasids;
        final Mdev mdev;
        final GuestSpace space;
        /** A second host PASID of the VM's, never bound: DMA through it reaches nothing. */
        int spare;
        boolean spareHeld = true;
        final Map<Integer, Integer> guestToHost = new HashMap<>();
        /** Guest PASIDs whose host PASID was freed since they were mapped: revoked until remapped. */
        final java.util.Set<Integer> revoked = new java.util.HashSet<>();
        byte[] expectedDst = new byte[SIZE];

        Vm(String name) throws Exception {
            this.name = name;
            pasids = stack.pasids.createSet(name, 16);
            mdev = dsa.createMdev(name + "-dsa", 0, pasids);
            space = new GuestSpace(stack, mdev.requester(), name, 32 * MB, 4 * MB).map(0, 16 * MB, true);
            spare = space.container.pasidAlloc(1, 1000);
            space.write(DST, expectedDst);
            MdevTest.programQueue(mdev, false, 0);
            mdev.mmioWrite(DsaRegisters.CMD, (long) DsaRegisters.CMD_ENABLE_WQ << 20, 4);
            assertEquals(0, mdev.mmioRead(DsaRegisters.CMDSTS, 4) & 0xff, "the virtual shared queue is enabled");
        }

        boolean owns(int hostPasid) {
            return hostPasid == space.pasid || spareHeld && hostPasid == spare;
        }
    }

    @BeforeEach
    void setUp() throws Exception {
        service = new IdxdServiceImpl(stack.registry, stack.bus);
        stack.instance("vtd", "vtd0");
        dsa = service.create("dsa0", "vtd0", 0x10);
        dsa.configure(0, WorkQueueConfig.shared(32));
        dsa.enable();
        dsa.enableWq(0);
    }

    @AfterEach
    void tearDown() {
        service.deactivate();
    }

    @Test
    @Timeout(120)
    void noVmReachesAnotherVmsMemoryOrUsesAPasidOutsideItsSet() throws Exception {
        long seed = Long.getLong("iommulab.seed", System.nanoTime());
        int rounds = Integer.getInteger("iommulab.isolation.rounds", DEFAULT_ROUNDS);
        try {
            run(new Random(seed), rounds);
        } catch (AssertionError | Exception e) {
            throw new AssertionError("seeded " + seed + " (rerun with -Diommulab.seed=" + seed + "): " + e, e);
        }
    }

    private void run(Random rnd, int rounds) throws Exception {
        List<Vm> vms = new ArrayList<>();
        for (int i = 0; i < 3; i++) {
            vms.add(new Vm("vm" + i));
        }
        for (int round = 0; round < rounds; round++) {
            Vm vm = vms.get(rnd.nextInt(vms.size()));
            int guestPasid = 1 + rnd.nextInt(4);
            switch (rnd.nextInt(5)) {
                case 0 -> map(vm, guestPasid, hostPasid(rnd, vm, vms));
                case 1 -> {
                    if (vm.guestToHost.remove(guestPasid) != null) {
                        vm.mdev.unmapGuestPasid(guestPasid);
                    }
                    vm.revoked.remove(guestPasid);
                }
                case 2 -> toggleSpare(vm);
                default -> copy(rnd, vm, guestPasid);
            }
            for (Vm other : vms) {
                assertArrayEquals(other.expectedDst, other.space.read(DST, SIZE),
                        "round " + round + ": " + other.name + "'s memory holds only its own copies");
            }
        }
        assertTrue(landed > 0 && rejected > 0 && refused > 0 && freed > 0 || rounds < 100,
                "the rounds covered each outcome: " + landed + " copies landed, " + rejected + " rejected, "
                        + refused + " mappings refused, " + freed + " PASIDs freed");
    }

    /** Own bound, own spare, another VM's, or a PASID nobody holds. */
    private static int hostPasid(Random rnd, Vm vm, List<Vm> vms) {
        Vm other = vms.get(rnd.nextInt(vms.size()));
        return switch (rnd.nextInt(4)) {
            case 0 -> vm.space.pasid;
            case 1 -> vm.spare;
            case 2 -> rnd.nextBoolean() ? other.space.pasid : other.spare;
            default -> 5000 + rnd.nextInt(1000);
        };
    }

    private void map(Vm vm, int guestPasid, int hostPasid) throws Exception {
        if (vm.guestToHost.containsKey(guestPasid)) {
            return; // remapping in place is the VMM's business (unmap first)
        }
        if (vm.owns(hostPasid)) {
            vm.mdev.mapGuestPasid(guestPasid, hostPasid);
            vm.guestToHost.put(guestPasid, hostPasid);
            return;
        }
        Map<Integer, Integer> before = vm.mdev.pasidTranslations();
        try {
            vm.mdev.mapGuestPasid(guestPasid, hostPasid);
            fail(vm.name + " mapped guest PASID " + guestPasid + " to host PASID " + hostPasid + ", not in its set");
        } catch (IommuException e) {
            assertEquals(Errno.EPERM, e.errno(), e.toString());
            refused++;
        }
        assertEquals(before, vm.mdev.pasidTranslations(), "a refused mapping changes nothing");
    }

    /** Frees the VM's unbound PASID through its container, or takes the same value back. */
    private void toggleSpare(Vm vm) throws Exception {
        if (vm.spareHeld) {
            assertEquals(1, vm.space.container.pasidFree(vm.spare, vm.spare));
            vm.spareHeld = false;
            // Freeing revokes the mdev's claim: taking the same value back does not revive it.
            vm.guestToHost.forEach((guest, host) -> {
                if (host == vm.spare) {
                    vm.revoked.add(guest);
                }
            });
            freed++;
        } else {
            try {
                vm.space.container.pasidAlloc(vm.spare, vm.spare);
                vm.spareHeld = true;
            } catch (IommuException e) {
                assertEquals(Errno.EBUSY, e.errno(), "only another set holding it refuses the value");
            }
        }
    }

    private void copy(Random rnd, Vm vm, int guestPasid) throws Exception {
        byte[] data = new byte[SIZE];
        rnd.nextBytes(data);
        vm.space.write(SRC, data);
        vm.space.write(COMP, new byte[32]);
        byte[] d = Dsa.descriptor(Dsa.OP_MEMMOVE).addr1(gva(SRC)).addr2(gva(DST)).size(SIZE).completion(gva(COMP)).build();
        Integer host = vm.guestToHost.get(guestPasid);
        boolean usable = host != null && vm.owns(host) && !vm.revoked.contains(guestPasid);
        SubmitStatus status = vm.mdev.enqcmd(d, guestPasid);
        assertEquals(usable ? SubmitStatus.ACCEPTED : SubmitStatus.REJECTED, status,
                vm.name + " guest PASID " + guestPasid + " -> " + host);
        if (!usable) {
            rejected++;
            return;
        }
        assertTrue(dsa.awaitIdle(10_000));
        CompletionRecord c = CompletionRecord.decode(vm.space.read(COMP, 32));
        if (host == vm.space.pasid) {
            assertEquals(Dsa.COMP_SUCCESS, c.status(), c.toString());
            vm.expectedDst = data;
            landed++;
        } else {
            assertEquals(0, c.status(), "an unbound PASID translates nothing, not even the completion record");
        }
    }
}
