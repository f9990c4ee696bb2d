package org.iommulab.riscv.internal.driver;

import static org.iommulab.riscv.internal.driver.DriverRig.RID;
import static org.iommulab.riscv.internal.driver.DriverRig.RW;
import static org.iommulab.riscv.internal.driver.DriverRig.assertErrno;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;

import org.iommulab.api.errno.Errno;
import org.iommulab.api.errno.IommuException;
import org.iommulab.api.fault.FaultListener;
import org.iommulab.api.fault.IommuFault;
import org.iommulab.api.fault.PageRequest;
import org.iommulab.api.fault.PageResponse;
import org.iommulab.api.pasid.Pasids;
import org.iommulab.api.spi.DomainType;
import org.iommulab.api.spi.IommuDomain;
import org.iommulab.api.translation.Access;
import org.iommulab.api.translation.FaultKind;
import org.iommulab.api.translation.Stage;
import org.iommulab.pgtable.IoPageTable;
import org.iommulab.riscv.internal.spec.FaultRecord;
import org.iommulab.riscv.internal.spec.Reg;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/** Fault records reaching the listeners, page requests answered through ATS.PRGR. */
class RiscvFaultTest {
    static final int NO = Pasids.NO_PASID;
    static final long IOVA = 0x10_0000L;
    final DriverRig rig;

    RiscvFaultTest() throws Exception {
        rig = new DriverRig().listen();
    }

    @AfterEach
    void tearDown() {
        rig.close();
    }

    IommuFault heard(long address) {
        return rig.faults.stream().filter(f -> f.address() == address).findFirst()
                .orElseThrow(() -> new AssertionError("no fault at 0x" + Long.toHexString(address) + " in " + rig.faults));
    }

    @Test
    void faultRecordsReachTheListenersWithTheirKind() throws Exception {
        IommuDomain d = rig.drv.allocateDomain(DomainType.UNMANAGED);
        long pa = rig.frames(1);
        d.map(IOVA, pa, 0x1000, IommuDomain.PROT_READ);
        rig.drv.attach(d, RID);
        rig.expectFault(FaultRecord.WRITE_GUEST_PAGE_FAULT, RID, NO, IOVA + 8, Access.WRITE);
        rig.expectFault(FaultRecord.READ_GUEST_PAGE_FAULT, RID, NO, IOVA + 0x10_0000, Access.READ);
        IommuFault w = heard(IOVA + 8);
        assertEquals(FaultKind.PERMISSION, w.kind());
        assertEquals(Stage.STAGE2, w.stage());
        assertEquals(RID, w.requesterId());
        assertEquals(NO, w.pasid());
        assertEquals(Access.WRITE, w.access() & Access.WRITE);
        assertEquals(FaultRecord.causeName(FaultRecord.WRITE_GUEST_PAGE_FAULT), w.name());
        IommuFault r = heard(IOVA + 0x10_0000);
        assertEquals(FaultKind.TRANSLATION, r.kind());
        assertEquals(FaultRecord.READ_GUEST_PAGE_FAULT, r.code());
        // A device nobody attached: DDT entry not valid, a configuration fault.
        rig.expectFault(FaultRecord.DDT_INVALID, RID + 1, NO, 0x3000, Access.READ);
        IommuFault c = heard(0x3000);
        assertEquals(FaultKind.CONFIGURATION, c.kind());
        assertEquals(RID + 1, c.requesterId());
        assertEquals(rig.reg(Reg.FQH, 4), rig.reg(Reg.FQT, 4), "the driver consumed every record");
        assertEquals(0, rig.reg(Reg.IPSR, 4) & Reg.IPSR_FIP, "ipsr.fip acknowledged");
    }

    @Test
    void firstStageFaultsOfABoundProcess() throws Exception {
        IommuDomain id = rig.drv.allocateDomain(DomainType.IDENTITY);
        rig.drv.attach(id, RID);
        IoPageTable process = rig.process();
        long pa = rig.frames(1);
        process.map(0x40_0000, pa, 0x1000, IommuDomain.PROT_READ);
        rig.drv.bindFirstStage(RID, 9, process.root(), 48, 0);
        rig.expectFault(FaultRecord.WRITE_PAGE_FAULT, RID, 9, 0x40_0010, Access.WRITE);
        rig.expectFault(FaultRecord.READ_PAGE_FAULT, RID, 9, 0x80_0010, Access.READ);
        IommuFault w = heard(0x40_0010);
        assertEquals(FaultKind.PERMISSION, w.kind());
        assertEquals(Stage.STAGE1, w.stage());
        assertEquals(9, w.pasid());
        assertEquals(FaultKind.TRANSLATION, heard(0x80_0010).kind());
        process.destroy();
    }

    @Test
    void manyFaultsOverflowNothingTheDriverCannotConsume() throws Exception {
        for (int i = 0; i < 3 * IommuUnit.QUEUE_ENTRIES; i++) {
            rig.tr(RID + 2, NO, 0x1000L * i, Access.READ); // DDT not valid: one record each
        }
        // The unit is not even on yet (no domain allocated): ddtp Off, nothing recorded.
        assertTrue(rig.faults.isEmpty());
        rig.drv.allocateDomain(DomainType.BLOCKED);
        for (int i = 0; i < 3 * IommuUnit.QUEUE_ENTRIES; i++) {
            rig.tr(RID + 2, NO, 0x1000L * i, Access.READ);
        }
        assertEquals(3 * IommuUnit.QUEUE_ENTRIES, rig.faults.size(), "every record drained as it came");
        assertEquals(0, rig.reg(Reg.FQCSR, 4) & Reg.CSR_OF, "no overflow");
    }

    @Test
    void pageRequestReachesTheListenerAndItsResponseTheDevice() throws Exception {
        IommuDomain id = rig.drv.allocateDomain(DomainType.IDENTITY);
        rig.drv.attach(id, RID);
        assertTrue(rig.inst.pageRequest(RID, 3, 0x7000_1234L, Access.WRITE, 5));
        assertEquals(1, rig.requests.size(), rig.requests::toString);
        PageRequest r = rig.requests.get(0);
        assertEquals(RID, r.requesterId());
        assertEquals(3, r.pasid());
        assertEquals(0x7000_1000L, r.address());
        assertEquals(5, r.groupIndex());
        assertTrue(r.lastInGroup());
        assertTrue((r.access() & Access.WRITE) != 0);
        assertNull(rig.inst.pageRequestStatus(RID, 3, 5), "the device waits");
        rig.drv.pageResponse(RID, 3, 5, PageResponse.SUCCESS);
        assertEquals(PageResponse.SUCCESS, rig.inst.pageRequestStatus(RID, 3, 5));
        assertErrno(Errno.ENOENT, () -> rig.drv.pageResponse(RID, 3, 5, PageResponse.SUCCESS));
        // Without PASID, and the other response codes.
        assertTrue(rig.inst.pageRequest(RID, NO, 0x8000, Access.READ, 6));
        assertEquals(NO, rig.requests.get(1).pasid());
        rig.drv.pageResponse(RID, NO, 6, PageResponse.INVALID);
        assertEquals(PageResponse.INVALID, rig.inst.pageRequestStatus(RID, NO, 6));
        assertTrue(rig.inst.pageRequest(RID, 4, 0x9000, Access.READ, 7));
        rig.drv.pageResponse(RID, 4, 7, PageResponse.FAILURE);
        assertEquals(PageResponse.FAILURE, rig.inst.pageRequestStatus(RID, 4, 7));
        assertErrno(Errno.ENOENT, () -> rig.drv.pageResponse(RID, 4, 8, PageResponse.SUCCESS));
        assertEquals(rig.reg(Reg.PQH, 4), rig.reg(Reg.PQT, 4));
    }

    @Test
    void aListenerMayAnswerOnTheInterruptThread() throws Exception {
        IommuDomain id = rig.drv.allocateDomain(DomainType.IDENTITY);
        rig.drv.attach(id, RID);
        rig.drv.addFaultListener(new FaultListener() {
            @Override
            public void fault(IommuFault fault) {
            }

            @Override
            public void pageRequest(PageRequest request) {
                try {
                    rig.drv.pageResponse(request.requesterId(), request.pasid(), request.groupIndex(), PageResponse.SUCCESS);
                } catch (IommuException e) {
                    throw new AssertionError(e);
                }
            }
        });
        assertTrue(rig.inst.pageRequest(RID, 1, 0x5000, Access.READ, 9));
        assertEquals(PageResponse.SUCCESS, rig.inst.pageRequestStatus(RID, 1, 9));
    }

    @Test
    void withoutListenersTheDriverDeniesAndDetachDeniesWhatIsPending() throws Exception {
        try (DriverRig quiet = new DriverRig()) {
            IommuDomain id = quiet.drv.allocateDomain(DomainType.IDENTITY);
            quiet.drv.attach(id, RID);
            assertTrue(quiet.inst.pageRequest(RID, 1, 0x5000, Access.READ, 2));
            assertEquals(PageResponse.INVALID, quiet.inst.pageRequestStatus(RID, 1, 2));
        }
        IommuDomain id = rig.drv.allocateDomain(DomainType.IDENTITY);
        rig.drv.attach(id, RID);
        assertTrue(rig.inst.pageRequest(RID, 1, 0x5000, Access.READ, 3));
        assertNull(rig.inst.pageRequestStatus(RID, 1, 3));
        rig.drv.detach(id, RID);
        assertEquals(PageResponse.INVALID, rig.inst.pageRequestStatus(RID, 1, 3));
        // Page requests of a device whose DC has no EN_PRI (not attached): the unit answers itself.
        boolean accepted = rig.inst.pageRequest(RID + 5, 1, 0x5000, Access.READ, 4);
        List<PageRequest> none = rig.requests.stream().filter(p -> p.requesterId() == RID + 5).toList();
        assertTrue(none.isEmpty());
        assertFalse(accepted && rig.inst.pageRequestStatus(RID + 5, 1, 4) == null);
    }

    @Test
    void closeAnswersPendingGroups() throws Exception {
        IommuDomain id = rig.drv.allocateDomain(DomainType.IDENTITY);
        rig.drv.attach(id, RID);
        assertTrue(rig.inst.pageRequest(RID, 2, 0x5000, Access.READ, 11));
        rig.drv.addFaultListener(new FaultListener() {
            @Override
            public void fault(IommuFault fault) {
            }

            @Override
            public void pageRequest(PageRequest request) {
            }
        });
        assertNull(rig.inst.pageRequestStatus(RID, 2, 11));
        rig.inst.close();
        assertEquals(PageResponse.INVALID, rig.inst.pageRequestStatus(RID, 2, 11), "close denied the pending group");
        assertErrno(Errno.ENODEV, () -> rig.drv.pageResponse(RID, 2, 11, PageResponse.SUCCESS));
    }
}
