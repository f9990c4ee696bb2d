package org.iommulab.smmuv3.internal;

import java.util.HashMap;
import java.util.Map;

import org.iommulab.api.errno.Errno;
import org.iommulab.api.errno.IommuException;
import org.iommulab.api.memory.FrameAllocator;
import org.iommulab.api.memory.PhysicalMemory;
import org.iommulab.api.spi.IommuBackend;
import org.iommulab.api.spi.IommuInstance;
import org.iommulab.api.spi.InstanceState;
import org.iommulab.pgtable.unit.ModeledInstance;
import org.iommulab.pgtable.unit.StateWords;
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
        return new ModeledInstance(name, VENDOR, hw, driver, memory, frames, driver::close, saver(name, hw, driver));
    }

    /** Live update: the driver's and the unit's state; the driver lets the unit go, freeing nothing. */
    private static ModeledInstance.Saver saver(String name, SmmuHardware hw, SmmuDriver driver) {
        return () -> {
            Map<String, long[]> sections = new HashMap<>();
            driver.saveAndLetGo(sections); // first: no queue interrupt reaches the driver while the unit is saved
            hw.save(sections);
            return new InstanceState(VENDOR, name, SmmuDriver.STATE_FORMAT, sections);
        };
    }

    /**
     * Live update: a unit with the configuration of the handed-over one, its registers and queue
     * pointers restored, and a driver that takes over the stream table, CD tables, page tables and
     * queues the previous build's driver left in memory.
     */
    @Override
    public void resume(IommuInstance handedOver, InstanceState state) throws IommuException {
        if (!(handedOver instanceof ModeledInstance instance) || !VENDOR.equals(state.vendor())
                || state.format() != SmmuDriver.STATE_FORMAT || instance.frames() == null) {
            throw new IommuException(Errno.EINVAL, "not an SMMUv3 state this build understands: " + state);
        }
        Map<String, long[]> sections = StateWords.sections(state);
        SmmuHardware hw = new SmmuHardware(instance.memory(), SmmuConfig.of(instance.configuration()));
        hw.setGuestListener(instance.guestListener());
        hw.restore(sections);
        SmmuDriver driver = SmmuDriver.restore(instance.name(), hw, instance.memory(), instance.frames(), sections);
        instance.resume(hw, driver, driver.domainsById(), driver::close, saver(instance.name(), hw, driver));
    }
}
