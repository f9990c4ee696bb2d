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
 * <p>A page is a {@code long[512]} of little-endian 64-bit words. Long-array elements are always
 * naturally aligned, so aligned 8-byte accesses get acquire/release semantics and compare-and-set on
 * every JVM (byte-array views lose those modes on recent JDKs). A write of fewer than 8 bytes
 * updates its word with a compare-and-set loop, so concurrent writes to different bytes of one word
 * are never lost, as on real memory. Nothing on the access paths allocates.
 *
 * <p>Thread safe. Usable outside OSGi (unit tests of other modules).
 */
public final class SparseMemory implements PhysicalMemory {
    /** log2 of the page size. */
    public static final int PAGE_SHIFT = 12;
    /** Page size in bytes. */
    public static final int PAGE_SIZE = 1 << PAGE_SHIFT;
    private static final int PAGE_MASK = PAGE_SIZE - 1;
    private static final int WORDS = PAGE_SIZE / 8;

    private static final int NODE_BITS = 13;
    private static final int NODE_MASK = (1 << NODE_BITS) - 1;
    private static final int TOP_SHIFT = 2 * NODE_BITS;

    private static final VarHandle WORD = MethodHandles.arrayElementVarHandle(long[].class);
    /** Plain 8-byte views of caller byte arrays (supported at any alignment on every JDK). */
    private static final VarHandle BYTES_AS_LONG = MethodHandles.byteArrayViewVarHandle(long[].class, ByteOrder.LITTLE_ENDIAN);
    private static final VarHandle TOP = MethodHandles.arrayElementVarHandle(long[][][][].class);
    private static final VarHandle MID = MethodHandles.arrayElementVarHandle(long[][][].class);
    private static final VarHandle LEAF = MethodHandles.arrayElementVarHandle(long[][].class);

    /** Scratch for overlapping copies that must run backwards; one page per thread. */
    private static final ThreadLocal<byte[]> SCRATCH = ThreadLocal.withInitial(() -> new byte[PAGE_SIZE]);

    private final int addressBits;
    private final long[][][][] top;
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
        this.top = new long[1 << Math.max(1, frameBits - TOP_SHIFT)][][][];
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

    private long[] pageOrNull(long address) {
        long frame = address >>> PAGE_SHIFT;
        long[][][] mid = (long[][][]) TOP.getAcquire(top, (int) (frame >>> TOP_SHIFT));
        if (mid == null) {
            return null;
        }
        long[][] leaf = (long[][]) MID.getAcquire(mid, (int) (frame >>> NODE_BITS) & NODE_MASK);
        if (leaf == null) {
            return null;
        }
        return (long[]) LEAF.getAcquire(leaf, (int) frame & NODE_MASK);
    }

    private long[] readablePage(long address) {
        checkRange(address);
        long[] page = pageOrNull(address);
        if (page == null) {
            throw new MemoryAccessException(Reason.UNBACKED, address);
        }
        return page;
    }

    private long[] writablePage(long address) {
        checkRange(address);
        long[] page = pageOrNull(address);
        if (page == ZERO) {
            return materialize(address);
        }
        return page != null ? page : createPage(address, null);
    }

    /**
     * The shared zero page freshly allocated frames point at: it reads as zeros and costs no heap
     * until the first write gives the frame a page of its own (copy on write). Never written.
     */
    private static final long[] ZERO = new long[WORDS];

    /** Replaces the shared zero page at {@code address} with a page of its own. */
    private long[] materialize(long address) {
        long frame = address >>> PAGE_SHIFT;
        long[][][] mid = (long[][][]) TOP.getAcquire(top, (int) (frame >>> TOP_SHIFT));
        long[][] leaf = (long[][]) MID.getAcquire(mid, (int) (frame >>> NODE_BITS) & NODE_MASK);
        long[] fresh = new long[WORDS];
        long[] witness = (long[]) LEAF.compareAndExchange(leaf, (int) frame & NODE_MASK, ZERO, fresh);
        if (witness == ZERO) {
            return fresh;
        }
        // Another thread materialised it first, or the frame was freed meanwhile (a write backs it again).
        return witness != null ? witness : createPage(address, null);
    }

    /**
     * Installs a page at {@code address}: {@code replacement} if given (replacing any page), else a
     * new zero page unless one exists.
     */
    private long[] createPage(long address, long[] replacement) {
        long frame = address >>> PAGE_SHIFT;
        int t = (int) (frame >>> TOP_SHIFT);
        long[][][] mid = (long[][][]) TOP.getAcquire(top, t);
        if (mid == null) {
            long[][][] fresh = new long[1 << NODE_BITS][][];
            mid = (long[][][]) TOP.compareAndExchange(top, t, null, fresh);
            if (mid == null) {
                mid = fresh;
            }
        }
        int m = (int) (frame >>> NODE_BITS) & NODE_MASK;
        long[][] leaf = (long[][]) MID.getAcquire(mid, m);
        if (leaf == null) {
            long[][] fresh = new long[1 << NODE_BITS][];
            leaf = (long[][]) MID.compareAndExchange(mid, m, null, fresh);
            if (leaf == null) {
                leaf = fresh;
            }
        }
        int l = (int) frame & NODE_MASK;
        if (replacement != null) {
            if (LEAF.getAndSet(leaf, l, replacement) == null) {
                backedPages.incrementAndGet();
            }
            return replacement;
        }
        long[] fresh = new long[WORDS];
        long[] page = (long[]) LEAF.compareAndExchange(leaf, l, null, fresh);
        if (page == null) {
            backedPages.incrementAndGet();
            return fresh;
        }
        return page;
    }

    // ---- backing management (frame allocator) ------------------------------------------------

    /**
     * Backs every page of a page-aligned range with zero pages, replacing previous contents: the
     * pages share one zero page until written, so an allocated frame costs no heap until used.
     *
     * @param address page-aligned start
     * @param length a multiple of the page size
     */
    public void installZeroPages(long address, long length) {
        checkRange(address, length);
        for (long a = address; a < address + length; a += PAGE_SIZE) {
            createPage(a, ZERO);
        }
    }

    /** @return the number of backed pages that still share the zero page (allocated, never written) */
    public long zeroPages() {
        long n = 0;
        for (long[][][] mid : top) {
            if (mid == null) {
                continue;
            }
            for (long[][] leaf : mid) {
                if (leaf == null) {
                    continue;
                }
                for (long[] page : leaf) {
                    n += page == ZERO ? 1 : 0;
                }
            }
        }
        return n;
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
            long[][][] mid = (long[][][]) TOP.getAcquire(top, (int) (frame >>> TOP_SHIFT));
            if (mid == null) {
                continue;
            }
            long[][] leaf = (long[][]) MID.getAcquire(mid, (int) (frame >>> NODE_BITS) & NODE_MASK);
            if (leaf != null && LEAF.getAndSet(leaf, (int) frame & NODE_MASK, null) != null) {
                backedPages.decrementAndGet();
            }
        }
    }

    // ---- word helpers ------------------------------------------------------------------------

    private static long word(long[] page, int index) {
        return (long) WORD.getAcquire(page, index);
    }

    /** Replaces the bits of {@code mask} in a word, atomically with respect to other writers. */
    private static void storeBits(long[] page, int index, long value, long mask) {
        if (mask == -1L) {
            WORD.setRelease(page, index, value);
            return;
        }
        long old;
        do {
            old = (long) WORD.getVolatile(page, index);
        } while (!WORD.compareAndSet(page, index, old, (old & ~mask) | (value & mask)));
    }

    /** Reads 8 bytes at an in-page offset with {@code offset + 8 <= PAGE_SIZE}. */
    private static long load64(long[] page, int offset) {
        int index = offset >>> 3;
        int shift = (offset & 7) << 3;
        if (shift == 0) {
            return word(page, index);
        }
        return (word(page, index) >>> shift) | (word(page, index + 1) << (64 - shift));
    }

    /** Writes the low {@code size} bytes of {@code value} at an in-page offset that fits them. */
    private static void storeBytes(long[] page, int offset, long value, int size) {
        int index = offset >>> 3;
        int shift = (offset & 7) << 3;
        long mask = size == 8 ? -1L : (1L << (size << 3)) - 1;
        int inFirst = Math.min(size, 8 - (offset & 7));
        long firstMask = inFirst == 8 ? -1L : ((1L << (inFirst << 3)) - 1) << shift;
        storeBits(page, index, value << shift, firstMask);
        if (inFirst < size) {
            storeBits(page, index + 1, (value & mask) >>> ((8 - (offset & 7)) << 3), mask >>> ((8 - (offset & 7)) << 3));
        }
    }

    private static int loadByte(long[] page, int offset) {
        return (int) (word(page, offset >>> 3) >>> ((offset & 7) << 3)) & 0xff;
    }

    // ---- PhysicalMemory --------------------------------------------------------------------

    @Override
    public long read64(long address) {
        int offset = (int) address & PAGE_MASK;
        if (offset <= PAGE_SIZE - 8) {
            return load64(readablePage(address), offset);
        }
        return readAcross(address, 8);
    }

    @Override
    public void write64(long address, long value) {
        int offset = (int) address & PAGE_MASK;
        if (offset <= PAGE_SIZE - 8) {
            storeBytes(writablePage(address), offset, value, 8);
            return;
        }
        checkRange(address, 8);
        writeAcross(address, value, 8);
    }

    @Override
    public int read32(long address) {
        int offset = (int) address & PAGE_MASK;
        if (offset <= PAGE_SIZE - 4) {
            long[] page = readablePage(address);
            if ((offset & 7) <= 4) {
                return (int) (word(page, offset >>> 3) >>> ((offset & 7) << 3));
            }
            return (int) load64(page, offset);
        }
        return (int) readAcross(address, 4);
    }

    @Override
    public void write32(long address, int value) {
        int offset = (int) address & PAGE_MASK;
        if (offset <= PAGE_SIZE - 4) {
            storeBytes(writablePage(address), offset, value & 0xffff_ffffL, 4);
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
        long[] page = readablePage(address);
        if (page == ZERO) {
            if (expected != 0) {
                return false; // the word reads 0
            }
            page = writablePage(address);
        }
        return WORD.compareAndSet(page, ((int) address & PAGE_MASK) >>> 3, expected, value);
    }

    /** Reads {@code size} bytes little endian across a page boundary. */
    private long readAcross(long address, int size) {
        checkRange(address, size);
        long value = 0;
        for (int i = 0; i < size; i++) {
            long a = address + i;
            value |= (long) loadByte(readablePage(a), (int) a & PAGE_MASK) << (8 * i);
        }
        return value;
    }

    /** Writes {@code size} bytes little endian across a page boundary; the range is checked. */
    private void writeAcross(long address, long value, int size) {
        for (int i = 0; i < size; i++) {
            long a = address + i;
            storeBytes(writablePage(a), (int) a & PAGE_MASK, value >>> (8 * i), 1);
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
            readChunk(readablePage(a), inPage, dst, offset + done, chunk);
            done += chunk;
        }
    }

    private static void readChunk(long[] page, int from, byte[] dst, int at, int length) {
        int i = 0;
        while (i < length && ((from + i) & 7) != 0) {
            dst[at + i] = (byte) loadByte(page, from + i);
            i++;
        }
        for (; i + 8 <= length; i += 8) {
            BYTES_AS_LONG.set(dst, at + i, word(page, (from + i) >>> 3));
        }
        for (; i < length; i++) {
            dst[at + i] = (byte) loadByte(page, from + i);
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
            writeChunk(src, offset + done, writablePage(a), inPage, chunk);
            done += chunk;
        }
    }

    private static void writeChunk(byte[] src, int at, long[] page, int to, int length) {
        int i = 0;
        while (i < length && ((to + i) & 7) != 0) {
            storeBytes(page, to + i, src[at + i], 1);
            i++;
        }
        for (; i + 8 <= length; i += 8) {
            WORD.setRelease(page, (to + i) >>> 3, (long) BYTES_AS_LONG.get(src, at + i));
        }
        for (; i < length; i++) {
            storeBytes(page, to + i, src[at + i], 1);
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
                int inS = PAGE_SIZE - ((int) s & PAGE_MASK);
                int inD = PAGE_SIZE - ((int) d & PAGE_MASK);
                int chunk = (int) Math.min(length - done, Math.min(inS, inD));
                copyChunk(readablePage(s), (int) s & PAGE_MASK, writablePage(d), (int) d & PAGE_MASK, chunk);
                done += chunk;
            }
            return;
        }
        // dst overlaps the end of src: copy chunks from the end, each read whole before it is written.
        byte[] scratch = SCRATCH.get();
        long left = length;
        while (left > 0) {
            long sEnd = src + left;
            long dEnd = dst + left;
            int inS = (int) ((sEnd - 1) & PAGE_MASK) + 1;
            int inD = (int) ((dEnd - 1) & PAGE_MASK) + 1;
            int chunk = (int) Math.min(left, Math.min(inS, inD));
            long s = sEnd - chunk;
            long d = dEnd - chunk;
            readChunk(readablePage(s), (int) s & PAGE_MASK, scratch, 0, chunk);
            writeChunk(scratch, 0, writablePage(d), (int) d & PAGE_MASK, chunk);
            left -= chunk;
        }
    }

    /**
     * Copies within one source and one destination page, lowest address first (safe when the
     * destination does not overlap the source's tail). Words move whole when both offsets share
     * their alignment; otherwise each destination word is assembled from two source words.
     */
    private static void copyChunk(long[] from, int s, long[] to, int d, int length) {
        int i = 0;
        while (i < length && ((d + i) & 7) != 0) {
            storeBytes(to, d + i, loadByte(from, s + i), 1);
            i++;
        }
        int words = (length - i) >>> 3;
        if (((s + i) & 7) == 0) {
            System.arraycopy(from, (s + i) >>> 3, to, (d + i) >>> 3, words);
            i += words << 3;
            VarHandle.releaseFence();
        } else {
            for (; i + 8 <= length; i += 8) {
                WORD.setRelease(to, (d + i) >>> 3, load64(from, s + i));
            }
        }
        for (; i < length; i++) {
            storeBytes(to, d + i, loadByte(from, s + i), 1);
        }
    }

    @Override
    public void fill(long address, long length, byte value) {
        if (length <= 0) {
            return;
        }
        checkRange(address, length);
        long pattern = (value & 0xffL) * 0x0101_0101_0101_0101L;
        long done = 0;
        while (done < length) {
            long a = address + done;
            int inPage = (int) a & PAGE_MASK;
            int chunk = (int) Math.min(length - done, PAGE_SIZE - inPage);
            long[] page = writablePage(a);
            int i = 0;
            while (i < chunk && ((inPage + i) & 7) != 0) {
                storeBytes(page, inPage + i, value, 1);
                i++;
            }
            int words = (chunk - i) >>> 3;
            Arrays.fill(page, (inPage + i) >>> 3, ((inPage + i) >>> 3) + words, pattern);
            VarHandle.releaseFence();
            i += words << 3;
            for (; i < chunk; i++) {
                storeBytes(page, inPage + i, value, 1);
            }
            done += chunk;
        }
    }

    @Override
    public boolean isBacked(long address) {
        return address >>> addressBits == 0 && pageOrNull(address) != null;
    }
}
