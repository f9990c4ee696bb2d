package org.iommulab.pgtable;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.iommulab.api.spi.IommuDomain;
import org.iommulab.api.translation.Access;
import org.iommulab.pgtable.format.ArmGranule;
import org.iommulab.pgtable.format.ArmStage1;
import org.iommulab.pgtable.format.X86FirstStage;
import org.iommulab.platform.internal.memory.FramePool;
import org.iommulab.platform.internal.memory.SparseMemory;
import org.junit.jupiter.api.Test;

/** Supervisor writes to read-only pages: allowed on x86 only with write protection off (CR0.WP / VT-d WPE = 0). */
class WriteProtectTest {
    private final SparseMemory mem = new SparseMemory(52);
    private final FramePool pool = new FramePool(mem, 1L << 40, 1 << 16);
    private final WalkResult r = new WalkResult();

    private boolean write(PageTableFormat f, boolean privileged) throws Exception {
        IoPageTable t = IoPageTable.create(f, mem, pool, FlushOps.NONE);
        t.map(0x1000, 0x9000, 0x1000, IommuDomain.PROT_READ); // read-only
        return Walker.walk(mem, f, t.root(), 0x1000, Access.WRITE | (privileged ? Access.PRIV : 0), false, r);
    }

    @Test
    void x86WithoutWriteProtectLetsSupervisorWritesThrough() throws Exception {
        PageTableFormat noWp = X86FirstStage.of(4, 48, true, true, true, false);
        assertTrue(write(noWp, true), r.toString());
        assertFalse(write(noWp, false), "user writes still honour R/W");
        assertEquals(WalkFault.WRITE, r.fault());
    }

    @Test
    void withWriteProtectEveryWriteHonoursReadOnly() throws Exception {
        assertFalse(write(X86FirstStage.of(4, 48, true, true, true, true), true));
        assertEquals(WalkFault.WRITE, r.fault());
        assertFalse(write(ArmStage1.of(ArmGranule.G4K, 16, 48, false, false, false), true), "Arm has no such override");
    }
}
