package org.iommulab.riscv.internal.hw;

import org.iommulab.api.memory.MemoryAccessException;
import org.iommulab.api.memory.PhysicalMemory;

/**
 * Physical memory as the IOMMU's implicit accesses see it: "The physical address space addressable
 * by the IOMMU ranges from 0 to 2^capabilities.PAS - 1" (spec §5.3), so an access at or beyond
 * 2^PAS fails like memory that is not there (an access fault for the table walk, a load access
 * fault for DDT and PDT entries). Everything else is the underlying memory's.
 *
 * <p>Thread safe as the memory is; allocates nothing (the exception for an address beyond PAS is
 * one shared instance: callers only catch it).
 */
final class PasMemory implements PhysicalMemory {
    private static final MemoryAccessException BEYOND_PAS =
            new MemoryAccessException(MemoryAccessException.Reason.ADDRESS_SIZE, -1);

    private final PhysicalMemory memory;
    private final int pas;

    PasMemory(PhysicalMemory memory, int pas) {
        this.memory = memory;
        this.pas = pas;
    }

    private void check(long address, long length) {
        if (address >>> pas != 0 || (address + length - 1) >>> pas != 0) {
            throw BEYOND_PAS;
        }
    }

    @Override
    public int addressBits() {
        return Math.min(pas, memory.addressBits());
    }

    @Override
    public long read64(long address) {
        check(address, 8);
        return memory.read64(address);
    }

    @Override
    public void write64(long address, long value) {
        check(address, 8);
        memory.write64(address, value);
    }

    @Override
    public int read32(long address) {
        check(address, 4);
        return memory.read32(address);
    }

    @Override
    public void write32(long address, int value) {
        check(address, 4);
        memory.write32(address, value);
    }

    @Override
    public boolean compareAndSet64(long address, long expected, long value) {
        check(address, 8);
        return memory.compareAndSet64(address, expected, value);
    }

    @Override
    public void read(long address, byte[] dst, int offset, int length) {
        check(address, Math.max(1, length));
        memory.read(address, dst, offset, length);
    }

    @Override
    public void write(long address, byte[] src, int offset, int length) {
        check(address, Math.max(1, length));
        memory.write(address, src, offset, length);
    }

    @Override
    public void copy(long src, long dst, long length) {
        check(src, Math.max(1, length));
        check(dst, Math.max(1, length));
        memory.copy(src, dst, length);
    }

    @Override
    public void fill(long address, long length, byte value) {
        check(address, Math.max(1, length));
        memory.fill(address, length, value);
    }

    @Override
    public boolean isBacked(long address) {
        return address >>> pas == 0 && memory.isBacked(address);
    }
}
