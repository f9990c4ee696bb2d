package org.iommulab.idxd.internal.hw;

import org.iommulab.api.idxd.Dsa;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.locks.Condition;
import java.util.concurrent.locks.ReentrantLock;

import org.iommulab.api.errno.Errno;
import org.iommulab.api.errno.IommuException;
import org.iommulab.api.fault.PageResponse;
import org.iommulab.api.idxd.SubmitStatus;
import org.iommulab.api.pasid.Pasids;
import org.iommulab.api.spi.IommuInstance;

/**
 * The DSA hardware model: BAR0 registers and commands, work queues fed through portals, and engine
 * threads that run descriptors as DMA through the IOMMU. One lock guards registers and queues;
 * engines run descriptors without it.
 */
public final class DsaDevice {
    /** How long a command or a blocked engine waits for descriptors to finish, at most. */
    private static final long WAIT_NANOS = TimeUnit.SECONDS.toNanos(30);
    /** How long an engine blocked on a fault waits for the page response. */
    private static final long PAGE_RESPONSE_NANOS = TimeUnit.SECONDS.toNanos(10);

    private final String name;
    private final IommuInstance iommu;
    private final int requesterId;
    private final ReentrantLock lock = new ReentrantLock();
    private final Condition workAvailable = lock.newCondition();
    private final Condition progress = lock.newCondition();
    private final WorkQueue[] wqs = new WorkQueue[DsaRegisters.NUM_WQS];
    /** GRPCFG: per group eight qwords: wqs[4], engines, flags, two reserved. */
    private final long[][] grpcfg = new long[DsaRegisters.NUM_GROUPS][8];
    private final long[] swerr = new long[4];
    private final Map<String, AtomicLong> counters = new ConcurrentHashMap<>();
    private final AtomicInteger pageGroup = new AtomicInteger();
    private final List<Thread> engines = new ArrayList<>();
    private long gencfg;
    private long genctrl;
    private long intcause;
    private long cmd;
    private long cmdsts;
    private boolean enabled;
    private boolean closed;
    private int outstanding;
    /** Bumped at every disable: engines of an earlier enable end when they see it. */
    private int generation;
    /** Serialises commands: CMDSTS belongs to one command at a time (Linux's {@code cmd_lock}). */
    private final ReentrantLock commandLock = new ReentrantLock();

    /**
     * @param name device name, for threads and messages
     * @param iommu the IOMMU the device's DMA goes through
     * @param requesterId the device's requester id
     */
    public DsaDevice(String name, IommuInstance iommu, int requesterId) {
        this.name = name;
        this.iommu = iommu;
        this.requesterId = requesterId;
        for (int i = 0; i < wqs.length; i++) {
            wqs[i] = new WorkQueue(i);
        }
    }

    public String name() {
        return name;
    }

    public IommuInstance iommu() {
        return iommu;
    }

    public int requesterId() {
        return requesterId;
    }

    // ---- registers --------------------------------------------------------------------------------

    /**
     * @param offset BAR0 offset
     * @param size 4 or 8
     * @return the value
     * @throws IommuException {@code EINVAL} for a bad access
     */
    public long mmioRead(long offset, int size) throws IommuException {
        checkAccess(offset, size);
        lock.lock();
        try {
            long v = read64((int) (offset & ~7L));
            return size == 8 ? v : (offset & 4) != 0 ? v >>> 32 : v & 0xffff_ffffL;
        } finally {
            lock.unlock();
        }
    }

    /**
     * @param offset BAR0 offset
     * @param value the value
     * @param size 4 or 8
     * @throws IommuException {@code EINVAL} for a bad access
     */
    public void mmioWrite(long offset, long value, int size) throws IommuException {
        checkAccess(offset, size);
        int base = (int) (offset & ~7L);
        long mask = size == 8 ? -1L : (offset & 4) != 0 ? 0xffff_ffff_0000_0000L : 0xffff_ffffL;
        long shifted = size == 8 ? value : (offset & 4) != 0 ? value << 32 : value & 0xffff_ffffL;
        lock.lock();
        try {
            write64(base, shifted, mask);
        } finally {
            lock.unlock();
        }
    }

    private static void checkAccess(long offset, int size) throws IommuException {
        if (size != 4 && size != 8) {
            throw new IommuException(Errno.EINVAL, "register access size must be 4 or 8, not " + size);
        }
        if (offset < 0 || offset + size > DsaRegisters.MMIO_SIZE || (offset & (size - 1)) != 0) {
            throw new IommuException(Errno.EINVAL, String.format("bad register offset 0x%x for size %d", offset, size));
        }
    }

    private long read64(int off) {
        if (off >= DsaRegisters.WQCFG_BASE && off < DsaRegisters.WQCFG_BASE + wqs.length * WqConfig.BYTES) {
            WorkQueue wq = wqs[(off - DsaRegisters.WQCFG_BASE) / WqConfig.BYTES];
            int word = ((off - DsaRegisters.WQCFG_BASE) % WqConfig.BYTES) / 4;
            return (wqWord(wq, word) & 0xffff_ffffL) | (long) wqWord(wq, word + 1) << 32;
        }
        if (off >= DsaRegisters.GRPCFG_BASE && off < DsaRegisters.GRPCFG_BASE + grpcfg.length * DsaRegisters.GRPCFG_SIZE) {
            int g = (off - DsaRegisters.GRPCFG_BASE) / DsaRegisters.GRPCFG_SIZE;
            return grpcfg[g][((off - DsaRegisters.GRPCFG_BASE) % DsaRegisters.GRPCFG_SIZE) / 8];
        }
        if (off >= DsaRegisters.SWERR && off < DsaRegisters.SWERR + 32) {
            return swerr[(off - DsaRegisters.SWERR) / 8];
        }
        return switch (off) {
            case DsaRegisters.VERSION -> DsaRegisters.VERSION_VALUE;
            case DsaRegisters.GENCAP -> DsaRegisters.GENCAP_VALUE;
            case DsaRegisters.WQCAP -> DsaRegisters.WQCAP_VALUE;
            case DsaRegisters.GRPCAP -> DsaRegisters.GRPCAP_VALUE;
            case DsaRegisters.ENGCAP -> DsaRegisters.ENGCAP_VALUE;
            case DsaRegisters.OPCAP -> DsaRegisters.OPCAP_VALUE;
            case DsaRegisters.TABLE_OFFSET -> DsaRegisters.TABLE_OFFSET_VALUE;
            case DsaRegisters.GENCFG -> gencfg;
            case DsaRegisters.GENCTRL -> genctrl;
            case DsaRegisters.GENSTS -> enabled ? 1 : 0;
            case DsaRegisters.INTCAUSE -> intcause;
            case DsaRegisters.CMD -> cmd;
            case DsaRegisters.CMDSTS -> cmdsts;
            case DsaRegisters.CMDCAP -> DsaRegisters.CMDCAP_VALUE;
            default -> 0;
        };
    }

    private static int wqWord(WorkQueue wq, int word) {
        return word == 6 ? wq.word6() : wq.config.words[word];
    }

    private void write64(int off, long value, long mask) {
        if (off >= DsaRegisters.WQCFG_BASE && off < DsaRegisters.WQCFG_BASE + wqs.length * WqConfig.BYTES) {
            WorkQueue wq = wqs[(off - DsaRegisters.WQCFG_BASE) / WqConfig.BYTES];
            if (wq.enabled) {
                return; // WQCFG is read-only while the queue is enabled
            }
            int word = ((off - DsaRegisters.WQCFG_BASE) % WqConfig.BYTES) / 4;
            for (int half = 0; half < 2; half++) {
                long halfMask = (mask >>> (32 * half)) & 0xffff_ffffL;
                if (halfMask != 0) {
                    int w = word + half;
                    int m = WqConfig.writableMask(w);
                    wq.config.words[w] = (wq.config.words[w] & ~m) | ((int) (value >>> (32 * half)) & m);
                }
            }
            return;
        }
        if (off >= DsaRegisters.GRPCFG_BASE && off < DsaRegisters.GRPCFG_BASE + grpcfg.length * DsaRegisters.GRPCFG_SIZE) {
            if (enabled) {
                return; // GRPCFG is read-only while the device is enabled
            }
            int g = (off - DsaRegisters.GRPCFG_BASE) / DsaRegisters.GRPCFG_SIZE;
            int q = ((off - DsaRegisters.GRPCFG_BASE) % DsaRegisters.GRPCFG_SIZE) / 8;
            long writable = q == 0 ? (1L << wqs.length) - 1 : q < 4 ? 0 : q == 4 ? (1L << DsaRegisters.NUM_ENGINES) - 1
                    : q == 5 ? -1L : 0;
            grpcfg[g][q] = (grpcfg[g][q] & ~(mask & writable)) | (value & mask & writable);
            return;
        }
        if (off == DsaRegisters.SWERR) {
            swerr[0] &= ~(value & mask & 3); // write 1 to clear valid and overflow
            return;
        }
        switch (off) {
            case DsaRegisters.GENCFG -> {
                if (!enabled) {
                    gencfg = (gencfg & ~mask) | (value & mask & 0x30ff);
                }
            }
            case DsaRegisters.GENCTRL -> genctrl = (genctrl & ~mask) | (value & mask & 0x7);
            case DsaRegisters.INTCAUSE -> intcause &= ~(value & mask);
            case DsaRegisters.CMD -> {
                if ((mask & 0xffff_ffffL) != 0) {
                    cmd = value & 0xffff_ffffL;
                    command((int) cmd);
                }
            }
            default -> {
                // read-only or reserved: writes are ignored
            }
        }
    }

    // ---- commands --------------------------------------------------------------------------------

    /** IDXD_CMDSTS_HW_ERR: a command could not complete (a wait timed out, or the device is unplugged). */
    private static final int CMDSTS_HW_ERR = 3;

    /**
     * Writes CMD and reads CMDSTS as one step, so that concurrent drivers never read each other's
     * status.
     *
     * @param value the CMD value
     * @return the CMDSTS value the command left
     */
    public long runCommand(int value) {
        commandLock.lock();
        try {
            lock.lock();
            try {
                command(value);
                return cmdsts;
            } finally {
                lock.unlock();
            }
        } finally {
            commandLock.unlock();
        }
    }

    /**
     * Runs a command written to CMD (operand 19:0, cmd 24:20, int_req 31); the result goes to
     * CMDSTS. A command written while one is active (CMDSTS.active, bit 31) is ignored.
     */
    private void command(int value) {
        if ((cmdsts & (1L << 31)) != 0) {
            return;
        }
        cmdsts = 1L << 31;
        int operand = value & 0xfffff;
        int code = (value >>> 20) & 0x1f;
        int err = switch (code) {
            case DsaRegisters.CMD_ENABLE_DEVICE -> enableDevice();
            case DsaRegisters.CMD_DISABLE_DEVICE -> enabled ? disableDevice() : DsaRegisters.CMDSTS_ERR_DIS_DEV_EN;
            case DsaRegisters.CMD_RESET_DEVICE -> resetDevice();
            case DsaRegisters.CMD_DRAIN_ALL, DsaRegisters.CMD_ABORT_ALL -> allQueues(code == DsaRegisters.CMD_ABORT_ALL, -1);
            case DsaRegisters.CMD_DRAIN_PASID, DsaRegisters.CMD_ABORT_PASID ->
                    allQueues(code == DsaRegisters.CMD_ABORT_PASID, operand);
            case DsaRegisters.CMD_ENABLE_WQ -> operand >= wqs.length ? DsaRegisters.CMDSTS_INVAL_WQIDX : enableWq(wqs[operand]);
            case DsaRegisters.CMD_DISABLE_WQ, DsaRegisters.CMD_DRAIN_WQ, DsaRegisters.CMD_ABORT_WQ,
                    DsaRegisters.CMD_RESET_WQ -> queueCommand(code, operand);
            default -> DsaRegisters.CMDSTS_INVAL_CMD;
        };
        cmdsts = err;
        if ((value >>> 31) != 0) {
            intcause |= DsaRegisters.INTC_CMD;
        }
    }

    private int enableDevice() {
        if (enabled) {
            return DsaRegisters.CMDSTS_ERR_DEV_ENABLED;
        }
        if (closed) {
            return 3; // IDXD_CMDSTS_HW_ERR: the device is unplugged
        }
        int total = 0;
        for (WorkQueue wq : wqs) {
            total += wq.config.size();
        }
        if (total > DsaRegisters.TOTAL_WQ_SIZE) {
            return DsaRegisters.CMDSTS_ERR_WQ_SIZE_ERANGE;
        }
        long enginesSeen = 0;
        for (long[] g : grpcfg) {
            if ((g[4] & enginesSeen) != 0) {
                return DsaRegisters.CMDSTS_ERR_GRP_CONFIG2; // an engine in two groups
            }
            enginesSeen |= g[4];
        }
        for (WorkQueue wq : wqs) {
            if (wq.config.size() == 0) {
                continue;
            }
            int groups = 0;
            boolean engine = false;
            for (long[] g : grpcfg) {
                if ((g[0] & (1L << wq.index)) != 0) {
                    groups++;
                    engine = g[4] != 0;
                }
            }
            if (groups != 1 || !engine) {
                return DsaRegisters.CMDSTS_ERR_GRP_CONFIG; // a sized queue belongs to one group with an engine
            }
        }
        enabled = true;
        for (int g = 0; g < grpcfg.length; g++) {
            for (int e = 0; e < DsaRegisters.NUM_ENGINES; e++) {
                if ((grpcfg[g][4] & (1L << e)) != 0) {
                    startEngine(g, e);
                }
            }
        }
        return DsaRegisters.CMDSTS_SUCCESS;
    }

    private int disableDevice() {
        for (WorkQueue wq : wqs) {
            abort(wq, -1);
            wq.stopping = true;
        }
        boolean quiet = awaitQuiet(null, -1);
        for (WorkQueue wq : wqs) {
            wq.enabled = false;
            wq.stopping = false;
        }
        enabled = false;
        generation++;
        workAvailable.signalAll();
        engines.clear(); // the engines see the new generation and end
        return quiet ? DsaRegisters.CMDSTS_SUCCESS : CMDSTS_HW_ERR;
    }

    private int resetDevice() {
        if (enabled) {
            disableDevice();
        }
        for (WorkQueue wq : wqs) {
            java.util.Arrays.fill(wq.config.words, 0);
        }
        for (long[] g : grpcfg) {
            java.util.Arrays.fill(g, 0);
        }
        gencfg = 0;
        genctrl = 0;
        java.util.Arrays.fill(swerr, 0);
        return DsaRegisters.CMDSTS_SUCCESS;
    }

    /**
     * DISABLE, DRAIN, ABORT and RESET_WQ take a queue mask (Linux: {@code BIT(id % 16) | (id / 16) << 16}):
     * bits 15:0 select queues of the block in bits 19:16.
     */
    private int queueCommand(int code, int operand) {
        int base = ((operand >>> 16) & 0xf) * 16;
        int mask = operand & 0xffff;
        if (mask == 0 || base + 31 - Integer.numberOfLeadingZeros(mask) >= wqs.length) {
            return DsaRegisters.CMDSTS_INVAL_WQIDX;
        }
        if (!enabled) {
            return DsaRegisters.CMDSTS_ERR_DEV_NOT_EN;
        }
        boolean quiet = true;
        for (int bit = 0; bit < 16; bit++) {
            if ((mask & (1 << bit)) == 0) {
                continue;
            }
            WorkQueue wq = wqs[base + bit];
            switch (code) {
                case DsaRegisters.CMD_DISABLE_WQ -> {
                    wq.stopping = true;
                    quiet &= awaitQuiet(wq, -1);
                    wq.enabled = false;
                    wq.stopping = false;
                }
                case DsaRegisters.CMD_DRAIN_WQ -> quiet &= awaitQuiet(wq, -1);
                case DsaRegisters.CMD_ABORT_WQ -> {
                    abort(wq, -1);
                    quiet &= awaitQuiet(wq, -1);
                }
                default -> { // RESET_WQ
                    wq.stopping = true;
                    abort(wq, -1);
                    quiet &= awaitQuiet(wq, -1);
                    wq.enabled = false;
                    wq.stopping = false;
                    java.util.Arrays.fill(wq.config.words, 0);
                }
            }
        }
        return quiet ? DsaRegisters.CMDSTS_SUCCESS : CMDSTS_HW_ERR;
    }

    /** @return the CMD operand that selects one queue in the WQ commands that take a mask */
    public static int queueMask(int index) {
        return 1 << (index % 16) | (index / 16) << 16;
    }

    private int enableWq(WorkQueue wq) {
        WqConfig c = wq.config;
        if (!enabled) {
            return DsaRegisters.CMDSTS_ERR_DEV_NOTEN;
        }
        if (wq.enabled) {
            return DsaRegisters.CMDSTS_ERR_WQ_ENABLED;
        }
        if (c.size() == 0) {
            return DsaRegisters.CMDSTS_ERR_WQ_SIZE;
        }
        if (c.priority() == 0) {
            return DsaRegisters.CMDSTS_ERR_WQ_PRIOR;
        }
        if (!c.dedicated() && !c.pasidEnabled()) {
            return DsaRegisters.CMDSTS_ERR_PASID_EN; // a shared queue takes the submitter's PASID
        }
        if (c.maxTransferShift() > DsaRegisters.MAX_XFER_SHIFT) {
            return DsaRegisters.CMDSTS_ERR_MAX_XFER_SIZE;
        }
        if (c.maxBatchShift() > DsaRegisters.MAX_BATCH_SHIFT) {
            return DsaRegisters.CMDSTS_ERR_MAX_BATCH_SIZE;
        }
        int total = 0;
        for (WorkQueue q : wqs) {
            total += q.config.size();
        }
        if (total > DsaRegisters.TOTAL_WQ_SIZE) {
            return DsaRegisters.CMDSTS_ERR_WQ_SIZE; // sizes changed since ENABLE_DEVICE: beyond the total
        }
        boolean grouped = false;
        for (long[] g : grpcfg) {
            grouped |= (g[0] & (1L << wq.index)) != 0 && g[4] != 0;
        }
        if (!grouped) {
            return DsaRegisters.CMDSTS_ERR_WQ_SIZE; // a queue no engine serves would never drain
        }
        wq.enabled = true;
        return DsaRegisters.CMDSTS_SUCCESS;
    }

    private int allQueues(boolean abort, int pasid) {
        if (!enabled) {
            return DsaRegisters.CMDSTS_ERR_DEV_NOT_EN;
        }
        for (WorkQueue wq : wqs) {
            if (abort) {
                abort(wq, pasid);
            }
        }
        boolean quiet = true;
        for (WorkQueue wq : wqs) {
            quiet &= awaitQuiet(wq, pasid);
        }
        return quiet ? DsaRegisters.CMDSTS_SUCCESS : CMDSTS_HW_ERR;
    }

    /** Discards waiting descriptors (of one PASID, or all for -1); they never complete. */
    private void abort(WorkQueue wq, int pasid) {
        int before = wq.pending.size();
        wq.pending.removeIf(w -> pasid < 0 || w.pasid == pasid);
        int dropped = before - wq.pending.size();
        outstanding -= dropped;
        count("aborted", dropped);
        progress.signalAll();
    }

    /**
     * Waits (lock held) until a queue (or every queue, for null) has nothing waiting or running.
     *
     * @return {@code false} if the bound ran out first
     */
    private boolean awaitQuiet(WorkQueue only, int pasid) {
        long left = WAIT_NANOS;
        while (busy(only, pasid)) {
            if (left <= 0) {
                return false;
            }
            try {
                left = progress.awaitNanos(left);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                return false;
            }
        }
        return true;
    }

    private boolean busy(WorkQueue only, int pasid) {
        for (WorkQueue wq : wqs) {
            if (only != null && wq != only) {
                continue;
            }
            if (pasid < 0 ? !wq.pending.isEmpty() || !wq.running.isEmpty() : wq.pending.stream().anyMatch(w -> w.pasid == pasid)
                    || runningPasids.containsKey(pasid)) {
                return true;
            }
        }
        return false;
    }

    /** PASIDs of descriptors an engine runs now, with counts (for DRAIN_PASID). */
    private final Map<Integer, Integer> runningPasids = new TreeMap<>();

    // ---- portals ---------------------------------------------------------------------------------

    /**
     * MOVDIR64B to a dedicated queue's portal.
     *
     * @return ACCEPTED (also when dropped because the queue is full: a posted write has no answer),
     *     REJECTED if the queue is not an enabled dedicated queue
     */
    public SubmitStatus movdir64b(int index, byte[] descriptor) {
        if (descriptor == null || descriptor.length != Dsa.DESC_SIZE || index < 0 || index >= wqs.length) {
            return SubmitStatus.REJECTED;
        }
        lock.lock();
        try {
            WorkQueue wq = wqs[index];
            if (!enabled || !wq.enabled || wq.stopping || !wq.config.dedicated()) {
                count("dropped", 1);
                return SubmitStatus.REJECTED;
            }
            if (wq.pending.size() >= wq.config.size()) {
                count("dropped", 1); // software overran its dedicated queue
                return SubmitStatus.ACCEPTED;
            }
            int pasid = wq.config.pasidEnabled() ? wq.config.pasid() : Pasids.NO_PASID;
            enqueue(wq, descriptor.clone(), pasid, wq.config.priv());
            return SubmitStatus.ACCEPTED;
        } finally {
            lock.unlock();
        }
    }

    /**
     * ENQCMD / ENQCMDS to a shared queue's portal: the PASID goes into the descriptor.
     *
     * @return ACCEPTED, RETRY (full or disabled), REJECTED (not a shared queue)
     */
    public SubmitStatus enqcmd(int index, byte[] descriptor, int pasid, boolean supervisor) {
        if (descriptor == null || descriptor.length != Dsa.DESC_SIZE || index < 0 || index >= wqs.length
                || pasid < 0 || pasid > Pasids.MAX_PASID) {
            return SubmitStatus.REJECTED;
        }
        lock.lock();
        try {
            WorkQueue wq = wqs[index];
            if (wq.config.dedicated()) {
                return SubmitStatus.REJECTED;
            }
            if (!enabled || !wq.enabled || wq.stopping || wq.pending.size() >= wq.config.size()) {
                count("retries", 1);
                return SubmitStatus.RETRY;
            }
            boolean priv = supervisor && (Descriptor.i32(descriptor, 0) >>> 31) != 0;
            enqueue(wq, Descriptor.withPasid(descriptor, pasid, priv), pasid, priv);
            return SubmitStatus.ACCEPTED;
        } finally {
            lock.unlock();
        }
    }

    private void enqueue(WorkQueue wq, byte[] descriptor, int pasid, boolean priv) {
        wq.pending.addLast(new Work(descriptor, pasid, priv, wq, wq.nextSeq++));
        outstanding++;
        count("descriptors", 1);
        workAvailable.signalAll();
    }

    // ---- engines ---------------------------------------------------------------------------------

    private void startEngine(int group, int engine) {
        Processor processor = new Processor(this, new DmaPort(iommu, iommu.memory(), requesterId));
        int born = generation;
        Thread t = new Thread(() -> engineLoop(group, processor, born), name + "-engine-" + engine);
        t.setDaemon(true);
        engines.add(t);
        t.start();
    }

    private void engineLoop(int group, Processor processor, int born) {
        while (true) {
            Work work = null;
            lock.lock();
            try {
                while (generation == born && (work = next(group)) == null) {
                    workAvailable.awaitUninterruptibly();
                }
                if (generation != born) {
                    return; // the device was disabled since this engine started
                }
                work.wq.running.add(work.seq);
                runningPasids.merge(work.pasid, 1, Integer::sum);
            } finally {
                lock.unlock();
            }
            try {
                processor.run(work);
            } catch (RuntimeException e) {
                counted(Dsa.COMP_HW_ERR1); // the model failed; the device keeps running
            } finally {
                lock.lock();
                try {
                    work.wq.running.remove(work.seq);
                    runningPasids.computeIfPresent(work.pasid, (p, n) -> n == 1 ? null : n - 1);
                    outstanding--;
                    progress.signalAll();
                } finally {
                    lock.unlock();
                }
            }
        }
    }

    /** The waiting descriptor an engine of {@code group} takes: from the highest-priority enabled queue. */
    private Work next(int group) {
        WorkQueue best = null;
        for (WorkQueue wq : wqs) {
            if ((grpcfg[group][0] & (1L << wq.index)) == 0 || wq.pending.isEmpty()) {
                continue;
            }
            if (best == null || wq.config.priority() > best.config.priority()) {
                best = wq;
            }
        }
        return best == null ? null : best.pending.pollFirst();
    }

    /**
     * DRAIN: blocks the engine until every descriptor that arrived in the queue before it completed.
     *
     * @return {@code false} if the bound ran out first
     */
    boolean awaitDrained(Work drain) {
        lock.lock();
        try {
            long left = WAIT_NANOS;
            while (!drain.wq.drainedBefore(drain.seq)) {
                if (left <= 0) {
                    return false;
                }
                left = progress.awaitNanos(left);
            }
            return true;
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return false;
        } finally {
            lock.unlock();
        }
    }

    /** @return the page requester of a block-on-fault descriptor on {@code wq} */
    PageRequester pager(WorkQueue wq) {
        return (pasid, address, access) -> {
            int group = pageGroup.getAndIncrement() & 0x1ff;
            count("page-requests", 1);
            if (!iommu.pageRequest(requesterId, pasid, address, access, group)) {
                return false;
            }
            long deadline = System.nanoTime() + PAGE_RESPONSE_NANOS;
            int born = generation;
            while (System.nanoTime() < deadline && !closed && generation == born && !wq.stopping) {
                PageResponse r = iommu.pageRequestStatus(requesterId, pasid, group);
                if (r != null) {
                    count("page-responses." + r.name().toLowerCase(java.util.Locale.ROOT), 1);
                    return r == PageResponse.SUCCESS;
                }
                java.util.concurrent.locks.LockSupport.parkNanos(200_000);
            }
            count("page-request-timeouts", 1);
            return false;
        };
    }

    // ---- reporting -------------------------------------------------------------------------------

    void counted(int status) {
        count("completed." + Dsa.statusName(status), 1);
    }

    void interrupt(int handle) {
        count("interrupts", 1);
    }

    /**
     * Records an error no completion record can carry in SWERR (spec §9.2.12): valid (0), overflow
     * (1), desc_valid (2), wq_idx_valid (3), batch (4), fault_rw (5), priv (6), error (15:8),
     * wq_idx (23:16), operation (39:32), pasid (59:40); batch_idx and invalid flags in the second
     * qword, the fault address in the third.
     */
    void softwareError(int error, Descriptor d, Work work, boolean inBatch, long batchIndex, long faultAddress,
            boolean write) {
        lock.lock();
        try {
            count("software-errors", 1);
            if ((swerr[0] & 1) != 0) {
                swerr[0] |= 2;
                return;
            }
            long q0 = 1 | 1 << 2 | (work != null ? 1 << 3 : 0) | (inBatch ? 1 << 4 : 0) | (write ? 1 << 5 : 0)
                    | (d.priv ? 1 << 6 : 0) | (long) (error & 0xff) << 8 | (long) (work != null ? work.wq.index : 0) << 16
                    | (long) d.opcode << 32 | (long) ((work != null ? work.pasid : d.pasid) & 0xfffff) << 40;
            swerr[0] = q0;
            swerr[1] = (batchIndex & 0xffff) | (long) (error == Dsa.COMP_INVALID_FLAGS ? d.flags : 0) << 32;
            swerr[2] = faultAddress;
            swerr[3] = 0;
            intcause |= DsaRegisters.INTC_ERR;
        } finally {
            lock.unlock();
        }
    }

    private void count(String key, long n) {
        if (n != 0) {
            counters.computeIfAbsent(key, k -> new AtomicLong()).addAndGet(n);
        }
    }

    /** @return counters by name, a new sorted map */
    public Map<String, Long> statistics() {
        Map<String, Long> m = new TreeMap<>();
        counters.forEach((k, v) -> m.put(k, v.get()));
        return m;
    }

    /**
     * @param timeoutMillis bound
     * @return {@code true} once no accepted descriptor is outstanding
     */
    public boolean awaitIdle(long timeoutMillis) throws InterruptedException {
        lock.lock();
        try {
            long left = TimeUnit.MILLISECONDS.toNanos(timeoutMillis);
            while (outstanding > 0) {
                if (left <= 0) {
                    return false;
                }
                left = progress.awaitNanos(left);
            }
            return true;
        } finally {
            lock.unlock();
        }
    }

    /** @return the work queue's configuration words, a copy */
    public int[] wqConfig(int index) {
        lock.lock();
        try {
            int[] w = wqs[index].config.words.clone();
            w[6] = wqs[index].word6();
            return w;
        } finally {
            lock.unlock();
        }
    }

    /** @return the number of work queues */
    public int queues() {
        return wqs.length;
    }

    /**
     * Marks a queue as backing an mdev: while claimed, the host cannot reconfigure it, and a dedicated
     * queue backs one mdev only.
     *
     * @throws IommuException {@code EBUSY} if a dedicated queue backs another one already
     */
    public void claim(int index, Object owner) throws IommuException {
        lock.lock();
        try {
            WorkQueue wq = wqs[index];
            if (wq.config.dedicated() && !wq.owners.isEmpty() && !wq.owners.contains(owner)) {
                throw new IommuException(Errno.EBUSY, "dedicated work queue " + index + " of " + name + " backs another mdev");
            }
            wq.owners.add(owner);
        } finally {
            lock.unlock();
        }
    }

    public void release(int index, Object owner) {
        lock.lock();
        try {
            wqs[index].owners.remove(owner);
        } finally {
            lock.unlock();
        }
    }

    /** @return {@code true} if some mdev is backed by the queue */
    public boolean claimed(int index) {
        lock.lock();
        try {
            return !wqs[index].owners.isEmpty();
        } finally {
            lock.unlock();
        }
    }

    /**
     * @return {@code true} if {@code owner} is the only mdev backed by the queue
     */
    public boolean ownedBy(int index, Object owner) {
        lock.lock();
        try {
            return wqs[index].owners.size() == 1 && wqs[index].owners.contains(owner);
        } finally {
            lock.unlock();
        }
    }

    /** Unplug: descriptors waiting are discarded, running ones finish, engines stop. Idempotent. */
    public void close() {
        lock.lock();
        try {
            closed = true;
            if (enabled) {
                disableDevice();
            }
        } finally {
            lock.unlock();
        }
    }
}
