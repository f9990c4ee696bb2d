package org.iommulab.idxd.internal.hw;

import static org.iommulab.idxd.internal.hw.GuestSpace.gva;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Arrays;
import java.util.Random;
import java.util.zip.CRC32C;

import org.iommulab.api.device.Requester;
import org.iommulab.api.idxd.Dsa;
import org.iommulab.api.idxd.Dsa.CompletionRecord;
import org.iommulab.api.idxd.SubmitStatus;
import org.iommulab.api.idxd.WorkQueueConfig;
import org.iommulab.api.spi.IommuInstance;
import org.iommulab.vfio.internal.VfioStack;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * Every opcode against expected memory contents, run as PASID-tagged DMA on a dedicated queue
 * through VT-d nested translation (GVA -> GPA -> HPA), plus the descriptor checks and SWERR.
 */
class DsaOperationsTest {
    static final long MB = 1 << 20;
    static final long SRC = 1 * MB;
    static final long DST = 4 * MB;
    static final long AUX = 8 * MB;
    static final long COMP = 12 * MB;

    VfioStack stack = new VfioStack();
    IommuInstance vtd;
    DsaDevice dev;
    DsaDriver driver;
    GuestSpace g;
    final Random random = new Random(1);

    @BeforeEach
    void setUp() throws Exception {
        vtd = stack.instance("vtd", "vtd0");
        Requester r = stack.device("dsa0", vtd, 0x10, 20);
        dev = new DsaDevice("dsa0", vtd, 0x10);
        driver = new DsaDriver(dev);
        g = new GuestSpace(stack, r, "vm1", 32 * MB, 4 * MB).map(0, 16 * MB, true);
        driver.configure(0, WorkQueueConfig.dedicated(16, g.pasid));
        driver.enableDevice();
        driver.enableWq(0);
    }

    @AfterEach
    void tearDown() {
        dev.close();
    }

    byte[] randomBytes(int n) {
        byte[] b = new byte[n];
        random.nextBytes(b);
        return b;
    }

    /** Submits on the dedicated queue, waits, and returns the completion record at COMP. */
    CompletionRecord run(Dsa.Builder d) throws Exception {
        g.write(COMP, new byte[32]);
        assertEquals(SubmitStatus.ACCEPTED, dev.movdir64b(0, d.completion(gva(COMP)).build()));
        assertTrue(dev.awaitIdle(10_000));
        return CompletionRecord.decode(g.read(COMP, 32));
    }

    @Test
    void memmoveCopiesAcrossPagesAndOverlapsAsMemmove() throws Exception {
        byte[] data = randomBytes(3 * 4096 + 100);
        g.write(SRC + 7, data);
        CompletionRecord c = run(Dsa.descriptor(Dsa.OP_MEMMOVE).addr1(gva(SRC + 7)).addr2(gva(DST + 1)).size(data.length));
        assertEquals(Dsa.COMP_SUCCESS, c.status(), c.toString());
        assertArrayEquals(data, g.read(DST + 1, data.length));

        // Destination 100 bytes above an overlapping source: copied from the top, result bit 0 set.
        c = run(Dsa.descriptor(Dsa.OP_MEMMOVE).addr1(gva(SRC + 7)).addr2(gva(SRC + 107)).size(data.length));
        assertEquals(Dsa.COMP_SUCCESS, c.status());
        assertEquals(1, c.result(), "copied high to low");
        assertArrayEquals(data, g.read(SRC + 107, data.length));
    }

    @Test
    void fillRepeatsThePattern() throws Exception {
        CompletionRecord c = run(Dsa.descriptor(Dsa.OP_MEMFILL).addr1(0x0123_4567_89ab_cdefL).addr2(gva(DST + 3)).size(5000));
        assertEquals(Dsa.COMP_SUCCESS, c.status());
        byte[] got = g.read(DST + 3, 5000);
        for (int i = 0; i < 5000; i++) {
            assertEquals((byte) (0x0123_4567_89ab_cdefL >>> (8 * (i % 8))), got[i], "byte " + i);
        }
    }

    @Test
    void compareReportsTheFirstDifferenceAndCheckResult() throws Exception {
        byte[] data = randomBytes(9000);
        g.write(SRC, data);
        g.write(DST, data);
        CompletionRecord c = run(Dsa.descriptor(Dsa.OP_COMPARE).addr1(gva(SRC)).addr2(gva(DST)).size(9000));
        assertEquals(Dsa.COMP_SUCCESS, c.status());
        assertEquals(0, c.result());
        g.write(DST + 5000, new byte[] {(byte) ~data[5000]});
        c = run(Dsa.descriptor(Dsa.OP_COMPARE).addr1(gva(SRC)).addr2(gva(DST)).size(9000));
        assertEquals(1, c.result());
        assertEquals(5000, c.bytesCompleted(), "offset of the first difference");
        c = run(Dsa.descriptor(Dsa.OP_COMPARE).flags(Dsa.FLAG_CR).addr1(gva(SRC)).addr2(gva(DST)).size(9000).op(40, 0, 1));
        assertEquals(Dsa.COMP_SUCCESS_PRED, c.status(), "expected equal, found different: false predicate");
    }

    @Test
    void compareValueChecksAgainstThePattern() throws Exception {
        long pattern = 0x1122_3344_5566_7788L;
        run(Dsa.descriptor(Dsa.OP_MEMFILL).addr1(pattern).addr2(gva(SRC)).size(4096));
        CompletionRecord c = run(Dsa.descriptor(Dsa.OP_COMPVAL).addr1(gva(SRC)).addr2(pattern).size(4096));
        assertEquals(0, c.result());
        g.write(SRC + 4001, new byte[] {0});
        c = run(Dsa.descriptor(Dsa.OP_COMPVAL).addr1(gva(SRC)).addr2(pattern).size(4096));
        assertEquals(1, c.result());
        assertEquals(4001, c.bytesCompleted());
    }

    @Test
    void dualcastWritesBothDestinationsWithTheSameLowBits() throws Exception {
        byte[] data = randomBytes(6000);
        g.write(SRC, data);
        CompletionRecord c = run(Dsa.descriptor(Dsa.OP_DUALCAST).addr1(gva(SRC)).addr2(gva(DST + 0x10))
                .size(6000).op(40, gva(AUX + 0x10), 8));
        assertEquals(Dsa.COMP_SUCCESS, c.status(), c.toString());
        assertArrayEquals(data, g.read(DST + 0x10, 6000));
        assertArrayEquals(data, g.read(AUX + 0x10, 6000));
        c = run(Dsa.descriptor(Dsa.OP_DUALCAST).addr1(gva(SRC)).addr2(gva(DST)).size(64).op(40, gva(AUX + 8), 8));
        assertEquals(Dsa.COMP_DCAST_ERR, c.status(), "destinations must share bits 11:0");
    }

    @Test
    void crcIsCrc32cAndTheSeedContinuesIt() throws Exception {
        byte[] data = randomBytes(10_000);
        g.write(SRC, data);
        CRC32C reference = new CRC32C();
        reference.update(data);
        CompletionRecord c = run(Dsa.descriptor(Dsa.OP_CRCGEN).addr1(gva(SRC)).size(10_000));
        assertEquals((int) reference.getValue(), c.opSpecific());
        CompletionRecord head = run(Dsa.descriptor(Dsa.OP_CRCGEN).addr1(gva(SRC)).size(4000));
        CompletionRecord tail = run(Dsa.descriptor(Dsa.OP_CRCGEN).addr1(gva(SRC + 4000)).size(6000)
                .op(40, head.opSpecific() & 0xffff_ffffL, 4));
        assertEquals(c.opSpecific(), tail.opSpecific(), "crc(seed = crc(a), b) = crc(a ++ b)");

        c = run(Dsa.descriptor(Dsa.OP_COPY_CRC).addr1(gva(SRC)).addr2(gva(DST)).size(10_000));
        assertEquals((int) reference.getValue(), c.opSpecific());
        assertArrayEquals(data, g.read(DST, 10_000));
        c = run(Dsa.descriptor(Dsa.OP_COPY_CRC).addr1(gva(SRC)).addr2(gva(SRC + 100)).size(1000));
        assertEquals(Dsa.COMP_OVERLAP_BUFFERS, c.status());
    }

    @Test
    void aDeltaRecordTurnsOneBufferIntoTheOther() throws Exception {
        byte[] original = randomBytes(8192);
        byte[] changed = original.clone();
        for (int word : new int[] {0, 17, 1023}) {
            changed[word * 8 + 3] ^= 0x5a;
        }
        g.write(SRC, original);
        g.write(DST, changed);
        CompletionRecord c = run(Dsa.descriptor(Dsa.OP_CR_DELTA).addr1(gva(SRC)).addr2(gva(DST)).size(8192)
                .op(40, gva(AUX), 8).op(48, 100, 4));
        assertEquals(Dsa.COMP_SUCCESS, c.status(), c.toString());
        assertEquals(1, c.result(), "the buffers differ");
        assertEquals(30, c.opSpecific(), "three 10-byte entries");
        byte[] record = g.read(AUX, 30);
        assertEquals(17, record[10] & 0xff, "second entry: word offset 17");

        g.write(AUX + 4096, original);
        c = run(Dsa.descriptor(Dsa.OP_AP_DELTA).addr1(gva(AUX)).addr2(gva(AUX + 4096)).size(8192).op(40, 30, 4));
        assertEquals(Dsa.COMP_SUCCESS, c.status(), c.toString());
        assertArrayEquals(changed, g.read(AUX + 4096, 8192));

        c = run(Dsa.descriptor(Dsa.OP_CR_DELTA).addr1(gva(SRC)).addr2(gva(DST)).size(8192)
                .op(40, gva(AUX), 8).op(48, 20, 4));
        assertEquals(2, c.result(), "a record larger than max_delta_size overflows");
        c = run(Dsa.descriptor(Dsa.OP_CR_DELTA).flags(Dsa.FLAG_CR).addr1(gva(SRC)).addr2(gva(SRC)).size(64)
                .op(40, gva(AUX), 8).op(48, 100, 4).op(56, 0b10, 1));
        assertEquals(Dsa.COMP_SUCCESS_PRED, c.status(), "equal buffers (result 0) but the mask expects result 1");
        c = run(Dsa.descriptor(Dsa.OP_AP_DELTA).addr1(gva(AUX)).addr2(gva(AUX + 4096)).size(64).op(40, 30, 4));
        assertEquals(Dsa.COMP_DR_OFFSET_ERANGE, c.status(), "word 17 lies beyond a 64-byte region");
    }

    @Test
    void aBatchRunsItsMembersAndAFenceStopsAfterAFailure() throws Exception {
        byte[] data = randomBytes(4096);
        g.write(SRC, data);
        byte[] list = new byte[3 * 64];
        System.arraycopy(Dsa.descriptor(Dsa.OP_MEMMOVE).addr1(gva(SRC)).addr2(gva(DST)).size(4096)
                .completion(gva(COMP + 64)).build(), 0, list, 0, 64);
        System.arraycopy(Dsa.descriptor(0x3f).completion(gva(COMP + 96)).build(), 0, list, 64, 64);
        System.arraycopy(Dsa.descriptor(Dsa.OP_MEMFILL).flags(Dsa.FLAG_FENCE).addr1(0).addr2(gva(DST)).size(4096)
                .build(), 0, list, 128, 64);
        g.write(AUX, list);
        g.write(COMP + 64, new byte[64]);
        CompletionRecord c = run(Dsa.descriptor(Dsa.OP_BATCH).addr1(gva(AUX)).size(3));
        assertEquals(Dsa.COMP_BATCH_FAIL, c.status(), c.toString());
        assertEquals(2, c.bytesCompleted(), "two members processed, the fenced third abandoned");
        assertEquals(Dsa.COMP_SUCCESS, g.read(COMP + 64, 1)[0]);
        assertEquals(Dsa.COMP_BAD_OPCODE, g.read(COMP + 96, 1)[0]);
        assertArrayEquals(data, g.read(DST, 4096), "the fill never ran");

        assertEquals(Dsa.COMP_DESC_CNT_ERANGE, run(Dsa.descriptor(Dsa.OP_BATCH).addr1(gva(AUX)).size(1)).status());
        assertEquals(Dsa.COMP_DESCLIST_ALIGN, run(Dsa.descriptor(Dsa.OP_BATCH).addr1(gva(AUX + 8)).size(2)).status());
        System.arraycopy(Dsa.descriptor(Dsa.OP_BATCH).build(), 0, list, 0, 64);
        g.write(AUX, list);
        c = run(Dsa.descriptor(Dsa.OP_BATCH).addr1(gva(AUX)).size(2));
        assertEquals(Dsa.COMP_BATCH_FAIL, c.status(), "a batch inside a batch is a bad opcode");
    }

    @Test
    void invalidDescriptorsGetTheirStatus() throws Exception {
        assertEquals(Dsa.COMP_BAD_OPCODE, run(Dsa.descriptor(0x3f)).status());
        CompletionRecord c = run(Dsa.descriptor(Dsa.OP_NOOP).flags(0x40));
        assertEquals(Dsa.COMP_INVALID_FLAGS, c.status());
        assertEquals(0x40, c.opSpecific(), "the offending flag bits");
        assertEquals(Dsa.COMP_INVALID_FLAGS, run(Dsa.descriptor(Dsa.OP_NOOP).flags(Dsa.FLAG_FENCE)).status(),
                "a fence outside a batch");
        assertEquals(Dsa.COMP_INVALID_FLAGS, run(Dsa.descriptor(Dsa.OP_NOOP).flags(Dsa.FLAG_BOF)).status(),
                "block on fault on a queue without WQCFG.bof");
        byte[] reserved = Dsa.descriptor(Dsa.OP_NOOP).completion(gva(COMP)).build();
        reserved[2] = (byte) 0x10; // bit 20: reserved
        g.write(COMP, new byte[32]);
        dev.movdir64b(0, reserved);
        assertTrue(dev.awaitIdle(5000));
        assertEquals(Dsa.COMP_NOZERO_RESERVE, g.read(COMP, 1)[0]);
        assertEquals(Dsa.COMP_XFER_ERANGE, run(Dsa.descriptor(Dsa.OP_MEMMOVE).addr1(gva(SRC)).addr2(gva(DST)).size(0)).status());
        assertEquals(Dsa.COMP_NOZERO_RESERVE, run(Dsa.descriptor(Dsa.OP_MEMMOVE).addr1(gva(SRC)).addr2(gva(DST)).size(8)
                .op(48, 1, 1)).status());
        assertEquals(Dsa.COMP_SUCCESS, run(Dsa.descriptor(Dsa.OP_NOOP)).status(), "and the device keeps going");
    }

    @Test
    void aFaultMidTransferReportsBytesCompletedAndTheAddress() throws Exception {
        byte[] data = randomBytes(4 * 4096);
        g.write(SRC, data);
        // GVA window whose third page is not mapped in the guest's table.
        long window = 0x10_0000_0000L;
        g.table.map(GuestSpace.GVA + window, DST, 2 * 4096, 3);
        g.table.map(GuestSpace.GVA + window + 3 * 4096, DST + 3 * 4096, 4096, 3);
        CompletionRecord c = run(Dsa.descriptor(Dsa.OP_MEMMOVE).addr1(gva(SRC)).addr2(gva(window)).size(data.length));
        assertEquals(Dsa.COMP_PAGE_FAULT_NOBOF | Dsa.COMP_STATUS_WRITE, c.status(), c.toString());
        assertEquals(2 * 4096, c.bytesCompleted());
        assertEquals(gva(window) + 2 * 4096, c.faultAddress());
        assertArrayEquals(Arrays.copyOf(data, 8192), g.read(DST, 8192), "the pages before the fault were copied");
    }

    @Test
    void errorsNoRecordCanHoldGoToSwerrAndInterruptsAreCounted() throws Exception {
        dev.movdir64b(0, Dsa.descriptor(0x3f).build()); // no completion address
        assertTrue(dev.awaitIdle(5000));
        long q0 = dev.mmioRead(DsaRegisters.SWERR, 8);
        assertEquals(1, q0 & 1, "SWERR valid");
        assertEquals(Dsa.COMP_BAD_OPCODE, (q0 >>> 8) & 0xff);
        assertEquals(0x3f, (q0 >>> 32) & 0xff, "operation");
        assertEquals(g.pasid, (q0 >>> 40) & 0xfffff);
        dev.movdir64b(0, Dsa.descriptor(Dsa.OP_NOOP).flags(Dsa.FLAG_CRAV | Dsa.FLAG_RCR).build()); // record at 0: misaligned? no, unmapped
        assertTrue(dev.awaitIdle(5000));
        assertEquals(2, dev.mmioRead(DsaRegisters.SWERR, 8) & 2, "a second error before software acknowledged: overflow");
        dev.mmioWrite(DsaRegisters.SWERR, 3, 8);
        assertEquals(0, dev.mmioRead(DsaRegisters.SWERR, 8) & 3);
        dev.movdir64b(0, Dsa.descriptor(Dsa.OP_NOOP).flags(Dsa.FLAG_CRAV | Dsa.FLAG_RCR).build());
        assertTrue(dev.awaitIdle(5000));
        assertEquals(Dsa.COMP_CRA_XLAT, (dev.mmioRead(DsaRegisters.SWERR, 8) >>> 8) & 0xff,
                "the completion record address does not translate");

        run(Dsa.descriptor(Dsa.OP_NOOP).flags(Dsa.FLAG_RCI).interruptHandle(3));
        assertEquals(1L, dev.statistics().get("interrupts"));
    }

    @Test
    void commandsAreSerialisedTakeQueueMasksAndEnginesEndWithTheirEnable() throws Exception {
        // DISABLE_WQ with Linux's mask operand BIT(0): queue 0, not queue 1.
        driver.disableDevice();
        driver.configure(1, WorkQueueConfig.dedicated(4, g.pasid)); // GRPCFG changes only while disabled
        driver.enableDevice();
        driver.enableWq(0);
        driver.enableWq(1);
        driver.command(DsaRegisters.CMD_DISABLE_WQ, DsaDevice.queueMask(0));
        assertTrue(!driver.wqEnabled(0) && driver.wqEnabled(1));
        driver.enableWq(0);

        // Concurrent drivers never read each other's CMDSTS.
        java.util.concurrent.atomic.AtomicReference<Throwable> failure = new java.util.concurrent.atomic.AtomicReference<>();
        Thread[] threads = new Thread[3];
        for (int i = 0; i < threads.length; i++) {
            int wq = i % 2;
            threads[i] = new Thread(() -> {
                try {
                    DsaDriver own = new DsaDriver(dev);
                    for (int k = 0; k < 300; k++) {
                        own.drainWq(wq);
                    }
                } catch (Throwable e) {
                    failure.compareAndSet(null, e);
                }
            });
            threads[i].start();
        }
        for (Thread t : threads) {
            t.join(30_000);
        }
        assertEquals(null, failure.get());

        // Disable and enable again and again: the engines of each enable end with it.
        for (int i = 0; i < 40; i++) {
            driver.disableDevice();
            driver.enableDevice();
        }
        driver.enableWq(0);
        CompletionRecord c = run(Dsa.descriptor(Dsa.OP_NOOP));
        assertEquals(Dsa.COMP_SUCCESS, c.status(), "and the device still works");
        long deadline = System.nanoTime() + 5_000_000_000L;
        long engines;
        do {
            engines = Thread.getAllStackTraces().keySet().stream()
                    .filter(t -> t.getName().startsWith("dsa0-engine")).count();
        } while (engines > 4 && System.nanoTime() < deadline);
        assertTrue(engines <= 4, engines + " engine threads");
    }
}
