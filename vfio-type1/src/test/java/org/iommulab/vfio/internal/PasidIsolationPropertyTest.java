package org.iommulab.vfio.internal;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.fail;

import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.Set;
import java.util.TreeSet;

import org.iommulab.api.device.Requester;
import org.iommulab.api.errno.Errno;
import org.iommulab.api.errno.IommuException;
import org.iommulab.api.invalidation.CacheInvalidation;
import org.iommulab.api.invalidation.CacheType;
import org.iommulab.api.nesting.GuestPasidBind;
import org.iommulab.api.nesting.NestingInfo;
import org.iommulab.api.process.HostProcess;
import org.iommulab.api.spi.IommuDomain;
import org.iommulab.api.spi.IommuInstance;
import org.iommulab.api.translation.Access;
import org.iommulab.api.translation.Translation;
import org.iommulab.api.vfio.VfioContainer;
import org.iommulab.api.vfio.VfioIommuType;
import org.iommulab.pgtable.FlushOps;
import org.iommulab.pgtable.IoPageTable;
import org.iommulab.pgtable.format.X86FirstStage;
import org.junit.jupiter.api.Test;

/**
 * PASID isolation as a property, on VT-d: several VMs, each with a device and a nesting container
 * on one IOMMU, request and free PASIDs, bind their guest table to PASIDs (their own, other VMs',
 * never allocated ones), unbind and invalidate, while every device translates with random PASIDs.
 * A model of each VM's PASIDs and bindings decides every outcome: only a VM's own PASIDs can be
 * bound, unbound or invalidated (EPERM otherwise, changing nothing); a device translates with a
 * PASID exactly while its VM has it bound, and reaches that VM's own data; freeing a PASID stops
 * every access through it.
 *
 * <p>Seeded like {@link IsolationPropertyTest}: {@code -Diommulab.seed}, and
 * {@code -Diommulab.isolation.rounds} (default 12).
 */
class PasidIsolationPropertyTest {
    private static final long MB = 1 << 20;
    private static final long GVA = 0x7f00_0040_0000L;
    private static final long DATA_GPA = 0x10_0000;
    private static final int STEPS = 300;

    private record Vm(String name, HostProcess process, long ram, Requester device, VfioContainer container,
            long pgd, Set<Integer> owned, Set<Integer> bound) {
    }

    @Test
    void onlyAVmsOwnPasidsReachItsMemory() {
        SeededRounds.run("PASID isolation property", 0x9A51DL, this::round);
    }

    private void round(Random random) throws Exception {
        VfioStack stack = new VfioStack(65535, 8);
        IommuInstance iommu = stack.instance("vtd", "vtd0");
        List<Vm> vms = new ArrayList<>();
        int count = 2 + random.nextInt(2);
        for (int i = 0; i < count; i++) {
            Requester device = stack.device("dsa" + i, iommu, 0x10 + i, 20);
            HostProcess process = stack.process("vm" + i);
            long ram = process.mmap(4 * MB);
            process.write64(ram + DATA_GPA, 0xda7a_0000L + i);
            GuestRam guest = new GuestRam(process, ram, 4 * MB, 2 * MB);
            VfioContainer container = stack.container(process, device.groupId(), VfioIommuType.NESTING);
            container.mapDma(ram, 0, 4 * MB, VfioContainer.DMA_MAP_FLAG_READ | VfioContainer.DMA_MAP_FLAG_WRITE);
            IoPageTable table = IoPageTable.create(X86FirstStage.of(4, 48, false, true, true), guest, guest, FlushOps.NONE);
            table.map(GVA, DATA_GPA, 4096, IommuDomain.PROT_READ | IommuDomain.PROT_WRITE);
            vms.add(new Vm("vm" + i, process, ram, device, container, table.root(), new TreeSet<>(), new TreeSet<>()));
        }
        Translation t = new Translation();
        for (int step = 0; step < STEPS; step++) {
            Vm vm = vms.get(random.nextInt(vms.size()));
            int pasid = pickPasid(vms, vm, random);
            switch (random.nextInt(6)) {
                case 0 -> allocate(vm);
                case 1 -> free(vm, pasid);
                case 2 -> bind(vm, pasid);
                case 3 -> unbind(vm, pasid);
                case 4 -> invalidate(vm, pasid);
                default -> translate(vm, pasid, t, iommu, stack);
            }
        }
        for (Vm vm : vms) {
            vm.container().close();
        }
    }

    /** Mostly PASIDs someone holds (this VM's or another's), sometimes one nobody holds. */
    private static int pickPasid(List<Vm> vms, Vm vm, Random random) {
        List<Integer> held = new ArrayList<>();
        for (Vm v : random.nextBoolean() ? List.of(vm) : vms) {
            held.addAll(v.owned());
        }
        return held.isEmpty() || random.nextInt(5) == 0 ? 1 + random.nextInt(64) : held.get(random.nextInt(held.size()));
    }

    private static void allocate(Vm vm) throws Exception {
        try {
            int pasid = vm.container().pasidAlloc(1, (1 << 20) - 1);
            if (!vm.owned().add(pasid)) {
                fail(vm.name() + " was given PASID " + pasid + " twice");
            }
        } catch (IommuException e) {
            assertEquals(Errno.ENOSPC, e.errno(), vm.name() + ": only the quota stops a PASID request");
            assertEquals(8, vm.owned().size(), "the quota is 8");
        }
    }

    private static void free(Vm vm, int pasid) throws Exception {
        int freed = vm.container().pasidFree(pasid, pasid);
        assertEquals(vm.owned().remove(pasid) ? 1 : 0, freed, vm.name() + " frees only its own PASIDs");
        vm.bound().remove(pasid);
    }

    private static void bind(Vm vm, int pasid) {
        Errno expected = !vm.owned().contains(pasid) ? Errno.EPERM : vm.bound().contains(pasid) ? Errno.EBUSY : null;
        GuestPasidBind bind = new GuestPasidBind(NestingInfo.FORMAT_INTEL_VTD, pasid, pasid, true, vm.pgd(), 48, 0, 0, 0);
        expect(vm, "bind", pasid, expected, () -> vm.container().bindGuestPageTable(bind));
        if (expected == null) {
            vm.bound().add(pasid);
        }
    }

    private static void unbind(Vm vm, int pasid) {
        Errno expected = !vm.owned().contains(pasid) ? Errno.EPERM : !vm.bound().contains(pasid) ? Errno.ENOENT : null;
        expect(vm, "unbind", pasid, expected, () -> vm.container().unbindGuestPageTable(pasid));
        vm.bound().remove(pasid);
    }

    private static void invalidate(Vm vm, int pasid) {
        if (vm.owned().contains(pasid) && !vm.bound().contains(pasid)) {
            return; // the series leaves an invalidation for an unbound PASID of one's own to the driver
        }
        Errno expected = vm.owned().contains(pasid) ? null : Errno.EPERM;
        expect(vm, "invalidate", pasid, expected,
                () -> vm.container().cacheInvalidate(CacheInvalidation.pasid(Set.of(CacheType.IOTLB), pasid, -1)));
    }

    private static void translate(Vm vm, int pasid, Translation t, IommuInstance iommu, VfioStack stack) {
        boolean ok = iommu.translate(vm.device().requesterId(), pasid, GVA + 0x10, Access.READ, t);
        if (!vm.bound().contains(pasid)) {
            if (ok) {
                fail(vm.name() + "'s device translated with PASID " + pasid + " it has not bound: 0x"
                        + Long.toHexString(t.outputAddress()));
            }
            return;
        }
        if (!ok) {
            fail(vm.name() + "'s device faulted with its bound PASID " + pasid + ": " + t);
        }
        assertEquals(vm.process().residentAddress(vm.ram() + DATA_GPA) + 0x10, t.outputAddress(),
                vm.name() + " reaches its own data through PASID " + pasid);
    }

    private interface Call {
        void run() throws IommuException;
    }

    private static void expect(Vm vm, String what, int pasid, Errno expected, Call call) {
        Set<Integer> boundBefore = Set.copyOf(vm.container().bindings().keySet());
        try {
            call.run();
            if (expected != null) {
                fail(vm.name() + ": " + what + " of PASID " + pasid + " succeeded, expected " + expected);
            }
        } catch (IommuException e) {
            if (e.errno() != expected) {
                throw new AssertionError(vm.name() + ": " + what + " of PASID " + pasid + " gave " + e.errno()
                        + ", expected " + (expected == null ? "success" : expected), e);
            }
            assertEquals(boundBefore, vm.container().bindings().keySet(), "a rejected " + what + " changes nothing");
        }
    }
}
