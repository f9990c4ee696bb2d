package org.iommulab.launcher.internal.boot;

import java.io.File;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.io.PrintStream;
import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.Method;
import java.net.URISyntaxException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.ServiceLoader;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;

import org.osgi.framework.Bundle;
import org.osgi.framework.BundleContext;
import org.osgi.framework.BundleException;
import org.osgi.framework.Constants;
import org.osgi.framework.FrameworkEvent;
import org.osgi.framework.ServiceReference;
import org.osgi.framework.launch.Framework;
import org.osgi.framework.launch.FrameworkFactory;
import org.osgi.framework.startlevel.BundleStartLevel;
import org.osgi.framework.startlevel.FrameworkStartLevel;
import org.osgi.util.tracker.ServiceTracker;

/**
 * Starts Felix with the bundles of the distribution, by start level (1: service loader mediator,
 * 2: SLF4J, 3: OSGi services and shell, 4: IOMMU Lab), then either hands the console to the Gogo
 * shell or runs a command or script through the {@code CommandProcessor} and exits with its status.
 *
 * <p>SIGTERM and the end of the shell stop the framework gracefully (components deactivate) and the
 * process exits 0. Works on Java 17 and later (no security manager, no bnd launcher).
 */
public final class Main {
    private static final String COMMAND_PROCESSOR = "org.apache.felix.service.command.CommandProcessor";
    private static final int TOP_LEVEL = 4;
    /**
     * The process's real streams, captured before Gogo replaces System.out/err with per-thread
     * redirecting streams (a session writing to those would write to itself).
     */
    private static final PrintStream STDOUT = System.out;
    private static final PrintStream STDERR = System.err;
    private static final long STOP_TIMEOUT_MS = 30_000;
    /** Held so the level set on it is not garbage collected: the mediator logs through JUL. */
    private static final java.util.logging.Logger SPIFLY_LOG = java.util.logging.Logger.getLogger("org.apache.aries.spifly");

    private Main() {
    }

    /**
     * @param args see {@link Arguments}
     */
    public static void main(String[] args) {
        int status;
        try {
            status = run(Arguments.parse(args));
        } catch (IllegalArgumentException e) {
            STDERR.println("iommulab: " + e.getMessage());
            STDERR.println(Arguments.usage());
            status = 2;
        } catch (Exception e) {
            STDERR.println("iommulab: " + e);
            status = 1;
        }
        STDOUT.flush();
        STDERR.flush();
        System.exit(status);
    }

    static int run(Arguments arguments) throws Exception {
        if (arguments.mode() == Arguments.Mode.HELP) {
            STDOUT.println(Arguments.usage());
            return 0;
        }
        if (arguments.mode() == Arguments.Mode.SHELL && System.console() == null) {
            // Not a terminal (a pipe or a file): run standard input as a script.
            String program = new String(System.in.readAllBytes(), StandardCharsets.UTF_8);
            arguments = new Arguments(Arguments.Mode.COMMAND, program, java.util.List.of());
        }
        Path home = distributionHome();
        boolean interactive = arguments.mode() == Arguments.Mode.SHELL;
        Path storage = Files.createTempDirectory("iommulab-felix");
        java.util.concurrent.atomic.AtomicBoolean stoppedBySignal = new java.util.concurrent.atomic.AtomicBoolean();
        Framework framework = null;
        Thread hook = null;
        try {
            Framework fw = newFramework(home, storage, interactive);
            framework = fw;
            hook = new Thread(() -> {
                stopQuietly(fw);
                deleteTree(storage);
            }, "iommulab-shutdown");
            Runtime.getRuntime().addShutdownHook(hook);
            SignalStop.install(() -> {
                // SIGTERM is a normal stop: the main thread reports 0 once the framework is down. If a
                // command keeps the main thread busy past a grace period, end the process anyway.
                stoppedBySignal.set(true);
                stopQuietly(fw);
                sleepQuietly(5_000);
                STDOUT.flush();
                System.exit(0);
            });
            fw.init();
            installBundles(fw.getBundleContext(), home.resolve("bundles"));
            fw.start();
            awaitStartLevel(fw, TOP_LEVEL);
            int status;
            if (interactive) {
                // The Gogo jline bundle runs the shell; typing 'exit' or ^D stops the framework.
                fw.waitForStop(0);
                status = 0;
            } else {
                status = execute(fw.getBundleContext(), arguments);
            }
            return stoppedBySignal.get() ? 0 : status;
        } finally {
            if (framework != null) {
                stopQuietly(framework);
            }
            if (hook != null) {
                try {
                    Runtime.getRuntime().removeShutdownHook(hook);
                } catch (IllegalStateException alreadyShuttingDown) {
                    // the hook is running or ran; nothing to remove
                }
            }
            deleteTree(storage);
        }
    }

    private static void sleepQuietly(long millis) {
        try {
            Thread.sleep(millis);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    /** The distribution folder: where iommulab.jar (this class's jar) lives. */
    static Path distributionHome() throws URISyntaxException {
        String override = System.getProperty("iommulab.home");
        if (override != null) {
            return Path.of(override);
        }
        Path jar = Path.of(Main.class.getProtectionDomain().getCodeSource().getLocation().toURI());
        return jar.getParent();
    }

    private static Framework newFramework(Path home, Path storage, boolean interactive) {
        Map<String, String> config = new HashMap<>();
        config.put(Constants.FRAMEWORK_STORAGE, storage.toString());
        config.put(Constants.FRAMEWORK_STORAGE_CLEAN, Constants.FRAMEWORK_STORAGE_CLEAN_ONFIRSTINIT);
        config.put(Constants.FRAMEWORK_BEGINNING_STARTLEVEL, Integer.toString(TOP_LEVEL));
        config.put("felix.log.level", "1");
        config.put("gosh.home", home.toString());
        if (!interactive) {
            // Let Gogo's jline bundle register its commands (echo, each, if, ...) but run no shell.
            config.put("gosh.args", "--nointeractive --noshutdown");
            System.setProperty("org.jline.terminal.dumb", "true");
        }
        SPIFLY_LOG.setLevel(java.util.logging.Level.WARNING);
        System.setProperty("org.slf4j.simpleLogger.defaultLogLevel",
                System.getProperty("org.slf4j.simpleLogger.defaultLogLevel", "warn"));
        FrameworkFactory factory = ServiceLoader.load(FrameworkFactory.class).findFirst()
                .orElseThrow(() -> new IllegalStateException("no OSGi framework on the class path (lib/ missing?)"));
        return factory.newFramework(config);
    }

    /** Installs bundles/&lt;level&gt;/*.jar and this jar (the demo bundle) at the top level. */
    private static void installBundles(BundleContext context, Path bundles) throws IOException, BundleException,
            URISyntaxException {
        List<Bundle> installed = new ArrayList<>();
        for (int level = 1; level <= TOP_LEVEL; level++) {
            Path dir = bundles.resolve(Integer.toString(level));
            if (!Files.isDirectory(dir)) {
                continue;
            }
            List<Path> jars;
            try (Stream<Path> files = Files.list(dir)) {
                jars = files.filter(p -> p.toString().endsWith(".jar")).sorted().toList();
            }
            for (Path jar : jars) {
                installed.add(install(context, jar, level));
            }
        }
        Path self = Path.of(Main.class.getProtectionDomain().getCodeSource().getLocation().toURI());
        installed.add(install(context, self, TOP_LEVEL));
        for (Bundle bundle : installed) {
            if (bundle.getHeaders().get(Constants.FRAGMENT_HOST) == null) {
                bundle.start(Bundle.START_ACTIVATION_POLICY);
            }
        }
    }

    private static Bundle install(BundleContext context, Path jar, int level) throws BundleException {
        Bundle bundle = context.installBundle(jar.toUri().toString());
        bundle.adapt(BundleStartLevel.class).setStartLevel(level);
        return bundle;
    }

    private static void awaitStartLevel(Framework framework, int level) throws InterruptedException {
        FrameworkStartLevel startLevel = framework.adapt(FrameworkStartLevel.class);
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
        while (startLevel.getStartLevel() < level && System.nanoTime() < deadline) {
            Thread.sleep(10);
        }
        if (framework.getState() != Bundle.ACTIVE) {
            return;
        }
        for (Bundle b : framework.getBundleContext().getBundles()) {
            if (b.getState() != Bundle.ACTIVE && b.getHeaders().get(Constants.FRAGMENT_HOST) == null) {
                STDERR.println("iommulab: warning: bundle " + b.getSymbolicName() + " is not active");
            }
        }
    }

    /** Runs the command or script in a Gogo session; returns 0, or 1 if it threw. */
    private static int execute(BundleContext context, Arguments arguments) throws Exception {
        ServiceTracker<Object, Object> tracker = new ServiceTracker<>(context, COMMAND_PROCESSOR, null);
        tracker.open();
        try {
            Object processor = tracker.waitForService(30_000);
            if (processor == null) {
                STDERR.println("iommulab: the Gogo command processor did not start");
                return 1;
            }
            String program = arguments.text();
            if (arguments.mode() == Arguments.Mode.SCRIPT) {
                program = Files.readString(Path.of(arguments.text()), StandardCharsets.UTF_8);
            }
            return GogoSession.run(processor, program, arguments);
        } finally {
            tracker.close();
        }
    }

    static void stopQuietly(Framework framework) {
        try {
            if ((framework.getState() & (Bundle.ACTIVE | Bundle.STARTING)) != 0) {
                framework.stop();
            }
            FrameworkEvent event = framework.waitForStop(STOP_TIMEOUT_MS);
            if (event.getType() == FrameworkEvent.WAIT_TIMEDOUT) {
                STDERR.println("iommulab: framework did not stop within " + STOP_TIMEOUT_MS + " ms");
            }
        } catch (BundleException | InterruptedException | RuntimeException e) {
            STDERR.println("iommulab: stopping the framework failed: " + e);
        }
    }

    private static void deleteTree(Path root) {
        try (Stream<Path> paths = Files.walk(root)) {
            paths.sorted(Comparator.reverseOrder()).map(Path::toFile).forEach(File::delete);
        } catch (IOException e) {
            // a leftover temp folder is harmless
        }
    }

    /** Executes a Gogo program through the CommandProcessor service, by reflection: its classes live in a bundle. */
    static final class GogoSession {
        private GogoSession() {
        }

        static int run(Object processor, String program, Arguments arguments) throws Exception {
            Method create = processor.getClass().getMethod("createSession", InputStream.class, OutputStream.class,
                    OutputStream.class);
            PrintStream out = STDOUT;
            PrintStream err = STDERR;
            Object session = create.invoke(processor, InputStream.nullInputStream(), out, err);
            Class<?> sessionType = session.getClass();
            Method put = sessionType.getMethod("put", String.class, Object.class);
            Method execute = sessionType.getMethod("execute", CharSequence.class);
            Method close = sessionType.getMethod("close");
            try {
                if (arguments.mode() == Arguments.Mode.SCRIPT) {
                    put.invoke(session, "0", arguments.text());
                    put.invoke(session, "args", arguments.scriptArgs());
                    for (int i = 0; i < arguments.scriptArgs().size() && i < 9; i++) {
                        put.invoke(session, Integer.toString(i + 1), arguments.scriptArgs().get(i));
                    }
                }
                execute.invoke(session, program);
                return 0;
            } catch (InvocationTargetException e) {
                err.println("error: " + describe(e.getCause()));
                return 1;
            } finally {
                out.flush();
                close.invoke(session);
            }
        }

        static String describe(Throwable t) {
            Throwable cause = t;
            // Gogo wraps command failures; show the innermost meaningful message.
            while (cause.getCause() != null && cause.getCause() != cause
                    && (cause.getMessage() == null || cause instanceof InvocationTargetException)) {
                cause = cause.getCause();
            }
            String name = cause.getClass().getSimpleName();
            if (name.equals("IommuException")) {
                return cause.toString();
            }
            if (cause.getMessage() == null) {
                return name;
            }
            if (name.equals("CommandNotFoundException") || cause instanceof IllegalStateException) {
                return cause.getMessage();
            }
            return name + ": " + cause.getMessage();
        }
    }

}
