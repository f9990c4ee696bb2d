package org.iommulab.testkit;

import org.iommulab.api.errno.Errno;
import org.iommulab.api.errno.IommuException;
import org.iommulab.api.memory.FrameAllocator;
import org.iommulab.api.memory.MemoryAccessException;
import org.iommulab.api.memory.PhysicalMemory;

/**
 * A small guest's RAM for the nesting checks: guest-physical addresses {@code [base, base + size)}
 * backed by contiguous host frames, which a second-stage domain maps at the same GPAs. It is
 * memory (tables the guest builds are written through it) and a bump allocator of guest frames.
 *
 * <p>Not thread safe for allocation; reads and writes go straight to host memory.
 */
public final class GuestMemory implements PhysicalMemory, FrameAllocator {
    private final PhysicalMemory host;
    private final long base;
    private final long hostBase;
    private final long size;
    private long next;

    /**
     * @param host host memory
     * @param base the first GPA, frame aligned
     * @param hostBase the host frames behind it, contiguous
     * @param size bytes, a multiple of 4 KiB
     */
    public GuestMemory(PhysicalMemory host, long base, long hostBase, long size) {
        this.host = host;
        this.base = base;
        this.hostBase = hostBase;
        this.size = size;
        this.next = base;
    }

    /** @return the first GPA */
    public long base() {
        return base;
    }

    /** @return the host address behind the first GPA */
    public long hostBase() {
        return hostBase;
    }

    /** @return the RAM size in bytes */
    public long size() {
        return size;
    }

    /**
     * @param gpa a guest-physical address in the RAM
     * @return the host address behind it
     */
    public long toHost(long gpa) {
        if (gpa < base || gpa - base >= size) {
            throw new MemoryAccessException(MemoryAccessException.Reason.UNBACKED, gpa); // outside the guest's RAM
        }
        return hostBase + (gpa - base);
    }

    @Override
    public int addressBits() {
        return 64 - Long.numberOfLeadingZeros(base + size - 1);
    }

    @Override
    public long read64(long address) {
        return host.read64(toHost(address));
    }

    @Override
    public void write64(long address, long value) {
        host.write64(toHost(address), value);
    }

    @Override
    public int read32(long address) {
        return host.read32(toHost(address));
    }

    @Override
    public void write32(long address, int value) {
        host.write32(toHost(address), value);
    }

    @Override
    public boolean compareAndSet64(long address, long expected, long value) {
        return host.compareAndSet64(toHost(address), expected, value);
    }

    @Override
    public void read(long address, byte[] dst, int offset, int length) {
        toHost(address + Math.max(length, 1) - 1);
        host.read(toHost(address), dst, offset, length);
    }

    @Override
    public void write(long address, byte[] src, int offset, int length) {
        toHost(address + Math.max(length, 1) - 1);
        host.write(toHost(address), src, offset, length);
    }

    @Override
    public void copy(long src, long dst, long length) {
        toHost(src + Math.max(length, 1) - 1);
        toHost(dst + Math.max(length, 1) - 1);
        host.copy(toHost(src), toHost(dst), length);
    }

    @Override
    public void fill(long address, long length, byte value) {
        toHost(address + Math.max(length, 1) - 1);
        host.fill(toHost(address), length, value);
    }

    @Override
    public boolean isBacked(long address) {
        return address >= base && address - base < size && host.isBacked(toHost(address));
    }

    @Override
    public long allocateFrames(int frames) throws IommuException {
        long bytes = (long) frames * FRAME_SIZE;
        if (frames < 1 || next + bytes > base + size) {
            throw new IommuException(Errno.ENOMEM, "the guest's RAM is full");
        }
        long gpa = next;
        next += bytes;
        fill(gpa, bytes, (byte) 0);
        return gpa;
    }

    @Override
    public void freeFrames(long address, int frames) {
        // a bump allocator: frames come back with the whole guest
    }

    @Override
    public long allocatedFrames() {
        return (next - base) / FRAME_SIZE;
    }

    @Override
    public long poolBase() {
        return base;
    }

    @Override
    public long poolFrames() {
        return size / FRAME_SIZE;
    }
}
