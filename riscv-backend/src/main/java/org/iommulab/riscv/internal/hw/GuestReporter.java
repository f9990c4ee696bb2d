package org.iommulab.riscv.internal.hw;

import java.util.Optional;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;

import org.iommulab.api.errno.IommuException;
import org.iommulab.api.fault.PageResponse;
import org.iommulab.api.invalidation.CacheInvalidation;
import org.iommulab.api.invalidation.CacheType;
import org.iommulab.api.nesting.GuestIommuListener;
import org.iommulab.api.nesting.PasidTableConfig;
import org.iommulab.api.pasid.Pasids;
import org.iommulab.riscv.internal.spec.DeviceContext;
import org.iommulab.riscv.internal.spec.ProcessContext;

/**
 * What a VMM running this unit as a guest's vIOMMU learns from the guest's commands (QEMU's
 * notifiers), in neutral terms:
 * <ul>
 * <li>IODIR.INVAL_DDT with DV = 1 (with DV = 0: for every device reported before): the device's
 * DC as {@code streamEntryChanged}: PDTV = 1 with a
 * PDT is a PASID table in format {@value #FORMAT} (basePtr the PDT root GPA, pasidBits 8/17/20 by
 * pdtp.MODE, TRANSLATE, s1fmt 0, s1dss 2 with DPE, else 1); fsc Bare (no first stage) is BYPASS;
 * a DC that is not valid (or cannot be located) is empty, once it was reported before;</li>
 * <li>IOTINVAL.VMA: an IOTLB invalidation (the PSCID as the architecture id);</li>
 * <li>IODIR.INVAL_PDT: a PASID-cache invalidation of the process_id;</li>
 * <li>ATS.PRGR: the page response.</li>
 * </ul>
 * Thread safe.
 */
final class GuestReporter {
    /** The PASID-table format name of this unit's PDT (RiscvDriver.FORMAT). */
    static final String FORMAT = "riscv-iommu";

    private volatile GuestIommuListener listener;
    private final Set<Integer> reported = ConcurrentHashMap.newKeySet();

    void setListener(GuestIommuListener l) {
        this.listener = l;
    }

    boolean active() {
        return listener != null;
    }

    /** After IODIR.INVAL_DDT for one device. */
    void deviceContextChanged(int deviceId, DirectoryWalker directory, long ddtp) {
        GuestIommuListener l = listener;
        if (l == null) {
            return;
        }
        long[] dc = directory.readDeviceContext(ddtp, deviceId);
        Optional<PasidTableConfig> config = Optional.empty();
        if (dc != null) {
            long tc = dc[0];
            long fsc = dc[3];
            if ((tc & DeviceContext.TC_PDTV) != 0 && DeviceContext.atpMode(fsc) != DeviceContext.PDTP_BARE) {
                int levels = ProcessContext.levels(DeviceContext.atpMode(fsc));
                config = Optional.of(new PasidTableConfig(FORMAT, DeviceContext.atpRoot(fsc),
                        ProcessContext.processIdBits(levels), PasidTableConfig.TRANSLATE, 0,
                        (tc & DeviceContext.TC_DPE) != 0 ? 2 : 1));
            } else if (DeviceContext.atpMode(fsc) == DeviceContext.ATP_BARE) {
                config = Optional.of(new PasidTableConfig(FORMAT, 0, 0, PasidTableConfig.BYPASS, 0, 0));
            }
        }
        if (config.isPresent()) {
            reported.add(deviceId);
        } else if (!reported.remove(deviceId)) {
            return; // never configured, still nothing: no news
        }
        l.streamEntryChanged(deviceId, config);
    }

    /** After IODIR.INVAL_DDT with DV = 0: every device reported before is read again. */
    void allDeviceContextsChanged(DirectoryWalker directory, long ddtp) {
        if (listener == null) {
            return;
        }
        for (int deviceId : new java.util.TreeSet<>(reported)) {
            deviceContextChanged(deviceId, directory, ddtp);
        }
    }

    /** After IOTINVAL.VMA. */
    void vmaInvalidated(boolean pscv, int pscid, boolean av, long address) {
        GuestIommuListener l = listener;
        if (l == null) {
            return;
        }
        try {
            CacheInvalidation inv;
            if (av) {
                inv = CacheInvalidation.range(Set.of(CacheType.IOTLB), Pasids.NO_PASID, pscv ? pscid : -1,
                        address & ~0xfffL, 4096, 1, true);
            } else if (pscv) {
                inv = CacheInvalidation.pasid(Set.of(CacheType.IOTLB), 0, pscid);
            } else {
                inv = CacheInvalidation.domain(Set.of(CacheType.IOTLB));
            }
            l.invalidated(inv);
        } catch (IommuException e) {
            // an address that wraps: no neutral form, nothing to report
        }
    }

    /** After IODIR.INVAL_PDT. */
    void pdtInvalidated(int processId) {
        GuestIommuListener l = listener;
        if (l == null) {
            return;
        }
        try {
            l.invalidated(CacheInvalidation.pasid(Set.of(CacheType.PASID), processId, -1));
        } catch (IommuException e) {
            // a process_id beyond 20 bits cannot reach here (the command was legal)
        }
    }

    /** After ATS.PRGR. */
    void pageResponse(int deviceId, int pasid, int groupIndex, PageResponse response) {
        GuestIommuListener l = listener;
        if (l != null) {
            l.pageResponse(deviceId, pasid, groupIndex, response);
        }
    }
}
