package org.iommulab.pgtable;

import static org.iommulab.pgtable.format.RiscvPaging.A;
import static org.iommulab.pgtable.format.RiscvPaging.D;
import static org.iommulab.pgtable.format.RiscvPaging.R;
import static org.iommulab.pgtable.format.RiscvPaging.U;
import static org.iommulab.pgtable.format.RiscvPaging.V;
import static org.iommulab.pgtable.format.RiscvPaging.W;
import static org.iommulab.pgtable.format.RiscvPaging.X;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.iommulab.api.translation.Access;
import org.iommulab.pgtable.format.RiscvPaging;
import org.iommulab.pgtable.format.RiscvPaging.Mode;
import org.iommulab.platform.internal.memory.SparseMemory;
import org.junit.jupiter.api.Test;

/**
 * RISC-V paging rules on hand-built Sv39 and Sv39x4 tables (privileged ISA §4.3.2 walk, §4.4.1
 * PTE, hypervisor §9.5): what is reserved, A/D with and without hardware updating, user pages and
 * SUM, the G-stage's user-only leaves and its widened root.
 */
class RiscvPagingTest {
    static final long L2 = 0x10_0000L;
    static final long L1 = 0x10_1000L;
    static final long L0 = 0x10_2000L;
    static final long PAGE = 0x8765_4000L;
    static final long VA = 0x12_3456_7000L; // VPN[2] 0x48, VPN[1] 0x1a2, VPN[0] 0x167
    static final int PRIV = Access.PRIV;

    final SparseMemory mem = new SparseMemory(56);
    final WalkResult r = new WalkResult();

    static long pte(long address, long flags) {
        return (address >>> 12) << 10 | flags;
    }

    /** Sv39: L2[VPN2] -> L1, L1[VPN1] -> L0, L0[VPN0] = {@code leaf}. */
    void sv39(long leaf) {
        mem.write64(L2 + 8 * ((VA >>> 30) & 0x1ff), pte(L1, V));
        mem.write64(L1 + 8 * ((VA >>> 21) & 0x1ff), pte(L0, V));
        mem.write64(L0 + 8 * ((VA >>> 12) & 0x1ff), leaf);
    }

    boolean walk(RiscvPaging f, long address, int access) {
        return Walker.walk(mem, f, L2, address, access, true, r);
    }

    @Test
    void aLeafTranslatesAndItsPermissionsFollowRwxAndU() throws Exception {
        RiscvPaging f = RiscvPaging.firstStage(Mode.SV39, 56, false, false, false);
        sv39(pte(PAGE, V | R | X | A | D));
        assertTrue(walk(f, VA + 0x123, Access.READ | PRIV), r.toString());
        assertEquals(PAGE + 0x123, r.outputAddress());
        assertTrue(walk(f, VA, Access.EXEC | PRIV), "a supervisor executes a supervisor page: " + r);
        assertFalse(walk(f, VA, Access.WRITE | PRIV));
        assertEquals(WalkFault.WRITE, r.fault());
        assertFalse(walk(f, VA, Access.READ), "a user request on a supervisor page");
        assertEquals(WalkFault.PRIVILEGE, r.fault());
    }

    @Test
    void userPagesNeedSumForSupervisorDataAndAreNeverExecutedBySupervisors() throws Exception {
        sv39(pte(PAGE, V | R | W | X | U | A | D));
        RiscvPaging noSum = RiscvPaging.firstStage(Mode.SV39, 56, false, false, true);
        RiscvPaging sum = RiscvPaging.firstStage(Mode.SV39, 56, false, true, true);
        assertTrue(walk(noSum, VA, Access.READ | Access.WRITE | Access.EXEC), "user access: " + r);
        assertFalse(walk(noSum, VA, Access.READ | PRIV), "a supervisor read of a user page without SUM");
        assertEquals(WalkFault.READ, r.fault());
        assertFalse(walk(noSum, VA, Access.WRITE | PRIV));
        assertTrue(walk(sum, VA, Access.READ | Access.WRITE | PRIV), "with SUM: " + r);
        assertFalse(walk(sum, VA, Access.EXEC | PRIV), "never a supervisor fetch from a user page");
        assertEquals(WalkFault.EXEC, r.fault());
    }

    @Test
    void reservedEncodingsFault() throws Exception {
        RiscvPaging f = RiscvPaging.firstStage(Mode.SV39, 56, true, false, false);
        long[] bad = {
            pte(PAGE, V | W | A | D),                  // W without R
            pte(PAGE, V | R | A) | 1L << 61,           // PBMT without Svpbmt
            pte(PAGE, V | R | A) | 1L << 63,           // N without Svnapot
            pte(PAGE, V | R | A) | 1L << 55,           // reserved bits 60:54
        };
        for (long e : bad) {
            sv39(e);
            assertFalse(walk(f, VA, Access.READ | PRIV), Long.toHexString(e));
            assertEquals(WalkFault.RESERVED, r.fault(), Long.toHexString(e));
        }
        // A pointer with A, D or U set, and a pointer at the last level.
        for (long flag : new long[] {A, D, U}) {
            sv39(pte(PAGE, V | R | A));
            mem.write64(L1 + 8 * ((VA >>> 21) & 0x1ff), pte(L0, V | flag));
            assertFalse(walk(f, VA, Access.READ | PRIV));
            assertEquals(WalkFault.RESERVED, r.fault());
            assertEquals(1, r.faultDepth());
        }
        sv39(pte(L0, V));
        assertFalse(walk(f, VA, Access.READ | PRIV), "no pointer at level 0");
        assertEquals(WalkFault.RESERVED, r.fault());
    }

    @Test
    void aMisalignedSuperpageFaultsAndAnAlignedOneTranslates() throws Exception {
        RiscvPaging f = RiscvPaging.firstStage(Mode.SV39, 56, true, false, false);
        mem.write64(L2 + 8 * ((VA >>> 30) & 0x1ff), pte(L1, V));
        long mega = 0x8060_0000L;
        mem.write64(L1 + 8 * ((VA >>> 21) & 0x1ff), pte(mega, V | R | A));
        assertTrue(walk(f, VA + 0x45, Access.READ | PRIV), r.toString());
        assertEquals(mega + (VA & 0x1f_ffff) + 0x45, r.outputAddress());
        assertEquals(21, r.pageShift());
        mem.write64(L1 + 8 * ((VA >>> 21) & 0x1ff), pte(mega + 0x1000, V | R | A));
        assertFalse(walk(f, VA, Access.READ | PRIV), "PPN[0] of a megapage must be zero");
        assertEquals(WalkFault.RESERVED, r.fault());
    }

    @Test
    void accessedAndDirtyFaultWithoutHardwareUpdatingAndAreSetWithIt() throws Exception {
        RiscvPaging svade = RiscvPaging.firstStage(Mode.SV39, 56, false, false, false);
        RiscvPaging svadu = RiscvPaging.firstStage(Mode.SV39, 56, true, false, false);
        long slot = L0 + 8 * ((VA >>> 12) & 0x1ff);
        sv39(pte(PAGE, V | R | W));
        assertFalse(walk(svade, VA, Access.READ | PRIV), "A clear, no hardware update");
        assertEquals(WalkFault.ACCESS_FLAG, r.fault());
        mem.write64(slot, pte(PAGE, V | R | W | A));
        assertTrue(walk(svade, VA, Access.READ | PRIV));
        assertFalse(walk(svade, VA, Access.WRITE | PRIV), "a write to a clean page, no hardware update");
        assertEquals(WalkFault.WRITE, r.fault());

        mem.write64(slot, pte(PAGE, V | R | W));
        assertTrue(walk(svadu, VA, Access.READ | PRIV), r.toString());
        assertEquals(pte(PAGE, V | R | W | A), mem.read64(slot), "the walk set A");
        assertTrue(walk(svadu, VA, Access.WRITE | PRIV), r.toString());
        assertEquals(pte(PAGE, V | R | W | A | D), mem.read64(slot), "and D on the write");
    }

    @Test
    void theFirstStageSignExtendsItsAddresses() throws Exception {
        RiscvPaging f = RiscvPaging.firstStage(Mode.SV39, 56, true, false, false);
        assertEquals(WalkFault.NON_CANONICAL, f.checkInput(1L << 38));
        assertEquals(null, f.checkInput(-1L << 38));
        assertEquals(null, f.checkInput((1L << 38) - 1));
    }

    @Test
    void theGStageHasAWideRootUserOnlyLeavesAndZeroExtendedAddresses() throws Exception {
        RiscvPaging g = RiscvPaging.gStage(Mode.SV39, 56, false);
        assertEquals(41, g.inputBits());
        assertEquals(11, g.indexBits(0));
        assertEquals(16 * 1024, g.tableBytes(0));
        assertEquals(WalkFault.INPUT_RANGE, g.checkInput(1L << 41));
        assertEquals(null, g.checkInput((1L << 41) - 1));

        long gpa = 1L << 40 | VA & ((1L << 30) - 1); // root index 0x400: only the 16 KiB root has it
        long root = 0x20_0000L;
        mem.write64(root + 8 * 0x400, pte(L1, V));
        mem.write64(L1 + 8 * ((gpa >>> 21) & 0x1ff), pte(L0, V));
        mem.write64(L0 + 8 * ((gpa >>> 12) & 0x1ff), pte(PAGE, V | R | W | U | A | D));
        assertTrue(Walker.walk(mem, g, root, gpa + 8, Access.WRITE | PRIV, true, r), r.toString());
        assertEquals(PAGE + 8, r.outputAddress());
        mem.write64(L0 + 8 * ((gpa >>> 12) & 0x1ff), pte(PAGE, V | R | W | A | D));
        assertFalse(Walker.walk(mem, g, root, gpa, Access.READ | PRIV, true, r), "a G-stage leaf without U");
        assertEquals(org.iommulab.api.translation.FaultKind.PERMISSION, r.faultKind());
    }
}
