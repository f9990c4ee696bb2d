package org.iommulab.itest;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertFalse;
import static org.junit.Assert.assertTrue;

import java.util.Map;

import javax.inject.Inject;

import org.iommulab.api.fault.PageResponse;
import org.iommulab.api.pasid.PasidSet;
import org.iommulab.api.pasid.PasidSpace;
import org.iommulab.api.process.HostProcess;
import org.iommulab.api.process.ProcessTable;
import org.iommulab.api.spi.DomainType;
import org.iommulab.api.spi.IommuInstance;
import org.iommulab.api.spi.IommuRegistry;
import org.iommulab.api.sva.SvaBond;
import org.iommulab.api.sva.SvaService;
import org.iommulab.api.translation.Access;
import org.iommulab.api.translation.Translation;
import org.junit.Test;
import org.junit.runner.RunWith;
import org.ops4j.pax.exam.Configuration;
import org.ops4j.pax.exam.Option;
import org.ops4j.pax.exam.junit.PaxExam;
import org.ops4j.pax.exam.spi.reactors.ExamReactorStrategy;
import org.ops4j.pax.exam.spi.reactors.PerMethod;

/**
 * The SVA bundle in the container: its service binds a host process behind VT-d and SMMUv3, resolves
 * a page request, and hears of a set closing, an IOMMU leaving and a process exiting through the
 * listeners it registers.
 */
@RunWith(PaxExam.class)
@ExamReactorStrategy(PerMethod.class)
public class SvaIT {
    private static final long WAIT_MS = 10_000;
    private static final int RID = 0x18;

    @Inject
    private SvaService sva;

    @Inject
    private IommuRegistry registry;

    @Inject
    private ProcessTable processes;

    @Inject
    private PasidSpace pasids;

    /** @return the container */
    @Configuration
    public Option[] config() {
        return Container.options();
    }

    @Test
    public void aProcessSharesItsAddressSpaceBehindEitherBackend() throws Exception {
        Translation t = new Translation();
        for (String vendor : new String[] {"vtd", "smmuv3"}) {
            IommuInstance io = registry.create(vendor, "sva-" + vendor, Map.of());
            io.driver().attach(io.driver().allocateDomain(DomainType.IDENTITY), RID);
            HostProcess p = processes.create("app-" + vendor, Long.MAX_VALUE);
            long a = p.mmap(2 * 4096);
            p.write64(a, 0x5a);
            PasidSet set = pasids.createSet("app-" + vendor, 2);
            SvaBond bond = sva.bind(p, io.name(), RID, set);
            assertTrue(io.translate(RID, bond.pasid(), a, Access.READ, t));
            assertEquals(p.residentAddress(a), t.outputAddress());
            assertFalse(io.translate(RID, bond.pasid(), a + 4096, Access.WRITE, t));
            assertTrue(io.pageRequest(RID, bond.pasid(), a + 4096, Access.WRITE, 1));
            assertEquals(PageResponse.SUCCESS, awaitResponse(io, bond.pasid(), 1));
            assertTrue(io.translate(RID, bond.pasid(), a + 4096, Access.WRITE, t));
            set.close();
            assertFalse("closing the set unbinds", bond.isBound());
            PasidSet again = pasids.createSet("again-" + vendor, 2);
            SvaBond b2 = sva.bind(p, io.name(), RID, again);
            processes.exit(p.name());
            assertFalse("the exit unbinds", b2.isBound());
            assertEquals(0, again.size());
            SvaBond b3 = sva.bind(processes.create("late-" + vendor, Long.MAX_VALUE), io.name(), RID, again);
            registry.destroy(io.name());
            assertFalse("the IOMMU leaving unbinds", b3.isBound());
            assertTrue(sva.bonds().isEmpty());
            again.close();
        }
    }

    private static PageResponse awaitResponse(IommuInstance io, int pasid, int group) throws InterruptedException {
        long deadline = System.currentTimeMillis() + WAIT_MS;
        while (System.currentTimeMillis() < deadline) {
            PageResponse r = io.pageRequestStatus(RID, pasid, group);
            if (r != null) {
                return r;
            }
            Thread.sleep(1);
        }
        throw new AssertionError("no page response within " + WAIT_MS + " ms");
    }
}
