package org.iommulab.itest;

import static org.junit.Assert.assertArrayEquals;
import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertFalse;
import static org.junit.Assert.assertTrue;

import java.util.Map;
import java.util.Random;

import javax.inject.Inject;

import org.iommulab.api.dto.WalkStepDTO;
import org.iommulab.api.idxd.Dsa;
import org.iommulab.api.idxd.IdxdDevice;
import org.iommulab.api.idxd.IdxdService;
import org.iommulab.api.idxd.SubmitStatus;
import org.iommulab.api.idxd.WorkQueueConfig;
import org.iommulab.api.pasid.PasidSpace;
import org.iommulab.api.spi.IommuInstance;
import org.iommulab.api.spi.IommuRegistry;
import org.iommulab.api.translation.Access;
import org.iommulab.api.translation.Translation;
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

/**
 * The demo's steps as container tests on VT-d, through the OSGi services only: the host PASID entry
 * the VMM caused, the copy in guest memory, the fault and page-request flow, isolation.
 */
@RunWith(PaxExam.class)
@ExamReactorStrategy(PerMethod.class)
public class VmmIT {
    private static final int VRID = 0x0008;
    private static final long SRC = 0x7000_0000_0000L;
    private static final long DST = 0x7000_0010_0000L;
    private static final long COMP = 0x7000_0020_0000L;

    @Inject
    private IommuRegistry registry;

    @Inject
    private IdxdService idxd;

    @Inject
    private VmManager vmm;

    @Inject
    private PasidSpace pasids;

    /** @return the container */
    @Configuration
    public Option[] config() {
        return Container.options();
    }

    private IdxdDevice dsa() throws Exception {
        IdxdDevice dsa = idxd.create("dsa0", "vtd0", 0x10);
        dsa.configure(0, WorkQueueConfig.shared(16));
        dsa.enable();
        dsa.enableWq(0);
        return dsa;
    }

    private static GuestProcess process(Vm vm) throws Exception {
        vm.assignMdev("dsa0", 0, VRID);
        vm.guest().probeDevice(VRID);
        GuestProcess p = vm.guest().startProcess("app");
        p.map(SRC, 0x4000);
        p.map(DST, 0x4000);
        p.map(COMP, 0x1000);
        p.bind(VRID);
        return p;
    }

    private static Dsa.CompletionRecord copy(GuestProcess p, IdxdDevice dsa, int flags) throws Exception {
        p.write(COMP, new byte[32]);
        assertEquals(SubmitStatus.ACCEPTED, p.enqcmd(VRID, Dsa.descriptor(Dsa.OP_MEMMOVE).addr1(SRC).addr2(DST)
                .size(0x4000).completion(COMP).flags(flags | Dsa.FLAG_CRAV | Dsa.FLAG_RCR).build()));
        assertTrue(dsa.awaitIdle(20_000));
        return Dsa.CompletionRecord.decode(p.read(COMP, 32));
    }

    @Test
    public void theGuestBindsCopiesFaultsAndAnswersThePageRequest() throws Exception {
        IommuInstance host = registry.create("vtd", "vtd0", Map.of());
        IdxdDevice dsa = dsa();
        Vm vm = vmm.create("vm1", "vtd0", 64L << 20);
        GuestProcess p = process(vm);

        boolean nested = false;
        for (WalkStepDTO step : host.explain(0x10, p.pasid(), SRC, Access.READ)) {
            nested |= step.toString().contains("PASID entry " + p.pasid()) && step.toString().contains("PGTT 3");
        }
        assertTrue("the VMM made the host PASID entry nested", nested);

        byte[] data = new byte[0x4000];
        new Random(1).nextBytes(data);
        p.write(SRC, data);
        assertEquals(Dsa.COMP_SUCCESS, copy(p, dsa, 0).status());
        assertArrayEquals(data, p.read(DST, data.length));

        p.pageOut(DST + 0x2000, 0x1000);
        assertFalse(host.translate(0x10, p.pasid(), DST + 0x2000, Access.WRITE, new Translation()));
        new Random(2).nextBytes(data);
        p.write(SRC, data);
        assertEquals(Dsa.COMP_SUCCESS, copy(p, dsa, Dsa.FLAG_BOF).status());
        assertEquals(1, vm.guest().pageRequestsHandled());
        assertArrayEquals(data, p.read(DST, data.length));

        vmm.destroy("vm1");
        assertFalse("the VM's PASID set went with it", pasids.set("vm1").isPresent());
        assertFalse(host.translate(0x10, p.pasid(), SRC, Access.READ, new Translation()));
    }

    @Test
    public void aGuestCannotUseAPasidTheHostDidNotGiveIt() throws Exception {
        registry.create("vtd", "vtd0", Map.of());
        dsa();
        Vm a = vmm.create("vm1", "vtd0", 32L << 20);
        Vm b = vmm.create("vm2", "vtd0", 32L << 20);
        GuestProcess pa = process(a);
        GuestProcess pb = process(b);
        assertEquals(SubmitStatus.REJECTED, a.devices().get(0).enqcmd(Dsa.descriptor(Dsa.OP_NOOP).build(), pb.pasid()));
        assertTrue(pa.pasid() != pb.pasid());
    }

    /** The SMMUv3 half: a whole device, the guest's CD table handed to the host, PRI answered by the guest. */
    @Test
    public void onSmmuv3TheGuestsCdTableIsHandedToTheHost() throws Exception {
        IommuInstance host = registry.create("smmuv3", "smmu0", Map.of());
        IdxdDevice dsa = idxd.create("dsa0", "smmu0", 0x10);
        dsa.configure(0, WorkQueueConfig.shared(16));
        dsa.enable();
        dsa.enableWq(0);
        Vm vm = vmm.create("vm1", "smmu0", 64L << 20);
        vm.assignDevice("dsa0", VRID);
        vm.guest().probeDevice(VRID);
        GuestProcess p = vm.guest().startProcess("app");
        p.map(SRC, 0x4000);
        p.map(DST, 0x4000);
        p.map(COMP, 0x1000);
        p.bind(VRID);
        assertTrue(vm.container().pasidTable().isPresent());
        byte[] data = new byte[0x4000];
        new Random(3).nextBytes(data);
        p.write(SRC, data);
        assertEquals(Dsa.COMP_SUCCESS, copy(p, dsa, 0).status());
        assertArrayEquals(data, p.read(DST, data.length));
        p.pageOut(DST, 0x1000);
        assertEquals(Dsa.COMP_SUCCESS, copy(p, dsa, Dsa.FLAG_BOF).status());
        assertEquals(1, vm.guest().pageRequestsHandled());
        vmm.destroy("vm1");
        assertFalse(host.translate(0x10, p.pasid(), SRC, Access.READ, new Translation()));
    }
}
