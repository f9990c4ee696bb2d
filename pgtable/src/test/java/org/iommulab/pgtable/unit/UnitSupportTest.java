package org.iommulab.pgtable.unit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.util.ArrayList;
import java.util.List;

import org.iommulab.api.errno.Errno;
import org.iommulab.api.errno.IommuException;
import org.iommulab.api.fault.PageResponse;
import org.junit.jupiter.api.Test;

class UnitSupportTest {

    @Test
    void aGroupIsAnsweredOnceAndStaysPendingWhenTheResponseFails() throws Exception {
        PendingPageRequests pending = new PendingPageRequests();
        List<String> sent = new ArrayList<>();
        pending.add(0x10, -1, 3);
        PendingPageRequests.Responder failing = (rid, pasid, group, r) -> {
            throw new IommuException(Errno.EIO, "queue stuck");
        };
        assertEquals(Errno.EIO, assertThrows(IommuException.class,
                () -> pending.answer(0x10, -1, 3, PageResponse.SUCCESS, failing)).errno());
        pending.answer(0x10, -1, 3, PageResponse.SUCCESS, (rid, pasid, group, r) -> sent.add(rid + "/" + pasid + "/" + group + "/" + r));
        assertEquals(List.of("16/-1/3/SUCCESS"), sent);
        assertEquals(Errno.ENOENT, assertThrows(IommuException.class,
                () -> pending.answer(0x10, -1, 3, PageResponse.SUCCESS, (rid, pasid, group, r) -> sent.add("again"))).errno());
    }

    @Test
    void denyAllAnswersInvalidForOneRequesterOrAll() {
        PendingPageRequests pending = new PendingPageRequests();
        pending.add(0x10, 0xfffff, 511);
        pending.add(0xffff_ffff, 7, 0);
        List<String> sent = new ArrayList<>();
        PendingPageRequests.Responder record = (rid, pasid, group, r) -> sent.add(rid + "/" + pasid + "/" + group + "/" + r);
        pending.denyAll(0x10, record);
        assertEquals(List.of("16/1048575/511/INVALID"), sent);
        pending.denyAll(-1, record);
        assertEquals(List.of("16/1048575/511/INVALID", "-1/7/0/INVALID"), sent);
    }

    @Test
    void registerAccessesUseNaturallyAlignedLanesInsideTheWindow() throws Exception {
        assertEquals(0x5566_7788L, Registers.readLane(0x1122_3344_5566_7788L, 0x20, 4));
        assertEquals(0x1122_3344L, Registers.readLane(0x1122_3344_5566_7788L, 0x24, 4));
        assertEquals(0x1122_3344_5566_7788L, Registers.readLane(0x1122_3344_5566_7788L, 0x20, 8));
        assertEquals(0xabcd_0000_0000L, Registers.laneValue(0x24, 0xabcdL, 4));
        assertEquals(0xffff_ffffL, Registers.laneValue(0x20, -1L, 4));
        assertEquals(0xffff_ffff_0000_0000L, Registers.laneMask(0x24, 4));
        assertEquals(0xffff_ffff_0000_0001L, Registers.pair(1, -1));
        Registers.checkAccess("unit", 0xff8, 8, 0x1000);
        for (long[] bad : new long[][] {{0x1000, 4}, {0xffc, 8}, {0x2, 4}, {-4, 4}, {0, 2}}) {
            assertEquals(Errno.EINVAL, assertThrows(IommuException.class,
                    () -> Registers.checkAccess("unit", bad[0], (int) bad[1], 0x1000)).errno());
        }
    }
}
