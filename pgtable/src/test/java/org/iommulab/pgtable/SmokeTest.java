package org.iommulab.pgtable;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.iommulab.api.spi.IommuDomain;
import org.iommulab.api.translation.Access;
import org.iommulab.pgtable.format.ArmGranule;
import org.iommulab.pgtable.format.ArmStage1;
import org.iommulab.pgtable.format.ArmStage2;
import org.iommulab.pgtable.format.VtdSecondStage;
import org.iommulab.pgtable.format.X86FirstStage;
import org.iommulab.platform.internal.memory.FramePool;
import org.iommulab.platform.internal.memory.SparseMemory;
import org.junit.jupiter.api.Test;

class SmokeTest {
    @Test
    void mapWalkUnmapEachFormat() throws Exception {
        SparseMemory mem = new SparseMemory(52);
        FramePool pool = new FramePool(mem, 1L << 40, 1 << 20);
        PageTableFormat[] formats = {X86FirstStage.of(4, 52, true, true, true), VtdSecondStage.of(2, 48, true, true, false, false),
            ArmStage1.of(ArmGranule.G4K, 16, 48, false, false, false), ArmStage2.of(ArmGranule.G16K, 24, 1, 48, false, false, false)};
        for (PageTableFormat f : formats) {
            IoPageTable t = IoPageTable.create(f, mem, pool, FlushOps.NONE);
            t.map(0x40000000L, 0x80000000L, 0x400000L, IommuDomain.PROT_READ | IommuDomain.PROT_WRITE);
            assertEquals(0x80123456L, t.iovaToPhys(0x40123456L), f.name());
            WalkResult r = new WalkResult();
            assertTrue(Walker.walk(mem, f, t.root(), 0x40123456L, Access.WRITE | Access.PRIV, true, r), r.toString());
            assertEquals(0x80123456L, r.outputAddress());
            assertEquals(0x400000L, t.unmap(0x40000000L, 0x400000L));
            assertEquals(-1, t.iovaToPhys(0x40123456L));
            assertEquals(f.tableBytes(0) <= 4096 ? 1 : f.tableBytes(0) / 4096, t.tableFrames(), f.name());
            t.destroy();
        }
        assertEquals(0, pool.allocatedFrames());
    }
}
