package org.iommulab.vfio.internal;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import java.util.Map;

import org.iommulab.api.errno.Errno;
import org.iommulab.api.errno.IommuException;
import org.iommulab.api.memory.FrameAllocator;
import org.iommulab.api.memory.PhysicalMemory;
import org.iommulab.api.spi.DomainType;
import org.iommulab.api.spi.IommuBackend;
import org.iommulab.api.spi.IommuDomain;
import org.iommulab.api.spi.IommuInstance;
import org.iommulab.api.translation.Access;
import org.iommulab.api.translation.Translation;
import org.iommulab.pgtable.unit.ModeledInstance;
import org.iommulab.smmuv3.internal.SmmuBackend;
import org.iommulab.vtd.internal.driver.VtdDriver;
import org.iommulab.vtd.internal.hw.VtdConfig;
import org.iommulab.vtd.internal.hw.VtdHardware;
import org.junit.jupiter.api.Test;

/**
 * The registry's side of a live update: which instances are carried, what a refusal or a failed
 * bundle update leaves behind. The bundle update itself is {@link VfioStack#updateBundle}, which
 * does to the services what Felix does.
 */
class RegistryLiveUpdateTest {
    final VfioStack stack = new VfioStack();
    final Translation t = new Translation();

    private IommuInstance withMapping(String vendor, String name) throws IommuException {
        IommuInstance instance = stack.instance(vendor, name);
        IommuDomain d = instance.driver().allocateDomain(DomainType.UNMANAGED);
        d.map(0x10_0000, 0x4000_0000L, 0x1000, IommuDomain.PROT_READ);
        instance.driver().attach(d, 0x10);
        return instance;
    }

    @Test
    void onlyTheUpdatedVendorsInstancesAreCarried() throws Exception {
        IommuInstance a = withMapping("vtd", "a");
        IommuInstance b = withMapping("vtd", "b");
        IommuInstance s = withMapping("smmuv3", "s");
        SmmuBackend smmu = stack.smmu;
        assertEquals(List.of("a", "b"), stack.registry.liveUpdate("vtd", null));
        assertSame(smmu, stack.smmu, "the other backend was left alone");
        for (IommuInstance i : List.of(a, b, s)) {
            assertTrue(i.translate(0x10, -1, 0x10_0000, Access.READ, t), i.name() + ": " + t);
        }
        assertEquals(List.of("s"), stack.registry.liveUpdate("smmuv3", null));
        assertEquals(Errno.ENODEV, assertThrows(IommuException.class, () -> stack.registry.liveUpdate("amd", null)).errno());
    }

    @Test
    void aFailedBundleUpdateLeavesTheRunningBuildInCharge() throws Exception {
        IommuInstance a = withMapping("vtd", "a");
        long frames = stack.memory.allocatedFrames();
        assertEquals(Errno.EIO, assertThrows(IommuException.class,
                () -> stack.registry.liveUpdate("vtd", "fail:nowhere.jar")).errno());
        assertSame(a, stack.registry.instance("a").orElseThrow(), "still registered");
        assertTrue(a.translate(0x10, -1, 0x10_0000, Access.READ, t), "resumed by the build that never stopped: " + t);
        assertEquals(frames, stack.memory.allocatedFrames());
        a.driver().allocateDomain(DomainType.BLOCKED); // the driver answers again
    }

    @Test
    void aBackendThatCannotHandOverRefusesBeforeAnythingChanges() throws Exception {
        IommuInstance vtd = withMapping("vtd", "a");
        // A third-party backend built on ModeledInstance without a saver: it cannot hand over.
        IommuBackend plain = new IommuBackend() {
            @Override
            public String vendor() {
                return "plain";
            }

            @Override
            public String description() {
                return "no hand-over";
            }

            @Override
            public Map<String, String> defaultConfiguration() {
                return Map.of();
            }

            @Override
            public IommuInstance create(String name, Map<String, String> configuration, PhysicalMemory memory,
                    FrameAllocator frames) throws IommuException {
                VtdHardware hw = new VtdHardware(memory, VtdConfig.of(Map.of()));
                VtdDriver driver = new VtdDriver(name, hw, memory, frames);
                return new ModeledInstance(name, "plain", hw, driver, memory, driver::close);
            }
        };
        stack.registry.addBackend(plain, Map.of());
        IommuInstance p = stack.instance("plain", "p");
        int updates = stack.bundleUpdates.get();
        assertEquals(Errno.EOPNOTSUPP, assertThrows(IommuException.class, () -> stack.registry.liveUpdate("plain", null)).errno());
        assertEquals(updates, stack.bundleUpdates.get(), "no bundle was touched");
        assertSame(p, stack.registry.instance("p").orElseThrow());
        assertTrue(vtd.translate(0x10, -1, 0x10_0000, Access.READ, t));
    }
}
