package org.iommulab.platform.internal.process;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

import org.iommulab.api.dto.ProcessDTO;
import org.iommulab.api.errno.Errno;
import org.iommulab.api.errno.IommuException;
import org.iommulab.api.memory.HostMemory;
import org.iommulab.api.process.HostProcess;
import org.iommulab.platform.internal.util.LongIntMap;

/**
 * A host process: anonymous mappings ({@link Vma}) whose pages get a host frame at first touch,
 * pins by frame, and locked-memory accounting. One monitor guards the address space; the frame
 * contents are accessed through {@link HostMemory} outside any structure change.
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
    public synchronized void munmap(long vaddr, long length) throws IommuException {
        live();
        long pages = pagesOf(length);
        if ((vaddr & (PAGE_SIZE - 1)) != 0 || vaddr + (pages << 12) - 1 < vaddr) {
            throw new IommuException(Errno.EINVAL, String.format("munmap 0x%x+0x%x: misaligned or wraps", vaddr, length));
        }
        long end = vaddr + (pages << 12);
        List<Vma> touched = new ArrayList<>();
        Map.Entry<Long, Vma> first = vmas.floorEntry(vaddr);
        if (first != null && first.getValue().end() > vaddr) {
            touched.add(first.getValue());
        }
        touched.addAll(vmas.subMap(vaddr, false, end, false).values());
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
            vma.forEachFrame((cutStart - vma.start) >>> 12, (cutEnd - vma.start) >>> 12, this::release);
        }
    }

    private static Vma slice(Vma from, long start, long end) {
        Vma part = new Vma(start, (end - start) >>> 12);
        long base = (start - from.start) >>> 12;
        from.forEachFrame(base, base + part.pages, (index, frame) -> part.setFrame(index - base, frame));
        return part;
    }

    /** Drops the process's reference to a frame: freed now, or at its last unpin. */
    private void release(long index, long frame) {
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
    public synchronized long pin(long vaddr) throws IommuException {
        live();
        long frame = faultIn(vaddr);
        pins.put(frame, pins.get(frame, 0) + 1);
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

    // CPU accesses hold the monitor for the whole access: a concurrent munmap or exit cannot free
    // (and the pool hand out again) a frame this access is still touching.

    @Override
    public synchronized long read64(long vaddr) throws IommuException {
        if ((vaddr & (PAGE_SIZE - 1)) <= PAGE_SIZE - 8) {
            return memory.read64(frameOf(vaddr) + (vaddr & (PAGE_SIZE - 1)));
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
    public synchronized void write64(long vaddr, long value) throws IommuException {
        if ((vaddr & (PAGE_SIZE - 1)) <= PAGE_SIZE - 8) {
            memory.write64(frameOf(vaddr) + (vaddr & (PAGE_SIZE - 1)), value);
            return;
        }
        byte[] b = new byte[8];
        for (int i = 0; i < 8; i++) {
            b[i] = (byte) (value >>> (8 * i));
        }
        write(vaddr, b, 0, 8);
    }

    @Override
    public synchronized void read(long vaddr, byte[] dst, int offset, int length) throws IommuException {
        perPage(vaddr, length, (pa, done, chunk) -> memory.read(pa, dst, offset + done, chunk));
    }

    @Override
    public synchronized void write(long vaddr, byte[] src, int offset, int length) throws IommuException {
        perPage(vaddr, length, (pa, done, chunk) -> memory.write(pa, src, offset + done, chunk));
    }

    /** One piece of a CPU copy that stays within a page. */
    private interface PageCopy {
        void copy(long physical, int done, int length);
    }

    /** Splits a CPU access at page boundaries, after faulting every page in. */
    private void perPage(long vaddr, int length, PageCopy copy) throws IommuException {
        long[] frames = framesOf(vaddr, length);
        int done = 0;
        for (long frame : frames) {
            long offsetInPage = (vaddr + done) & (PAGE_SIZE - 1);
            int chunk = (int) Math.min(length - done, PAGE_SIZE - offsetInPage);
            copy.copy(frame + offsetInPage, done, chunk);
            done += chunk;
        }
    }

    private synchronized long frameOf(long vaddr) throws IommuException {
        live();
        return faultIn(vaddr);
    }

    /** Checks every page of the range is mapped, then faults them in: the frames, in order. */
    private synchronized long[] framesOf(long vaddr, int length) throws IommuException {
        live();
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
            frames[i] = faultIn(first + ((long) i << 12));
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

    /** The page fault handler for anonymous memory: a zeroed frame on first touch. */
    private long faultIn(long vaddr) throws IommuException {
        Vma vma = vmaOf(vaddr);
        long index = (vaddr - vma.start) >>> 12;
        long frame = vma.frame(index);
        if (frame < 0) {
            frame = memory.allocateFrames(1);
            vma.setFrame(index, frame);
            resident++;
        }
        return frame;
    }

    @Override
    public synchronized long residentAddress(long vaddr) {
        Map.Entry<Long, Vma> e = vmas.floorEntry(vaddr);
        if (e == null || !e.getValue().contains(vaddr)) {
            return -1;
        }
        return e.getValue().frame((vaddr - e.getValue().start) >>> 12);
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

    /** Exit: every mapping goes; pinned frames wait for their last unpin. */
    synchronized void exit() {
        for (Vma vma : vmas.values()) {
            vma.forEachFrame(0, vma.pages, this::release);
        }
        vmas.clear();
        lastVma = null;
        exited = true;
    }

    private void live() throws IommuException {
        if (exited) {
            throw new IommuException(Errno.ENODEV, "process " + name + " has exited");
        }
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
