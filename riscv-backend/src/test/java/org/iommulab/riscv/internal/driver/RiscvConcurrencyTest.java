package org.iommulab.riscv.internal.driver;

import static org.iommulab.riscv.internal.driver.DriverRig.RID;
import static org.iommulab.riscv.internal.driver.DriverRig.RW;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.atomic.AtomicBoolean;

import org.iommulab.api.pasid.Pasids;
import org.iommulab.api.spi.DomainType;
import org.iommulab.api.spi.IommuDomain;
import org.iommulab.api.translation.Access;
import org.iommulab.api.translation.Translation;
import org.iommulab.pgtable.IoPageTable;
import org.junit.jupiter.api.Test;

/**
 * Maps, unmaps, binds, unbinds and DMA on several threads at once: every unmap and unbind still
 * leaves nothing stale for the thread that made it, nothing throws, nothing deadlocks, and every
 * frame comes back at close.
 */
class RiscvConcurrencyTest {
    static final int ROUNDS = 300;

    @Test
    void mapUnmapBindUnbindUnderDma() throws Exception {
        try (DriverRig rig = new DriverRig().listen()) {
            IommuDomain d = rig.drv.allocateDomain(DomainType.UNMANAGED);
            IommuDomain id = rig.drv.allocateDomain(DomainType.IDENTITY);
            rig.drv.attach(d, RID);
            rig.drv.attach(id, RID + 1);
            long pa = rig.frames(4);
            IoPageTable process = rig.process();
            process.map(0x40_0000, pa, 0x4000, RW);
            long baseline = rig.pool.allocatedFrames();
            List<Throwable> errors = new CopyOnWriteArrayList<>();
            AtomicBoolean done = new AtomicBoolean();
            Thread dma = new Thread(() -> {
                Translation t = new Translation();
                while (!done.get()) {
                    for (int i = 0; i < 8; i++) {
                        rig.inst.translate(RID, Pasids.NO_PASID, 0x10_0000L + 0x1000L * i, Access.READ, t);
                        rig.inst.translate(RID + 1, 1 + i % 2, 0x40_0000L + 0x1000L * (i % 4), Access.WRITE, t);
                    }
                }
            });
            Thread mapper = new Thread(() -> {
                try {
                    for (int r = 0; r < ROUNDS; r++) {
                        long iova = 0x10_0000L + 0x1000L * (r % 8);
                        d.map(iova, pa + 0x1000L * (r % 4), 0x1000, RW);
                        Translation t = rig.tr(RID, Pasids.NO_PASID, iova, Access.READ);
                        assertTrue(t.isSuccess(), t::toString);
                        assertEquals(0x1000, d.unmap(iova, 0x1000));
                        assertFalse(rig.tr(RID, Pasids.NO_PASID, iova, Access.READ).isSuccess(), "stale after unmap");
                    }
                } catch (Throwable e) {
                    errors.add(e);
                }
            });
            Thread binder = new Thread(() -> {
                try {
                    for (int r = 0; r < ROUNDS; r++) {
                        int pasid = 1 + r % 2;
                        rig.drv.bindFirstStage(RID + 1, pasid, process.root(), 48, 0);
                        rig.drv.invalidateFirstStage(RID + 1, pasid, 0x40_0000, 0x4000);
                        rig.drv.unbindFirstStage(RID + 1, pasid);
                        assertFalse(rig.tr(RID + 1, pasid, 0x40_0000, Access.READ).isSuccess(), "stale after unbind");
                    }
                } catch (Throwable e) {
                    errors.add(e);
                }
            });
            dma.start();
            mapper.start();
            binder.start();
            mapper.join(60_000);
            binder.join(60_000);
            done.set(true);
            dma.join(60_000);
            assertTrue(errors.isEmpty(), errors::toString);
            assertFalse(mapper.isAlive() || binder.isAlive() || dma.isAlive(), "a thread hangs");
            assertEquals(baseline, rig.pool.allocatedFrames(), "PDTs and emptied G-stage tables freed");
            rig.inst.close();
            assertEquals(0, rig.pool.allocatedFrames());
            process.destroy();
        }
    }
}
