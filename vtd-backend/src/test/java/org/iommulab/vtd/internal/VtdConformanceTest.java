package org.iommulab.vtd.internal;

import static org.junit.jupiter.api.DynamicTest.dynamicTest;

import java.util.Map;
import java.util.stream.Stream;

import org.iommulab.api.errno.IommuException;
import org.iommulab.api.memory.FrameAllocator;
import org.iommulab.api.memory.PhysicalMemory;
import org.iommulab.api.pasid.PasidSet;
import org.iommulab.api.spi.IommuInstance;
import org.iommulab.pgtable.PageTableFormat;
import org.iommulab.pgtable.format.X86FirstStage;
import org.iommulab.platform.internal.memory.FramePool;
import org.iommulab.platform.internal.memory.SparseMemory;
import org.iommulab.platform.internal.pasid.PasidSpaceImpl;
import org.iommulab.testkit.BackendUnderTest;
import org.iommulab.testkit.ConformanceKit;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.TestFactory;

/** The backend conformance kit over the VT-d backend, as a unit test (no container). */
class VtdConformanceTest implements BackendUnderTest {
    final SparseMemory memory = new SparseMemory(52);
    final FramePool pool = new FramePool(memory, 1L << 40, 1 << 20);
    final PasidSpaceImpl pasids = new PasidSpaceImpl();
    final VtdBackend backend = new VtdBackend();

    VtdConformanceTest() {
        pasids.addListener(backend); // as DS wires it: a freed PASID unbinds everywhere
    }

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

    /** Guests and processes use x86 4-level first-stage tables (48-bit, 1 GiB pages, A/D). */
    @Override
    public PageTableFormat firstStageFormat() throws IommuException {
        return X86FirstStage.of(4, 48, false, true, true);
    }
}
