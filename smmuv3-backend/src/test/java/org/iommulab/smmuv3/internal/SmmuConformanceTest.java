package org.iommulab.smmuv3.internal;

import static org.junit.jupiter.api.DynamicTest.dynamicTest;

import java.util.Map;
import java.util.stream.Stream;

import org.iommulab.api.errno.IommuException;
import org.iommulab.api.memory.FrameAllocator;
import org.iommulab.api.memory.PhysicalMemory;
import org.iommulab.api.nesting.NestingInfo;
import org.iommulab.api.nesting.PasidTableConfig;
import org.iommulab.api.pasid.PasidSet;
import org.iommulab.api.spi.IommuInstance;
import org.iommulab.pgtable.PageTableFormat;
import org.iommulab.pgtable.format.ArmGranule;
import org.iommulab.pgtable.format.ArmStage1;
import org.iommulab.platform.internal.memory.FramePool;
import org.iommulab.platform.internal.memory.SparseMemory;
import org.iommulab.platform.internal.pasid.PasidSpaceImpl;
import org.iommulab.testkit.BackendUnderTest;
import org.iommulab.testkit.ConformanceKit;
import org.iommulab.testkit.GuestMemory;
import org.iommulab.testkit.GuestPasidTable;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.TestFactory;

/** The backend conformance kit over the SMMUv3 backend, as a unit test (no container). */
class SmmuConformanceTest implements BackendUnderTest {
    /** The guest's CD table: linear, 2^4 entries. */
    static final int CD_MAX = 4;
    static final int ASID = 9;

    final SparseMemory memory = new SparseMemory(52);
    final FramePool pool = new FramePool(memory, 1L << 40, 1 << 20);
    final PasidSpaceImpl pasids = new PasidSpaceImpl();
    final SmmuBackend backend = new SmmuBackend();

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

    /** AArch64 stage 1, 4 KiB granule, T0SZ 16 (48-bit VAs), 48-bit output. */
    @Override
    public PageTableFormat firstStageFormat() throws IommuException {
        return ArmStage1.of(ArmGranule.G4K, 16, 48, false, false, false);
    }

    /**
     * A linear CD table (§5.4) with one valid CD: T0SZ 16, TG0 4 KiB, EPD1, IPS 48 bits, AA64, R,
     * A, the ASID, TTB0 = the guest's table.
     */
    @Override
    public GuestPasidTable writeGuestPasidTable(GuestMemory guest, int pasid, long firstStageRoot) throws IommuException {
        long table = guest.allocateFrames(1);
        long cd = table + 64L * pasid;
        guest.write64(cd + 8, firstStageRoot);
        guest.write64(cd, 16 | 1L << 30 | 1L << 31 | (5L | 1L << 9 | 1L << 13 | 1L << 14 | (long) ASID << 16) << 32);
        return new GuestPasidTable(new PasidTableConfig(NestingInfo.FORMAT_ARM_SMMUV3, table, CD_MAX,
                PasidTableConfig.TRANSLATE, 0, 0), ASID);
    }
}
