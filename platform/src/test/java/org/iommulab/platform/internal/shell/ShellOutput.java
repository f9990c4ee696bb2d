package org.iommulab.platform.internal.shell;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.util.List;

import org.iommulab.api.errno.Errno;
import org.iommulab.api.errno.IommuException;
import org.junit.jupiter.api.Assertions;
import org.junit.jupiter.api.function.Executable;

/** What shell commands print: {@code System.out} captured from construction until {@link #restore()}. */
final class ShellOutput {
    private final ByteArrayOutputStream bytes = new ByteArrayOutputStream();
    private final PrintStream saved = System.out;

    ShellOutput() {
        System.setOut(new PrintStream(bytes, true, StandardCharsets.UTF_8));
    }

    /** @return the lines printed since the last call */
    List<String> lines() {
        List<String> lines = bytes.toString(StandardCharsets.UTF_8).lines().toList();
        bytes.reset();
        return lines;
    }

    void restore() {
        System.setOut(saved);
    }

    static void assertErrno(Errno errno, Executable call) {
        Assertions.assertEquals(errno, Assertions.assertThrows(IommuException.class, call).errno());
    }
}
