package org.iommulab.bench;

import java.util.concurrent.TimeUnit;

import org.iommulab.api.idxd.Dsa;
import org.iommulab.api.idxd.WorkQueueConfig;
import org.iommulab.api.memory.PhysicalMemory;
import org.iommulab.idxd.internal.hw.DsaDevice;
import org.iommulab.idxd.internal.hw.DsaDriver;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;

/**
 * B3: a DSA MEMMOVE of 64 MiB through VT-d nested PASID translation (4 KiB guest pages, IOTLB warm),
 * against a bulk copy of the same bytes between the same host pages.
 */
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MILLISECONDS)
@State(Scope.Benchmark)
public class DsaBench {
    static final long SIZE = 64L << 20;
    static final int PAGES = (int) (SIZE / 4096);

    NestedFixture fixture;
    DsaDevice dsa;
    byte[] descriptor;
    long[] srcPages = new long[PAGES];
    long[] dstPages = new long[PAGES];
    PhysicalMemory host;
    /** Where the completion record lands, as the guest process's virtual address. */
    long record;

    @Setup(Level.Trial)
    public void setUp() throws Exception {
        // Source and destination: 2 x 64 MiB of 4 KiB guest pages from GVA; completion record after them.
        // An IOTLB that holds both buffers (32768 pages), so that a warm run walks nothing.
        fixture = new NestedFixture("vtd", 176 * NestedFixture.MB, 2L * PAGES + 1, java.util.Map.of("iotlb-size", "65536"));
        dsa = new DsaDevice("dsa0", fixture.iommu, NestedFixture.RID);
        DsaDriver driver = new DsaDriver(dsa);
        driver.configure(0, WorkQueueConfig.dedicated(4, fixture.pasid));
        driver.enableDevice();
        driver.enableWq(0);
        long src = NestedFixture.GVA;
        long dst = NestedFixture.GVA + SIZE;
        descriptor = Dsa.descriptor(Dsa.OP_MEMMOVE).addr1(src).addr2(dst).size(SIZE)
                .completion(NestedFixture.GVA + 2 * SIZE).build();
        host = fixture.iommu.memory();
        for (int p = 0; p < PAGES; p++) {
            srcPages[p] = fixture.vm.residentAddress(fixture.ram + NestedFixture.DATA_GPA + p * 4096L);
            dstPages[p] = fixture.vm.residentAddress(fixture.ram + NestedFixture.DATA_GPA + SIZE + p * 4096L);
        }
        record = fixture.ram + NestedFixture.DATA_GPA + 2 * SIZE;
        memmove(); // warm the IOTLB
    }

    @TearDown(Level.Trial)
    public void tearDown() {
        dsa.close();
    }

    /** One MEMMOVE; a descriptor that does not complete with Success stops the run. */
    @Benchmark
    public int memmove() throws Exception {
        fixture.vm.write64(record, 0);
        dsa.movdir64b(0, descriptor);
        dsa.awaitIdle(60_000);
        int status = (int) fixture.vm.read64(record) & 0xff;
        if (status != Dsa.COMP_SUCCESS) {
            throw new IllegalStateException("MEMMOVE completed with status 0x" + Integer.toHexString(status));
        }
        return status;
    }

    @Benchmark
    public long baselineBulkCopy() {
        for (int p = 0; p < PAGES; p++) {
            host.copy(srcPages[p], dstPages[p], 4096);
        }
        return PAGES;
    }
}
