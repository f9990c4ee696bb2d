package org.iommulab.pgtable;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.TreeMap;
import java.util.stream.Stream;

import org.iommulab.api.errno.Errno;
import org.iommulab.api.errno.IommuException;
import org.iommulab.api.spi.IommuDomain;
import org.iommulab.api.translation.Access;
import org.iommulab.api.translation.FaultKind;
import org.iommulab.pgtable.FormatCatalog.Case;
import org.iommulab.platform.internal.memory.FramePool;
import org.iommulab.platform.internal.memory.SparseMemory;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Map, unmap, iova-to-phys and the walker, checked against each other over every supported format
 * and geometry (in the spirit of Linux's io-pgtable self tests).
 */
class FormatConformanceTest {
    /** Table frames come from here: below 2^40, the smallest output size tested. */
    static final long POOL_BASE = 1L << 32;
    static final int RW = IommuDomain.PROT_READ | IommuDomain.PROT_WRITE;
    static final int RO = IommuDomain.PROT_READ;

    static Stream<Case> formats() {
        return FormatCatalog.all().stream();
    }

    /** Records flush calls. */
    static final class RecordingFlush implements FlushOps {
        final List<String> calls = new ArrayList<>();

        @Override
        public void flushLeaves(long iova, long size, long granule) {
            calls.add(String.format("leaves 0x%x+0x%x granule 0x%x", iova, size, granule));
        }

        @Override
        public void flushWalk(long iova, long size) {
            calls.add(String.format("walk 0x%x+0x%x", iova, size));
        }

        static String leaves(long iova, long size, long granule) {
            return String.format("leaves 0x%x+0x%x granule 0x%x", iova, size, granule);
        }

        static String walk(long iova, long size) {
            return String.format("walk 0x%x+0x%x", iova, size);
        }
    }

    /** A fresh memory, frame pool and table. */
    static final class Fx {
        final Case c;
        final PageTableFormat f;
        final SparseMemory mem = new SparseMemory(52);
        final FramePool pool;
        final RecordingFlush flush = new RecordingFlush();
        final IoPageTable t;
        final WalkResult r = new WalkResult();
        final long g;
        final long top;

        Fx(Case c) throws IommuException {
            this(c, 1 << 20);
        }

        Fx(Case c, long maxFrames) throws IommuException {
            this.c = c;
            this.f = c.format();
            this.pool = new FramePool(mem, POOL_BASE, maxFrames);
            this.t = IoPageTable.create(f, mem, pool, flush);
            this.g = c.granule();
            this.top = c.top();
        }

        boolean walk(long address, int access) {
            return Walker.walk(mem, f, t.root(), address, access, false, r);
        }

        /** The walker and iova-to-phys agree on {@code address}; returns the output or -1. */
        long agree(long address) {
            long phys = t.iovaToPhys(address);
            boolean ok = walk(address, Access.READ | Access.PRIV);
            String where = String.format("%s at 0x%x: %s", c, address, r);
            if (phys == -1) {
                assertFalse(ok, where);
                assertEquals(WalkFault.NOT_PRESENT, r.fault(), where);
                assertEquals(FaultKind.TRANSLATION, r.faultKind(), where);
            } else {
                assertTrue(ok, where);
                assertEquals(phys, r.outputAddress(), where);
            }
            return phys;
        }

        void assertMapped(long iova, long pa, long size, int pageShift) {
            for (long off : new long[] {0, 1, size / 2, size - 1}) {
                assertEquals(pa + off, t.iovaToPhys(iova + off), () -> String.format("%s iova 0x%x", c, iova + off));
                assertEquals(pa + off, agree(iova + off));
                assertEquals(pageShift, r.pageShift(), () -> String.format("%s page size at 0x%x", c, iova + off));
            }
        }

        void assertUnmapped(long iova, long size) {
            for (long off : new long[] {0, 1, size / 2, size - 1}) {
                assertEquals(-1, agree(iova + off), () -> String.format("%s iova 0x%x", c, iova + off));
            }
        }

        long state() {
            return t.tableFrames() * 1_000_000_000L + pool.allocatedFrames();
        }

        void assertEmpty() {
            assertEquals(c.rootFrames(), t.tableFrames(), c + ": tableFrames after unmapping everything");
            assertEquals(c.rootFrames(), pool.allocatedFrames(), c + ": pool frames after unmapping everything");
        }
    }

    interface Op {
        void run() throws Exception;
    }

    static void assertErrno(Errno expected, Op op, String what) {
        IommuException e = assertThrows(IommuException.class, op::run, what);
        assertEquals(expected, e.errno(), what + ": " + e.getMessage());
    }

    static int log2(long size) {
        return Long.numberOfTrailingZeros(size);
    }

    // ---- map at strides, walker agreement ------------------------------------------------------

    @ParameterizedTest(name = "{0}")
    @MethodSource("formats")
    void mapAtStridesWalkerAgrees(Case c) throws Exception {
        Fx x = new Fx(c);
        for (long s : c.pageSizes()) {
            int n = (int) Math.max(1, Math.min(4, x.top / (2 * s)));
            long base = Math.max(0, x.top / 2 - 2 * n * s) & -s;
            for (int i = 0; i < n; i++) {
                x.t.map(base + 2 * i * s, c.paBase() + (3L * i + 1) * s, s, RW);
            }
            for (int i = 0; i < n; i++) {
                x.assertMapped(base + 2 * i * s, c.paBase() + (3L * i + 1) * s, s, log2(s));
                long gap = base + (2L * i + 1) * s;
                if (gap < x.top) {
                    x.assertUnmapped(gap, s);
                }
            }
            if (base > 0) {
                x.assertUnmapped(base - s, s);
            }
            // Random addresses around and between the pages.
            Random rnd = new Random(s ^ c.label().hashCode());
            long from = Math.max(0, base - s);
            long span = Math.min(x.top, base + (2L * n + 1) * s) - from;
            for (int i = 0; i < 200; i++) {
                x.agree(from + (long) (rnd.nextDouble() * span));
            }
            for (int i = 0; i < n; i++) {
                assertEquals(s, x.t.unmap(base + 2 * i * s, s), c + ": unmap returns the page size");
                x.assertUnmapped(base + 2 * i * s, s);
            }
            x.assertEmpty();
        }
        x.t.destroy();
        assertEquals(0, x.pool.allocatedFrames(), c + ": destroy frees the root");
    }

    // ---- random map/unmap against a reference model -------------------------------------------

    /** The leaves the engine should hold, by first input address: {output address, size}. */
    static final class Model {
        final TreeMap<Long, long[]> leaves = new TreeMap<>();
        final List<Long> sizesDescending;

        Model(List<Long> sizes) {
            sizesDescending = new ArrayList<>(sizes);
            java.util.Collections.reverse(sizesDescending);
        }

        boolean overlaps(long first, long last) {
            Map.Entry<Long, long[]> e = leaves.floorEntry(last);
            return e != null && e.getKey() + e.getValue()[1] - 1 >= first;
        }

        /** The engine's rule: the largest page the alignment of iova and pa and the remaining size allow. */
        void map(long iova, long pa, long size) {
            long done = 0;
            while (done < size) {
                for (long s : sizesDescending) {
                    if ((((iova + done) | (pa + done)) & (s - 1)) == 0 && size - done >= s) {
                        leaves.put(iova + done, new long[] {pa + done, s});
                        done += s;
                        break;
                    }
                }
            }
        }

        /** @return bytes removed, or -1 if a leaf straddles an edge */
        long unmap(long first, long last) {
            Map.Entry<Long, long[]> lo = leaves.floorEntry(first);
            if (lo != null && lo.getKey() < first && lo.getKey() + lo.getValue()[1] - 1 >= first) {
                return -1;
            }
            Map.Entry<Long, long[]> hi = leaves.floorEntry(last);
            if (hi != null && hi.getKey() + hi.getValue()[1] - 1 > last) {
                return -1;
            }
            long removed = 0;
            Map<Long, long[]> inside = leaves.subMap(first, true, last, true);
            for (long[] v : inside.values()) {
                removed += v[1];
            }
            inside.clear();
            return removed;
        }

        long lookup(long a) {
            Map.Entry<Long, long[]> e = leaves.floorEntry(a);
            if (e == null || a - e.getKey() >= e.getValue()[1]) {
                return -1;
            }
            return e.getValue()[0] + (a - e.getKey());
        }

        long total() {
            long t = 0;
            for (long[] v : leaves.values()) {
                t += v[1];
            }
            return t;
        }
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("formats")
    void randomMapUnmapMatchesAReferenceModel(Case c) throws Exception {
        Fx x = new Fx(c);
        long g = x.g;
        List<Long> sizes = new ArrayList<>();
        for (long s : c.pageSizes()) {
            if (20 * s <= x.top) {
                sizes.add(s);
            }
        }
        long seed = 0x10_9a6e_7ab1eL ^ c.label().hashCode();
        Random rnd = new Random(seed);
        Model model = new Model(c.pageSizes());
        long pa0 = c.paBase();
        long window = 18 * sizes.get(sizes.size() - 1);
        for (int op = 0; op < 300; op++) {
            int si = rnd.nextInt(sizes.size());
            long s = sizes.get(si);
            long iova = rnd.nextInt(16) * s;
            long size = (1 + rnd.nextInt(3)) * s;
            if (iova > 0 && rnd.nextInt(3) == 0) {
                iova -= g;
                size += g;
            }
            if (rnd.nextInt(3) == 0) {
                size += g;
            }
            String what = String.format("%s seed 0x%x op %d", c, seed, op);
            if (rnd.nextInt(5) < 3) {
                long pa = pa0 + rnd.nextInt(16) * s + (iova & (s - 1));
                if (si > 0 && rnd.nextInt(4) == 0) {
                    pa += sizes.get(si - 1); // aligned only to the next smaller page
                }
                String call = String.format("%s: map(0x%x, 0x%x, 0x%x)", what, iova, pa, size);
                if (model.overlaps(iova, iova + size - 1)) {
                    long p = pa;
                    long i = iova;
                    long z = size;
                    assertErrno(Errno.EEXIST, () -> x.t.map(i, p, z, RW), call);
                } else {
                    x.t.map(iova, pa, size, RW);
                    model.map(iova, pa, size);
                }
            } else {
                String call = String.format("%s: unmap(0x%x, 0x%x)", what, iova, size);
                long expected = model.unmap(iova, iova + size - 1);
                if (expected < 0) {
                    long i = iova;
                    long z = size;
                    assertErrno(Errno.EINVAL, () -> x.t.unmap(i, z), call);
                } else {
                    assertEquals(expected, x.t.unmap(iova, size), call);
                }
            }
            if (op % 25 == 24) {
                for (int i = 0; i < 100; i++) {
                    long a = (long) (rnd.nextDouble() * window);
                    assertEquals(model.lookup(a), x.agree(a), String.format("%s: address 0x%x", what, a));
                }
                int stride = Math.max(1, model.leaves.size() / 128);
                int k = 0;
                for (Map.Entry<Long, long[]> e : model.leaves.entrySet()) {
                    if (k++ % stride != 0) {
                        continue;
                    }
                    long[] v = e.getValue();
                    assertEquals(v[0], x.agree(e.getKey()), what);
                    assertEquals(log2(v[1]), x.r.pageShift(), String.format("%s: page size at 0x%x", what, e.getKey()));
                    assertEquals(v[0] + v[1] - 1, x.agree(e.getKey() + v[1] - 1), what);
                }
            }
        }
        assertEquals(model.total(), x.t.unmap(0, x.top), c + " seed 0x" + Long.toHexString(seed) + ": unmap everything");
        x.assertEmpty();
    }

    // ---- largest leaf ----------------------------------------------------------------------------

    @ParameterizedTest(name = "{0}")
    @MethodSource("formats")
    void largestLeafChoice(Case c) throws Exception {
        Fx x = new Fx(c);
        List<Long> sizes = c.pageSizes();
        long big = 0;
        for (long s : sizes) {
            if (4 * s <= x.top) {
                big = s;
            }
        }
        assumeTrue(big > 0, "input space too small");
        long g = x.g;
        long a = 2 * big;
        long p = c.paBase() + 2 * big;
        // [a-g, a) is aligned only to the granule, [a, a+big) to the big page, [a+big, a+big+g) is a granule.
        x.t.map(a - g, p - g, big + 2 * g, RW);
        x.assertMapped(a - g, p - g, g, log2(g));
        x.assertMapped(a, p, big, log2(big));
        x.assertMapped(a + big, p + big, g, log2(g));
        x.assertUnmapped(a - 2 * g, g);
        x.assertUnmapped(a + big + g, g);
        assertEquals(big + 2 * g, x.t.unmap(a - g, big + 2 * g));
        x.assertEmpty();

        // An output address aligned only to the next smaller page: pages of that size.
        int bi = sizes.indexOf(big);
        if (bi > 0) {
            long smaller = sizes.get(bi - 1);
            x.t.map(a, p + smaller, big, RW);
            x.assertMapped(a, p + smaller, big, log2(smaller));
            assertEquals(big, x.t.unmap(a, big));
            x.assertEmpty();
        }
    }

    // ---- overlap -----------------------------------------------------------------------------------

    @ParameterizedTest(name = "{0}")
    @MethodSource("formats")
    void overlappingMapFailsWithEexistAndChangesNothing(Case c) throws Exception {
        Fx x = new Fx(c);
        long g = x.g;
        long small = x.top / 2;
        long pa = c.paBase();
        x.t.map(small, pa, g, RW);
        List<Long> sizes = c.pageSizes();
        long big = sizes.get(sizes.size() - 1);
        long bigIova = -1;
        if (sizes.size() > 1 && 8 * big <= x.top) {
            bigIova = big; // [big, 2 big) ends at top/4 or below, far from the granule page at top/2
            x.t.map(bigIova, pa + big, big, RW);
        }
        long state = x.state();

        assertErrno(Errno.EEXIST, () -> x.t.map(small - g, pa + 16 * g, 2 * g, RW), c + ": overlap at the end");
        assertErrno(Errno.EEXIST, () -> x.t.map(small, pa + 16 * g, g, RW), c + ": same page");
        assertErrno(Errno.EEXIST, () -> x.t.map(small - 4 * g, pa + 16 * g, 8 * g, RW), c + ": covering");
        if (bigIova != -1) {
            long b = bigIova;
            assertErrno(Errno.EEXIST, () -> x.t.map(b + g, pa + 16 * g, g, RW), c + ": inside a large page");
            assertErrno(Errno.EEXIST, () -> x.t.map(b - g, pa + 16 * g, 2 * g, RW), c + ": at the start of a large page");
            x.assertMapped(b, pa + big, big, log2(big));
        }
        assertEquals(state, x.state(), c + ": frames changed by a failed map");
        x.assertMapped(small, pa, g, log2(g));
        x.assertUnmapped(small - g, g);
        x.assertUnmapped(small + g, g);
        assertEquals(-1, x.t.iovaToPhys(small - 4 * g));
        assertTrue(x.flush.calls.isEmpty(), c + ": a failed map flushed " + x.flush.calls);
    }

    // ---- unmap granularity -------------------------------------------------------------------------

    @ParameterizedTest(name = "{0}")
    @MethodSource("formats")
    void unmapInsideLargePageFailsAndSmallPagesUnmapOneByOne(Case c) throws Exception {
        Fx x = new Fx(c);
        long g = x.g;
        List<Long> sizes = c.pageSizes();
        long pa = c.paBase();
        long big = 0;
        for (long s : sizes) {
            if (s > g && 4 * s <= x.top) {
                big = s;
            }
        }
        if (big > 0) {
            long b = big;
            x.t.map(big, pa, big, RW);
            long state = x.state();
            assertErrno(Errno.EINVAL, () -> x.t.unmap(b + g, g), c + ": unmap a granule inside a large page");
            assertErrno(Errno.EINVAL, () -> x.t.unmap(b, g), c + ": unmap the first granule of a large page");
            assertErrno(Errno.EINVAL, () -> x.t.unmap(b + b - g, 2 * g), c + ": unmap across the end of a large page");
            assertErrno(Errno.EINVAL, () -> x.t.unmap(b - g, 2 * g), c + ": unmap across the start of a large page");
            assertEquals(state, x.state());
            assertTrue(x.flush.calls.isEmpty(), c + ": a refused unmap flushed " + x.flush.calls);
            x.assertMapped(big, pa, big, log2(big));
            assertEquals(big, x.t.unmap(big, big));
            x.assertEmpty();
        }

        // Four granule pages, unmapped and remapped one at a time.
        long iova = x.top / 2;
        x.t.map(iova, pa, 4 * g, RW);
        x.assertMapped(iova, pa, 4 * g, log2(g));
        assertEquals(g, x.t.unmap(iova + g, g));
        x.assertUnmapped(iova + g, g);
        x.assertMapped(iova, pa, g, log2(g));
        x.assertMapped(iova + 2 * g, pa + 2 * g, 2 * g, log2(g));
        x.t.map(iova + g, pa + 100 * g, g, RO);
        x.assertMapped(iova + g, pa + 100 * g, g, log2(g));
        x.assertMapped(iova, pa, g, log2(g));
        assertEquals(4 * g, x.t.unmap(iova, 4 * g));
        x.assertEmpty();
    }

    // ---- top of the input space ----------------------------------------------------------------

    @ParameterizedTest(name = "{0}")
    @MethodSource("formats")
    void topOfInputSpace(Case c) throws Exception {
        Fx x = new Fx(c);
        long g = x.g;
        long last = x.top - g;
        long pa = c.paBase();
        x.t.map(last, pa, g, RW);
        x.assertMapped(last, pa, g, log2(g));
        long state = x.state();
        assertErrno(Errno.EINVAL, () -> x.t.map(x.top, pa + g, g, RW), c + ": map the page beyond the input space");
        assertEquals(state, x.state());
        assertErrno(Errno.EINVAL, () -> x.t.map(last, pa + g, 2 * g, RW), c + ": map across the end of the input space");
        assertErrno(Errno.EINVAL, () -> x.t.unmap(x.top, g), c + ": unmap beyond the input space");
        assertErrno(Errno.EINVAL, () -> x.t.unmap(last, 2 * g), c + ": unmap across the end of the input space");
        assertEquals(state, x.state());
        assertEquals(-1, x.t.iovaToPhys(x.top));
        assertFalse(x.walk(x.top, Access.READ | Access.PRIV));
        assertTrue(x.r.fault() == WalkFault.INPUT_RANGE || x.r.fault() == WalkFault.NON_CANONICAL, c + ": " + x.r);
        assertEquals(g, x.t.unmap(last, g));
        x.assertUnmapped(last, g);
        x.assertEmpty();
    }

    // ---- unmap accounting, freeing, destroy ----------------------------------------------------

    @ParameterizedTest(name = "{0}")
    @MethodSource("formats")
    void unmapReturnsBytesAndFreesEveryTable(Case c) throws Exception {
        Fx x = new Fx(c);
        long g = x.g;
        long pa = c.paBase();
        long half = x.top / 2;
        assertEquals(0, x.t.unmap(0, x.top), c + ": unmap of an empty table");
        assertEquals(0, x.t.unmap(half, 8 * g));
        assertTrue(x.flush.calls.isEmpty(), c + ": an empty unmap flushed " + x.flush.calls);

        long expected = 0;
        // Granule pages at half, half + 2g, half + 3g; a hole at half + g.
        x.t.map(half, pa, g, RW);
        x.t.map(half + 2 * g, pa + 2 * g, 2 * g, RW);
        expected += 3 * g;
        // One page of every larger size that fits, each in its own aligned slot below half.
        long mappedLarge = 0;
        for (long s : c.pageSizes()) {
            if (s > g && 4 * s <= half) {
                x.t.map(s, pa + s, s, RW);
                mappedLarge += s;
            }
        }
        assertTrue(x.t.tableFrames() >= c.rootFrames());
        assertEquals(0, x.t.unmap(half + 8 * g, 8 * g), c + ": unmap of an empty range");
        assertEquals(3 * g, x.t.unmap(half, 4 * g), c + ": pages inside the range, hole included");
        assertEquals(0, x.t.unmap(half, 4 * g));
        assertEquals(mappedLarge, x.t.unmap(0, x.top), c + ": unmap everything");
        x.assertEmpty();
        x.assertUnmapped(half, g);

        // Map again after everything was freed, then destroy with tables in place.
        x.t.map(half, pa, 4 * g, RW);
        x.assertMapped(half, pa, 4 * g, log2(g));
        x.t.destroy();
        assertEquals(0, x.pool.allocatedFrames(), c + ": destroy frees every table and the root");
        assertEquals(-1, x.t.iovaToPhys(half));
        assertErrno(Errno.ENODEV, () -> x.t.map(half, pa, g, RW), c + ": map after destroy");
        assertErrno(Errno.ENODEV, () -> x.t.unmap(half, g), c + ": unmap after destroy");
        x.t.destroy();
        assertEquals(0, x.pool.allocatedFrames());
    }

    // ---- bad arguments --------------------------------------------------------------------------

    @ParameterizedTest(name = "{0}")
    @MethodSource("formats")
    void badArgumentsFailWithEinvalAndChangeNothing(Case c) throws Exception {
        Fx x = new Fx(c);
        long g = x.g;
        long pa = c.paBase();
        long held = x.top / 2;
        long y = x.top / 4;
        x.t.map(held, pa, g, RW);
        long state = x.state();
        long limit = 1L << c.format().outputBits();
        Object[][] cases = {
            {"size 0", (Op) () -> x.t.map(y, pa, 0, RW)},
            {"negative size", (Op) () -> x.t.map(y, pa, -g, RW)},
            {"unaligned iova", (Op) () -> x.t.map(y + 1, pa, g, RW)},
            {"iova aligned to half a granule", (Op) () -> x.t.map(y + g / 2, pa, g, RW)},
            {"unaligned pa", (Op) () -> x.t.map(y, pa + 1, g, RW)},
            {"pa aligned to half a granule", (Op) () -> x.t.map(y, pa + g / 2, g, RW)},
            {"unaligned size", (Op) () -> x.t.map(y, pa, g + 1, RW)},
            {"half a granule", (Op) () -> x.t.map(y, pa, g / 2, RW)},
            {"iova wraps around", (Op) () -> x.t.map(-g, pa, 2 * g, RW)},
            {"size beyond the input space", (Op) () -> x.t.map(y, pa, Long.MAX_VALUE & -g, RW)},
            {"no permission", (Op) () -> x.t.map(y, pa, g, 0)},
            {"exec only", (Op) () -> x.t.map(y, pa, g, IommuDomain.PROT_EXEC)},
            {"pa at 2^outputBits", (Op) () -> x.t.map(y, limit, g, RW)},
            {"pa range crossing 2^outputBits", (Op) () -> x.t.map(y, limit - g, 2 * g, RW)},
            {"pa with bit 63", (Op) () -> x.t.map(y, Long.MIN_VALUE, g, RW)},
            {"iova beyond the input space", (Op) () -> x.t.map(x.top, pa, g, RW)},
            {"unmap size 0", (Op) () -> x.t.unmap(held, 0)},
            {"unmap negative size", (Op) () -> x.t.unmap(held, -g)},
            {"unmap unaligned iova", (Op) () -> x.t.unmap(held + 1, g)},
            {"unmap unaligned size", (Op) () -> x.t.unmap(held, g + 1)},
            {"unmap wraps around", (Op) () -> x.t.unmap(-g, 2 * g)},
            {"unmap beyond the input space", (Op) () -> x.t.unmap(x.top, g)},
        };
        for (Object[] bad : cases) {
            String what = c + ": " + bad[0];
            assertErrno(Errno.EINVAL, (Op) bad[1], what);
            assertEquals(state, x.state(), what + " changed the table frames");
            assertEquals(pa, x.t.iovaToPhys(held), what + " changed a mapping");
            assertEquals(-1, x.t.iovaToPhys(y), what + " mapped something");
            assertEquals(-1, x.t.iovaToPhys(y + g));
            assertTrue(x.flush.calls.isEmpty(), what + " flushed " + x.flush.calls);
        }
    }

    /**
     * A physical range that wraps around 2^64 (pa = -granule, size = 2 granules) is as invalid as an
     * IOVA range that does: the last byte 0x...fff is not above pa when compared signed.
     */
    @ParameterizedTest(name = "{0}")
    @MethodSource("formats")
    void physicalRangeWrappingAroundFailsWithEinval(Case c) throws Exception {
        Fx x = new Fx(c);
        long g = x.g;
        long y = x.top / 4;
        long state = x.state();
        assertErrno(Errno.EINVAL, () -> x.t.map(y, -g, 2 * g, RW),
                String.format("%s: map(iova 0x%x, pa 0x%x, size 0x%x) wraps the physical range", c, y, -g, 2 * g));
        assertEquals(state, x.state());
        assertEquals(-1, x.t.iovaToPhys(y));
        assertEquals(-1, x.t.iovaToPhys(y + g));
    }

    // ---- flush ops ----------------------------------------------------------------------------------

    @ParameterizedTest(name = "{0}")
    @MethodSource("formats")
    void flushOpsReportLeavesAndFreedTables(Case c) throws Exception {
        Fx x = new Fx(c);
        long g = x.g;
        long pa = c.paBase();
        long iova = x.top / 2;
        boolean tables = c.format().levels() > 1;
        x.t.map(iova, pa, 2 * g, RW);
        assertTrue(x.flush.calls.isEmpty(), c + ": map flushed " + x.flush.calls);

        assertEquals(g, x.t.unmap(iova, g));
        assertEquals(List.of(RecordingFlush.leaves(iova, g, g)), x.flush.calls, c + ": table still in use");
        x.flush.calls.clear();

        assertEquals(g, x.t.unmap(iova + g, g));
        List<String> expected = new ArrayList<>();
        expected.add(RecordingFlush.leaves(iova + g, g, g));
        if (tables) {
            expected.add(RecordingFlush.walk(iova + g, g));
        }
        assertEquals(expected, x.flush.calls, c + ": last page of its table");
        x.flush.calls.clear();

        assertEquals(0, x.t.unmap(iova, 2 * g));
        assertTrue(x.flush.calls.isEmpty(), c + ": an empty unmap flushed " + x.flush.calls);

        // A large page and a granule page removed together: the smallest granule is reported.
        List<Long> sizes = c.pageSizes();
        long big = 0;
        for (long s : sizes) {
            if (s > g && 4 * s <= x.top) {
                big = s;
            }
        }
        if (big > 0) {
            x.t.map(big, pa, big + g, RW); // a big page at big, a granule page at 2 big
            x.flush.calls.clear();
            assertEquals(big + g, x.t.unmap(big, big + g));
            expected = new ArrayList<>();
            expected.add(RecordingFlush.leaves(big, big + g, g));
            expected.add(RecordingFlush.walk(big, big + g));
            assertEquals(expected, x.flush.calls, c + ": mixed page sizes");
            x.flush.calls.clear();

            x.t.map(big, pa, big, RW);
            x.t.map(3 * big, pa, g, RW); // keeps the tables above the big page alive for 4K formats
            x.flush.calls.clear();
            assertEquals(big, x.t.unmap(big, big));
            assertEquals(RecordingFlush.leaves(big, big, big), x.flush.calls.get(0), c + ": large page granule");
        }
        x.assertUnmapped(big, g);
    }

    // ---- permissions ------------------------------------------------------------------------------

    @ParameterizedTest(name = "{0}")
    @MethodSource("formats")
    void permissionsThroughTheWalker(Case c) throws Exception {
        Fx x = new Fx(c);
        long g = x.g;
        long pa = c.paBase();
        long ro = x.top / 2;
        long rw = ro + 2 * g;
        long rx = ro + 4 * g;
        x.t.map(ro, pa, g, RO);
        x.t.map(rw, pa + g, g, RW);
        x.t.map(rx, pa + 2 * g, g, RO | IommuDomain.PROT_EXEC);
        int priv = Access.PRIV;

        assertTrue(x.walk(ro, Access.READ | priv), c + ": " + x.r);
        assertFalse(x.walk(ro, Access.WRITE | priv), c + ": write to a read-only mapping");
        assertEquals(WalkFault.WRITE, x.r.fault(), c + ": " + x.r);
        assertEquals(FaultKind.PERMISSION, x.r.faultKind());
        assertEquals(c.format().stage(), x.r.faultStage());
        assertEquals(ro, x.r.faultAddress());
        assertFalse(x.walk(ro, Access.READ | Access.WRITE | priv));
        assertEquals(WalkFault.WRITE, x.r.fault(), c + ": " + x.r);
        assertTrue(x.walk(rw, Access.READ | Access.WRITE | priv), c + ": " + x.r);

        if (c.execControl()) {
            assertFalse(x.walk(rw, Access.READ | Access.EXEC | priv), c + ": exec of a no-exec mapping");
            assertEquals(WalkFault.EXEC, x.r.fault(), c + ": " + x.r);
            assertEquals(FaultKind.PERMISSION, x.r.faultKind());
        } else {
            assertTrue(x.walk(rw, Access.READ | Access.EXEC | priv), c + ": exec is not controlled: " + x.r);
        }
        assertTrue(x.walk(rx, Access.READ | Access.EXEC | priv), c + ": exec of an exec mapping: " + x.r);

        if (c.userAccess()) {
            assertTrue(x.walk(rw, Access.READ | Access.WRITE), c + ": unprivileged: " + x.r);
            assertTrue(x.walk(rx, Access.READ | Access.EXEC), c + ": unprivileged exec: " + x.r);
        } else {
            assertFalse(x.walk(rw, Access.READ), c + ": unprivileged read of a supervisor page");
            assertEquals(WalkFault.PRIVILEGE, x.r.fault(), c + ": " + x.r);
            assertEquals(FaultKind.PERMISSION, x.r.faultKind());
            assertTrue(x.walk(rw, Access.READ | priv), c + ": " + x.r);
        }
        // Permission faults leave the walk's leaf in place: nothing is unmapped by looking.
        assertEquals(pa, x.t.iovaToPhys(ro));
    }

    // ---- ENOMEM -------------------------------------------------------------------------------

    /** Frames the tables below the root need for one granule page at a fresh address. */
    static long pathFrames(PageTableFormat f) {
        long n = 0;
        for (int d = 1; d < f.levels(); d++) {
            n += Math.max(1, (f.tableBytes(d) + 4095) / 4096);
        }
        return n;
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("formats")
    void enomemOnTheFirstPageLeavesNothing(Case c) throws Exception {
        long need = pathFrames(c.format());
        assumeTrue(need > 0, "a one-level table needs no table frames");
        Fx x = new Fx(c, c.rootFrames() + need - 1);
        long g = x.g;
        long iova = x.top / 2;
        long before = x.pool.allocatedFrames();
        assertErrno(Errno.ENOMEM, () -> x.t.map(iova, c.paBase(), 4 * g, RW), c + ": map with a frame short");
        x.assertUnmapped(iova, 4 * g);
        assertEquals(before, x.pool.allocatedFrames(), c + ": frames leaked by a failed map");
        assertEquals(c.rootFrames(), x.t.tableFrames(), c + ": tableFrames after a failed map");
        // Nothing half-made is left: unmapping everything finds no page.
        assertEquals(0, x.t.unmap(0, x.top));
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("formats")
    void enomemMidwayUnwindsEverything(Case c) throws Exception {
        PageTableFormat f = c.format();
        long need = pathFrames(f);
        assumeTrue(f.levels() >= 3, "needs two table levels below the root");
        // Enough for the first page's path and the next page's first table, not its second.
        long first = Math.max(1, (f.tableBytes(1) + 4095) / 4096);
        Fx x = new Fx(c, c.rootFrames() + need + first);
        long g = x.g;
        long edge = 1L << f.indexShift(0); // the second root entry: a fresh path
        assumeTrue(edge + g <= x.top);
        long before = x.pool.allocatedFrames();
        assertErrno(Errno.ENOMEM, () -> x.t.map(edge - g, c.paBase(), 2 * g, RW), c + ": map across a root entry");
        x.assertUnmapped(edge - g, 2 * g);
        assertEquals(before, x.pool.allocatedFrames(), c + ": frames leaked by a failed map");
        assertEquals(c.rootFrames(), x.t.tableFrames(), c + ": tableFrames after a failed map");
    }
}
