package org.iommulab.itest;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertFalse;
import static org.junit.Assert.assertTrue;
import static org.junit.Assert.fail;

import java.lang.reflect.Method;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;

import javax.inject.Inject;

import org.apache.felix.service.command.CommandProcessor;
import org.iommulab.api.spi.InstanceListener;
import org.iommulab.api.spi.IommuBackend;
import org.iommulab.api.spi.IommuInstance;
import org.iommulab.api.spi.IommuRegistry;
import org.junit.Test;
import org.junit.runner.RunWith;
import org.ops4j.pax.exam.Configuration;
import org.ops4j.pax.exam.Option;
import org.ops4j.pax.exam.junit.PaxExam;
import org.ops4j.pax.exam.spi.reactors.ExamReactorStrategy;
import org.ops4j.pax.exam.spi.reactors.PerMethod;
import org.osgi.framework.Bundle;
import org.osgi.framework.BundleContext;
import org.osgi.framework.ServiceReference;
import org.osgi.framework.ServiceRegistration;
import org.osgi.service.component.runtime.ServiceComponentRuntime;
import org.osgi.service.component.runtime.dto.ComponentConfigurationDTO;
import org.osgi.service.component.runtime.dto.ComponentDescriptionDTO;

/**
 * Hot swap: a provider goes away and comes back while its consumer stays active and keeps its
 * state. A fresh container per test, since the tests stop bundles.
 */
@RunWith(PaxExam.class)
@ExamReactorStrategy(PerMethod.class)
public class HotSwapIT {
    private static final long WAIT_MS = 10_000;

    @Inject
    private BundleContext context;

    @Inject
    private ServiceComponentRuntime scr;

    @Inject
    private CommandProcessor processor;

    /** @return the container */
    @Configuration
    public Option[] config() {
        return Container.options();
    }

    /** The launcher's demo command consumes the platform services through dynamic references. */
    @Test
    public void platformBundleStopsAndStartsUnderItsConsumer() throws Exception {
        Shell shell = new Shell(processor);
        assertTrue(shell.run("demo").contains("== demo complete =="));
        Object demo = service("org.iommulab.launcher.internal.demo.DemoCommand");
        long configId = configurationId("org.iommulab.launcher.internal.demo.DemoCommand");
        assertEquals(1, call(demo, "runs"));

        Bundle platform = bundle("org.iommulab.platform");
        platform.stop();
        assertTrue("demo command unbinds the platform", Container.await(() -> !(Boolean) callUnchecked(demo, "platformBound"), WAIT_MS));
        try {
            shell.run("demo");
            fail("demo ran without the platform");
        } catch (Exception e) {
            assertTrue(e.toString(), e.toString().contains("platform services are not available"));
        }

        platform.start();
        assertTrue("demo command rebinds the platform", Container.await(() -> (Boolean) callUnchecked(demo, "platformBound"), WAIT_MS));
        assertEquals("the consumer was not re-activated", configId,
                configurationId("org.iommulab.launcher.internal.demo.DemoCommand"));
        assertEquals("the consumer kept its state", 1, call(demo, "runs"));
        assertTrue(shell.run("demo").contains("== demo complete =="));
        assertEquals(2, call(demo, "runs"));
    }

    /** The IOMMU registry tracks backend services; when one leaves, its instances are closed and listeners told. */
    @Test
    public void backendComesAndGoesUnderTheRegistry() throws Exception {
        IommuRegistry registry = context.getService(context.getServiceReference(IommuRegistry.class));
        long registryId = configurationId("org.iommulab.platform.internal.registry.IommuRegistryImpl");
        List<String> removed = new CopyOnWriteArrayList<>();
        List<String> added = new CopyOnWriteArrayList<>();
        context.registerService(InstanceListener.class, new InstanceListener() {
            @Override
            public void instanceAdded(IommuInstance instance) {
                added.add(instance.name());
            }

            @Override
            public void instanceRemoved(IommuInstance instance) {
                removed.add(instance.name());
            }
        }, null);

        ServiceRegistration<IommuBackend> reg = context.registerService(IommuBackend.class, new FakeBackend(), null);
        Shell shell = new Shell(processor);
        assertTrue(shell.run("iommu:list").contains("backend it-fake integration-test double"));
        assertEquals("fake0", shell.run("iommu:create it-fake fake0").trim());
        assertEquals(List.of("fake0"), added);
        shell.run("mmio:write fake0 0x8 0x1234 8");
        assertEquals("0x0000000000001234", shell.run("mmio:read fake0 0x8 8").trim());
        assertEquals("0x1000", shell.run("dma:translate fake0 0x10 0x1000").trim());
        assertEquals("fault 0x11 F_ADDR_SIZE", shell.run("dma:translate fake0 0x10 0x100000000").trim());
        FakeBackend.Instance instance = (FakeBackend.Instance) registry.instance("fake0").orElseThrow();

        reg.unregister();
        assertEquals(List.of("fake0"), removed);
        assertTrue("the departing backend's instance is closed", instance.closed.get());
        assertFalse(registry.instance("fake0").isPresent());
        assertFalse(shell.run("iommu:list").contains("it-fake"));
        try {
            shell.run("iommu:create it-fake fake1");
            fail("created an instance of a departed backend");
        } catch (Exception e) {
            assertTrue(e.toString(), e.toString().contains("ENODEV"));
        }

        context.registerService(IommuBackend.class, new FakeBackend(), null);
        assertEquals("fake1", shell.run("iommu:create it-fake fake1").trim());
        assertEquals("the registry was not re-activated", registryId,
                configurationId("org.iommulab.platform.internal.registry.IommuRegistryImpl"));
    }

    /** The VT-d backend bundle stops under a consumer holding an instance, then comes back. */
    @Test
    public void vtdBackendBundleStopsAndStartsUnderItsConsumers() throws Exception {
        IommuRegistry registry = context.getService(context.getServiceReference(IommuRegistry.class));
        long registryId = configurationId("org.iommulab.platform.internal.registry.IommuRegistryImpl");
        List<String> removed = Container.instanceRemovals(context);
        Shell shell = new Shell(processor);
        assertEquals("vtd0", shell.run("iommu:create vtd vtd0").trim());
        IommuInstance held = registry.instance("vtd0").orElseThrow();
        // The unit answers its registers: CAP.SAGAW advertises 39-, 48- and 57-bit second stages.
        assertEquals(0xe, (held.mmioRead(0x8, 8) >>> 8) & 0x1f);

        Bundle vtd = bundle("org.iommulab.vtd-backend");
        vtd.stop();
        assertEquals("the consumer is told before the instance closes", List.of("vtd0"), removed);
        assertFalse(registry.instance("vtd0").isPresent());
        try {
            held.mmioRead(0x8, 8);
            fail("a closed instance answered");
        } catch (org.iommulab.api.errno.IommuException e) {
            assertEquals(org.iommulab.api.errno.Errno.ENODEV, e.errno());
        }
        org.iommulab.api.translation.Translation t = new org.iommulab.api.translation.Translation();
        assertFalse("DMA through a closed unit faults", held.translate(0x10, -1, 0x1000, 1, t));

        vtd.start();
        assertTrue(Container.await(() -> registry.backends().stream().anyMatch(b -> b.vendor.equals("vtd")), WAIT_MS));
        assertEquals("vtd1", shell.run("iommu:create vtd vtd1").trim());
        assertEquals(registryId, configurationId("org.iommulab.platform.internal.registry.IommuRegistryImpl"));
    }

    /** The SMMUv3 backend bundle stops under a consumer holding an instance, then comes back. */
    @Test
    public void smmuv3BackendBundleStopsAndStartsUnderItsConsumers() throws Exception {
        IommuRegistry registry = context.getService(context.getServiceReference(IommuRegistry.class));
        Shell shell = new Shell(processor);
        assertEquals("smmu0", shell.run("iommu:create smmuv3 smmu0").trim());
        IommuInstance held = registry.instance("smmu0").orElseThrow();
        assertEquals("IDR0.S2P", 1L, held.mmioRead(0x0, 4) & 1);
        Bundle smmu = bundle("org.iommulab.smmuv3-backend");
        smmu.stop();
        assertFalse(registry.instance("smmu0").isPresent());
        try {
            held.mmioRead(0x0, 4);
            fail("a closed instance answered");
        } catch (org.iommulab.api.errno.IommuException e) {
            assertEquals(org.iommulab.api.errno.Errno.ENODEV, e.errno());
        }
        smmu.start();
        assertTrue(Container.await(() -> registry.backends().stream().anyMatch(b -> b.vendor.equals("smmuv3")), WAIT_MS));
        assertEquals("smmu1", shell.run("iommu:create smmuv3 smmu1").trim());
    }

    private Bundle bundle(String bsn) {
        return Container.installed(context, bsn);
    }

    private Object service(String className) throws Exception {
        ServiceReference<?>[] refs = context.getServiceReferences(className, null);
        assertTrue("service " + className, refs != null && refs.length == 1);
        return context.getService(refs[0]);
    }

    private long configurationId(String componentName) {
        for (ComponentDescriptionDTO d : scr.getComponentDescriptionDTOs()) {
            if (d.name.equals(componentName)) {
                for (ComponentConfigurationDTO c : scr.getComponentConfigurationDTOs(d)) {
                    return c.id;
                }
            }
        }
        throw new AssertionError("no active configuration of " + componentName);
    }

    private static Object call(Object target, String method) throws Exception {
        Method m = target.getClass().getMethod(method);
        return m.invoke(target);
    }

    private static Object callUnchecked(Object target, String method) {
        try {
            return call(target, method);
        } catch (Exception e) {
            throw new IllegalStateException(e);
        }
    }
}
