package org.iommulab.launcher.internal.boot;

import java.util.Arrays;
import java.util.List;

/**
 * The launcher's command line: no arguments for the interactive shell, {@code -c <command...>} for
 * one command, or {@code <script> [args...]} for a Gogo script.
 *
 * @param mode what to run
 * @param text the command line ({@link Mode#COMMAND}) or script path ({@link Mode#SCRIPT})
 * @param scriptArgs arguments of a script, available to it as {@code $1..$9} and {@code $args}
 */
record Arguments(Mode mode, String text, List<String> scriptArgs) {

    /** What the launcher runs. */
    enum Mode {
        /** The interactive Gogo shell. */
        SHELL,
        /** One command line, then exit. */
        COMMAND,
        /** A script file, then exit. */
        SCRIPT,
        /** Print usage. */
        HELP
    }

    static Arguments parse(String... args) {
        if (args.length == 0) {
            return new Arguments(Mode.SHELL, "", List.of());
        }
        switch (args[0]) {
            case "-h":
            case "--help":
                return new Arguments(Mode.HELP, "", List.of());
            case "-c":
                if (args.length < 2) {
                    throw new IllegalArgumentException("-c needs a command");
                }
                return new Arguments(Mode.COMMAND, String.join(" ", Arrays.asList(args).subList(1, args.length)), List.of());
            default:
                if (args[0].startsWith("-")) {
                    throw new IllegalArgumentException("unknown option " + args[0]);
                }
                return new Arguments(Mode.SCRIPT, args[0], List.copyOf(Arrays.asList(args).subList(1, args.length)));
        }
    }

    static String usage() {
        return String.join(System.lineSeparator(),
                "usage: iommulab                 interactive shell (tab completes commands)",
                "       iommulab -c <command>    run one command line and exit",
                "       iommulab <script> [args] run a Gogo script and exit",
                "       iommulab demo [sva]      run the demo (sva: the host SVA demo)",
                "Exit status: 0 on success, 1 when a command fails, 2 for bad usage.");
    }
}
