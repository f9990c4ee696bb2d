package org.iommulab.idxd.internal.hw;

import static org.iommulab.idxd.internal.hw.GuestSpace.gva;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.concurrent.BlockingQueue;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;

import org.iommulab.api.device.Requester;
import org.iommulab.api.fault.FaultListener;
import org.iommulab.api.fault.IommuFault;
import org.iommulab.api.fault.PageRequest;
import org.iommulab.api.fault.PageResponse;
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
 * A shared queue fed by ENQCMD with one engine: block-on-fault turns a fault into a page request
 * and the descriptor resumes when it is answered; meanwhile the full queue answers "retry".
 */
class SharedQueueTest {
    static final long MB = 1 << 20;

    VfioStack stack = new VfioStack();
    IommuInstance vtd;
    DsaDevice dev;
    GuestSpace g;
    final BlockingQueue<PageRequest> requests = new LinkedBlockingQueue<>();

    @BeforeEach
    void setUp() throws Exception {
        vtd = stack.instance("vtd", "vtd0");
        Requester r = stack.device("dsa0", vtd, 0x10, 20);
        dev = new DsaDevice("dsa0", vtd, 0x10);
        g = new GuestSpace(stack, r, "vm1", 32 * MB, 4 * MB).map(0, 8 * MB, true);
        vtd.driver().addFaultListener(new FaultListener() {
            @Override
            public void fault(IommuFault fault) {
            }

            @Override
            public void pageRequest(PageRequest request) {
                requests.add(request);
            }
        });
        DsaDriver driver = new DsaDriver(dev);
        driver.configure(0, WorkQueueConfig.shared(2));
        dev.mmioWrite(DsaRegisters.GRPCFG_BASE + 32, 1, 8); // one engine, so one blocked descriptor stalls the queue
        driver.enableDevice();
        driver.enableWq(0);
    }

    @AfterEach
    void tearDown() {
        dev.close();
    }

    @Test
    void aBlockedDescriptorResumesWhenItsPageRequestIsAnsweredAndTheFullQueueSaysRetry() throws Exception {
        byte[] data = new byte[8192];
        new java.util.Random(3).nextBytes(data);
        g.write(MB, data);
        long hole = 16 * MB; // GPA mapped by VFIO, not yet by the guest's page table
        byte[] copy = Dsa.descriptor(Dsa.OP_MEMMOVE).flags(Dsa.FLAG_BOF).addr1(gva(MB)).addr2(gva(hole)).size(8192)
                .completion(gva(2 * MB)).build();
        assertEquals(SubmitStatus.ACCEPTED, dev.enqcmd(0, copy, g.pasid, false));
        PageRequest request = requests.poll(10, TimeUnit.SECONDS);
        assertTrue(request != null, "the fault became a page request");
        assertEquals(g.pasid, request.pasid());
        assertEquals(gva(hole), request.address() & ~0xfffL);

        // The engine is blocked: two descriptors fill the queue, the third is told to retry.
        byte[] noop = Dsa.descriptor(Dsa.OP_NOOP).completion(gva(2 * MB + 64)).build();
        assertEquals(SubmitStatus.ACCEPTED, dev.enqcmd(0, noop, g.pasid, false));
        assertEquals(SubmitStatus.ACCEPTED, dev.enqcmd(0, noop, g.pasid, false));
        assertEquals(SubmitStatus.RETRY, dev.enqcmd(0, noop, g.pasid, false));
        assertEquals(1L, dev.statistics().get("retries"));
        assertEquals(2, dev.wqConfig(0)[6] & 0xffff, "WQCFG occupancy");

        // The OS maps the page and answers; every page of the copy gets there the same way.
        g.map(hole, 2 * 4096, true);
        vtd.driver().pageResponse(request.requesterId(), request.pasid(), request.groupIndex(), PageResponse.SUCCESS);
        PageRequest more;
        while ((more = requests.poll(300, TimeUnit.MILLISECONDS)) != null) {
            vtd.driver().pageResponse(more.requesterId(), more.pasid(), more.groupIndex(), PageResponse.SUCCESS);
        }
        assertTrue(dev.awaitIdle(10_000));
        CompletionRecord c = CompletionRecord.decode(g.read(2 * MB, 32));
        assertEquals(Dsa.COMP_SUCCESS, c.status(), c.toString());
        assertArrayEquals(data, g.read(hole, 8192));
        assertEquals(SubmitStatus.ACCEPTED, dev.enqcmd(0, noop, g.pasid, false), "room again");
    }

    @Test
    void anInvalidPageResponseFailsTheDescriptor() throws Exception {
        long hole = 16 * MB;
        byte[] fill = Dsa.descriptor(Dsa.OP_MEMFILL).flags(Dsa.FLAG_BOF).addr1(7).addr2(gva(hole)).size(64)
                .completion(gva(2 * MB)).build();
        assertEquals(SubmitStatus.ACCEPTED, dev.enqcmd(0, fill, g.pasid, false));
        PageRequest request = requests.poll(10, TimeUnit.SECONDS);
        vtd.driver().pageResponse(request.requesterId(), request.pasid(), request.groupIndex(), PageResponse.INVALID);
        assertTrue(dev.awaitIdle(10_000));
        CompletionRecord c = CompletionRecord.decode(g.read(2 * MB, 32));
        assertEquals(Dsa.COMP_PAGE_FAULT_IR | Dsa.COMP_STATUS_WRITE, c.status(), c.toString());
        assertEquals(gva(hole), c.faultAddress());
    }

    @Test
    void portalsCheckTheQueueKind() throws Exception {
        byte[] noop = Dsa.descriptor(Dsa.OP_NOOP).build();
        assertEquals(SubmitStatus.REJECTED, dev.movdir64b(0, noop), "MOVDIR64B to a shared queue");
        assertEquals(SubmitStatus.RETRY, dev.enqcmd(5, noop, g.pasid, false), "a disabled queue: retry");
        assertEquals(SubmitStatus.REJECTED, dev.enqcmd(0, new byte[10], g.pasid, false));
        assertEquals(SubmitStatus.REJECTED, dev.enqcmd(0, noop, 1 << 20, false));
        // ENQCMDS with the privilege bit on a queue without WQCFG.priv: the descriptor completes PRIV_BAD.
        byte[] priv = Dsa.descriptor(Dsa.OP_NOOP).priv().completion(gva(2 * MB)).build();
        assertEquals(SubmitStatus.ACCEPTED, dev.enqcmd(0, priv, g.pasid, true));
        assertTrue(dev.awaitIdle(5000));
        assertEquals(Dsa.COMP_PRIV_BAD, g.read(2 * MB, 1)[0]);
    }
}
