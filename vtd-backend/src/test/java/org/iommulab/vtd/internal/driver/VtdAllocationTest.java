package org.iommulab.vtd.internal.driver;

import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.lang.management.ManagementFactory;
import java.util.Map;

import org.iommulab.api.nesting.GuestPasidBind;
import org.iommulab.api.nesting.NestingInfo;
import org.iommulab.api.pasid.PasidSet;
import org.iommulab.api.pasid.Pasids;
import org.iommulab.api.spi.DomainType;
import org.iommulab.api.spi.IommuDomain;
import org.iommulab.api.translation.Access;
import org.iommulab.api.translation.Translation;
import org.iommulab.platform.internal.memory.FramePool;
import org.iommulab.platform.internal.memory.SparseMemory;
import org.iommulab.platform.internal.pasid.PasidSpaceImpl;
import org.iommulab.vtd.internal.hw.VtdConfig;
import org.iommulab.vtd.internal.hw.VtdHardware;
import org.junit.jupiter.api.Test;

/** The translate hot path allocates nothing: IOTLB hits, and misses that walk nested tables. */
class VtdAllocationTest {
    private static final int N = 100_000;

    @Test
    void translateAllocatesNothingPerCall() throws Exception {
        com.sun.management.ThreadMXBean threads = (com.sun.management.ThreadMXBean) ManagementFactory.getThreadMXBean();
        assumeTrue(threads.isThreadAllocatedMemorySupported());
        threads.setThreadAllocatedMemoryEnabled(true);

        SparseMemory mem = new SparseMemory(52);
        FramePool pool = new FramePool(mem, 1L << 40, 1 << 20);
        // A tiny IOTLB so that most nested translations miss and walk 24 entries.
        VtdHardware hw = new VtdHardware(mem, VtdConfig.of(Map.of("iotlb-size", "4")));
        VtdDriver driver = new VtdDriver("alloc", hw, mem, pool);
        IommuDomain d = driver.allocateDomain(DomainType.UNMANAGED);
        int sid = 0x10;
        driver.attach(d, sid);
        long gpaBase = 0x4000_0000L;
        d.map(0, gpaBase, 0x40_0000, org.iommulab.api.spi.IommuDomain.PROT_READ | org.iommulab.api.spi.IommuDomain.PROT_WRITE);
        // Guest tables: 64 GVA pages at 0x7f0000000000 -> GPA 0x100000 + i * 4K.
        long gva = 0x7f00_0000_0000L;
        long[] tables = {0x1000, 0x2000, 0x3000, 0x4000};
        for (int level = 0; level < 3; level++) {
            long index = (gva >>> (39 - 9 * level)) & 511;
            mem.write64(gpaBase + tables[level] + 8 * index, tables[level + 1] | 7);
        }
        for (int i = 0; i < 64; i++) {
            mem.write64(gpaBase + 0x4000 + 8L * i, (0x10_0000L + 0x1000L * i) | 0x67);
        }
        PasidSet vm = new PasidSpaceImpl().createSet("vm", 1);
        int pasid = vm.allocate();
        driver.bindGuestPasid(d, sid, new GuestPasidBind(NestingInfo.FORMAT_INTEL_VTD, pasid, 1, true, 0x1000, 48, 0, 0, 0), vm);

        Translation t = new Translation();
        for (int i = 0; i < 20_000; i++) { // warm up: JIT, thread-local scratch, TLB slots
            hw.translate(sid, pasid, gva + 0x1000L * (i & 63), Access.READ, t);
            hw.translate(sid, Pasids.NO_PASID, 0x1000L * (i & 63), Access.READ, t);
        }
        long before = threads.getThreadAllocatedBytes(Thread.currentThread().getId());
        boolean ok = true;
        for (int i = 0; i < N; i++) {
            ok &= hw.translate(sid, pasid, gva + 0x1000L * (i & 63), Access.READ, t); // mostly misses: nested walks
            ok &= hw.translate(sid, Pasids.NO_PASID, 0x1000, Access.READ, t); // hits
        }
        long allocated = threads.getThreadAllocatedBytes(Thread.currentThread().getId()) - before;
        assertTrue(ok, "every translation succeeded");
        assertTrue(allocated < 100_000, allocated + " bytes allocated by " + 2 * N
                + " translations: a per-call allocation would show as megabytes");
    }
}
