package org.iommulab.riscv.internal;

import static org.junit.jupiter.api.DynamicTest.dynamicTest;

import java.util.Map;
import java.util.stream.Stream;

import org.iommulab.api.errno.IommuException;
import org.iommulab.api.memory.FrameAllocator;
import org.iommulab.api.memory.PhysicalMemory;
import org.iommulab.api.nesting.PasidTableConfig;
import org.iommulab.api.pasid.PasidSet;
import org.iommulab.api.spi.IommuInstance;
import org.iommulab.pgtable.PageTableFormat;
import org.iommulab.pgtable.format.RiscvPaging;
import org.iommulab.platform.internal.memory.FramePool;
import org.iommulab.platform.internal.memory.SparseMemory;
import org.iommulab.platform.internal.pasid.PasidSpaceImpl;
import org.iommulab.testkit.BackendUnderTest;
import org.iommulab.riscv.internal.driver.RiscvDriver;
import org.iommulab.riscv.internal.spec.DeviceContext;
import org.iommulab.riscv.internal.spec.ProcessContext;
import org.iommulab.testkit.ConformanceKit;
import org.iommulab.testkit.GuestMemory;
import org.iommulab.testkit.GuestPasidTable;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.TestFactory;

/**
 * IOMMU Lab's backend conformance kit over this backend: one dynamic test per check. A check the
 * backend does not declare a feature for is skipped (nested-bind: the RISC-V IOMMU nests by PASID
 * table, not by binding guest tables per PASID).
 */
class RiscvConformanceTest implements BackendUnderTest {
    /** The PSCID of the guest's process context. */
    static final int PSCID = 0x42;

    final SparseMemory memory = new SparseMemory(52);
    final FramePool pool = new FramePool(memory, 1L << 40, 1 << 20);
    final PasidSpaceImpl pasids = new PasidSpaceImpl();
    final RiscvBackend backend = new RiscvBackend();

    @TestFactory
    Stream<DynamicTest> conformance() {
        return ConformanceKit.checks().stream().map(c -> dynamicTest(c.displayName(), () -> c.run(this, Assumptions::abort)));
    }

    @Override
    public IommuInstance create(String name) throws IommuException {
        return backend.create(name, Map.of(), memory, pool);
    }

    @Override
    public PhysicalMemory memory() {
        return memory;
    }

    @Override
    public FrameAllocator frames() {
        return pool;
    }

    @Override
    public PasidSet pasidSet(String owner) throws IommuException {
        return pasids.createSet(owner, 8);
    }

    /**
     * Sv48 first stage as the unit walks it for the kit's requests: user pages (the requests carry
     * no supervisor privilege), hardware A/D (DC.tc.SADE, capabilities.AMO_HWAD), no SUM, 52-bit
     * output (capabilities.PAS).
     */
    @Override
    public PageTableFormat firstStageFormat() throws IommuException {
        return RiscvPaging.firstStage(RiscvPaging.Mode.SV48, 52, true, false, true);
    }

    /**
     * A guest PD8 process-directory table (spec §2.2, one page of 256 process contexts) with one
     * valid PC: ta {V, PSCID 0x42}, fsc {Sv48, the guest's table}.
     */
    @Override
    public GuestPasidTable writeGuestPasidTable(GuestMemory guest, int pasid, long firstStageRoot) throws IommuException {
        long pdt = guest.allocateFrames(1);
        long pc = pdt + (long) ProcessContext.SIZE * pasid;
        guest.write64(pc + ProcessContext.FSC, DeviceContext.iosatp(DeviceContext.ATP_SV48, firstStageRoot));
        guest.write64(pc + ProcessContext.TA, ProcessContext.ta(PSCID, false, false));
        return new GuestPasidTable(new PasidTableConfig(RiscvDriver.FORMAT, pdt, 8, PasidTableConfig.TRANSLATE, 0, 1),
                PSCID);
    }
}
