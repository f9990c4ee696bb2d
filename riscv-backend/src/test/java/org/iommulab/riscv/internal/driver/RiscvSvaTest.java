package org.iommulab.riscv.internal.driver;

import static org.iommulab.riscv.internal.driver.DriverRig.RID;
import static org.iommulab.riscv.internal.driver.DriverRig.RW;
import static org.iommulab.riscv.internal.driver.DriverRig.assertErrno;
import static org.junit.jupiter.api.Assertions.assertEquals;

import org.iommulab.api.errno.Errno;
import org.iommulab.api.nesting.GuestPasidBind;
import org.iommulab.api.pasid.Pasids;
import org.iommulab.api.spi.DomainType;
import org.iommulab.api.spi.IommuDomain;
import org.iommulab.api.translation.Access;
import org.iommulab.api.translation.FaultKind;
import org.iommulab.pgtable.IoPageTable;
import org.iommulab.riscv.internal.spec.FaultRecord;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/** Host SVA: a process's Sv48 table bound to a PASID through the driver's own PDT. */
class RiscvSvaTest {
    static final int NO = Pasids.NO_PASID;
    static final long VA = 0x7f_1234_5000L;
    final DriverRig rig;
    final IoPageTable process;

    RiscvSvaTest() throws Exception {
        rig = new DriverRig();
        process = rig.process();
    }

    @AfterEach
    void tearDown() {
        rig.close();
        process.destroy();
    }

    @Test
    void bindTranslatesStaysStaleUntilInvalidatedAndUnbindStops() throws Exception {
        IommuDomain id = rig.drv.allocateDomain(DomainType.IDENTITY);
        rig.drv.attach(id, RID);
        long before = rig.pool.allocatedFrames();
        long pa = rig.frames(2);
        process.map(VA, pa, 0x1000, RW);
        rig.drv.bindFirstStage(RID, 1, process.root(), 48, 0);
        rig.expectAt(pa + 0x18, RID, 1, VA + 0x18, Access.WRITE);
        rig.expectAt(0x5000, RID, NO, 0x5000, Access.READ); // DPE = 0: no PASID still passes through
        assertErrno(Errno.EBUSY, () -> rig.drv.bindFirstStage(RID, 1, process.root(), 48, 0));
        // The process moves its page without telling: stale until invalidateFirstStage.
        process.unmap(VA, 0x1000);
        process.map(VA, pa + 0x1000, 0x1000, RW);
        rig.expectAt(pa + 0x18, RID, 1, VA + 0x18, Access.READ);
        assertErrno(Errno.EINVAL, () -> rig.drv.invalidateFirstStage(RID, 1, VA + 1, 0x1000));
        assertErrno(Errno.EINVAL, () -> rig.drv.invalidateFirstStage(RID, 1, VA, 0));
        assertErrno(Errno.ENOENT, () -> rig.drv.invalidateFirstStage(RID, 2, VA, 0x1000));
        rig.drv.invalidateFirstStage(RID, 1, VA, 0x1000);
        rig.expectAt(pa + 0x1018, RID, 1, VA + 0x18, Access.READ);
        // A large invalidation (no AV) works too.
        process.unmap(VA, 0x1000);
        process.map(VA, pa, 0x1000, RW);
        rig.drv.invalidateFirstStage(RID, 1, 0, 1L << 40);
        rig.expectAt(pa + 0x18, RID, 1, VA + 0x18, Access.READ);
        // A second PASID with its own PSCID: invalidating one leaves the other's entries alone.
        IoPageTable second = rig.process();
        second.map(VA, pa + 0x1000, 0x1000, RW);
        rig.drv.bindFirstStage(RID, 2, second.root(), 48, 0);
        rig.expectAt(pa + 0x1018, RID, 2, VA + 0x18, Access.READ);
        rig.drv.unbindFirstStage(RID, 1);
        rig.expectFault(FaultRecord.PDT_INVALID, RID, 1, VA + 0x18, Access.READ);
        rig.expectAt(pa + 0x1018, RID, 2, VA + 0x18, Access.READ);
        assertErrno(Errno.ENOENT, () -> rig.drv.unbindFirstStage(RID, 1));
        rig.drv.unbindFirstStage(RID, 2);
        // The last binding gone: PDTV = 0 again, a request with a PASID is disallowed.
        rig.expectFault(FaultRecord.TRANSACTION_TYPE_DISALLOWED, RID, 2, VA + 0x18, Access.READ);
        rig.expectAt(0x5000, RID, NO, 0x5000, Access.READ);
        assertEquals(before, rig.pool.allocatedFrames(), "the PDT frames went back");
        second.destroy();
    }

    @Test
    void blockedDomainFaultsRequestsWithoutPasid() throws Exception {
        IommuDomain blocked = rig.drv.allocateDomain(DomainType.BLOCKED);
        rig.drv.attach(blocked, RID);
        long pa = rig.frames(1);
        process.map(VA, pa, 0x1000, IommuDomain.PROT_READ);
        rig.drv.bindFirstStage(RID, 0x8_1234, process.root(), 48, 0); // PD20: three levels
        rig.expectAt(pa + 8, RID, 0x8_1234, VA + 8, Access.READ);
        // DPE = 1 and PC 0 invalid.
        rig.expectFault(FaultRecord.PDT_INVALID, RID, NO, VA + 8, Access.READ);
        // Supervisor requests need ENS (VTD_SRE).
        rig.expectFault(FaultRecord.TRANSACTION_TYPE_DISALLOWED, RID, 0x8_1234, VA + 8, Access.READ | Access.PRIV);
        rig.drv.bindFirstStage(RID, 5, process.root(), 48, GuestPasidBind.VTD_SRE);
        // ENS without SUM: a supervisor request may not touch a user page, but passes the PC check.
        rig.expectFault(FaultRecord.READ_PAGE_FAULT, RID, 5, VA + 8, Access.READ | Access.PRIV);
        rig.expectAt(pa + 8, RID, 5, VA + 8, Access.READ);
        // Write to a read-only page, read of an unmapped one.
        assertEquals(FaultKind.PERMISSION, rig.expectFault(FaultRecord.WRITE_PAGE_FAULT, RID, 5, VA, Access.WRITE).faultKind());
        assertEquals(FaultKind.TRANSLATION,
                rig.expectFault(FaultRecord.READ_PAGE_FAULT, RID, 5, VA + 0x1000, Access.READ).faultKind());
        // Detach unbinds everything.
        rig.drv.detach(blocked, RID);
        assertErrno(Errno.ENOENT, () -> rig.drv.unbindFirstStage(RID, 5));
        rig.expectFault(FaultRecord.DDT_INVALID, RID, 5, VA + 8, Access.READ);
    }

    @Test
    void badBindsAreRefusedAndChangeNothing() throws Exception {
        IommuDomain d = rig.drv.allocateDomain(DomainType.UNMANAGED);
        IommuDomain id = rig.drv.allocateDomain(DomainType.IDENTITY);
        rig.drv.attach(d, RID);
        rig.drv.attach(id, RID + 1);
        long root = process.root();
        assertErrno(Errno.EBUSY, () -> rig.drv.bindFirstStage(RID, 1, root, 48, 0));
        assertErrno(Errno.ENOENT, () -> rig.drv.bindFirstStage(RID + 2, 1, root, 48, 0));
        long frames = rig.pool.allocatedFrames();
        assertErrno(Errno.EINVAL, () -> rig.drv.bindFirstStage(RID + 1, 1, root + 0x10, 48, 0));
        assertErrno(Errno.EINVAL, () -> rig.drv.bindFirstStage(RID + 1, 1, root, 40, 0));
        assertErrno(Errno.EINVAL, () -> rig.drv.bindFirstStage(RID + 1, 0, root, 48, 0));
        assertErrno(Errno.EINVAL, () -> rig.drv.bindFirstStage(RID + 1, 1 << 20, root, 48, 0));
        assertErrno(Errno.EINVAL, () -> rig.drv.bindFirstStage(RID + 1, 1, root, 48, GuestPasidBind.VTD_PCD));
        assertErrno(Errno.EINVAL, () -> rig.drv.bindFirstStage(RID + 1, 1, -4096, 48, 0));
        assertErrno(Errno.EINVAL, () -> rig.drv.bindFirstStage(0x1_0000, 1, root, 48, 0));
        assertErrno(Errno.ENOENT, () -> rig.drv.unbindFirstStage(RID + 1, 7));
        assertEquals(frames, rig.pool.allocatedFrames());
        rig.expectFault(FaultRecord.TRANSACTION_TYPE_DISALLOWED, RID + 1, 1, 0x1000, Access.READ);
        // Sv39 and Sv57 tables are accepted.
        rig.drv.bindFirstStage(RID + 1, 1, root, 39, 0);
        rig.drv.bindFirstStage(RID + 1, 2, root, 57, 0);
        // An UNMANAGED attach of a device with bindings is refused.
        rig.drv.detach(id, RID + 1);
        rig.drv.attach(id, RID + 1);
        rig.drv.bindFirstStage(RID + 1, 1, root, 48, 0);
    }
}
