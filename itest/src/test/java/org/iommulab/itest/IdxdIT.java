package org.iommulab.itest;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertFalse;
import static org.junit.Assert.assertTrue;

import java.util.Map;

import javax.inject.Inject;

import org.iommulab.api.device.DeviceBus;
import org.iommulab.api.idxd.Dsa;
import org.iommulab.api.idxd.IdxdDevice;
import org.iommulab.api.idxd.IdxdService;
import org.iommulab.api.idxd.SubmitStatus;
import org.iommulab.api.idxd.WorkQueueConfig;
import org.iommulab.api.memory.HostMemory;
import org.iommulab.api.spi.DomainType;
import org.iommulab.api.spi.IommuDomain;
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
import org.osgi.util.tracker.ServiceTracker;

/**
 * The mdev-idxd bundle in the container: it stops and starts while a backend stays up, and a
 * backend stops and starts under a live device.
 */
@RunWith(PaxExam.class)
@ExamReactorStrategy(PerMethod.class)
public class IdxdIT {
    private static final long WAIT_MS = 10_000;

    @Inject
    private BundleContext context;

    @Inject
    private IommuRegistry registry;

    @Inject
    private DeviceBus bus;

    @Inject
    private HostMemory memory;

    /** @return the container */
    @Configuration
    public Option[] config() {
        return Container.options();
    }

    /** A device with a dedicated queue and an identity-free domain: IOVA 0x10000 -> HPA 0x40000000. */
    private IdxdDevice device(IdxdService idxd, IommuInstance vtd) throws Exception {
        IdxdDevice dev = idxd.create("dsa0", vtd.name(), 0x10);
        IommuDomain d = vtd.driver().allocateDomain(DomainType.UNMANAGED);
        d.map(0x1_0000, 0x4000_0000L, 0x1_0000, IommuDomain.PROT_READ | IommuDomain.PROT_WRITE);
        vtd.driver().attach(d, 0x10);
        dev.configure(0, WorkQueueConfig.dedicated(4, -1));
        dev.enable();
        dev.enableWq(0);
        return dev;
    }

    private static byte[] fill(long pattern) {
        return Dsa.descriptor(Dsa.OP_MEMFILL).addr1(pattern).addr2(0x1_0000).size(64).completion(0x1_f000).build();
    }

    /** The service; released at once, as a one-off caller would: the devices must outlive that. */
    private IdxdService await() throws InterruptedException {
        ServiceTracker<IdxdService, IdxdService> t = new ServiceTracker<>(context, IdxdService.class, null);
        t.open();
        try {
            return t.waitForService(WAIT_MS);
        } finally {
            t.close();
        }
    }

    @Test
    public void theMdevBundleStopsAndStartsWhileTheBackendStaysUp() throws Exception {
        IommuInstance vtd = registry.create("vtd", "vtd0", Map.of());
        IdxdDevice dev = device(await(), vtd);
        assertEquals(SubmitStatus.ACCEPTED, dev.movdir64b(0, fill(0x0101_0101_0101_0101L)));
        assertTrue(dev.awaitIdle(WAIT_MS));
        assertEquals(0x0101_0101_0101_0101L, memory.read64(0x4000_0000L));

        Bundle idxd = bundle("org.iommulab.mdev-idxd");
        idxd.stop();
        assertFalse("the device left the bus", bus.requester("dsa0").isPresent());
        assertEquals("an unplugged device takes nothing", SubmitStatus.REJECTED, dev.movdir64b(0, fill(2)));
        assertTrue("the backend stays", registry.instance("vtd0").isPresent());

        idxd.start();
        IdxdDevice again = await().create("dsa0", "vtd0", 0x10);
        again.configure(0, WorkQueueConfig.dedicated(4, -1));
        again.enable();
        again.enableWq(0);
        assertEquals(SubmitStatus.ACCEPTED, again.movdir64b(0, fill(0x0202_0202_0202_0202L)));
        assertTrue(again.awaitIdle(WAIT_MS));
        assertEquals("the RID domain stayed attached", 0x0202_0202_0202_0202L, memory.read64(0x4000_0000L));
    }

    @Test
    public void aBackendStopsAndStartsUnderALiveDevice() throws Exception {
        IdxdService idxd = await();
        IommuInstance vtd = registry.create("vtd", "vtd0", Map.of());
        IdxdDevice dev = device(idxd, vtd);
        Bundle backend = bundle("org.iommulab.vtd-backend");
        backend.stop();
        memory.write64(0x4000_0000L, 0);
        assertEquals(SubmitStatus.ACCEPTED, dev.movdir64b(0, fill(3)));
        assertTrue("the device keeps running: its DMA faults", dev.awaitIdle(WAIT_MS));
        assertEquals("nothing reached memory through a closed IOMMU", 0, memory.read64(0x4000_0000L));
        assertEquals(Long.valueOf(1), dev.statistics().get("software-errors"));

        backend.start();
        assertTrue(Container.await(() -> registry.backends().stream().anyMatch(b -> b.vendor.equals("vtd")), WAIT_MS));
        idxd.destroy("dsa0");
        IommuInstance vtd1 = registry.create("vtd", "vtd1", Map.of());
        IdxdDevice fresh = idxd.create("dsa0", vtd1.name(), 0x10);
        assertEquals("vtd1", fresh.iommu());
        assertTrue(bus.requester("dsa0").isPresent());
    }

    private Bundle bundle(String bsn) {
        return Container.installed(context, bsn);
    }
}
