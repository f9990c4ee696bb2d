package org.iommulab.vtd.internal;

import java.util.Map;

import org.iommulab.api.errno.IommuException;
import org.iommulab.api.memory.FrameAllocator;
import org.iommulab.api.memory.PhysicalMemory;
import org.iommulab.api.pasid.PasidListener;
import org.iommulab.api.spi.IommuBackend;
import org.iommulab.api.spi.IommuInstance;
import org.iommulab.pgtable.unit.ModeledInstance;
import org.iommulab.vtd.internal.driver.VtdDriver;
import org.iommulab.vtd.internal.hw.VtdConfig;
import org.iommulab.vtd.internal.hw.VtdHardware;
import org.osgi.service.component.annotations.Component;

/**
 * The {@code vtd} backend service: creates Intel VT-d scalable-mode units. When this bundle stops,
 * the platform's registry closes every unit it created. As a {@link PasidListener} it tells every
 * live host driver when a PASID leaves its set, so bindings through it stop.
 */
@Component(service = {IommuBackend.class, PasidListener.class})
public final class VtdBackend implements IommuBackend, PasidListener {
    /** Vendor id. */
    public static final String VENDOR = "vtd";

    private final java.util.Set<VtdDriver> drivers = java.util.concurrent.ConcurrentHashMap.newKeySet();

    @Override
    public String vendor() {
        return VENDOR;
    }

    @Override
    public String description() {
        return "Intel VT-d scalable mode (first stage, second stage, nested, pass-through)";
    }

    @Override
    public Map<String, String> defaultConfiguration() {
        return VtdConfig.DEFAULTS;
    }

    @Override
    public IommuInstance create(String name, Map<String, String> configuration, PhysicalMemory memory,
            FrameAllocator frames) throws IommuException {
        VtdHardware hw = new VtdHardware(memory, VtdConfig.of(configuration));
        VtdDriver driver = new VtdDriver(name, hw, memory, frames);
        drivers.add(driver);
        return new ModeledInstance(name, VENDOR, hw, driver, memory, () -> {
            driver.close();
            drivers.remove(driver);
        });
    }

    @Override
    public void pasidFreed(String owner, int setId, int pasid) {
        for (VtdDriver driver : drivers) {
            driver.pasidFreed(setId, pasid);
        }
    }
}
