package org.iommulab.vmm.internal;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Optional;
import java.util.Set;

import org.iommulab.api.idxd.Dsa;
import org.iommulab.api.idxd.Dsa.CompletionRecord;
import org.iommulab.api.idxd.IdxdDevice;
import org.iommulab.api.idxd.SubmitStatus;
import org.iommulab.api.invalidation.CacheInvalidation;
import org.iommulab.api.invalidation.CacheType;
import org.iommulab.api.nesting.NestingInfo;
import org.iommulab.api.nesting.PasidTableConfig;
import org.iommulab.api.pasid.Pasids;
import org.iommulab.api.spi.IommuDomain;
import org.iommulab.api.translation.Access;
import org.iommulab.api.translation.Translation;
import org.iommulab.api.vmm.Vm;
import org.iommulab.pgtable.FlushOps;
import org.iommulab.pgtable.IoPageTable;
import org.iommulab.pgtable.format.ArmGranule;
import org.iommulab.pgtable.format.ArmStage1;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * Guest IOVA on SMMUv3: the guest owns its whole CD table (SET_PASID_TABLE), so a guest whose
 * driver puts its IOVA table in CD 0 needs nothing new from VFIO: requests without SSID take CD 0
 * (S1CDMax 0, or S1DSS 0b10 "substream 0" beside process substreams) and translate nested, IOVA
 * -> IPA -> PA. The guest's structures are written here as a guest's arm-smmu-v3 driver writes
 * them (the model's own driver has no stage-1 DMA domains on a stage-1-only unit), and the STE
 * change is delivered as the VMM's CFGI_STE trap delivers it. Page requests without SSID are
 * denied by the host at once.
 */
class SmmuGuestIovaTest extends VsvaTestBase {
    static final int IOVA_RID = 0x20;
    static final int ASID = 5;
    static final long SRC_IOVA = 0x1_0000_0000L;
    static final long DST_IOVA = 0x1_0010_0000L;
    static final long COMP_IOVA = 0x1_0020_0000L;

    IdxdDevice dsa1;
    final Translation t = new Translation();
    Vm vm;
    GuestKernelImpl kernel;
    IoPageTable iova;

    @Override
    String vendor() {
        return "smmuv3";
    }

    @BeforeEach
    void iovaDevice() throws Exception {
        dsa1 = noPasidQueueDevice("dsa1", IOVA_RID);
        vm = vmm.create("vm1", hostName(), 64 * MB);
        vm.assignDevice("dsa1", VRID);
        vm.guest().probeDevice(VRID);
        kernel = (GuestKernelImpl) vm.guest();
        iova = IoPageTable.create(ArmStage1.of(ArmGranule.G4K, 16, 48, false, false, false), vm.guestMemory(),
                kernel.tables(), FlushOps.NONE);
    }

    /** @return the GPA of a fresh guest page mapped at {@code address} in the IOVA table */
    long map(long address) throws Exception {
        long gpa = kernel.pages().allocateFrames(1);
        iova.map(address, gpa, 4096, IommuDomain.PROT_READ | IommuDomain.PROT_WRITE);
        return gpa;
    }

    /**
     * The guest's CD table with the IOVA table in CD 0, and the CFGI_STE trap for its STE.
     *
     * @param cdMax S1CDMax (log2 of the number of CDs)
     * @param s1dss STE S1DSS: 0b00 terminate, 0b01 bypass, 0b10 substream 0 for requests without SSID
     */
    void cdZeroForIova(int cdMax, int s1dss) throws Exception {
        long table = kernel.tables().allocateFrames(Math.max(1, (64 << cdMax) / 4096));
        // CD (IHI 0070 §5.4): word 0 T0SZ 16 (5:0), TG0 4K (7:6 = 0), EPD1 (30), V (31); word 1 IPS
        // 48 bits (2:0 = 5), AA64 (9), R (13), A (14), ASID (31:16); TTB0 at +8. V written last.
        vm.guestMemory().write64(table + 8, iova.root());
        vm.guestMemory().write64(table, 16 | 1L << 30 | 1L << 31 | (5L | 1L << 9 | 1L << 13 | 1L << 14 | (long) ASID << 16) << 32);
        ((VmImpl) vm).streamEntryChanged(VRID, Optional.of(new PasidTableConfig(NestingInfo.FORMAT_ARM_SMMUV3, table,
                cdMax, PasidTableConfig.TRANSLATE, 0, s1dss)));
        assertEquals(table, vm.container().pasidTable().orElseThrow().basePtr());
    }

    CompletionRecord movdir64b(long comp, Dsa.Builder d) throws Exception {
        vm.guestMemory().write(comp, new byte[32], 0, 32);
        assertEquals(SubmitStatus.ACCEPTED, dsa1.movdir64b(0, d.completion(COMP_IOVA).build()));
        assertTrue(dsa1.awaitIdle(20_000));
        byte[] record = new byte[32];
        vm.guestMemory().read(comp, record, 0, 32);
        return CompletionRecord.decode(record);
    }

    @Test
    void cdZeroTranslatesRequestsWithoutSsidNestedAndPageRequestsAreDenied() throws Exception {
        long src = map(SRC_IOVA);
        long dst = map(DST_IOVA);
        long comp = map(COMP_IOVA);
        cdZeroForIova(0, 0);
        assertTrue(host.translate(IOVA_RID, Pasids.NO_PASID, SRC_IOVA, Access.READ, t), "IOVA -> IPA -> PA: " + t);
        assertFalse(host.translate(IOVA_RID, Pasids.NO_PASID, 0x10_0000, Access.READ, t), "the guest's table decides");

        byte[] data = random(4096, 31);
        vm.guestMemory().write(src, data, 0, data.length);
        CompletionRecord c = movdir64b(comp, Dsa.descriptor(Dsa.OP_MEMMOVE).addr1(SRC_IOVA).addr2(DST_IOVA).size(4096));
        assertEquals(Dsa.COMP_SUCCESS, c.status(), c.toString());
        byte[] copied = new byte[4096];
        vm.guestMemory().read(dst, copied, 0, 4096);
        assertArrayEquals(data, copied);

        // The guest unmaps and invalidates by ASID and VA (TLBI_NH_VA, trapped as VFIO CACHE_INVLD).
        iova.unmap(DST_IOVA, 4096);
        assertTrue(host.translate(IOVA_RID, Pasids.NO_PASID, DST_IOVA, Access.WRITE, t), "stale until invalidated");
        ((VmImpl) vm).invalidated(CacheInvalidation.range(Set.of(CacheType.IOTLB), Pasids.NO_PASID, ASID, DST_IOVA, 4096, 1, true));
        assertFalse(host.translate(IOVA_RID, Pasids.NO_PASID, DST_IOVA, Access.WRITE, t), "the invalidation reached the host");

        vm.takeJournal();
        long started = System.nanoTime();
        for (int i = 0; i < 2; i++) {
            c = movdir64b(comp, Dsa.descriptor(Dsa.OP_MEMMOVE).flags(Dsa.FLAG_BOF).addr1(SRC_IOVA).addr2(DST_IOVA).size(4096));
            assertEquals(Dsa.COMP_PAGE_FAULT_IR, c.status() & ~Dsa.COMP_STATUS_WRITE, c.toString());
        }
        assertTrue(System.nanoTime() - started < 5_000_000_000L, "denied at once");
        java.util.Map<String, Long> stats = dsa1.statistics();
        assertEquals(2L, stats.get("page-requests"), stats.toString());
        assertEquals(2L, stats.get("page-responses.invalid"), stats.toString());
        assertEquals(null, stats.get("page-request-timeouts"), stats.toString());
        assertEquals(2L, ((VmImpl) vm).iovaPageRequests());
        assertEquals(0, vm.guest().pageRequestsHandled());
        assertTrue(String.join("\n", vm.takeJournal()).contains("answered INVALID by the host, not injected"));
    }

    /** S1DSS 0b10: CD 0 serves requests without SSID while the other CDs serve substreams; SSID 0 itself is illegal. */
    @Test
    void substreamZeroServesRequestsWithoutSsidBesideProcessSubstreams() throws Exception {
        long src = map(SRC_IOVA);
        cdZeroForIova(3, 2);
        assertTrue(host.translate(IOVA_RID, Pasids.NO_PASID, SRC_IOVA, Access.READ, t), t.toString());
        long pa = t.outputAddress();
        byte[] data = random(64, 32);
        vm.guestMemory().write(src, data, 0, data.length);
        byte[] viaHost = new byte[64];
        stack.memory.read(pa, viaHost, 0, 64);
        assertArrayEquals(data, viaHost, "the right host page");
        assertFalse(host.translate(IOVA_RID, 0, SRC_IOVA, Access.READ, t), "SSID 0 with S1DSS 0b10 is F_STREAM_DISABLED (§7.3.7)");
        assertEquals(0x06, t.faultCode(), t.toString());
        assertFalse(host.translate(IOVA_RID, 1, SRC_IOVA, Access.READ, t), "CD 1 is not valid");
    }
}
