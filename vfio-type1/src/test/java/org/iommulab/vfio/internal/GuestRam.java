package org.iommulab.vfio.internal;

import org.iommulab.api.errno.Errno;
import org.iommulab.api.errno.IommuException;
import org.iommulab.api.memory.FrameAllocator;
import org.iommulab.api.memory.PhysicalMemory;
import org.iommulab.api.process.HostProcess;

/**
 * A guest's physical memory as its own CPU sees it (the VMM process's view of its RAM mapping:
 * GPA {@code g} is {@code base + g}), with a bump allocator for guest page tables at
 * {@code tableBase}. Test scaffolding for what the vmm bundle does for a guest.
 */
public final class GuestRam implements PhysicalMemory, FrameAllocator {
    private final PhysicalMemory view;
    private final long size;
    private final long tableBase;
    private long next;

    public GuestRam(HostProcess vmm, long base, long size, long tableBase) {
        this.view = vmm.physicalView(base, size);
        this.size = size;
        this.tableBase = tableBase;
        this.next = tableBase;
    }

    @Override
    public int addressBits() {
        return view.addressBits();
    }

    @Override
    public long read64(long address) {
        return view.read64(address);
    }

    @Override
    public void write64(long address, long value) {
        view.write64(address, value);
    }

    @Override
    public int read32(long address) {
        return view.read32(address);
    }

    @Override
    public void write32(long address, int value) {
        view.write32(address, value);
    }

    @Override
    public boolean compareAndSet64(long address, long expected, long value) {
        return view.compareAndSet64(address, expected, value);
    }

    @Override
    public void read(long address, byte[] dst, int offset, int length) {
        view.read(address, dst, offset, length);
    }

    @Override
    public void write(long address, byte[] src, int offset, int length) {
        view.write(address, src, offset, length);
    }

    @Override
    public void copy(long src, long dst, long length) {
        view.copy(src, dst, length);
    }

    @Override
    public void fill(long address, long length, byte value) {
        view.fill(address, length, value);
    }

    @Override
    public boolean isBacked(long address) {
        return view.isBacked(address);
    }

    @Override
    public synchronized long allocateFrames(int frames) throws IommuException {
        long at = next;
        if (at + frames * FRAME_SIZE > size) {
            throw new IommuException(Errno.ENOMEM, "guest table area exhausted");
        }
        next += frames * FRAME_SIZE;
        fill(at, frames * FRAME_SIZE, (byte) 0);
        return at;
    }

    @Override
    public void freeFrames(long address, int frames) {
        // A bump allocator: guest tables live as long as the test.
    }

    @Override
    public long allocatedFrames() {
        return (next - tableBase) / FRAME_SIZE;
    }

    @Override
    public long poolBase() {
        return tableBase;
    }

    @Override
    public long poolFrames() {
        return (size - tableBase) / FRAME_SIZE;
    }
}
