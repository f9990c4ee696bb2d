package org.iommulab.vtd.internal.driver;

import static org.junit.jupiter.api.Assertions.*;

import java.util.List;
import java.util.Map;
import java.util.concurrent.CopyOnWriteArrayList;

import org.iommulab.api.errno.IommuException;
import org.iommulab.api.fault.FaultListener;
import org.iommulab.api.fault.IommuFault;
import org.iommulab.api.fault.PageRequest;
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
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

class VtdDriverRegressionTest {
    static final int RW = IommuDomain.PROT_READ | IommuDomain.PROT_WRITE;
    static final int SID = 0x0110;
    SparseMemory mem;
    FramePool pool;
    VtdHardware hw;
    VtdDriver driver;
    final Translation t = new Translation();

    @BeforeEach
    void setUp() throws Exception {
        mem = new SparseMemory(52);
        pool = new FramePool(mem, 1L << 40, 1 << 20);
        hw = new VtdHardware(mem, VtdConfig.of(Map.of()));
        driver = new VtdDriver("vtd-test", hw, mem, pool);
    }

    /** Guest RAM at HPA 1 GiB (GPA 0, 2 MiB); guest table GVA -> GPA 0x5000. */
    long gva = 0x7f00_0020_1000L;
    long gpaBase = 0x4000_0000L;

    IommuDomain nested(PasidSet vm, int hpasid) throws Exception {
        IommuDomain d = driver.allocateDomain(DomainType.UNMANAGED);
        driver.attach(d, SID);
        d.map(0, gpaBase, 0x10_0000, RW); // 4 KiB pages
        long[] tables = {0x1000, 0x2000, 0x3000, 0x4000};
        for (int level = 0; level < 4; level++) {
            long index = (gva >>> (39 - 9 * level)) & 511;
            mem.write64(gpaBase + tables[level] + 8 * index, (level < 3 ? tables[level + 1] : 0x5000) | 7);
        }
        driver.bindGuestPasid(d, SID, new GuestPasidBind(NestingInfo.FORMAT_INTEL_VTD, hpasid, 7, true, 0x1000, 48, 0, 0, 0), vm);
        return d;
    }

    @Test
    void parentUnmapAlsoFlushesNestedTranslations() throws Exception {
        PasidSet vm = new PasidSpaceImpl().createSet("vm1", 4);
        int hpasid = vm.allocate();
        IommuDomain d = nested(vm, hpasid);
        assertTrue(hw.translate(SID, hpasid, gva, Access.READ, t), t.toString());
        assertEquals(gpaBase + 0x5000, t.outputAddress());
        // The VMM takes GPA 0x5000 away from the guest (host page goes elsewhere).
        assertEquals(0x1000, d.unmap(0x5000, 0x1000));
        assertEquals(-1, d.iovaToPhys(0x5000));
        // IommuDomain contract: after unmap returns no translation of the range succeeds.
        boolean ok = hw.translate(SID, hpasid, gva, Access.READ, t);
        assertFalse(ok, "nested IOTLB entry survived the parent unmap: " + t);
    }

    @Test
    void freedPasidTearsDownItsBinding() throws Exception {
        PasidSpaceImpl space = new PasidSpaceImpl();
        space.addListener((owner, setId, pasid) -> driver.pasidFreed(setId, pasid)); // as VtdBackend does
        PasidSet vm = space.createSet("vm1", 4);
        int hpasid = vm.allocate();
        IommuDomain d = nested(vm, hpasid);
        assertTrue(hw.translate(SID, hpasid, gva | 0x10, Access.READ, t));
        vm.free(hpasid); // "tells every PasidListener, so bindings through it stop"
        assertFalse(hw.translate(SID, hpasid, gva | 0x10, Access.READ, t), "a freed PASID translates nothing: " + t);
        assertEquals(0x59, t.faultCode());
        PasidSet vm2 = space.createSet("vm2", 4);
        assertEquals(hpasid, vm2.allocate());
        driver.bindGuestPasid(d, SID, new GuestPasidBind(NestingInfo.FORMAT_INTEL_VTD, hpasid, 7, true, 0x1000, 48, 0, 0, 0), vm2);
        assertTrue(hw.translate(SID, hpasid, gva, Access.READ, t), "the new owner binds it: " + t);
    }

    @Test
    void pageRequestArrivingDuringTheHandlerIsDelivered() throws Exception {
        List<PageRequest> seen = new CopyOnWriteArrayList<>();
        driver.addFaultListener(new FaultListener() {
            @Override
            public void fault(IommuFault fault) {
            }

            @Override
            public void pageRequest(PageRequest request) {
                seen.add(request);
                if (request.groupIndex() == 1) {
                    // Another device thread issues a page request while the handler is running.
                    Thread other = new Thread(() -> assertTrue(hw.pageRequest(SID, Pasids.NO_PASID, 0x2000, Access.READ, 2)));
                    other.start();
                    try {
                        other.join();
                    } catch (InterruptedException e) {
                        throw new RuntimeException(e);
                    }
                }
            }
        });
        IommuDomain d = driver.allocateDomain(DomainType.UNMANAGED);
        driver.attach(d, SID);
        assertTrue(hw.pageRequest(SID, Pasids.NO_PASID, 0x1000, Access.READ, 1));
        assertEquals(2, seen.size(), "delivered: " + seen + " PRS=" + hw.read(0xdc, 4) + " PQH=" + hw.read(0xc0, 8)
                + " PQT=" + hw.read(0xc8, 8) + " status(2)=" + hw.pageRequestStatus(SID, Pasids.NO_PASID, 2));
    }

    @Test
    void failedTakeOverLeavesNothingAllocated() throws Exception {
        SparseMemory m = new SparseMemory(52);
        FramePool small = new FramePool(m, 1L << 40, 3); // IQ + status + root; the PRQ frame fails
        VtdHardware h = new VtdHardware(m, VtdConfig.of(Map.of()));
        VtdDriver dr = new VtdDriver("small", h, m, small);
        IommuException e = assertThrows(IommuException.class, () -> dr.allocateDomain(DomainType.IDENTITY));
        long gsts = h.read(0x1c, 4);
        dr.close();
        assertEquals(0, small.allocatedFrames(), "after " + e + " and close(): GSTS=0x" + Long.toHexString(gsts));
    }
}
