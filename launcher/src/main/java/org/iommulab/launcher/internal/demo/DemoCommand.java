package org.iommulab.launcher.internal.demo;

import java.io.PrintStream;
import java.util.concurrent.atomic.AtomicInteger;

import org.apache.felix.service.command.Descriptor;
import org.iommulab.api.errno.IommuException;
import org.iommulab.api.idxd.IdxdService;
import org.iommulab.api.vmm.VmManager;
import org.iommulab.api.memory.HostMemory;
import org.iommulab.api.pasid.PasidSpace;
import org.iommulab.api.process.ProcessTable;
import org.iommulab.api.spi.IommuRegistry;
import org.iommulab.api.sva.SvaService;
import org.osgi.service.component.annotations.Component;
import org.osgi.service.component.annotations.Reference;
import org.osgi.service.component.annotations.ReferenceCardinality;
import org.osgi.service.component.annotations.ReferencePolicy;
import org.osgi.service.component.annotations.ReferencePolicyOption;

/**
 * The {@code demo} command: runs the demo scenarios and prints each step. The platform services are
 * dynamic, optional references, so the command survives the platform bundle being stopped and
 * started again (hot swap) and says what is missing meanwhile. Immediate, so its state (the run
 * count) lives as long as the bundle, not as long as a shell happens to hold the service.
 */
@Component(service = DemoCommand.class, immediate = true, property = {
        "osgi.command.scope=demo",
        "osgi.command.function=demo" })
public final class DemoCommand {
    @Reference(cardinality = ReferenceCardinality.OPTIONAL, policy = ReferencePolicy.DYNAMIC,
            policyOption = ReferencePolicyOption.GREEDY)
    private volatile HostMemory memory;

    @Reference(cardinality = ReferenceCardinality.OPTIONAL, policy = ReferencePolicy.DYNAMIC,
            policyOption = ReferencePolicyOption.GREEDY)
    private volatile PasidSpace pasids;

    @Reference(cardinality = ReferenceCardinality.OPTIONAL, policy = ReferencePolicy.DYNAMIC,
            policyOption = ReferencePolicyOption.GREEDY)
    private volatile IommuRegistry registry;

    @Reference(cardinality = ReferenceCardinality.OPTIONAL, policy = ReferencePolicy.DYNAMIC,
            policyOption = ReferencePolicyOption.GREEDY)
    private volatile IdxdService idxd;

    @Reference(cardinality = ReferenceCardinality.OPTIONAL, policy = ReferencePolicy.DYNAMIC,
            policyOption = ReferencePolicyOption.GREEDY)
    private volatile VmManager vmm;

    @Reference(cardinality = ReferenceCardinality.OPTIONAL, policy = ReferencePolicy.DYNAMIC,
            policyOption = ReferencePolicyOption.GREEDY)
    private volatile SvaService sva;

    @Reference(cardinality = ReferenceCardinality.OPTIONAL, policy = ReferencePolicy.DYNAMIC,
            policyOption = ReferencePolicyOption.GREEDY)
    private volatile ProcessTable processes;

    private final AtomicInteger runs = new AtomicInteger();

    /**
     * Runs the demo.
     *
     * @throws IommuException if a step fails in a way the demo does not expect
     */
    @Descriptor("run the demo: every step printed, non-zero exit if a step does not behave as it should")
    public void demo() throws IommuException, InterruptedException {
        HostMemory m = memory;
        PasidSpace p = pasids;
        IommuRegistry r = registry;
        if (m == null || p == null || r == null) {
            throw new IllegalStateException("the platform services are not available (is the platform bundle started?)");
        }
        IdxdService devices = idxd;
        VmManager vms = vmm;
        if (devices == null || vms == null) {
            throw new IllegalStateException("the IDXD and VMM services are not available (are mdev-idxd and vmm started?)");
        }
        PrintStream out = System.out;
        new PlatformDemo(m, p, r, out).run();
        VsvaDemo vsva = new VsvaDemo(r, devices, vms, out);
        vsva.run("vtd");
        vsva.run("smmuv3");
        out.println("== demo complete ==");
        runs.incrementAndGet();
    }

    /**
     * Runs a demo scenario: {@code vsva} (the default demo) or {@code sva} (host SVA: a host process
     * uses the IDXD device directly on VT-d and SMMUv3).
     *
     * @param scenario the scenario name
     * @throws IommuException if a step fails in a way the demo does not expect
     */
    @Descriptor("run a demo scenario: vsva (the default) or sva (a host process shares its address space with an IDXD device)")
    public void demo(@Descriptor("vsva or sva") String scenario) throws IommuException, InterruptedException {
        switch (scenario) {
            case "vsva" -> demo();
            case "sva" -> hostSva();
            default -> throw new IllegalArgumentException("unknown demo scenario '" + scenario + "' (vsva, sva)");
        }
    }

    private void hostSva() throws IommuException, InterruptedException {
        PasidSpace p = pasids;
        IommuRegistry r = registry;
        IdxdService devices = idxd;
        SvaService s = sva;
        ProcessTable t = processes;
        if (p == null || r == null || t == null || devices == null || s == null) {
            throw new IllegalStateException(
                    "the platform, IDXD and SVA services are not available (are platform, mdev-idxd and sva started?)");
        }
        PrintStream out = System.out;
        HostSvaDemo demo = new HostSvaDemo(r, devices, s, t, p, out);
        demo.run("vtd");
        demo.run("smmuv3");
        out.println("== host SVA demo complete ==");
        runs.incrementAndGet();
    }

    /** @return how many demo runs completed in this component instance (its state across hot swaps) */
    public int runs() {
        return runs.get();
    }

    /** @return {@code true} while every platform service is bound */
    public boolean platformBound() {
        return memory != null && pasids != null && registry != null;
    }
}
