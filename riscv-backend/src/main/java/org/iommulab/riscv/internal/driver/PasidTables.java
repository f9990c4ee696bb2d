package org.iommulab.riscv.internal.driver;

import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;

import org.iommulab.api.errno.Errno;
import org.iommulab.api.errno.IommuException;
import org.iommulab.api.invalidation.CacheInvalidation;
import org.iommulab.api.invalidation.CacheType;
import org.iommulab.api.invalidation.Granularity;
import org.iommulab.api.nesting.PasidTableConfig;
import org.iommulab.api.spi.DomainType;
import org.iommulab.riscv.internal.spec.Command;

/**
 * Nesting by PASID table, format {@link RiscvDriver#FORMAT}: a guest's process-directory table
 * (a GPA) in DC.fsc.pdtp over the parent domain's G-stage, and the invalidations the guest asks
 * for on it. The guest owns the whole PDT, its PCs and their PSCIDs; the host owns the G-stage
 * and its GSCID, which bounds every guest invalidation.
 *
 * <p>Thread safe as used: every change runs under the driver's monitor; {@link #config} reads a
 * concurrent map, for the fault handler.
 */
final class PasidTables {
    private final Capabilities caps;
    private final IommuUnit unit;
    private final DeviceContexts contexts;
    /** Attached devices and their domain (read only here). */
    private final Map<Integer, RiscvDomain> devices;
    /** Devices with a guest PASID table attached, and its configuration. */
    private final Map<Integer, PasidTableConfig> tables = new ConcurrentHashMap<>();

    PasidTables(Capabilities caps, IommuUnit unit, DeviceContexts contexts, Map<Integer, RiscvDomain> devices) {
        this.caps = caps;
        this.unit = unit;
        this.contexts = contexts;
        this.devices = devices;
    }

    /** @return the guest PASID table attached for a device, or {@code null} */
    PasidTableConfig config(int requesterId) {
        return tables.get(requesterId);
    }

    /**
     * DC.iohgatp the parent's, PDTV = 1 and fsc = pdtp(PD8/PD17/PD20 by {@code pasidBits}, the guest
     * PDT's GPA). TRANSLATE does that (s1dss 1: requests without PASID use the G-stage only,
     * DPE = 0; s1dss 2: they use process id 0, DPE = 1); BYPASS gives the plain G-stage DC; ABORT an
     * invalid DC.
     *
     * @param d a live domain of the driver
     */
    void attach(RiscvDomain d, int requesterId, PasidTableConfig config) throws IommuException {
        if (!caps.canNest()) {
            throw new IommuException(Errno.EOPNOTSUPP, "the unit cannot nest (needs a first stage, a G-stage and PDTs)");
        }
        if (d.type() != DomainType.UNMANAGED) {
            throw new IommuException(Errno.EINVAL, "a guest PASID table nests on an UNMANAGED (G-stage) domain");
        }
        validate(d, config);
        if (devices.get(requesterId) != d) {
            throw d.notAttached(requesterId);
        }
        boolean wasNested = !d.nestedDevices.add(requesterId); // before the DC: a racing unmap must flush combined entries
        try {
            contexts.install(requesterId, contexts.dcFor(d, null, config));
        } catch (IommuException e) {
            if (!wasNested) {
                d.nestedDevices.remove(requesterId);
            }
            throw e;
        }
        tables.put(requesterId, config);
    }

    private void validate(RiscvDomain d, PasidTableConfig c) throws IommuException {
        if (!RiscvDriver.FORMAT.equals(c.format())) {
            throw new IommuException(Errno.EINVAL, "PASID table format must be " + RiscvDriver.FORMAT + ", not "
                    + c.format());
        }
        if (c.config() < PasidTableConfig.TRANSLATE || c.config() > PasidTableConfig.ABORT) {
            throw new IommuException(Errno.EINVAL, "config must be 1 (translate), 2 (bypass) or 3 (abort), not " + c.config());
        }
        if (c.config() != PasidTableConfig.TRANSLATE) {
            return; // the table fields mean nothing unless the first stage translates
        }
        if (c.s1fmt() != 0) {
            throw new IommuException(Errno.EINVAL, "s1fmt must be 0 (the PDT's depth comes from pasidBits), not " + c.s1fmt());
        }
        if (c.s1dss() != 1 && c.s1dss() != 2) {
            throw new IommuException(Errno.EINVAL, "s1dss must be 1 (requests without PASID bypass the first stage) or "
                    + "2 (they use process id 0), not " + c.s1dss()
                    + (c.s1dss() == 0 ? ": a DC with PDTV = 1 cannot terminate them" : ""));
        }
        if (caps.pdtMode(c.pasidBits()) < 0) {
            throw new IommuException(Errno.EINVAL, "pasidBits must be 8, 17 or 20 as capabilities.PD8/PD17/PD20 allow, not "
                    + c.pasidBits());
        }
        int gpaBits = d.inputAddressBits();
        if ((c.basePtr() & 0xfff) != 0 || c.basePtr() < 0 || (c.basePtr() >>> gpaBits) != 0) {
            throw new IommuException(Errno.EINVAL, String.format(
                    "process-directory table 0x%x must be 4 KiB aligned inside the %d-bit guest-physical space",
                    c.basePtr(), gpaBits));
        }
    }

    /** Restores the plain G-stage DC. */
    void detach(RiscvDomain d, int requesterId) throws IommuException {
        if (devices.get(requesterId) != d || !tables.containsKey(requesterId)) {
            throw new IommuException(Errno.ENOENT, String.format("device 0x%x has no guest PASID table on domain %d",
                    requesterId, d.id()));
        }
        contexts.install(requesterId, contexts.dcFor(d, null, null));
        tables.remove(requesterId);
        d.nestedDevices.remove(requesterId);
    }

    /**
     * Guest invalidations, always within the parent's GSCID so a guest can only reach its own
     * entries. The PSCIDs live in the guest's PCs, so {@code archId} is the guest PSCID (-1: not
     * known) and the PASID set is not consulted. IOTLB: ADDR → IOTINVAL.VMA GV, PSCV when archId is
     * given, AV per 4 KiB page (or without AV for large ranges); PASID → IOTINVAL.VMA GV (+PSCV);
     * DOMAIN → IOTINVAL.VMA GV. PASID cache: PASID → IODIR.INVAL_PDT, DOMAIN → IODIR.INVAL_DDT (which
     * drops the device's PCs too). DEV_IOTLB → ATS.INVAL when the unit has ATS. One IOFENCE.C ends it.
     * Everything is checked before a command is queued.
     */
    void cacheInvalidate(RiscvDomain d, int requesterId, CacheInvalidation inv) throws IommuException {
        if (d.type() != DomainType.UNMANAGED) {
            throw new IommuException(Errno.EINVAL, "guest invalidations apply to an UNMANAGED (G-stage) domain");
        }
        if (inv.archId() > 0xf_ffffL) {
            throw new IommuException(Errno.EINVAL, "PSCID " + inv.archId() + " is wider than 20 bits");
        }
        Set<CacheType> caches = inv.caches();
        boolean perDevice = caches.contains(CacheType.PASID) || (caches.contains(CacheType.DEV_IOTLB) && caps.ats());
        if (perDevice && devices.get(requesterId) != d) {
            throw d.notAttached(requesterId);
        }
        int gscid = d.gscid();
        int pscid = (int) inv.archId();
        CommandBatch cmds = new CommandBatch();
        if (caches.contains(CacheType.PASID)) {
            if (inv.granularity() == Granularity.PASID) {
                cmds.add(Command.iodirInvalPdt(requesterId, inv.pasid()), 0);
            } else {
                cmds.add(Command.iodirInvalDdt(requesterId), 0);
            }
        }
        if (caches.contains(CacheType.IOTLB)) {
            switch (inv.granularity()) {
                case DOMAIN:
                    cmds.add(Command.iotinval(false, gscid, -1, false), 0);
                    break;
                case PASID:
                    cmds.add(Command.iotinval(false, gscid, pscid, false), 0);
                    break;
                default:
                    cmds.iotinval(false, gscid, pscid, inv.address(), inv.size());
                    break;
            }
        }
        if (caches.contains(CacheType.DEV_IOTLB) && caps.ats()) {
            long payload = inv.granularity() == Granularity.ADDR ? Command.atsInvalPayload(inv.address(), inv.size())
                    : Command.atsInvalPayload(0, DeviceContexts.ATS_ALL);
            cmds.add(Command.atsInval(requesterId, inv.pasid()), payload);
        }
        unit.commandQueue().submit(cmds.toArray());
    }

    /** Detach: the device's guest table is forgotten (its DC is invalid already). */
    void forget(int requesterId) {
        tables.remove(requesterId);
    }

    /** Close: every guest table is forgotten. */
    void clear() {
        tables.clear();
    }
}
