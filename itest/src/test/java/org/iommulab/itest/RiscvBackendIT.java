package org.iommulab.itest;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertFalse;
import static org.junit.Assert.assertTrue;

import java.io.File;
import java.util.List;
import java.util.Map;

import javax.inject.Inject;

import org.iommulab.api.errno.Errno;
import org.iommulab.api.errno.IommuException;
import org.iommulab.api.memory.HostMemory;
import org.iommulab.api.nesting.PasidTableConfig;
import org.iommulab.api.pasid.PasidSpace;
import org.iommulab.api.spi.DomainType;
import org.iommulab.api.spi.IommuDomain;
import org.iommulab.api.spi.IommuInstance;
import org.iommulab.api.spi.IommuRegistry;
import org.iommulab.pgtable.format.RiscvPaging;
import org.iommulab.testkit.BackendUnderTest;
import org.iommulab.testkit.ConformanceKit;
import org.iommulab.testkit.GuestMemory;
import org.iommulab.testkit.GuestPasidTable;
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
 * The third backend as a third party ships it: the RISC-V IOMMU bundle is not part of the
 * container; the test installs it into the running framework, the backend registers, passes every
 * check of the conformance kit through the registry over host memory (the guest process-directory
 * table written here from the spec's layout, as a guest driver would), survives a stop and start
 * with a live domain, and leaves cleanly when uninstalled.
 */
@RunWith(PaxExam.class)
@ExamReactorStrategy(PerMethod.class)
public class RiscvBackendIT {
    private static final long WAIT_MS = 10_000;
    private static final String VENDOR = "riscv";
    /** The guest process context's PSCID (the architecture id its translations are tagged with). */
    private static final int GUEST_PSCID = 0x42;

    @Inject
    private BundleContext context;

    @Inject
    private IommuRegistry registry;

    @Inject
    private HostMemory memory;

    @Inject
    private PasidSpace pasids;

    /** @return the container with the kit bundle, and without the RISC-V backend */
    @Configuration
    public Option[] config() {
        return Container.options(Container.reactorBundle("testkit"));
    }

    private Bundle installRiscv() throws Exception {
        assertFalse("the container starts without the RISC-V backend", hasBackend());
        String path = System.getProperty("bundle.riscv-backend");
        Bundle b = context.installBundle(new File(path).toURI().toString());
        b.start();
        assertTrue("the backend registers once its bundle starts", Container.await(this::hasBackend, WAIT_MS));
        return b;
    }

    private boolean hasBackend() {
        return registry.backends().stream().anyMatch(b -> b.vendor.equals(VENDOR));
    }

    /** The backend through the registry, with a guest PASID table written as a guest driver would. */
    private BackendUnderTest target() throws IommuException {
        return new RegistryTarget(registry, memory, pasids, VENDOR, RiscvPaging.firstStage(RiscvPaging.Mode.SV48, 52, true, false, true)) {
            /** A PD8 process-directory table: PC = {ta: V, PSCID 31:12; fsc: MODE 63:60 = Sv48 (9), PPN 43:0}. */
            @Override
            public GuestPasidTable writeGuestPasidTable(GuestMemory guest, int pasid, long firstStageRoot) throws IommuException {
                long pdt = guest.allocateFrames(1);
                long pc = pdt + 16L * pasid;
                guest.write64(pc + 8, 9L << 60 | firstStageRoot >>> 12);
                guest.write64(pc, 1 | (long) GUEST_PSCID << 12);
                return new GuestPasidTable(new PasidTableConfig("riscv-iommu", pdt, 8, PasidTableConfig.TRANSLATE, 0, 1),
                        GUEST_PSCID);
            }
        };
    }

    @Test
    public void installedIntoTheRunningContainerItPassesTheKit() throws Exception {
        Bundle b = installRiscv();
        List<String> skipped = ConformanceKit.runAll(target());
        assertEquals(skipped.toString(), 1, skipped.size());
        assertTrue(skipped.toString(), skipped.get(0).startsWith("nested-bind"));
        b.uninstall();
        assertTrue(Container.await(() -> !hasBackend(), WAIT_MS));
    }

    @Test
    public void itHotSwapsWithALiveDomainAndLeavesWhenUninstalled() throws Exception {
        Bundle b = installRiscv();
        List<String> removed = Container.instanceRemovals(context);
        ConformanceKit.hotSwap(target(), new ConformanceKit.HotSwapControl() {
            @Override
            public void stop() throws Exception {
                b.stop();
            }

            @Override
            public void start() throws Exception {
                b.start();
                assertTrue(Container.await(RiscvBackendIT.this::hasBackend, WAIT_MS));
            }

            @Override
            public List<String> removedInstances() {
                return removed;
            }
        });
        long baseline = memory.allocatedFrames();
        IommuInstance left = registry.create(VENDOR, "riscv-left", Map.of());
        IommuDomain d = left.driver().allocateDomain(DomainType.UNMANAGED);
        d.map(0x10_0000, 1L << 31, 0x1000, IommuDomain.PROT_READ);
        left.driver().attach(d, 0x10);
        assertTrue("the driver allocated its queues, directory and table", memory.allocatedFrames() > baseline);
        b.uninstall();
        assertTrue("the registry forgets the backend", Container.await(() -> !hasBackend(), WAIT_MS));
        assertTrue("consumers heard the instance leave", removed.contains("riscv-left"));
        assertEquals("every frame is back", baseline, memory.allocatedFrames());
        try {
            registry.create(VENDOR, "riscv-gone", Map.of());
            throw new AssertionError("created an instance of an uninstalled backend");
        } catch (IommuException e) {
            assertEquals(Errno.ENODEV, e.errno());
        }
        assertFalse(left.toString(), registry.instances().stream().anyMatch(i -> i.name().equals("riscv-left")));
    }
}
