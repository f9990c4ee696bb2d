package org.iommulab.idxd.internal;

import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.TreeMap;

import org.iommulab.api.device.DeviceBus;
import org.iommulab.api.errno.Errno;
import org.iommulab.api.errno.IommuException;
import org.iommulab.api.idxd.IdxdDevice;
import org.iommulab.api.idxd.IdxdService;
import org.iommulab.api.idxd.Mdev;
import org.iommulab.api.spi.IommuInstance;
import org.iommulab.api.spi.IommuRegistry;
import org.iommulab.idxd.internal.hw.DsaDevice;
import org.iommulab.idxd.internal.mdev.MdevImpl;
import org.osgi.service.component.annotations.Activate;
import org.osgi.service.component.annotations.Component;
import org.osgi.service.component.annotations.Deactivate;
import org.osgi.service.component.annotations.Reference;

/**
 * The IDXD devices of the host: plugging a device registers its requester on the device bus;
 * stopping the service unplugs them all. Immediate: the devices live as long as the bundle, not as
 * long as someone happens to hold the service. One monitor guards the name maps.
 */
@Component(service = IdxdService.class, immediate = true)
public final class IdxdServiceImpl implements IdxdService {
    /** PASID width of the device's PASID capability. */
    private static final int PASID_BITS = 20;

    private final IommuRegistry registry;
    private final DeviceBus bus;
    private final TreeMap<String, IdxdDeviceImpl> devices = new TreeMap<>();
    private final TreeMap<String, MdevImpl> mdevs = new TreeMap<>();

    /**
     * @param registry the IOMMU registry
     * @param bus the device bus
     */
    @Activate
    public IdxdServiceImpl(@Reference IommuRegistry registry, @Reference DeviceBus bus) {
        this.registry = registry;
        this.bus = bus;
    }

    @Override
    public IdxdDevice create(String name, String iommu, int requesterId) throws IommuException {
        IommuInstance instance = registry.instance(iommu)
                .orElseThrow(() -> new IommuException(Errno.ENODEV, "no IOMMU instance '" + iommu + "'"));
        synchronized (this) {
            if (devices.containsKey(name)) {
                throw new IommuException(Errno.EEXIST, "device '" + name + "' exists");
            }
            bus.register(name, iommu, requesterId, PASID_BITS, DeviceBus.NEW_GROUP);
            IdxdDeviceImpl device = new IdxdDeviceImpl(new DsaDevice(name, instance, requesterId), this);
            devices.put(name, device);
            return device;
        }
    }

    @Override
    public void destroy(String name) throws IommuException {
        IdxdDeviceImpl device;
        synchronized (this) {
            device = devices.get(name);
            if (device == null) {
                throw new IommuException(Errno.ENOENT, "no device '" + name + "'");
            }
            bus.unregister(name); // EBUSY while a VFIO container holds its group: nothing changes then
            devices.remove(name);
        }
        device.close();
    }

    @Override
    public synchronized Optional<IdxdDevice> device(String name) {
        return Optional.ofNullable(devices.get(name));
    }

    @Override
    public synchronized List<IdxdDevice> devices() {
        return new ArrayList<>(devices.values());
    }

    DeviceBus bus() {
        return bus;
    }

    @Override
    public synchronized Optional<Mdev> mdev(String name) {
        return Optional.ofNullable(mdevs.get(name));
    }

    @Override
    public synchronized List<Mdev> mdevs() {
        return new ArrayList<>(mdevs.values());
    }

    /** @throws IommuException {@code EEXIST} for a taken mdev name */
    synchronized void register(MdevImpl mdev) throws IommuException {
        if (mdevs.containsKey(mdev.name())) {
            throw new IommuException(Errno.EEXIST, "mdev '" + mdev.name() + "' exists");
        }
        mdevs.put(mdev.name(), mdev);
    }

    synchronized void forget(MdevImpl mdev) {
        mdevs.remove(mdev.name(), mdev);
    }

    /** Every device is unplugged when the bundle stops. */
    @Deactivate
    public void deactivate() {
        List<IdxdDeviceImpl> all;
        synchronized (this) {
            all = new ArrayList<>(devices.values());
            devices.clear();
        }
        for (IdxdDeviceImpl d : all) {
            d.close();
            try {
                bus.unregister(d.name());
            } catch (IommuException e) {
                // EBUSY: a container still holds the group; the requester stays until it lets go
            }
        }
    }
}
