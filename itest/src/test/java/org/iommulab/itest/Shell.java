package org.iommulab.itest;

import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;

import org.apache.felix.service.command.CommandProcessor;
import org.apache.felix.service.command.CommandSession;

/** Runs Gogo command lines through the CommandProcessor and captures what they print. */
public final class Shell {
    private final CommandProcessor processor;

    /** @param processor the container's command processor */
    public Shell(CommandProcessor processor) {
        this.processor = processor;
    }

    /**
     * @param commandLine one or more commands separated by ';' or newlines
     * @return everything printed to standard output
     * @throws Exception whatever the command threw
     */
    public String run(String commandLine) throws Exception {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        ByteArrayOutputStream err = new ByteArrayOutputStream();
        try (PrintStream pout = new PrintStream(out, true, StandardCharsets.UTF_8);
                PrintStream perr = new PrintStream(err, true, StandardCharsets.UTF_8)) {
            CommandSession session = processor.createSession(new ByteArrayInputStream(new byte[0]), pout, perr);
            try {
                session.execute(commandLine);
            } finally {
                session.close();
            }
        }
        return out.toString(StandardCharsets.UTF_8);
    }
}
