package org.iommulab.itest;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertFalse;
import static org.junit.Assert.assertNotNull;
import static org.junit.Assert.assertTrue;
import static org.junit.Assert.fail;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

import javax.inject.Inject;

import org.apache.felix.service.command.CommandProcessor;
import org.iommulab.api.errno.Errno;
import org.iommulab.api.errno.IommuException;
import org.iommulab.api.memory.HostMemory;
import org.iommulab.api.pasid.PasidSpace;
import org.junit.Test;
import org.junit.runner.RunWith;
import org.ops4j.pax.exam.Configuration;
import org.ops4j.pax.exam.Option;
import org.ops4j.pax.exam.junit.PaxExam;
import org.ops4j.pax.exam.spi.reactors.ExamReactorStrategy;
import org.ops4j.pax.exam.spi.reactors.PerClass;
import org.osgi.framework.Bundle;
import org.osgi.framework.BundleContext;
import org.osgi.framework.Constants;
import org.osgi.service.component.runtime.ServiceComponentRuntime;
import org.osgi.service.component.runtime.dto.ComponentConfigurationDTO;
import org.osgi.service.component.runtime.dto.ComponentDescriptionDTO;

/** The assembled container: bundles active, components satisfied, shell commands working. */
@RunWith(PaxExam.class)
@ExamReactorStrategy(PerClass.class)
public class ContainerIT {
    @Inject
    private BundleContext context;

    @Inject
    private ServiceComponentRuntime scr;

    @Inject
    private CommandProcessor processor;

    @Inject
    private HostMemory memory;

    @Inject
    private PasidSpace pasids;

    /** @return the container */
    @Configuration
    public Option[] config() {
        return Container.options();
    }

    @Test
    public void everyBundleIsActive() {
        List<String> inactive = new ArrayList<>();
        for (Bundle b : context.getBundles()) {
            boolean fragment = b.getHeaders().get(Constants.FRAGMENT_HOST) != null;
            if (!fragment && b.getState() != Bundle.ACTIVE) {
                inactive.add(b.getSymbolicName() + " state " + b.getState());
            }
        }
        assertTrue("inactive bundles: " + inactive, inactive.isEmpty());
        for (String bsn : new String[] {"org.iommulab.api", "org.iommulab.platform", "org.iommulab.pgtable",
                "org.iommulab.launcher"}) {
            assertTrue(bsn + " is installed", Arrays.stream(context.getBundles()).anyMatch(b -> bsn.equals(b.getSymbolicName())));
        }
    }

    @Test
    public void everyIommuLabComponentIsSatisfied() {
        List<String> problems = new ArrayList<>();
        int count = 0;
        for (ComponentDescriptionDTO d : scr.getComponentDescriptionDTOs()) {
            if (!d.bundle.symbolicName.startsWith("org.iommulab")) {
                continue;
            }
            count++;
            if (!scr.isComponentEnabled(d)) {
                problems.add(d.name + " disabled");
            }
            for (ComponentConfigurationDTO c : scr.getComponentConfigurationDTOs(d)) {
                if (c.state == ComponentConfigurationDTO.UNSATISFIED_REFERENCE
                        || c.state == ComponentConfigurationDTO.UNSATISFIED_CONFIGURATION
                        || c.state == ComponentConfigurationDTO.FAILED_ACTIVATION) {
                    problems.add(d.name + " state " + c.state + " " + c.failure);
                }
            }
        }
        assertTrue("expected the platform and launcher components, found " + count, count >= 12);
        assertTrue("unsatisfied components: " + problems, problems.isEmpty());
    }

    @Test
    public void memoryCommandsRoundTrip() throws Exception {
        Shell shell = new Shell(processor);
        assertEquals("", shell.run("mem:write 0x1000 0x1122334455667788"));
        assertEquals("0x1122334455667788", shell.run("mem:read 0x1000").trim());
        assertEquals(0x1122334455667788L, memory.read64(0x1000));
        assertEquals("0xffffffffffffffff", shell.run("mem:write 4096 18446744073709551615; mem:read 0x1000").trim());
    }

    @Test
    public void failingCommandsThrowWithAClearMessage() throws Exception {
        Shell shell = new Shell(processor);
        assertFails(shell, "mem:read 0x7000000000", "EFAULT: 0x7000000000: unbacked");
        assertFails(shell, "mem:read banana", "EINVAL: address: 'banana' is not a decimal or 0x-hex number");
        assertFails(shell, "mem:write 0x1000 0x10000000000000000", "EINVAL: value: '0x10000000000000000'");
        assertFails(shell, "mem:read 0x10000000000000", "EFAULT: 0x10000000000000: beyond the physical address width");
        assertFails(shell, "pasid:alloc nobody", "ENOENT: no PASID set for owner 'nobody'");
    }

    @Test
    public void pasidCommandsEnforceQuotaAndOwnership() throws Exception {
        Shell shell = new Shell(processor);
        assertEquals("it-a", shell.run("pasid:create it-a 2").trim());
        shell.run("pasid:create it-b 1");
        try {
            int first = Integer.parseInt(shell.run("pasid:alloc it-a").trim());
            assertEquals("777", shell.run("pasid:alloc it-a 777").trim());
            assertFails(shell, "pasid:alloc it-a", "quota");
            int foreign = Integer.parseInt(shell.run("pasid:alloc it-b").trim());
            assertFails(shell, "pasid:free it-a " + foreign, "another set");
            assertEquals("owned", shell.run("pasid:check it-a " + first).trim());
            String list = shell.run("pasid:list");
            assertTrue(list, list.contains("set it-a id=") && list.contains("quota=2 used=2"));
            assertTrue(pasids.set("it-a").orElseThrow().contains(777));
        } finally {
            shell.run("pasid:close it-a; pasid:close it-b");
        }
        assertFalse(pasids.set("it-a").isPresent());
    }

    @Test
    public void servicesRejectBadInputWithErrno() {
        try {
            pasids.createSet("it-huge", Integer.MAX_VALUE);
            fail("quota beyond the space accepted");
        } catch (IommuException e) {
            assertEquals(Errno.ENOSPC, e.errno());
        }
        assertNotNull(memory.stats());
    }

    private static void assertFails(Shell shell, String command, String messagePart) {
        try {
            shell.run(command);
        } catch (Exception e) {
            String text = String.valueOf(e.getMessage()) + " " + e;
            assertTrue(command + " failed with '" + text + "', expected '" + messagePart + "'", text.contains(messagePart));
            return;
        }
        fail(command + " succeeded");
    }
}
