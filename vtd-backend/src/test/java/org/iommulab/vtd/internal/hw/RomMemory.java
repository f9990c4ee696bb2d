package org.iommulab.vtd.internal.hw;

import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;

import org.iommulab.api.memory.MemoryAccessException;
import org.iommulab.api.memory.PhysicalMemory;
import org.iommulab.platform.internal.memory.SparseMemory;

/**
 * Sparse memory in which some pages can be made read-only for the remapping hardware, as a page of
 * ROM (or memory behind a bridge that rejects writes) would be: reads succeed, the atomic
 * read-modify-write hardware uses for accessed/dirty flags fails. Ordinary writes (the test acting
 * as software) still go through so tables can be set up.
 */
final class RomMemory implements PhysicalMemory {
    final SparseMemory ram;
    private final Set<Long> romFrames = ConcurrentHashMap.newKeySet();
    /** Called after every 8-byte read with its address: lets a test hold a walker in the middle of a walk. */
    volatile ReadHook readHook;

    interface ReadHook {
        void afterRead(long address);
    }

    RomMemory(SparseMemory ram) {
        this.ram = ram;
    }

    /** Makes the page holding {@code address} reject hardware read-modify-writes. */
    void makeRom(long address) {
        romFrames.add(address >>> 12);
    }

    @Override
    public int addressBits() {
        return ram.addressBits();
    }

    @Override
    public long read64(long address) {
        long v = ram.read64(address);
        ReadHook h = readHook;
        if (h != null) {
            h.afterRead(address);
        }
        return v;
    }

    @Override
    public void write64(long address, long value) {
        ram.write64(address, value);
    }

    @Override
    public int read32(long address) {
        return ram.read32(address);
    }

    @Override
    public void write32(long address, int value) {
        ram.write32(address, value);
    }

    @Override
    public boolean compareAndSet64(long address, long expected, long value) {
        if (romFrames.contains(address >>> 12)) {
            throw new MemoryAccessException(MemoryAccessException.Reason.UNBACKED, address);
        }
        return ram.compareAndSet64(address, expected, value);
    }

    @Override
    public void read(long address, byte[] dst, int offset, int length) {
        ram.read(address, dst, offset, length);
    }

    @Override
    public void write(long address, byte[] src, int offset, int length) {
        ram.write(address, src, offset, length);
    }

    @Override
    public void copy(long src, long dst, long length) {
        ram.copy(src, dst, length);
    }

    @Override
    public void fill(long address, long length, byte value) {
        ram.fill(address, length, value);
    }

    @Override
    public boolean isBacked(long address) {
        return ram.isBacked(address);
    }
}
