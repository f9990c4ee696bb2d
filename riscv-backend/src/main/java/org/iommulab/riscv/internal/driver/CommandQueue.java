package org.iommulab.riscv.internal.driver;

import org.iommulab.api.errno.Errno;
import org.iommulab.api.errno.IommuException;
import org.iommulab.api.memory.PhysicalMemory;
import org.iommulab.riscv.internal.hw.RiscvHardware;
import org.iommulab.riscv.internal.spec.Command;
import org.iommulab.riscv.internal.spec.Reg;

/**
 * The driver's side of the command queue (spec §3.1 "Command-Queue"; Linux
 * {@code riscv_iommu_cmd_send} and {@code riscv_iommu_cmd_sync}): commands are written at
 * {@code cqt}, each batch is closed by an IOFENCE.C (PR = PW = 1, no interrupt, no memory write),
 * {@code cqt} is published, and the driver waits until {@code cqh} reaches it. The model consumes
 * the queue synchronously when {@code cqt} is written, so the wait is a bounded poll.
 *
 * <p>A command the unit refuses ({@code cqcsr.cmd_ill}, or {@code cqmf} / {@code cmd_to}) stops
 * the queue at that command; it is replaced by an IOFENCE.C, the error bits are cleared (RW1C,
 * which re-enables processing, §5.15) and the rest of the batch runs; the caller gets
 * {@code EIO}.
 *
 * <p>Thread safe: submissions are serialized by this object's monitor.
 */
final class CommandQueue {
    /** log2 of the number of entries: 256 commands, one 4 KiB frame. */
    static final int LOG2_ENTRIES = 8;
    static final int ENTRIES = 1 << LOG2_ENTRIES;
    /** Bounded wait for cqh to follow cqt (the model is synchronous: the first read suffices). */
    private static final int POLLS = 1000;
    private static final int ERRORS = Reg.CQCSR_CMD_ILL | Reg.CSR_MF | Reg.CQCSR_CMD_TO;

    private final String name;
    private final RiscvHardware hw;
    private final PhysicalMemory memory;
    private final long base;
    private int tail;
    private boolean live;

    /**
     * @param name the instance name, for messages
     * @param hw the unit
     * @param memory where the queue lives
     * @param base the queue's 4 KiB frame
     */
    CommandQueue(String name, RiscvHardware hw, PhysicalMemory memory, long base) {
        this.name = name;
        this.hw = hw;
        this.memory = memory;
        this.base = base;
    }

    /** @return the queue's frame */
    long base() {
        return base;
    }

    /**
     * Programs cqb and cqt and enables the queue (§"Guidelines for initialization": cqb, cqt = 0,
     * cqcsr.cqen = 1, poll cqon). Command-queue interrupts stay off (cie = 0): the driver polls.
     *
     * @throws IommuException {@code EIO} if cqon does not come on
     */
    synchronized void enable() throws IommuException {
        hw.write(Reg.CQB, Reg.queueBase(base, LOG2_ENTRIES), 8);
        hw.write(Reg.CQT, 0, 4);
        tail = 0;
        hw.write(Reg.CQCSR, Reg.CSR_EN, 4);
        if (!IommuUnit.pollCsr(hw, Reg.CQCSR, true)) {
            throw new IommuException(Errno.EIO, "IOMMU " + name + ": cqcsr.cqon did not come on");
        }
        live = true;
    }

    /** Disables the queue (cqen = 0, poll cqon = 0); later submissions fail with ENODEV. */
    synchronized void disable() {
        live = false;
        try {
            hw.write(Reg.CQCSR, 0, 4);
            IommuUnit.pollCsr(hw, Reg.CQCSR, false);
        } catch (IommuException e) {
            // valid offsets: cannot happen
        }
    }

    /**
     * Submits commands followed by IOFENCE.C and waits for their completion.
     *
     * @param cmds pairs of doublewords (dword0, dword1); may be empty (a fence alone)
     * @throws IommuException {@code ENODEV} when the queue is off, {@code EIO} when the unit
     *     refused a command (the others still ran), {@code ETIMEDOUT} if cqh did not reach cqt
     */
    synchronized void submit(long... cmds) throws IommuException {
        if (!live) {
            throw new IommuException(Errno.ENODEV, "IOMMU " + name + " is closed");
        }
        int perBatch = ENTRIES - 2; // one slot stays free (full queue), one is the fence
        int i = 0;
        IommuException error = null;
        do {
            int n = Math.min(perBatch, (cmds.length - i) / 2);
            for (int k = 0; k < n; k++, i += 2) {
                put(cmds[i], cmds[i + 1]);
            }
            put(Command.iofence(false, 0), 0);
            IommuException e = publish();
            if (error == null) {
                error = e;
            }
        } while (i < cmds.length);
        if (error != null) {
            throw error;
        }
    }

    private void put(long dword0, long dword1) {
        long slot = base + (long) Command.SIZE * tail;
        memory.write64(slot, dword0);
        memory.write64(slot + 8, dword1);
        tail = (tail + 1) & (ENTRIES - 1);
    }

    /** Writes cqt, then waits for cqh == cqt; a refused command is replaced by a fence and skipped. */
    private IommuException publish() throws IommuException {
        IommuException error = null;
        hw.write(Reg.CQT, tail, 4);
        for (int guard = 0; guard < ENTRIES + POLLS; guard++) {
            int csr = (int) hw.read(Reg.CQCSR, 4);
            int head = (int) hw.read(Reg.CQH, 4) & (ENTRIES - 1);
            if ((csr & ERRORS) == 0) {
                if (head == tail) {
                    return error;
                }
                Thread.onSpinWait();
                continue;
            }
            if ((csr & Reg.CSR_MF) != 0) {
                // The unit cannot read the queue: nothing the driver could retry would help.
                hw.write(Reg.CQCSR, Reg.CSR_EN | (csr & ERRORS), 4);
                return new IommuException(Errno.EIO, "IOMMU " + name + ": the unit cannot read the command queue (cqmf)");
            }
            long slot = base + (long) Command.SIZE * head;
            long bad = memory.read64(slot);
            if (error == null) {
                error = new IommuException(Errno.EIO, String.format(
                        "IOMMU %s refused command 0x%016x (opcode %d func3 %d, cqcsr 0x%x)", name, bad,
                        Command.opcode(bad), Command.func3(bad), csr));
            }
            // Make the queue operational again (§"Guidelines for handling interrupts"): replace the
            // command, clear the error bits (RW1C) with cqen kept, and publish cqt once more.
            memory.write64(slot, Command.iofence(false, 0));
            memory.write64(slot + 8, 0);
            hw.write(Reg.CQCSR, Reg.CSR_EN | (csr & ERRORS), 4);
            hw.write(Reg.CQT, tail, 4);
        }
        return new IommuException(Errno.ETIMEDOUT, "IOMMU " + name + ": the command queue did not drain (cqh "
                + hw.read(Reg.CQH, 4) + ", cqt " + tail + ")");
    }
}
