package ${package}.internal;

import static org.junit.jupiter.api.DynamicTest.dynamicTest;

import java.util.Map;
import java.util.stream.Stream;

import org.iommulab.api.errno.IommuException;
import org.iommulab.api.memory.FrameAllocator;
import org.iommulab.api.memory.PhysicalMemory;
import org.iommulab.api.pasid.PasidSet;
import org.iommulab.api.spi.IommuInstance;
import org.iommulab.platform.internal.memory.FramePool;
import org.iommulab.platform.internal.memory.SparseMemory;
import org.iommulab.platform.internal.pasid.PasidSpaceImpl;
import org.iommulab.testkit.BackendUnderTest;
import org.iommulab.testkit.ConformanceKit;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.TestFactory;

/**
 * IOMMU Lab's backend conformance kit over this backend: one dynamic test per check. A check the
 * backend does not declare a feature for is skipped. Override {@code firstStageFormat()} (and, for
 * a PASID-table backend, {@code writeGuestPasidTable}) once the backend binds first-stage tables.
 */
class ${classPrefix}ConformanceTest implements BackendUnderTest {
    final SparseMemory memory = new SparseMemory(52);
    final FramePool pool = new FramePool(memory, 1L << 40, 1 << 20);
    final PasidSpaceImpl pasids = new PasidSpaceImpl();
    final ${classPrefix}Backend backend = new ${classPrefix}Backend();

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
}
