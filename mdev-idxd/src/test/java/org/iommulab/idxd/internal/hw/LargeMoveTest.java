package org.iommulab.idxd.internal.hw;

import static org.iommulab.idxd.internal.hw.GuestSpace.gva;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Arrays;
import java.util.Random;

import org.iommulab.api.device.Requester;
import org.iommulab.api.idxd.Dsa;
import org.iommulab.api.idxd.Dsa.CompletionRecord;
import org.iommulab.api.idxd.SubmitStatus;
import org.iommulab.api.idxd.WorkQueueConfig;
import org.iommulab.api.spi.IommuInstance;
import org.iommulab.vfio.internal.VfioStack;
import org.junit.jupiter.api.Test;

/**
 * The acceptance case: one MEMMOVE of 64 MiB as PASID-tagged DMA through VT-d nested translation
 * (guest 4 KiB pages over VFIO-pinned 4 KiB host pages) gives a byte-exact copy, translating once
 * per page and direction rather than per access.
 */
class LargeMoveTest {
    static final long MB = 1 << 20;
    static final int SIZE = 64 << 20;

    @Test
    void a64MiBMemmoveThroughNestedTranslationIsByteExact() throws Exception {
        VfioStack stack = new VfioStack();
        IommuInstance vtd = stack.instance("vtd", "vtd0");
        Requester r = stack.device("dsa0", vtd, 0x10, 20);
        DsaDevice dev = new DsaDevice("dsa0", vtd, 0x10);
        GuestSpace g = new GuestSpace(stack, r, "vm1", 160 * MB, 8 * MB);
        long src = 4 * MB;
        long dst = src + SIZE + 4 * MB;
        // 4 KiB guest pages: a 64 MiB mapping of 2 MiB-aligned ranges would get 2 MiB pages, so map page by page.
        for (long off = 0; off < SIZE; off += 2 * MB) {
            g.table.map(GuestSpace.GVA + src + off, src + off, 2 * MB - 4096, 3);
            g.table.map(GuestSpace.GVA + src + off + 2 * MB - 4096, src + off + 2 * MB - 4096, 4096, 3);
            g.table.map(GuestSpace.GVA + dst + off, dst + off, 2 * MB - 4096, 3);
            g.table.map(GuestSpace.GVA + dst + off + 2 * MB - 4096, dst + off + 2 * MB - 4096, 4096, 3);
        }
        g.map(152 * MB, 4096, true); // the completion record
        byte[] data = new byte[SIZE];
        new Random(64).nextBytes(data);
        g.write(src, data);

        DsaDriver driver = new DsaDriver(dev);
        driver.configure(0, WorkQueueConfig.dedicated(4, g.pasid));
        driver.enableDevice();
        driver.enableWq(0);
        long before = vtd.statistics().get("translations");
        assertEquals(SubmitStatus.ACCEPTED, dev.movdir64b(0, Dsa.descriptor(Dsa.OP_MEMMOVE).addr1(gva(src))
                .addr2(gva(dst)).size(SIZE).completion(gva(152 * MB)).build()));
        assertTrue(dev.awaitIdle(60_000));
        CompletionRecord c = CompletionRecord.decode(g.read(152 * MB, 32));
        assertEquals(Dsa.COMP_SUCCESS, c.status(), c.toString());
        assertTrue(Arrays.equals(data, g.read(dst, SIZE)), "byte-exact copy");
        long translations = vtd.statistics().get("translations") - before;
        assertTrue(translations <= 2L * SIZE / 4096 + 4, "one translation per page and direction, not per access: "
                + translations);
        dev.close();
    }
}
