package org.iommulab.smmuv3.internal.driver;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.CopyOnWriteArrayList;

import org.iommulab.api.errno.Errno;
import org.iommulab.api.errno.IommuException;
import org.iommulab.api.fault.FaultListener;
import org.iommulab.api.fault.IommuFault;
import org.iommulab.api.fault.PageRequest;
import org.iommulab.api.fault.PageResponse;
import org.iommulab.api.invalidation.CacheInvalidation;
import org.iommulab.api.nesting.GuestIommuListener;
import org.iommulab.api.nesting.PasidTableConfig;
import org.iommulab.api.pasid.Pasids;
import org.iommulab.api.spi.DomainType;
import org.iommulab.api.spi.IommuDomain;
import org.iommulab.api.translation.Access;
import org.iommulab.api.translation.Translation;
import org.iommulab.pgtable.FlushOps;
import org.iommulab.pgtable.IoPageTable;
import org.iommulab.pgtable.format.ArmGranule;
import org.iommulab.pgtable.format.ArmStage1;
import org.iommulab.platform.internal.memory.FramePool;
import org.iommulab.platform.internal.memory.SparseMemory;
import org.iommulab.smmuv3.internal.hw.SmmuConfig;
import org.iommulab.smmuv3.internal.hw.SmmuHardware;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * SVA by the SMMUv3 driver (a CD table of its own, one CD and ASID per bound SSID), and what a VMM
 * traps when the unit serves as a guest's stage-1-only virtual SMMU: STE changes, CD and TLB
 * invalidations, PRI responses.
 */
class SmmuFirstStageAndTrapTest {
    static final int SID = 3;

    SparseMemory mem;
    FramePool pool;
    SmmuHardware hw;
    SmmuDriver driver;
    final Translation t = new Translation();
    final List<String> trapped = new CopyOnWriteArrayList<>();

    @BeforeEach
    void setUp() throws Exception {
        mem = new SparseMemory(52);
        pool = new FramePool(mem, 1L << 40, 1 << 20);
        hw = new SmmuHardware(mem, SmmuConfig.of(Map.of("stage2", "false")));
        driver = new SmmuDriver("vsmmu", hw, mem, pool);
        hw.setGuestListener(new GuestIommuListener() {
            @Override
            public void streamEntryChanged(int streamId, Optional<PasidTableConfig> config) {
                trapped.add("ste " + streamId + " " + config.map(c -> c.config() == PasidTableConfig.TRANSLATE
                        ? String.format("cd-table 0x%x cdmax %d s1dss %d", c.basePtr(), c.pasidBits(), c.s1dss())
                        : c.config() == PasidTableConfig.BYPASS ? "bypass" : "abort").orElse("invalid"));
            }

            @Override
            public void invalidated(CacheInvalidation inv) {
                trapped.add("inv " + inv.caches() + " " + inv.granularity() + " asid=" + inv.archId());
            }

            @Override
            public void pageResponse(int requesterId, int pasid, int groupIndex, PageResponse response) {
                trapped.add("resp " + requesterId + " " + pasid + " " + groupIndex + " " + response);
            }
        });
    }

    @Test
    void sharedVirtualAddressingOnAStage1OnlyUnitAndItsTraps() throws Exception {
        IommuDomain bypass = driver.allocateDomain(DomainType.IDENTITY);
        IoPageTable process = IoPageTable.create(ArmStage1.of(ArmGranule.G4K, 16, 48, false, false, false), mem, pool,
                FlushOps.NONE);
        long va = 0x40_0000_0000L;
        process.map(va, 0x9000_0000L, 0x2000, IommuDomain.PROT_READ | IommuDomain.PROT_WRITE);
        assertEquals(Errno.ENOENT, assertThrows(IommuException.class, () -> driver.bindFirstStage(SID, 1, process.root(), 48, 0)).errno());
        driver.attach(bypass, SID);
        trapped.clear();
        driver.bindFirstStage(SID, 1, process.root(), 48, 0);
        // Break-before-make: the live STE becomes an abort STE first, then the CD-table STE.
        assertEquals("ste 3 abort", trapped.get(0));
        assertTrue(trapped.get(1).startsWith("ste 3 cd-table 0x") && trapped.get(1).endsWith("cdmax 8 s1dss 1"), trapped.toString());
        assertTrue(hw.translate(SID, 1, va + 0x1008, Access.WRITE, t), t.toString());
        assertEquals(0x9000_1008L, t.outputAddress());
        assertTrue(hw.translate(SID, Pasids.NO_PASID, 0x1234, Access.READ, t), "S1DSS bypass: no SSID passes");
        assertEquals(Errno.EBUSY, assertThrows(IommuException.class, () -> driver.bindFirstStage(SID, 1, process.root(), 48, 0)).errno());
        driver.bindFirstStage(SID, 2, process.root(), 48, 0);
        assertTrue(trapped.stream().anyMatch(l -> l.startsWith("inv [PASID] PASID")), "the second CD: CFGI_CD " + trapped);

        trapped.clear();
        process.unmap(va + 0x1000, 0x1000);
        driver.invalidateFirstStage(SID, 1, va + 0x1000, 0x1000);
        assertTrue(trapped.stream().anyMatch(l -> l.startsWith("inv [IOTLB] ADDR asid=")), trapped.toString());
        assertFalse(hw.translate(SID, 1, va + 0x1008, Access.READ, t));

        List<PageRequest> requests = new CopyOnWriteArrayList<>();
        driver.addFaultListener(new FaultListener() {
            @Override
            public void fault(IommuFault fault) {
            }

            @Override
            public void pageRequest(PageRequest request) {
                requests.add(request);
            }
        });
        trapped.clear();
        if (hw.pageRequest(SID, 1, va + 0x1000, Access.WRITE, 5)) {
            assertEquals(1, requests.size());
            driver.pageResponse(SID, 1, 5, PageResponse.SUCCESS);
            assertEquals(List.of("resp 3 1 5 SUCCESS"), trapped);
        }

        trapped.clear();
        driver.unbindFirstStage(SID, 1);
        driver.unbindFirstStage(SID, 2);
        assertTrue(trapped.contains("ste 3 bypass"), "the last unbind puts the plain STE back: " + trapped);
        assertFalse(hw.translate(SID, 2, va, Access.READ, t));
        driver.detach(bypass, SID);
        driver.freeDomain(bypass);
        process.destroy();
        driver.close();
        assertEquals(0, pool.allocatedFrames());
    }
}
