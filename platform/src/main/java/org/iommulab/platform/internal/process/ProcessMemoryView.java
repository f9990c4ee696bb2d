package org.iommulab.platform.internal.process;

import java.util.Arrays;

import org.iommulab.api.errno.IommuException;
import org.iommulab.api.memory.MemoryAccessException;
import org.iommulab.api.memory.PhysicalMemory;
import org.iommulab.api.process.HostProcess;

/**
 * A window of a process's address space seen as physical memory from 0 ({@link HostProcess#physicalView}):
 * address {@code g} is the process's virtual address {@code base + g}. Accesses beyond the window
 * are address-size errors, as on a machine with that much memory. Thread safe through the process.
 */
final class ProcessMemoryView implements PhysicalMemory {
    private final HostProcess vmm;
    private final long base;
    private final long size;

    ProcessMemoryView(HostProcess vmm, long base, long size) {
        this.vmm = vmm;
        this.base = base;
        this.size = size;
    }

    private long va(long gpa, long length) {
        if (gpa < 0 || length < 0 || gpa + length > size) {
            throw new MemoryAccessException(MemoryAccessException.Reason.ADDRESS_SIZE, gpa);
        }
        return base + gpa;
    }

    private static MemoryAccessException unbacked(long gpa) {
        return new MemoryAccessException(MemoryAccessException.Reason.UNBACKED, gpa);
    }

    @Override
    public int addressBits() {
        return 64 - Long.numberOfLeadingZeros(size - 1);
    }

    @Override
    public long read64(long address) {
        try {
            return vmm.read64(va(address, 8));
        } catch (IommuException e) {
            throw unbacked(address);
        }
    }

    @Override
    public void write64(long address, long value) {
        try {
            vmm.write64(va(address, 8), value);
        } catch (IommuException e) {
            throw unbacked(address);
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

    /** A locked read-modify-write; the monitor orders it against other CAS through this view. */
    @Override
    public synchronized boolean compareAndSet64(long address, long expected, long value) {
        if ((address & 7) != 0) {
            throw new MemoryAccessException(MemoryAccessException.Reason.MISALIGNED, address);
        }
        if (read64(address) != expected) {
            return false;
        }
        write64(address, value);
        return true;
    }

    @Override
    public void read(long address, byte[] dst, int offset, int length) {
        try {
            vmm.read(va(address, length), dst, offset, length);
        } catch (IommuException e) {
            throw unbacked(address);
        }
    }

    @Override
    public void write(long address, byte[] src, int offset, int length) {
        try {
            vmm.write(va(address, length), src, offset, length);
        } catch (IommuException e) {
            throw unbacked(address);
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
        Arrays.fill(b, value);
        write(address, b, 0, b.length);
    }

    @Override
    public boolean isBacked(long address) {
        return address >= 0 && address < size;
    }
}
