package org.iommulab.api.translation;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

class TranslationTest {

    private static void assertNoFault(Translation t) {
        assertNull(t.faultKind());
        assertNull(t.faultStage());
        assertEquals(0, t.faultCode());
        assertNull(t.faultName());
        assertEquals(0, t.faultLevel());
        assertEquals(0, t.faultAddress());
    }

    @Test
    void aNewHolderIsEmpty() {
        Translation t = new Translation();
        assertFalse(t.isSuccess());
        assertEquals(0, t.outputAddress());
        assertNoFault(t);
    }

    @Test
    void successRecordsTheResult() {
        Translation t = new Translation();
        assertSame(t, t.success(0x1234_5000L, 21, Access.READ | Access.WRITE));
        assertTrue(t.isSuccess());
        assertEquals(0x1234_5000L, t.outputAddress());
        assertEquals(21, t.pageShift());
        assertEquals(Access.READ | Access.WRITE, t.permissions());
        assertNoFault(t);
    }

    @Test
    void faultAfterSuccessOverwritesEverything() {
        Translation t = new Translation().success(0x1000, 12, Access.ALL);
        assertSame(t, t.fault(FaultKind.CONFIGURATION, Stage.CONFIG, 0x59, "PASID_ENTRY_P", 2, 0xdead_0000L));
        assertFalse(t.isSuccess());
        assertEquals(0, t.outputAddress());
        assertEquals(0, t.pageShift());
        assertEquals(0, t.permissions());
        assertEquals(FaultKind.CONFIGURATION, t.faultKind());
        assertEquals(Stage.CONFIG, t.faultStage());
        assertEquals(0x59, t.faultCode());
        assertEquals("PASID_ENTRY_P", t.faultName());
        assertEquals(2, t.faultLevel());
        assertEquals(0xdead_0000L, t.faultAddress());
    }

    @Test
    void successAfterFaultOverwritesEverything() {
        Translation t = new Translation().fault(FaultKind.PERMISSION, Stage.STAGE2, 0x10, "WRITE", 3, 0x7000);
        t.success(0x2000, 12, Access.READ);
        assertTrue(t.isSuccess());
        assertEquals(0x2000, t.outputAddress());
        assertEquals(12, t.pageShift());
        assertEquals(Access.READ, t.permissions());
        assertNoFault(t);
    }

    @Test
    void toStringFormatsSuccessAndFault() {
        Translation t = new Translation().success(0x1000, 12, Access.READ);
        assertEquals("0x1000", t.toString());
        t.fault(FaultKind.CONFIGURATION, Stage.CONFIG, 0x59, "PASID_ENTRY_P", 0, 0);
        assertEquals("fault 0x59 PASID_ENTRY_P", t.toString());
        t.success(0xffff_ffff_ffff_f000L, 12, Access.READ);
        assertEquals("0xfffffffffffff000", t.toString());
    }

    @Test
    void accessFlagsFormat() {
        assertEquals("rw-", Access.toString(Access.READ | Access.WRITE));
        assertEquals("r-x", Access.toString(Access.READ | Access.EXEC));
        assertEquals("rwxp", Access.toString(Access.ALL));
        assertEquals("---", Access.toString(0));
        assertEquals("--xp", Access.toString(Access.EXEC | Access.PRIV));
    }
}
