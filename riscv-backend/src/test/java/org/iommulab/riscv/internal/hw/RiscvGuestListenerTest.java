package org.iommulab.riscv.internal.hw;

import static org.iommulab.riscv.internal.hw.RiscvRig.*;
import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.ArrayList;
import java.util.List;
import java.util.Optional;

import org.iommulab.api.fault.PageResponse;
import org.iommulab.api.invalidation.CacheInvalidation;
import org.iommulab.api.invalidation.CacheType;
import org.iommulab.api.invalidation.Granularity;
import org.iommulab.api.nesting.GuestIommuListener;
import org.iommulab.api.nesting.PasidTableConfig;
import org.iommulab.api.pasid.Pasids;
import org.junit.jupiter.api.Test;

/** What a VMM trapping this unit as a guest's vIOMMU learns from the guest's commands. */
class RiscvGuestListenerTest {
    final RiscvRig rig = new RiscvRig();
    final List<String> events = new ArrayList<>();
    final List<Optional<PasidTableConfig>> configs = new ArrayList<>();
    final List<CacheInvalidation> invalidations = new ArrayList<>();

    RiscvGuestListenerTest() {
        rig.hw.setGuestListener(new GuestIommuListener() {
            @Override
            public void streamEntryChanged(int streamId, Optional<PasidTableConfig> config) {
                events.add("dc " + streamId);
                configs.add(config);
            }

            @Override
            public void invalidated(CacheInvalidation invalidation) {
                invalidations.add(invalidation);
            }

            @Override
            public void pageResponse(int requesterId, int pasid, int groupIndex, PageResponse response) {
                events.add("prgr " + requesterId + " " + pasid + " " + groupIndex + " " + response);
            }
        });
    }

    @Test
    void iodirInvalDdtReportsTheDevicesPdt() {
        rig.enable();
        rig.dc(0x18, V | PDTV | DPE, 0, 0, atp(PD17, 0x7_7000));
        rig.command(iodirDdt(true, 0x18), 0);
        assertEquals(List.of("dc 24"), events);
        assertEquals(new PasidTableConfig("riscv-iommu", 0x7_7000, 17, PasidTableConfig.TRANSLATE, 0, 2),
                configs.get(0).orElseThrow());
        rig.dc(0x18, V | PDTV, 0, 0, atp(PD20, 0x8000));
        rig.command(iodirDdt(true, 0x18), 0);
        assertEquals(new PasidTableConfig("riscv-iommu", 0x8000, 20, PasidTableConfig.TRANSLATE, 0, 1),
                configs.get(1).orElseThrow(), "DPE 0: requests without PASID bypass the first stage");
        rig.dc(0x18, V, 0, 0, 0);
        rig.command(iodirDdt(true, 0x18), 0);
        assertEquals(PasidTableConfig.BYPASS, configs.get(2).orElseThrow().config());
        rig.dc(0x18, 0, 0, 0, 0);
        rig.command(iodirDdt(true, 0x18), 0);
        assertEquals(Optional.empty(), configs.get(3), "not valid any more");
        rig.command(iodirDdt(true, 0x19), 0);
        assertEquals(4, configs.size(), "a device never reported and still invalid: no news");
        rig.dc(0x18, V, 0, 0, 0);
        rig.command(iodirDdt(true, 0x18), 0);
        rig.dc(0x18, V | PDTV, 0, 0, atp(PD8, 0x9000));
        rig.command(iodirDdt(false, 0), 0);
        assertEquals(new PasidTableConfig("riscv-iommu", 0x9000, 8, PasidTableConfig.TRANSLATE, 0, 1),
                configs.get(5).orElseThrow(), "DV 0 re-reads the devices reported before");
    }

    @Test
    void invalidationsAndPageResponsesAreReported() throws Exception {
        rig.enable();
        rig.command(iotinvalVma(false, 0, true, 77, false), 0);
        rig.command(iotinvalVma(false, 0, true, 77, true), addr(0x5000));
        rig.command(iotinvalVma(false, 0, false, 0, false), 0);
        rig.command(iotinvalGvma(false, 0, false), 0); // the host's business, not reported
        rig.command(iodirPdt(3, 9), 0);
        assertEquals(List.of(CacheInvalidation.pasid(java.util.Set.of(CacheType.IOTLB), 0, 77),
                CacheInvalidation.range(java.util.Set.of(CacheType.IOTLB), Pasids.NO_PASID, 77, 0x5000, 4096, 1, true),
                CacheInvalidation.domain(java.util.Set.of(CacheType.IOTLB)),
                CacheInvalidation.pasid(java.util.Set.of(CacheType.PASID), 9, -1)).toString(), invalidations.toString());
        assertEquals(Granularity.ADDR, invalidations.get(1).granularity());
        rig.command(prgr(0x18, 4), prgrPayload(33, 1));
        assertEquals(List.of("prgr 24 4 33 INVALID"), events);
    }
}
