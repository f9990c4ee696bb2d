package org.iommulab.vtd.internal.driver;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
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
import org.iommulab.api.invalidation.CacheInvalidation;
import org.iommulab.api.invalidation.CacheType;
import org.iommulab.api.nesting.GuestPasidBind;
import org.iommulab.api.nesting.NestingFeature;
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

/** The host driver through the API, checked against what the hardware model then translates. */
class VtdDriverTest {
    static final int RW = IommuDomain.PROT_READ | IommuDomain.PROT_WRITE;
    static final int SID = 0x0110; // 01:02.0

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

    @Test
    void nestingInfoComesFromCapAndEcap() {
        NestingInfo info = driver.nestingInfo();
        assertEquals(NestingInfo.FORMAT_INTEL_VTD, info.format());
        assertTrue(info.supports(NestingFeature.BIND_PGTBL));
        assertTrue(info.supports(NestingFeature.SYSWIDE_PASID));
        assertTrue(info.supports(NestingFeature.PAGE_RESP), "ECAP.PRS: page requests are reported");
        assertEquals(20, info.pasidBits());
        assertEquals(57, info.addressWidth());
        assertEquals(hw.cap(), info.vendorData().get("cap"));
        assertEquals(hw.ecap(), info.vendorData().get("ecap"));
        assertEquals(0, pool.allocatedFrames(), "querying does not take the unit over");
    }

    @Test
    void mapTranslateUnmapFault() throws Exception {
        IommuDomain d = driver.allocateDomain(DomainType.UNMANAGED);
        driver.attach(d, SID);
        d.map(0x10_0000, 0x8000_0000L, 0x20_0000, RW);
        assertTrue(hw.translate(SID, Pasids.NO_PASID, 0x10_0123, Access.WRITE, t), t.toString());
        assertEquals(0x8000_0123L, t.outputAddress());
        // The IOTLB holds the translation now; unmap must invalidate it before returning.
        assertEquals(0x1000, d.unmap(0x10_0000, 0x1000));
        assertFalse(hw.translate(SID, Pasids.NO_PASID, 0x10_0123, Access.READ, t));
        assertEquals(0x79, t.faultCode(), t.toString());
        assertTrue(hw.translate(SID, Pasids.NO_PASID, 0x10_1123, Access.READ, t), "the rest stays mapped");
        // Another device behind the unit is not attached: context entry not present.
        assertFalse(hw.translate(0x0120, Pasids.NO_PASID, 0x10_1000, Access.READ, t));
        assertEquals(0x41, t.faultCode());
    }

    @Test
    void attachRulesAndDomainLifecycle() throws Exception {
        IommuDomain a = driver.allocateDomain(DomainType.UNMANAGED);
        IommuDomain b = driver.allocateDomain(DomainType.UNMANAGED);
        assertTrue(a.id() != b.id());
        driver.attach(a, SID);
        assertEquals(Errno.EBUSY, assertThrows(IommuException.class, () -> driver.attach(b, SID)).errno());
        assertEquals(Errno.EBUSY, assertThrows(IommuException.class, () -> driver.freeDomain(a)).errno());
        assertEquals(Errno.ENOENT, assertThrows(IommuException.class, () -> driver.detach(b, SID)).errno());
        assertEquals(Errno.EINVAL, assertThrows(IommuException.class, () -> driver.attach(b, 0x10000)).errno());
        driver.detach(a, SID);
        driver.attach(b, SID);
        driver.freeDomain(a);
        assertEquals(Errno.ENOENT, assertThrows(IommuException.class, () -> driver.freeDomain(a)).errno());
    }

    @Test
    void identityAndBlockedDomains() throws Exception {
        IommuDomain id = driver.allocateDomain(DomainType.IDENTITY);
        driver.attach(id, SID);
        assertTrue(hw.translate(SID, Pasids.NO_PASID, 0x1234_5000L, Access.READ, t));
        assertEquals(0x1234_5000L, t.outputAddress());
        IommuDomain blocked = driver.allocateDomain(DomainType.BLOCKED);
        driver.attach(blocked, 0x0200);
        assertFalse(hw.translate(0x0200, Pasids.NO_PASID, 0x1000, Access.READ, t));
        assertEquals(0x59, t.faultCode(), "blocked: the RID_PASID entry is not present");
        assertEquals(Errno.EINVAL, assertThrows(IommuException.class, () -> blocked.map(0, 0, 4096, RW)).errno());
    }

    @Test
    void bindGuestPasidNestsOnTheVmDomain() throws Exception {
        PasidSpaceImpl space = new PasidSpaceImpl();
        PasidSet vm = space.createSet("vm1", 4);
        PasidSet other = space.createSet("vm2", 1);
        int hpasid = vm.allocate();
        int foreign = other.allocate();
        IommuDomain d = driver.allocateDomain(DomainType.UNMANAGED);
        driver.attach(d, SID);
        long gpaBase = 0x4000_0000L; // guest RAM at HPA 1 GiB, GPA 0
        d.map(0, gpaBase, 0x20_0000, RW);
        // Guest page table at GPA 0x1000..0x4000: GVA 0x7f0000201000 -> GPA 0x5000.
        long gva = 0x7f00_0020_1000L;
        long[] tables = {0x1000, 0x2000, 0x3000, 0x4000};
        for (int level = 0; level < 4; level++) {
            long index = (gva >>> (39 - 9 * level)) & 511;
            mem.write64(gpaBase + tables[level] + 8 * index, (level < 3 ? tables[level + 1] : 0x5000) | 7);
        }
        GuestPasidBind bind = new GuestPasidBind(NestingInfo.FORMAT_INTEL_VTD, hpasid, 7, true, 0x1000, 48, 0, 0, 0);
        driver.bindGuestPasid(d, SID, bind, vm);
        assertTrue(hw.translate(SID, hpasid, gva | 0x123, Access.WRITE, t), t.toString());
        assertEquals(gpaBase + 0x5123, t.outputAddress());

        GuestPasidBind stolen = new GuestPasidBind(NestingInfo.FORMAT_INTEL_VTD, foreign, 7, true, 0x1000, 48, 0, 0, 0);
        assertEquals(Errno.EPERM, assertThrows(IommuException.class, () -> driver.bindGuestPasid(d, SID, stolen, vm)).errno());
        assertEquals(Errno.EBUSY, assertThrows(IommuException.class, () -> driver.bindGuestPasid(d, SID, bind, vm)).errno());
        GuestPasidBind badWidth = new GuestPasidBind(NestingInfo.FORMAT_INTEL_VTD, vm.allocate(), 7, true, 0x1000, 39, 0, 0, 0);
        assertEquals(Errno.EINVAL, assertThrows(IommuException.class, () -> driver.bindGuestPasid(d, SID, badWidth, vm)).errno());

        // The guest changes its PTE; the stale translation stays until it invalidates through the host.
        long pte = gpaBase + 0x4000 + 8 * ((gva >>> 12) & 511);
        mem.write64(pte, 0x6000 | 7);
        assertTrue(hw.translate(SID, hpasid, gva, Access.READ, t));
        assertEquals(gpaBase + 0x5000, t.outputAddress(), "stale until invalidated");
        CacheInvalidation inv = CacheInvalidation.range(Set.of(CacheType.IOTLB), hpasid, -1, gva, 4096, 1, true);
        assertEquals(Errno.EPERM, assertThrows(IommuException.class,
                () -> driver.cacheInvalidate(d, SID, CacheInvalidation.pasid(Set.of(CacheType.IOTLB), foreign, -1), vm)).errno());
        driver.cacheInvalidate(d, SID, inv, vm);
        assertTrue(hw.translate(SID, hpasid, gva, Access.READ, t));
        assertEquals(gpaBase + 0x6000, t.outputAddress());

        driver.unbindGuestPasid(d, SID, hpasid, vm);
        assertFalse(hw.translate(SID, hpasid, gva, Access.READ, t));
        assertEquals(0x59, t.faultCode(), "unbound: PASID entry not present");
        assertEquals(Errno.ENOENT, assertThrows(IommuException.class, () -> driver.unbindGuestPasid(d, SID, hpasid, vm)).errno());
    }

    @Test
    void faultsReachListenersThroughTheFaultRecordingRegisters() throws Exception {
        List<IommuFault> seen = new CopyOnWriteArrayList<>();
        driver.addFaultListener(new FaultListener() {
            @Override
            public void fault(IommuFault fault) {
                seen.add(fault);
            }
        });
        IommuDomain d = driver.allocateDomain(DomainType.UNMANAGED);
        driver.attach(d, SID);
        d.map(0, 0x8000_0000L, 0x1000, IommuDomain.PROT_READ);
        for (int i = 0; i < 10; i++) {
            assertFalse(hw.translate(SID, Pasids.NO_PASID, 0, Access.WRITE, t));
        }
        assertEquals(10, seen.size(), "the handler drains every record, so none overflows");
        IommuFault f = seen.get(0);
        assertEquals(0x85, f.code());
        assertEquals("SM_WRITE", f.name());
        assertEquals(SID, f.requesterId());
        assertEquals(Access.WRITE, f.access() & Access.WRITE);
        assertEquals(0, hw.read(0x34, 4) & 3, "FSTS: no pending fault, no overflow");
    }

    @Test
    void closeFreesEveryFrame() throws Exception {
        IommuDomain d = driver.allocateDomain(DomainType.UNMANAGED);
        driver.attach(d, SID);
        d.map(0, 0x8000_0000L, 0x40_0000, RW);
        assertTrue(pool.allocatedFrames() > 0);
        driver.close();
        assertEquals(0, pool.allocatedFrames());
        assertEquals(Errno.ENODEV, assertThrows(IommuException.class, () -> driver.allocateDomain(DomainType.UNMANAGED)).errno());
    }

    @Test
    void pageRequestsAreQueuedDeliveredAndAnswered() throws Exception {
        List<org.iommulab.api.fault.PageRequest> requests = new CopyOnWriteArrayList<>();
        driver.addFaultListener(new FaultListener() {
            @Override
            public void fault(IommuFault fault) {
            }

            @Override
            public void pageRequest(org.iommulab.api.fault.PageRequest request) {
                requests.add(request);
            }
        });
        PasidSet vm = new PasidSpaceImpl().createSet("vm1", 2);
        int hpasid = vm.allocate();
        IommuDomain d = driver.allocateDomain(DomainType.UNMANAGED);
        driver.attach(d, SID);
        long gpaBase = 0x4000_0000L;
        d.map(0, gpaBase, 0x20_0000, RW);
        long gva = 0x7f00_0020_1000L;
        long[] tables = {0x1000, 0x2000, 0x3000, 0x4000};
        mem.fill(gpaBase + 0x4000, 4096, (byte) 0); // the guest's (empty) page table page
        for (int level = 0; level < 3; level++) { // the PTE is missing: the page is not faulted in yet
            long index = (gva >>> (39 - 9 * level)) & 511;
            mem.write64(gpaBase + tables[level] + 8 * index, tables[level + 1] | 7);
        }
        driver.bindGuestPasid(d, SID,
                new GuestPasidBind(NestingInfo.FORMAT_INTEL_VTD, hpasid, 1, true, 0x1000, 48, 0, 0, 0), vm);

        assertFalse(hw.translate(SID, hpasid, gva, Access.WRITE, t));
        assertEquals(0x71, t.faultCode());
        // The device asks for the page (group 5) and waits.
        assertTrue(hw.pageRequest(SID, hpasid, gva | 0x40, Access.WRITE, 5));
        assertEquals(1, requests.size());
        org.iommulab.api.fault.PageRequest pr = requests.get(0);
        assertEquals(gva, pr.address());
        assertEquals(hpasid, pr.pasid());
        assertEquals(5, pr.groupIndex());
        assertTrue(pr.lastInGroup());
        assertEquals(Access.WRITE, pr.access() & Access.WRITE);
        assertEquals(null, hw.pageRequestStatus(SID, hpasid, 5), "pending until software answers");
        // The OS maps the page, then answers through the invalidation queue.
        mem.write64(gpaBase + 0x4000 + 8 * ((gva >>> 12) & 511), 0x5000 | 7);
        driver.pageResponse(SID, hpasid, 5, org.iommulab.api.fault.PageResponse.SUCCESS);
        assertEquals(org.iommulab.api.fault.PageResponse.SUCCESS, hw.pageRequestStatus(SID, hpasid, 5));
        assertEquals(null, hw.pageRequestStatus(SID, hpasid, 5), "the response is consumed");
        assertTrue(hw.translate(SID, hpasid, gva, Access.WRITE, t), "the retry succeeds: " + t);
        assertEquals(gpaBase + 0x5000, t.outputAddress());

        // An address the process never maps is answered INVALID.
        assertTrue(hw.pageRequest(SID, hpasid, 0x1000_0000L, Access.READ, 6));
        driver.pageResponse(SID, hpasid, 6, org.iommulab.api.fault.PageResponse.INVALID);
        assertEquals(org.iommulab.api.fault.PageResponse.INVALID, hw.pageRequestStatus(SID, hpasid, 6));
        assertEquals(Errno.ENOENT, assertThrows(IommuException.class,
                () -> driver.pageResponse(SID, hpasid, 6, org.iommulab.api.fault.PageResponse.SUCCESS)).errno());
        // A device that is not attached has no PRE in its context entry: no page requests.
        assertFalse(hw.pageRequest(0x0300, Pasids.NO_PASID, 0x1000, Access.READ, 1));
        assertEquals(2L, hw.statistics().get("page-requests"));
        // Closing answers what is still pending INVALID: the device does not wait forever.
        assertTrue(hw.pageRequest(SID, hpasid, 0x2000_0000L, Access.READ, 7));
        driver.close();
        assertEquals(org.iommulab.api.fault.PageResponse.INVALID, hw.pageRequestStatus(SID, hpasid, 7));
        assertEquals(Errno.ENODEV, assertThrows(IommuException.class,
                () -> driver.allocateDomain(DomainType.UNMANAGED)).errno());
    }

    @Test
    void pageRequestsWithoutListenersAreAnsweredInvalid() throws Exception {
        IommuDomain d = driver.allocateDomain(DomainType.UNMANAGED);
        driver.attach(d, SID);
        assertTrue(hw.pageRequest(SID, Pasids.NO_PASID, 0x9000, Access.READ, 3));
        assertEquals(org.iommulab.api.fault.PageResponse.INVALID, hw.pageRequestStatus(SID, Pasids.NO_PASID, 3));
    }

    @Test
    void firstStageDmaDomains() throws Exception {
        hw = new VtdHardware(mem, VtdConfig.of(Map.of("dma-domain", "first-stage")));
        driver = new VtdDriver("vtd-fs", hw, mem, pool);
        IommuDomain d = driver.allocateDomain(DomainType.UNMANAGED);
        assertEquals(48, d.inputAddressBits());
        driver.attach(d, SID);
        d.map(0x20_0000, 0x8000_0000L, 0x20_0000, RW);
        assertTrue(hw.translate(SID, Pasids.NO_PASID, 0x20_1234, Access.WRITE, t), t.toString());
        assertEquals(0x8000_1234L, t.outputAddress());
        assertEquals(21, t.pageShift(), "a 2 MiB first-stage page");
        assertEquals(0x20_0000, d.unmap(0x20_0000, 0x20_0000));
        assertFalse(hw.translate(SID, Pasids.NO_PASID, 0x20_1234, Access.READ, t), "flushed by PASID-based invalidation");
        assertEquals(0x71, t.faultCode());
        PasidSet vm = new PasidSpaceImpl().createSet("vm", 1);
        GuestPasidBind bind = new GuestPasidBind(NestingInfo.FORMAT_INTEL_VTD, vm.allocate(), 1, true, 0x1000, 48, 0, 0, 0);
        assertEquals(Errno.EINVAL, assertThrows(IommuException.class, () -> driver.bindGuestPasid(d, SID, bind, vm)).errno(),
                "a first-stage domain cannot be a nesting parent");
        assertEquals(Errno.EINVAL, assertThrows(IommuException.class,
                () -> VtdConfig.of(Map.of("dma-domain", "third-stage"))).errno());
    }
}
