package org.iommulab.vfio.internal;

import org.iommulab.api.errno.Errno;
import org.iommulab.api.errno.IommuException;
import org.iommulab.api.memory.FrameAllocator;
import org.iommulab.api.memory.MemoryAccessException;
import org.iommulab.api.memory.PhysicalMemory;
import org.iommulab.api.process.HostProcess;

/**
 * A guest's physical memory as its own CPU sees it: GPA {@code g} is the VMM process's virtual
 * address {@code base + g}. Frames for guest page tables come from a bump allocator at
 * {@code tableBase}. Test scaffolding: what the vmm bundle will do for a guest.
 */
public final class GuestRam implements PhysicalMemory, FrameAllocator {
    private final HostProcess vmm;
    private final long base;
    private final long size;
    private final long tableBase;
    private long next;

    public GuestRam(HostProcess vmm, long base, long size, long tableBase) {
        this.vmm = vmm;
        this.base = base;
        this.size = size;
        this.tableBase = tableBase;
        this.next = tableBase;
    }

    private long va(long gpa) {
        if (gpa < 0 || gpa >= size) {
            throw new MemoryAccessException(MemoryAccessException.Reason.ADDRESS_SIZE, gpa);
        }
        return base + gpa;
    }

    private static MemoryAccessException fault(long gpa, IommuException e) {
        return new MemoryAccessException(MemoryAccessException.Reason.UNBACKED, gpa);
    }

    @Override
    public int addressBits() {
        return 64 - Long.numberOfLeadingZeros(size - 1);
    }

    @Override
    public long read64(long address) {
        try {
            return vmm.read64(va(address));
        } catch (IommuException e) {
            throw fault(address, e);
        }
    }

    @Override
    public void write64(long address, long value) {
        try {
            vmm.write64(va(address), value);
        } catch (IommuException e) {
            throw fault(address, e);
        }
    }

    @Override
    public int read32(long address) {
        return (int) read64(address);
    }

    @Override
    public void write32(long address, int value) {
        long old = read64(address);
        write64(address, (old & 0xffff_ffff_0000_0000L) | (value & 0xffff_ffffL));
    }

    @Override
    public boolean compareAndSet64(long address, long expected, long value) {
        if (read64(address) != expected) {
            return false;
        }
        write64(address, value);
        return true;
    }

    @Override
    public void read(long address, byte[] dst, int offset, int length) {
        try {
            vmm.read(va(address), dst, offset, length);
        } catch (IommuException e) {
            throw fault(address, e);
        }
    }

    @Override
    public void write(long address, byte[] src, int offset, int length) {
        try {
            vmm.write(va(address), src, offset, length);
        } catch (IommuException e) {
            throw fault(address, e);
        }
    }

    @Override
    public void copy(long src, long dst, long length) {
        byte[] b = new byte[(int) length];
        read(src, b, 0, b.length);
        write(dst, b, 0, b.length);
    }

    @Override
    public void fill(long address, long length, byte value) {
        byte[] b = new byte[(int) length];
        java.util.Arrays.fill(b, value);
        write(address, b, 0, b.length);
    }

    @Override
    public boolean isBacked(long address) {
        return address >= 0 && address < size;
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
