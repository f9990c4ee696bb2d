package org.iommulab.vfio.internal;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.fail;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.TreeMap;

import org.iommulab.api.device.Requester;
import org.iommulab.api.errno.Errno;
import org.iommulab.api.errno.IommuException;
import org.iommulab.api.pasid.Pasids;
import org.iommulab.api.process.HostProcess;
import org.iommulab.api.spi.IommuInstance;
import org.iommulab.api.translation.Access;
import org.iommulab.api.translation.Translation;
import org.iommulab.api.vfio.VfioContainer;
import org.iommulab.api.vfio.VfioIommuType;
import org.junit.jupiter.api.Test;

/**
 * Isolation as a property: several VMs, each with its own device behind VT-d or SMMUv3 and its own
 * type1 container, make random MAP_DMA / UNMAP_DMA calls (valid and invalid) while every device
 * translates random IOVAs. A reference model of each VM's mappings says what must happen: a
 * translation succeeds exactly when the VM mapped the IOVA with that access, and then lands on the
 * frame behind the VM's own virtual address; a rejected call changes nothing.
 *
 * <p>Seeded and reproducible: {@code -Diommulab.seed=N} fixes the first seed, and
 * {@code -Diommulab.isolation.rounds=N} (default 12) how many rounds run; a failure names the seed
 * of its round, which reruns it alone with {@code -Diommulab.isolation.rounds=1}.
 */
class IsolationPropertyTest {
    private static final long MB = 1 << 20;
    private static final long PAGE = 4096;
    /** Each VM's RAM. */
    private static final long RAM = 8 * MB;
    /** IOVAs the VMs use: below both backends' MSI windows. */
    private static final long IOVA_SPACE = 64 * MB;
    private static final int STEPS = 400;

    /** One VM: its process, RAM, device and container, and the mappings it made (iova -> mapping). */
    private record Vm(String name, HostProcess process, long ram, Requester device, IommuInstance iommu,
            VfioContainer container, TreeMap<Long, Mapping> mappings) {
    }

    private record Mapping(long iova, long size, long vaddr, int flags) {
        long last() {
            return iova + size - 1;
        }
    }

    @Test
    void noDeviceEverReachesAPageItsVmDidNotMap() {
        SeededRounds.run("isolation property", 0x15_0_1A7EL, this::round);
    }

    private void round(Random random) throws Exception {
        VfioStack stack = new VfioStack();
        Map<String, IommuInstance> units = Map.of("vtd", stack.instance("vtd", "vtd0"),
                "smmuv3", stack.instance("smmuv3", "smmu0"));
        List<Vm> vms = new ArrayList<>();
        int count = 2 + random.nextInt(3);
        for (int i = 0; i < count; i++) {
            IommuInstance iommu = units.get(random.nextBoolean() ? "vtd" : "smmuv3");
            Requester device = stack.device("dev" + i, iommu, 0x10 + i, 0);
            HostProcess process = stack.process("vm" + i);
            long ram = process.mmap(RAM);
            // Distinct contents, so that a translation to the wrong frame would also read wrong data.
            for (long off = 0; off < RAM; off += PAGE) {
                process.write64(ram + off, (long) i << 32 | off);
            }
            VfioContainer container = stack.container(process, device.groupId(), VfioIommuType.TYPE1V2);
            vms.add(new Vm("vm" + i, process, ram, device, iommu, container, new TreeMap<>()));
        }
        Translation t = new Translation();
        for (int step = 0; step < STEPS; step++) {
            Vm vm = vms.get(random.nextInt(vms.size()));
            int op = random.nextInt(10);
            if (op < 4) {
                map(vm, random);
            } else if (op < 6) {
                unmap(vm, random);
            } else {
                translate(vm, random, t);
            }
        }
        for (Vm vm : vms) {
            vm.container().close();
            assertEquals(0, vm.process().pinnedPages(), vm.name() + ": closing the container released every pin");
        }
    }

    private static void map(Vm vm, Random random) throws Exception {
        long pages = 1 + random.nextInt(random.nextInt(8) == 0 ? 512 : 16);
        long size = pages * PAGE;
        long vaddr = vm.ram() + random.nextLong(RAM / PAGE - pages + 1) * PAGE;
        long iova = random.nextInt(4) == 0
                ? random.nextLong(IOVA_SPACE / (2 * MB)) * 2 * MB // aligned: large pages when frames allow
                : random.nextLong((IOVA_SPACE - size) / PAGE + 1) * PAGE;
        int flags = random.nextInt(3) == 0 ? VfioContainer.DMA_MAP_FLAG_READ
                : VfioContainer.DMA_MAP_FLAG_READ | VfioContainer.DMA_MAP_FLAG_WRITE;
        boolean overlaps = overlapping(vm, iova, iova + size - 1).size() > 0;
        List<org.iommulab.api.vfio.DmaMapping> before = vm.container().mappings();
        try {
            vm.container().mapDma(vaddr, iova, size, flags);
            if (overlaps) {
                fail(vm.name() + ": MAP_DMA over an existing mapping at 0x" + Long.toHexString(iova) + " succeeded");
            }
            vm.mappings().put(iova, new Mapping(iova, size, vaddr, flags));
        } catch (IommuException e) {
            if (!overlaps || e.errno() != Errno.EEXIST) {
                throw new AssertionError(vm.name() + ": unexpected MAP_DMA failure " + e.errno(), e);
            }
            assertEquals(before, vm.container().mappings(), "a rejected MAP_DMA changes nothing");
        }
    }

    private static void unmap(Vm vm, Random random) throws Exception {
        long iova;
        long size;
        if (!vm.mappings().isEmpty() && random.nextBoolean()) {
            // A whole mapping, or a run of them.
            List<Mapping> all = new ArrayList<>(vm.mappings().values());
            int from = random.nextInt(all.size());
            int to = Math.min(all.size() - 1, from + random.nextInt(3));
            iova = all.get(from).iova();
            size = all.get(to).last() + 1 - iova;
        } else {
            // Anywhere: may bisect a mapping (EINVAL) or cover nothing (0 bytes).
            size = (1 + random.nextInt(64)) * PAGE;
            iova = random.nextLong((IOVA_SPACE - size) / PAGE + 1) * PAGE;
        }
        long last = iova + size - 1;
        List<Mapping> hit = overlapping(vm, iova, last);
        boolean bisects = hit.stream().anyMatch(m -> m.iova() < iova || m.last() > last);
        List<org.iommulab.api.vfio.DmaMapping> before = vm.container().mappings();
        try {
            long removed = vm.container().unmapDma(iova, size, 0);
            if (bisects) {
                fail(vm.name() + ": UNMAP_DMA bisecting a mapping succeeded");
            }
            assertEquals(hit.stream().mapToLong(Mapping::size).sum(), removed, "UNMAP_DMA returns the bytes it removed");
            hit.forEach(m -> vm.mappings().remove(m.iova()));
        } catch (IommuException e) {
            if (!bisects || e.errno() != Errno.EINVAL) {
                throw new AssertionError(vm.name() + ": unexpected UNMAP_DMA failure " + e.errno(), e);
            }
            assertEquals(before, vm.container().mappings(), "a rejected UNMAP_DMA changes nothing");
        }
    }

    private static void translate(Vm vm, Random random, Translation t) {
        long iova;
        if (!vm.mappings().isEmpty() && random.nextInt(3) > 0) {
            List<Mapping> all = new ArrayList<>(vm.mappings().values());
            Mapping m = all.get(random.nextInt(all.size()));
            iova = m.iova() + random.nextLong(m.size()) & ~7L;
        } else {
            iova = random.nextLong(IOVA_SPACE) & ~7L;
        }
        int access = random.nextBoolean() ? Access.READ : Access.WRITE;
        boolean ok = vm.iommu().translate(vm.device().requesterId(), Pasids.NO_PASID, iova, access, t);
        Map.Entry<Long, Mapping> e = vm.mappings().floorEntry(iova);
        Mapping m = e != null && e.getValue().last() >= iova ? e.getValue() : null;
        boolean allowed = m != null && (access == Access.READ
                || (m.flags() & VfioContainer.DMA_MAP_FLAG_WRITE) != 0);
        String where = String.format("%s: %s of IOVA 0x%x", vm.name(), access == Access.READ ? "read" : "write", iova);
        if (!allowed) {
            if (ok) {
                fail(where + " translated to 0x" + Long.toHexString(t.outputAddress()) + " without a mapping allowing it");
            }
            return;
        }
        if (!ok) {
            fail(where + " faulted although mapped: " + t);
        }
        long vaddr = m.vaddr() + (iova - m.iova());
        long expected = vm.process().residentAddress(vaddr & ~(PAGE - 1)) + (vaddr & (PAGE - 1));
        assertEquals(expected, t.outputAddress(), where + " lands on the frame behind the VM's own address");
    }

    private static List<Mapping> overlapping(Vm vm, long first, long last) {
        List<Mapping> hit = new ArrayList<>();
        Map.Entry<Long, Mapping> below = vm.mappings().floorEntry(first);
        if (below != null && below.getValue().last() >= first) {
            hit.add(below.getValue());
        }
        hit.addAll(vm.mappings().subMap(first, false, last, true).values());
        return hit;
    }
}
