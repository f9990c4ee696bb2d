package org.iommulab.vtd.internal.hw;

import static org.iommulab.vtd.internal.hw.PageTables.SL_R;
import static org.iommulab.vtd.internal.hw.PageTables.SL_W;
import static org.iommulab.vtd.internal.hw.VtdRig.DATA;
import static org.iommulab.vtd.internal.hw.VtdRig.FECTL;
import static org.iommulab.vtd.internal.hw.VtdRig.FSTS;
import static org.iommulab.vtd.internal.hw.VtdRig.ICS;
import static org.iommulab.vtd.internal.hw.VtdRig.IECTL;
import static org.iommulab.vtd.internal.hw.VtdRig.IEDATA;
import static org.iommulab.vtd.internal.hw.VtdRig.IM;
import static org.iommulab.vtd.internal.hw.VtdRig.IP;
import static org.iommulab.vtd.internal.hw.VtdRig.IQA;
import static org.iommulab.vtd.internal.hw.VtdRig.IQA_DW;
import static org.iommulab.vtd.internal.hw.VtdRig.IQE;
import static org.iommulab.vtd.internal.hw.VtdRig.IQH;
import static org.iommulab.vtd.internal.hw.VtdRig.IQT;
import static org.iommulab.vtd.internal.hw.VtdRig.IQ_BASE;
import static org.iommulab.vtd.internal.hw.VtdRig.IWC;
import static org.iommulab.vtd.internal.hw.VtdRig.QIE;
import static org.iommulab.vtd.internal.hw.VtdRig.STATUS;
import static org.iommulab.vtd.internal.hw.VtdRig.contextCacheDesc;
import static org.iommulab.vtd.internal.hw.VtdRig.iotlbDesc;
import static org.iommulab.vtd.internal.hw.VtdRig.pasidCacheDesc;
import static org.iommulab.vtd.internal.hw.VtdRig.pasidIotlbDesc;
import static org.iommulab.vtd.internal.hw.VtdRig.waitDesc;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.stream.Stream;

import org.junit.jupiter.api.Named;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;
import org.junit.jupiter.params.provider.ValueSource;

/** Queued invalidation (VT-d §6.5.2, §11.4.10): the queue registers, wait descriptors, errors. */
class VtdQueueTest {
    static final int S = 0x0010;

    @Test
    void waitDescriptorWithSwWritesTheStatusData() {
        VtdRig r = new VtdRig();
        r.enable();
        assertTrue(r.waitDescriptor(STATUS + 0x40, 0x1234_5678));
        assertEquals(16, r.reg64(IQT));
        assertEquals(16, r.reg64(IQH), "IQH caught up with IQT");
        r.mem.write32(STATUS + 0x44, 7);
        r.submit(waitDesc(false, false, 0x99, STATUS + 0x44));
        assertEquals(7, r.mem.read32(STATUS + 0x44), "without SW nothing is written");
        assertEquals(32, r.reg64(IQH));
    }

    @Test
    void queueRegistersReadBack() {
        VtdRig r = new VtdRig();
        r.w64(IQA, IQ_BASE | IQA_DW | 2);
        assertEquals(IQ_BASE | IQA_DW | 2, r.reg64(IQA));
        r.w64(IQA, IQ_BASE);
        assertEquals(IQ_BASE, r.reg64(IQA));
        r.w64(IQT, 0x30);
        assertEquals(0x30, r.reg64(IQT));
        assertEquals(0, r.reg64(IQH), "nothing processed while QI is disabled");
        r.w64(IQH, 0x50);
        assertEquals(0, r.reg64(IQH), "IQH is read-only");
    }

    @Test
    void interruptFlagSetsIwcAndIectlPending() {
        VtdRig r = new VtdRig();
        r.enable();
        assertEquals(IM, (int) r.reg32(IECTL), "IECTL after reset: IM set");
        r.submit(waitDesc(false, true, 0, 0));
        assertEquals(IWC, r.reg32(ICS), "ICS.IWC");
        assertEquals(IM | IP, (int) r.reg32(IECTL), "masked: IP set");
        assertEquals(0, r.hw.statistics().get("qi-wait-interrupts"));
        r.w32(IECTL, 0);
        assertEquals(0, (int) r.reg32(IECTL), "unmasking delivers the pending event");
        assertEquals(1, r.hw.statistics().get("qi-wait-interrupts"));
        r.w32(ICS, 0);
        assertEquals(IWC, r.reg32(ICS), "writing 0 keeps IWC");
        r.w32(ICS, IWC);
        assertEquals(0, r.reg32(ICS), "IWC is write-1-to-clear");
        r.submit(waitDesc(true, true, 0x55, STATUS));
        assertEquals(0x55, r.mem.read32(STATUS), "SW and IF together");
        assertEquals(IWC, r.reg32(ICS));
        assertEquals(0, (int) r.reg32(IECTL), "unmasked: delivered at once");
        assertEquals(2, r.hw.statistics().get("qi-wait-interrupts"));
        r.w32(IEDATA, 0x41);
        assertEquals(0x41, r.reg32(IEDATA));
    }

    /**
     * §11.4.10.5 IECTL.IP: hardware clears IP when software services the interrupt condition by
     * clearing ICS.IWC (QEMU {@code vtd_handle_ics_write}).
     */
    @Test
    void clearingIwcClearsIectlIp() {
        VtdRig r = new VtdRig();
        r.enable();
        r.submit(waitDesc(false, true, 0, 0));
        assertEquals(IM | IP, (int) r.reg32(IECTL));
        r.w32(ICS, IWC);
        assertEquals(IM, (int) r.reg32(IECTL), "IP still pending after IWC was serviced");
    }

    /**
     * §11.4.10.5 IECTL.IP: a wait descriptor with IF completing while ICS.IWC is still set is not a
     * new interrupt condition.
     */
    @Test
    void interruptFlagWhileIwcIsSetIsNotANewInterruptCondition() {
        VtdRig r = new VtdRig();
        r.enable();
        r.submit(waitDesc(false, true, 0, 0));
        r.w32(IECTL, 0); // deliver
        r.w32(IECTL, IM);
        r.submit(waitDesc(false, true, 0, 0)); // IWC still set
        assertEquals(IM, (int) r.reg32(IECTL), "IP set although IWC was already set");
    }

    @Test
    void wideDescriptors() {
        VtdRig r = new VtdRig();
        PageTables ss = r.secondStage(2);
        long leaf = ss.map(0x1000, DATA);
        r.secondStageDevice(S, 1, ss);
        r.enable(true, 0);
        assertEquals(IQ_BASE | IQA_DW, r.reg64(IQA));
        assertEquals(DATA, r.read(S, 0x1000));
        r.mem.write64(leaf, DATA + 0x5000 | SL_R | SL_W);
        assertEquals(DATA, r.read(S, 0x1000));
        r.submit(iotlbDesc(1, 0, 0, 0, false));
        assertEquals(32, r.reg64(IQH), "a 256-bit descriptor is 32 bytes");
        assertEquals(DATA + 0x5000, r.read(S, 0x1000));
        assertTrue(r.waitDescriptor(STATUS, 0xabcd));
        assertEquals(64, r.reg64(IQT));
        assertEquals(64, r.reg64(IQH));
        // 128 slots of 32 bytes: go around twice.
        for (int i = 0; i < 300; i++) {
            assertTrue(r.waitDescriptor(STATUS + 4 * (i % 64), i));
        }
        assertEquals((302 * 32) % 4096, r.reg64(IQH));
    }

    @ParameterizedTest
    @ValueSource(ints = {0, 1})
    void queueWrapsAround(int qs) {
        VtdRig r = new VtdRig();
        r.enable(false, qs);
        int slots = (4096 << qs) / 16;
        int total = slots + slots / 2 + 7;
        int done = 0;
        int batch = 1;
        while (done < total) {
            int n = Math.min(batch, total - done);
            long[][] d = new long[n][];
            for (int i = 0; i < n; i++) {
                int k = done + i;
                d[i] = waitDesc(true, false, k + 1, STATUS + 4L * (k % 1024));
            }
            r.submit(d);
            for (int i = 0; i < n; i++) {
                int k = done + i;
                assertEquals(k + 1, r.mem.read32(STATUS + 4L * (k % 1024)), "descriptor " + k);
            }
            done += n;
            assertEquals((done * 16L) % (4096 << qs), r.reg64(IQH), "IQH after " + done);
            batch = batch % 13 + 1;
        }
        assertEquals(r.reg64(IQT), r.reg64(IQH));
    }

    static Stream<Named<long[]>> invalidDescriptors() {
        return Stream.of(
                Named.of("type 0", new long[] {0, 0}),
                Named.of("type 15", new long[] {0xf, 0}),
                Named.of("type 16 (qw0 bit 9)", new long[] {1L << 9, 0}),
                Named.of("context cache G=0", contextCacheDesc(0, 1, S, 0)),
                Named.of("IOTLB G=0", iotlbDesc(0, 1, 0, 0, false)),
                Named.of("PASID-based IOTLB G=0", pasidIotlbDesc(0, 1, 5, 0, 0, false)),
                Named.of("PASID-based IOTLB G=1", pasidIotlbDesc(1, 1, 5, 0, 0, false)),
                Named.of("PASID cache G=2", pasidCacheDesc(2, 1, 5)),
                Named.of("page-selective IOTLB, address not aligned to AM", iotlbDesc(3, 1, 0x1000, 1, false)),
                Named.of("page-selective IOTLB, AM beyond MAMV", iotlbDesc(3, 1, 0, 19, false)),
                Named.of("page-selective PASID IOTLB, address not aligned to AM", pasidIotlbDesc(3, 1, 5, 0x3000, 2, false)));
    }

    @ParameterizedTest
    @MethodSource("invalidDescriptors")
    void invalidDescriptorStopsTheQueueUntilIqeIsCleared(long[] bad) {
        VtdRig r = new VtdRig();
        r.enable();
        r.submit(waitDesc(true, false, 1, STATUS), bad, waitDesc(true, false, 2, STATUS + 4));
        assertEquals(1, r.mem.read32(STATUS), "the descriptor before the bad one ran");
        assertEquals(IQE, r.fsts() & IQE, "FSTS.IQE");
        assertEquals(16, r.reg64(IQH), "IQH stops at the bad descriptor");
        assertNotEquals(2, r.mem.read32(STATUS + 4), "the descriptor after it did not run");
        // More work queued, IQT written again: still stopped.
        r.submit(waitDesc(true, false, 3, STATUS + 8));
        assertEquals(16, r.reg64(IQH));
        assertNotEquals(3, r.mem.read32(STATUS + 8));
        // Clearing IQE alone does not restart it; with the bad descriptor still there, the next IQT
        // write stops at it again.
        r.w32(FSTS, IQE);
        assertEquals(0, r.fsts() & IQE, "IQE is write-1-to-clear");
        r.w64(IQT, r.tail());
        assertEquals(IQE, r.fsts() & IQE, "the same descriptor fails again");
        assertEquals(16, r.reg64(IQH));
        // Software replaces it with a harmless wait, clears IQE and writes IQT.
        r.mem.write64(IQ_BASE + 16, waitDesc(false, false, 0, 0)[0]);
        r.mem.write64(IQ_BASE + 24, 0);
        r.w32(FSTS, IQE);
        r.w64(IQT, r.tail());
        assertEquals(0, r.fsts() & IQE);
        assertEquals(2, r.mem.read32(STATUS + 4));
        assertEquals(3, r.mem.read32(STATUS + 8));
        assertEquals(r.reg64(IQT), r.reg64(IQH));
    }

    @Test
    void descriptorFetchErrorSetsIqe() {
        VtdRig r = new VtdRig();
        r.w64(IQA, 0xf0_0000_0000L); // nothing there
        r.command(QIE, true);
        r.w64(IQT, 0x10);
        assertEquals(IQE, r.fsts() & IQE);
        assertEquals(0, r.reg64(IQH));
    }

    @Test
    void enablingQiResetsIqh() {
        VtdRig r = new VtdRig();
        r.enable();
        r.submit(waitDesc(false, false, 0, 0), waitDesc(false, false, 0, 0), waitDesc(false, false, 0, 0));
        assertEquals(0x30, r.reg64(IQH));
        r.command(QIE, false);
        r.enableQueue(false, 0); // IQT 0, IQA, QIE: checks IQH == 0
        assertTrue(r.waitDescriptor(STATUS, 77));
        assertEquals(16, r.reg64(IQH));
    }

    /**
     * §11.4.10.2 IQT: a tail at or beyond the queue size is an invalid tail and an invalidation queue
     * error (QEMU {@code vtd_fetch_inv_desc}: "detected invalid QI tail").
     */
    @Test
    void tailBeyondTheQueueIsAnError() {
        VtdRig r = new VtdRig();
        r.enable(false, 0); // 4 KiB queue
        r.w64(IQT, 0x1000);
        assertEquals(IQE, r.fsts() & IQE, "IQT 0x1000 is beyond a 4 KiB queue");
    }

    /**
     * §11.4.10.2 IQT: with 256-bit descriptors (IQA.DW = 1) bit 4 of IQT is reserved and a 1 in it is
     * an invalidation queue error.
     */
    @Test
    void misalignedTailWithWideDescriptorsIsAnError() {
        VtdRig r = new VtdRig();
        r.enable(true, 0);
        r.place(waitDesc(true, false, 5, STATUS));
        r.w64(IQT, 0x10);
        assertEquals(IQE, r.fsts() & IQE, "IQT bit 4 set with DW = 1");
    }

    /**
     * §11.4.9.2 FECTL.IP: setting FSTS.IQE is a fault event condition; with IM set it is held pending
     * in FECTL.IP (QEMU {@code vtd_handle_inv_queue_error}).
     */
    @Test
    void queueErrorRaisesAFaultEvent() {
        VtdRig r = new VtdRig();
        r.enable();
        r.submit(new long[] {0, 0});
        assertEquals(IQE, r.fsts() & IQE);
        assertEquals(IM | IP, (int) r.reg32(FECTL), "IQE must set FECTL.IP while masked");
    }
}
