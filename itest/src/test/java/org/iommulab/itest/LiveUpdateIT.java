package org.iommulab.itest;

import static org.junit.Assert.assertArrayEquals;
import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertFalse;
import static org.junit.Assert.assertNotEquals;
import static org.junit.Assert.assertNull;
import static org.junit.Assert.assertSame;
import static org.junit.Assert.assertTrue;

import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;

import javax.inject.Inject;

import org.iommulab.api.idxd.Dsa;
import org.iommulab.api.idxd.IdxdDevice;
import org.iommulab.api.idxd.IdxdService;
import org.iommulab.api.idxd.SubmitStatus;
import org.iommulab.api.idxd.WorkQueueConfig;
import org.iommulab.api.memory.HostMemory;
import org.iommulab.api.spi.IommuInstance;
import org.iommulab.api.spi.IommuRegistry;
import org.iommulab.api.vmm.GuestProcess;
import org.iommulab.api.vmm.Vm;
import org.iommulab.api.vmm.VmManager;
import org.junit.Test;
import org.junit.runner.RunWith;
import org.ops4j.pax.exam.Configuration;
import org.ops4j.pax.exam.Option;
import org.ops4j.pax.exam.junit.PaxExam;
import org.ops4j.pax.exam.spi.reactors.ExamReactorStrategy;
import org.ops4j.pax.exam.spi.reactors.PerMethod;
import org.osgi.framework.Bundle;
import org.osgi.framework.BundleContext;
import org.osgi.framework.wiring.BundleRevision;

/**
 * Live update in the running container: {@code IommuRegistry.liveUpdate} has Felix update the
 * VT-d backend bundle to a new revision (a new class loader, new service objects) while a VM's
 * guest process copies through its mdev. The VM notices nothing: no descriptor fails, the host
 * instance and the VM's virtual IOMMU are the same objects, no listener hears an instance leave,
 * host memory frames are unchanged, and afterwards the new revision serves the guest's page
 * requests and unbind.
 */
@RunWith(PaxExam.class)
@ExamReactorStrategy(PerMethod.class)
public class LiveUpdateIT {
    private static final int VRID = 0x0008;
    private static final long SRC = 0x7000_0000_0000L;
    private static final long DST = 0x7000_0010_0000L;
    private static final long COMP = 0x7000_0020_0000L;
    private static final int SIZE = 0x4000;

    @Inject
    private BundleContext context;

    @Inject
    private IommuRegistry registry;

    @Inject
    private IdxdService idxd;

    @Inject
    private VmManager vmm;

    @Inject
    private HostMemory memory;

    /** @return the container */
    @Configuration
    public Option[] config() {
        return Container.options();
    }

    @Test
    public void theVtdBundleIsUpdatedUnderARunningVm() throws Exception {
        updateUnderARunningVm("vtd", "org.iommulab.vtd-backend");
    }

    /** The same on SMMUv3, with a whole device and the guest's CD table attached through VFIO. */
    @Test
    public void theSmmuv3BundleIsUpdatedUnderARunningVm() throws Exception {
        updateUnderARunningVm("smmuv3", "org.iommulab.smmuv3-backend");
    }

    private void updateUnderARunningVm(String vendor, String bsn) throws Exception {
        List<String> removed = Container.instanceRemovals(context);
        IommuInstance host = registry.create(vendor, "iommu0", Map.of());
        IdxdDevice dsa = idxd.create("dsa0", "iommu0", 0x10);
        dsa.configure(0, WorkQueueConfig.shared(16));
        dsa.enable();
        dsa.enableWq(0);
        Vm vm = vmm.create("vm1", "iommu0", 64L << 20);
        if (vendor.equals("vtd")) {
            vm.assignMdev("dsa0", 0, VRID);
        } else {
            vm.assignDevice("dsa0", VRID);
        }
        vm.guest().probeDevice(VRID);
        GuestProcess p = vm.guest().startProcess("app");
        p.map(SRC, SIZE);
        p.map(DST, SIZE);
        p.map(COMP, 0x1000);
        p.bind(VRID);
        byte[] data = new byte[SIZE];
        new Random(7).nextBytes(data);
        p.write(SRC, data);

        Bundle backend = bundle(bsn);
        BundleRevision before = backend.adapt(BundleRevision.class);
        long frames = memory.stats().allocatedFrames;

        AtomicInteger copies = new AtomicInteger();
        AtomicReference<String> failure = new AtomicReference<>();
        AtomicBoolean running = new AtomicBoolean(true);
        Thread guest = new Thread(() -> {
            try {
                while (running.get()) {
                    Dsa.CompletionRecord c = copy(p, dsa, 0);
                    if (c.status() != Dsa.COMP_SUCCESS) {
                        failure.compareAndSet(null, c.toString());
                    }
                    copies.incrementAndGet();
                }
            } catch (Throwable t) {
                failure.compareAndSet(null, t.toString());
            }
        }, "guest-dma");
        guest.start();
        assertTrue(Container.await(() -> copies.get() >= 3, 10_000));

        List<String> carried = registry.liveUpdate(vendor, null);

        int atUpdate = copies.get();
        assertTrue("the guest keeps copying", Container.await(() -> copies.get() >= atUpdate + 3, 10_000));
        running.set(false);
        guest.join(20_000);
        assertNull("no descriptor failed across the update", failure.get());
        assertEquals(List.of("iommu0", "vm1-viommu"), carried);
        assertNotEquals("a new revision of the bundle runs", before, backend.adapt(BundleRevision.class));
        assertEquals(Bundle.ACTIVE, backend.getState());
        assertTrue("no listener heard an instance leave: " + removed, removed.isEmpty());
        assertSame("consumers keep the same instance", host, registry.instance("iommu0").orElseThrow());
        assertEquals("the update allocated and freed no frame", frames, memory.stats().allocatedFrames);
        assertArrayEquals(data, p.read(DST, SIZE));

        // The new revision serves the guest: a page request, then the unbind.
        p.pageOut(DST + 0x1000, 0x1000);
        assertEquals(Dsa.COMP_SUCCESS, copy(p, dsa, Dsa.FLAG_BOF).status());
        assertTrue(vm.guest().pageRequestsHandled() >= 1);
        p.unbind(VRID);
        assertFalse("the unbind reached the new build",
                host.translate(0x10, p.pasid(), SRC, org.iommulab.api.translation.Access.READ,
                        new org.iommulab.api.translation.Translation()));
        vmm.destroy("vm1");
    }

    private static Dsa.CompletionRecord copy(GuestProcess p, IdxdDevice dsa, int flags) throws Exception {
        p.write(COMP, new byte[32]);
        assertEquals(SubmitStatus.ACCEPTED, p.enqcmd(VRID, Dsa.descriptor(Dsa.OP_MEMMOVE).addr1(SRC).addr2(DST)
                .size(SIZE).completion(COMP).flags(flags | Dsa.FLAG_CRAV | Dsa.FLAG_RCR).build()));
        assertTrue(dsa.awaitIdle(20_000));
        return Dsa.CompletionRecord.decode(p.read(COMP, 32));
    }

    private Bundle bundle(String bsn) {
        return Container.installed(context, bsn);
    }
}
