package org.iommulab.itest;

import java.util.Map;

import org.iommulab.api.errno.IommuException;
import org.iommulab.api.memory.FrameAllocator;
import org.iommulab.api.memory.HostMemory;
import org.iommulab.api.memory.PhysicalMemory;
import org.iommulab.api.pasid.PasidSet;
import org.iommulab.api.pasid.PasidSpace;
import org.iommulab.api.spi.IommuInstance;
import org.iommulab.api.spi.IommuRegistry;
import org.iommulab.pgtable.PageTableFormat;
import org.iommulab.testkit.BackendUnderTest;

/**
 * A backend under the conformance kit inside the container: instances come from the registry,
 * over host memory, with the platform's PASID sets. Subclasses add a guest PASID-table writer.
 */
class RegistryTarget implements BackendUnderTest {
    private final IommuRegistry registry;
    private final HostMemory memory;
    private final PasidSpace pasids;
    private final String vendor;
    private final PageTableFormat firstStage;

    /**
     * @param firstStage the first-stage format guests and processes use, or {@code null} for none
     */
    RegistryTarget(IommuRegistry registry, HostMemory memory, PasidSpace pasids, String vendor, PageTableFormat firstStage) {
        this.registry = registry;
        this.memory = memory;
        this.pasids = pasids;
        this.vendor = vendor;
        this.firstStage = firstStage;
    }

    @Override
    public IommuInstance create(String name) throws IommuException {
        return registry.create(vendor, name, Map.of());
    }

    @Override
    public PhysicalMemory memory() {
        return memory;
    }

    @Override
    public FrameAllocator frames() {
        return memory;
    }

    @Override
    public PasidSet pasidSet(String owner) throws IommuException {
        return pasids.createSet(owner, 8);
    }

    @Override
    public PageTableFormat firstStageFormat() {
        return firstStage;
    }
}
