package org.iommulab.vfio.internal;

import java.lang.annotation.Annotation;
import java.util.Map;

import org.iommulab.api.device.Requester;
import org.iommulab.api.errno.IommuException;
import org.iommulab.api.process.HostProcess;
import org.iommulab.api.spi.IommuInstance;
import org.iommulab.api.vfio.VfioContainer;
import org.iommulab.platform.internal.device.DeviceBusImpl;
import org.iommulab.platform.internal.memory.HostMemoryComponent;
import org.iommulab.platform.internal.pasid.PasidSpaceImpl;
import org.iommulab.platform.internal.process.ProcessTableImpl;
import org.iommulab.platform.internal.registry.IommuRegistryImpl;
import org.iommulab.smmuv3.internal.SmmuBackend;
import org.iommulab.vtd.internal.VtdBackend;
import org.osgi.framework.Constants;

/**
 * The platform, both backends and the VFIO service wired by hand as Declarative Services wires
 * them in the container: what a unit test of the VFIO model (and of modules built on it, through
 * this module's test jar) runs against.
 */
public final class VfioStack {
    public final HostMemoryComponent memory;
    public final PasidSpaceImpl pasids = new PasidSpaceImpl();
    public final DeviceBusImpl bus = new DeviceBusImpl();
    public final IommuRegistryImpl registry;
    public final ProcessTableImpl processes;
    /** The backends as registered now: a live update replaces them (bundle ids 1 and 2). */
    public volatile VtdBackend vtd = new VtdBackend();
    public volatile SmmuBackend smmu = new SmmuBackend();
    /** Bundle updates done by {@link #updateBundle}. */
    public final java.util.concurrent.atomic.AtomicInteger bundleUpdates = new java.util.concurrent.atomic.AtomicInteger();
    public final VfioService vfio;

    public VfioStack() {
        this(65535, 1000);
    }

    public VfioStack(int dmaEntryLimit, int pasidQuota) {
        this(dmaEntryLimit, pasidQuota, 1L << 20);
    }

    /** @param poolFrames host memory, in 4 KiB frames */
    public VfioStack(int dmaEntryLimit, int pasidQuota, long poolFrames) {
        memory = new HostMemoryComponent(new HostMemoryComponent.Config() {
            @Override
            public Class<? extends Annotation> annotationType() {
                return HostMemoryComponent.Config.class;
            }

            @Override
            public int addressBits() {
                return 52;
            }

            @Override
            public long poolBase() {
                return 1L << 40;
            }

            @Override
            public long poolFrames() {
                return poolFrames;
            }
        });
        registry = new IommuRegistryImpl(memory, this::updateBundle);
        processes = new ProcessTableImpl(memory);
        registry.addBackend(vtd, Map.of(Constants.SERVICE_BUNDLEID, 1L));
        registry.addBackend(smmu, Map.of(Constants.SERVICE_BUNDLEID, 2L));
        pasids.addListener(vtd);
        vfio = new VfioService(bus, registry, pasids, config(dmaEntryLimit, pasidQuota), null);
        registry.addListener(vfio.instanceListener());
    }

    public static VfioService.Config config(int dmaEntryLimit, int pasidQuota) {
        return new VfioService.Config() {
            @Override
            public Class<? extends Annotation> annotationType() {
                return VfioService.Config.class;
            }

            @Override
            public int dma_entry_limit() {
                return dmaEntryLimit;
            }

            @Override
            public int pasid_quota() {
                return pasidQuota;
            }
        };
    }

    /**
     * What {@code Bundle.update} does to a backend bundle, as Declarative Services sees it: the old
     * build's service goes, a new build's (a new backend object) comes.
     */
    void updateBundle(long bundleId, String location) {
        bundleUpdates.incrementAndGet();
        if (location != null && location.startsWith("fail:")) {
            // What Bundle.update throws for a bad new build: the old one is still installed and running.
            throw new IllegalStateException("cannot read the new build at " + location);
        }
        if (bundleId == 1) {
            pasids.removeListener(vtd);
            registry.removeBackend(vtd);
            vtd = new VtdBackend();
            pasids.addListener(vtd);
            registry.addBackend(vtd, Map.of(Constants.SERVICE_BUNDLEID, 1L));
        } else {
            registry.removeBackend(smmu);
            smmu = new SmmuBackend();
            registry.addBackend(smmu, Map.of(Constants.SERVICE_BUNDLEID, 2L));
        }
    }

    public IommuInstance instance(String vendor, String name) throws IommuException {
        return registry.create(vendor, name, Map.of());
    }

    /** Registers a requester in a group of its own. */
    public Requester device(String name, IommuInstance iommu, int requesterId, int pasidBits) throws IommuException {
        return bus.register(name, iommu.name(), requesterId, pasidBits, DeviceBusImpl.NEW_GROUP);
    }

    public HostProcess process(String name) throws IommuException {
        return processes.create(name, Long.MAX_VALUE);
    }

    /** A container of {@code owner} holding {@code group}, set to {@code type}. */
    public VfioContainer container(HostProcess owner, int group, org.iommulab.api.vfio.VfioIommuType type) throws IommuException {
        VfioContainer c = vfio.open(owner);
        c.addGroup(group);
        c.setIommu(type);
        return c;
    }
}
