package org.iommulab.vtd.internal;

import java.util.HashMap;
import java.util.Map;

import org.iommulab.api.errno.Errno;
import org.iommulab.api.errno.IommuException;
import org.iommulab.api.memory.FrameAllocator;
import org.iommulab.api.memory.PhysicalMemory;
import org.iommulab.api.pasid.PasidListener;
import org.iommulab.api.spi.IommuBackend;
import org.iommulab.api.spi.IommuInstance;
import org.iommulab.api.spi.InstanceState;
import org.iommulab.pgtable.unit.ModeledInstance;
import org.iommulab.pgtable.unit.StateWords;
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
        return new ModeledInstance(name, VENDOR, hw, driver, memory, frames, closer(driver), saver(name, hw, driver));
    }

    private Runnable closer(VtdDriver driver) {
        return () -> {
            driver.close();
            drivers.remove(driver);
        };
    }

    /** Live update: the unit's and the driver's state; the driver lets the unit go, freeing nothing. */
    private ModeledInstance.Saver saver(String name, VtdHardware hw, VtdDriver driver) {
        return () -> {
            Map<String, long[]> sections = new HashMap<>();
            driver.saveAndLetGo(sections); // first: no interrupt reaches the driver while the unit is saved
            hw.save(sections);
            drivers.remove(driver);
            return new InstanceState(VENDOR, name, VtdDriver.STATE_FORMAT, sections);
        };
    }

    /**
     * Live update: a unit with the configuration of the handed-over one, its registers and queues
     * restored, and a driver that takes over the tables the previous build's driver left in memory.
     */
    @Override
    public void resume(IommuInstance handedOver, InstanceState state) throws IommuException {
        if (!(handedOver instanceof ModeledInstance instance) || !VENDOR.equals(state.vendor())
                || state.format() != VtdDriver.STATE_FORMAT || instance.frames() == null) {
            throw new IommuException(Errno.EINVAL, "not a VT-d state this build understands: " + state);
        }
        Map<String, long[]> sections = StateWords.sections(state);
        VtdHardware hw = new VtdHardware(instance.memory(), VtdConfig.of(instance.configuration()));
        if (instance.guestListener() != null) {
            hw.setGuestListener(instance.guestListener());
        }
        hw.restore(sections);
        VtdDriver driver = VtdDriver.restore(instance.name(), hw, instance.memory(), instance.frames(), sections);
        drivers.add(driver);
        instance.resume(hw, driver, driver.domainsById(), closer(driver), saver(instance.name(), hw, driver));
    }

    @Override
    public void pasidFreed(String owner, int setId, int pasid) {
        for (VtdDriver driver : drivers) {
            driver.pasidFreed(setId, pasid);
        }
    }
}
