package org.iommulab.riscv.internal.driver;

import java.util.ArrayList;
import java.util.List;
import java.util.function.IntConsumer;

import org.iommulab.api.errno.Errno;
import org.iommulab.api.errno.IommuException;
import org.iommulab.api.memory.FrameAllocator;
import org.iommulab.api.memory.MemoryAccessException;
import org.iommulab.api.memory.PhysicalMemory;
import org.iommulab.riscv.internal.hw.RiscvHardware;
import org.iommulab.riscv.internal.spec.Command;
import org.iommulab.riscv.internal.spec.FaultRecord;
import org.iommulab.riscv.internal.spec.PageRequestRecord;
import org.iommulab.riscv.internal.spec.Reg;

/**
 * The unit as the driver owns it: its bring-up and shutdown, and the structures that exist only
 * while it runs, namely the command queue, the fault and page-request queue memory and the DDT.
 *
 * <ul>
 * <li><b>Bring-up</b> ({@link #start}, §"Guidelines for initialization"; Linux
 * {@code riscv_iommu_init}) is lazy, so a register-level session that never uses the driver finds
 * the unit as reset left it: capabilities checked (version 1.x, wired interrupts), fctl.WSI set, the
 * command queue (256 entries), fault queue (256) and, with capabilities.ATS, page-request queue
 * (256) allocated and enabled with the en/on handshakes, a two-level DDT (16-bit requester ids)
 * installed in ddtp, and every cache invalidated.</li>
 * <li><b>Shutdown</b> ({@link #stop}, then {@link #release}) turns translation off before any
 * frame goes back, so no walk or queue write can reach a freed frame.</li>
 * <li><b>Queue consumption</b> ({@link #consumeFaults}, {@link #consumePageRequests}) lives here,
 * with the queues it reads, so that close cannot free a queue while it is read.</li>
 * </ul>
 *
 * <p>Thread safe. {@link #start}, {@link #stop} and {@link #release} run under the driver's
 * monitor. This object's queue lock guards the queue bases, the DDT reference and {@code live}
 * as they are set and cleared, and the reading of the fault and page-request queues; it is never
 * held while a command is submitted, so the interrupt path (which takes it) cannot deadlock with
 * command submission (whose unit may raise an interrupt on the submitting thread). {@code live},
 * {@code closed} and the command queue reference are volatile for the paths that run without the
 * driver's monitor (page-table flushes, page responses, the interrupt).
 */
final class IommuUnit {
    /** Fault and page-request queues: 256 records each. */
    static final int LOG2_QUEUE = 8;
    static final int QUEUE_ENTRIES = 1 << LOG2_QUEUE;
    private static final int CQ_FRAMES = PasFrames.framesFor((long) Command.SIZE * CommandQueue.ENTRIES);
    private static final int FQ_FRAMES = PasFrames.framesFor((long) FaultRecord.SIZE * QUEUE_ENTRIES);
    private static final int PQ_FRAMES = PasFrames.framesFor((long) PageRequestRecord.SIZE * QUEUE_ENTRIES);
    /** Bounded wait for a csr's on bit or ddtp.busy (the model is synchronous: the first read suffices). */
    private static final int POLLS = 1000;

    private final String name;
    private final RiscvHardware hw;
    private final PhysicalMemory memory;
    private final FrameAllocator frames;
    private final Capabilities caps;
    /** The wired interrupt, installed at bring-up. */
    private final IntConsumer interruptHandler;
    /** Guards fq, pq, ddt, cq and live as they change, and the reading of the fault and page-request queues. */
    private final Object queueLock = new Object();

    private volatile boolean live;
    private volatile boolean closed;
    private volatile CommandQueue cq;
    private long fq;
    private long pq;
    private DeviceDirectory ddt;

    /**
     * @param interruptHandler called with the ipsr bits that became pending, on the thread that
     *     raised them; must not block on the driver's monitor
     */
    IommuUnit(String name, RiscvHardware hw, PhysicalMemory memory, FrameAllocator frames, Capabilities caps,
            IntConsumer interruptHandler) {
        this.name = name;
        this.hw = hw;
        this.memory = memory;
        this.frames = frames;
        this.caps = caps;
        this.interruptHandler = interruptHandler;
    }

    /** @return whether the unit runs: brought up and not closed */
    boolean isLive() {
        return live;
    }

    /** @return whether the driver was closed */
    boolean isClosed() {
        return closed;
    }

    /** @throws IommuException {@code ENODEV} once the driver is closed */
    void checkOpen() throws IommuException {
        if (closed) {
            throw new IommuException(Errno.ENODEV, "IOMMU " + name + " is closed");
        }
    }

    /** @return the command queue, or {@code null} before bring-up and after close */
    CommandQueue commandQueue() {
        return cq;
    }

    /** @return the DDT; only while live, under the driver's monitor */
    DeviceDirectory directory() {
        return ddt;
    }

    // ---- bring-up ----------------------------------------------------------------------------

    /**
     * Takes the unit over, once (§"Guidelines for initialization"). Every frame is allocated before
     * a register is written and released if bring-up fails.
     *
     * @throws IommuException {@code ENODEV} when closed or the unit is not one this driver can
     *     program, {@code ENOMEM}, {@code EIO} when a queue does not come on
     */
    void start() throws IommuException {
        checkOpen();
        if (live) {
            return;
        }
        if (!caps.version1()) {
            throw new IommuException(Errno.ENODEV, String.format("IOMMU %s: capabilities.version 0x%x is not 1.x", name,
                    caps.value() & 0xff));
        }
        if (!caps.wiredInterrupts()) {
            throw new IommuException(Errno.ENODEV, "IOMMU " + name + ": no wire-signaled interrupts (capabilities.IGS)");
        }
        long cqFrame = 0;
        long fqFrames = 0;
        long pqFrame = 0;
        long ddtRoot = 0;
        try {
            cqFrame = frames.allocateFrames(CQ_FRAMES);
            fqFrames = frames.allocateFrames(FQ_FRAMES);
            if (caps.ats()) {
                pqFrame = frames.allocateFrames(PQ_FRAMES);
            }
            ddtRoot = frames.allocateFrames(1);
        } catch (IommuException e) {
            PasFrames.freeQuietly(frames, ddtRoot, 1);
            freeQueues(cqFrame, fqFrames, pqFrame);
            throw e;
        }
        memory.fill(ddtRoot, FrameAllocator.FRAME_SIZE, (byte) 0);
        CommandQueue queue = new CommandQueue(name, hw, memory, cqFrame);
        DeviceDirectory directory = new DeviceDirectory(memory, frames, ddtRoot);
        try {
            // fctl.WSI: interrupts are signalled on wires (the driver's interrupt hook).
            hw.write(Reg.FCTL, hw.read(Reg.FCTL, 4) | Reg.FCTL_WSI, 4);
            hw.setInterruptHandler(interruptHandler);
            queue.enable();
            enableQueue(Reg.FQB, Reg.FQH, Reg.FQCSR, fqFrames, "fault");
            if (pqFrame != 0) {
                enableQueue(Reg.PQB, Reg.PQH, Reg.PQCSR, pqFrame, "page-request");
            }
            setDdtp(directory.ddtp());
            if ((hw.read(Reg.DDTP, 8) & Reg.DDTP_MODE_MASK) != Reg.MODE_2LVL) {
                throw new IommuException(Errno.ENODEV, "IOMMU " + name + ": ddtp.iommu_mode 2LVL is not supported");
            }
            synchronized (queueLock) {
                cq = queue;
                fq = fqFrames;
                pq = pqFrame;
                ddt = directory;
                live = true;
            }
            // Nothing the unit may have cached before is valid now (Linux does the same at probe).
            cq.submit(invalidateAll());
        } catch (IommuException | RuntimeException e) {
            synchronized (queueLock) {
                live = false;
                cq = null;
                ddt = null;
                fq = pq = 0;
            }
            shutDown(queue);
            PasFrames.freeQuietly(frames, ddtRoot, 1);
            freeQueues(cqFrame, fqFrames, pqFrame);
            throw e;
        }
    }

    /** IODIR.INVAL_DDT for every device, IOTINVAL.VMA and .GVMA for everything. */
    private static long[] invalidateAll() {
        return new long[] {Command.iodirInvalDdt(-1), 0, Command.iotinval(false, -1, -1, false), 0,
                Command.iotinval(true, -1, -1, false), 0};
    }

    /** fqb/pqb, head 0, csr EN | IE, poll ON (§"Guidelines for initialization"). */
    private void enableQueue(int baseReg, int headReg, int csrReg, long base, String what) throws IommuException {
        hw.write(baseReg, Reg.queueBase(base, LOG2_QUEUE), 8);
        hw.write(headReg, 0, 4);
        hw.write(csrReg, Reg.CSR_EN | Reg.CSR_IE, 4);
        if (!pollCsr(hw, csrReg, true)) {
            throw new IommuException(Errno.EIO, "IOMMU " + name + ": the " + what + " queue did not come on");
        }
    }

    /**
     * Polls a queue csr (cqcsr, fqcsr, pqcsr) until its on bit reads {@code on} and busy is clear:
     * the second half of the en/on handshake (§5.15, §5.17, §5.19). Bounded.
     *
     * @return {@code false} if the handshake did not complete
     */
    static boolean pollCsr(RiscvHardware hw, int csrReg, boolean on) throws IommuException {
        for (int i = 0; i < POLLS; i++) {
            long v = hw.read(csrReg, 4);
            if (((v & Reg.CSR_ON) != 0) == on && (v & Reg.CSR_BUSY) == 0) {
                return true;
            }
            Thread.onSpinWait();
        }
        return false;
    }

    /** Writes ddtp once ddtp.busy is clear, and waits for busy to clear again. */
    private void setDdtp(long value) throws IommuException {
        for (int i = 0; i < POLLS && (hw.read(Reg.DDTP, 8) & Reg.DDTP_BUSY) != 0; i++) {
            Thread.onSpinWait();
        }
        hw.write(Reg.DDTP, value, 8);
        for (int i = 0; i < POLLS && (hw.read(Reg.DDTP, 8) & Reg.DDTP_BUSY) != 0; i++) {
            Thread.onSpinWait();
        }
    }

    // ---- shutdown ----------------------------------------------------------------------------

    /**
     * Marks the driver closed and, if the unit runs, turns it off (see {@link #shutDown}); its
     * frames stay allocated until {@link #release}, so that the caller can free what lives in
     * them first.
     *
     * @return whether the unit was running
     */
    boolean stop() {
        closed = true;
        CommandQueue queue;
        boolean wasLive;
        synchronized (queueLock) {
            wasLive = live;
            live = false;
            queue = cq;
        }
        if (wasLive) {
            shutDown(queue);
        }
        return wasLive;
    }

    /** After {@link #stop}: frees the DDT and the queues (if {@code wasLive}) and forgets them. */
    void release(boolean wasLive) {
        if (wasLive) {
            ddt.free();
            freeQueues(cq.base(), fq, pq);
        }
        synchronized (queueLock) {
            cq = null;
            ddt = null;
            fq = pq = 0;
        }
    }

    /** Translation off (ddtp Off), queues off, interrupt hook removed; errors ignored. */
    private void shutDown(CommandQueue queue) {
        hw.setInterruptHandler(null);
        try {
            setDdtp(Reg.MODE_OFF);
        } catch (IommuException | RuntimeException e) {
            // valid offsets: cannot happen
        }
        if (queue != null) {
            try {
                // ddtp is Off: drop whatever the unit cached, so nothing of it outlives the frames.
                queue.submit(invalidateAll());
            } catch (IommuException | RuntimeException e) {
                // the queue is not running: nothing is cached that a command could reach
            }
            queue.disable();
        }
        try {
            hw.write(Reg.FQCSR, 0, 4);
            pollCsr(hw, Reg.FQCSR, false);
            hw.write(Reg.PQCSR, 0, 4);
            pollCsr(hw, Reg.PQCSR, false);
        } catch (IommuException | RuntimeException e) {
            // valid offsets: cannot happen
        }
    }

    /** Frees the page-request, fault and command queue frames (0: not allocated). */
    private void freeQueues(long cqFrame, long fqFrames, long pqFrame) {
        PasFrames.freeQuietly(frames, pqFrame, PQ_FRAMES);
        PasFrames.freeQuietly(frames, fqFrames, FQ_FRAMES);
        PasFrames.freeQuietly(frames, cqFrame, CQ_FRAMES);
    }

    // ---- interrupts and the queues the unit writes ----------------------------------------------

    /** Clears ipsr.CIP (RW1C): the driver polls the command queue and needs no command interrupt. */
    void acknowledgeCommandInterrupt() {
        try {
            hw.write(Reg.IPSR, Reg.IPSR_CIP, 4);
        } catch (IommuException e) {
            // a valid offset: cannot happen
        }
    }

    /** @return the fault records (§3.2) from fqh to fqt, four doublewords each; fqh moved past them */
    List<long[]> consumeFaults() {
        return consume(Reg.FQCSR, Reg.FQH, Reg.FQT, Reg.IPSR_FIP, true);
    }

    /** @return the page-request records (§3.3) from pqh to pqt, two doublewords each; pqh moved past them */
    List<long[]> consumePageRequests() {
        return consume(Reg.PQCSR, Reg.PQH, Reg.PQT, Reg.IPSR_PIP, false);
    }

    /**
     * Reads the records from head to tail of a fault or page-request queue: clears the queue's
     * error bits (fqof/fqmf, pqof/pqmf: RW1C, which re-enables recording) and its ipsr bit first,
     * then consumes, then writes the head. Under the queue lock, so close cannot free the queue
     * meanwhile.
     */
    private List<long[]> consume(int csrReg, int headReg, int tailReg, int ipsrBit, boolean faults) {
        List<long[]> records = new ArrayList<>();
        synchronized (queueLock) {
            long base = faults ? fq : pq;
            if (!live || base == 0) {
                return records;
            }
            int words = (faults ? FaultRecord.SIZE : PageRequestRecord.SIZE) / 8;
            try {
                int csr = (int) hw.read(csrReg, 4);
                int errors = csr & (Reg.CSR_MF | Reg.CSR_OF);
                if (errors != 0) {
                    hw.write(csrReg, Reg.CSR_EN | Reg.CSR_IE | errors, 4);
                }
                hw.write(Reg.IPSR, ipsrBit, 4);
                int mask = QUEUE_ENTRIES - 1;
                int head = (int) hw.read(headReg, 4) & mask;
                int tail = (int) hw.read(tailReg, 4) & mask;
                for (int guard = 0; head != tail && guard < QUEUE_ENTRIES; guard++) {
                    long at = base + 8L * words * head;
                    long[] r = new long[words];
                    for (int w = 0; w < words; w++) {
                        r[w] = memory.read64(at + 8L * w);
                    }
                    records.add(r);
                    head = (head + 1) & mask;
                }
                hw.write(headReg, head, 4);
            } catch (IommuException | MemoryAccessException e) {
                // valid offsets and the driver's own frames: cannot happen
            }
        }
        return records;
    }
}
