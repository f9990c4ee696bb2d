package org.iommulab.platform.internal.memory;

import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.nio.ByteOrder;
import java.util.Arrays;
import java.util.concurrent.atomic.AtomicLong;

import org.iommulab.api.memory.MemoryAccessException;
import org.iommulab.api.memory.MemoryAccessException.Reason;
import org.iommulab.api.memory.PhysicalMemory;

/**
 * A sparse physical address space: 4 KiB pages held in a three-level radix tree indexed by page
 * frame number (top, middle and leaf nodes of 2^13 slots), so only touched pages and the nodes above
 * them cost memory. Nodes and pages are published with compare-and-set, so concurrent first writes
 * to a page agree on one page.
 *
 * <p>Aligned 8-byte accesses go through a little-endian {@link VarHandle} view with acquire/release
 * semantics and compare-and-set; nothing on the access path allocates.
 *
 * <p>Thread safe. Usable outside OSGi (unit tests of other modules).
 */
public final class SparseMemory implements PhysicalMemory {
    /** log2 of the page size. */
    public static final int PAGE_SHIFT = 12;
    /** Page size in bytes. */
    public static final int PAGE_SIZE = 1 << PAGE_SHIFT;
    private static final int PAGE_MASK = PAGE_SIZE - 1;

    private static final int NODE_BITS = 13;
    private static final int NODE_MASK = (1 << NODE_BITS) - 1;
    private static final int TOP_SHIFT = 2 * NODE_BITS;

    private static final VarHandle LONG = MethodHandles.byteArrayViewVarHandle(long[].class, ByteOrder.LITTLE_ENDIAN);
    private static final VarHandle INT = MethodHandles.byteArrayViewVarHandle(int[].class, ByteOrder.LITTLE_ENDIAN);
    private static final VarHandle TOP = MethodHandles.arrayElementVarHandle(byte[][][][].class);
    private static final VarHandle MID = MethodHandles.arrayElementVarHandle(byte[][][].class);
    private static final VarHandle LEAF = MethodHandles.arrayElementVarHandle(byte[][].class);

    /**
     * Whether the JVM lays out byte arrays so that 8-byte aligned offsets are aligned in memory
     * (true on 64-bit HotSpot with default headers). Without it atomic view modes throw, and we
     * fall back to locking the page for compare-and-set.
     */
    private static final boolean ALIGNED_VIEW = probeAlignedView();

    private final int addressBits;
    private final byte[][][][] top;
    private final AtomicLong backedPages = new AtomicLong();

    /**
     * @param addressBits physical address width, 32 to 63
     */
    public SparseMemory(int addressBits) {
        if (addressBits < 32 || addressBits > 63) {
            throw new IllegalArgumentException("address width must be 32 to 63 bits, not " + addressBits);
        }
        this.addressBits = addressBits;
        int frameBits = addressBits - PAGE_SHIFT;
        this.top = new byte[1 << Math.max(1, frameBits - TOP_SHIFT)][][][];
    }

    private static boolean probeAlignedView() {
        try {
            byte[] probe = new byte[16];
            LONG.setRelease(probe, 0, 1L);
            return LONG.compareAndSet(probe, 8, 0L, 1L);
        } catch (IllegalStateException e) {
            return false;
        }
    }

    @Override
    public int addressBits() {
        return addressBits;
    }

    /** @return the number of backed pages */
    public long backedPages() {
        return backedPages.get();
    }

    // ---- page lookup -------------------------------------------------------------------------

    private void checkRange(long address) {
        if (address >>> addressBits != 0) {
            throw new MemoryAccessException(Reason.ADDRESS_SIZE, address);
        }
    }

    private void checkRange(long address, long length) {
        checkRange(address);
        if (length > 0) {
            long last = address + length - 1;
            if (last < address || last >>> addressBits != 0) {
                throw new MemoryAccessException(Reason.ADDRESS_SIZE, last < address ? address : last);
            }
        }
    }

    private byte[] pageOrNull(long address) {
        long frame = address >>> PAGE_SHIFT;
        byte[][][] mid = (byte[][][]) TOP.getAcquire(top, (int) (frame >>> TOP_SHIFT));
        if (mid == null) {
            return null;
        }
        byte[][] leaf = (byte[][]) MID.getAcquire(mid, (int) (frame >>> NODE_BITS) & NODE_MASK);
        if (leaf == null) {
            return null;
        }
        return (byte[]) LEAF.getAcquire(leaf, (int) frame & NODE_MASK);
    }

    private byte[] readablePage(long address) {
        checkRange(address);
        byte[] page = pageOrNull(address);
        if (page == null) {
            throw new MemoryAccessException(Reason.UNBACKED, address);
        }
        return page;
    }

    private byte[] writablePage(long address) {
        checkRange(address);
        byte[] page = pageOrNull(address);
        return page != null ? page : createPage(address, null);
    }

    /**
     * Installs a page at {@code address}: {@code replacement} if given (replacing any page), else a
     * new zero page unless one exists.
     */
    private byte[] createPage(long address, byte[] replacement) {
        long frame = address >>> PAGE_SHIFT;
        int t = (int) (frame >>> TOP_SHIFT);
        byte[][][] mid = (byte[][][]) TOP.getAcquire(top, t);
        if (mid == null) {
            byte[][][] fresh = new byte[1 << NODE_BITS][][];
            mid = (byte[][][]) TOP.compareAndExchange(top, t, null, fresh);
            if (mid == null) {
                mid = fresh;
            }
        }
        int m = (int) (frame >>> NODE_BITS) & NODE_MASK;
        byte[][] leaf = (byte[][]) MID.getAcquire(mid, m);
        if (leaf == null) {
            byte[][] fresh = new byte[1 << NODE_BITS][];
            leaf = (byte[][]) MID.compareAndExchange(mid, m, null, fresh);
            if (leaf == null) {
                leaf = fresh;
            }
        }
        int l = (int) frame & NODE_MASK;
        if (replacement != null) {
            byte[] old = (byte[]) LEAF.getAndSet(leaf, l, replacement);
            if (old == null) {
                backedPages.incrementAndGet();
            }
            return replacement;
        }
        byte[] fresh = new byte[PAGE_SIZE];
        byte[] page = (byte[]) LEAF.compareAndExchange(leaf, l, null, fresh);
        if (page == null) {
            backedPages.incrementAndGet();
            return fresh;
        }
        return page;
    }

    // ---- backing management (frame allocator) ------------------------------------------------

    /**
     * Backs every page of a page-aligned range with fresh zero pages, replacing previous contents.
     *
     * @param address page-aligned start
     * @param length a multiple of the page size
     */
    public void installZeroPages(long address, long length) {
        checkRange(address, length);
        for (long a = address; a < address + length; a += PAGE_SIZE) {
            createPage(a, new byte[PAGE_SIZE]);
        }
    }

    /**
     * Drops the backing of every page of a page-aligned range: later reads fail as unbacked.
     *
     * @param address page-aligned start
     * @param length a multiple of the page size
     */
    public void discardPages(long address, long length) {
        checkRange(address, length);
        for (long a = address; a < address + length; a += PAGE_SIZE) {
            long frame = a >>> PAGE_SHIFT;
            byte[][][] mid = (byte[][][]) TOP.getAcquire(top, (int) (frame >>> TOP_SHIFT));
            if (mid == null) {
                continue;
            }
            byte[][] leaf = (byte[][]) MID.getAcquire(mid, (int) (frame >>> NODE_BITS) & NODE_MASK);
            if (leaf != null && LEAF.getAndSet(leaf, (int) frame & NODE_MASK, null) != null) {
                backedPages.decrementAndGet();
            }
        }
    }

    // ---- PhysicalMemory --------------------------------------------------------------------

    @Override
    public long read64(long address) {
        int offset = (int) address & PAGE_MASK;
        if (offset <= PAGE_SIZE - 8) {
            byte[] page = readablePage(address);
            if ((offset & 7) == 0 && ALIGNED_VIEW) {
                return (long) LONG.getAcquire(page, offset);
            }
            return (long) LONG.get(page, offset);
        }
        return readAcross(address, 8);
    }

    @Override
    public void write64(long address, long value) {
        int offset = (int) address & PAGE_MASK;
        if (offset <= PAGE_SIZE - 8) {
            byte[] page = writablePage(address);
            if ((offset & 7) == 0 && ALIGNED_VIEW) {
                LONG.setRelease(page, offset, value);
            } else if ((offset & 7) == 0) {
                synchronized (page) {
                    LONG.set(page, offset, value);
                }
            } else {
                LONG.set(page, offset, value);
            }
            return;
        }
        checkRange(address, 8);
        writeAcross(address, value, 8);
    }

    @Override
    public int read32(long address) {
        int offset = (int) address & PAGE_MASK;
        if (offset <= PAGE_SIZE - 4) {
            return (int) INT.get(readablePage(address), offset);
        }
        return (int) readAcross(address, 4);
    }

    @Override
    public void write32(long address, int value) {
        int offset = (int) address & PAGE_MASK;
        if (offset <= PAGE_SIZE - 4) {
            INT.set(writablePage(address), offset, value);
            return;
        }
        checkRange(address, 4);
        writeAcross(address, value, 4);
    }

    @Override
    public boolean compareAndSet64(long address, long expected, long value) {
        if ((address & 7) != 0) {
            checkRange(address);
            throw new MemoryAccessException(Reason.MISALIGNED, address);
        }
        byte[] page = readablePage(address);
        int offset = (int) address & PAGE_MASK;
        if (ALIGNED_VIEW) {
            return LONG.compareAndSet(page, offset, expected, value);
        }
        synchronized (page) {
            if ((long) LONG.get(page, offset) != expected) {
                return false;
            }
            LONG.set(page, offset, value);
            return true;
        }
    }

    /** Reads {@code size} bytes little endian across a page boundary. */
    private long readAcross(long address, int size) {
        checkRange(address, size);
        long value = 0;
        for (int i = 0; i < size; i++) {
            long a = address + i;
            value |= (readablePage(a)[(int) a & PAGE_MASK] & 0xffL) << (8 * i);
        }
        return value;
    }

    /** Writes {@code size} bytes little endian across a page boundary; the range is checked. */
    private void writeAcross(long address, long value, int size) {
        for (int i = 0; i < size; i++) {
            long a = address + i;
            writablePage(a)[(int) a & PAGE_MASK] = (byte) (value >>> (8 * i));
        }
    }

    @Override
    public void read(long address, byte[] dst, int offset, int length) {
        checkArray(dst.length, offset, length);
        checkRange(address, length);
        int done = 0;
        while (done < length) {
            long a = address + done;
            int inPage = (int) a & PAGE_MASK;
            int chunk = Math.min(length - done, PAGE_SIZE - inPage);
            System.arraycopy(readablePage(a), inPage, dst, offset + done, chunk);
            done += chunk;
        }
    }

    @Override
    public void write(long address, byte[] src, int offset, int length) {
        checkArray(src.length, offset, length);
        checkRange(address, length);
        int done = 0;
        while (done < length) {
            long a = address + done;
            int inPage = (int) a & PAGE_MASK;
            int chunk = Math.min(length - done, PAGE_SIZE - inPage);
            System.arraycopy(src, offset + done, writablePage(a), inPage, chunk);
            done += chunk;
        }
    }

    private static void checkArray(int arrayLength, int offset, int length) {
        if (offset < 0 || length < 0 || offset > arrayLength - length) {
            throw new IndexOutOfBoundsException("offset " + offset + " length " + length + " array " + arrayLength);
        }
    }

    @Override
    public void copy(long src, long dst, long length) {
        if (length <= 0) {
            return;
        }
        checkRange(src, length);
        checkRange(dst, length);
        boolean backward = Long.compareUnsigned(dst, src) > 0 && Long.compareUnsigned(dst, src + length) < 0;
        if (!backward) {
            long done = 0;
            while (done < length) {
                long s = src + done;
                long d = dst + done;
                int chunk = chunk(s, d, length - done);
                System.arraycopy(readablePage(s), (int) s & PAGE_MASK, writablePage(d), (int) d & PAGE_MASK, chunk);
                done += chunk;
            }
            return;
        }
        long left = length;
        while (left > 0) {
            // copy the chunk that ends at src + left, so overlapping bytes are read before written
            long sEnd = src + left;
            long dEnd = dst + left;
            int inS = (int) ((sEnd - 1) & PAGE_MASK) + 1;
            int inD = (int) ((dEnd - 1) & PAGE_MASK) + 1;
            int chunk = (int) Math.min(left, Math.min(inS, inD));
            long s = sEnd - chunk;
            long d = dEnd - chunk;
            System.arraycopy(readablePage(s), (int) s & PAGE_MASK, writablePage(d), (int) d & PAGE_MASK, chunk);
            left -= chunk;
        }
    }

    private static int chunk(long s, long d, long left) {
        int inS = PAGE_SIZE - ((int) s & PAGE_MASK);
        int inD = PAGE_SIZE - ((int) d & PAGE_MASK);
        return (int) Math.min(left, Math.min(inS, inD));
    }

    @Override
    public void fill(long address, long length, byte value) {
        if (length <= 0) {
            return;
        }
        checkRange(address, length);
        long done = 0;
        while (done < length) {
            long a = address + done;
            int inPage = (int) a & PAGE_MASK;
            int chunk = (int) Math.min(length - done, PAGE_SIZE - inPage);
            Arrays.fill(writablePage(a), inPage, inPage + chunk, value);
            done += chunk;
        }
    }

    @Override
    public boolean isBacked(long address) {
        return address >>> addressBits == 0 && pageOrNull(address) != null;
    }
}
