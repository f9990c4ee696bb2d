package org.iommulab.pgtable;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.List;
import java.util.Random;

import org.iommulab.api.dto.WalkStepDTO;
import org.iommulab.api.translation.Access;
import org.iommulab.api.translation.FaultKind;
import org.iommulab.api.translation.Stage;
import org.iommulab.pgtable.FormatCatalog.Case;
import org.iommulab.pgtable.format.ArmGranule;
import org.iommulab.pgtable.format.ArmStage1;
import org.iommulab.pgtable.format.ArmStage2;
import org.iommulab.pgtable.format.VtdSecondStage;
import org.iommulab.pgtable.format.X86FirstStage;
import org.iommulab.platform.internal.memory.SparseMemory;
import org.junit.jupiter.api.Test;

/**
 * The walker over hand-built tables: each check is a rule of the Intel SDM (IA-32e paging), the VT-d
 * specification (second-stage entries) or the Arm ARM (VMSAv8-64), written with raw entries.
 */
class WalkerTest {
    /** Table addresses, one per depth. */
    static final long[] TBL = {0x10_0000L, 0x10_1000L, 0x10_2000L, 0x10_3000L, 0x10_4000L};
    /** The data page every chain maps. */
    static final long PAGE = 0x4_5678_9000L;

    static final int R = Access.READ;
    static final int W = Access.WRITE;
    static final int X = Access.EXEC;
    static final int PRIV = Access.PRIV;

    // VMSAv8-64 descriptor bits the format keeps package private.
    static final long ARM_TABLE = 3;
    static final long ARM_PAGE = 3;
    static final long ARM_BLOCK = 1;
    static final long ARM_AF = 1L << 10;
    static final long ARM_DBM = 1L << 51;

    final SparseMemory mem = new SparseMemory(52);
    final WalkResult r = new WalkResult();

    static long slot(PageTableFormat f, long table, long va, int depth) {
        return table + ((long) f.index(va, depth) << 3);
    }

    /**
     * Writes a full chain for {@code va}: {@code TBL[d+1] | tableBits} at every depth above the
     * last, {@code leaf} at the last; returns the entry addresses.
     */
    long[] chain(PageTableFormat f, long va, long tableBits, long leaf) {
        int n = f.levels();
        long[] slots = new long[n];
        for (int d = 0; d < n; d++) {
            slots[d] = slot(f, TBL[d], va, d);
            mem.write64(slots[d], d == n - 1 ? leaf : TBL[d + 1] | tableBits);
        }
        return slots;
    }

    long[] read(long[] slots) {
        long[] v = new long[slots.length];
        for (int i = 0; i < slots.length; i++) {
            v[i] = mem.read64(slots[i]);
        }
        return v;
    }

    boolean walk(PageTableFormat f, long va, int access) {
        return Walker.walk(mem, f, TBL[0], va, access, false, r);
    }

    boolean walkUpdate(PageTableFormat f, long va, int access) {
        return Walker.walk(mem, f, TBL[0], va, access, true, r);
    }

    void assertFault(WalkFault fault, FaultKind kind, int depth, String level) {
        assertFalse(r.isSuccess(), r.toString());
        assertEquals(fault, r.fault(), r.toString());
        assertEquals(kind, r.faultKind(), r.toString());
        assertEquals(depth, r.faultDepth(), r.toString());
        assertEquals(level, r.faultLevel(), r.toString());
    }

    void assertOk(long output, int pageShift) {
        assertTrue(r.isSuccess(), r.toString());
        assertEquals(output, r.outputAddress(), r.toString());
        assertEquals(pageShift, r.pageShift(), r.toString());
    }

    // =============================================================================================
    // x86-64 first stage (Intel SDM Vol. 3A §4.5)
    // =============================================================================================

    static final long XP = 1L; // P
    static final long XRW = 1L << 1; // R/W
    static final long XUS = 1L << 2; // U/S
    static final long XA = 1L << 5; // A
    static final long XD_ = 1L << 6; // D
    static final long XPS = 1L << 7; // PS
    static final long XXD = 1L << 63; // XD

    @Test
    void x86NonCanonicalAddressesFault() throws Exception {
        X86FirstStage f = X86FirstStage.of(4, 46, true, true, true);
        mem.write64(TBL[0], 0); // back the (empty) root
        for (long a : new long[] {0x0000_8000_0000_0000L, 0xffff_7fff_ffff_f000L, 0x8000_0000_0000_0000L,
            0x0001_0000_0000_0000L, 0x0080_0000_0000_0000L}) {
            assertFalse(walk(f, a, R | PRIV));
            assertEquals(WalkFault.NON_CANONICAL, r.fault(), r.toString());
            assertEquals(FaultKind.TRANSLATION, r.faultKind());
            assertEquals(Stage.STAGE1, r.faultStage());
            assertEquals(0, r.steps(), "no entry is read for a non-canonical address");
            assertEquals(-1, r.faultEntryAddress());
            assertEquals(a, r.faultAddress());
        }
        // Canonical addresses are walked (and find nothing).
        for (long a : new long[] {0, 0x0000_7fff_ffff_f000L, 0xffff_8000_0000_0000L, 0xffff_ffff_ffff_f000L}) {
            assertFalse(walk(f, a, R | PRIV));
            assertFault(WalkFault.NOT_PRESENT, FaultKind.TRANSLATION, 0, "PML4E");
            assertEquals(1, r.steps());
        }

        // 5-level: 57-bit canonical form.
        X86FirstStage f5 = X86FirstStage.of(5, 46, true, true, true);
        assertFalse(walk(f5, 0x0080_0000_0000_0000L, R | PRIV));
        assertFault(WalkFault.NOT_PRESENT, FaultKind.TRANSLATION, 0, "PML5E");
        for (long a : new long[] {0x0100_0000_0000_0000L, 0xfe00_0000_0000_0000L}) {
            assertFalse(walk(f5, a, R | PRIV));
            assertEquals(WalkFault.NON_CANONICAL, r.fault(), r.toString());
        }
        assertFalse(walk(f5, 0xff00_0000_0000_0000L, R | PRIV));
        assertEquals(WalkFault.NOT_PRESENT, r.fault(), r.toString());
    }

    @Test
    void x86UpperHalfCanonicalAddressesWalk() throws Exception {
        X86FirstStage f = X86FirstStage.of(4, 46, true, true, true);
        for (long va : new long[] {0xffff_8000_1234_5678L, 0xffff_ffff_ffff_fabcL}) {
            long[] slots = chain(f, va, XP | XRW | XUS, PAGE | XP | XRW | XUS);
            assertTrue(walk(f, va, R | W | PRIV), r.toString());
            assertOk(PAGE | (va & 0xfff), 12);
            assertEquals(TBL[0] + 8L * ((va >>> 39) & 511), r.stepAddress(0));
            assertEquals(slots[0], r.stepAddress(0));
        }
        assertEquals(TBL[0] + 256 * 8, slot(f, TBL[0], 0xffff_8000_1234_5678L, 0));
    }

    @Test
    void x86PageSizeBitReservedInPml4AndPml5() throws Exception {
        X86FirstStage f = X86FirstStage.of(4, 46, true, true, true);
        long va = 0x1234_5678_9000L;
        long s = slot(f, TBL[0], va, 0);
        mem.write64(s, 0x80_0000_0000L | XP | XRW | XUS | XPS);
        assertFalse(walk(f, va, R | PRIV));
        assertFault(WalkFault.RESERVED, FaultKind.TRANSLATION, 0, "PML4E");
        assertEquals(s, r.faultEntryAddress());
        assertEquals(1, r.steps());

        X86FirstStage f5 = X86FirstStage.of(5, 46, true, true, true);
        mem.write64(slot(f5, TBL[0], va, 0), TBL[1] | XP | XRW | XUS | XPS);
        assertFalse(walk(f5, va, R | PRIV));
        assertFault(WalkFault.RESERVED, FaultKind.TRANSLATION, 0, "PML5E");
        mem.write64(slot(f5, TBL[0], va, 0), TBL[1] | XP | XRW | XUS);
        mem.write64(slot(f5, TBL[1], va, 1), TBL[2] | XP | XRW | XUS | XPS);
        assertFalse(walk(f5, va, R | PRIV));
        assertFault(WalkFault.RESERVED, FaultKind.TRANSLATION, 1, "PML4E");
    }

    @Test
    void x86OneGigabytePages() throws Exception {
        long va = 0x12_7654_3210L;
        long page = 0x3_c000_0000L;
        X86FirstStage no1g = X86FirstStage.of(4, 46, false, true, true);
        X86FirstStage yes1g = X86FirstStage.of(4, 46, true, true, true);
        mem.write64(slot(yes1g, TBL[0], va, 0), TBL[1] | XP | XRW | XUS);
        long pdpte = slot(yes1g, TBL[1], va, 1);
        mem.write64(pdpte, page | XP | XRW | XUS | XPS);
        assertFalse(walk(no1g, va, R | PRIV));
        assertFault(WalkFault.RESERVED, FaultKind.TRANSLATION, 1, "PDPTE");
        assertEquals(pdpte, r.faultEntryAddress());

        assertTrue(walk(yes1g, va, R | PRIV), r.toString());
        assertOk(page | (va & 0x3fff_ffffL), 30);
        assertEquals(2, r.steps());

        // PAT (bit 12) is an attribute, not an address bit; bits 29:13 are reserved.
        mem.write64(pdpte, page | XP | XRW | XUS | XPS | (1L << 12));
        assertTrue(walk(yes1g, va, R | PRIV), r.toString());
        assertOk(page | (va & 0x3fff_ffffL), 30);
        for (int bit : new int[] {13, 20, 29}) {
            mem.write64(pdpte, page | XP | XRW | XUS | XPS | (1L << bit));
            assertFalse(walk(yes1g, va, R | PRIV), "1 GiB page with bit " + bit);
            assertFault(WalkFault.RESERVED, FaultKind.TRANSLATION, 1, "PDPTE");
        }
    }

    @Test
    void x86TwoMegabytePages() throws Exception {
        X86FirstStage f = X86FirstStage.of(4, 46, false, true, true);
        long va = 0x7f_1234_5678L;
        long page = 0x1_2340_0000L;
        mem.write64(slot(f, TBL[0], va, 0), TBL[1] | XP | XRW | XUS);
        mem.write64(slot(f, TBL[1], va, 1), TBL[2] | XP | XRW | XUS);
        long pde = slot(f, TBL[2], va, 2);
        mem.write64(pde, page | XP | XRW | XUS | XPS | (1L << 12));
        assertTrue(walk(f, va, R | PRIV), r.toString());
        assertOk(page | (va & 0x1f_ffffL), 21);
        assertEquals(3, r.steps());
        for (int bit : new int[] {13, 16, 20}) {
            mem.write64(pde, page | XP | XRW | XUS | XPS | (1L << bit));
            assertFalse(walk(f, va, R | PRIV), "2 MiB page with bit " + bit);
            assertFault(WalkFault.RESERVED, FaultKind.TRANSLATION, 2, "PDE");
        }
        // In a PTE bit 7 is PAT, not PS: still a 4 KiB page.
        mem.write64(pde, TBL[3] | XP | XRW | XUS);
        mem.write64(slot(f, TBL[3], va, 3), PAGE | XP | XRW | XUS | XPS);
        assertTrue(walk(f, va, R | PRIV), r.toString());
        assertOk(PAGE | 0x678, 12);
    }

    @Test
    void x86ReservedBitsAboveMaxPhyAddr() throws Exception {
        X86FirstStage f46 = X86FirstStage.of(4, 46, true, true, true);
        X86FirstStage f52 = X86FirstStage.of(4, 52, true, true, true);
        long va = 0x1234_5678_9abcL;
        long[] slots = chain(f46, va, XP | XRW | XUS, PAGE | XP | XRW | XUS);
        assertTrue(walk(f46, va, R | PRIV), r.toString());

        mem.write64(slots[1], TBL[2] | XP | XRW | XUS | (1L << 46));
        assertFalse(walk(f46, va, R | PRIV));
        assertFault(WalkFault.RESERVED, FaultKind.TRANSLATION, 1, "PDPTE");
        mem.write64(slots[1], TBL[2] | XP | XRW | XUS | (1L << 51));
        assertFalse(walk(f46, va, R | PRIV));
        assertFault(WalkFault.RESERVED, FaultKind.TRANSLATION, 1, "PDPTE");
        mem.write64(slots[1], TBL[2] | XP | XRW | XUS);

        mem.write64(slots[3], PAGE | XP | XRW | XUS | (1L << 51));
        assertFalse(walk(f46, va, R | PRIV));
        assertFault(WalkFault.RESERVED, FaultKind.TRANSLATION, 3, "PTE");
        // With MAXPHYADDR 52 bit 51 is an address bit.
        assertTrue(walk(f52, va, R | PRIV), r.toString());
        assertOk(PAGE | (1L << 51) | 0xabc, 12);

        // Bits 62:52 are ignored (protection key 62:59 unused here).
        mem.write64(slots[3], PAGE | XP | XRW | XUS | 0x7ff0_0000_0000_0000L);
        assertTrue(walk(f46, va, R | PRIV), r.toString());
        assertOk(PAGE | 0xabc, 12);
        mem.write64(slots[2], TBL[3] | XP | XRW | XUS | 0x7ff0_0000_0000_0000L);
        assertTrue(walk(f46, va, R | PRIV), r.toString());
        assertOk(PAGE | 0xabc, 12);
    }

    @Test
    void x86ExecuteDisable() throws Exception {
        X86FirstStage noNxe = X86FirstStage.of(4, 46, true, false, true);
        X86FirstStage nxe = X86FirstStage.of(4, 46, true, true, true);
        long va = 0x1234_5678_9abcL;
        long[] slots = chain(nxe, va, XP | XRW | XUS, PAGE | XP | XRW | XUS | XXD);
        // XD is reserved without execute-disable.
        assertFalse(walk(noNxe, va, R | PRIV));
        assertFault(WalkFault.RESERVED, FaultKind.TRANSLATION, 3, "PTE");
        assertTrue(walk(nxe, va, R | PRIV), r.toString());
        assertFalse(walk(nxe, va, R | X | PRIV));
        assertFault(WalkFault.EXEC, FaultKind.PERMISSION, 3, "PTE");
        assertFalse(walk(nxe, va, R | X));
        assertEquals(WalkFault.EXEC, r.fault(), r.toString());

        mem.write64(slots[3], PAGE | XP | XRW | XUS);
        assertTrue(walk(noNxe, va, R | X | PRIV), r.toString());
        assertTrue(walk(nxe, va, R | X | PRIV), r.toString());
        // XD in a table entry: reserved without NXE, ORed into the leaf with it.
        mem.write64(slots[0], TBL[1] | XP | XRW | XUS | XXD);
        assertFalse(walk(noNxe, va, R | PRIV));
        assertFault(WalkFault.RESERVED, FaultKind.TRANSLATION, 0, "PML4E");
        assertTrue(walk(nxe, va, R | W | PRIV), r.toString());
        assertFalse(walk(nxe, va, R | X | PRIV));
        assertFault(WalkFault.EXEC, FaultKind.PERMISSION, 3, "PTE");
    }

    @Test
    void x86AccessedAndDirtyFlags() throws Exception {
        X86FirstStage f = X86FirstStage.of(4, 46, true, true, true);
        long va = 0x1234_5678_9abcL;
        long table = XP | XRW | XUS;
        long leaf = PAGE | XP | XRW | XUS;
        long[] slots = chain(f, va, table, leaf);
        long[] clean = read(slots);

        // Looking (update = false) writes nothing.
        assertTrue(walk(f, va, R | W | PRIV), r.toString());
        assertArrayEquals(clean, read(slots));

        // A read sets A on every entry used, D nowhere.
        assertTrue(walkUpdate(f, va, R | PRIV), r.toString());
        long[] v = read(slots);
        for (int d = 0; d < 4; d++) {
            assertEquals(clean[d] | XA, v[d], "entry at depth " + d + " after a read");
        }
        assertArrayEquals(clean, read(r, 4), "the steps record the entries as read");

        // A write sets A everywhere and D on the leaf only.
        slots = chain(f, va, table, leaf);
        assertTrue(walkUpdate(f, va, W | PRIV), r.toString());
        v = read(slots);
        for (int d = 0; d < 3; d++) {
            assertEquals(clean[d] | XA, v[d], "table entry at depth " + d + " after a write");
        }
        assertEquals(clean[3] | XA | XD_, v[3], "leaf after a write");

        // Already set: nothing changes.
        long[] before = read(slots);
        assertTrue(walkUpdate(f, va, W | PRIV), r.toString());
        assertArrayEquals(before, read(slots));

        // A 2 MiB page gets D at the PDE.
        mem.write64(slots[2], 0x1_2340_0000L | XP | XRW | XUS | XPS);
        assertTrue(walkUpdate(f, va, W | PRIV), r.toString());
        assertEquals(0x1_2340_0000L | XP | XRW | XUS | XPS | XA | XD_, mem.read64(slots[2]));
    }

    private static long[] read(WalkResult r, int n) {
        long[] v = new long[n];
        for (int i = 0; i < n; i++) {
            v[i] = r.stepEntry(i);
        }
        return v;
    }

    /**
     * The walker's contract (class Javadoc: accessed/dirty flags are set "only for an access that is
     * allowed") and the brief: a faulting access writes no flag, not even the A flags of the table
     * entries above the faulting entry.
     */
    @Test
    void x86FaultingWalksSetAccessedOnTablesUsedButNeverTouchTheLeaf() throws Exception {
        // Intel SDM Vol. 3A §4.8: the accessed flag is set in every paging-structure entry the walk
        // uses, even when the walk then faults; the leaf's A/D only for an allowed access.
        X86FirstStage f = X86FirstStage.of(4, 46, true, true, true);
        long va = 0x1234_5678_9abcL;

        // Write to a read-only leaf: the three tables used get A, the PTE stays untouched.
        long[] slots = chain(f, va, XP | XRW | XUS, PAGE | XP | XUS);
        long[] clean = read(slots);
        assertFalse(walkUpdate(f, va, W | PRIV));
        assertFault(WalkFault.WRITE, FaultKind.PERMISSION, 3, "PTE");
        long[] after = read(slots);
        for (int i = 0; i < 3; i++) {
            assertEquals(clean[i] | XA, after[i], "table entry " + i + " used by the walk gets A");
        }
        assertEquals(clean[3], after[3], "a write denied at the PTE set flags in the PTE");

        // Not-present PTE: tables used get A, the PTE is unchanged.
        slots = chain(f, va, XP | XRW | XUS, 0);
        clean = read(slots);
        assertFalse(walkUpdate(f, va, R | PRIV));
        assertFault(WalkFault.NOT_PRESENT, FaultKind.TRANSLATION, 3, "PTE");
        assertEquals(clean[3], read(slots)[3]);

        // Supervisor-only PDE, user request: the leaf is not marked.
        slots = chain(f, va, XP | XRW | XUS, PAGE | XP | XRW | XUS);
        mem.write64(slots[2], TBL[3] | XP | XRW);
        clean = read(slots);
        assertFalse(walkUpdate(f, va, R));
        assertFault(WalkFault.PRIVILEGE, FaultKind.PERMISSION, 3, "PTE");
        assertEquals(clean[3], read(slots)[3], "a user request denied by U/S set flags in the PTE");

        // Without update (explain, driver queries) nothing is written at all.
        slots = chain(f, va, XP | XRW | XUS, PAGE | XP | XUS);
        clean = read(slots);
        assertFalse(walk(f, va, W | PRIV));
        assertArrayEquals(clean, read(slots));
    }

    @Test
    void x86ReadWriteAndUserSupervisorAndedAcrossLevels() throws Exception {
        X86FirstStage f = X86FirstStage.of(4, 46, true, true, true);
        long va = 0x1234_5678_9abcL;
        long[] slots = chain(f, va, XP | XRW | XUS, PAGE | XP | XRW | XUS);
        assertTrue(walk(f, va, R | W), r.toString());
        assertEquals(Perm.ALL, r.permissions());

        // A read-only PDE above a writable PTE denies writes.
        mem.write64(slots[2], TBL[3] | XP | XUS);
        assertTrue(walk(f, va, R), r.toString());
        assertEquals(0, r.permissions() & Perm.WRITE);
        assertFalse(walk(f, va, W | PRIV));
        assertFault(WalkFault.WRITE, FaultKind.PERMISSION, 3, "PTE");
        assertFalse(walk(f, va, R | W));
        assertEquals(WalkFault.WRITE, r.fault());
        mem.write64(slots[2], TBL[3] | XP | XRW | XUS);

        // A supervisor PDPTE above user entries denies user requests, not supervisor ones.
        mem.write64(slots[1], TBL[2] | XP | XRW);
        assertFalse(walk(f, va, R));
        assertFault(WalkFault.PRIVILEGE, FaultKind.PERMISSION, 3, "PTE");
        assertTrue(walk(f, va, R | W | PRIV), r.toString());
        assertEquals(0, r.permissions() & Perm.USER);
        mem.write64(slots[1], TBL[2] | XP | XRW | XUS);

        // A supervisor leaf.
        mem.write64(slots[3], PAGE | XP | XRW);
        assertFalse(walk(f, va, R));
        assertEquals(WalkFault.PRIVILEGE, r.fault());
        assertTrue(walk(f, va, R | W | PRIV), r.toString());

        // Read-only PML4E, writable everything else.
        mem.write64(slots[3], PAGE | XP | XRW | XUS);
        mem.write64(slots[0], TBL[1] | XP | XUS);
        assertFalse(walk(f, va, W));
        assertEquals(WalkFault.WRITE, r.fault());
    }

    // =============================================================================================
    // VT-d second stage (VT-d spec §9.8)
    // =============================================================================================

    static final long SR = 1L; // R
    static final long SW = 1L << 1; // W
    static final long SX = 1L << 2; // X
    static final long SPS = 1L << 7; // PS
    static final long SA = 1L << 8; // A
    static final long SD = 1L << 9; // D
    static final long SSNP = 1L << 11; // SNP

    @Test
    void vtdReadAndWriteClearIsNotPresent() throws Exception {
        VtdSecondStage f = VtdSecondStage.of(2, 48, true, true, false, false);
        long gpa = 0x1234_5678_9abcL;
        long[] slots = chain(f, gpa, SR | SW, PAGE | SR | SW);
        assertTrue(walk(f, gpa, R | W), r.toString());
        assertOk(PAGE | 0xabc, 12);

        mem.write64(slots[0], TBL[1] | SSNP | SA);
        assertFalse(walk(f, gpa, R));
        assertFault(WalkFault.NOT_PRESENT, FaultKind.TRANSLATION, 0, "SL-PML4E");
        assertEquals(Stage.STAGE2, r.faultStage());
        assertEquals(slots[0], r.faultEntryAddress());
        mem.write64(slots[0], TBL[1] | SR | SW);
        mem.write64(slots[3], PAGE | SSNP | (6L << 3));
        assertFalse(walk(f, gpa, R));
        assertFault(WalkFault.NOT_PRESENT, FaultKind.TRANSLATION, 3, "SL-PTE");

        // Read only or write only entries are present.
        mem.write64(slots[3], PAGE | SW);
        assertTrue(walk(f, gpa, W), r.toString());
        assertFalse(walk(f, gpa, R));
        assertFault(WalkFault.READ, FaultKind.PERMISSION, 3, "SL-PTE");
        mem.write64(slots[3], PAGE | SR);
        assertTrue(walk(f, gpa, R), r.toString());
        assertFalse(walk(f, gpa, W));
        assertFault(WalkFault.WRITE, FaultKind.PERMISSION, 3, "SL-PTE");
    }

    @Test
    void vtdPermissionsAndedAcrossLevels() throws Exception {
        VtdSecondStage f = VtdSecondStage.of(2, 48, true, true, true, false);
        long gpa = 0x1234_5678_9abcL;
        long[] slots = chain(f, gpa, SR | SW | SX, PAGE | SR | SW | SX);
        assertTrue(walk(f, gpa, R | W | X), r.toString());
        mem.write64(slots[1], TBL[2] | SR | SX);
        assertFalse(walk(f, gpa, W));
        assertFault(WalkFault.WRITE, FaultKind.PERMISSION, 3, "SL-PTE");
        assertTrue(walk(f, gpa, R | X), r.toString());
        mem.write64(slots[1], TBL[2] | SW | SX);
        assertFalse(walk(f, gpa, R));
        assertFault(WalkFault.READ, FaultKind.PERMISSION, 3, "SL-PTE");
        mem.write64(slots[1], TBL[2] | SR | SW);
        assertFalse(walk(f, gpa, R | X));
        assertFault(WalkFault.EXEC, FaultKind.PERMISSION, 3, "SL-PTE");
        mem.write64(slots[1], TBL[2] | SR | SW | SX);
        mem.write64(slots[3], PAGE | SR | SW);
        assertFalse(walk(f, gpa, R | X));
        assertFault(WalkFault.EXEC, FaultKind.PERMISSION, 3, "SL-PTE");

        // Without execute requests enabled X is not checked.
        VtdSecondStage noX = VtdSecondStage.of(2, 48, true, true, false, false);
        assertTrue(walk(noX, gpa, R | X), r.toString());
        // Second stage has no privilege levels.
        assertTrue(walk(noX, gpa, R | W), r.toString());
    }

    @Test
    void vtdPageSizeBit() throws Exception {
        long gpa = 0x12_7654_3210L;
        long page1g = 0x3_c000_0000L;
        long page2m = 0x1_2340_0000L;
        VtdSecondStage all = VtdSecondStage.of(2, 48, true, true, false, false);
        VtdSecondStage only2m = VtdSecondStage.of(2, 48, true, false, false, false);
        VtdSecondStage none = VtdSecondStage.of(2, 48, false, false, false, false);
        long[] slots = chain(all, gpa, SR | SW, PAGE | SR | SW);

        // PS in an SL-PML4E is reserved.
        mem.write64(slots[0], 0x80_0000_0000L | SR | SW | SPS);
        assertFalse(walk(all, gpa, R));
        assertFault(WalkFault.RESERVED, FaultKind.TRANSLATION, 0, "SL-PML4E");
        mem.write64(slots[0], TBL[1] | SR | SW);

        // 1 GiB page in an SL-PDPE.
        mem.write64(slots[1], page1g | SR | SW | SPS);
        assertTrue(walk(all, gpa, R), r.toString());
        assertOk(page1g | (gpa & 0x3fff_ffffL), 30);
        assertFalse(walk(only2m, gpa, R));
        assertFault(WalkFault.RESERVED, FaultKind.TRANSLATION, 1, "SL-PDPE");
        mem.write64(slots[1], page1g | SR | SW | SPS | (1L << 12));
        assertFalse(walk(all, gpa, R), "bit 12 of a 1 GiB SL-PDPE is reserved");
        assertFault(WalkFault.RESERVED, FaultKind.TRANSLATION, 1, "SL-PDPE");
        mem.write64(slots[1], TBL[2] | SR | SW);

        // 2 MiB page in an SL-PDE.
        mem.write64(slots[2], page2m | SR | SW | SPS);
        assertTrue(walk(only2m, gpa, R), r.toString());
        assertOk(page2m | (gpa & 0x1f_ffffL), 21);
        assertFalse(walk(none, gpa, R));
        assertFault(WalkFault.RESERVED, FaultKind.TRANSLATION, 2, "SL-PDE");
        mem.write64(slots[2], page2m | SR | SW | SPS | (1L << 20));
        assertFalse(walk(all, gpa, R));
        assertFault(WalkFault.RESERVED, FaultKind.TRANSLATION, 2, "SL-PDE");

        // AW 3: PS in an SL-PML5E or SL-PML4E is reserved.
        VtdSecondStage five = VtdSecondStage.of(3, 48, true, true, false, false);
        mem.write64(slot(five, TBL[0], gpa, 0), TBL[1] | SR | SW | SPS);
        assertFalse(walk(five, gpa, R));
        assertFault(WalkFault.RESERVED, FaultKind.TRANSLATION, 0, "SL-PML5E");
        mem.write64(slot(five, TBL[0], gpa, 0), TBL[1] | SR | SW);
        mem.write64(slot(five, TBL[1], gpa, 1), TBL[2] | SR | SW | SPS);
        assertFalse(walk(five, gpa, R));
        assertFault(WalkFault.RESERVED, FaultKind.TRANSLATION, 1, "SL-PML4E");
    }

    @Test
    void vtdReservedAddressBitsAboveHostAddressWidth() throws Exception {
        VtdSecondStage f = VtdSecondStage.of(2, 39, true, true, false, false);
        long gpa = 0x1234_5678_9abcL;
        long[] slots = chain(f, gpa, SR | SW, PAGE & ((1L << 39) - 1) | SR | SW);
        assertTrue(walk(f, gpa, R), r.toString());
        mem.write64(slots[1], TBL[2] | SR | SW | (1L << 40));
        assertFalse(walk(f, gpa, R));
        assertFault(WalkFault.RESERVED, FaultKind.TRANSLATION, 1, "SL-PDPE");
        mem.write64(slots[1], TBL[2] | SR | SW);
        mem.write64(slots[3], (1L << 39) | SR | SW);
        assertFalse(walk(f, gpa, R));
        assertFault(WalkFault.RESERVED, FaultKind.TRANSLATION, 3, "SL-PTE");
    }

    @Test
    void vtdAccessedDirtyOnlyWithAdTracking() throws Exception {
        long gpa = 0x1234_5678_9abcL;
        VtdSecondStage ad = VtdSecondStage.of(2, 48, true, true, false, true);
        VtdSecondStage noAd = VtdSecondStage.of(2, 48, true, true, false, false);
        long[] slots = chain(ad, gpa, SR | SW, PAGE | SR | SW);
        long[] clean = read(slots);

        assertTrue(Walker.walk(mem, noAd, TBL[0], gpa, W, true, r), r.toString());
        assertArrayEquals(clean, read(slots), "A/D written without A/D tracking");
        assertTrue(walk(ad, gpa, W), r.toString());
        assertArrayEquals(clean, read(slots), "A/D written with update = false");

        assertTrue(walkUpdate(ad, gpa, R), r.toString());
        long[] v = read(slots);
        for (int d = 0; d < 4; d++) {
            assertEquals(clean[d] | SA, v[d], "depth " + d + " after a read");
        }
        slots = chain(ad, gpa, SR | SW, PAGE | SR | SW);
        assertTrue(walkUpdate(ad, gpa, W), r.toString());
        v = read(slots);
        for (int d = 0; d < 3; d++) {
            assertEquals(clean[d] | SA, v[d], "table entry at depth " + d + " after a write");
        }
        assertEquals(clean[3] | SA | SD, v[3], "leaf after a write");

        // A and D set by software are accepted without A/D tracking (they are ignored, not reserved).
        assertTrue(walk(noAd, gpa, R | W), r.toString());
    }

    @Test
    void vtdFaultingWalkNeverMarksTheLeaf() throws Exception {
        long gpa = 0x1234_5678_9abcL;
        VtdSecondStage ad = VtdSecondStage.of(2, 48, true, true, false, true);
        long[] slots = chain(ad, gpa, SR | SW, PAGE | SR);
        long[] clean = read(slots);
        assertFalse(walkUpdate(ad, gpa, W));
        assertFault(WalkFault.WRITE, FaultKind.PERMISSION, 3, "SL-PTE");
        long[] after = read(slots);
        assertEquals(clean[3], after[3], "a write denied at the SL-PTE set flags in the SL-PTE");
        assertEquals(clean[0] | SA, after[0], "the tables used get A");
    }

    @Test
    void vtdInputBeyondAddressWidth() throws Exception {
        mem.write64(TBL[0], 0);
        int[][] cases = {{1, 39}, {2, 48}, {3, 57}};
        for (int[] c : cases) {
            VtdSecondStage f = VtdSecondStage.of(c[0], 48, true, true, false, false);
            assertEquals(c[1], f.inputBits());
            for (long a : new long[] {1L << c[1], (1L << c[1]) | 0xfff, -1L, Long.MIN_VALUE}) {
                assertFalse(walk(f, a, R));
                assertEquals(WalkFault.INPUT_RANGE, r.fault(), "AW " + c[0] + ": " + r);
                assertEquals(FaultKind.TRANSLATION, r.faultKind());
                assertEquals(Stage.STAGE2, r.faultStage());
                assertEquals(0, r.steps());
            }
            assertFalse(walk(f, (1L << c[1]) - 1, R));
            assertEquals(WalkFault.NOT_PRESENT, r.fault(), "AW " + c[0] + ": " + r);
        }
    }

    // =============================================================================================
    // VMSAv8-64 stage 1 (Arm ARM D8)
    // =============================================================================================

    /** The qos-smmuv3 IOVA: indices 1, 2, 3, 4 at L0..L3 with the 4 KiB granule. */
    static final long IOVA = 0x80_8060_4567L;
    static final long AP1 = 1L << 6; // AP[1]: EL0 access
    static final long AP2 = 1L << 7; // AP[2]: read-only
    static final long PXN = 1L << 53;
    static final long UXN = 1L << 54;
    static final long PXN_TABLE = 1L << 59;
    static final long UXN_TABLE = 1L << 60;
    static final long AP_TABLE_NO_EL0 = 1L << 61; // APTable[0]
    static final long AP_TABLE_RDONLY = 1L << 62; // APTable[1]
    static final long EL0_RW = AP1;
    static final long EL1_RW = 0;
    static final long EL0_RO = AP1 | AP2;
    static final long EL1_RO = AP2;

    static ArmStage1 s1(int t0sz, int ob, boolean ha, boolean hd, boolean affd) throws Exception {
        return ArmStage1.of(ArmGranule.G4K, t0sz, ob, ha, hd, affd);
    }

    long armPage(long ap) {
        return PAGE | ARM_PAGE | ARM_AF | ap;
    }

    @Test
    void armStage1IndicesOfTheQemuIova() throws Exception {
        ArmStage1 f = s1(16, 48, false, false, false);
        assertEquals(1, f.index(IOVA, 0));
        assertEquals(2, f.index(IOVA, 1));
        assertEquals(3, f.index(IOVA, 2));
        assertEquals(4, f.index(IOVA, 3));
        long[] slots = chain(f, IOVA, ARM_TABLE, armPage(EL0_RW));
        assertTrue(walk(f, IOVA, R | W), r.toString());
        assertOk(PAGE | 0x567, 12);
        assertEquals(TBL[0] + 8, slots[0]);
        assertEquals(TBL[3] + 32, slots[3]);
    }

    @Test
    void armStage1DescriptorTypes() throws Exception {
        ArmStage1 f = s1(16, 48, false, false, false);
        long[] slots = chain(f, IOVA, ARM_TABLE, armPage(EL0_RW));
        // A block at level 0 is reserved with the 4 KiB granule: translation fault.
        mem.write64(slots[0], 0x80_0000_0000L | ARM_BLOCK | ARM_AF | EL0_RW);
        assertFalse(walk(f, IOVA, R));
        assertFault(WalkFault.RESERVED, FaultKind.TRANSLATION, 0, "L0");
        mem.write64(slots[0], TBL[1] | ARM_TABLE);
        // 0b01 at level 3 is reserved.
        mem.write64(slots[3], PAGE | ARM_BLOCK | ARM_AF | EL0_RW);
        assertFalse(walk(f, IOVA, R));
        assertFault(WalkFault.RESERVED, FaultKind.TRANSLATION, 3, "L3");
        // Bit 0 clear: invalid whatever else is set.
        mem.write64(slots[3], PAGE | 2 | ARM_AF | EL0_RW);
        assertFalse(walk(f, IOVA, R));
        assertFault(WalkFault.NOT_PRESENT, FaultKind.TRANSLATION, 3, "L3");
        mem.write64(slots[3], armPage(EL0_RW));

        // 1 GiB block at L1, 2 MiB block at L2.
        mem.write64(slots[1], 0x3_8000_0000L | ARM_BLOCK | ARM_AF | EL0_RW);
        assertTrue(walk(f, IOVA, R), r.toString());
        assertOk(0x3_8000_0000L | (IOVA & 0x3fff_ffffL), 30);
        mem.write64(slots[1], TBL[2] | ARM_TABLE);
        mem.write64(slots[2], 0x1_2340_0000L | ARM_BLOCK | ARM_AF | EL0_RW);
        assertTrue(walk(f, IOVA, R), r.toString());
        assertOk(0x1_2340_0000L | (IOVA & 0x1f_ffffL), 21);
    }

    @Test
    void armStage1BlockLevelsOfLargerGranules() throws Exception {
        // 16 KiB, 47-bit input: L1 start; blocks only at L2 (32 MiB).
        ArmStage1 f16 = ArmStage1.of(ArmGranule.G16K, 17, 48, false, false, false);
        assertEquals(1, f16.startLevel());
        long va = 0x4567_89ab_cdefL;
        long[] s = {slot(f16, 0x20_0000L, va, 0), slot(f16, 0x30_0000L, va, 1)};
        mem.write64(s[0], 0x1_0000_0000L | ARM_BLOCK | ARM_AF | EL0_RW);
        assertFalse(Walker.walk(mem, f16, 0x20_0000L, va, R, false, r));
        assertFault(WalkFault.RESERVED, FaultKind.TRANSLATION, 0, "L1");
        mem.write64(s[0], 0x30_0000L | ARM_TABLE);
        mem.write64(s[1], 0x2_0000_0000L | ARM_BLOCK | ARM_AF | EL0_RW);
        assertTrue(Walker.walk(mem, f16, 0x20_0000L, va, R, false, r), r.toString());
        assertOk(0x2_0000_0000L | (va & ((1L << 25) - 1)), 25);

        // 64 KiB, 48-bit input: L1 start; blocks only at L2 (512 MiB).
        ArmStage1 f64 = ArmStage1.of(ArmGranule.G64K, 16, 48, false, false, false);
        assertEquals(1, f64.startLevel());
        long[] t = {slot(f64, 0x40_0000L, va, 0), slot(f64, 0x50_0000L, va, 1)};
        mem.write64(t[0], 0x1_0000_0000L | ARM_BLOCK | ARM_AF | EL0_RW);
        assertFalse(Walker.walk(mem, f64, 0x40_0000L, va, R, false, r));
        assertFault(WalkFault.RESERVED, FaultKind.TRANSLATION, 0, "L1");
        mem.write64(t[0], 0x50_0000L | ARM_TABLE);
        mem.write64(t[1], 0x2_0000_0000L | ARM_BLOCK | ARM_AF | EL0_RW);
        assertTrue(Walker.walk(mem, f64, 0x40_0000L, va, R, false, r), r.toString());
        assertOk(0x2_0000_0000L | (va & ((1L << 29) - 1)), 29);
    }

    @Test
    void armStage1AccessFlag() throws Exception {
        long pageNoAf = PAGE | ARM_PAGE | EL0_RW;
        ArmStage1 plain = s1(16, 48, false, false, false);
        long[] slots = chain(plain, IOVA, ARM_TABLE, pageNoAf);
        long[] clean = read(slots);
        assertFalse(walkUpdate(plain, IOVA, R));
        assertFault(WalkFault.ACCESS_FLAG, FaultKind.ACCESS_FLAG, 3, "L3");
        assertEquals(slots[3], r.faultEntryAddress());
        assertArrayEquals(clean, read(slots));

        ArmStage1 ha = s1(16, 48, true, false, false);
        assertTrue(walk(ha, IOVA, R), r.toString());
        assertArrayEquals(clean, read(slots), "AF set with update = false");
        assertTrue(walkUpdate(ha, IOVA, R), r.toString());
        assertEquals(pageNoAf | ARM_AF, mem.read64(slots[3]), "HA sets AF");
        assertEquals(clean[0], mem.read64(slots[0]));

        mem.write64(slots[3], pageNoAf);
        ArmStage1 affd = s1(16, 48, false, false, true);
        assertTrue(walkUpdate(affd, IOVA, R | W), r.toString());
        assertEquals(pageNoAf, mem.read64(slots[3]), "AFFD without HA leaves AF clear");

        // Address size is checked before the access flag.
        ArmStage1 oa40 = s1(16, 40, false, false, false);
        mem.write64(slots[3], (1L << 41) | ARM_PAGE | EL0_RW);
        assertFalse(walk(oa40, IOVA, R));
        assertFault(WalkFault.OUTPUT_RANGE, FaultKind.ADDRESS_SIZE, 3, "L3");
    }

    @Test
    void armStage1AccessPermissions() throws Exception {
        ArmStage1 f = s1(16, 48, false, false, false);
        long[] slots = chain(f, IOVA, ARM_TABLE, armPage(EL0_RW));
        assertTrue(walk(f, IOVA, R | W), r.toString());
        assertTrue(walk(f, IOVA, R | W | PRIV), r.toString());

        mem.write64(slots[3], armPage(EL0_RO));
        assertTrue(walk(f, IOVA, R), r.toString());
        assertFalse(walk(f, IOVA, W | PRIV));
        assertFault(WalkFault.WRITE, FaultKind.PERMISSION, 3, "L3");

        mem.write64(slots[3], armPage(EL1_RW));
        assertTrue(walk(f, IOVA, R | W | PRIV), r.toString());
        assertFalse(walk(f, IOVA, R));
        assertFault(WalkFault.PRIVILEGE, FaultKind.PERMISSION, 3, "L3");

        mem.write64(slots[3], armPage(EL1_RO));
        assertTrue(walk(f, IOVA, R | PRIV), r.toString());
        assertFalse(walk(f, IOVA, W | PRIV));
        assertEquals(WalkFault.WRITE, r.fault());
        assertFalse(walk(f, IOVA, R));
        assertEquals(WalkFault.PRIVILEGE, r.fault());

        // APTable[1] (bit 62) on the L1 table entry removes write permission below.
        mem.write64(slots[3], armPage(EL0_RW));
        mem.write64(slots[1], TBL[2] | ARM_TABLE | AP_TABLE_RDONLY);
        assertTrue(walk(f, IOVA, R), r.toString());
        assertFalse(walk(f, IOVA, W | PRIV));
        assertFault(WalkFault.WRITE, FaultKind.PERMISSION, 3, "L3");
        // APTable[0] (bit 61) removes EL0 access below.
        mem.write64(slots[1], TBL[2] | ARM_TABLE | AP_TABLE_NO_EL0);
        assertTrue(walk(f, IOVA, R | W | PRIV), r.toString());
        assertFalse(walk(f, IOVA, R));
        assertFault(WalkFault.PRIVILEGE, FaultKind.PERMISSION, 3, "L3");
        // Table attributes of a table entry never apply to a walk that does not go through it.
        mem.write64(slots[1], TBL[2] | ARM_TABLE);
        assertTrue(walk(f, IOVA, R | W), r.toString());
    }

    @Test
    void armStage1ExecuteNever() throws Exception {
        ArmStage1 f = s1(16, 48, false, false, false);
        long[] slots = chain(f, IOVA, ARM_TABLE, armPage(EL0_RO));
        assertTrue(walk(f, IOVA, R | X), r.toString());
        assertTrue(walk(f, IOVA, R | X | PRIV), r.toString());

        mem.write64(slots[3], armPage(EL0_RO) | UXN);
        assertFalse(walk(f, IOVA, R | X));
        assertFault(WalkFault.EXEC, FaultKind.PERMISSION, 3, "L3");
        assertTrue(walk(f, IOVA, R | X | PRIV), "UXN does not stop privileged fetches: " + r);

        mem.write64(slots[3], armPage(EL0_RO) | PXN);
        assertFalse(walk(f, IOVA, R | X | PRIV));
        assertFault(WalkFault.EXEC, FaultKind.PERMISSION, 3, "L3");
        assertTrue(walk(f, IOVA, R | X), "PXN does not stop unprivileged fetches: " + r);

        mem.write64(slots[3], armPage(EL0_RO));
        mem.write64(slots[0], TBL[1] | ARM_TABLE | UXN_TABLE);
        assertFalse(walk(f, IOVA, R | X));
        assertEquals(WalkFault.EXEC, r.fault());
        assertTrue(walk(f, IOVA, R | X | PRIV), r.toString());
        mem.write64(slots[0], TBL[1] | ARM_TABLE | PXN_TABLE);
        assertFalse(walk(f, IOVA, R | X | PRIV));
        assertEquals(WalkFault.EXEC, r.fault());
        assertTrue(walk(f, IOVA, R | X), r.toString());
        // Privileged-only page without PXN: privileged fetch allowed.
        mem.write64(slots[0], TBL[1] | ARM_TABLE);
        mem.write64(slots[3], armPage(EL1_RW));
        assertTrue(walk(f, IOVA, R | X | PRIV), r.toString());
    }

    /**
     * Arm ARM (EL1&0 regime, AArch64.S1ComputePermissions / CheckPermission: priv_xn = PXN OR
     * user_w): a page writable at EL0 (AP[2:1] = 0b01) is privileged execute-never whatever its PXN
     * bit says.
     */
    @Test
    void armStage1El0WritableIsPrivilegedExecuteNever() throws Exception {
        ArmStage1 f = s1(16, 48, false, false, false);
        chain(f, IOVA, ARM_TABLE, armPage(EL0_RW));
        assertTrue(walk(f, IOVA, R | X), "unprivileged fetch: " + r);
        assertFalse(walk(f, IOVA, R | X | PRIV), "privileged fetch from an EL0-writable page: " + r);
        assertFault(WalkFault.EXEC, FaultKind.PERMISSION, 3, "L3");
    }

    /**
     * Regression (found by {@link ReferenceWalkPropertyTest}): the implicit privileged execute-never
     * applies to memory writable at EL0 after the hierarchical permissions (Arm ARM D8.4.1,
     * AArch64.S1DirectBasePermissions: APTable is applied to (ur, uw) before px = NOT(pxn OR
     * pxn_table OR uw)). Under APTable[0] (no EL0 access) or APTable[1] (read only) an AP[2:1] = 0b01
     * page is not writable at EL0, so privileged fetches are allowed.
     */
    @Test
    void armStage1ApTableLiftsTheImplicitPrivilegedExecuteNever() throws Exception {
        ArmStage1 f = s1(16, 48, false, false, false);
        long[] slots = chain(f, IOVA, ARM_TABLE, armPage(EL0_RW));
        for (long apTable : new long[] {AP_TABLE_NO_EL0, AP_TABLE_RDONLY}) {
            mem.write64(slots[1], TBL[2] | ARM_TABLE | apTable);
            assertTrue(walk(f, IOVA, R | X | PRIV), String.format("APTable 0x%x: privileged fetch: %s", apTable, r));
            assertTrue((r.permissions() & Perm.PRIV_EXEC) != 0, r.toString());
        }
        mem.write64(slots[1], TBL[2] | ARM_TABLE);
        assertFalse(walk(f, IOVA, R | X | PRIV), "no APTable: EL0-writable, so privileged execute never: " + r);
    }

    /** DBM (bit 51) is an attribute of a leaf, not an output address bit. */
    @Test
    void armStage1DirtyBitModifierIsNotAnAddressBit() throws Exception {
        ArmStage1 f = s1(16, 48, false, false, false);
        chain(f, IOVA, ARM_TABLE, armPage(EL0_RO) | ARM_DBM);
        assertTrue(walk(f, IOVA, R), "read of a DBM page without HD: " + r);
        assertOk(PAGE | 0x567, 12);
        assertFalse(walk(f, IOVA, W));
        assertFault(WalkFault.WRITE, FaultKind.PERMISSION, 3, "L3");
    }

    @Test
    void armStage1HardwareDirtyStateClearsApReadOnly() throws Exception {
        ArmStage1 hd = s1(16, 48, true, true, false);
        long[] slots = chain(hd, IOVA, ARM_TABLE, armPage(EL0_RO) | ARM_DBM);
        assertTrue(walk(hd, IOVA, R | W), "write with HD and DBM: " + r);
        assertEquals(armPage(EL0_RO) | ARM_DBM, mem.read64(slots[3]), "update = false wrote the descriptor");
        assertTrue(walkUpdate(hd, IOVA, W), "write with HD and DBM: " + r);
        assertOk(PAGE | 0x567, 12);
        assertEquals(armPage(EL0_RW) | ARM_DBM, mem.read64(slots[3]), "AP[2] cleared: writable-dirty");

        // Without DBM the page stays read-only.
        mem.write64(slots[3], armPage(EL0_RO));
        assertFalse(walkUpdate(hd, IOVA, W));
        assertFault(WalkFault.WRITE, FaultKind.PERMISSION, 3, "L3");
        assertEquals(armPage(EL0_RO), mem.read64(slots[3]));
    }

    @Test
    void armStage1OutputAddressSize() throws Exception {
        ArmStage1 oa40 = s1(16, 40, false, false, false);
        long[] slots = chain(oa40, IOVA, ARM_TABLE, armPage(EL0_RW));
        assertTrue(walk(oa40, IOVA, R), r.toString());

        mem.write64(slots[1], TBL[2] | (1L << 40) | ARM_TABLE);
        assertFalse(walk(oa40, IOVA, R));
        assertFault(WalkFault.OUTPUT_RANGE, FaultKind.ADDRESS_SIZE, 1, "L1");
        assertEquals(slots[1], r.faultEntryAddress());
        assertEquals(2, r.steps());
        mem.write64(slots[1], TBL[2] | ARM_TABLE);

        mem.write64(slots[3], (PAGE & ((1L << 40) - 1)) | (1L << 41) | ARM_PAGE | ARM_AF | EL0_RW);
        assertFalse(walk(oa40, IOVA, R));
        assertFault(WalkFault.OUTPUT_RANGE, FaultKind.ADDRESS_SIZE, 3, "L3");
        mem.write64(slots[2], 0x100_0000_0000L | ARM_BLOCK | ARM_AF | EL0_RW);
        assertFalse(walk(oa40, IOVA, R));
        assertFault(WalkFault.OUTPUT_RANGE, FaultKind.ADDRESS_SIZE, 2, "L2");

        // Bits 51:48 of a table descriptor are not address bits with a 48-bit output size: see
        // armStage1TableDescriptorBits51To48AreNotAddressBits.
    }

    /**
     * Regression (found by {@link ReferenceWalkPropertyTest}): without 52-bit addressing a table
     * descriptor holds the next-level table address in bits 47:granule only; bits 50:48 are RES0 and
     * bits 58:51 IGNORED (Arm ARM D8.3.1; AArch64.NextTableBase takes descriptor&lt;47:granule&gt;). They
     * neither move the next table nor raise an Address size fault.
     */
    @Test
    void armStage1TableDescriptorBits51To48AreNotAddressBits() throws Exception {
        for (int oa : new int[] {40, 48}) {
            ArmStage1 f = s1(16, oa, false, false, false);
            long[] slots = chain(f, IOVA, ARM_TABLE, armPage(EL0_RW));
            for (int bit = 48; bit <= 51; bit++) {
                mem.write64(slots[0], TBL[1] | (1L << bit) | ARM_TABLE);
                assertTrue(walk(f, IOVA, R), "oa " + oa + ", bit " + bit + ": " + r);
                assertOk(PAGE | (IOVA & 0xfff), 12);
                assertEquals(slots[1], r.stepAddress(1), "the next table is still TBL[1]");
            }
        }
    }

    @Test
    void armStage1InputBeyondT0sz() throws Exception {
        mem.write64(TBL[0], 0);
        ArmStage1 f25 = s1(25, 48, false, false, false);
        assertEquals(1, f25.startLevel());
        for (long a : new long[] {1L << 39, 0x80_8060_4567L, -1L}) {
            assertFalse(walk(f25, a, R));
            assertFault(WalkFault.INPUT_RANGE, FaultKind.TRANSLATION, 0, "L1");
            assertEquals(0, r.steps());
            assertEquals(-1, r.faultEntryAddress());
        }
        assertFalse(walk(f25, (1L << 39) - 1, R));
        assertEquals(WalkFault.NOT_PRESENT, r.fault());
        ArmStage1 f16 = s1(16, 48, false, false, false);
        assertFalse(walk(f16, 1L << 48, R));
        assertFault(WalkFault.INPUT_RANGE, FaultKind.TRANSLATION, 0, "L0");
    }

    // =============================================================================================
    // VMSAv8-64 stage 2
    // =============================================================================================

    static final long S2R = 1L << 6; // S2AP[0]
    static final long S2XN = 1L << 54; // XN
    static final long S2W = 1L << 7; // S2AP[1]

    @Test
    void armStage2AccessPermissionsAndExecuteNever() throws Exception {
        ArmStage2 f = ArmStage2.of(ArmGranule.G4K, 24, 1, 48, false, false, false);
        assertEquals(1, f.startLevel());
        assertEquals(2, f.concatenatedTables());
        long root = 0x20_0000L;
        long ipa = (1L << 39) | (2L << 30) | (3L << 21) | (4L << 12) | 0x567;
        long s0 = root + 4096 + 2 * 8;
        assertEquals(s0, slot(f, root, ipa, 0), "the second concatenated table");
        mem.write64(s0, TBL[2] | ARM_TABLE);
        mem.write64(slot(f, TBL[2], ipa, 1), TBL[3] | ARM_TABLE);
        long leaf = slot(f, TBL[3], ipa, 2);
        long base = PAGE | ARM_PAGE | ARM_AF | (0xfL << 2);

        mem.write64(leaf, base | S2R | S2W);
        assertTrue(Walker.walk(mem, f, root, ipa, R | W | X, false, r), r.toString());
        assertOk(PAGE | 0x567, 12);
        assertEquals(3, r.steps());
        assertEquals("L1", r.stepLevel(0));
        assertEquals(Stage.STAGE2, r.stepStage(0));
        assertTrue(Walker.walk(mem, f, root, ipa, R | W | X | PRIV, false, r), "no privilege at stage 2: " + r);

        mem.write64(leaf, base | S2R);
        assertTrue(Walker.walk(mem, f, root, ipa, R, false, r), r.toString());
        assertFalse(Walker.walk(mem, f, root, ipa, W, false, r));
        assertFault(WalkFault.WRITE, FaultKind.PERMISSION, 2, "L3");
        assertEquals(Stage.STAGE2, r.faultStage());

        mem.write64(leaf, base | S2W);
        assertTrue(Walker.walk(mem, f, root, ipa, W, false, r), r.toString());
        assertFalse(Walker.walk(mem, f, root, ipa, R, false, r));
        assertFault(WalkFault.READ, FaultKind.PERMISSION, 2, "L3");

        mem.write64(leaf, base);
        assertFalse(Walker.walk(mem, f, root, ipa, R, false, r));
        assertEquals(WalkFault.READ, r.fault());
        assertFalse(Walker.walk(mem, f, root, ipa, W, false, r));
        assertEquals(WalkFault.WRITE, r.fault());

        mem.write64(leaf, base | S2R | S2W | S2XN);
        assertTrue(Walker.walk(mem, f, root, ipa, R | W, false, r), r.toString());
        assertFalse(Walker.walk(mem, f, root, ipa, R | X, false, r));
        assertFault(WalkFault.EXEC, FaultKind.PERMISSION, 2, "L3");
        assertFalse(Walker.walk(mem, f, root, ipa, R | X | PRIV, false, r));
        assertEquals(WalkFault.EXEC, r.fault());

        mem.write64(leaf, (base & ~ARM_AF) | S2R | S2W);
        assertFalse(Walker.walk(mem, f, root, ipa, R, false, r));
        assertFault(WalkFault.ACCESS_FLAG, FaultKind.ACCESS_FLAG, 2, "L3");
    }

    @Test
    void armStage2DirtyBitModifier() throws Exception {
        ArmStage2 hd = ArmStage2.of(ArmGranule.G4K, 24, 1, 48, true, true, false);
        long root = 0x20_0000L;
        long ipa = (2L << 30) | (3L << 21) | (4L << 12) | 0x567;
        mem.write64(slot(hd, root, ipa, 0), TBL[2] | ARM_TABLE);
        mem.write64(slot(hd, TBL[2], ipa, 1), TBL[3] | ARM_TABLE);
        long leaf = slot(hd, TBL[3], ipa, 2);
        long ro = PAGE | ARM_PAGE | ARM_AF | S2R | ARM_DBM;
        mem.write64(leaf, ro);
        assertTrue(Walker.walk(mem, hd, root, ipa, W, true, r), "write with S2HD and DBM: " + r);
        assertOk(PAGE | 0x567, 12);
        assertEquals(ro | S2W, mem.read64(leaf), "S2AP[1] set: writable-dirty");
    }

    @Test
    void armStage2ConcatenatedRootTables() throws Exception {
        // 4 KiB, 43-bit IPA, start level 1: 16 tables of 512 entries.
        ArmStage2 f = ArmStage2.of(ArmGranule.G4K, 21, 1, 48, false, false, false);
        assertEquals(16, f.concatenatedTables());
        assertEquals(13, f.indexBits(0));
        assertEquals(16 * 4096, f.tableBytes(0));
        long root = 0x40_0000L;
        for (int k : new int[] {0, 1, 7, 15}) {
            long ipa = ((long) k << 39) | (5L << 30) | 0x12_3456L;
            long block = 0x1_0000_0000L * (k + 1);
            long s = root + k * 4096L + 5 * 8;
            mem.write64(s, block | ARM_BLOCK | ARM_AF | S2R | S2W);
            assertTrue(Walker.walk(mem, f, root, ipa, R, false, r), "table " + k + ": " + r);
            assertOk(block | 0x12_3456L, 30);
            assertEquals(1, r.steps());
            assertEquals(s, r.stepAddress(0));
            assertEquals("L1", r.stepLevel(0));
        }
        assertFalse(Walker.walk(mem, f, root, 1L << 43, R, false, r));
        assertEquals(WalkFault.INPUT_RANGE, r.fault());

        // 16 KiB, 40-bit IPA, start level 2: 16 tables of 2048 entries.
        ArmStage2 f16 = ArmStage2.of(ArmGranule.G16K, 24, 1, 48, false, false, false);
        assertEquals(2, f16.startLevel());
        assertEquals(16, f16.concatenatedTables());
        long root16 = 0x100_0000L;
        for (int k : new int[] {1, 9, 15}) {
            long ipa = ((long) k << 36) | (3L << 25) | 0x1_2345L;
            long block = 0x2_0000_0000L + k * (1L << 25);
            long s = root16 + k * 16384L + 3 * 8;
            mem.write64(s, block | ARM_BLOCK | ARM_AF | S2R);
            assertTrue(Walker.walk(mem, f16, root16, ipa, R, false, r), "table " + k + ": " + r);
            assertOk(block | 0x1_2345L, 25);
            assertEquals(s, r.stepAddress(0));
            assertEquals("L2", r.stepLevel(0));
        }

        // 64 KiB, 30-bit IPA, start level 3: 2 tables of 8192 pages.
        ArmStage2 f64 = ArmStage2.of(ArmGranule.G64K, 34, 0, 48, false, false, false);
        assertEquals(3, f64.startLevel());
        assertEquals(2, f64.concatenatedTables());
        long root64 = 0x200_0000L;
        long ipa = (1L << 29) | (7L << 16) | 0x1234;
        long s = root64 + 65536 + 7 * 8;
        mem.write64(s, 0x3_0000_0000L | ARM_PAGE | ARM_AF | S2R);
        assertTrue(Walker.walk(mem, f64, root64, ipa, R, false, r), r.toString());
        assertOk(0x3_0000_0000L | 0x1234, 16);
        assertEquals(s, r.stepAddress(0));
    }

    /**
     * The number of concatenated start-level tables is 2^(root index bits - bits per level) when the
     * root resolves more bits than one table, else 1 (a single, possibly partial, table).
     */
    @Test
    void armStage2ConcatenatedTableCount() throws Exception {
        assertEquals(1, ArmStage2.of(ArmGranule.G4K, 25, 1, 48, false, false, false).concatenatedTables());
        for (Case c : FormatCatalog.armStage2()) {
            ArmStage2 f = (ArmStage2) c.format();
            int extra = f.indexBits(0) - f.granule().bitsPerLevel();
            int expected = extra > 0 ? 1 << extra : 1;
            assertEquals(expected, f.concatenatedTables(), c + " (" + f.indexBits(0) + " root index bits)");
            assertEquals(expected > 1, f.name().contains("concatenated"), f.name());
        }
    }

    /** The formats' public bit constants are where the specifications put them. */
    @Test
    void entryBitConstantsMatchTheSpecifications() {
        assertArrayEquals(new long[] {XP, XRW, XUS, XA, XD_, XPS, XXD}, new long[] {X86FirstStage.P, X86FirstStage.RW,
            X86FirstStage.US, X86FirstStage.A, X86FirstStage.D, X86FirstStage.PS, X86FirstStage.XD});
        assertArrayEquals(new long[] {SR, SW, SX, SPS, SA, SD, SSNP}, new long[] {VtdSecondStage.R, VtdSecondStage.W,
            VtdSecondStage.X, VtdSecondStage.PS, VtdSecondStage.A, VtdSecondStage.D, VtdSecondStage.SNP});
        assertArrayEquals(new long[] {AP1, AP2, PXN, UXN, PXN_TABLE, UXN_TABLE, AP_TABLE_NO_EL0, AP_TABLE_RDONLY},
                new long[] {ArmStage1.AP_UNPRIV, ArmStage1.AP_RDONLY, ArmStage1.PXN, ArmStage1.UXN, ArmStage1.PXN_TABLE,
                    ArmStage1.UXN_TABLE, ArmStage1.AP_TABLE_NO_EL0, ArmStage1.AP_TABLE_RDONLY});
        assertArrayEquals(new long[] {S2R, S2W, S2XN}, new long[] {ArmStage2.S2AP_READ, ArmStage2.S2AP_WRITE, ArmStage2.XN});
    }

    // =============================================================================================
    // Table fetch aborts
    // =============================================================================================

    @Test
    void tablePointerToUnbackedMemory() throws Exception {
        X86FirstStage f = X86FirstStage.of(4, 46, true, true, true);
        long va = 0x1234_5678_9abcL;
        long unbacked = 0x7000_0000L;
        long s0 = slot(f, TBL[0], va, 0);
        mem.write64(s0, unbacked | XP | XRW | XUS);
        assertFalse(walk(f, va, R | PRIV));
        assertFault(WalkFault.TABLE_FETCH, FaultKind.WALK_EXTERNAL_ABORT, 1, "PDPTE");
        assertEquals(unbacked + 8L * f.index(va, 1), r.faultEntryAddress());
        assertEquals(1, r.steps());
        assertEquals(va, r.faultAddress());

        // The root itself.
        assertFalse(Walker.walk(mem, f, 0x6000_0000L, va, R | PRIV, false, r));
        assertFault(WalkFault.TABLE_FETCH, FaultKind.WALK_EXTERNAL_ABORT, 0, "PML4E");
        assertEquals(0x6000_0000L + 8L * f.index(va, 0), r.faultEntryAddress());
        assertEquals(0, r.steps());

        // Beyond the end of a 40-bit memory.
        SparseMemory small = new SparseMemory(40);
        small.write64(s0, (1L << 44) | XP | XRW | XUS);
        assertFalse(Walker.walk(small, f, TBL[0], va, R | PRIV, false, r));
        assertFault(WalkFault.TABLE_FETCH, FaultKind.WALK_EXTERNAL_ABORT, 1, "PDPTE");
        assertEquals((1L << 44) + 8L * f.index(va, 1), r.faultEntryAddress());

        // Arm stage 1, L3 table unbacked.
        ArmStage1 a = s1(16, 48, false, false, false);
        long[] slots = chain(a, IOVA, ARM_TABLE, armPage(EL0_RW));
        mem.write64(slots[2], unbacked | ARM_TABLE);
        assertFalse(walk(a, IOVA, R));
        assertFault(WalkFault.TABLE_FETCH, FaultKind.WALK_EXTERNAL_ABORT, 3, "L3");
        assertEquals(unbacked + 4 * 8, r.faultEntryAddress());
        assertEquals(3, r.steps());
    }

    // =============================================================================================
    // Step records
    // =============================================================================================

    @Test
    void stepsRecordEveryEntryInOrder() throws Exception {
        X86FirstStage f = X86FirstStage.of(5, 52, true, true, true);
        long va = 0x00ab_cdef_1234_5678L;
        long[] slots = chain(f, va, XP | XRW | XUS, PAGE | XP | XRW | XUS);
        assertTrue(walk(f, va, R | PRIV), r.toString());
        assertEquals(5, r.steps());
        String[] names = {"PML5E", "PML4E", "PDPTE", "PDE", "PTE"};
        for (int i = 0; i < 5; i++) {
            assertEquals(slots[i], r.stepAddress(i), "step " + i);
            assertEquals(mem.read64(slots[i]), r.stepEntry(i), "step " + i);
            assertEquals(names[i], r.stepLevel(i), "step " + i);
            assertEquals(Stage.STAGE1, r.stepStage(i));
            assertEquals(0, r.stepNest(i));
        }
        assertEquals(va, r.inputAddress());
        List<WalkStepDTO> dto = r.toSteps();
        assertEquals(6, dto.size());
        assertEquals("PML5E", dto.get(0).level);
        assertEquals(slots[0], dto.get(0).address);
        assertEquals("RESULT", dto.get(5).stage);

        // A fault at the PDE: the entries up to and including it.
        mem.write64(slots[3], 0);
        assertFalse(walk(f, va, R | PRIV));
        assertEquals(4, r.steps());
        assertFault(WalkFault.NOT_PRESENT, FaultKind.TRANSLATION, 3, "PDE");
        assertEquals(slots[3], r.faultEntryAddress());
        assertEquals(0, r.stepEntry(3));
        assertEquals(0, r.outputAddress());
        assertFalse(r.faultDuringTableFetch());
        assertEquals(-1, r.faultFetchDepth());
        assertEquals(5, r.toSteps().size());

        // The result is reset by the next walk.
        mem.write64(slots[3], TBL[4] | XP | XRW | XUS);
        assertTrue(walk(f, va, R | PRIV), r.toString());
        assertNull(r.fault());
        assertNull(r.faultKind());
        assertEquals(5, r.steps());
    }

    @Test
    void levelNamesFollowTheSpecifications() throws Exception {
        assertArrayEquals(new String[] {"PML4E", "PDPTE", "PDE", "PTE"}, names(X86FirstStage.of(4, 46, true, true, true)));
        assertArrayEquals(new String[] {"PML5E", "PML4E", "PDPTE", "PDE", "PTE"},
                names(X86FirstStage.of(5, 46, true, true, true)));
        assertArrayEquals(new String[] {"SL-PDPE", "SL-PDE", "SL-PTE"}, names(VtdSecondStage.of(1, 48, true, true, false, false)));
        assertArrayEquals(new String[] {"SL-PML4E", "SL-PDPE", "SL-PDE", "SL-PTE"},
                names(VtdSecondStage.of(2, 48, true, true, false, false)));
        assertArrayEquals(new String[] {"SL-PML5E", "SL-PML4E", "SL-PDPE", "SL-PDE", "SL-PTE"},
                names(VtdSecondStage.of(3, 48, true, true, false, false)));
        assertArrayEquals(new String[] {"L0", "L1", "L2", "L3"}, names(s1(16, 48, false, false, false)));
        assertArrayEquals(new String[] {"L1", "L2", "L3"}, names(s1(25, 48, false, false, false)));
        assertArrayEquals(new String[] {"L2", "L3"}, names(s1(39, 48, false, false, false)));
        assertArrayEquals(new String[] {"L3"}, names(ArmStage1.of(ArmGranule.G16K, 39, 48, false, false, false)));
        assertArrayEquals(new String[] {"L2", "L3"}, names(ArmStage1.of(ArmGranule.G64K, 33, 48, false, false, false)));
        assertArrayEquals(new String[] {"L0", "L1", "L2", "L3"}, names(ArmStage2.of(ArmGranule.G4K, 20, 2, 48, false, false, false)));
        assertArrayEquals(new String[] {"L3"}, names(ArmStage2.of(ArmGranule.G16K, 35, 0, 48, false, false, false)));
    }

    private static String[] names(PageTableFormat f) {
        String[] n = new String[f.levels()];
        for (int d = 0; d < n.length; d++) {
            n[d] = f.levelName(d);
        }
        return n;
    }

    /** Geometry of every catalogued format: the index fields tile the input address exactly. */
    @Test
    void geometryTilesTheInputAddress() {
        for (Case c : FormatCatalog.all()) {
            PageTableFormat f = c.format();
            int bits = f.granuleShift();
            for (int d = f.levels() - 1; d >= 0; d--) {
                assertEquals(bits, f.indexShift(d), c + " depth " + d);
                bits += f.indexBits(d);
            }
            assertEquals(f.inputBits(), bits, c.toString());
            assertEquals(f.granuleShift(), Long.numberOfTrailingZeros(f.pageSizes()), c.toString());
            assertTrue(f.leafAllowed(f.levels() - 1), c.toString());
        }
    }

    // =============================================================================================
    // Fuzz: garbage never throws
    // =============================================================================================

    /** Five fully backed 64 KiB blocks hold the fuzzed tables. */
    static final long FUZZ_BASE = 0x100_0000L;
    static final int FUZZ_BLOCKS = 5;
    static final long FUZZ_SEED = Long.getLong("iommulab.fuzz.seed", 0x5eed_10_4d4dL);

    static long fuzzEntry(Random rnd) {
        switch (rnd.nextInt(5)) {
            case 0:
                return rnd.nextLong();
            case 1:
                return 0;
            default:
                long target = FUZZ_BASE + rnd.nextInt(FUZZ_BLOCKS) * 0x1_0000L + rnd.nextInt(16) * 0x1000L;
                long low = rnd.nextInt(0x1000) | 1 | (rnd.nextInt(4) == 0 ? 0 : 2);
                long high = rnd.nextInt(3) == 0 ? rnd.nextLong() & 0xfff0_0000_0000_0000L : 0;
                long wild = rnd.nextInt(8) == 0 ? 1L << (12 + rnd.nextInt(40)) : 0;
                return target | low | high | wild;
        }
    }

    static long fuzzAddress(Random rnd, PageTableFormat f) {
        switch (rnd.nextInt(4)) {
            case 0:
                return rnd.nextLong();
            case 1:
                return rnd.nextLong() >> (64 - f.inputBits()); // sign extended: canonical for x86
            default:
                return rnd.nextLong() & ((1L << f.inputBits()) - 1);
        }
    }

    static List<PageTableFormat> fuzzFormats() throws Exception {
        List<PageTableFormat> list = new ArrayList<>();
        for (Case c : FormatCatalog.all()) {
            list.add(c.format());
        }
        list.add(ArmStage1.of(ArmGranule.G4K, 16, 40, true, true, false));
        list.add(ArmStage1.of(ArmGranule.G16K, 16, 48, false, false, true));
        list.add(ArmStage2.of(ArmGranule.G4K, 20, 2, 44, true, true, false));
        list.add(VtdSecondStage.of(2, 48, true, true, true, true));
        return list;
    }

    @Test
    void fuzzedTablesNeverThrow() throws Exception {
        long seed = FUZZ_SEED;
        Random rnd = new Random(seed);
        SparseMemory fm = new SparseMemory(52);
        fm.installZeroPages(FUZZ_BASE, FUZZ_BLOCKS * 0x1_0000L);
        for (int i = 0; i < 20_000; i++) {
            long at = FUZZ_BASE + 8L * rnd.nextInt(FUZZ_BLOCKS * 0x1_0000 / 8);
            fm.write64(at, fuzzEntry(rnd));
        }
        List<PageTableFormat> formats = fuzzFormats();
        WalkResult out = new WalkResult();
        int successes = 0;
        for (PageTableFormat f : formats) {
            for (int i = 0; i < 3000; i++) {
                long root = FUZZ_BASE + rnd.nextInt(FUZZ_BLOCKS) * 0x1_0000L;
                long a = fuzzAddress(rnd, f);
                int access = rnd.nextInt(16);
                boolean update = rnd.nextBoolean();
                String what = String.format("seed 0x%x, %s, root 0x%x, address 0x%x, access %d, update %b", seed, f.name(),
                        root, a, access, update);
                boolean ok;
                try {
                    ok = Walker.walk(fm, f, root, a, access, update, out);
                } catch (RuntimeException e) {
                    throw new AssertionError(what + " threw " + e, e);
                }
                assertEquals(ok, out.isSuccess(), what);
                assertTrue(out.steps() <= f.levels(), what + ": " + out.steps() + " steps");
                if (ok) {
                    successes++;
                    assertEquals(0, out.outputAddress() >>> f.outputBits(), what + ": " + out);
                    assertTrue((f.pageSizes() & (1L << out.pageShift())) != 0, what + ": " + out);
                    assertNull(out.fault(), what);
                } else {
                    assertNotNull(out.fault(), what);
                    assertTrue(out.faultDepth() >= 0 && out.faultDepth() < f.levels(), what + ": " + out);
                    assertNotNull(out.faultLevel(), what);
                }
                assertNotNull(out.toString());
            }
        }
        assertTrue(successes > 0, "seed 0x" + Long.toHexString(seed) + ": the fuzz never reached a leaf");
    }

    @Test
    void fuzzedNestedTablesNeverThrow() throws Exception {
        long seed = FUZZ_SEED ^ 0x2d;
        Random rnd = new Random(seed);
        SparseMemory fm = new SparseMemory(52);
        fm.installZeroPages(FUZZ_BASE, FUZZ_BLOCKS * 0x1_0000L);
        for (int i = 0; i < 20_000; i++) {
            long at = FUZZ_BASE + 8L * rnd.nextInt(FUZZ_BLOCKS * 0x1_0000 / 8);
            fm.write64(at, fuzzEntry(rnd));
        }
        List<PageTableFormat> stage1 = new ArrayList<>();
        List<PageTableFormat> stage2 = new ArrayList<>();
        for (PageTableFormat f : fuzzFormats()) {
            (f.stage() == Stage.STAGE1 ? stage1 : stage2).add(f);
        }
        WalkResult out = new WalkResult();
        for (int i = 0; i < 20_000; i++) {
            PageTableFormat f1 = stage1.get(rnd.nextInt(stage1.size()));
            PageTableFormat f2 = stage2.get(rnd.nextInt(stage2.size()));
            long root1 = FUZZ_BASE + rnd.nextInt(FUZZ_BLOCKS) * 0x1_0000L;
            long root2 = FUZZ_BASE + rnd.nextInt(FUZZ_BLOCKS) * 0x1_0000L;
            long a = fuzzAddress(rnd, f1);
            int access = rnd.nextInt(16);
            boolean update = rnd.nextBoolean();
            String what = String.format("seed 0x%x, %s over %s, roots 0x%x 0x%x, address 0x%x, access %d, update %b", seed,
                    f1.name(), f2.name(), root1, root2, a, access, update);
            boolean ok;
            try {
                ok = Walker.walkNested(fm, f1, root1, f2, root2, a, access, update, out);
            } catch (RuntimeException e) {
                throw new AssertionError(what + " threw " + e, e);
            }
            int bound = f1.levels() * (f2.levels() + 1) + f2.levels();
            assertTrue(out.steps() <= bound, what + ": " + out.steps() + " steps");
            if (ok) {
                assertEquals(0, out.outputAddress() >>> f2.outputBits(), what + ": " + out);
            } else {
                assertNotNull(out.fault(), what);
                assertNotNull(out.faultStage(), what);
            }
        }
    }
}
