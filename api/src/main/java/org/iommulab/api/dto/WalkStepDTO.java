package org.iommulab.api.dto;

/** One line of {@code iommu:explain}: a table entry read during a walk, or the walk's result. */
public class WalkStepDTO {
    /** Nesting depth: 0 for the main walk, 1 for a stage-2 walk inside a stage-1 table fetch. */
    public int depth;
    /** {@code CONFIG}, {@code STAGE1}, {@code STAGE2} or {@code RESULT}. */
    public String stage;
    /** The structure or table level as the specification names it (for example "PML4", "STE", "L2"). */
    public String level;
    /** Physical address of the entry that was read, or -1 for a result line. */
    public long address;
    /** The raw entry (its first 64 bits for larger entries). */
    public long entry;
    /** What the entry means, decoded, or the result. */
    public String meaning;

    @Override
    public String toString() {
        String indent = "  ".repeat(Math.max(0, depth));
        if (address < 0) {
            return indent + stage + ": " + meaning;
        }
        return String.format("%s%s %s @0x%x = 0x%016x  %s", indent, stage, level, address, entry, meaning);
    }
}
