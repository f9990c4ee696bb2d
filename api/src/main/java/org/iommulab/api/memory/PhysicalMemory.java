package org.iommulab.api.memory;

import org.osgi.annotation.versioning.ProviderType;

/**
 * A physical address space as a device or an IOMMU sees it: host physical memory, or a guest's
 * physical memory as seen by a virtual IOMMU. All multi-byte values are little endian, as on x86 and
 * on Arm in the configurations the models use.
 *
 * <p><b>Backing.</b> Memory is sparse: a page is backed once it is written or allocated as a frame;
 * reading a page that is not backed, or any access beyond {@link #addressBits()}, throws
 * {@link MemoryAccessException}. Nothing else is thrown for an address.
 *
 * <p><b>Threads.</b> Implementations are thread safe. Naturally aligned 8-byte accesses are single-copy
 * atomic; {@link #write64} has release and {@link #read64} acquire semantics for aligned addresses, so
 * a table entry written by a driver thread is seen whole by a walker thread that reads it later.
 * Unaligned and bulk accesses are not atomic, as on hardware.
 *
 * <p><b>Performance.</b> Every access is on a hot path: implementations allocate nothing per call.
 *
 * <p>Addresses and lengths are in bytes.
 */
@ProviderType
public interface PhysicalMemory {

    /** @return the physical address width in bits: valid addresses are {@code [0, 2^addressBits)} */
    int addressBits();

    /**
     * Reads 8 bytes.
     *
     * @param address physical address; need not be aligned
     * @return the little-endian value
     * @throws MemoryAccessException if a byte is unbacked or beyond the address width
     */
    long read64(long address);

    /**
     * Writes 8 bytes, backing the pages touched.
     *
     * @param address physical address; need not be aligned
     * @param value the value, stored little endian
     * @throws MemoryAccessException if the address is beyond the address width
     */
    void write64(long address, long value);

    /**
     * Reads 4 bytes.
     *
     * @param address physical address
     * @return the little-endian value
     * @throws MemoryAccessException if a byte is unbacked or beyond the address width
     */
    int read32(long address);

    /**
     * Writes 4 bytes, backing the pages touched.
     *
     * @param address physical address
     * @param value the value, stored little endian
     * @throws MemoryAccessException if the address is beyond the address width
     */
    void write32(long address, int value);

    /**
     * Atomically replaces an aligned 8-byte value if it equals {@code expected}: the
     * read-modify-write that hardware uses to set accessed and dirty bits.
     *
     * @param address physical address, 8-byte aligned
     * @param expected the value that must be present
     * @param value the new value
     * @return {@code true} if the value was replaced
     * @throws MemoryAccessException if unaligned, unbacked or beyond the address width
     */
    boolean compareAndSet64(long address, long expected, long value);

    /**
     * Copies bytes out of physical memory.
     *
     * @param address physical address of the first byte
     * @param dst destination array, not {@code null}
     * @param offset first index written in {@code dst}
     * @param length number of bytes
     * @throws MemoryAccessException if a byte is unbacked or beyond the address width; bytes before
     *     the failing page may already have been copied
     */
    void read(long address, byte[] dst, int offset, int length);

    /**
     * Copies bytes into physical memory, backing the pages touched.
     *
     * @param address physical address of the first byte
     * @param src source array, not {@code null}
     * @param offset first index read in {@code src}
     * @param length number of bytes
     * @throws MemoryAccessException if a byte is beyond the address width (nothing is written then)
     */
    void write(long address, byte[] src, int offset, int length);

    /**
     * Copies {@code length} bytes from one physical range to another, page by page. Overlapping
     * ranges are copied as {@code memmove} does.
     *
     * @param src physical address of the source
     * @param dst physical address of the destination
     * @param length number of bytes, at least 0
     * @throws MemoryAccessException if a source byte is unbacked or a byte is beyond the address width
     */
    void copy(long src, long dst, long length);

    /**
     * Sets {@code length} bytes to {@code value}, backing the pages touched.
     *
     * @param address physical address of the first byte
     * @param length number of bytes, at least 0
     * @param value the byte to store
     * @throws MemoryAccessException if a byte is beyond the address width
     */
    void fill(long address, long length, byte value);

    /**
     * @param address any value
     * @return {@code true} if the page holding {@code address} is backed (reads will succeed)
     */
    boolean isBacked(long address);
}
