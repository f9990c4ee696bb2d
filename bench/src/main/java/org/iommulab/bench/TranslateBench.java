package org.iommulab.bench;

import java.util.concurrent.TimeUnit;

import org.iommulab.api.translation.Access;
import org.iommulab.api.translation.Translation;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.Threads;

/**
 * B1 and B7: a nested translation that hits the IOTLB, on VT-d and SMMUv3, against a bare table
 * lookup; and its throughput with one and two threads on one instance.
 */
@BenchmarkMode(Mode.Throughput)
@OutputTimeUnit(TimeUnit.MICROSECONDS)
public class TranslateBench {
    /** Pages the threads cycle through: few enough to stay in the IOTLB. */
    static final int PAGES = 64;

    /** One nested setup per vendor, shared by the threads. */
    @State(Scope.Benchmark)
    public static class Unit {
        @Param({"vtd", "smmuv3"})
        public String vendor;
        NestedFixture fixture;

        @Setup
        public void setUp() throws Exception {
            fixture = new NestedFixture(vendor, 64 * NestedFixture.MB, PAGES);
            Translation t = new Translation();
            for (int p = 0; p < PAGES; p++) {
                if (!fixture.iommu.translate(NestedFixture.RID, fixture.pasid, NestedFixture.GVA + p * 4096L, Access.READ, t)) {
                    throw new IllegalStateException("the fixture does not translate: " + t);
                }
            }
        }
    }

    /** Each thread's own result holder and position. */
    @State(Scope.Thread)
    public static class Cursor {
        final Translation t = new Translation();
        int page;
    }

    /** The baseline: the same number of entries in a bare open-addressing table. */
    @State(Scope.Thread)
    public static class Table {
        final OpenTable table = new OpenTable(4096);
        int page;

        @Setup
        public void setUp() {
            for (int p = 0; p < 4096; p++) {
                table.put((NestedFixture.GVA >>> 12) + p, 0x4000_0000L + p * 4096L);
            }
        }
    }

    private static long translate(Unit unit, Cursor c) {
        c.page = (c.page + 1) & (PAGES - 1);
        unit.fixture.iommu.translate(NestedFixture.RID, unit.fixture.pasid, NestedFixture.GVA + c.page * 4096L + 8,
                Access.READ, c.t);
        return c.t.outputAddress();
    }

    @Benchmark
    @Threads(1)
    public long translateHit(Unit unit, Cursor c) {
        return translate(unit, c);
    }

    @Benchmark
    @Threads(2)
    public long translateHit2Threads(Unit unit, Cursor c) {
        return translate(unit, c);
    }

    @Benchmark
    @Threads(1)
    public long baselineTableLookup(Table t) {
        t.page = (t.page + 1) & (PAGES - 1);
        return t.table.get((NestedFixture.GVA >>> 12) + t.page);
    }
}
