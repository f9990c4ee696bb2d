package org.iommulab.riscv.internal.driver;

import static org.iommulab.riscv.internal.driver.DriverRig.RID;
import static org.iommulab.riscv.internal.driver.DriverRig.RW;
import static org.iommulab.riscv.internal.driver.DriverRig.assertErrno;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.iommulab.api.errno.Errno;
import org.iommulab.api.nesting.NestingFeature;
import org.iommulab.api.nesting.NestingInfo;
import org.iommulab.api.pasid.Pasids;
import org.iommulab.api.spi.DomainType;
import org.iommulab.api.spi.IommuDomain;
import org.iommulab.api.translation.Access;
import org.iommulab.api.translation.FaultKind;
import org.iommulab.api.translation.Translation;
import org.iommulab.pgtable.IoPageTable;
import org.iommulab.riscv.internal.spec.FaultRecord;
import org.iommulab.riscv.internal.spec.Reg;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/** Bring-up, G-stage domains, identity, blocked, bad input and close, checked against what the model translates. */
class RiscvDriverTest {
    static final int NO = Pasids.NO_PASID;
    static final long IOVA = 0x10_0000L;
    final DriverRig rig;

    RiscvDriverTest() throws Exception {
        rig = new DriverRig();
    }

    @AfterEach
    void tearDown() {
        rig.close();
    }

    @Test
    void nestingInfoComesFromTheCapabilities() throws Exception {
        NestingInfo info = rig.drv.nestingInfo();
        assertEquals(RiscvDriver.FORMAT, info.format());
        assertTrue(info.supports(NestingFeature.PASID_TABLE));
        assertTrue(info.supports(NestingFeature.CACHE_INVLD));
        assertTrue(info.supports(NestingFeature.PAGE_RESP));
        assertTrue(!info.supports(NestingFeature.BIND_PGTBL));
        assertEquals(20, info.pasidBits());
        assertEquals(57, info.addressWidth(), "default first stage Sv57");
        assertEquals((1L << 12) | (1L << 21) | (1L << 30) | (1L << 39), info.pageSizes());
        assertEquals(rig.reg(Reg.CAPABILITIES, 8), info.vendorData().get("capabilities"));
        assertEquals(0, rig.pool.allocatedFrames(), "querying does not take the unit over");
        assertEquals(Reg.MODE_OFF, rig.reg(Reg.DDTP, 8) & Reg.DDTP_MODE_MASK, "ddtp as reset left it");
    }

    @Test
    void probeEnablesTheQueuesAndATwoLevelDdt() throws Exception {
        IommuDomain d = rig.drv.allocateDomain(DomainType.UNMANAGED);
        assertEquals(Reg.MODE_2LVL, rig.reg(Reg.DDTP, 8) & Reg.DDTP_MODE_MASK);
        assertTrue((rig.reg(Reg.CQCSR, 4) & Reg.CSR_ON) != 0, "cqon");
        assertTrue((rig.reg(Reg.FQCSR, 4) & Reg.CSR_ON) != 0, "fqon");
        assertTrue((rig.reg(Reg.FQCSR, 4) & Reg.CSR_IE) != 0, "fie");
        assertTrue((rig.reg(Reg.PQCSR, 4) & Reg.CSR_ON) != 0, "pqon (capabilities.ATS)");
        assertTrue((rig.reg(Reg.FCTL, 4) & Reg.FCTL_WSI) != 0, "fctl.WSI");
        assertEquals(rig.reg(Reg.CQH, 4), rig.reg(Reg.CQT, 4), "every command consumed");
        assertEquals(0, rig.reg(Reg.CQCSR, 4) & (Reg.CQCSR_CMD_ILL | Reg.CSR_MF), "no command refused");
        // cq, fq (2 frames), pq, DDT root; the domain's 16 KiB root.
        assertEquals(5 + 4, rig.pool.allocatedFrames());
        assertEquals(50, d.inputAddressBits(), "Sv48x4");
        assertTrue((d.pageSizes() & (1L << 21)) != 0);
    }

    @Test
    void mapTranslateUnmapLeavesNothingStale() throws Exception {
        IommuDomain d = rig.drv.allocateDomain(DomainType.UNMANAGED);
        IommuDomain other = rig.drv.allocateDomain(DomainType.UNMANAGED);
        assertNotEquals(d.id(), other.id());
        rig.drv.attach(d, RID);
        long pa = rig.frames(2);
        d.map(IOVA, pa, 0x2000, RW);
        rig.expectAt(pa + 0x18, RID, NO, IOVA + 0x18, Access.WRITE);
        rig.expectAt(pa + 0x1018, RID, NO, IOVA + 0x1018, Access.READ);
        assertEquals(0x1000, d.unmap(IOVA, 0x1000));
        Translation t = rig.expectFault(FaultRecord.READ_GUEST_PAGE_FAULT, RID, NO, IOVA + 0x18, Access.READ);
        assertEquals(FaultKind.TRANSLATION, t.faultKind());
        rig.expectAt(pa + 0x1018, RID, NO, IOVA + 0x1018, Access.READ);
        d.map(IOVA, pa + 0x1000, 0x1000, IommuDomain.PROT_READ);
        rig.expectAt(pa + 0x1018, RID, NO, IOVA + 0x18, Access.READ);
        t = rig.expectFault(FaultRecord.WRITE_GUEST_PAGE_FAULT, RID, NO, IOVA + 0x18, Access.WRITE);
        assertEquals(FaultKind.PERMISSION, t.faultKind());
        // A 2 MiB page, removed with an AV = 0 invalidation (more than 64 pages).
        long big = 1L << 31;
        d.map(0x20_0000, big, 0x20_0000, RW);
        rig.expectAt(big + 0x12_3458, RID, NO, 0x32_3458, Access.READ);
        assertEquals(0x20_0000, d.unmap(0x20_0000, 0x20_0000));
        rig.expectFault(FaultRecord.READ_GUEST_PAGE_FAULT, RID, NO, 0x32_3458, Access.READ);
        // Detach: the DC is invalid.
        rig.drv.detach(d, RID);
        rig.expectFault(FaultRecord.DDT_INVALID, RID, NO, IOVA + 0x1018, Access.READ);
        // The same domain attached again translates again, another device on it too.
        rig.drv.attach(d, RID);
        rig.drv.attach(d, RID + 1);
        rig.expectAt(pa + 0x1018, RID + 1, NO, IOVA + 0x1018, Access.READ);
        rig.drv.detach(d, RID + 1);
        rig.drv.detach(d, RID);
        rig.drv.freeDomain(d);
        rig.drv.freeDomain(other);
    }

    @Test
    void identityPassesThroughAndBlockedFaults() throws Exception {
        IommuDomain id = rig.drv.allocateDomain(DomainType.IDENTITY);
        IommuDomain blocked = rig.drv.allocateDomain(DomainType.BLOCKED);
        assertEquals(0x1234_5678L, id.iovaToPhys(0x1234_5678L));
        assertErrno(Errno.EINVAL, () -> id.map(0, 0, 0x1000, RW));
        rig.drv.attach(id, RID);
        rig.expectAt(0x1234_5678L, RID, NO, 0x1234_5678L, Access.WRITE);
        rig.drv.attach(blocked, RID + 1);
        Translation t = rig.expectFault(FaultRecord.DDT_INVALID, RID + 1, NO, 0x1000, Access.READ);
        assertEquals(FaultKind.CONFIGURATION, t.faultKind());
        // Moving a device from identity to a G-stage domain: the old pass-through is not cached.
        rig.drv.detach(id, RID);
        IommuDomain d = rig.drv.allocateDomain(DomainType.UNMANAGED);
        rig.drv.attach(d, RID);
        rig.expectFault(FaultRecord.READ_GUEST_PAGE_FAULT, RID, NO, 0x1234_5678L, Access.READ);
        rig.drv.detach(blocked, RID + 1);
        rig.drv.freeDomain(blocked);
    }

    @Test
    void badInputChangesNothing() throws Exception {
        IommuDomain d = rig.drv.allocateDomain(DomainType.UNMANAGED);
        IommuDomain other = rig.drv.allocateDomain(DomainType.UNMANAGED);
        long pa = rig.frames(1);
        d.map(IOVA, pa, 0x1000, RW);
        rig.drv.attach(d, RID);
        long frames = rig.pool.allocatedFrames();
        assertErrno(Errno.EINVAL, () -> rig.drv.attach(other, 0x1_0000));
        assertErrno(Errno.EINVAL, () -> rig.drv.attach(other, -1));
        assertErrno(Errno.EBUSY, () -> rig.drv.attach(other, RID));
        assertErrno(Errno.EBUSY, () -> rig.drv.freeDomain(d));
        assertErrno(Errno.ENOENT, () -> rig.drv.detach(other, RID));
        assertErrno(Errno.EINVAL, () -> d.map(1L << 50, pa, 0x1000, RW));
        assertErrno(Errno.EEXIST, () -> d.map(IOVA, pa, 0x1000, RW));
        try (DriverRig second = new DriverRig()) {
            IommuDomain foreign = second.drv.allocateDomain(DomainType.UNMANAGED);
            assertErrno(Errno.ENOENT, () -> rig.drv.attach(foreign, RID + 8));
            assertErrno(Errno.ENOENT, () -> rig.drv.freeDomain(foreign));
        }
        assertEquals(frames, rig.pool.allocatedFrames());
        rig.expectAt(pa + 8, RID, NO, IOVA + 8, Access.READ);
        rig.expectFault(FaultRecord.DDT_INVALID, RID + 8, NO, IOVA + 8, Access.READ);
        rig.drv.freeDomain(other);
        assertErrno(Errno.ENOENT, () -> rig.drv.freeDomain(other));
    }

    @Test
    void closeFreesEveryFrameAndLaterCallsAnswerEnodev() throws Exception {
        long baseline = rig.pool.allocatedFrames();
        IommuDomain d = rig.drv.allocateDomain(DomainType.UNMANAGED);
        d.map(IOVA, 1L << 31, 4L << 20, RW);
        rig.drv.attach(d, RID);
        rig.drv.attach(d, 0x7f00); // a second leaf DDT page
        IommuDomain id = rig.drv.allocateDomain(DomainType.IDENTITY);
        rig.drv.attach(id, RID + 1);
        IoPageTable process = rig.process();
        rig.drv.bindFirstStage(RID + 1, 3, process.root(), 48, 0);
        rig.drv.bindFirstStage(RID + 1, 0x8_1234, process.root(), 48, 0); // PD20: three levels
        IommuDomain parent = rig.drv.allocateDomain(DomainType.UNMANAGED);
        rig.drv.attach(parent, RID + 2);
        rig.drv.attachPasidTable(parent, RID + 2, new org.iommulab.api.nesting.PasidTableConfig(RiscvDriver.FORMAT,
                0x10_0000, 8, org.iommulab.api.nesting.PasidTableConfig.TRANSLATE, 0, 1));
        assertTrue(rig.pool.allocatedFrames() > baseline);
        rig.inst.close();
        assertEquals(baseline, rig.pool.allocatedFrames(), "close gave every frame back");
        assertTrue(!rig.tr(RID, NO, IOVA, Access.READ).isSuccess());
        assertErrno(Errno.ENODEV, () -> rig.drv.allocateDomain(DomainType.UNMANAGED));
        assertErrno(Errno.ENODEV, () -> d.map(IOVA + (8L << 20), 1L << 31, 0x1000, RW));
        rig.inst.close(); // idempotent
        process.destroy();
    }

    @Test
    void closeWithoutBringUpAllocatesNothing() throws Exception {
        rig.drv.nestingInfo();
        rig.inst.close();
        assertEquals(0, rig.pool.allocatedFrames());
    }
}
