package org.iommulab.smmuv3.internal;

import java.util.Map;

import org.iommulab.api.errno.IommuException;
import org.iommulab.api.memory.FrameAllocator;
import org.iommulab.api.memory.PhysicalMemory;
import org.iommulab.api.spi.IommuBackend;
import org.iommulab.api.spi.IommuInstance;
import org.iommulab.pgtable.unit.ModeledInstance;
import org.iommulab.smmuv3.internal.driver.SmmuDriver;
import org.iommulab.smmuv3.internal.hw.SmmuConfig;
import org.iommulab.smmuv3.internal.hw.SmmuHardware;
import org.osgi.service.component.annotations.Component;

/**
 * The {@code smmuv3} backend service: creates Arm SMMUv3 units. When this bundle stops, the
 * platform's registry closes every unit it created.
 */
@Component(service = IommuBackend.class)
public final class SmmuBackend implements IommuBackend {
    /** Vendor id. */
    public static final String VENDOR = "smmuv3";

    @Override
    public String vendor() {
        return VENDOR;
    }

    @Override
    public String description() {
        return "Arm SMMUv3 (stage 1, stage 2, nested with a guest context-descriptor table, bypass)";
    }

    @Override
    public Map<String, String> defaultConfiguration() {
        return SmmuConfig.DEFAULTS;
    }

    @Override
    public IommuInstance create(String name, Map<String, String> configuration, PhysicalMemory memory,
            FrameAllocator frames) throws IommuException {
        SmmuHardware hw = new SmmuHardware(memory, SmmuConfig.of(configuration));
        SmmuDriver driver = new SmmuDriver(name, hw, memory, frames);
        return new ModeledInstance(name, VENDOR, hw, driver, memory, driver::close);
    }
}
