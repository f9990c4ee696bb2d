package org.iommulab.platform.internal.registry;

import java.io.InputStream;
import java.net.URL;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.TreeMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.regex.Pattern;

import org.iommulab.api.dto.BackendDTO;
import org.iommulab.api.dto.IommuInstanceDTO;
import org.iommulab.api.errno.Errno;
import org.iommulab.api.errno.IommuException;
import org.iommulab.api.memory.FrameAllocator;
import org.iommulab.api.memory.HostMemory;
import org.iommulab.api.memory.PhysicalMemory;
import org.iommulab.api.spi.InstanceListener;
import org.iommulab.api.spi.IommuBackend;
import org.iommulab.api.spi.IommuInstance;
import org.iommulab.api.spi.IommuRegistry;
import org.iommulab.api.spi.InstanceState;
import org.osgi.framework.Bundle;
import org.osgi.framework.BundleContext;
import org.osgi.framework.Constants;
import org.osgi.service.component.annotations.Activate;
import org.osgi.service.component.annotations.Component;
import org.osgi.service.component.annotations.Deactivate;
import org.osgi.service.component.annotations.Reference;
import org.osgi.service.component.annotations.ReferenceCardinality;
import org.osgi.service.component.annotations.ReferencePolicy;
import org.osgi.service.component.annotations.ReferencePolicyOption;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Tracks backends as they come and go and owns the instances created over host memory. When a
 * backend leaves (its bundle stops), listeners hear of each of its instances before the instance is
 * closed; the registry itself is not re-activated, so instances of other backends live on.
 */
@Component(service = IommuRegistry.class, immediate = true)
public final class IommuRegistryImpl implements IommuRegistry {
    private static final Logger LOG = LoggerFactory.getLogger(IommuRegistryImpl.class);
    private static final Pattern NAME = Pattern.compile("[A-Za-z0-9][A-Za-z0-9._-]{0,63}");

    private final HostMemory memory;
    private final List<InstanceListener> listeners = new CopyOnWriteArrayList<>();
    /** Guarded by this. Vendor id to the backends offering it, first registered first. */
    private final Map<String, List<Registered>> backends = new TreeMap<>();
    /** Guarded by this. */
    private final Map<String, Created> instances = new TreeMap<>();
    /**
     * Orders listener notifications: an instance's "added" is told before its "removed", and never
     * after it (a create racing a destroy of the same name).
     */
    private final Object notifications = new Object();

    private record Registered(IommuBackend backend, long bundleId) {
    }

    /** An instance handed over for a live update of its backend, waiting for the next build. */
    private record Parked(String vendor, InstanceState state, boolean guest) {
    }

    /** Guarded by this. Instances handed over, in hand-over order. */
    private final Map<IommuInstance, Parked> parked = new LinkedHashMap<>();
    /** One live update at a time. */
    private final Object updating = new Object();
    /** Updates a bundle in place; {@code null} outside OSGi. */
    private final BundleUpdater updater;

    /** How a live update replaces a backend's bundle by its next build. */
    @FunctionalInterface
    public interface BundleUpdater {
        /**
         * @param bundleId the backend's bundle
         * @param location the new build's URL, or {@code null} for the bundle's own location
         * @throws Exception as {@code Bundle.update} does
         */
        void update(long bundleId, String location) throws Exception;
    }

    private record Created(IommuInstance instance, IommuBackend backend) {
    }

    /**
     * Instances over guest memory, closed with their backend. Weak: an instance its VMM closed and
     * dropped is forgotten here too.
     */
    private final java.util.Map<IommuInstance, IommuBackend> guests = new java.util.WeakHashMap<>();

    /**
     * @param memory host memory every instance works over
     * @param context the platform bundle's context, to update backend bundles in place
     */
    @Activate
    public IommuRegistryImpl(@Reference HostMemory memory, BundleContext context) {
        this(memory, (bundleId, location) -> {
            Bundle bundle = context.getBundle(bundleId);
            if (bundle == null) {
                throw new IllegalStateException("bundle " + bundleId + " is gone");
            }
            if (location == null) {
                bundle.update();
            } else {
                try (InputStream in = new URL(location).openStream()) {
                    bundle.update(in);
                }
            }
        });
    }

    /**
     * Outside OSGi (unit tests).
     *
     * @param memory host memory every instance works over
     * @param updater how a live update replaces a bundle, or {@code null}: not supported
     */
    public IommuRegistryImpl(HostMemory memory, BundleUpdater updater) {
        this.memory = memory;
        this.updater = updater;
    }

    /** @param memory host memory every instance works over; live update is not supported */
    public IommuRegistryImpl(HostMemory memory) {
        this(memory, (BundleUpdater) null);
    }

    /**
     * @param backend a backend service
     * @param properties its service properties
     */
    @Reference(cardinality = ReferenceCardinality.MULTIPLE, policy = ReferencePolicy.DYNAMIC,
            policyOption = ReferencePolicyOption.GREEDY)
    public void addBackend(IommuBackend backend, Map<String, Object> properties) {
        Object bundle = properties.get(Constants.SERVICE_BUNDLEID);
        long bundleId = bundle instanceof Long ? (Long) bundle : -1;
        synchronized (this) {
            backends.computeIfAbsent(backend.vendor(), v -> new ArrayList<>()).add(new Registered(backend, bundleId));
        }
        LOG.info("IOMMU backend '{}' registered", backend.vendor());
        parkedOf(backend.vendor()).forEach((instance, p) -> resume(backend, instance, p));
    }

    /** Live update: the new build takes a handed-over instance back into service. */
    private void resume(IommuBackend backend, IommuInstance instance, Parked p) {
        try {
            backend.resume(instance, p.state());
        } catch (IommuException | RuntimeException e) {
            LOG.warn("backend '{}' could not resume instance {}: {}", backend.vendor(), instance.name(), e.toString());
            return; // still parked: the update gives up on it when its time is out
        }
        synchronized (this) {
            parked.remove(instance);
            if (p.guest()) {
                guests.put(instance, backend);
            } else {
                instances.put(instance.name(), new Created(instance, backend));
            }
            notifyAll();
        }
        LOG.info("IOMMU instance {} resumed by the new build of '{}'", instance.name(), backend.vendor());
    }

    /** @param backend a backend service that went away: its instances are closed */
    public void removeBackend(IommuBackend backend) {
        List<IommuInstance> orphans = new ArrayList<>();
        synchronized (this) {
            for (List<Registered> offered : backends.values()) {
                offered.removeIf(r -> r.backend() == backend);
            }
            backends.values().removeIf(List::isEmpty);
            instances.values().removeIf(c -> {
                if (c.backend() == backend && !parked.containsKey(c.instance())) {
                    orphans.add(c.instance());
                    return true;
                }
                return false;
            });
            guests.entrySet().removeIf(g -> {
                if (g.getValue() == backend && !parked.containsKey(g.getKey())) {
                    g.getKey().close();
                    return true;
                }
                return false;
            });
        }
        for (IommuInstance instance : orphans) {
            retire(instance);
        }
        LOG.info("IOMMU backend '{}' unregistered, {} instance(s) closed", backend.vendor(), orphans.size());
    }

    /** @param listener a whiteboard listener */
    @Reference(cardinality = ReferenceCardinality.MULTIPLE, policy = ReferencePolicy.DYNAMIC,
            policyOption = ReferencePolicyOption.GREEDY)
    public void addListener(InstanceListener listener) {
        listeners.add(listener);
    }

    /** @param listener a whiteboard listener that went away */
    public void removeListener(InstanceListener listener) {
        listeners.remove(listener);
    }

    @Override
    public IommuInstance create(String vendor, String name, Map<String, String> configuration) throws IommuException {
        if (name == null || !NAME.matcher(name).matches()) {
            throw new IommuException(Errno.EINVAL, "instance name '" + name
                    + "' must be 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit");
        }
        if (configuration == null) {
            throw new IommuException(Errno.EINVAL, "configuration must not be null (use an empty map)");
        }
        IommuInstance instance;
        synchronized (this) {
            if (instances.containsKey(name)) {
                throw new IommuException(Errno.EEXIST, "instance '" + name + "' exists");
            }
            List<Registered> offered = backends.get(vendor);
            if (offered == null || offered.isEmpty()) {
                throw new IommuException(Errno.ENODEV, "no backend for vendor '" + vendor + "' (have " + backends.keySet() + ")");
            }
            IommuBackend backend = offered.get(0).backend();
            try {
                instance = backend.create(name, new LinkedHashMap<>(configuration), memory, memory);
            } catch (RuntimeException e) {
                throw new IommuException(Errno.EINVAL, "backend '" + vendor + "' failed to create '" + name + "': " + e, e);
            }
            instances.put(name, new Created(instance, backend));
        }
        synchronized (notifications) {
            if (instance(name).orElse(null) == instance) {
                for (InstanceListener listener : listeners) {
                    try {
                        listener.instanceAdded(instance);
                    } catch (RuntimeException e) {
                        LOG.warn("instance listener {} failed", listener, e);
                    }
                }
            }
        }
        return instance;
    }

    @Override
    public IommuInstance createGuest(String vendor, String name, Map<String, String> configuration,
            PhysicalMemory guestMemory, FrameAllocator frames) throws IommuException {
        if (configuration == null || guestMemory == null || frames == null) {
            throw new IommuException(Errno.EINVAL, "configuration, memory and frames must not be null");
        }
        IommuBackend backend;
        synchronized (this) {
            List<Registered> offered = backends.get(vendor);
            if (offered == null || offered.isEmpty()) {
                throw new IommuException(Errno.ENODEV, "no backend for vendor '" + vendor + "' (have " + backends.keySet() + ")");
            }
            backend = offered.get(0).backend();
        }
        IommuInstance instance;
        try {
            instance = backend.create(name, new LinkedHashMap<>(configuration), guestMemory, frames);
        } catch (RuntimeException e) {
            throw new IommuException(Errno.EINVAL, "backend '" + vendor + "' failed to create '" + name + "': " + e, e);
        }
        synchronized (this) {
            if (backends.getOrDefault(vendor, List.of()).stream().noneMatch(r -> r.backend() == backend)) {
                instance.close(); // the backend left meanwhile
                throw new IommuException(Errno.ENODEV, "backend '" + vendor + "' left");
            }
            guests.put(instance, backend);
        }
        return instance;
    }

    @Override
    public void destroy(String name) throws IommuException {
        Created removed;
        synchronized (this) {
            removed = instances.remove(name);
        }
        if (removed == null) {
            throw new IommuException(Errno.ENOENT, "no instance '" + name + "'");
        }
        retire(removed.instance());
    }

    private void retire(IommuInstance instance) {
        synchronized (notifications) {
            for (InstanceListener listener : listeners) {
                try {
                    listener.instanceRemoved(instance);
                } catch (RuntimeException e) {
                    LOG.warn("instance listener {} failed", listener, e);
                }
            }
        }
        try {
            instance.close();
        } catch (RuntimeException e) {
            LOG.warn("closing instance {} failed", instance.name(), e);
        }
    }

    @Override
    public List<String> liveUpdate(String vendor, String location) throws IommuException {
        if (updater == null) {
            throw new IommuException(Errno.EOPNOTSUPP, "live update needs the OSGi framework");
        }
        synchronized (updating) {
            Registered current;
            Map<IommuInstance, Boolean> affected = new LinkedHashMap<>();
            synchronized (this) {
                List<Registered> offered = backends.get(vendor);
                if (offered == null || offered.isEmpty()) {
                    throw new IommuException(Errno.ENODEV, "no backend for vendor '" + vendor + "'");
                }
                current = offered.get(0);
                instances.values().forEach(c -> {
                    if (c.backend() == current.backend()) {
                        affected.put(c.instance(), false);
                    }
                });
                guests.forEach((g, b) -> {
                    if (b == current.backend()) {
                        affected.put(g, true);
                    }
                });
            }
            handOverAll(current.backend(), affected);
            try {
                updater.update(current.bundleId(), location);
            } catch (Exception e) {
                if (stillRegistered(current.backend())) {
                    // The bundle never stopped: the running build takes its instances back.
                    resumeParked(current.backend());
                } else {
                    awaitResumed(vendor, 10_000);
                    abandonParked(vendor);
                }
                throw new IommuException(Errno.EIO, "updating the bundle of '" + vendor + "' failed: " + e, e);
            }
            if (!awaitResumed(vendor, 30_000)) {
                abandonParked(vendor);
                throw new IommuException(Errno.ETIMEDOUT, "no build of '" + vendor + "' resumed its instances in 30 s");
            }
            List<String> names = new ArrayList<>();
            affected.keySet().forEach(i -> names.add(i.name()));
            LOG.info("IOMMU backend '{}' updated live, {} instance(s) carried over", vendor, names.size());
            return names;
        }
    }

    /**
     * Hands every instance over and parks it; if one refuses, those handed over already are
     * resumed by the same build and the refusal is reported: nothing changed.
     */
    private void handOverAll(IommuBackend backend, Map<IommuInstance, Boolean> affected) throws IommuException {
        Map<IommuInstance, Parked> done = new LinkedHashMap<>();
        for (Map.Entry<IommuInstance, Boolean> e : affected.entrySet()) {
            try {
                Parked p = new Parked(backend.vendor(), e.getKey().handOver(), e.getValue());
                done.put(e.getKey(), p);
                synchronized (this) {
                    parked.put(e.getKey(), p);
                }
            } catch (IommuException refused) {
                done.forEach((instance, p) -> resume(backend, instance, p));
                throw refused;
            }
        }
    }

    private synchronized boolean stillRegistered(IommuBackend backend) {
        return backends.values().stream().anyMatch(list -> list.stream().anyMatch(r -> r.backend() == backend));
    }

    /** @return the instances handed over by a build of {@code vendor}, in hand-over order */
    private synchronized Map<IommuInstance, Parked> parkedOf(String vendor) {
        Map<IommuInstance, Parked> waiting = new LinkedHashMap<>();
        parked.forEach((instance, p) -> {
            if (p.vendor().equals(vendor)) {
                waiting.put(instance, p);
            }
        });
        return waiting;
    }

    private void resumeParked(IommuBackend backend) {
        parkedOf(backend.vendor()).forEach((instance, p) -> resume(backend, instance, p));
        abandonParked(backend.vendor()); // any it could not resume
    }

    private synchronized boolean awaitResumed(String vendor, long timeoutMs) {
        long deadline = System.currentTimeMillis() + timeoutMs;
        while (parked.values().stream().anyMatch(p -> p.vendor().equals(vendor))) {
            long left = deadline - System.currentTimeMillis();
            if (left <= 0) {
                return false;
            }
            try {
                wait(left);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                return false;
            }
        }
        return true;
    }

    /** The update failed: instances no build resumed leave, as when their backend goes away. */
    private void abandonParked(String vendor) {
        List<IommuInstance> gone = new ArrayList<>();
        synchronized (this) {
            parked.entrySet().removeIf(e -> {
                if (e.getValue().vendor().equals(vendor)) {
                    gone.add(e.getKey());
                    if (e.getValue().guest()) {
                        guests.remove(e.getKey());
                    } else {
                        instances.remove(e.getKey().name());
                    }
                    return true;
                }
                return false;
            });
        }
        for (IommuInstance instance : gone) {
            retire(instance);
        }
    }

    @Override
    public synchronized Optional<IommuInstance> instance(String name) {
        Created c = instances.get(name);
        return c == null ? Optional.empty() : Optional.of(c.instance());
    }

    @Override
    public synchronized List<IommuInstance> instances() {
        List<IommuInstance> list = new ArrayList<>();
        instances.values().forEach(c -> list.add(c.instance()));
        return list;
    }

    @Override
    public synchronized List<BackendDTO> backends() {
        List<BackendDTO> list = new ArrayList<>();
        for (Map.Entry<String, List<Registered>> e : backends.entrySet()) {
            Registered r = e.getValue().get(0);
            BackendDTO dto = new BackendDTO();
            dto.vendor = e.getKey();
            dto.description = r.backend().description();
            dto.defaults = new TreeMap<>(r.backend().defaultConfiguration());
            dto.bundleId = r.bundleId();
            list.add(dto);
        }
        return list;
    }

    @Override
    public List<IommuInstanceDTO> instanceDTOs() {
        List<IommuInstanceDTO> list = new ArrayList<>();
        for (IommuInstance instance : instances()) {
            IommuInstanceDTO dto = new IommuInstanceDTO();
            dto.name = instance.name();
            dto.vendor = instance.vendor();
            dto.configuration = new TreeMap<>(instance.configuration());
            dto.statistics = new TreeMap<>(instance.statistics());
            list.add(dto);
        }
        return list;
    }

    /** Closes every instance; listeners hear of each. */
    @Deactivate
    void deactivate() {
        List<IommuInstance> all;
        synchronized (this) {
            all = instances();
            instances.clear();
        }
        all.forEach(this::retire);
    }
}
