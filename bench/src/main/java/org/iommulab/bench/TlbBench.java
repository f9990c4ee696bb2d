package org.iommulab.bench;

import java.util.concurrent.TimeUnit;

import org.iommulab.pgtable.tlb.Tlb;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;

/**
 * B5: invalidating one page of a full IOTLB, with the default 4096 entries and with 256 (16x
 * fewer): the cost must not grow with the cache.
 */
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.NANOSECONDS)
@State(Scope.Thread)
public class TlbBench {
    @Param({"4096", "256"})
    public int entries;

    Tlb tlb;
    int page;

    @Setup
    public void setUp() {
        tlb = new Tlb("bench", entries);
        for (int p = 0; p < entries; p++) {
            tlb.insert(1, 5, p * 4096L, 12, 0x4000_0000L + p * 4096L, 3, 0, true);
        }
    }

    @Benchmark
    public long invalidateOnePage() {
        page = (page + 1) & (entries - 1);
        long address = page * 4096L;
        // Invalidate, then put the page back: the IOTLB stays full, so every call finds as many entries.
        long removed = tlb.invalidateRange(1, 5, address, 4096, true);
        tlb.insert(1, 5, address, 12, 0x4000_0000L + address, 3, 0, true);
        return removed;
    }
}
