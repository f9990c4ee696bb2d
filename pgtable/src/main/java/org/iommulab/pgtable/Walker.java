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
 * the output size, then the access flag, then permissions; accessed/dirty flags are set (with an
 * atomic compare-and-set, as hardware does) only for an access that is allowed. Every walk is
 * bounded by the format's level count.
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
            int fetchPerms = Perm.ALL;
            if (s2 != null) {
                if (!walkStage(memory, s2, s2Root, entryAddress, Access.READ | Access.PRIV, update, out, nest + 1, null, 0)) {
                    out.markTableFetch(depth);
                    return false;
                }
                fetchPerms = out.permissions();
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
                if (update && !markUsed(memory, f, entryAddress, entry, depth, false, false, fetchPerms)) {
                    return out.fail(WalkFault.AD_UPDATE, f.stage(), depth, f.levelName(depth), address, entryAddress);
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
            if (update && !markUsed(memory, f, entryAddress, entry, depth, true, write, fetchPerms)) {
                return out.fail(WalkFault.AD_UPDATE, f.stage(), depth, f.levelName(depth), address, entryAddress);
            }
            out.succeed(base | (address & ((1L << shift) - 1)), shift, perms);
            return true;
        }
        // Not reached: the last level is a leaf or a fault.
        return out.fail(WalkFault.RESERVED, f.stage(), levels - 1, f.levelName(levels - 1), address, table);
    }

    /**
     * Sets accessed/dirty flags with a compare-and-set. A lost race means another agent changed the
     * entry after this walk read it: the walk stands as if it happened just before, as on hardware.
     *
     * @return {@code false} if the entry's memory cannot be written (not backed, or a nested
     *     stage-2 mapping without write permission)
     */
    private static boolean markUsed(PhysicalMemory memory, PageTableFormat f, long entryAddress, long entry, int depth,
            boolean leaf, boolean write, int fetchPerms) {
        long updated = f.markUsed(entry, depth, leaf, write);
        if (updated == entry) {
            return true;
        }
        if ((fetchPerms & Perm.WRITE) == 0) {
            return false;
        }
        try {
            memory.compareAndSet64(entryAddress, entry, updated);
            return true;
        } catch (MemoryAccessException e) {
            return false;
        }
    }
}
