package org.iommulab.itest;

import static org.ops4j.pax.exam.CoreOptions.bundle;
import static org.ops4j.pax.exam.CoreOptions.frameworkStartLevel;
import static org.ops4j.pax.exam.CoreOptions.junitBundles;
import static org.ops4j.pax.exam.CoreOptions.systemProperty;

import java.io.File;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.function.BooleanSupplier;

import org.iommulab.api.spi.InstanceListener;
import org.iommulab.api.spi.IommuInstance;
import org.ops4j.pax.exam.Option;
import org.osgi.framework.Bundle;
import org.osgi.framework.BundleContext;

/**
 * The container every integration test runs in: the reactor's bundles and the runtime, provisioned
 * from the files Maven resolved (paths handed over as system properties), by the launcher's start
 * levels: 1 the service loader mediator, 2 SLF4J, 3 OSGi services and Gogo, 4 IOMMU Lab.
 */
public final class Container {
    private Container() {
    }

    /** @return the Pax Exam options of the IOMMU Lab container */
    public static Option[] options(Option... extra) {
        List<Option> o = new ArrayList<>();
        o.add(frameworkStartLevel(10));
        o.add(systemProperty("org.slf4j.simpleLogger.defaultLogLevel").value("warn"));
        for (String b : new String[] {"spifly", "asm", "asm-tree", "asm-analysis", "asm-commons", "asm-util"}) {
            o.add(fromFile(b, 1));
        }
        o.add(fromFile("slf4j-api", 2));
        o.add(fromFile("slf4j-simple", 2));
        for (String b : new String[] {"scr", "component", "promise", "function", "configadmin", "metatype", "log",
                "gogo-runtime", "gogo-command"}) {
            o.add(fromFile(b, 3));
        }
        for (String b : new String[] {"api", "platform", "pgtable", "vtd-backend", "smmuv3-backend", "vfio-type1", "mdev-idxd", "sva", "vmm", "launcher"}) {
            o.add(fromFile(b, 4));
        }
        o.add(junitBundles());
        o.addAll(List.of(extra));
        return o.toArray(new Option[0]);
    }

    /**
     * @param name a reactor module whose jar Maven resolved (system property {@code bundle.<name>})
     * @return the option installing it at the top start level, for tests that need more than the distribution
     */
    public static Option reactorBundle(String name) {
        return fromFile(name, 4);
    }

    private static Option fromFile(String name, int startLevel) {
        String path = System.getProperty("bundle." + name);
        if (path == null || path.startsWith("${")) {
            throw new IllegalStateException("system property bundle." + name + " is not set: run the tests with mvn verify");
        }
        return bundle(new File(path).toURI().toString()).startLevel(startLevel);
    }

    /**
     * Polls a condition instead of sleeping.
     *
     * @param condition what to wait for
     * @param timeoutMs how long at most
     * @return {@code true} if the condition held in time
     */
    public static boolean await(BooleanSupplier condition, long timeoutMs) throws InterruptedException {
        long deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(timeoutMs);
        while (!condition.getAsBoolean()) {
            if (System.nanoTime() > deadline) {
                return false;
            }
            Thread.sleep(10);
        }
        return true;
    }

    /**
     * @param context the test's bundle context
     * @param bsn a bundle symbolic name
     * @return the installed bundle
     */
    public static Bundle installed(BundleContext context, String bsn) {
        for (Bundle b : context.getBundles()) {
            if (bsn.equals(b.getSymbolicName())) {
                return b;
            }
        }
        throw new AssertionError("no bundle " + bsn);
    }

    /**
     * Registers an {@link InstanceListener} that records the names of departing instances.
     *
     * @param context the test's bundle context
     * @return the names, in order, as the registry reports them
     */
    public static List<String> instanceRemovals(BundleContext context) {
        List<String> removed = new java.util.concurrent.CopyOnWriteArrayList<>();
        context.registerService(InstanceListener.class, new InstanceListener() {
            @Override
            public void instanceAdded(IommuInstance instance) {
            }

            @Override
            public void instanceRemoved(IommuInstance instance) {
                removed.add(instance.name());
            }
        }, null);
        return removed;
    }
}
