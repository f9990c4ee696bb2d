package org.iommulab.riscv.internal.hw;

import static org.iommulab.riscv.internal.hw.RiscvRig.*;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.lang.management.ManagementFactory;
import java.util.Map;

import org.iommulab.api.pasid.Pasids;
import org.iommulab.api.spi.IommuDomain;
import org.iommulab.api.translation.Access;
import org.iommulab.api.translation.Translation;
import org.iommulab.pgtable.IoPageTable;
import org.iommulab.pgtable.format.RiscvPaging;
import org.junit.jupiter.api.Test;

/** The translate hot path allocates nothing: IOTLB hits, nested misses through the PC cache, and faults. */
class RiscvAllocationTest {
    private static final int N = 100_000;

    @Test
    void translateAllocatesNothingPerCall() {
        com.sun.management.ThreadMXBean threads = (com.sun.management.ThreadMXBean) ManagementFactory.getThreadMXBean();
        assumeTrue(threads.isThreadAllocatedMemorySupported());
        threads.setThreadAllocatedMemoryEnabled(true);

        RiscvRig rig = new RiscvRig(Map.of("iotlb-size", "4"));
        rig.enable();
        int rw = IommuDomain.PROT_READ | IommuDomain.PROT_WRITE;
        IoPageTable g = rig.gStage(RiscvPaging.Mode.SV48);
        map(g, STRUCTS, STRUCTS, 0x100_0000, rw);
        map(g, POOL, POOL, 0x400_0000, rw);
        map(g, DATA, DATA, 0x100_0000, rw);
        IoPageTable s1 = rig.firstStage(RiscvPaging.Mode.SV48, true);
        map(s1, 0x7f00_0000_0000L, DATA, 0x4_0000, rw);
        long pdt = rig.page();
        rig.pc(pdt, PD17, 0x101, pcTa(5, false, false), atp(SV48, s1.root()));
        rig.dc(0x10, V | PDTV | SADE | GADE, iohgatp(SV48, 2, g.root()), 0, atp(PD17, pdt));
        rig.dc(0x11, V | DTF, 0, 0, 0);
        rig.dc(0x12, V, 0, dcTa(1), atp(SV48, s1.root()));
        rig.dc(0x13, 0, 0, 0, 0);

        Translation t = new Translation();
        for (int i = 0; i < 20_000; i++) { // warm up: JIT, thread-local scratch, cache slots
            rig.hw.translate(0x10, 0x101, 0x7f00_0000_0000L + 0x1000L * (i & 63), Access.READ, t);
            rig.hw.translate(0x11, 3, 0, Access.READ, t);
            rig.hw.translate(0x12, Pasids.NO_PASID, 0x7f00_0000_0000L, Access.READ, t);
        }
        long before = threads.getThreadAllocatedBytes(Thread.currentThread().getId());
        boolean ok = true;
        for (int i = 0; i < N; i++) {
            ok &= rig.hw.translate(0x10, 0x101, 0x7f00_0000_0000L + 0x1000L * (i & 63), Access.READ, t); // nested misses
            ok &= rig.hw.translate(0x12, Pasids.NO_PASID, 0x7f00_0000_0000L, Access.READ, t); // hits
            ok &= !rig.hw.translate(0x11, 3, 0, Access.READ, t); // faults (260, suppressed by DTF)
            ok &= !rig.hw.translate(0x13, 3, 0, Access.READ, t); // faults (258, recorded or discarded)
            if ((i & 15) == 0) {
                rig.w32(FQH, rig.r32(FQT)); // software consumes the records
            }
        }
        long allocated = threads.getThreadAllocatedBytes(Thread.currentThread().getId()) - before;
        assertTrue(ok, "every translation did what it should");
        assertTrue(allocated < 100_000, allocated + " bytes allocated by " + 3 * N
                + " translations: a per-call allocation would show as megabytes");
    }
}
