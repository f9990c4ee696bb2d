package org.iommulab.pgtable;

import org.iommulab.api.memory.MemoryAccessException;
import org.iommulab.api.memory.PhysicalMemory;
import org.iommulab.api.translation.Access;
import org.iommulab.api.translation.Stage;

/**
 * Walks page tables in physical memory the way an IOMMU does, for any {@link PageTableFormat}:
 * single stage, or nested (2-D), where every stage-1 table address is an intermediate address
 * translated by stage 2 before it is read, and the stage-1 output is translated by stage 2.
 *
 * <p>Order of checks at a leaf follows the architectures: a non-present or malformed entry, then
 * the output size, then the access flag, then permissions. Flags are set with an atomic
 * compare-and-set, as hardware does: the accessed flag of each table entry as the walk uses it
 * (Intel SDM Vol. 3A §4.8: set whenever the entry is used, even if the walk faults further down),
 * and the leaf's accessed/dirty flags only for an access that is allowed. When a nested walk must
 * update a stage-1 entry whose stage-2 mapping is read-only, the walk fails with a stage-2 write
 * permission fault during the table walk, as both architectures report it. Every walk is bounded by
 * the format's level count.
 *
 * <p>Stateless and thread safe; a walk allocates nothing (state lives in the caller's
 * {@link WalkResult}).
 */
public final class Walker {
    private Walker() {
    }

    /**
     * Walks one stage.
     *
     * @param memory where the tables are
     * @param format the table format
     * @param root address of the root table
     * @param address input address
     * @param access {@link Access} bits of the request
     * @param update {@code true} to set accessed/dirty flags (hardware), {@code false} to only look
     *     (explain, driver-side queries)
     * @param out receives the result
     * @return {@code out.isSuccess()}
     */
    public static boolean walk(PhysicalMemory memory, PageTableFormat format, long root, long address, int access,
            boolean update, WalkResult out) {
        out.start(address);
        return walkStage(memory, format, root, address, access, update, out, 0, null, 0);
    }

    /**
     * Walks two stages: stage-1 tables live at intermediate addresses that stage 2 translates.
     *
     * @param memory where both stages' tables are (physical memory)
     * @param stage1 the stage-1 format
     * @param stage1Root intermediate (guest physical) address of the stage-1 root
     * @param stage2 the stage-2 format
     * @param stage2Root physical address of the stage-2 root
     * @param address input address
     * @param access {@link Access} bits of the request
     * @param update {@code true} to set accessed/dirty flags
     * @param out receives the result
     * @return {@code out.isSuccess()}
     */
    public static boolean walkNested(PhysicalMemory memory, PageTableFormat stage1, long stage1Root,
            PageTableFormat stage2, long stage2Root, long address, int access, boolean update, WalkResult out) {
        out.start(address);
        if (!walkStage(memory, stage1, stage1Root, address, access, update, out, 0, stage2, stage2Root)) {
            return false;
        }
        long intermediate = out.outputAddress();
        int shift1 = out.pageShift();
        int perms1 = out.permissions();
        // Stage 2 has no privilege levels: it judges the request as privileged would be.
        if (!walkStage(memory, stage2, stage2Root, intermediate, access | Access.PRIV, update, out, 0, null, 0)) {
            return false;
        }
        out.succeed(out.outputAddress(), Math.min(shift1, out.pageShift()), perms1 & (out.permissions() | Perm.USER));
        return true;
    }

    /**
     * One stage's walk. With {@code s2} set, every table address is first translated by stage 2
     * (a nested walk recorded one level deeper); the result fields of {@code out} are overwritten by
     * those sub-walks, so everything this walk needs is kept in locals.
     */
    private static boolean walkStage(PhysicalMemory memory, PageTableFormat f, long root, long address, int access,
            boolean update, WalkResult out, int nest, PageTableFormat s2, long s2Root) {
        WalkFault inputFault = f.checkInput(address);
        if (inputFault != null) {
            return out.fail(inputFault, f.stage(), 0, f.levelName(0), address, -1);
        }
        int perms = Perm.ALL;
        long table = root;
        int levels = f.levels();
        for (int depth = 0; depth < levels; depth++) {
            long entryAddress = table + ((long) f.index(address, depth) << 3);
            long entryIntermediate = entryAddress;
            int fetchPerms = Perm.ALL;
            int fetchShift = 0;
            if (s2 != null) {
                if (!walkStage(memory, s2, s2Root, entryAddress, Access.READ | Access.PRIV, update, out, nest + 1, null, 0)) {
                    out.markTableFetch(depth);
                    return false;
                }
                fetchPerms = out.permissions();
                fetchShift = out.pageShift();
                entryAddress = out.outputAddress();
            }
            long entry;
            try {
                entry = memory.read64(entryAddress);
            } catch (MemoryAccessException e) {
                return out.fail(WalkFault.TABLE_FETCH, f.stage(), depth, f.levelName(depth), address, entryAddress);
            }
            out.record(nest, f, depth, entryAddress, entry);
            PageTableFormat.EntryType type = f.classify(entry, depth);
            if (type == PageTableFormat.EntryType.INVALID) {
                return out.fail(WalkFault.NOT_PRESENT, f.stage(), depth, f.levelName(depth), address, entryAddress);
            }
            if (type == PageTableFormat.EntryType.RESERVED
                    || (type == PageTableFormat.EntryType.TABLE && depth == levels - 1)
                    || (type == PageTableFormat.EntryType.LEAF && !f.leafAllowed(depth))) {
                return out.fail(WalkFault.RESERVED, f.stage(), depth, f.levelName(depth), address, entryAddress);
            }
            if (type == PageTableFormat.EntryType.TABLE) {
                long next = f.tableAddress(entry, depth);
                if (next >>> f.outputBits() != 0) {
                    return out.fail(WalkFault.OUTPUT_RANGE, f.stage(), depth, f.levelName(depth), address, entryAddress);
                }
                perms = f.permissions(perms, entry, depth, false);
                if (update) {
                    int marked = markUsed(memory, f, entryAddress, entry, depth, false, false, fetchPerms);
                    if (marked != MARKED) {
                        return failUpdate(marked, out, f, depth, address, entryAddress, s2, entryIntermediate, fetchShift);
                    }
                }
                table = next;
                continue;
            }
            // A leaf: page or block.
            int shift = f.pageShift(depth);
            long base = f.leafAddress(entry, depth);
            if (base >>> f.outputBits() != 0) {
                return out.fail(WalkFault.OUTPUT_RANGE, f.stage(), depth, f.levelName(depth), address, entryAddress);
            }
            if (f.accessFlagFault(entry, depth)) {
                return out.fail(WalkFault.ACCESS_FLAG, f.stage(), depth, f.levelName(depth), address, entryAddress);
            }
            perms = f.permissions(perms, entry, depth, true);
            WalkFault denied = Perm.check(perms, access);
            if (denied != null) {
                return out.fail(denied, f.stage(), depth, f.levelName(depth), address, entryAddress);
            }
            boolean write = (access & Access.WRITE) != 0;
            if (update) {
                int marked = markUsed(memory, f, entryAddress, entry, depth, true, write, fetchPerms);
                if (marked != MARKED) {
                    return failUpdate(marked, out, f, depth, address, entryAddress, s2, entryIntermediate, fetchShift);
                }
            }
            out.succeed(base | (address & ((1L << shift) - 1)), shift, perms);
            return true;
        }
        // Not reached: the last level is a leaf or a fault.
        return out.fail(WalkFault.RESERVED, f.stage(), levels - 1, f.levelName(levels - 1), address, table);
    }

    private static final int MARKED = 0;
    private static final int MEMORY_ABORT = 1;
    private static final int STAGE2_DENIED = 2;

    /**
     * Sets accessed/dirty flags with a compare-and-set. A lost race means another agent changed the
     * entry after this walk read it: the walk stands as if it happened just before, as on hardware.
     *
     * @return {@link #MARKED}, {@link #MEMORY_ABORT} if the entry's memory cannot be written, or
     *     {@link #STAGE2_DENIED} if a nested stage-2 mapping of the entry is not writable
     */
    private static int markUsed(PhysicalMemory memory, PageTableFormat f, long entryAddress, long entry, int depth,
            boolean leaf, boolean write, int fetchPerms) {
        long updated = f.markUsed(entry, depth, leaf, write);
        if (updated == entry) {
            return MARKED;
        }
        if ((fetchPerms & Perm.WRITE) == 0) {
            return STAGE2_DENIED;
        }
        try {
            memory.compareAndSet64(entryAddress, entry, updated);
            return MARKED;
        } catch (MemoryAccessException e) {
            return MEMORY_ABORT;
        }
    }

    /** Reports a failed flag update: an abort in this stage, or stage 2 refusing the write. */
    private static boolean failUpdate(int marked, WalkResult out, PageTableFormat f, int depth, long address,
            long entryAddress, PageTableFormat s2, long entryIntermediate, int fetchShift) {
        if (marked == STAGE2_DENIED) {
            int s2Depth = s2.levels() - 1;
            while (s2Depth > 0 && s2.pageShift(s2Depth) != fetchShift) {
                s2Depth--;
            }
            out.fail(WalkFault.WRITE, s2.stage(), s2Depth, s2.levelName(s2Depth), entryIntermediate, entryAddress);
            out.markTableFetch(depth);
            return false;
        }
        return out.fail(WalkFault.AD_UPDATE, f.stage(), depth, f.levelName(depth), address, entryAddress);
    }
}
