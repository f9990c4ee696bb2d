package org.iommulab.riscv.internal.driver;

import java.util.Arrays;

import org.iommulab.riscv.internal.spec.Command;

/**
 * The commands of one change, collected before anything is submitted so that a batch goes to the
 * {@link CommandQueue} in one {@link CommandQueue#submit} (which closes it with IOFENCE.C): pairs of
 * doublewords (dword0, dword1) as spec §3.1 lays them out.
 *
 * <p>Not thread safe: one per call.
 */
final class CommandBatch {
    /**
     * Beyond this many 4 KiB pages a range invalidation drops the address (AV = 0): past some size
     * one command for the whole tag costs less than a command per page (Linux's
     * {@code riscv_iommu_iotlb_inval} makes the same cut, at its own size).
     */
    static final int MAX_PAGE_COMMANDS = 64;

    private long[] words = new long[16];
    private int size;

    /** Adds one command. */
    CommandBatch add(long dword0, long dword1) {
        if (size + 2 > words.length) {
            words = Arrays.copyOf(words, words.length * 2);
        }
        words[size++] = dword0;
        words[size++] = dword1;
        return this;
    }

    /**
     * IOTINVAL.VMA or .GVMA (§3.1.1) for {@code [address, address + size)}: AV = 1 per 4 KiB page
     * of a range of at most {@link #MAX_PAGE_COMMANDS} pages, else one command with AV = 0.
     *
     * @param gvma IOTINVAL.GVMA rather than .VMA
     * @param gscid the GSCID (GV = 1), or -1
     * @param pscid the PSCID (PSCV = 1), or -1
     */
    CommandBatch iotinval(boolean gvma, int gscid, int pscid, long address, long size) {
        long pages = (size + 0xfff) >>> 12;
        if (pages > MAX_PAGE_COMMANDS) {
            return add(Command.iotinval(gvma, gscid, pscid, false), 0);
        }
        for (long p = 0; p < pages; p++) {
            add(Command.iotinval(gvma, gscid, pscid, true), Command.iotinvalAddress(address + (p << 12)));
        }
        return this;
    }

    /** @return the doublewords, as {@link CommandQueue#submit} takes them */
    long[] toArray() {
        return Arrays.copyOf(words, size);
    }
}
