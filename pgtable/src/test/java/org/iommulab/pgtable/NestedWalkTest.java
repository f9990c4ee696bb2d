package org.iommulab.pgtable;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.iommulab.api.spi.IommuDomain;
import org.iommulab.api.translation.Access;
import org.iommulab.api.translation.FaultKind;
import org.iommulab.api.translation.Stage;
import org.iommulab.pgtable.format.ArmGranule;
import org.iommulab.pgtable.format.ArmStage1;
import org.iommulab.pgtable.format.ArmStage2;
import org.iommulab.pgtable.format.VtdSecondStage;
import org.iommulab.pgtable.format.X86FirstStage;
import org.iommulab.platform.internal.memory.FramePool;
import org.iommulab.platform.internal.memory.SparseMemory;
import org.junit.jupiter.api.Test;

/**
 * Two-stage (nested) walks: stage-1 tables at intermediate addresses that stage 2 translates, then
 * the stage-1 output translated by stage 2.
 */
class NestedWalkTest {
    static final int RW = IommuDomain.PROT_READ | IommuDomain.PROT_WRITE;
    static final int R = Access.READ;
    static final int W = Access.WRITE;
    static final int X = Access.EXEC;
    static final int PRIV = Access.PRIV;
    static final long K4 = 0x1000;

    static final long ARM_TABLE = 3;
    static final long ARM_PAGE = 3;
    static final long ARM_BLOCK = 1;
    static final long ARM_AF = 1L << 10;
    static final long AP1 = 1L << 6; // AP[1]: EL0 access
    static final long AP2 = 1L << 7; // AP[2]: read-only

    final SparseMemory mem = new SparseMemory(52);
    final FramePool pool = new FramePool(mem, 1L << 32, 1 << 16);
    final WalkResult r = new WalkResult();

    // ---- SMMUv3 (qos-smmuv3): 4 KiB granule, CD T0SZ 0x10, STE S2T0SZ 0x14, S2SL0 2, S2PS 48-bit ----

    static final long IOVA = 0x80_8060_4567L;
    /** IPAs of the stage-1 L0..L3 tables. */
    static final long S1_IPA = 0x4000_0000L;
    /** Where stage 2 puts them. */
    static final long S1_PA = 0x2_0000_0000L;
    /** The IPA page the IOVA translates to, and its PA. */
    static final long OUT_IPA = 0x5_6789_a000L;
    static final long OUT_PA = 0xa_bcde_f000L;

    ArmStage1 s1;
    ArmStage2 s2;
    IoPageTable t2;

    static long s1Ipa(int depth) {
        return S1_IPA + depth * K4;
    }

    static long s1Pa(int depth) {
        return S1_PA + depth * K4;
    }

    /** Physical address of the stage-1 entry for IOVA at a depth (indices 1, 2, 3, 4). */
    static long s1EntryPa(int depth) {
        return s1Pa(depth) + 8L * (depth + 1);
    }

    void smmu(boolean ha, long leaf) throws Exception {
        s1 = ArmStage1.of(ArmGranule.G4K, 0x10, 48, ha, false, false);
        s2 = ArmStage2.of(ArmGranule.G4K, 0x14, 2, 48, false, false, false);
        assertEquals(4, s1.levels());
        assertEquals(0, s1.startLevel());
        assertEquals(4, s2.levels());
        assertEquals(0, s2.startLevel());
        assertEquals(44, s2.inputBits());
        t2 = IoPageTable.create(s2, mem, pool, FlushOps.NONE);
        for (int d = 0; d < 4; d++) {
            t2.map(s1Ipa(d), s1Pa(d), K4, RW);
        }
        t2.map(OUT_IPA, OUT_PA, K4, RW);
        for (int d = 0; d < 3; d++) {
            assertEquals(d + 1, s1.index(IOVA, d));
            mem.write64(s1EntryPa(d), s1Ipa(d + 1) | ARM_TABLE);
        }
        mem.write64(s1EntryPa(3), leaf);
    }

    static long s1Leaf(long ipa, long extra) {
        return ipa | ARM_PAGE | ARM_AF | (3L << 8) | extra;
    }

    boolean walkSmmu(int access, boolean update) {
        return Walker.walkNested(mem, s1, s1Ipa(0), s2, t2.root(), IOVA, access, update, r);
    }

    @Test
    void smmuv3QosExample() throws Exception {
        smmu(false, s1Leaf(OUT_IPA, AP1));
        assertTrue(walkSmmu(R, false), r.toString());
        assertEquals(OUT_PA | 0x567, r.outputAddress());
        assertEquals(12, r.pageShift());
        assertEquals(IOVA, r.inputAddress());

        // 4 stage-1 reads, each after a 4-level stage-2 walk of its IPA, then a 4-level stage-2 walk
        // of the output IPA: 4 x (4 + 1) + 4.
        assertEquals(24, r.steps(), r.toSteps().toString());
        for (int d = 0; d < 4; d++) {
            long entryIpa = s1Ipa(d) + 8L * (d + 1);
            for (int i = 0; i < 4; i++) {
                int step = d * 5 + i;
                assertEquals(1, r.stepNest(step), "step " + step);
                assertEquals(Stage.STAGE2, r.stepStage(step), "step " + step);
                assertEquals("L" + i, r.stepLevel(step), "step " + step);
            }
            assertEquals(t2.root() + 8L * s2.index(entryIpa, 0), r.stepAddress(d * 5));
            assertEquals(s1Pa(d), s2.leafAddress(r.stepEntry(d * 5 + 3), 3), "stage 2 maps the table's IPA");
            int step = d * 5 + 4;
            assertEquals(0, r.stepNest(step));
            assertEquals(Stage.STAGE1, r.stepStage(step));
            assertEquals("L" + d, r.stepLevel(step));
            assertEquals(s1EntryPa(d), r.stepAddress(step), "stage-1 entry read at its physical address");
            assertEquals(mem.read64(s1EntryPa(d)), r.stepEntry(step));
        }
        for (int i = 0; i < 4; i++) {
            assertEquals(0, r.stepNest(20 + i));
            assertEquals(Stage.STAGE2, r.stepStage(20 + i));
            assertEquals("L" + i, r.stepLevel(20 + i));
        }
        assertEquals(t2.root() + 8L * s2.index(OUT_IPA | 0x567, 0), r.stepAddress(20));
        assertEquals(OUT_PA, s2.leafAddress(r.stepEntry(23), 3));

        assertTrue(walkSmmu(R | W, true), r.toString());
        assertTrue(walkSmmu(R | W | PRIV, false), r.toString());
        assertTrue(walkSmmu(R | W, false), "stage 2 does not judge privilege: " + r);
    }

    @Test
    void smmuv3PermissionsOfBothStagesAreAnded() throws Exception {
        smmu(false, s1Leaf(OUT_IPA, AP1));
        assertTrue(walkSmmu(R | W, false), r.toString());
        assertEquals(Perm.READ | Perm.WRITE, r.permissions() & (Perm.READ | Perm.WRITE));

        // Stage 2 maps the output read-only.
        assertEquals(K4, t2.unmap(OUT_IPA, K4));
        t2.map(OUT_IPA, OUT_PA, K4, IommuDomain.PROT_READ);
        assertTrue(walkSmmu(R, false), r.toString());
        assertEquals(0, r.permissions() & Perm.WRITE, r.toString());
        assertFalse(walkSmmu(W, false));
        assertEquals(WalkFault.WRITE, r.fault(), r.toString());
        assertEquals(FaultKind.PERMISSION, r.faultKind());
        assertEquals(Stage.STAGE2, r.faultStage());
        assertFalse(r.faultDuringTableFetch());
        assertEquals(-1, r.faultFetchDepth());
        assertEquals(OUT_IPA | 0x567, r.faultAddress(), "a stage-2 fault reports the IPA");
        assertEquals("L3", r.faultLevel());
        assertEquals(24, r.steps());

        // Stage 1 read-only, stage 2 read-write: a stage-1 fault at the IOVA.
        assertEquals(K4, t2.unmap(OUT_IPA, K4));
        t2.map(OUT_IPA, OUT_PA, K4, RW | IommuDomain.PROT_EXEC);
        mem.write64(s1EntryPa(3), s1Leaf(OUT_IPA, AP1 | AP2));
        assertFalse(walkSmmu(W, false));
        assertEquals(WalkFault.WRITE, r.fault(), r.toString());
        assertEquals(Stage.STAGE1, r.faultStage());
        assertEquals(IOVA, r.faultAddress());
        assertEquals(20, r.steps(), "no stage-2 walk of the output after a stage-1 fault");

        // Stage-2 XN denies an (unprivileged) fetch that stage 1 allows.
        assertTrue(walkSmmu(R | X, false), "stage 1 and 2 allow execution: " + r);
        assertEquals(K4, t2.unmap(OUT_IPA, K4));
        t2.map(OUT_IPA, OUT_PA, K4, IommuDomain.PROT_READ); // no PROT_EXEC: XN
        assertFalse(walkSmmu(R | X, false));
        assertEquals(WalkFault.EXEC, r.fault(), r.toString());
        assertEquals(Stage.STAGE2, r.faultStage());
    }

    @Test
    void nestedPageSizeIsTheSmallerStagePage() throws Exception {
        long blockIpa = 0x6000_0000L; // 2 MiB aligned
        smmu(false, 0);
        mem.write64(s1EntryPa(2), blockIpa | ARM_BLOCK | ARM_AF | AP1);
        long offset = IOVA & 0x1f_ffffL;

        t2.map(blockIpa, 0xc_0000_0000L, 1L << 21, RW); // a 2 MiB stage-2 block
        assertTrue(walkSmmu(R, false), r.toString());
        assertEquals(0xc_0000_0000L | offset, r.outputAddress());
        assertEquals(21, r.pageShift());
        assertEquals(3 * 5 + 3, r.steps(), "three stage-1 levels, three stage-2 levels for the output");

        t2.unmap(blockIpa, 1L << 21);
        t2.map(blockIpa, 0xc_0000_1000L, 1L << 21, RW); // 4 KiB stage-2 pages
        assertTrue(walkSmmu(R, false), r.toString());
        assertEquals(0xc_0000_1000L + offset, r.outputAddress());
        assertEquals(12, r.pageShift());

        // A 4 KiB stage-1 page inside a 1 GiB stage-2 block.
        mem.write64(s1EntryPa(2), s1Ipa(3) | ARM_TABLE);
        mem.write64(s1EntryPa(3), s1Leaf(0x1_4000_3000L, AP1));
        t2.map(0x1_4000_0000L, 0x8_0000_0000L, 1L << 30, RW);
        assertTrue(walkSmmu(R, false), r.toString());
        assertEquals(0x8_0000_3567L, r.outputAddress());
        assertEquals(12, r.pageShift());
    }

    @Test
    void stage2FaultDuringStage1TableFetch() throws Exception {
        smmu(false, s1Leaf(OUT_IPA, AP1));
        assertTrue(walkSmmu(R, false), r.toString());

        // Stage 2 no longer maps the IPA page of the stage-1 L2 table.
        assertEquals(K4, t2.unmap(s1Ipa(2), K4));
        assertFalse(walkSmmu(R, false));
        assertEquals(WalkFault.NOT_PRESENT, r.fault(), r.toString());
        assertEquals(FaultKind.TRANSLATION, r.faultKind());
        assertEquals(Stage.STAGE2, r.faultStage());
        assertTrue(r.faultDuringTableFetch());
        assertEquals(2, r.faultFetchDepth());
        assertEquals(s1Ipa(2) + 3 * 8, r.faultAddress(), "the IPA of the stage-1 entry");
        assertEquals("L3", r.faultLevel());
        assertEquals(2 * 5 + 4, r.steps());
        assertEquals(1, r.stepNest(r.steps() - 1));
        assertTrue(r.toString().contains("stage-1 table at depth 2"), r.toString());

        // A permission fault on the fetch: stage 2 maps the table write-only.
        t2.map(s1Ipa(2), s1Pa(2), K4, IommuDomain.PROT_WRITE);
        assertFalse(walkSmmu(R, false));
        assertEquals(WalkFault.READ, r.fault(), r.toString());
        assertEquals(FaultKind.PERMISSION, r.faultKind());
        assertEquals(Stage.STAGE2, r.faultStage());
        assertTrue(r.faultDuringTableFetch());
        assertEquals(2, r.faultFetchDepth());
        assertEquals(s1Ipa(2) + 3 * 8, r.faultAddress());

        // The stage-1 root.
        t2.unmap(s1Ipa(2), K4);
        t2.map(s1Ipa(2), s1Pa(2), K4, RW);
        t2.unmap(s1Ipa(0), K4);
        assertFalse(walkSmmu(R, false));
        assertTrue(r.faultDuringTableFetch());
        assertEquals(0, r.faultFetchDepth());
        assertEquals(s1Ipa(0) + 8, r.faultAddress());
        assertEquals(Stage.STAGE2, r.faultStage());

        // An IPA beyond the 44-bit stage-2 input: an input-range fault of the fetch.
        t2.map(s1Ipa(0), s1Pa(0), K4, RW);
        mem.write64(s1EntryPa(0), (1L << 44) | ARM_TABLE);
        assertFalse(walkSmmu(R, false));
        assertEquals(WalkFault.INPUT_RANGE, r.fault(), r.toString());
        assertEquals(Stage.STAGE2, r.faultStage());
        assertTrue(r.faultDuringTableFetch());
        assertEquals(1, r.faultFetchDepth());
        assertEquals((1L << 44) + 2 * 8, r.faultAddress());
    }

    @Test
    void inputRangeFaultsOfEachStage() throws Exception {
        smmu(false, s1Leaf(OUT_IPA, AP1));
        // Beyond the 48-bit stage-1 input: a stage-1 fault before anything is read.
        assertFalse(Walker.walkNested(mem, s1, s1Ipa(0), s2, t2.root(), 1L << 48, R, false, r));
        assertEquals(WalkFault.INPUT_RANGE, r.fault(), r.toString());
        assertEquals(Stage.STAGE1, r.faultStage());
        assertEquals(0, r.steps());
        // A stage-1 output beyond the 44-bit IPA space: a stage-2 fault on the output, not a fetch.
        mem.write64(s1EntryPa(3), s1Leaf(1L << 44, AP1));
        assertFalse(walkSmmu(R, false));
        assertEquals(WalkFault.INPUT_RANGE, r.fault(), r.toString());
        assertEquals(FaultKind.TRANSLATION, r.faultKind());
        assertEquals(Stage.STAGE2, r.faultStage());
        assertFalse(r.faultDuringTableFetch());
        assertEquals((1L << 44) | 0x567, r.faultAddress());
        assertEquals(20, r.steps());
    }

    @Test
    void accessFlagUpdateThroughReadOnlyStage2IsAStage2PermissionFaultOnTheTableWalk() throws Exception {
        long leaf = OUT_IPA | ARM_PAGE | AP1; // AF clear
        smmu(true, leaf);
        t2.unmap(s1Ipa(3), K4);
        t2.map(s1Ipa(3), s1Pa(3), K4, IommuDomain.PROT_READ);

        assertTrue(walkSmmu(R, false), "HA: no fault, no update when only looking: " + r);
        assertFalse(walkSmmu(R, true));
        assertStage2DeniedUpdate(s1Ipa(3), 3);
        assertEquals(leaf, mem.read64(s1EntryPa(3)), "nothing written");

        // With a writable stage-2 mapping the flag is set.
        t2.unmap(s1Ipa(3), K4);
        t2.map(s1Ipa(3), s1Pa(3), K4, RW);
        assertTrue(walkSmmu(R, true), r.toString());
        assertEquals(leaf | ARM_AF, mem.read64(s1EntryPa(3)));
    }

    // ---- VT-d: x86 first stage over second stage ---------------------------------------------------

    static final long XP = 1L;
    static final long XRW = 1L << 1;
    static final long XUS = 1L << 2;
    static final long XA = 1L << 5;
    static final long XD = 1L << 6;
    static final long XPS = 1L << 7;

    static final long GVA = 0x7f12_3456_7abcL;
    static final long GPT_GPA = 0x1000_0000L; // + depth * 4 KiB
    static final long GPT_HPA = 0x3_0000_0000L;
    static final long GUEST_PAGE = 0x8765_4000L;
    static final long HOST_PAGE = 0x9_1234_5000L;

    X86FirstStage fs;
    VtdSecondStage ss;
    IoPageTable st;

    long gptEntryHpa(int depth) {
        return GPT_HPA + depth * K4 + 8L * fs.index(GVA, depth);
    }

    void vtd(long tableFlags, long leaf) throws Exception {
        fs = X86FirstStage.of(4, 48, true, true, true);
        ss = VtdSecondStage.of(2, 48, true, true, false, false);
        st = IoPageTable.create(ss, mem, pool, FlushOps.NONE);
        for (int d = 0; d < 4; d++) {
            st.map(GPT_GPA + d * K4, GPT_HPA + d * K4, K4, RW);
        }
        st.map(GUEST_PAGE, HOST_PAGE, K4, RW);
        for (int d = 0; d < 3; d++) {
            mem.write64(gptEntryHpa(d), (GPT_GPA + (d + 1) * K4) | tableFlags);
        }
        mem.write64(gptEntryHpa(3), leaf);
    }

    boolean walkVtd(int access, boolean update) {
        return Walker.walkNested(mem, fs, GPT_GPA, ss, st.root(), GVA, access, update, r);
    }

    @Test
    void vtdFirstStageOverSecondStage() throws Exception {
        vtd(XP | XRW | XUS | XA, GUEST_PAGE | XP | XRW | XUS | XA | XD);
        assertTrue(walkVtd(R | W, false), r.toString());
        assertEquals(HOST_PAGE | 0xabc, r.outputAddress());
        assertEquals(12, r.pageShift());
        assertEquals(24, r.steps());
        String[] fl = {"PML4E", "PDPTE", "PDE", "PTE"};
        String[] sl = {"SL-PML4E", "SL-PDPE", "SL-PDE", "SL-PTE"};
        for (int d = 0; d < 4; d++) {
            for (int i = 0; i < 4; i++) {
                assertEquals(1, r.stepNest(d * 5 + i));
                assertEquals(sl[i], r.stepLevel(d * 5 + i));
                assertEquals(Stage.STAGE2, r.stepStage(d * 5 + i));
            }
            assertEquals(fl[d], r.stepLevel(d * 5 + 4));
            assertEquals(Stage.STAGE1, r.stepStage(d * 5 + 4));
            assertEquals(gptEntryHpa(d), r.stepAddress(d * 5 + 4));
        }
        for (int i = 0; i < 4; i++) {
            assertEquals(sl[i], r.stepLevel(20 + i));
            assertEquals(0, r.stepNest(20 + i));
        }
        assertEquals(st.root() + 8L * ss.index(GUEST_PAGE | 0xabc, 0), r.stepAddress(20));

        // A 2 MiB guest page over a 2 MiB second-stage page.
        long guest2m = 0x4_0000_0000L;
        long host2m = 0x7_0020_0000L;
        mem.write64(gptEntryHpa(2), guest2m | XP | XRW | XUS | XA | XD | XPS);
        st.map(guest2m, host2m, 1L << 21, RW);
        assertTrue(walkVtd(R, false), r.toString());
        assertEquals(host2m | (GVA & 0x1f_ffffL), r.outputAddress());
        assertEquals(21, r.pageShift());
        assertEquals(3 * 5 + 3, r.steps(), "three levels in each stage for the 2 MiB pages");

        // The second stage makes the page read-only.
        st.unmap(guest2m, 1L << 21);
        st.map(guest2m, host2m, 1L << 21, IommuDomain.PROT_READ);
        assertFalse(walkVtd(W, false));
        assertEquals(WalkFault.WRITE, r.fault(), r.toString());
        assertEquals(Stage.STAGE2, r.faultStage());
        assertEquals(guest2m | (GVA & 0x1f_ffffL), r.faultAddress());
        assertFalse(r.faultDuringTableFetch());
    }

    @Test
    void vtdSecondStageFaultDuringFirstStageTableFetch() throws Exception {
        vtd(XP | XRW | XUS | XA, GUEST_PAGE | XP | XRW | XUS | XA | XD);
        assertEquals(K4, st.unmap(GPT_GPA + 3 * K4, K4));
        assertFalse(walkVtd(R, false));
        assertEquals(WalkFault.NOT_PRESENT, r.fault(), r.toString());
        assertEquals(Stage.STAGE2, r.faultStage());
        assertTrue(r.faultDuringTableFetch());
        assertEquals(3, r.faultFetchDepth());
        assertEquals(GPT_GPA + 3 * K4 + 8L * fs.index(GVA, 3), r.faultAddress());
    }

    @Test
    void vtdAccessedFlagUpdateThroughReadOnlySecondStageIsASecondStageFault() throws Exception {
        long leaf = GUEST_PAGE | XP | XRW | XUS; // A and D clear
        vtd(XP | XRW | XUS | XA, leaf);
        st.unmap(GPT_GPA + 3 * K4, K4);
        st.map(GPT_GPA + 3 * K4, GPT_HPA + 3 * K4, K4, IommuDomain.PROT_READ);
        long[] before = new long[4];
        for (int d = 0; d < 4; d++) {
            before[d] = mem.read64(gptEntryHpa(d));
        }

        assertTrue(walkVtd(R, false), r.toString());
        assertFalse(walkVtd(R, true));
        assertStage2DeniedUpdate(GPT_GPA + 3 * K4, 3);
        for (int d = 0; d < 4; d++) {
            assertEquals(before[d], mem.read64(gptEntryHpa(d)), "nothing written at depth " + d);
        }

        // A set, D clear: a write needs D.
        mem.write64(gptEntryHpa(3), leaf | XA);
        assertTrue(walkVtd(R, true), r.toString());
        assertFalse(walkVtd(W, true));
        assertStage2DeniedUpdate(GPT_GPA + 3 * K4, 3);
        assertEquals(leaf | XA, mem.read64(gptEntryHpa(3)));

        // Writable second stage: A and D are set.
        st.unmap(GPT_GPA + 3 * K4, K4);
        st.map(GPT_GPA + 3 * K4, GPT_HPA + 3 * K4, K4, RW);
        assertTrue(walkVtd(W, true), r.toString());
        assertEquals(leaf | XA | XD, mem.read64(gptEntryHpa(3)));

        // A table entry whose page stage 2 maps read-only.
        mem.write64(gptEntryHpa(1), (GPT_GPA + 2 * K4) | XP | XRW | XUS); // A clear
        st.unmap(GPT_GPA + K4, K4);
        st.map(GPT_GPA + K4, GPT_HPA + K4, K4, IommuDomain.PROT_READ);
        assertFalse(walkVtd(R, true));
        assertStage2DeniedUpdate(GPT_GPA + K4, 1);
        assertEquals((GPT_GPA + 2 * K4) | XP | XRW | XUS, mem.read64(gptEntryHpa(1)));
    }

    /**
     * A stage-1 flag update the stage-2 mapping does not allow is a stage-2 write permission fault
     * on the stage-1 table walk (SMMUv3: F_PERMISSION with S2 = 1, CLASS = TT), at the IPA of the
     * stage-1 entry.
     */
    private void assertStage2DeniedUpdate(long tablePageIpa, int stage1Depth) {
        assertEquals(WalkFault.WRITE, r.fault(), r.toString());
        assertEquals(FaultKind.PERMISSION, r.faultKind());
        assertEquals(Stage.STAGE2, r.faultStage());
        assertTrue(r.faultDuringTableFetch());
        assertEquals(stage1Depth, r.faultFetchDepth());
        assertEquals(tablePageIpa, r.faultAddress() & ~0xfffL, r.toString());
    }
}
