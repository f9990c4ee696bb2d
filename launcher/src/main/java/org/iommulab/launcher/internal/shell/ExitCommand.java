package org.iommulab.launcher.internal.shell;

import org.apache.felix.service.command.Descriptor;
import org.osgi.framework.BundleContext;
import org.osgi.framework.BundleException;
import org.osgi.service.component.annotations.Activate;
import org.osgi.service.component.annotations.Component;

/** {@code exit}: leaves the interactive shell by stopping the framework gracefully (exit status 0). */
@Component(service = ExitCommand.class, property = {
        "osgi.command.scope=iommulab",
        "osgi.command.function=exit" })
public final class ExitCommand {
    private final BundleContext context;

    /** @param context this bundle's context */
    @Activate
    public ExitCommand(BundleContext context) {
        this.context = context;
    }

    /** Stops the framework; components deactivate and the launcher exits 0. */
    @Descriptor("stop IOMMU Lab and leave the shell")
    public void exit() {
        Thread stopper = new Thread(() -> {
            try {
                context.getBundle(0).stop();
            } catch (BundleException | IllegalStateException e) {
                // already stopping
            }
        }, "iommulab-exit");
        stopper.setDaemon(true);
        stopper.start();
    }
}
