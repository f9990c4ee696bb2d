package org.iommulab.platform.internal.shell;

import static org.junit.jupiter.api.Assertions.assertEquals;

import org.junit.jupiter.api.Test;

class PasidCommandsTest {

    @Test
    void rangesCollapsesRuns() {
        assertEquals("1-3,5,7-8", PasidCommands.ranges(new int[] {1, 2, 3, 5, 7, 8}));
    }

    @Test
    void rangesOfNothingIsADash() {
        assertEquals("-", PasidCommands.ranges(new int[0]));
    }

    @Test
    void rangesSingleValuesAndLongRuns() {
        assertEquals("7", PasidCommands.ranges(new int[] {7}));
        assertEquals("1-2", PasidCommands.ranges(new int[] {1, 2}));
        assertEquals("1,3,5", PasidCommands.ranges(new int[] {1, 3, 5}));
        assertEquals("1,1048574-1048575", PasidCommands.ranges(new int[] {1, 1048574, 1048575}));
        int[] run = new int[1000];
        for (int i = 0; i < run.length; i++) {
            run[i] = i + 10;
        }
        assertEquals("10-1009", PasidCommands.ranges(run));
    }
}
