package org.iommulab.riscv.internal.driver;

import static org.iommulab.riscv.internal.driver.DriverRig.RID;
import static org.iommulab.riscv.internal.driver.DriverRig.RW;
import static org.iommulab.riscv.internal.driver.DriverRig.assertErrno;
import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.Set;

import org.iommulab.api.errno.Errno;
import org.iommulab.api.invalidation.CacheInvalidation;
import org.iommulab.api.invalidation.CacheType;
import org.iommulab.api.nesting.GuestPasidBind;
import org.iommulab.api.nesting.PasidTableConfig;
import org.iommulab.api.pasid.Pasids;
import org.iommulab.api.spi.DomainType;
import org.iommulab.api.spi.IommuDomain;
import org.iommulab.api.translation.Access;
import org.iommulab.api.translation.FaultKind;
import org.iommulab.pgtable.FlushOps;
import org.iommulab.pgtable.IoPageTable;
import org.iommulab.pgtable.format.RiscvPaging;
import org.iommulab.riscv.internal.spec.DeviceContext;
import org.iommulab.riscv.internal.spec.FaultRecord;
import org.iommulab.riscv.internal.spec.ProcessContext;
import org.iommulab.testkit.GuestMemory;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * A guest's process-directory table nested on a G-stage domain: the config mapping, every
 * invalidation form (stale before, fresh after) and the refusals.
 */
class RiscvNestingTest {
    static final int NO = Pasids.NO_PASID;
    static final long GUEST_RAM = 0x10_0000L;
    static final long GVA = 0x40_0000_0000L;
    static final int PSCID = 0x42;
    static final int PASID = 1;
    final DriverRig rig;
    final IommuDomain parent;
    final GuestMemory guest;
    final IoPageTable table;
    final long data;
    final long pdt;

    RiscvNestingTest() throws Exception {
        rig = new DriverRig();
        parent = rig.drv.allocateDomain(DomainType.UNMANAGED);
        long host = rig.frames(64);
        parent.map(GUEST_RAM, host, 64 * 4096L, RW);
        guest = new GuestMemory(rig.mem, GUEST_RAM, host, 64 * 4096L);
        table = IoPageTable.create(RiscvPaging.firstStage(RiscvPaging.Mode.SV48, 52, true, false, true), guest, guest,
                FlushOps.NONE);
        data = guest.allocateFrames(4);
        table.map(GVA, data, 0x1000, RW);
        pdt = guest.allocateFrames(1);
        writePc(PASID, PSCID, table.root());
        rig.drv.attach(parent, RID);
    }

    @AfterEach
    void tearDown() {
        rig.close();
    }

    void writePc(int pasid, int pscid, long root) {
        long pc = pdt + 16L * pasid;
        guest.write64(pc + ProcessContext.FSC, DeviceContext.iosatp(DeviceContext.ATP_SV48, root));
        guest.write64(pc + ProcessContext.TA, ProcessContext.ta(pscid, false, false));
    }

    PasidTableConfig config(int config, int s1dss) {
        return new PasidTableConfig(RiscvDriver.FORMAT, pdt, 8, config, 0, s1dss);
    }

    /** Moves GVA to the next data page without telling; checks stale, invalidates, checks fresh. */
    long staleThenFresh(long current, int pasid, CacheInvalidation inv) throws Exception {
        long next = current == data + 0x3000 ? data : current + 0x1000;
        table.unmap(GVA, 0x1000);
        table.map(GVA, next, 0x1000, RW);
        rig.expectAt(guest.toHost(current) + 0x20, RID, pasid, GVA + 0x20, Access.READ);
        rig.drv.cacheInvalidate(parent, RID, inv, null);
        rig.expectAt(guest.toHost(next) + 0x20, RID, pasid, GVA + 0x20, Access.READ);
        return next;
    }

    @Test
    void translateAndEveryInvalidationForm() throws Exception {
        rig.drv.attachPasidTable(parent, RID, config(PasidTableConfig.TRANSLATE, 1));
        rig.expectAt(guest.toHost(data) + 0x20, RID, PASID, GVA + 0x20, Access.READ);
        // s1dss 1: requests without PASID see only the G-stage.
        rig.expectAt(guest.toHost(GUEST_RAM) + 0x8, RID, NO, GUEST_RAM + 0x8, Access.READ);
        long cur = data;
        Set<CacheType> iotlb = Set.of(CacheType.IOTLB);
        cur = staleThenFresh(cur, PASID, CacheInvalidation.range(iotlb, NO, PSCID, GVA, 0x1000, 1, true));
        cur = staleThenFresh(cur, PASID, CacheInvalidation.range(iotlb, PASID, -1, GVA, 0x1000, 1, true));
        cur = staleThenFresh(cur, PASID, CacheInvalidation.range(iotlb, NO, PSCID, 0, 0x20_0000, 1L << 20, false));
        cur = staleThenFresh(cur, PASID, CacheInvalidation.pasid(iotlb, PASID, PSCID));
        cur = staleThenFresh(cur, PASID, CacheInvalidation.pasid(iotlb, PASID, -1));
        cur = staleThenFresh(cur, PASID, CacheInvalidation.domain(iotlb));
        cur = staleThenFresh(cur, PASID, CacheInvalidation.range(Set.of(CacheType.IOTLB, CacheType.DEV_IOTLB), PASID, PSCID,
                GVA, 0x1000, 1, true));
        // The PC changes (another table): stale until the PASID cache and the PSCID's entries are invalidated.
        IoPageTable other = IoPageTable.create(RiscvPaging.firstStage(RiscvPaging.Mode.SV48, 52, true, false, true), guest,
                guest, FlushOps.NONE);
        long otherPage = data + 0x3000 == cur ? data : data + 0x3000;
        other.map(GVA, otherPage, 0x1000, RW);
        writePc(PASID, PSCID + 1, other.root());
        rig.expectAt(guest.toHost(cur) + 0x20, RID, PASID, GVA + 0x20, Access.READ);
        rig.drv.cacheInvalidate(parent, RID, CacheInvalidation.pasid(Set.of(CacheType.PASID, CacheType.IOTLB), PASID,
                PSCID), null);
        rig.expectAt(guest.toHost(otherPage) + 0x20, RID, PASID, GVA + 0x20, Access.READ);
        // The PC goes invalid: the DOMAIN-granular PASID-cache invalidation (IODIR.INVAL_DDT) drops it.
        guest.write64(pdt + 16L * PASID + ProcessContext.TA, 0);
        rig.expectAt(guest.toHost(otherPage) + 0x20, RID, PASID, GVA + 0x20, Access.READ);
        rig.drv.cacheInvalidate(parent, RID, CacheInvalidation.domain(Set.of(CacheType.PASID, CacheType.IOTLB)), null);
        rig.expectFault(FaultRecord.PDT_INVALID, RID, PASID, GVA + 0x20, Access.READ);
        // detach: back to the plain G-stage DC.
        rig.drv.detachPasidTable(parent, RID);
        rig.expectFault(FaultRecord.TRANSACTION_TYPE_DISALLOWED, RID, PASID, GVA + 0x20, Access.READ);
        rig.expectAt(guest.toHost(GUEST_RAM) + 0x8, RID, NO, GUEST_RAM + 0x8, Access.READ);
        assertErrno(Errno.ENOENT, () -> rig.drv.detachPasidTable(parent, RID));
    }

    @Test
    void unmapOfTheGStageFlushesNestedEntries() throws Exception {
        rig.drv.attachPasidTable(parent, RID, config(PasidTableConfig.TRANSLATE, 1));
        rig.expectAt(guest.toHost(data) + 0x20, RID, PASID, GVA + 0x20, Access.READ);
        long host = guest.toHost(data);
        assertEquals(0x1000, parent.unmap(data, 0x1000));
        rig.expectFault(FaultRecord.READ_GUEST_PAGE_FAULT, RID, PASID, GVA + 0x20, Access.READ);
        parent.map(data, host, 0x1000, RW);
        rig.expectAt(host + 0x20, RID, PASID, GVA + 0x20, Access.READ);
    }

    @Test
    void configMapping() throws Exception {
        // s1dss 2: requests without PASID use process id 0.
        writePc(0, PSCID + 2, table.root());
        rig.drv.attachPasidTable(parent, RID, config(PasidTableConfig.TRANSLATE, 2));
        rig.expectAt(guest.toHost(data) + 0x20, RID, NO, GVA + 0x20, Access.READ);
        // BYPASS: only the G-stage; a PASID is disallowed (PDTV = 0).
        rig.drv.attachPasidTable(parent, RID, config(PasidTableConfig.BYPASS, 0));
        rig.expectAt(guest.toHost(GUEST_RAM) + 0x8, RID, NO, GUEST_RAM + 0x8, Access.READ);
        rig.expectFault(FaultRecord.TRANSACTION_TYPE_DISALLOWED, RID, PASID, GVA + 0x20, Access.READ);
        // ABORT: the DC is invalid.
        rig.drv.attachPasidTable(parent, RID, config(PasidTableConfig.ABORT, 0));
        rig.expectFault(FaultRecord.DDT_INVALID, RID, NO, GUEST_RAM + 0x8, Access.READ);
        rig.drv.detachPasidTable(parent, RID);
        rig.expectAt(guest.toHost(GUEST_RAM) + 0x8, RID, NO, GUEST_RAM + 0x8, Access.READ);
    }

    @Test
    void badConfigurationsAreRefusedAndChangeNothing() throws Exception {
        rig.drv.attachPasidTable(parent, RID, config(PasidTableConfig.TRANSLATE, 1));
        PasidTableConfig good = config(PasidTableConfig.TRANSLATE, 1);
        assertErrno(Errno.EINVAL, () -> rig.drv.attachPasidTable(parent, RID,
                new PasidTableConfig("arm-smmuv3", pdt, 8, PasidTableConfig.TRANSLATE, 0, 1)));
        assertErrno(Errno.EINVAL, () -> rig.drv.attachPasidTable(parent, RID,
                new PasidTableConfig(RiscvDriver.FORMAT, pdt, 9, PasidTableConfig.TRANSLATE, 0, 1)));
        assertErrno(Errno.EINVAL, () -> rig.drv.attachPasidTable(parent, RID,
                new PasidTableConfig(RiscvDriver.FORMAT, pdt, 8, PasidTableConfig.TRANSLATE, 0, 0)));
        assertErrno(Errno.EINVAL, () -> rig.drv.attachPasidTable(parent, RID,
                new PasidTableConfig(RiscvDriver.FORMAT, pdt, 8, PasidTableConfig.TRANSLATE, 1, 1)));
        assertErrno(Errno.EINVAL, () -> rig.drv.attachPasidTable(parent, RID,
                new PasidTableConfig(RiscvDriver.FORMAT, pdt + 8, 8, PasidTableConfig.TRANSLATE, 0, 1)));
        assertErrno(Errno.EINVAL, () -> rig.drv.attachPasidTable(parent, RID,
                new PasidTableConfig(RiscvDriver.FORMAT, 1L << 50, 8, PasidTableConfig.TRANSLATE, 0, 1)));
        assertErrno(Errno.EINVAL, () -> rig.drv.attachPasidTable(parent, RID,
                new PasidTableConfig(RiscvDriver.FORMAT, pdt, 8, 4, 0, 1)));
        assertErrno(Errno.ENOENT, () -> rig.drv.attachPasidTable(parent, RID + 1, good));
        IommuDomain id = rig.drv.allocateDomain(DomainType.IDENTITY);
        assertErrno(Errno.EINVAL, () -> rig.drv.attachPasidTable(id, RID, good));
        assertErrno(Errno.EOPNOTSUPP, () -> rig.drv.bindGuestPasid(parent, RID,
                new GuestPasidBind(RiscvDriver.FORMAT, 5, 1, true, table.root(), 48, 0, 0, 0), null));
        assertErrno(Errno.EOPNOTSUPP, () -> rig.drv.unbindGuestPasid(parent, RID, 5, null));
        // Invalidations: wrong domain type, PSCID too wide, a device not on the domain.
        assertErrno(Errno.EINVAL, () -> rig.drv.cacheInvalidate(id, RID, CacheInvalidation.domain(Set.of(CacheType.IOTLB)),
                null));
        assertErrno(Errno.EINVAL, () -> rig.drv.cacheInvalidate(parent, RID,
                CacheInvalidation.pasid(Set.of(CacheType.IOTLB), 1, 1L << 20), null));
        assertErrno(Errno.ENOENT, () -> rig.drv.cacheInvalidate(parent, RID + 1,
                CacheInvalidation.pasid(Set.of(CacheType.PASID), 1, -1), null));
        // Still the first configuration.
        rig.expectAt(guest.toHost(data) + 0x20, RID, PASID, GVA + 0x20, Access.READ);
    }

    @Test
    void firstStageFaultsAreClassifiedFromTheGuestTables() throws Exception {
        rig.listen();
        table.map(GVA + 0x1000, data + 0x1000, 0x1000, IommuDomain.PROT_READ);
        rig.drv.attachPasidTable(parent, RID, config(PasidTableConfig.TRANSLATE, 1));
        rig.expectFault(FaultRecord.READ_PAGE_FAULT, RID, PASID, GVA + 0x10_0000, Access.READ);
        rig.expectFault(FaultRecord.WRITE_PAGE_FAULT, RID, PASID, GVA + 0x1000, Access.WRITE);
        assertEquals(FaultKind.TRANSLATION, rig.faults.stream().filter(f -> f.address() == GVA + 0x10_0000).findFirst()
                .orElseThrow().kind());
        assertEquals(FaultKind.PERMISSION, rig.faults.stream().filter(f -> f.address() == GVA + 0x1000).findFirst()
                .orElseThrow().kind());
    }
}
