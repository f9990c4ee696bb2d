package org.iommulab.itest;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertTrue;

import java.util.List;

import javax.inject.Inject;

import org.iommulab.api.memory.HostMemory;
import org.iommulab.api.pasid.PasidSpace;
import org.iommulab.api.spi.IommuRegistry;
import org.iommulab.pgtable.PageTableFormat;
import org.iommulab.pgtable.format.ArmGranule;
import org.iommulab.pgtable.format.ArmStage1;
import org.iommulab.pgtable.format.X86FirstStage;
import org.iommulab.testkit.BackendUnderTest;
import org.iommulab.testkit.ConformanceKit;
import org.junit.Test;
import org.junit.runner.RunWith;
import org.ops4j.pax.exam.Configuration;
import org.ops4j.pax.exam.Option;
import org.ops4j.pax.exam.junit.PaxExam;
import org.ops4j.pax.exam.spi.reactors.ExamReactorStrategy;
import org.ops4j.pax.exam.spi.reactors.PerMethod;
import org.osgi.framework.Bundle;
import org.osgi.framework.BundleContext;

/**
 * The backend conformance kit inside the container: each backend's service, through the registry,
 * over host memory, with the platform's PASID sets; then the container-only check, the bundle
 * stopping and starting under a live domain. The guest PASID table writer (SMMUv3's CD table) is
 * a unit-test fixture of the backend, so that check runs in {@code SmmuConformanceTest} only.
 */
@RunWith(PaxExam.class)
@ExamReactorStrategy(PerMethod.class)
public class BackendKitIT {
    private static final long WAIT_MS = 10_000;

    @Inject
    private BundleContext context;

    @Inject
    private IommuRegistry registry;

    @Inject
    private HostMemory memory;

    @Inject
    private PasidSpace pasids;

    /** @return the container with the kit bundle */
    @Configuration
    public Option[] config() {
        return Container.options(Container.reactorBundle("testkit"));
    }

    private BackendUnderTest target(String vendor, PageTableFormat firstStage) {
        return new RegistryTarget(registry, memory, pasids, vendor, firstStage);
    }

    @Test
    public void vtdPassesTheKit() throws Exception {
        List<String> skipped = ConformanceKit.runAll(target("vtd", X86FirstStage.of(4, 48, false, true, true)));
        assertEquals(1, skipped.size());
        assertTrue(skipped.toString(), skipped.get(0).startsWith("pasid-table"));
    }

    @Test
    public void smmuv3PassesTheKit() throws Exception {
        List<String> skipped = ConformanceKit.runAll(target("smmuv3", ArmStage1.of(ArmGranule.G4K, 16, 48, false, false, false)));
        assertEquals(skipped.toString(), 2, skipped.size()); // nested-bind: not declared; pasid-table: fixture not here
    }

    @Test
    public void vtdBundleHotSwapsWithALiveDomain() throws Exception {
        ConformanceKit.hotSwap(target("vtd", null), control("vtd", "org.iommulab.vtd-backend"));
    }

    @Test
    public void smmuv3BundleHotSwapsWithALiveDomain() throws Exception {
        ConformanceKit.hotSwap(target("smmuv3", null), control("smmuv3", "org.iommulab.smmuv3-backend"));
    }

    private ConformanceKit.HotSwapControl control(String vendor, String bsn) {
        List<String> removed = Container.instanceRemovals(context);
        Bundle bundle = Container.installed(context, bsn);
        return new ConformanceKit.HotSwapControl() {
            @Override
            public void stop() throws Exception {
                bundle.stop();
            }

            @Override
            public void start() throws Exception {
                bundle.start();
                assertTrue(Container.await(() -> registry.backends().stream().anyMatch(b -> b.vendor.equals(vendor)), WAIT_MS));
            }

            @Override
            public List<String> removedInstances() {
                return removed;
            }
        };
    }
}
