package org.iommulab.bench;

import java.util.Map;
import java.util.concurrent.TimeUnit;

import org.iommulab.api.dto.WalkStepDTO;
import org.iommulab.api.translation.Access;
import org.iommulab.api.translation.Translation;
import org.iommulab.platform.internal.memory.SparseMemory;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;

/**
 * B2: a nested translation that misses the IOTLB (one entry, alternating pages) while the
 * configuration caches hit: the 2-D walk of 4 x 4 levels (24 entry reads), against the same number
 * of dependent 8-byte reads from platform memory.
 */
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.NANOSECONDS)
@State(Scope.Thread)
public class WalkBench {
    @Param({"vtd", "smmuv3"})
    public String vendor;

    NestedFixture fixture;
    final Translation t = new Translation();
    int page;
    /** Entry reads of one walk, as the unit's explain shows them. */
    int reads;
    SparseMemory chainMemory;
    long chainStart;

    @Setup
    public void setUp() throws Exception {
        Map<String, String> tiny = vendor.equals("vtd")
                ? Map.of("iotlb-size", "1", "pasid-cache-size", "1", "context-cache-size", "1")
                : Map.of("tlb-size", "1", "config-cache-size", "2"); // the STE and the CD stay cached
        fixture = new NestedFixture(vendor, 64 * NestedFixture.MB, 2, tiny);
        reads = 0;
        for (WalkStepDTO step : fixture.iommu.explain(NestedFixture.RID, fixture.pasid, NestedFixture.GVA, Access.READ)) {
            // Table entries of the two stages only: the configuration structures stay cached.
            reads += step.stage.startsWith("STAGE") ? 1 : 0;
        }
        // The baseline: a chain of as many dependent reads, one per page, as the walk makes.
        chainMemory = new SparseMemory(52);
        chainStart = 0x10_0000;
        for (int i = 0; i < reads; i++) {
            chainMemory.write64(chainStart + i * 4096L + 8 * (i % 512), chainStart + (i + 1) * 4096L + 8 * ((i + 1) % 512));
        }
    }

    @Benchmark
    public long nestedWalk() {
        page ^= 1; // two pages, one IOTLB entry: every translation walks
        fixture.iommu.translate(NestedFixture.RID, fixture.pasid, NestedFixture.GVA + page * 4096L, Access.READ, t);
        return t.outputAddress();
    }

    @Benchmark
    public long baselineDependentReads() {
        long a = chainStart;
        for (int i = 0; i < reads; i++) {
            a = chainMemory.read64(a);
        }
        return a;
    }
}
