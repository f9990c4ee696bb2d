package org.iommulab.sva.internal;

import java.lang.annotation.Annotation;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.function.Supplier;

import org.iommulab.api.errno.IommuException;
import org.iommulab.api.fault.PageResponse;
import org.iommulab.api.spi.DomainType;
import org.iommulab.api.spi.IommuDriver;
import org.iommulab.api.spi.IommuInstance;
import org.iommulab.api.translation.Translation;
import org.iommulab.platform.internal.device.DeviceBusImpl;
import org.iommulab.platform.internal.memory.HostMemoryComponent;
import org.iommulab.platform.internal.pasid.PasidSpaceImpl;
import org.iommulab.platform.internal.process.ProcessTableImpl;
import org.iommulab.platform.internal.registry.IommuRegistryImpl;
import org.iommulab.riscv.internal.RiscvBackend;
import org.iommulab.smmuv3.internal.SmmuBackend;
import org.iommulab.vtd.internal.VtdBackend;
import org.osgi.framework.Constants;

/**
 * The platform, the three backends and the SVA service wired by hand as Declarative Services wires
 * them in the container, plus the device side of the tests: DMA translations and page requests.
 */
final class SvaStack implements AutoCloseable {
    final HostMemoryComponent memory = new HostMemoryComponent(new HostMemoryComponent.Config() {
        @Override
        public Class<? extends Annotation> annotationType() {
            return HostMemoryComponent.Config.class;
        }

        @Override
        public int addressBits() {
            return 48;
        }

        @Override
        public long poolBase() {
            return 1L << 40;
        }

        @Override
        public long poolFrames() {
            return 1L << 16;
        }
    });
    final PasidSpaceImpl pasids = new PasidSpaceImpl();
    final IommuRegistryImpl registry = new IommuRegistryImpl(memory);
    final ProcessTableImpl processes = new ProcessTableImpl(memory);
    final DeviceBusImpl bus = new DeviceBusImpl();
    final VtdBackend vtd = new VtdBackend();
    final SvaServiceImpl sva;

    SvaStack() {
        registry.addBackend(vtd, Map.of(Constants.SERVICE_BUNDLEID, 1L));
        registry.addBackend(new SmmuBackend(), Map.of(Constants.SERVICE_BUNDLEID, 2L));
        registry.addBackend(new RiscvBackend(), Map.of(Constants.SERVICE_BUNDLEID, 3L));
        pasids.addListener(vtd);
        sva = new SvaServiceImpl(registry, memory, processes, null);
        registry.addListener(sva.instanceListener());
        pasids.addListener(sva.pasidListener());
    }

    /**
     * An instance of a vendor with devices {@code requesterIds} attached to an identity domain, as
     * SVA needs on every backend (requests without PASID pass through).
     */
    IommuInstance instance(String vendor, String name, int... requesterIds) throws IommuException {
        IommuInstance i = registry.create(vendor, name, Map.of());
        IommuDriver drv = i.driver();
        var identity = drv.allocateDomain(DomainType.IDENTITY);
        for (int rid : requesterIds) {
            drv.attach(identity, rid);
        }
        return i;
    }

    /** A DMA translation: the output address, or -1 if it faults. */
    static long dma(IommuInstance i, int rid, int pasid, long va, int access) {
        Translation t = new Translation();
        return i.translate(rid, pasid, va, access, t) ? t.outputAddress() : -1;
    }

    /** The device's page request, waiting (bounded) for the response. */
    static PageResponse pageRequest(IommuInstance i, int rid, int pasid, long va, int access, int group) {
        if (!i.pageRequest(rid, pasid, va, access, group)) {
            throw new AssertionError("page requests are not enabled for " + rid);
        }
        return await(() -> i.pageRequestStatus(rid, pasid, group), "the response to group " + group);
    }

    /** Polls until a value comes, for at most 5 s. */
    static <T> T await(Supplier<T> poll, String what) {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(5);
        while (true) {
            T v = poll.get();
            if (v != null) {
                return v;
            }
            if (System.nanoTime() > deadline) {
                throw new AssertionError("no " + what + " within 5 s");
            }
            Thread.onSpinWait();
            Thread.yield();
        }
    }

    @Override
    public void close() {
        sva.deactivate();
        registry.instances().forEach(i -> {
            try {
                registry.destroy(i.name());
            } catch (IommuException e) {
                // gone already
            }
        });
    }
}
