package org.iommulab.itest;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertFalse;
import static org.junit.Assert.assertTrue;

import java.util.Map;

import javax.inject.Inject;

import org.apache.felix.service.command.CommandProcessor;
import org.iommulab.api.device.DeviceBus;
import org.iommulab.api.device.Requester;
import org.iommulab.api.memory.HostMemory;
import org.iommulab.api.pasid.PasidSpace;
import org.iommulab.api.pasid.Pasids;
import org.iommulab.api.process.HostProcess;
import org.iommulab.api.process.ProcessTable;
import org.iommulab.api.spi.IommuInstance;
import org.iommulab.api.spi.IommuRegistry;
import org.iommulab.api.translation.Access;
import org.iommulab.api.translation.Translation;
import org.iommulab.api.vfio.Vfio;
import org.iommulab.api.vfio.VfioContainer;
import org.iommulab.api.vfio.VfioIommuType;
import org.junit.Test;
import org.junit.runner.RunWith;
import org.ops4j.pax.exam.Configuration;
import org.ops4j.pax.exam.Option;
import org.ops4j.pax.exam.junit.PaxExam;
import org.ops4j.pax.exam.spi.reactors.ExamReactorStrategy;
import org.ops4j.pax.exam.spi.reactors.PerMethod;
import org.osgi.framework.Bundle;
import org.osgi.framework.BundleContext;
import org.osgi.util.tracker.ServiceTracker;

/**
 * The VFIO bundle in the container: its service over both backends through the API only, and what
 * happens to containers when a backend or the VFIO bundle itself stops.
 */
@RunWith(PaxExam.class)
@ExamReactorStrategy(PerMethod.class)
public class VfioIT {
    private static final long WAIT_MS = 10_000;
    private static final int RW = VfioContainer.DMA_MAP_FLAG_READ | VfioContainer.DMA_MAP_FLAG_WRITE;

    @Inject
    private BundleContext context;

    @Inject
    private Vfio vfio;

    @Inject
    private IommuRegistry registry;

    @Inject
    private DeviceBus bus;

    @Inject
    private ProcessTable processes;

    @Inject
    private HostMemory memory;

    @Inject
    private PasidSpace pasids;

    @Inject
    private CommandProcessor processor;

    /** @return the container */
    @Configuration
    public Option[] config() {
        return Container.options();
    }

    @Test
    public void containersMapProcessMemoryBehindEitherBackend() throws Exception {
        Translation t = new Translation();
        for (String vendor : new String[] {"vtd", "smmuv3"}) {
            IommuInstance iommu = registry.create(vendor, vendor + "0", Map.of());
            Requester dev = bus.register(vendor + "-dev", iommu.name(), 0x10, 20, DeviceBus.NEW_GROUP);
            HostProcess vm = processes.create("vm-" + vendor, Long.MAX_VALUE);
            long ram = vm.mmap(1 << 20);
            vm.write64(ram + 0x3008, 0x5a5a_0000L);
            VfioContainer c = vfio.open(vm);
            c.addGroup(dev.groupId());
            c.setIommu(VfioIommuType.TYPE1V2);
            c.mapDma(ram, 0x4000_0000L, 1 << 20, RW);
            assertTrue(vendor + ": " + t, iommu.translate(0x10, Pasids.NO_PASID, 0x4000_3008L, Access.READ, t));
            assertEquals(0x5a5a_0000L, memory.read64(t.outputAddress()));
            assertEquals(1 << 20, c.unmapDma(0, 0, VfioContainer.DMA_UNMAP_FLAG_ALL));
            assertFalse(iommu.translate(0x10, Pasids.NO_PASID, 0x4000_3008L, Access.READ, t));
            assertEquals(0, vm.pinnedPages());
            c.close();
        }
    }

    /** A backend bundle stops under a live container: its groups leave and every pin is released. */
    @Test
    public void aStoppingBackendReleasesTheContainersPins() throws Exception {
        IommuInstance iommu = registry.create("vtd", "vtd0", Map.of());
        Requester dev = bus.register("dsa0", iommu.name(), 0x10, 20, DeviceBus.NEW_GROUP);
        HostProcess vm = processes.create("vm1", Long.MAX_VALUE);
        long ram = vm.mmap(1 << 20);
        VfioContainer c = vfio.open(vm);
        c.addGroup(dev.groupId());
        c.setIommu(VfioIommuType.NESTING);
        c.mapDma(ram, 0, 1 << 20, RW);
        int pasid = c.pasidAlloc(1, 100);
        assertEquals(256, vm.pinnedPages());

        Bundle backend = bundle("org.iommulab.vtd-backend");
        backend.stop();
        assertEquals(0, c.groups().length);
        assertTrue(c.iommuType().isEmpty());
        assertEquals(0, vm.pinnedPages());
        assertEquals(0, vm.lockedPages());
        assertEquals("only the process's own pages stay allocated", vm.toDTO().residentPages, memory.allocatedFrames());
        assertTrue("the PASID set VFIO made for the process is closed", pasids.set("vm1").isEmpty());
        assertTrue(pasids.ownerOf(pasid).isEmpty());

        backend.start();
        assertTrue(Container.await(() -> registry.backends().stream().anyMatch(b -> b.vendor.equals("vtd")), WAIT_MS));
        IommuInstance again = registry.create("vtd", "vtd1", Map.of());
        Requester dev1 = bus.register("dsa1", again.name(), 0x10, 20, DeviceBus.NEW_GROUP);
        c.addGroup(dev1.groupId());
        c.setIommu(VfioIommuType.TYPE1V2);
        c.mapDma(ram, 0, 1 << 20, RW);
        assertTrue(again.translate(0x10, Pasids.NO_PASID, 0x1000, Access.READ, new Translation()));
    }

    /** Stopping the VFIO bundle closes its containers; starting it brings a fresh service and the vfio: commands back. */
    @Test
    public void theVfioBundleStopsAndStarts() throws Exception {
        IommuInstance iommu = registry.create("smmuv3", "smmu0", Map.of());
        Requester dev = bus.register("nic0", iommu.name(), 0x10, 0, DeviceBus.NEW_GROUP);
        HostProcess vm = processes.create("vm1", Long.MAX_VALUE);
        long ram = vm.mmap(1 << 16);
        VfioContainer c = vfio.open(vm);
        c.addGroup(dev.groupId());
        c.setIommu(VfioIommuType.TYPE1V2);
        c.mapDma(ram, 0x10_0000, 1 << 16, RW);

        Bundle bundle = bundle("org.iommulab.vfio-type1");
        bundle.stop();
        assertTrue(c.isClosed());
        assertEquals(0, vm.pinnedPages());
        assertFalse(iommu.translate(0x10, Pasids.NO_PASID, 0x10_0000, Access.READ, new Translation()));

        bundle.start();
        ServiceTracker<Vfio, Vfio> tracker = new ServiceTracker<>(context, Vfio.class, null);
        tracker.open();
        try {
            Vfio fresh = tracker.waitForService(WAIT_MS);
            assertTrue(fresh != null);
            Shell shell = new Shell(processor);
            String id = shell.run("vfio:create vm1").trim();
            shell.run("vfio:attach " + id + " " + dev.groupId());
            assertTrue(shell.run("vfio:map " + id + " 0x100000 0x1000").startsWith("iova 0x100000 size 0x1000"));
            assertTrue(iommu.translate(0x10, Pasids.NO_PASID, 0x10_0000, Access.READ, new Translation()));
        } finally {
            tracker.close();
        }
    }

    private Bundle bundle(String bsn) {
        return Container.installed(context, bsn);
    }
}
