package org.iommulab.vfio.internal;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.TreeMap;

import org.iommulab.api.device.DeviceBus;
import org.iommulab.api.errno.Errno;
import org.iommulab.api.errno.IommuException;
import org.iommulab.api.pasid.PasidSet;
import org.iommulab.api.pasid.PasidSpace;
import org.iommulab.api.process.HostProcess;
import org.iommulab.api.spi.InstanceListener;
import org.iommulab.api.spi.IommuInstance;
import org.iommulab.api.spi.IommuRegistry;
import org.iommulab.api.vfio.Vfio;
import org.iommulab.api.vfio.VfioContainer;
import org.osgi.framework.BundleContext;
import org.osgi.framework.ServiceRegistration;
import org.osgi.service.component.annotations.Activate;
import org.osgi.service.component.annotations.Component;
import org.osgi.service.component.annotations.Deactivate;
import org.osgi.service.component.annotations.Modified;
import org.osgi.service.component.annotations.Reference;
import org.osgi.service.metatype.annotations.AttributeDefinition;
import org.osgi.service.metatype.annotations.Designate;
import org.osgi.service.metatype.annotations.ObjectClassDefinition;

/**
 * The VFIO type1 driver as a service: opens containers, owns the group-to-container map and the
 * per-process PASID set references ({@code vfio_mm}), and tells containers when an IOMMU instance
 * departs. Its own monitor guards only those maps; it never calls a container while holding it.
 *
 * <p>The instance listener is registered by hand once the service is up: as a DS-published
 * {@link InstanceListener} it would close a service cycle (the registry binds listeners while this
 * component, which needs the registry, is still activating).
 */
@Component(service = Vfio.class, immediate = true, configurationPid = VfioService.PID)
@Designate(ocd = VfioService.Config.class)
public final class VfioService implements Vfio, VfioContext {
    /** Configuration PID. */
    public static final String PID = "org.iommulab.vfio";

    /** The module parameters of {@code vfio_iommu_type1} and the series' {@code vfio_pasid}. */
    @ObjectClassDefinition(name = "IOMMU Lab VFIO type1", description = "Limits of VFIO containers")
    public @interface Config {
        /** @return the mapping limit of a container */
        @AttributeDefinition(description = "Most DMA mappings one container may hold (dma_entry_limit)")
        int dma_entry_limit() default 65535;

        /** @return the PASID quota of a process */
        @AttributeDefinition(description = "Quota of the PASID set a nesting container creates for its process (pasid_quota)")
        int pasid_quota() default 1000;
    }

    private final DeviceBus bus;
    private final IommuRegistry registry;
    private final PasidSpace pasids;
    private volatile int dmaEntryLimit;
    private volatile int pasidQuota;
    private final TreeMap<Integer, Container> containers = new TreeMap<>();
    private final Map<Integer, Container> groupOwners = new HashMap<>();
    private final Map<String, SetLease> sets = new HashMap<>();
    private int nextId = 1;
    private boolean stopped;
    private PasidSet defaultPasids;

    /** Owner token of VFIO's own PASID set. */
    static final String DEFAULT_PASID_OWNER = "vfio.default-pasids";
    /** How many mediated devices may hold a default PASID at once. */
    private static final int DEFAULT_PASID_QUOTA = 1024;

    /** A reference-counted use of a process's PASID set; a set VFIO created is closed at the last release. */
    static final class SetLease {
        final String owner;
        final PasidSet set;
        final boolean created;
        int refs;

        SetLease(String owner, PasidSet set, boolean created) {
            this.owner = owner;
            this.set = set;
            this.created = created;
        }
    }

    private final ServiceRegistration<InstanceListener> listenerRegistration;

    /**
     * @param bus the device bus
     * @param registry the IOMMU registry
     * @param pasids the PASID space
     * @param config limits
     * @param context the bundle context to register the instance listener in, or {@code null}
     *     (unit tests call {@link #instanceListener()} themselves)
     */
    @Activate
    public VfioService(@Reference DeviceBus bus, @Reference IommuRegistry registry, @Reference PasidSpace pasids,
            Config config, BundleContext context) {
        this.bus = bus;
        this.registry = registry;
        this.pasids = pasids;
        modified(config);
        this.listenerRegistration = context == null ? null
                : context.registerService(InstanceListener.class, instanceListener(), null);
    }

    /**
     * New limits apply to containers opened later, as a changed {@code vfio_iommu_type1} module
     * parameter does; open containers keep theirs.
     *
     * @param config the new limits
     */
    @Modified
    void modified(Config config) {
        this.dmaEntryLimit = Math.max(0, config.dma_entry_limit());
        this.pasidQuota = Math.max(1, config.pasid_quota());
    }

    @Override
    public VfioContainer open(HostProcess owner) throws IommuException {
        if (owner == null) {
            throw new IommuException(Errno.EINVAL, "a container needs an owner process");
        }
        synchronized (this) {
            if (stopped) {
                throw new IommuException(Errno.ENODEV, "VFIO is stopping");
            }
            Container container = new Container(nextId++, owner, this, dmaEntryLimit);
            containers.put(container.id(), container);
            return container;
        }
    }

    @Override
    public synchronized Optional<VfioContainer> container(int id) {
        return Optional.ofNullable(containers.get(id));
    }

    @Override
    public synchronized List<VfioContainer> containers() {
        return new ArrayList<>(containers.values());
    }

    @Override
    public int dmaEntryLimit() {
        return dmaEntryLimit;
    }

    @Override
    public int pasidQuota() {
        return pasidQuota;
    }

    // ---- VfioContext ----------------------------------------------------------------------------

    @Override
    public DeviceBus bus() {
        return bus;
    }

    @Override
    public IommuRegistry registry() {
        return registry;
    }

    /**
     * A group joins one container at a time (EINVAL otherwise, as {@code VFIO_GROUP_SET_CONTAINER}),
     * and its container owns its DMA on the bus, so no requester joins or leaves it meanwhile.
     */
    @Override
    public synchronized void claimGroup(int groupId, Container container) throws IommuException {
        Container holder = groupOwners.get(groupId);
        if (holder != null && holder != container) {
            throw new IommuException(Errno.EINVAL, "group " + groupId + " is in " + holder + " already");
        }
        bus.claimDmaOwner(groupId, container);
        groupOwners.put(groupId, container);
    }

    @Override
    public synchronized void releaseGroup(int groupId, Container container) {
        if (groupOwners.remove(groupId, container)) {
            bus.releaseDmaOwner(groupId, container);
        }
    }

    @Override
    public synchronized SetLease acquirePasidSet(String owner) throws IommuException {
        SetLease lease = sets.get(owner);
        if (lease == null || lease.set.isClosed()) {
            Optional<PasidSet> existing = pasids.set(owner);
            lease = existing.isPresent() ? new SetLease(owner, existing.get(), false)
                    : new SetLease(owner, pasids.createSet(owner, pasidQuota), true);
            sets.put(owner, lease);
        }
        lease.refs++;
        return lease;
    }

    @Override
    public void releasePasidSet(SetLease lease) {
        synchronized (this) {
            if (--lease.refs > 0) {
                return;
            }
            sets.remove(lease.owner, lease);
        }
        if (lease.created) {
            lease.set.close(); // the process's last nesting container is gone: its PASIDs go too
        }
    }

    @Override
    public synchronized PasidSet defaultPasids() throws IommuException {
        if (defaultPasids == null || defaultPasids.isClosed()) {
            defaultPasids = pasids.set(DEFAULT_PASID_OWNER).orElse(null);
            if (defaultPasids == null) {
                defaultPasids = pasids.createSet(DEFAULT_PASID_OWNER, DEFAULT_PASID_QUOTA);
            }
        }
        return defaultPasids;
    }

    @Override
    public synchronized void closed(Container container) {
        containers.remove(container.id());
    }

    // ---- InstanceListener -----------------------------------------------------------------------

    /** @return the listener that tells containers when an IOMMU instance departs */
    InstanceListener instanceListener() {
        return new InstanceListener() {
            @Override
            public void instanceAdded(IommuInstance instance) {
                // New instances serve groups added later.
            }

            @Override
            public void instanceRemoved(IommuInstance instance) {
                departed(instance);
            }
        };
    }

    private void departed(IommuInstance instance) {
        List<Container> open;
        synchronized (this) {
            open = new ArrayList<>(containers.values());
        }
        for (Container c : open) {
            c.instanceRemoved(instance.name());
        }
    }

    /** Every open container is closed, as when the module unloads after its users are gone. */
    @Deactivate
    void deactivate() {
        if (listenerRegistration != null) {
            listenerRegistration.unregister();
        }
        List<VfioContainer> open;
        synchronized (this) {
            stopped = true;
            open = new ArrayList<>(containers.values());
        }
        open.forEach(VfioContainer::close);
        PasidSet defaults;
        synchronized (this) {
            defaults = defaultPasids;
            defaultPasids = null;
        }
        if (defaults != null) {
            defaults.close();
        }
    }
}
