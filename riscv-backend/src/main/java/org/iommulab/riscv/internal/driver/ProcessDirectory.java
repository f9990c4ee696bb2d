package org.iommulab.riscv.internal.driver;

import java.util.HashMap;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

import org.iommulab.api.errno.IommuException;
import org.iommulab.api.memory.FrameAllocator;
import org.iommulab.api.memory.PhysicalMemory;
import org.iommulab.riscv.internal.spec.DeviceContext;
import org.iommulab.riscv.internal.spec.ProcessContext;
import org.iommulab.riscv.internal.spec.Reg;

/**
 * A process-directory table the driver owns for one device's host SVA bindings (spec §2.2
 * "Process-Directory-Table"): PD8 (one leaf page of 256 16-byte process contexts), PD17 (a root of
 * 512 non-leaf entries by PDI[1] = process_id[16:8] over leaf pages by PDI[0] = process_id[7:0]) or
 * PD20 (a root of 8 entries by PDI[2] = process_id[19:17] over PD17-like levels). Pages below the
 * root are allocated when a process id in their range is first bound and kept until the table is
 * freed; the bound process ids and their PSCIDs are kept here too.
 *
 * <p>Not thread safe for changes (the driver's monitor guards them); {@link #bindings} may be read
 * by the fault handler.
 */
final class ProcessDirectory {
    private final PhysicalMemory memory;
    private final FrameAllocator frames;
    /** pdtp.MODE: DeviceContext.PDTP_PD8, PD17 or PD20. */
    final int mode;
    final long root;
    /** Non-root pages: key level << 32 | index of the entry pointing at the page. */
    private final Map<Long, Long> pages = new HashMap<>();
    /** Bound process ids and their PSCIDs, their first-stage root and mode (iosatp.MODE). */
    final Map<Integer, Binding> bindings = new ConcurrentHashMap<>();

    /** A bound process: its PSCID and first-stage table. */
    record Binding(int pscid, long pgd, int iosatpMode) {
    }

    private ProcessDirectory(PhysicalMemory memory, FrameAllocator frames, int mode, long root) {
        this.memory = memory;
        this.frames = frames;
        this.mode = mode;
        this.root = root;
    }

    /**
     * @param mode pdtp.MODE
     * @return a new empty table (its root page allocated and zeroed)
     * @throws IommuException {@code ENOMEM}
     */
    static ProcessDirectory create(PhysicalMemory memory, FrameAllocator frames, int mode) throws IommuException {
        long root = frames.allocateFrames(1);
        memory.fill(root, FrameAllocator.FRAME_SIZE, (byte) 0);
        return new ProcessDirectory(memory, frames, mode, root);
    }

    /** @return the DC.fsc value (pdtp) naming this table */
    long pdtp() {
        return DeviceContext.pdtp(mode, root);
    }

    /**
     * @param pid a process id that fits {@link #processIdBits}
     * @return the address of its process context; missing pages below the root are allocated and
     *     linked (a non-leaf entry going from invalid to valid needs no invalidation)
     * @throws IommuException {@code ENOMEM}; pages allocated before stay linked (unused)
     */
    long pc(int pid) throws IommuException {
        int levels = ProcessContext.levels(mode);
        long table = root;
        for (int level = levels - 1; level > 0; level--) {
            int index = ProcessContext.pdi(pid, level);
            long key = (long) level << 32 | (pid >>> (level == 2 ? 17 : 8));
            Long next = pages.get(key);
            if (next == null) {
                next = frames.allocateFrames(1);
                memory.fill(next, FrameAllocator.FRAME_SIZE, (byte) 0);
                pages.put(key, next);
                // Non-leaf PDT entry (§2.2.1): V 0, PPN 53:10.
                memory.write64(table + 8L * index, (next >>> 12) << Reg.PPN_SHIFT | 1);
            }
            table = next;
        }
        return table + (long) ProcessContext.SIZE * ProcessContext.pdi(pid, 0);
    }

    /** Frees every page; the unit must not walk the table any more. */
    void free() {
        for (long p : pages.values()) {
            PasFrames.freeQuietly(frames, p, 1);
        }
        pages.clear();
        PasFrames.freeQuietly(frames, root, 1);
    }
}
