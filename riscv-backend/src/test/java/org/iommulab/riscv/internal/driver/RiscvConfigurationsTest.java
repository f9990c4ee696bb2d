package org.iommulab.riscv.internal.driver;

import static org.iommulab.riscv.internal.driver.DriverRig.RID;
import static org.iommulab.riscv.internal.driver.DriverRig.RW;
import static org.iommulab.riscv.internal.driver.DriverRig.assertErrno;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Map;
import java.util.Set;

import org.iommulab.api.errno.Errno;
import org.iommulab.api.invalidation.CacheInvalidation;
import org.iommulab.api.invalidation.CacheType;
import org.iommulab.api.nesting.NestingFeature;
import org.iommulab.api.nesting.NestingInfo;
import org.iommulab.api.nesting.PasidTableConfig;
import org.iommulab.api.pasid.Pasids;
import org.iommulab.api.spi.DomainType;
import org.iommulab.api.spi.IommuDomain;
import org.iommulab.api.translation.Access;
import org.iommulab.pgtable.IoPageTable;
import org.iommulab.platform.internal.memory.FramePool;
import org.iommulab.platform.internal.memory.SparseMemory;
import org.iommulab.riscv.internal.hw.RiscvHardware;
import org.iommulab.riscv.internal.spec.Command;
import org.iommulab.riscv.internal.spec.Reg;
import org.junit.jupiter.api.Test;

/** What the driver uses follows the capabilities register; the command queue's error path. */
class RiscvConfigurationsTest {
    static final int NO = Pasids.NO_PASID;

    @Test
    void withoutAtsThereIsNoPageRequestQueue() throws Exception {
        try (DriverRig rig = new DriverRig(Map.of("ats", "false"))) {
            NestingInfo info = rig.drv.nestingInfo();
            assertFalse(info.supports(NestingFeature.PAGE_RESP));
            assertTrue(info.supports(NestingFeature.PASID_TABLE));
            IommuDomain d = rig.drv.allocateDomain(DomainType.UNMANAGED);
            assertEquals(0, rig.reg(Reg.PQCSR, 4) & Reg.CSR_ON, "no page-request queue");
            assertEquals(4 + 4, rig.pool.allocatedFrames(), "cq, fq (2), DDT root, the domain's root (4)");
            rig.drv.attach(d, RID);
            d.map(0x1000, 1L << 31, 0x1000, RW);
            rig.expectAt((1L << 31) + 4, RID, NO, 0x1004, Access.READ); // the DC has no EN_ATS: not misconfigured
            assertFalse(rig.inst.pageRequest(RID, NO, 0x1000, Access.READ, 1) && rig.requests.size() > 0);
            // Device-TLB invalidations have nothing to reach.
            rig.drv.cacheInvalidate(d, RID + 1, CacheInvalidation.pasid(Set.of(CacheType.DEV_IOTLB), 1, -1), null);
        }
    }

    @Test
    void narrowUnit() throws Exception {
        try (DriverRig rig = new DriverRig(Map.of("pasid-bits", "8", "first-stage", "sv39", "g-stage", "sv39x4",
                "hardware-ad", "false", "pas", "44"))) {
            NestingInfo info = rig.drv.nestingInfo();
            assertEquals(8, info.pasidBits());
            assertEquals(39, info.addressWidth());
            assertEquals((1L << 12) | (1L << 21) | (1L << 30), info.pageSizes());
            IommuDomain d = rig.drv.allocateDomain(DomainType.UNMANAGED);
            assertEquals(41, d.inputAddressBits());
            rig.drv.attach(d, RID);
            d.map(0x1000, 1L << 31, 0x1000, RW);
            rig.expectAt((1L << 31) + 4, RID, NO, 0x1004, Access.WRITE); // no GADE: A and D preset
            assertErrno(Errno.EINVAL, () -> rig.drv.attachPasidTable(d, RID,
                    new PasidTableConfig(RiscvDriver.FORMAT, 0x10_0000, 17, PasidTableConfig.TRANSLATE, 0, 1)));
            rig.drv.attachPasidTable(d, RID, new PasidTableConfig(RiscvDriver.FORMAT, 0x10_0000, 8,
                    PasidTableConfig.TRANSLATE, 0, 1));
            IommuDomain id = rig.drv.allocateDomain(DomainType.IDENTITY);
            rig.drv.attach(id, RID + 1);
            IoPageTable process = rig.process();
            assertErrno(Errno.EINVAL, () -> rig.drv.bindFirstStage(RID + 1, 1, process.root(), 48, 0));
            assertErrno(Errno.EINVAL, () -> rig.drv.bindFirstStage(RID + 1, 256, process.root(), 39, 0));
            assertErrno(Errno.EINVAL, () -> rig.drv.bindFirstStage(RID + 1, 1, 1L << 44, 39, 0));
            rig.drv.bindFirstStage(RID + 1, 255, process.root(), 39, 0);
            rig.drv.unbindFirstStage(RID + 1, 255);
            process.destroy();
        }
    }

    @Test
    void framesBeyondThePhysicalAddressSizeAreNotUsed() throws Exception {
        try (DriverRig rig = new DriverRig(Map.of("pas", "40"))) { // the pool starts at 2^40
            assertErrno(Errno.ENOMEM, () -> rig.drv.allocateDomain(DomainType.UNMANAGED));
            assertEquals(0, rig.pool.allocatedFrames(), "nothing kept");
            assertEquals(Reg.MODE_OFF, rig.reg(Reg.DDTP, 8) & Reg.DDTP_MODE_MASK);
        }
    }

    @Test
    void withoutPasidsThereIsNoNestingNorSva() throws Exception {
        try (DriverRig rig = new DriverRig(Map.of("pasid-bits", "0"))) {
            NestingInfo info = rig.drv.nestingInfo();
            assertEquals(0, info.pasidBits());
            assertFalse(info.supports(NestingFeature.PASID_TABLE));
            IommuDomain d = rig.drv.allocateDomain(DomainType.UNMANAGED);
            rig.drv.attach(d, RID);
            assertErrno(Errno.EOPNOTSUPP, () -> rig.drv.attachPasidTable(d, RID,
                    new PasidTableConfig(RiscvDriver.FORMAT, 0x10_0000, 8, PasidTableConfig.TRANSLATE, 0, 1)));
            IommuDomain id = rig.drv.allocateDomain(DomainType.IDENTITY);
            rig.drv.attach(id, RID + 1);
            assertErrno(Errno.EOPNOTSUPP, () -> rig.drv.bindFirstStage(RID + 1, 1, 0x1000, 48, 0));
        }
    }

    @Test
    void aRefusedCommandIsReportedAndTheQueueKeepsWorking() throws Exception {
        SparseMemory mem = new SparseMemory(52);
        FramePool pool = new FramePool(mem, 1L << 40, 1 << 10);
        RiscvHardware hw = new RiscvHardware(mem, Map.of());
        CommandQueue cq = new CommandQueue("cq-test", hw, mem, pool.allocateFrames(1));
        assertErrno(Errno.ENODEV, () -> cq.submit(Command.iofence(false, 0), 0));
        cq.enable();
        assertTrue((hw.read(Reg.CQCSR, 4) & Reg.CSR_ON) != 0);
        // An unknown opcode, then a good command: EIO, the good one still ran, the queue runs on.
        assertErrno(Errno.EIO, () -> cq.submit(0x7f, 0, Command.iodirInvalDdt(-1), 0));
        assertEquals(0, hw.read(Reg.CQCSR, 4) & Reg.CQCSR_CMD_ILL, "cmd_ill acknowledged");
        assertEquals(hw.read(Reg.CQH, 4), hw.read(Reg.CQT, 4));
        // More commands than the queue holds go in batches.
        long[] many = new long[2 * 600];
        for (int i = 0; i < many.length; i += 2) {
            many[i] = Command.iotinval(true, 1, -1, true);
            many[i + 1] = Command.iotinvalAddress(0x1000L * i);
        }
        cq.submit(many);
        assertEquals(hw.read(Reg.CQH, 4), hw.read(Reg.CQT, 4));
        cq.disable();
        assertEquals(0, hw.read(Reg.CQCSR, 4) & Reg.CSR_ON);
        assertErrno(Errno.ENODEV, () -> cq.submit(Command.iofence(false, 0), 0));
    }

    @Test
    void atsInvalPayloadEncodesPowerOfTwoBlocks() {
        assertEquals(0x5000, Command.atsInvalPayload(0x5000, 0x1000));
        assertEquals(0x4000 | Command.ATS_INVAL_S, Command.atsInvalPayload(0x4000, 0x2000));
        assertEquals(0x4000 | 0x1000 | Command.ATS_INVAL_S, Command.atsInvalPayload(0x5000, 0x2000), "16 KiB block");
        assertEquals(0x7fff_ffff_ffff_f000L | Command.ATS_INVAL_S, Command.atsInvalPayload(0, -1));
        long twoMb = Command.atsInvalPayload(0x20_0000, 0x20_0000);
        assertEquals(0x20_0000 | 0xf_f000 | Command.ATS_INVAL_S, twoMb);
    }
}
