package org.iommulab.vtd.internal.driver;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.CopyOnWriteArrayList;

import org.iommulab.api.errno.Errno;
import org.iommulab.api.errno.IommuException;
import org.iommulab.api.fault.FaultListener;
import org.iommulab.api.fault.IommuFault;
import org.iommulab.api.fault.PageRequest;
import org.iommulab.api.fault.PageResponse;
import org.iommulab.api.invalidation.CacheInvalidation;
import org.iommulab.api.invalidation.CacheType;
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

/**
 * The driver's RID_PASID nesting (guest IOVA over first stage): a guest first-stage table bound
 * to PASID 0 makes the requests without PASID nested; PASID 0 needs no set but a requester
 * attached to the parent by requester id; refusals change nothing; unbind and detach restore the
 * entry. And requests without PASID (or with PASID 0) are answered INVALID at once, exactly once.
 */
class VtdRidPasidNestingTest {
    static final int RW = IommuDomain.PROT_READ | IommuDomain.PROT_WRITE;
    static final int SID = 0x0110;
    static final long GPA_BASE = 0x4000_0000L; // GPA 0 in host memory
    static final long IOVA = 0x1_2345_6000L;
    static final long DATA_GPA = 0x10_0000;

    SparseMemory mem;
    FramePool pool;
    VtdHardware hw;
    VtdDriver driver;
    PasidSet vm;
    IommuDomain d;
    final Translation t = new Translation();

    @BeforeEach
    void setUp() throws Exception {
        mem = new SparseMemory(52);
        pool = new FramePool(mem, 1L << 40, 1 << 20);
        hw = new VtdHardware(mem, VtdConfig.of(Map.of()));
        driver = new VtdDriver("vtd-test", hw, mem, pool);
        vm = new PasidSpaceImpl().createSet("vm1", 2);
        d = driver.allocateDomain(DomainType.UNMANAGED);
        driver.attach(d, SID);
        d.map(0, GPA_BASE, 0x20_0000, RW);
        // The guest's IOVA table at GPA 0x1000..0x4000: IOVA -> DATA_GPA, user pages (P, R/W, U/S).
        long[] tables = {0x1000, 0x2000, 0x3000, 0x4000};
        for (int level = 0; level < 4; level++) {
            long index = (IOVA >>> (39 - 9 * level)) & 511;
            mem.write64(GPA_BASE + tables[level] + 8 * index, (level < 3 ? tables[level + 1] : DATA_GPA) | 7);
        }
    }

    static GuestPasidBind ridPasid(long pgd) {
        return new GuestPasidBind(NestingInfo.FORMAT_INTEL_VTD, Pasids.RESERVED_PASID, 0, true, pgd, 48, 0, 0, 0);
    }

    long noPasid(int sid, long address) {
        return hw.translate(sid, Pasids.NO_PASID, address, Access.READ, t) ? t.outputAddress() : -1;
    }

    @Test
    void bindNestsRequestsWithoutPasidAndUnbindRestoresSecondStage() throws Exception {
        assertEquals(GPA_BASE + DATA_GPA, noPasid(SID, DATA_GPA));
        driver.bindGuestPasid(d, SID, ridPasid(0x1000), vm);
        assertEquals(GPA_BASE + DATA_GPA, noPasid(SID, IOVA), "IOVA -> GPA -> HPA");
        assertEquals(-1, noPasid(SID, DATA_GPA));
        assertEquals(Errno.EBUSY, assertThrows(IommuException.class,
                () -> driver.bindGuestPasid(d, SID, ridPasid(0x2000), vm)).errno());
        assertEquals(GPA_BASE + DATA_GPA, noPasid(SID, IOVA), "unchanged");

        // A guest unmap is stale until PASID 0 is invalidated; the parent's own changes flush it too.
        mem.write64(GPA_BASE + 0x4000 + 8 * ((IOVA >>> 12) & 511), 0);
        assertEquals(GPA_BASE + DATA_GPA, noPasid(SID, IOVA));
        driver.cacheInvalidate(d, SID, CacheInvalidation.range(Set.of(CacheType.IOTLB), 0, -1, IOVA, 4096, 1, true), vm);
        assertEquals(-1, noPasid(SID, IOVA));
        assertEquals(Errno.EPERM, assertThrows(IommuException.class, () -> driver.cacheInvalidate(d, 0x0200,
                CacheInvalidation.pasid(Set.of(CacheType.IOTLB), 0, -1), vm)).errno(), "PASID 0 of a requester not bound");

        driver.unbindGuestPasid(d, SID, 0, vm);
        assertEquals(GPA_BASE + DATA_GPA, noPasid(SID, DATA_GPA), "second stage only again");
        assertEquals(Errno.ENOENT, assertThrows(IommuException.class, () -> driver.unbindGuestPasid(d, SID, 0, vm)).errno());

        // Detach takes a RID_PASID binding along.
        driver.bindGuestPasid(d, SID, ridPasid(0x1000), vm);
        driver.detach(d, SID);
        assertEquals(-1, noPasid(SID, IOVA));
        driver.attach(d, SID);
        assertEquals(GPA_BASE + DATA_GPA, noPasid(SID, DATA_GPA));
    }

    @Test
    void refusedBindsOfPasidZeroChangeNothing() throws Exception {
        // A requester not attached to the parent.
        assertEquals(Errno.ENOENT, assertThrows(IommuException.class,
                () -> driver.bindGuestPasid(d, 0x0200, ridPasid(0x1000), vm)).errno());
        assertEquals(-1, noPasid(0x0200, IOVA));
        // A requester attached by a PASID only (an mdev's auxiliary domain): its RID_PASID is not the binder's.
        IommuDomain aux = driver.allocateDomain(DomainType.UNMANAGED);
        driver.attachPasid(aux, 0x0300, 7);
        assertEquals(Errno.EPERM, assertThrows(IommuException.class,
                () -> driver.bindGuestPasid(aux, 0x0300, ridPasid(0x1000), vm)).errno());
        assertEquals(-1, noPasid(0x0300, IOVA));
        // Malformed data for PASID 0 gets EINVAL like any other PASID.
        assertEquals(Errno.EINVAL, assertThrows(IommuException.class,
                () -> driver.bindGuestPasid(d, SID, ridPasid(0x1234), vm)).errno());
        assertEquals(GPA_BASE + DATA_GPA, noPasid(SID, DATA_GPA), "the RID_PASID entry is as it was");
    }

    @Test
    void pageRequestsWithoutPasidAreAnsweredInvalidOnceAndListenersOnlyHearOfThem() throws Exception {
        List<PageRequest> heard = new CopyOnWriteArrayList<>();
        driver.addFaultListener(new FaultListener() {
            @Override
            public void fault(IommuFault fault) {
            }

            @Override
            public void pageRequest(PageRequest request) {
                heard.add(request);
            }
        });
        assertTrue(hw.pageRequest(SID, Pasids.NO_PASID, IOVA, Access.READ, 3));
        assertTrue(hw.pageRequest(SID, 0, IOVA, Access.READ, 4));
        assertEquals(2, heard.size());
        assertEquals(PageResponse.INVALID, hw.pageRequestStatus(SID, Pasids.NO_PASID, 3));
        assertEquals(PageResponse.INVALID, hw.pageRequestStatus(SID, 0, 4));
        assertEquals(Errno.ENOENT, assertThrows(IommuException.class,
                () -> driver.pageResponse(SID, Pasids.NO_PASID, 3, PageResponse.SUCCESS)).errno(), "answered already");
        assertNull(hw.pageRequestStatus(SID, Pasids.NO_PASID, 3), "one answer, consumed");
        // A request with a PASID still waits for its listener.
        int pasid = vm.allocate();
        assertTrue(hw.pageRequest(SID, pasid, IOVA, Access.READ, 5));
        assertNull(hw.pageRequestStatus(SID, pasid, 5));
        driver.pageResponse(SID, pasid, 5, PageResponse.SUCCESS);
        assertEquals(PageResponse.SUCCESS, hw.pageRequestStatus(SID, pasid, 5));
        assertFalse(heard.isEmpty());
    }
}
