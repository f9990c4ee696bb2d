package org.iommulab.pgtable;

import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.lang.management.ManagementFactory;

import org.iommulab.api.memory.PhysicalMemory;
import org.iommulab.api.spi.IommuDomain;
import org.iommulab.api.translation.Access;
import org.iommulab.pgtable.format.ArmGranule;
import org.iommulab.pgtable.format.ArmStage1;
import org.iommulab.pgtable.format.ArmStage2;
import org.iommulab.pgtable.format.VtdSecondStage;
import org.iommulab.pgtable.format.X86FirstStage;
import org.iommulab.platform.internal.memory.FramePool;
import org.iommulab.platform.internal.memory.SparseMemory;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * The walker's promise that a walk allocates nothing (the caller's {@link WalkResult} holds all
 * state): measured with the JVM's per-thread allocation counter.
 */
class WalkAllocationTest {
    static final int WARMUP = 20_000;
    static final int WALKS = 100_000;
    /** A per-walk allocation of even 16 bytes would show as 1.6 MB. */
    static final long BUDGET = 100_000;
    static final int RW = IommuDomain.PROT_READ | IommuDomain.PROT_WRITE;
    static final long[] IOVAS = {0x4000_0000L, 0x4000_1000L, 0x4020_0000L, 0x4123_4000L};

    com.sun.management.ThreadMXBean bean;

    @BeforeEach
    void measurable() {
        java.lang.management.ThreadMXBean b = ManagementFactory.getThreadMXBean();
        assumeTrue(b instanceof com.sun.management.ThreadMXBean, "no com.sun.management.ThreadMXBean");
        bean = (com.sun.management.ThreadMXBean) b;
        assumeTrue(bean.isThreadAllocatedMemorySupported(), "thread allocation measurement unsupported");
        if (!bean.isThreadAllocatedMemoryEnabled()) {
            bean.setThreadAllocatedMemoryEnabled(true);
        }
        assumeTrue(bean.isThreadAllocatedMemoryEnabled(), "thread allocation measurement disabled");
    }

    interface WalkLoop {
        /** Runs {@code n} walks; returns how many succeeded. */
        int run(int n);
    }

    void assertAllocationFree(String what, WalkLoop loop) {
        assertTrue(loop.run(WARMUP) == WARMUP, what + ": the warm-up walks must succeed");
        long id = Thread.currentThread().getId();
        long before = bean.getThreadAllocatedBytes(id);
        int ok = loop.run(WALKS);
        long allocated = bean.getThreadAllocatedBytes(id) - before;
        assertTrue(ok == WALKS, what + ": " + ok + " of " + WALKS + " walks succeeded");
        assertTrue(allocated < BUDGET, what + ": " + WALKS + " walks allocated " + allocated + " bytes ("
                + (allocated / WALKS) + " per walk)");
    }

    static IoPageTable table(PageTableFormat f, SparseMemory mem, FramePool pool) throws Exception {
        IoPageTable t = IoPageTable.create(f, mem, pool, FlushOps.NONE);
        for (long iova : IOVAS) {
            t.map(iova, 0x8_0000_0000L + iova, 1L << f.granuleShift(), RW);
        }
        return t;
    }

    static WalkLoop single(PhysicalMemory mem, PageTableFormat f, long root) {
        WalkResult r = new WalkResult();
        return n -> {
            int ok = 0;
            for (int i = 0; i < n; i++) {
                if (Walker.walk(mem, f, root, IOVAS[i & 3] | (i & 0xff8), Access.READ | Access.PRIV, false, r)) {
                    ok++;
                }
            }
            return ok;
        };
    }

    /** Stage 2 identity-maps the stage-1 tables and the stage-1 output. */
    static WalkLoop nested(SparseMemory mem, FramePool pool, PageTableFormat s1, PageTableFormat s2) throws Exception {
        IoPageTable t1 = IoPageTable.create(s1, mem, pool, FlushOps.NONE);
        IoPageTable t2 = IoPageTable.create(s2, mem, pool, FlushOps.NONE);
        for (long iova : IOVAS) {
            t1.map(iova, 0x1_0000_0000L + iova, 1L << s1.granuleShift(), RW);
            t2.map(0x1_0000_0000L + iova, 0x8_0000_0000L + iova, 1L << s2.granuleShift(), RW);
        }
        // The stage-1 tables were allocated from the pool: identity map the pool's first frames.
        t2.map(pool.poolBase(), pool.poolBase(), 1L << 21, RW);
        WalkResult r = new WalkResult();
        return n -> {
            int ok = 0;
            for (int i = 0; i < n; i++) {
                if (Walker.walkNested(mem, s1, t1.root(), s2, t2.root(), IOVAS[i & 3] | (i & 0xff8),
                        Access.READ | Access.WRITE | Access.PRIV, true, r)) {
                    ok++;
                }
            }
            return ok;
        };
    }

    @Test
    void x86SingleStageWalksAllocateNothing() throws Exception {
        SparseMemory mem = new SparseMemory(52);
        FramePool pool = new FramePool(mem, 1L << 32, 1 << 12);
        PageTableFormat f = X86FirstStage.of(4, 52, true, true, true);
        assertAllocationFree(f.name(), single(mem, f, table(f, mem, pool).root()));
    }

    @Test
    void vtdSingleStageWalksAllocateNothing() throws Exception {
        SparseMemory mem = new SparseMemory(52);
        FramePool pool = new FramePool(mem, 1L << 32, 1 << 12);
        PageTableFormat f = VtdSecondStage.of(2, 48, true, true, false, true);
        assertAllocationFree(f.name(), single(mem, f, table(f, mem, pool).root()));
    }

    @Test
    void armSingleStageWalksAllocateNothing() throws Exception {
        SparseMemory mem = new SparseMemory(52);
        FramePool pool = new FramePool(mem, 1L << 32, 1 << 12);
        PageTableFormat f = ArmStage1.of(ArmGranule.G4K, 16, 48, false, false, false);
        assertAllocationFree(f.name(), single(mem, f, table(f, mem, pool).root()));
    }

    @Test
    void vtdNestedWalksAllocateNothing() throws Exception {
        SparseMemory mem = new SparseMemory(52);
        FramePool pool = new FramePool(mem, 1L << 32, 1 << 12);
        assertAllocationFree("x86 first stage over VT-d second stage", nested(mem, pool,
                X86FirstStage.of(4, 48, true, true, true), VtdSecondStage.of(2, 48, true, true, false, true)));
    }

    @Test
    void smmuNestedWalksAllocateNothing() throws Exception {
        SparseMemory mem = new SparseMemory(52);
        FramePool pool = new FramePool(mem, 1L << 32, 1 << 12);
        assertAllocationFree("Arm stage 1 over stage 2", nested(mem, pool,
                ArmStage1.of(ArmGranule.G4K, 16, 48, true, true, false),
                ArmStage2.of(ArmGranule.G4K, 20, 2, 48, true, true, false)));
    }
}
