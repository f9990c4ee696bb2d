package org.iommulab.smmuv3.internal.driver;

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
import org.iommulab.api.fault.PageRequest;
import org.iommulab.api.fault.PageResponse;
import org.iommulab.api.invalidation.CacheInvalidation;
import org.iommulab.api.invalidation.CacheType;
import org.iommulab.api.nesting.NestingFeature;
import org.iommulab.api.nesting.NestingInfo;
import org.iommulab.api.nesting.PasidTableConfig;
import org.iommulab.api.pasid.Pasids;
import org.iommulab.api.spi.DomainType;
import org.iommulab.api.spi.IommuDomain;
import org.iommulab.api.spi.IommuInstance;
import org.iommulab.api.translation.Access;
import org.iommulab.api.translation.FaultKind;
import org.iommulab.api.translation.Stage;
import org.iommulab.api.translation.Translation;
import org.iommulab.pgtable.FlushOps;
import org.iommulab.pgtable.IoPageTable;
import org.iommulab.pgtable.format.ArmGranule;
import org.iommulab.pgtable.format.ArmStage1;
import org.iommulab.platform.internal.memory.FramePool;
import org.iommulab.platform.internal.memory.SparseMemory;
import org.iommulab.smmuv3.internal.SmmuBackend;
import org.iommulab.smmuv3.internal.hw.SmmuConfig;
import org.iommulab.smmuv3.internal.hw.SmmuHardware;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/** The host driver through the API, checked against what the hardware model then translates. */
class SmmuDriverTest {
    static final int RW = IommuDomain.PROT_READ | IommuDomain.PROT_WRITE;
    static final int SID = 0x0110;
    static final int NO = Pasids.NO_PASID;
    // The guest's memory layout (IPAs) and where the VM's stage 2 puts it (PAs).
    static final long GUEST_TABLES = 0x4000_0000L; // identity mapped: the guest's page-table pool
    static final long CD_IPA = 0x10_0000L;
    static final long CD_PA = 0x9000_0000L;
    static final long DATA_IPA = 0x2000_0000L;
    static final long DATA_PA = 0xa000_0000L;
    static final long IOVA = 0x1234_5000L;
    static final int ASID = 0x42;
    static final int PRIQEN = 1 << 1;

    SparseMemory mem;
    FramePool pool;
    SmmuHardware hw;
    SmmuDriver driver;
    final Translation t = new Translation();

    @BeforeEach
    void setUp() throws Exception {
        mem = new SparseMemory(52);
        pool = new FramePool(mem, 1L << 40, 1 << 20);
        hw = new SmmuHardware(mem, SmmuConfig.of(Map.of()));
        driver = new SmmuDriver("smmu-test", hw, mem, pool);
    }

    static void assertErrno(Errno expected, org.junit.jupiter.api.function.Executable e) {
        assertEquals(expected, assertThrows(IommuException.class, e).errno());
    }

    @Test
    void nestingInfoComesFromTheIdRegisters() throws Exception {
        NestingInfo info = driver.nestingInfo();
        assertEquals(NestingInfo.FORMAT_ARM_SMMUV3, info.format());
        assertTrue(info.supports(NestingFeature.PASID_TABLE));
        assertTrue(info.supports(NestingFeature.CACHE_INVLD));
        assertFalse(info.supports(NestingFeature.BIND_PGTBL));
        assertEquals(20, info.pasidBits());
        assertEquals(48, info.addressWidth());
        long k4 = (1L << 12) | (1L << 21) | (1L << 30);
        assertEquals(k4, info.pageSizes() & k4);
        assertEquals(hw.read(0, 4), info.vendorData().get("idr0"));
        assertEquals(hw.read(0x14, 4), info.vendorData().get("idr5"));
        assertEquals(0, pool.allocatedFrames(), "querying does not take the unit over");
        assertEquals(0, hw.read(0x20, 4), "CR0 still as reset left it");
    }

    @Test
    void mapTranslateUnmapFault() throws Exception {
        IommuDomain d = driver.allocateDomain(DomainType.UNMANAGED);
        assertEquals(1 | 2 | 4 | 8, hw.read(0x24, 4), "CR0ACK: SMMUEN | PRIQEN | EVTQEN | CMDQEN");
        driver.attach(d, SID);
        d.map(0x10_0000, 0x8000_0000L, 0x20_0000, RW);
        assertTrue(hw.translate(SID, NO, 0x10_0123, Access.WRITE, t), t.toString());
        assertEquals(0x8000_0123L, t.outputAddress());
        // The TLB holds the translation now; unmap must invalidate it before returning.
        assertEquals(0x1000, d.unmap(0x10_0000, 0x1000));
        assertFalse(hw.translate(SID, NO, 0x10_0123, Access.READ, t));
        assertEquals(0x10, t.faultCode(), t.toString());
        assertEquals("F_TRANSLATION", t.faultName());
        assertTrue(hw.translate(SID, NO, 0x10_1123, Access.READ, t), "the rest stays mapped");
        assertEquals(0x8000_1123L, t.outputAddress());
        // A large unmap goes through range invalidation.
        assertTrue(hw.translate(SID, NO, 0x2f_f000, Access.READ, t));
        assertEquals(0x1f_f000, d.unmap(0x10_1000, 0x1f_f000));
        assertFalse(hw.translate(SID, NO, 0x2f_f000, Access.READ, t));
    }

    @Test
    void unmapWithoutRangeInvalidation() throws Exception {
        SmmuHardware plain = new SmmuHardware(mem, SmmuConfig.of(Map.of("range-invalidation", "false")));
        SmmuDriver drv = new SmmuDriver("no-ril", plain, mem, pool);
        IommuDomain d = drv.allocateDomain(DomainType.UNMANAGED);
        drv.attach(d, SID);
        d.map(0x10_0000, 0x8000_0000L, 0x20_0000, RW);
        for (long a = 0x10_0000; a < 0x30_0000; a += 0x1000) {
            assertTrue(plain.translate(SID, NO, a, Access.READ, t)); // every page in the TLB
        }
        // Three pages: one TLBI_S2_IPA each, the neighbours stay.
        assertEquals(0x3000, d.unmap(0x10_1000, 0x3000));
        for (long a = 0x10_1000; a < 0x10_4000; a += 0x1000) {
            assertFalse(plain.translate(SID, NO, a, Access.READ, t));
        }
        assertTrue(plain.translate(SID, NO, 0x10_0000, Access.READ, t));
        assertTrue(plain.translate(SID, NO, 0x10_4000, Access.READ, t));
        // Beyond 64 pages the driver invalidates the whole VMID.
        assertEquals(0x1f_c000, d.unmap(0x10_4000, 0x1f_c000));
        assertFalse(plain.translate(SID, NO, 0x2f_f000, Access.READ, t));
        assertTrue(plain.translate(SID, NO, 0x10_0000, Access.READ, t));
        drv.close();
    }

    @Test
    void aLiveSteChangesWithoutTearing() throws Exception {
        List<IommuFault> faults = new CopyOnWriteArrayList<>();
        driver.addFaultListener(new FaultListener() {
            @Override
            public void fault(IommuFault fault) {
                faults.add(fault);
            }
        });
        IommuDomain d = driver.allocateDomain(DomainType.UNMANAGED);
        d.map(0x10_0000, 0x8000_0000L, 0x1000, RW);
        java.util.concurrent.atomic.AtomicBoolean stop = new java.util.concurrent.atomic.AtomicBoolean();
        java.util.concurrent.atomic.AtomicLong wrong = new java.util.concurrent.atomic.AtomicLong();
        Thread device = new Thread(() -> {
            Translation tr = new Translation();
            while (!stop.get()) {
                if (hw.translate(SID, NO, 0x10_0123, Access.READ, tr) && tr.outputAddress() != 0x8000_0123L) {
                    wrong.incrementAndGet();
                }
            }
        });
        device.start();
        try {
            for (int i = 0; i < 3000; i++) {
                driver.attach(d, SID);
                driver.detach(d, SID);
            }
        } finally {
            stop.set(true);
            device.join();
        }
        assertEquals(0, wrong.get());
        // Between attach and detach a transaction is translated or aborted, never walked through a torn STE.
        assertTrue(faults.stream().noneMatch(f -> f.code() == 0x04 || f.code() == 0x0b), faults.toString());
    }

    @Test
    void attachRulesAndDomainLifecycle() throws Exception {
        IommuDomain a = driver.allocateDomain(DomainType.UNMANAGED);
        IommuDomain b = driver.allocateDomain(DomainType.UNMANAGED);
        assertTrue(a.id() != b.id());
        driver.attach(a, SID);
        assertErrno(Errno.EBUSY, () -> driver.attach(b, SID));
        assertErrno(Errno.EBUSY, () -> driver.attach(a, SID));
        assertErrno(Errno.EBUSY, () -> driver.freeDomain(a));
        assertErrno(Errno.ENOENT, () -> driver.detach(b, SID));
        assertErrno(Errno.EINVAL, () -> driver.attach(b, 0x10000));
        assertErrno(Errno.EINVAL, () -> driver.attach(b, -1));
        driver.detach(a, SID);
        assertFalse(hw.translate(SID, NO, 0x1000, Access.READ, t));
        assertEquals(FaultKind.BLOCKED, t.faultKind(), "detached: the STE aborts");
        driver.attach(b, SID);
        driver.freeDomain(a);
        assertErrno(Errno.ENOENT, () -> driver.freeDomain(a));
        assertErrno(Errno.ENOENT, () -> driver.attach(a, 0x200));
        assertErrno(Errno.ENODEV, () -> a.map(0, 0, 4096, RW));
    }

    @Test
    void identityAndBlockedDomains() throws Exception {
        IommuDomain id = driver.allocateDomain(DomainType.IDENTITY);
        driver.attach(id, SID);
        assertTrue(hw.translate(SID, NO, 0x1234_5000L, Access.READ, t));
        assertEquals(0x1234_5000L, t.outputAddress());
        IommuDomain blocked = driver.allocateDomain(DomainType.BLOCKED);
        driver.attach(blocked, 0x0200);
        assertFalse(hw.translate(0x0200, NO, 0x1000, Access.READ, t));
        assertEquals(FaultKind.BLOCKED, t.faultKind());
        assertErrno(Errno.EINVAL, () -> blocked.map(0, 0, 4096, RW));
        // An unused stream in an allocated L2 table aborts too; one in an unallocated range is a bad StreamID.
        assertFalse(hw.translate(0x0111, NO, 0x1000, Access.READ, t));
        assertEquals(FaultKind.BLOCKED, t.faultKind());
        assertFalse(hw.translate(0x0500, NO, 0x1000, Access.READ, t));
        assertEquals(0x02, t.faultCode());
    }

    /** A VM: stage 2 maps the guest's page-table pool (identity), its CD table and a data area. */
    private IommuDomain vm() throws Exception {
        IommuDomain d = driver.allocateDomain(DomainType.UNMANAGED);
        driver.attach(d, SID);
        d.map(GUEST_TABLES, GUEST_TABLES, 0x20_0000, RW);
        d.map(CD_IPA, CD_PA, 0x1000, RW);
        d.map(DATA_IPA, DATA_PA, 0x2000, RW);
        return d;
    }

    /** The guest builds its stage-1 table in its own memory and writes CD 1 into its CD table. */
    private IoPageTable guestTable() throws Exception {
        FramePool guestPool = new FramePool(mem, GUEST_TABLES, 256);
        IoPageTable s1 = IoPageTable.create(ArmStage1.of(ArmGranule.G4K, 16, 48, false, false, false), mem, guestPool,
                FlushOps.NONE);
        s1.map(IOVA, DATA_IPA, 0x1000, RW);
        // CD: T0SZ 16, TG0 4K, EPD1, V; IPS 48, AA64, R, A, ASID; TTB0 (an IPA: guest memory).
        long w0 = 16 | 1L << 30 | 1L << 31;
        long w1 = 5 | 1L << 9 | 1L << 13 | 1L << 14 | (long) ASID << 16;
        mem.write64(CD_PA + 64, w0 | w1 << 32);
        mem.write64(CD_PA + 64 + 8, s1.root());
        return s1;
    }

    private static PasidTableConfig table(long base, int bits, int config, int s1fmt, int s1dss) {
        return new PasidTableConfig(NestingInfo.FORMAT_ARM_SMMUV3, base, bits, config, s1fmt, s1dss);
    }

    @Test
    void guestPasidTableNestsOnTheVmDomain() throws Exception {
        IommuDomain d = vm();
        IoPageTable s1 = guestTable();
        assertTrue(hw.translate(SID, NO, DATA_IPA + 0x10, Access.READ, t));
        assertEquals(DATA_PA + 0x10, t.outputAddress(), "plain stage 2 before");

        driver.attachPasidTable(d, SID, table(CD_IPA, 4, PasidTableConfig.TRANSLATE, 0, 1));
        assertTrue(hw.translate(SID, 1, IOVA + 0x678, Access.READ, t), t.toString());
        assertEquals(DATA_PA + 0x678, t.outputAddress(), "IOVA -> (guest stage 1) IPA -> (stage 2) PA");
        assertTrue(hw.translate(SID, NO, DATA_IPA + 0x10, Access.READ, t), "S1DSS bypass: no SSID is stage 2 only");
        assertEquals(DATA_PA + 0x10, t.outputAddress());

        // The guest remaps its IOVA: stale until it invalidates by ASID and address.
        s1.unmap(IOVA, 0x1000);
        s1.map(IOVA, DATA_IPA + 0x1000, 0x1000, RW);
        assertTrue(hw.translate(SID, 1, IOVA + 0x678, Access.READ, t));
        assertEquals(DATA_PA + 0x678, t.outputAddress(), "the TLB still holds the old entry");
        driver.cacheInvalidate(d, SID, CacheInvalidation.range(Set.of(CacheType.IOTLB), 1, ASID, IOVA, 4096, 1, true), null);
        assertTrue(hw.translate(SID, 1, IOVA + 0x678, Access.READ, t));
        assertEquals(DATA_PA + 0x1678, t.outputAddress());
        // A guest with a 64 KiB granule: TG names it (the command before the closing CMD_SYNC).
        driver.cacheInvalidate(d, SID, CacheInvalidation.range(Set.of(CacheType.IOTLB), 1, ASID, 0x10_0000, 1 << 16, 2, true), null);
        long cmdq = hw.read(0x90, 8) & 0x000f_ffff_ffff_ffe0L;
        int prod = (int) hw.read(0x98, 4) & 0xff;
        long d0 = mem.read64(cmdq + 16L * ((prod - 2) & 0xff));
        long d1 = mem.read64(cmdq + 16L * ((prod - 2) & 0xff) + 8);
        assertEquals(0x12, d0 & 0xff, "CMD_TLBI_NH_VA");
        assertEquals(3, (d1 >>> 10) & 3, "TG 64K");
        assertEquals(1, (d0 >>> 20) & 0x1f, "SCALE 1: 2 granules");
        assertEquals(0, (d0 >>> 12) & 0x1f, "NUM 0");
        assertEquals(0x10_0000, d1 & ~0xfffL);

        // A host unmap of the data area invalidates the combined (IOVA-keyed) entries too.
        d.unmap(DATA_IPA + 0x1000, 0x1000);
        assertFalse(hw.translate(SID, 1, IOVA + 0x678, Access.READ, t));
        assertEquals(Stage.STAGE2, t.faultStage());
        d.map(DATA_IPA + 0x1000, DATA_PA + 0x1000, 0x1000, RW);

        // The guest changes its CD (another ASID): stale until CFGI_CD.
        mem.write64(CD_PA + 64, (16 | 1L << 30 | 1L << 31) | ((5 | 1L << 9 | 3L << 13 | 7L << 16) << 32));
        driver.cacheInvalidate(d, SID, CacheInvalidation.pasid(Set.of(CacheType.PASID, CacheType.IOTLB), 1, ASID), null);
        assertTrue(hw.translate(SID, 1, IOVA + 0x678, Access.READ, t));
        assertEquals(DATA_PA + 0x1678, t.outputAddress());
        driver.cacheInvalidate(d, SID, CacheInvalidation.domain(Set.of(CacheType.IOTLB, CacheType.PASID)), null);
        driver.cacheInvalidate(d, SID, CacheInvalidation.range(Set.of(CacheType.IOTLB, CacheType.DEV_IOTLB), NO, -1,
                IOVA, 4096, 1 << 20, false), null);

        driver.detachPasidTable(d, SID);
        assertFalse(hw.translate(SID, 1, IOVA + 0x678, Access.READ, t), "no stage 1: SSIDs are refused");
        assertEquals(0x08, t.faultCode());
        assertTrue(hw.translate(SID, NO, DATA_IPA + 0x10, Access.READ, t));
        assertEquals(DATA_PA + 0x10, t.outputAddress());
        assertErrno(Errno.ENOENT, () -> driver.detachPasidTable(d, SID));
    }

    @Test
    void pasidTableBypassAndAbort() throws Exception {
        IommuDomain d = vm();
        driver.attachPasidTable(d, SID, table(0, 0, PasidTableConfig.BYPASS, 0, 0));
        assertTrue(hw.translate(SID, NO, DATA_IPA, Access.READ, t));
        assertEquals(DATA_PA, t.outputAddress());
        driver.attachPasidTable(d, SID, table(0, 0, PasidTableConfig.ABORT, 0, 0));
        assertFalse(hw.translate(SID, NO, DATA_IPA, Access.READ, t));
        assertEquals(FaultKind.BLOCKED, t.faultKind());
        driver.detachPasidTable(d, SID);
        assertTrue(hw.translate(SID, NO, DATA_IPA, Access.READ, t));
    }

    @Test
    void badPasidTableConfigsChangeNothing() throws Exception {
        IommuDomain d = vm();
        List<PasidTableConfig> bad = List.of(
                new PasidTableConfig("intel-vtd", CD_IPA, 4, 1, 0, 1),
                table(CD_IPA, 4, 0, 0, 1),
                table(CD_IPA, 4, 4, 0, 1),
                table(CD_IPA, 4, 1, 3, 1),
                table(CD_IPA, 4, 1, 0, 3),
                table(CD_IPA, 21, 1, 0, 1),
                table(CD_IPA, -1, 1, 0, 1),
                table(CD_IPA + 8, 4, 1, 0, 1),
                table(1L << 48, 4, 1, 0, 1));
        for (PasidTableConfig c : bad) {
            assertErrno(Errno.EINVAL, () -> driver.attachPasidTable(d, SID, c));
            assertTrue(hw.translate(SID, NO, DATA_IPA, Access.READ, t), c.toString());
            assertEquals(DATA_PA, t.outputAddress());
        }
        IommuDomain other = driver.allocateDomain(DomainType.UNMANAGED);
        assertErrno(Errno.ENOENT, () -> driver.attachPasidTable(other, SID, table(CD_IPA, 4, 1, 0, 1)));
        assertErrno(Errno.ENOENT, () -> driver.attachPasidTable(d, 0x111, table(CD_IPA, 4, 1, 0, 1)));
        IommuDomain id = driver.allocateDomain(DomainType.IDENTITY);
        assertErrno(Errno.EINVAL, () -> driver.attachPasidTable(id, SID, table(CD_IPA, 4, 1, 0, 1)));
        assertErrno(Errno.EOPNOTSUPP, () -> driver.bindGuestPasid(d, SID, null, null));
        assertErrno(Errno.EOPNOTSUPP, () -> driver.unbindGuestPasid(d, SID, 1, null));
        assertErrno(Errno.ENOENT, () -> driver.pageResponse(SID, 1, 0, org.iommulab.api.fault.PageResponse.SUCCESS));
    }

    @Test
    void noNestingWithoutBothStages() throws Exception {
        SmmuHardware s2only = new SmmuHardware(mem, SmmuConfig.of(Map.of("stage1", "false")));
        SmmuDriver drv = new SmmuDriver("s2only", s2only, mem, pool);
        assertFalse(drv.nestingInfo().supports(NestingFeature.PASID_TABLE));
        IommuDomain d = drv.allocateDomain(DomainType.UNMANAGED);
        drv.attach(d, SID);
        assertErrno(Errno.EOPNOTSUPP, () -> drv.attachPasidTable(d, SID, table(CD_IPA, 4, 1, 0, 1)));
        drv.close();
        assertEquals(0, pool.allocatedFrames());
    }

    @Test
    void linearStreamTableWithoutTwoLevelSupport() throws Exception {
        SmmuHardware linear = new SmmuHardware(mem, SmmuConfig.of(Map.of("two-level-stream-table", "false")));
        SmmuDriver drv = new SmmuDriver("linear", linear, mem, pool);
        IommuDomain d = drv.allocateDomain(DomainType.UNMANAGED);
        drv.attach(d, 0xff);
        assertErrno(Errno.EINVAL, () -> drv.attach(d, 0x100));
        d.map(0, 0x8000_0000L, 0x1000, RW);
        assertTrue(linear.translate(0xff, NO, 0x10, Access.READ, t));
        assertEquals(0x8000_0010L, t.outputAddress());
        assertFalse(linear.translate(0xfe, NO, 0x10, Access.READ, t));
        assertEquals(FaultKind.BLOCKED, t.faultKind(), "unused STEs abort");
        drv.close();
        assertEquals(0, pool.allocatedFrames());
    }

    @Test
    void faultsReachListenersThroughTheEventQueue() throws Exception {
        List<IommuFault> faults = new CopyOnWriteArrayList<>();
        FaultListener l = new FaultListener() {
            @Override
            public void fault(IommuFault fault) {
                faults.add(fault);
            }
        };
        driver.addFaultListener(l);
        IommuDomain d = vm();
        assertFalse(hw.translate(SID, NO, 0x7000_0000L, Access.WRITE, t));
        assertEquals(1, faults.size(), faults::toString);
        IommuFault f = faults.get(0);
        assertEquals("smmu-test", f.iommu());
        assertEquals(SID, f.requesterId());
        assertEquals(NO, f.pasid());
        assertEquals(0x7000_0000L, f.address());
        assertEquals(0x10, f.code());
        assertEquals("F_TRANSLATION", f.name());
        assertEquals(FaultKind.TRANSLATION, f.kind());
        assertEquals(Stage.STAGE2, f.stage());
        assertTrue((f.access() & Access.WRITE) != 0);

        guestTable();
        driver.attachPasidTable(d, SID, table(CD_IPA, 4, PasidTableConfig.TRANSLATE, 0, 1));
        assertFalse(hw.translate(SID, 1, 0x5000, Access.READ, t));
        assertEquals(2, faults.size());
        assertEquals(Stage.STAGE1, faults.get(1).stage());
        assertEquals(1, faults.get(1).pasid());
        assertFalse(hw.translate(0x700, NO, 0x5000, Access.READ, t));
        assertEquals(3, faults.size());
        assertEquals("C_BAD_STREAMID", faults.get(2).name());
        assertEquals(Stage.CONFIG, faults.get(2).stage());
        // Many faults: the queue is drained as it fills, nothing is lost.
        for (int i = 0; i < 600; i++) {
            hw.translate(SID, NO, 0x7000_0000L + 4096L * i, Access.READ, t);
        }
        assertEquals(603, faults.size());
        assertEquals(0L, hw.statistics().get("events-dropped"));
        assertEquals(0, faults.get(0).access() & Access.PRIV, "PnU 0: unprivileged");
        hw.translate(SID, NO, 0x7000_0000L, Access.READ | Access.PRIV, t);
        assertEquals(Access.READ | Access.PRIV, faults.get(603).access(), "PnU 1: privileged");
        driver.removeFaultListener(l);
        hw.translate(SID, NO, 0x7000_0000L, Access.READ, t);
        assertEquals(604, faults.size());
    }

    private static FaultListener pageRequestListener(List<PageRequest> requests) {
        return new FaultListener() {
            @Override
            public void fault(IommuFault fault) {
            }

            @Override
            public void pageRequest(PageRequest request) {
                requests.add(request);
            }
        };
    }

    @Test
    void pageRequestsAreQueuedDeliveredAndAnswered() throws Exception {
        assertTrue(driver.nestingInfo().supports(NestingFeature.PAGE_RESP));
        List<PageRequest> requests = new CopyOnWriteArrayList<>();
        FaultListener l = pageRequestListener(requests);
        assertFalse(hw.pageRequest(SID, 3, 0x5000, Access.READ, 7), "no PRI queue before bring-up");
        driver.addFaultListener(l);
        vm();
        assertEquals(PRIQEN, hw.read(0x24, 4) & PRIQEN, "CR0ACK.PRIQEN");
        assertFalse(hw.pageRequest(0x700, 3, 0x5000, Access.READ, 7), "a stream whose STE aborts cannot request pages");

        assertTrue(hw.pageRequest(SID, 3, 0x1234_5678L, Access.READ | Access.WRITE | Access.PRIV, 7));
        assertEquals(1, requests.size());
        PageRequest r = requests.get(0);
        assertEquals("smmu-test", r.iommu());
        assertEquals(SID, r.requesterId());
        assertEquals(3, r.pasid());
        assertEquals(0x1234_5000L, r.address());
        assertEquals(Access.READ | Access.WRITE | Access.PRIV, r.access());
        assertEquals(7, r.groupIndex());
        assertTrue(r.lastInGroup());
        assertEquals(null, hw.pageRequestStatus(SID, 3, 7), "pending until the driver answers");
        assertEquals(hw.read(0x100c8, 4), hw.read(0x100cc, 4), "PRIQ_CONS caught up with PRIQ_PROD");

        assertErrno(Errno.ENOENT, () -> driver.pageResponse(SID, 3, 8, PageResponse.SUCCESS));
        assertErrno(Errno.ENOENT, () -> driver.pageResponse(SID, NO, 7, PageResponse.SUCCESS));
        driver.pageResponse(SID, 3, 7, PageResponse.SUCCESS);
        assertEquals(PageResponse.SUCCESS, hw.pageRequestStatus(SID, 3, 7), "CMD_PRI_RESP Resp SUCC");
        assertErrno(Errno.ENOENT, () -> driver.pageResponse(SID, 3, 7, PageResponse.SUCCESS));

        // Without a PASID: denied at once (IOVA is never paged in), the listener only hears of it.
        assertTrue(hw.pageRequest(SID, NO, 0x9000, Access.WRITE, 1));
        assertEquals(NO, requests.get(1).pasid());
        assertEquals(PageResponse.INVALID, hw.pageRequestStatus(SID, NO, 1), "Resp DENY by the driver");
        assertErrno(Errno.ENOENT, () -> driver.pageResponse(SID, NO, 1, PageResponse.FAILURE));
        assertEquals(null, hw.pageRequestStatus(SID, NO, 1), "exactly one answer");
        // The two other answers.
        assertTrue(hw.pageRequest(SID, 8, 0x9000, Access.WRITE, 1));
        driver.pageResponse(SID, 8, 1, PageResponse.FAILURE);
        assertEquals(PageResponse.FAILURE, hw.pageRequestStatus(SID, 8, 1));
        assertTrue(hw.pageRequest(SID, 4, 0x9000, Access.READ, 2));
        driver.pageResponse(SID, 4, 2, PageResponse.INVALID);
        assertEquals(PageResponse.INVALID, hw.pageRequestStatus(SID, 4, 2), "Resp DENY");

        // Many requests: the queue (256 entries) is drained as it fills.
        for (int i = 0; i < 600; i++) {
            assertTrue(hw.pageRequest(SID, 5, 0x10_0000L + 4096L * i, Access.READ, i & 0x1ff));
        }
        assertEquals(604, requests.size());
        assertEquals(0L, hw.statistics().get("page-request-overflows"));

        // Nobody listening: the driver denies the request itself.
        driver.removeFaultListener(l);
        assertTrue(hw.pageRequest(SID, 6, 0x9000, Access.READ, 3));
        assertEquals(PageResponse.INVALID, hw.pageRequestStatus(SID, 6, 3));
        assertEquals(604, requests.size());
    }

    @Test
    void smallPriQueueFromIdr1Priqs() throws Exception {
        SmmuHardware small = new SmmuHardware(mem, SmmuConfig.of(Map.of("eventq-log2size", "4"))); // PRIQS 4
        SmmuDriver drv = new SmmuDriver("small", small, mem, pool);
        List<PageRequest> requests = new CopyOnWriteArrayList<>();
        drv.addFaultListener(pageRequestListener(requests));
        drv.attach(drv.allocateDomain(DomainType.UNMANAGED), SID);
        assertEquals(4, small.read(0xc0, 8) & 0x1f, "PRIQ_BASE.LOG2SIZE follows IDR1.PRIQS");
        for (int i = 0; i < 40; i++) {
            assertTrue(small.pageRequest(SID, 9, 0x10_0000L + 4096L * i, Access.READ, i));
        }
        assertEquals(40, requests.size());
        for (int i = 0; i < 40; i++) {
            assertEquals(i, requests.get(i).groupIndex());
            assertEquals(0x10_0000L + 4096L * i, requests.get(i).address());
            assertEquals(SID, requests.get(i).requesterId());
        }
        drv.close();
    }

    @Test
    void oneEntryCommandQueueIsRefused() throws Exception {
        SmmuHardware tiny = new SmmuHardware(mem, SmmuConfig.of(Map.of("cmdq-log2size", "0")));
        SmmuDriver drv = new SmmuDriver("tiny-cmdq", tiny, mem, pool);
        assertErrno(Errno.ENODEV, () -> drv.allocateDomain(DomainType.UNMANAGED));
        assertEquals(0, pool.allocatedFrames());
        assertEquals(0, tiny.read(0x20, 4), "the unit is left as it was");
        drv.close();
    }

    @Test
    void noPageRequestsWithoutPri() throws Exception {
        SmmuHardware plain = new SmmuHardware(mem, SmmuConfig.of(Map.of("pri", "false")));
        SmmuDriver drv = new SmmuDriver("no-pri", plain, mem, pool);
        assertFalse(drv.nestingInfo().supports(NestingFeature.PAGE_RESP));
        IommuDomain d = drv.allocateDomain(DomainType.UNMANAGED);
        drv.attach(d, SID);
        assertEquals(0, plain.read(0x24, 4) & PRIQEN);
        assertEquals(0, plain.read(0xc0, 8), "no PRI queue programmed");
        assertFalse(plain.pageRequest(SID, 3, 0x5000, Access.READ, 7));
        assertErrno(Errno.ENOENT, () -> drv.pageResponse(SID, 3, 7, PageResponse.SUCCESS));
        drv.close();
        assertEquals(0, pool.allocatedFrames());
    }

    @Test
    void closeWithPendingPageRequests() throws Exception {
        driver.addFaultListener(pageRequestListener(new CopyOnWriteArrayList<>()));
        IommuDomain d = vm();
        assertTrue(hw.pageRequest(SID, 3, 0x5000, Access.READ, 7));
        driver.attach(driver.allocateDomain(DomainType.IDENTITY), 0x300);
        assertTrue(hw.pageRequest(0x300, 2, 0x6000, Access.READ, 4));
        // Detaching a stream denies its pending groups; the other stream's stay pending.
        driver.detach(d, SID);
        assertEquals(PageResponse.INVALID, hw.pageRequestStatus(SID, 3, 7));
        assertEquals(null, hw.pageRequestStatus(0x300, 2, 4));
        assertErrno(Errno.ENOENT, () -> driver.pageResponse(SID, 3, 7, PageResponse.SUCCESS));
        driver.close();
        assertEquals(PageResponse.INVALID, hw.pageRequestStatus(0x300, 2, 4), "close answers what is pending");
        assertEquals(0, pool.allocatedFrames(), "the PRI queue is freed too");
        assertErrno(Errno.ENOENT, () -> driver.pageResponse(SID, 3, 7, PageResponse.SUCCESS));
        assertFalse(hw.pageRequest(SID, 3, 0x5000, Access.READ, 8), "the unit is disabled");
    }

    @Test
    void closeFreesEverythingAndLaterCallsFail() throws Exception {
        IommuDomain d = vm();
        guestTable();
        driver.attachPasidTable(d, SID, table(CD_IPA, 4, PasidTableConfig.TRANSLATE, 0, 1));
        IommuDomain id = driver.allocateDomain(DomainType.IDENTITY);
        driver.attach(id, 0x300);
        assertTrue(pool.allocatedFrames() > 0);
        driver.close();
        assertEquals(0, pool.allocatedFrames());
        assertEquals(0, hw.read(0x20, 4), "the unit is disabled");
        assertFalse(hw.translate(SID, NO, DATA_IPA, Access.READ, t), "GBPA aborts");
        assertErrno(Errno.ENODEV, () -> driver.allocateDomain(DomainType.UNMANAGED));
        assertErrno(Errno.ENODEV, () -> driver.attach(d, 0x5));
        assertErrno(Errno.ENODEV, () -> d.map(0, 0, 4096, RW));
        driver.close();
    }

    @Test
    void failedBringUpLeaksNothing() throws Exception {
        FramePool tiny = new FramePool(mem, 1L << 40, 2);
        SmmuDriver drv = new SmmuDriver("tiny", hw, mem, tiny);
        assertErrno(Errno.ENOMEM, () -> drv.allocateDomain(DomainType.UNMANAGED));
        assertEquals(0, tiny.allocatedFrames());
        assertEquals(0, hw.read(0x20, 4), "no register was written");
        assertEquals(0, hw.read(0x80, 8));
        drv.close();
    }

    @Test
    void backendInstance() throws Exception {
        SmmuBackend backend = new SmmuBackend();
        assertEquals("smmuv3", backend.vendor());
        assertEquals(SmmuConfig.DEFAULTS, backend.defaultConfiguration());
        IommuInstance inst = backend.create("smmu0", Map.of("sidsize", "12"), mem, pool);
        assertEquals(0x20000, inst.mmioSize());
        assertEquals("12", inst.configuration().get("sidsize"));
        assertEquals(12, inst.mmioRead(0x4, 4) & 0x3f);
        IommuDomain d = inst.driver().allocateDomain(DomainType.UNMANAGED);
        inst.driver().attach(d, 7);
        d.map(0, 0x8000_0000L, 0x1000, RW);
        assertTrue(inst.translate(7, NO, 0x10, Access.READ, t));
        assertFalse(inst.explain(7, NO, 0x10, Access.READ).isEmpty());
        assertTrue(inst.statistics().containsKey("commands"));
        inst.close();
        assertEquals(0, pool.allocatedFrames());
        assertFalse(inst.translate(7, NO, 0x10, Access.READ, t));
        assertEquals(FaultKind.BLOCKED, t.faultKind());
        assertErrno(Errno.ENODEV, () -> inst.mmioRead(0, 4));
        assertErrno(Errno.ENODEV, () -> inst.mmioWrite(0x20, 0, 4));
        inst.close();
    }
}
