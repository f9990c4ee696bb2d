package org.iommulab.platform.internal.process;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.SortedMap;
import java.util.TreeMap;
import java.util.concurrent.CopyOnWriteArrayList;

import org.iommulab.api.dto.ProcessDTO;
import org.iommulab.api.errno.Errno;
import org.iommulab.api.errno.IommuException;
import org.iommulab.api.memory.HostMemory;
import org.iommulab.api.process.HostProcess;
import org.iommulab.api.process.MmuNotifier;
import org.iommulab.platform.internal.util.LongIntMap;

/**
 * A host process: anonymous mappings ({@link Vma}) whose pages get a host frame at first touch,
 * pins by frame, a swap store ({@link SwapSlot}) and locked-memory accounting. One monitor guards
 * the address space; the frame contents are accessed through {@link HostMemory}.
 *
 * <p><b>Notifiers.</b> {@link MmuNotifier}s are called with the monitor released. A page leaves in
 * three steps: it is taken out of the address space under the monitor, the notifiers invalidate it
 * without the monitor, and only then is its frame freed (or, for swap, its contents written back and
 * its frame freed) under the monitor again. A page becomes resident under the monitor and the
 * notifiers hear of it after the monitor is released, before the CPU access that caused it runs (a
 * notifier that mirrors pages checks {@link #residentAddress} when it hears, since the page may have
 * left again meanwhile). A notifier that throws is skipped.
 */
final class HostProcessImpl implements HostProcess {
    /** Where the first mapping goes; mappings grow upward, 2 MiB aligned. */
    static final long MMAP_BASE = 0x10_0000_0000L;
    /** The top of the user address space: 47-bit canonical addresses, as on x86-64 Linux. */
    static final long TASK_SIZE = 1L << 47;
    private static final long ALIGN = 2L << 20;
    /** The largest mapping or unmapping in one call. */
    static final long MAX_MAPPING = 1L << 40;

    private final String name;
    private final HostMemory memory;
    private final TreeMap<Long, Vma> vmas = new TreeMap<>();
    /**
     * The VMA {@link #vmaOf} found last: pinning or touching a range finds the same one page after
     * page. Forgotten whenever VMAs are removed or split.
     */
    private Vma lastVma;
    /** Pin count by frame. */
    private final LongIntMap pins = new LongIntMap();
    /** Pinned frames no longer mapped in the process: freed at their last unpin. */
    private final Map<Long, Boolean> orphans = new HashMap<>();
    /** Swapped-out pages by virtual address (page aligned). */
    private final TreeMap<Long, SwapSlot> swap = new TreeMap<>();
    /** Told of page changes; read without the monitor. */
    private final CopyOnWriteArrayList<MmuNotifier> notifiers = new CopyOnWriteArrayList<>();
    private long nextMmap = MMAP_BASE;
    private long resident;
    private long lockedPages;
    private long lockedLimit;
    private boolean exited;

    HostProcessImpl(String name, HostMemory memory, long lockedLimit) {
        this.name = name;
        this.memory = memory;
        this.lockedLimit = lockedLimit;
    }

    @Override
    public String name() {
        return name;
    }

    @Override
    public synchronized long mmap(long length) throws IommuException {
        live();
        long pages = pagesOf(length);
        long size = pages << 12;
        long start = nextMmap;
        if (size > TASK_SIZE - start) {
            throw new IommuException(Errno.ENOMEM, "no room for " + size + " bytes in the address space of " + name);
        }
        vmas.put(start, new Vma(start, pages));
        nextMmap = (start + size + ALIGN - 1) & -ALIGN;
        return start;
    }

    @Override
    public void munmap(long vaddr, long length) throws IommuException {
        long end;
        boolean touchedAny;
        PageList gone = new PageList();
        synchronized (this) {
            live();
            end = vaddr + (pagesIn("munmap", vaddr, length) << 12);
            List<Vma> touched = overlapping(vaddr, end);
            lastVma = null;
            for (Vma vma : touched) {
                long cutStart = Math.max(vma.start, vaddr);
                long cutEnd = Math.min(vma.end(), end);
                vmas.remove(vma.start);
                if (vma.start < cutStart) {
                    vmas.put(vma.start, slice(vma, vma.start, cutStart));
                }
                if (cutEnd < vma.end()) {
                    vmas.put(cutEnd, slice(vma, cutEnd, vma.end()));
                }
                vma.forEachFrame((cutStart - vma.start) >>> 12, (cutEnd - vma.start) >>> 12,
                        (index, frame) -> gone.add(vma.start + (index << 12), frame));
            }
            SortedMap<Long, SwapSlot> swapped = swap.subMap(vaddr, end);
            for (Map.Entry<Long, SwapSlot> e : swapped.entrySet()) {
                if (!e.getValue().writtenBack()) {
                    gone.add(e.getKey(), e.getValue().frame); // still being written back: ours to free now
                }
            }
            swapped.clear();
            touchedAny = !touched.isEmpty();
        }
        if (touchedAny) {
            tellInvalidate(vaddr, end - vaddr);
        }
        if (!gone.isEmpty()) {
            synchronized (this) {
                for (int i = 0; i < gone.size(); i++) {
                    release(gone.frame(i));
                }
            }
        }
    }

    /** @return the mappings overlapping {@code [start, end)}, ascending */
    private List<Vma> overlapping(long start, long end) {
        List<Vma> touched = new ArrayList<>();
        Map.Entry<Long, Vma> first = vmas.floorEntry(start);
        if (first != null && first.getValue().end() > start) {
            touched.add(first.getValue());
        }
        touched.addAll(vmas.subMap(start, false, end, false).values());
        return touched;
    }

    @Override
    public long swapOut(long vaddr, long length) throws IommuException {
        PageList out = new PageList();
        List<SwapSlot> slots = new ArrayList<>();
        synchronized (this) {
            live();
            long end = vaddr + (pagesIn("swapOut", vaddr, length) << 12);
            for (Vma vma : overlapping(vaddr, end)) {
                long from = (Math.max(vma.start, vaddr) - vma.start) >>> 12;
                long to = (Math.min(vma.end(), end) - vma.start) >>> 12;
                vma.forEachFrame(from, to, (index, frame) -> {
                    if (!pins.containsKey(frame)) {
                        long page = vma.start + (index << 12);
                        vma.clearFrame(index);
                        SwapSlot slot = new SwapSlot(frame);
                        swap.put(page, slot);
                        slots.add(slot);
                        out.add(page, frame);
                    }
                });
            }
        }
        if (out.isEmpty()) {
            return 0;
        }
        long first = out.vaddr(0);
        tellInvalidate(first, out.vaddr(out.size() - 1) + PAGE_SIZE - first);
        // Write back what no fault took back meanwhile, then free the frames.
        long written = 0;
        synchronized (this) {
            for (int i = 0; i < out.size(); i++) {
                SwapSlot slot = slots.get(i);
                if (swap.get(out.vaddr(i)) != slot || slot.writtenBack()) {
                    continue; // faulted back in, unmapped or the process exited: not ours any more
                }
                byte[] contents = new byte[(int) PAGE_SIZE];
                memory.read(slot.frame, contents, 0, contents.length);
                slot.contents = contents;
                freeFrame(slot.frame);
                slot.frame = -1;
                written++;
            }
        }
        return written;
    }

    @Override
    public synchronized long swappedPages() {
        return swap.size();
    }

    @Override
    public void addMmuNotifier(MmuNotifier notifier) {
        Objects.requireNonNull(notifier, "notifier");
        notifiers.addIfAbsent(notifier);
    }

    @Override
    public void removeMmuNotifier(MmuNotifier notifier) {
        notifiers.remove(notifier);
    }

    /** Tells the notifiers of pages made resident; called without the monitor. */
    private void tellResident(PageList made) {
        for (int i = 0; i < made.size(); i++) {
            for (MmuNotifier n : notifiers) {
                try {
                    n.pageResident(this, made.vaddr(i), made.frame(i));
                } catch (RuntimeException e) {
                    // a broken notifier must not stop the address space
                }
            }
        }
    }

    /** Tells the notifiers a range leaves; called without the monitor, before its frames are freed. */
    private void tellInvalidate(long vaddr, long length) {
        for (MmuNotifier n : notifiers) {
            try {
                n.invalidateRange(this, vaddr, length);
            } catch (RuntimeException e) {
                // a broken notifier must not stop the address space
            }
        }
    }

    /** Exit, first step: the notifiers release the address space; called without the monitor. */
    void tellRelease() {
        for (MmuNotifier n : notifiers) {
            try {
                n.release(this);
            } catch (RuntimeException e) {
                // a broken notifier must not stop the exit
            }
        }
    }

    private static Vma slice(Vma from, long start, long end) {
        Vma part = new Vma(start, (end - start) >>> 12);
        long base = (start - from.start) >>> 12;
        from.forEachFrame(base, base + part.pages, (index, frame) -> part.setFrame(index - base, frame));
        return part;
    }

    /** Drops the process's reference to a frame: freed now, or at its last unpin. */
    private void release(long frame) {
        if (pins.containsKey(frame)) {
            orphans.put(frame, Boolean.TRUE);
            return;
        }
        freeFrame(frame);
    }

    private void freeFrame(long frame) {
        try {
            memory.freeFrames(frame, 1);
            resident--;
        } catch (IommuException e) {
            throw new IllegalStateException("frame 0x" + Long.toHexString(frame) + " of " + name + " was not allocated", e);
        }
    }

    @Override
    public long pin(long vaddr) throws IommuException {
        PageList made = new PageList();
        long frame;
        synchronized (this) {
            live();
            frame = faultIn(vaddr, made);
            pins.put(frame, pins.get(frame, 0) + 1);
        }
        tellResident(made);
        return frame;
    }

    @Override
    public synchronized void unpin(long hostPhysical) throws IommuException {
        int count = pins.get(hostPhysical, 0);
        if (count == 0) {
            throw new IommuException(Errno.ENOENT, String.format("page 0x%x is not pinned by %s", hostPhysical, name));
        }
        if (count > 1) {
            pins.put(hostPhysical, count - 1);
        } else {
            pins.remove(hostPhysical, 0);
            if (!orphans.isEmpty() && orphans.remove(hostPhysical) != null) {
                freeFrame(hostPhysical);
            }
        }
    }

    @Override
    public synchronized void accountLocked(long pages) throws IommuException {
        if (pages < 0 && -pages > lockedPages) {
            throw new IommuException(Errno.EINVAL, "releasing " + -pages + " locked pages, only " + lockedPages + " charged");
        }
        if (pages > 0 && lockedLimit != Long.MAX_VALUE) {
            long limitPages = lockedLimit >>> 12;
            if (pages > limitPages || lockedPages > limitPages - pages) {
                throw new IommuException(Errno.ENOMEM, String.format(
                        "locking %d more pages exceeds the locked-memory limit of %s (%d bytes, %d pages locked)",
                        pages, name, lockedLimit, lockedPages));
            }
        }
        lockedPages += pages;
    }

    @Override
    public synchronized long lockedPages() {
        return lockedPages;
    }

    @Override
    public synchronized long lockedLimit() {
        return lockedLimit;
    }

    @Override
    public synchronized void setLockedLimit(long bytes) throws IommuException {
        if (bytes < 0) {
            throw new IommuException(Errno.EINVAL, "a locked-memory limit cannot be negative");
        }
        lockedLimit = bytes;
    }

    // A CPU access holds the monitor while it touches the frames: a concurrent munmap, swap-out or
    // exit cannot free (and the pool hand out again) a frame the access is still touching. When
    // pages must be faulted in first, the notifiers hear of them before the access runs.

    @Override
    public long read64(long vaddr) throws IommuException {
        long offset = vaddr & (PAGE_SIZE - 1);
        if (offset <= PAGE_SIZE - 8) {
            synchronized (this) {
                long frame = residentAddress(vaddr);
                if (frame >= 0) {
                    return memory.read64(frame + offset);
                }
            }
            long[] value = new long[1];
            access(vaddr, 8, frames -> value[0] = memory.read64(frames[0] + offset));
            return value[0];
        }
        byte[] b = new byte[8];
        read(vaddr, b, 0, 8);
        long v = 0;
        for (int i = 7; i >= 0; i--) {
            v = (v << 8) | (b[i] & 0xff);
        }
        return v;
    }

    @Override
    public void write64(long vaddr, long value) throws IommuException {
        long offset = vaddr & (PAGE_SIZE - 1);
        if (offset <= PAGE_SIZE - 8) {
            synchronized (this) {
                long frame = residentAddress(vaddr);
                if (frame >= 0) {
                    memory.write64(frame + offset, value);
                    return;
                }
            }
            access(vaddr, 8, frames -> memory.write64(frames[0] + offset, value));
            return;
        }
        byte[] b = new byte[8];
        for (int i = 0; i < 8; i++) {
            b[i] = (byte) (value >>> (8 * i));
        }
        write(vaddr, b, 0, 8);
    }

    @Override
    public void read(long vaddr, byte[] dst, int offset, int length) throws IommuException {
        access(vaddr, length, frames -> perPage(frames, vaddr, length,
                (pa, done, chunk) -> memory.read(pa, dst, offset + done, chunk)));
    }

    @Override
    public void write(long vaddr, byte[] src, int offset, int length) throws IommuException {
        access(vaddr, length, frames -> perPage(frames, vaddr, length,
                (pa, done, chunk) -> memory.write(pa, src, offset + done, chunk)));
    }

    /** What a CPU access does with the frames of its pages, under the monitor. */
    private interface FrameAccess {
        void run(long[] frames);
    }

    /** One piece of a CPU copy that stays within a page. */
    private interface PageCopy {
        void copy(long physical, int done, int length);
    }

    /**
     * Runs a CPU access over the frames of {@code [vaddr, vaddr + length)}: if every page is
     * resident, at once; else the pages are faulted in, the notifiers told, and the access runs
     * (faulting in again, should a page have left in between).
     */
    private void access(long vaddr, int length, FrameAccess op) throws IommuException {
        PageList made = new PageList();
        try {
            synchronized (this) {
                live();
                long[] frames = framesOf(vaddr, length, made);
                if (made.isEmpty()) {
                    op.run(frames);
                    return;
                }
            }
        } finally {
            tellResident(made);
        }
        PageList late = new PageList();
        try {
            synchronized (this) {
                live();
                op.run(framesOf(vaddr, length, late));
            }
        } finally {
            tellResident(late);
        }
    }

    /** Splits a CPU access at page boundaries. */
    private static void perPage(long[] frames, long vaddr, int length, PageCopy copy) {
        int done = 0;
        for (long frame : frames) {
            long offsetInPage = (vaddr + done) & (PAGE_SIZE - 1);
            int chunk = (int) Math.min(length - done, PAGE_SIZE - offsetInPage);
            copy.copy(frame + offsetInPage, done, chunk);
            done += chunk;
        }
    }

    /** Checks every page of the range is mapped, then faults them in: the frames, in order. */
    private long[] framesOf(long vaddr, int length, PageList made) throws IommuException {
        if (length < 0) {
            throw new IommuException(Errno.EINVAL, "negative length");
        }
        if (length == 0) {
            return new long[0];
        }
        long first = vaddr & -PAGE_SIZE;
        long last = (vaddr + length - 1) & -PAGE_SIZE;
        if (last < first) {
            throw new IommuException(Errno.EFAULT, String.format("0x%x+%d wraps", vaddr, length));
        }
        for (long va = first; va - first <= last - first; va += PAGE_SIZE) {
            vmaOf(va);
        }
        long[] frames = new long[(int) ((last - first) >>> 12) + 1];
        for (int i = 0; i < frames.length; i++) {
            frames[i] = faultIn(first + ((long) i << 12), made);
        }
        return frames;
    }

    private Vma vmaOf(long vaddr) throws IommuException {
        Vma last = lastVma;
        if (last != null && last.contains(vaddr)) {
            return last;
        }
        Map.Entry<Long, Vma> e = vmas.floorEntry(vaddr);
        if (e == null || !e.getValue().contains(vaddr)) {
            throw new IommuException(Errno.EFAULT, String.format("0x%x is not mapped in %s", vaddr, name));
        }
        lastVma = e.getValue();
        return lastVma;
    }

    /**
     * The page fault handler for anonymous memory: the page's frame, backing it first if needed
     * with a zeroed frame, its frame back from the swap cache, or a frame filled from swap.
     *
     * @param made receives the page if it became resident
     */
    private long faultIn(long vaddr, PageList made) throws IommuException {
        Vma vma = vmaOf(vaddr);
        long index = (vaddr - vma.start) >>> 12;
        long frame = vma.frame(index);
        if (frame >= 0) {
            return frame;
        }
        long page = vaddr & -PAGE_SIZE;
        SwapSlot slot = swap.isEmpty() ? null : swap.get(page);
        if (slot != null && !slot.writtenBack()) {
            frame = slot.frame; // still being written back: a swap-cache hit
        } else {
            frame = memory.allocateFrames(1);
            resident++;
            if (slot != null) {
                memory.write(frame, slot.contents, 0, slot.contents.length);
            }
        }
        if (slot != null) {
            swap.remove(page);
        }
        vma.setFrame(index, frame);
        made.add(page, frame);
        return frame;
    }

    @Override
    public long faultIn(long vaddr, boolean write) throws IommuException {
        PageList made = new PageList();
        long frame;
        synchronized (this) {
            live();
            frame = faultIn(vaddr, made);
        }
        tellResident(made);
        return frame;
    }

    @Override
    public synchronized long[] residentMappings() {
        PageList pages = new PageList();
        for (Vma vma : vmas.values()) {
            vma.forEachFrame(0, vma.pages, (index, frame) -> pages.add(vma.start + (index << 12), frame));
        }
        return pages.toArray();
    }

    @Override
    public synchronized long residentAddress(long vaddr) {
        Vma vma = lastVma;
        if (vma == null || !vma.contains(vaddr)) {
            Map.Entry<Long, Vma> e = vmas.floorEntry(vaddr);
            if (e == null || !e.getValue().contains(vaddr)) {
                return -1;
            }
            vma = e.getValue();
        }
        return vma.frame((vaddr - vma.start) >>> 12);
    }

    @Override
    public org.iommulab.api.memory.PhysicalMemory physicalView(long vaddr, long size) {
        return new ProcessMemoryView(this, vaddr, size);
    }

    @Override
    public synchronized long pinnedPages() {
        return pins.size();
    }

    @Override
    public synchronized ProcessDTO toDTO() {
        ProcessDTO dto = new ProcessDTO();
        dto.name = name;
        dto.mappedBytes = vmas.values().stream().mapToLong(v -> v.pages << 12).sum();
        dto.residentPages = resident;
        dto.pinnedPages = pins.size();
        dto.lockedPages = lockedPages;
        dto.lockedLimit = lockedLimit;
        return dto;
    }

    /**
     * Exit, second step (after {@link #tellRelease}): every mapping and swapped page goes; pinned
     * frames wait for their last unpin.
     */
    synchronized void exit() {
        for (Vma vma : vmas.values()) {
            vma.forEachFrame(0, vma.pages, (index, frame) -> release(frame));
        }
        for (SwapSlot slot : swap.values()) {
            if (!slot.writtenBack()) {
                release(slot.frame);
                slot.frame = -1;
            }
        }
        swap.clear();
        vmas.clear();
        lastVma = null;
        exited = true;
    }

    private void live() throws IommuException {
        if (exited) {
            throw new IommuException(Errno.ENODEV, "process " + name + " has exited");
        }
    }

    /** @return the pages of a range operation's length, after checking the range */
    private static long pagesIn(String op, long vaddr, long length) throws IommuException {
        long pages = pagesOf(length);
        long last = vaddr + (pages << 12) - 1;
        // Neither wrapping nor crossing 2^63: the range must be ordered both ways (the maps are signed).
        if ((vaddr & (PAGE_SIZE - 1)) != 0 || last < vaddr || Long.compareUnsigned(last, vaddr) < 0) {
            throw new IommuException(Errno.EINVAL, String.format("%s 0x%x+0x%x: misaligned or wraps", op, vaddr, length));
        }
        return pages;
    }

    private static long pagesOf(long length) throws IommuException {
        if (length < 1 || length > MAX_MAPPING) {
            throw new IommuException(Errno.EINVAL, "length " + length + " must be 1 byte to 1 TiB");
        }
        return (length + PAGE_SIZE - 1) >>> 12;
    }

    @Override
    public String toString() {
        return "process " + name;
    }
}
