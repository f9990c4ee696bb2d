package org.iommulab.vtd.internal.driver;

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
import org.iommulab.api.invalidation.Granularity;
import org.iommulab.api.nesting.GuestIommuListener;
import org.iommulab.api.nesting.GuestPasidBind;
import org.iommulab.api.spi.DomainType;
import org.iommulab.api.spi.IommuDomain;
import org.iommulab.api.translation.Access;
import org.iommulab.api.translation.Translation;
import org.iommulab.pgtable.FlushOps;
import org.iommulab.pgtable.IoPageTable;
import org.iommulab.pgtable.format.X86FirstStage;
import org.iommulab.platform.internal.memory.FramePool;
import org.iommulab.platform.internal.memory.SparseMemory;
import org.iommulab.vtd.internal.hw.VtdConfig;
import org.iommulab.vtd.internal.hw.VtdHardware;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * First-stage (SVA) bindings by the driver, and what a VMM traps when the unit serves as a guest's
 * virtual IOMMU in caching mode: PASID-entry changes, PASID-based IOTLB invalidations, page
 * group responses.
 */
class VtdFirstStageAndTrapTest {
    static final int SID = 0x0010;

    SparseMemory mem;
    FramePool pool;
    VtdHardware hw;
    VtdDriver driver;
    final Translation t = new Translation();
    final List<String> trapped = new CopyOnWriteArrayList<>();

    @BeforeEach
    void setUp() throws Exception {
        mem = new SparseMemory(52);
        pool = new FramePool(mem, 1L << 40, 1 << 20);
        hw = new VtdHardware(mem, VtdConfig.of(Map.of("caching-mode", "true")));
        driver = new VtdDriver("viommu", hw, mem, pool);
        hw.setGuestListener(new GuestIommuListener() {
            @Override
            public void pasidEntryChanged(int requesterId, int pasid, Optional<GuestPasidBind> firstStage) {
                trapped.add(String.format("pasid %04x %d %s", requesterId, pasid,
                        firstStage.map(b -> String.format("pgd=0x%x aw=%d flags=%d", b.guestPgd(), b.addressWidth(), b.vtdFlags()))
                                .orElse("gone")));
            }

            @Override
            public void invalidated(CacheInvalidation inv) {
                trapped.add("inv " + inv.granularity() + " pasid=" + inv.pasid()
                        + (inv.granularity() == Granularity.ADDR ? String.format(" 0x%x+0x%x", inv.address(), inv.size()) : ""));
            }

            @Override
            public void pageResponse(int requesterId, int pasid, int groupIndex, PageResponse response) {
                trapped.add(String.format("resp %04x %d %d %s", requesterId, pasid, groupIndex, response));
            }
        });
    }

    @Test
    void aFirstStageBindingTranslatesAndEveryGuestStepIsTrapped() throws Exception {
        IommuDomain d = driver.allocateDomain(DomainType.UNMANAGED);
        IoPageTable process = IoPageTable.create(X86FirstStage.of(4, 48, false, true, true), mem, pool, FlushOps.NONE);
        long va = 0x7f00_1234_5000L;
        process.map(va, 0x8000_0000L, 0x2000, IommuDomain.PROT_READ | IommuDomain.PROT_WRITE);
        assertEquals(Errno.ENOENT, assertThrows(IommuException.class,
                () -> driver.bindFirstStage(SID, 5, process.root(), 48, 0)).errno(), "SVA needs an attached device");
        driver.attach(d, SID);
        driver.bindFirstStage(SID, 5, process.root(), 48, 0);
        assertEquals(List.of(String.format("pasid %04x 5 pgd=0x%x aw=48 flags=0", SID, process.root()),
                "inv PASID pasid=5"), trapped, "the PASID-cache invalidation, then the PASID's IOTLB flush");
        assertTrue(hw.translate(SID, 5, va + 0x1010, Access.WRITE, t), t.toString());
        assertEquals(0x8000_1010L, t.outputAddress(), "the process's own table, first stage only");
        assertFalse(hw.translate(SID, 5, va + 0x1010, Access.WRITE | Access.PRIV, t), "no SRE: supervisor requests fault");
        assertEquals(Errno.EBUSY, assertThrows(IommuException.class,
                () -> driver.bindFirstStage(SID, 5, process.root(), 48, 0)).errno());

        trapped.clear();
        process.unmap(va + 0x1000, 0x1000);
        driver.invalidateFirstStage(SID, 5, va + 0x1000, 0x1000);
        assertEquals(List.of(String.format("inv ADDR pasid=5 0x%x+0x1000", va + 0x1000)), trapped);
        assertFalse(hw.translate(SID, 5, va + 0x1010, Access.READ, t));

        // A page request the VMM injects reaches the guest's driver; its answer is trapped.
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
        assertTrue(hw.pageRequest(SID, 5, va + 0x1000, Access.WRITE, 7));
        assertEquals(1, requests.size());
        driver.pageResponse(SID, 5, 7, PageResponse.SUCCESS);
        assertEquals(List.of(String.format("resp %04x 5 7 SUCCESS", SID)), trapped);

        trapped.clear();
        driver.unbindFirstStage(SID, 5);
        assertEquals(List.of(String.format("pasid %04x 5 gone", SID), "inv PASID pasid=5"), trapped);
        assertFalse(hw.translate(SID, 5, va, Access.READ, t));
        assertEquals(Errno.ENOENT, assertThrows(IommuException.class, () -> driver.unbindFirstStage(SID, 5)).errno());

        driver.bindFirstStage(SID, 6, process.root(), 48, GuestPasidBind.VTD_SRE);
        driver.detach(d, SID);
        assertFalse(hw.translate(SID, 6, va, Access.READ, t), "detaching the domain takes its SVA bindings");
        driver.freeDomain(d);
        process.destroy();
        driver.close();
        assertEquals(0, pool.allocatedFrames());
    }

    @Test
    void unchangedEntriesAreNotReportedAgainAndTurningTranslationOffUnbinds() throws Exception {
        IommuDomain d = driver.allocateDomain(DomainType.UNMANAGED);
        driver.attach(d, SID);
        driver.bindFirstStage(SID, 5, 0x5000, 48, 0);
        driver.bindFirstStage(SID, 6, 0x6000, 48, GuestPasidBind.VTD_SRE);
        trapped.clear();
        driver.invalidateFirstStage(SID, 5, 0x1000, 0x1000);
        assertFalse(trapped.stream().anyMatch(l -> l.startsWith("pasid")), "nothing changed: " + trapped);
        hw.write(0x18, 0, 4); // GCMD: translation off
        assertTrue(trapped.contains(String.format("pasid %04x 5 gone", SID))
                && trapped.contains(String.format("pasid %04x 6 gone", SID)), "every binding went: " + trapped);
    }
}
