package org.iommulab.bench;

import java.util.concurrent.TimeUnit;

import org.iommulab.api.spi.IommuDomain;
import org.iommulab.api.vfio.VfioContainer;
import org.iommulab.api.vfio.VfioIommuType;
import org.iommulab.pgtable.FlushOps;
import org.iommulab.pgtable.IoPageTable;
import org.iommulab.pgtable.format.VtdSecondStage;
import org.iommulab.platform.internal.memory.FramePool;
import org.iommulab.platform.internal.memory.SparseMemory;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;

/**
 * B4: mapping and unmapping 1 GiB, as 4 KiB pages and as 2 MiB leaves, in a VT-d second-stage
 * table, against writing as many 8-byte entries into platform memory; and VFIO MAP_DMA +
 * UNMAP_DMA of 1 GiB of a process's memory.
 */
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MILLISECONDS)
public class MapBench {
    static final long GIB = 1L << 30;

    /** A second-stage table limited to one page size. */
    @State(Scope.Thread)
    public static class Table {
        @Param({"4096", "2097152", "1073741824"})
        public long pageSize;
        SparseMemory memory;
        IoPageTable table;
        long entries;

        @Setup(Level.Trial)
        public void setUp() throws Exception {
            memory = new SparseMemory(52);
            FramePool pool = new FramePool(memory, 1L << 40, 1 << 20);
            VtdSecondStage format = VtdSecondStage.of(2, 48, true, true, false, false);
            table = IoPageTable.create(format, memory, pool, FlushOps.NONE, pageSize | 4096);
            entries = GIB / pageSize;
        }
    }

    @Benchmark
    public long mapUnmap1GiB(Table t) throws Exception {
        t.table.map(0, 0x40_0000_0000L, GIB, IommuDomain.PROT_READ | IommuDomain.PROT_WRITE);
        return t.table.unmap(0, GIB);
    }

    /** The entry writes map + unmap make: every leaf written, then cleared. */
    @Benchmark
    public long baselineEntryWrites(Table t) {
        for (long i = 0; i < t.entries; i++) {
            t.memory.write64(0x100_0000 + 8 * i, i);
        }
        for (long i = 0; i < t.entries; i++) {
            t.memory.write64(0x100_0000 + 8 * i, 0);
        }
        return t.entries;
    }

    /** A VFIO container whose owner has 1 GiB of touched memory. */
    @State(Scope.Thread)
    public static class Vfio {
        VfioContainer container;
        long vaddr;

        @Setup(Level.Trial)
        public void setUp() throws Exception {
            org.iommulab.vfio.internal.VfioStack stack = new org.iommulab.vfio.internal.VfioStack();
            var iommu = stack.instance("vtd", "vtd0");
            var dev = stack.device("dev0", iommu, 0x10, 0);
            var process = stack.process("vm");
            vaddr = process.mmap(GIB);
            for (long off = 0; off < GIB; off += 4096) {
                process.pin(vaddr + off); // fault in ...
                process.unpin(process.residentAddress(vaddr + off)); // ... and let go: MAP_DMA pins again
            }
            container = stack.container(process, dev.groupId(), VfioIommuType.TYPE1V2);
        }
    }

    @Benchmark
    public long vfioMapUnmap1GiB(Vfio v) throws Exception {
        v.container.mapDma(v.vaddr, 0, GIB, VfioContainer.DMA_MAP_FLAG_READ | VfioContainer.DMA_MAP_FLAG_WRITE);
        return v.container.unmapDma(0, GIB, 0);
    }
}
