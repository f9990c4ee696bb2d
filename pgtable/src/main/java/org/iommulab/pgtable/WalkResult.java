package org.iommulab.pgtable;

import java.util.ArrayList;
import java.util.List;

import org.iommulab.api.dto.WalkStepDTO;
import org.iommulab.api.translation.FaultKind;
import org.iommulab.api.translation.Stage;

/**
 * The outcome of one walk: the output address, page size and permissions, or a neutral fault with
 * the stage, level and address where it happened; plus the entries read, in order.
 *
 * <p>Mutable and reused: a caller keeps one per thread and every walk overwrites it, so walking
 * allocates nothing. Not thread safe.
 */
public final class WalkResult {
    /** Most entries recorded per walk: a 5-level by 5-level nested walk reads 35. */
    public static final int MAX_STEPS = 64;

    private boolean success;
    private long inputAddress;
    private long outputAddress;
    private int pageShift;
    private int permissions;

    private WalkFault fault;
    private Stage faultStage;
    private int faultDepth;
    private String faultLevel;
    private long faultAddress;
    private long faultEntryAddress;
    private boolean faultDuringTableFetch;
    private int faultFetchDepth;

    private int steps;
    private final int[] stepNest = new int[MAX_STEPS];
    private final long[] stepAddress = new long[MAX_STEPS];
    private final long[] stepEntry = new long[MAX_STEPS];
    private final int[] stepDepth = new int[MAX_STEPS];
    private final PageTableFormat[] stepFormat = new PageTableFormat[MAX_STEPS];

    /** Forgets the last walk (no steps, no result), for a caller that may not walk at all. */
    public void clear() {
        start(0);
    }

    void start(long address) {
        success = false;
        inputAddress = address;
        outputAddress = 0;
        pageShift = 0;
        permissions = 0;
        fault = null;
        faultStage = null;
        faultDepth = 0;
        faultLevel = null;
        faultAddress = 0;
        faultEntryAddress = -1;
        faultDuringTableFetch = false;
        faultFetchDepth = -1;
        steps = 0;
    }

    void succeed(long output, int shift, int perms) {
        success = true;
        outputAddress = output;
        pageShift = shift;
        permissions = perms;
        fault = null;
    }

    boolean fail(WalkFault why, Stage stage, int depth, String level, long address, long entryAddress) {
        success = false;
        fault = why;
        faultStage = stage;
        faultDepth = depth;
        faultLevel = level;
        faultAddress = address;
        faultEntryAddress = entryAddress;
        return false;
    }

    void markTableFetch(int stage1Depth) {
        faultDuringTableFetch = true;
        faultFetchDepth = stage1Depth;
    }

    void record(int nest, PageTableFormat format, int depth, long address, long entry) {
        if (steps < MAX_STEPS) {
            stepNest[steps] = nest;
            // Stage and level name are derived from the format when asked: a walk stores no more
            // references than it must (each costs a GC write barrier on the hot path).
            stepDepth[steps] = depth;
            stepFormat[steps] = format;
            stepAddress[steps] = address;
            stepEntry[steps] = entry;
            steps++;
        }
    }

    /** @return {@code true} if the walk produced a translation */
    public boolean isSuccess() {
        return success;
    }

    /** @return the address the walk started from */
    public long inputAddress() {
        return inputAddress;
    }

    /** @return the output address (page base plus offset); 0 after a fault */
    public long outputAddress() {
        return outputAddress;
    }

    /** @return log2 of the size of the mapping used (the smaller stage's page when nested) */
    public int pageShift() {
        return pageShift;
    }

    /** @return the accumulated {@link Perm} bits (both stages ANDed when nested) */
    public int permissions() {
        return permissions;
    }

    /** @return why the walk failed, or {@code null} */
    public WalkFault fault() {
        return fault;
    }

    /** @return the neutral class of the fault, or {@code null} */
    public FaultKind faultKind() {
        return fault == null ? null : fault.kind();
    }

    /** @return the stage whose walk failed, or {@code null} */
    public Stage faultStage() {
        return faultStage;
    }

    /** @return the depth (0 = root) in the failing stage's tables */
    public int faultDepth() {
        return faultDepth;
    }

    /** @return the failing level's name as its specification gives it, or {@code null} */
    public String faultLevel() {
        return faultLevel;
    }

    /**
     * @return the address the failing stage was translating: the input address, or for a stage-2
     *     fault the intermediate (guest physical) address
     */
    public long faultAddress() {
        return faultAddress;
    }

    /** @return the physical address of the entry that faulted, or -1 when no entry was read */
    public long faultEntryAddress() {
        return faultEntryAddress;
    }

    /**
     * @return {@code true} if the fault happened in stage 2 while translating the address of a
     *     stage-1 table (SMMUv3 CLASS = TT, a VT-d second-stage fault during a first-stage walk)
     */
    public boolean faultDuringTableFetch() {
        return faultDuringTableFetch;
    }

    /** @return the stage-1 depth whose table address stage 2 failed to translate, or -1 */
    public int faultFetchDepth() {
        return faultFetchDepth;
    }

    /** @return how many entries were read (at most {@link #MAX_STEPS} are recorded) */
    public int steps() {
        return steps;
    }

    /**
     * @param i step index
     * @return the physical address of the entry read at step {@code i}
     */
    public long stepAddress(int i) {
        return stepAddress[i];
    }

    /**
     * @param i step index
     * @return the raw entry read at step {@code i}
     */
    public long stepEntry(int i) {
        return stepEntry[i];
    }

    /**
     * @param i step index
     * @return the stage whose table step {@code i} read
     */
    public Stage stepStage(int i) {
        return stepFormat[i].stage();
    }

    /**
     * @param i step index
     * @return 0 for the main walk, 1 for a stage-2 walk translating a stage-1 table address
     */
    public int stepNest(int i) {
        return stepNest[i];
    }

    /**
     * @param i step index
     * @return the level name of step {@code i}
     */
    public String stepLevel(int i) {
        return stepFormat[i].levelName(stepDepth[i]);
    }

    /**
     * Describes the walk for people ({@code iommu:explain}); allocates, so not for the hot path.
     *
     * @return one DTO per entry read, then one result line
     */
    public List<WalkStepDTO> toSteps() {
        List<WalkStepDTO> list = new ArrayList<>(steps + 1);
        for (int i = 0; i < steps; i++) {
            WalkStepDTO s = new WalkStepDTO();
            s.depth = stepNest[i];
            s.stage = stepStage(i).name();
            s.level = stepLevel(i);
            s.address = stepAddress[i];
            s.entry = stepEntry[i];
            s.meaning = stepFormat[i].describe(stepEntry[i], stepDepth[i]);
            list.add(s);
        }
        WalkStepDTO r = new WalkStepDTO();
        r.stage = "RESULT";
        r.address = -1;
        r.meaning = toString();
        list.add(r);
        return list;
    }

    @Override
    public String toString() {
        if (success) {
            return String.format("0x%x -> 0x%x (page 2^%d, %s)", inputAddress, outputAddress, pageShift,
                    org.iommulab.api.translation.Access.toString(Perm.toAccess(permissions)));
        }
        return String.format("0x%x: %s fault (%s) in %s at %s, address 0x%x%s", inputAddress, faultKind(), fault,
                faultStage, faultLevel, faultAddress,
                faultDuringTableFetch ? " while fetching a stage-1 table at depth " + faultFetchDepth : "");
    }
}
