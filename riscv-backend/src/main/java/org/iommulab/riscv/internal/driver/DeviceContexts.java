package org.iommulab.riscv.internal.driver;

import java.util.Map;

import org.iommulab.api.errno.IommuException;
import org.iommulab.api.memory.PhysicalMemory;
import org.iommulab.api.nesting.PasidTableConfig;
import org.iommulab.riscv.internal.spec.Command;
import org.iommulab.riscv.internal.spec.DeviceContext;

/**
 * Composes and installs device contexts, and flushes what the unit cached from a G-stage table.
 *
 * <ul>
 * <li>{@link #dcFor} says what a device's DC holds for its domain, host SVA PDT or guest PASID
 * table.</li>
 * <li>{@link #install} changes a DC as §"Changing device directory table entry" says: a valid DC
 * is first made invalid (IODIR.INVAL_DDT), then written with tc (V) last, then IODIR.INVAL_DDT
 * and the IOTINVALs the old DC calls for, each batch ending with IOFENCE.C and the driver waiting
 * for cqh to reach cqt.</li>
 * <li>{@link #flushGStage} is a G-stage domain's page-table flush callback.</li>
 * </ul>
 *
 * <p>Thread safe as used: {@link #install} runs under the driver's monitor; {@link #flushGStage}
 * runs without it (the page table calls it from map and unmap), so it reads only the volatile
 * unit state, the concurrent device map and the domain's concurrent set of nested devices, and
 * submits through the command queue, which serializes itself.
 */
final class DeviceContexts {
    /** ATS.INVAL payload for the whole address space. */
    static final long ATS_ALL = -1;

    private final PhysicalMemory memory;
    private final Capabilities caps;
    private final IommuUnit unit;
    /** Attached devices and their domain: read here, changed by the driver under its monitor. */
    private final Map<Integer, RiscvDomain> devices;

    DeviceContexts(PhysicalMemory memory, Capabilities caps, IommuUnit unit, Map<Integer, RiscvDomain> devices) {
        this.memory = memory;
        this.caps = caps;
        this.unit = unit;
        this.devices = devices;
    }

    /** A base-format device context (§2.1.3): tc, iohgatp, ta, fsc. */
    record Dc(long tc, long iohgatp, long ta, long fsc) {
        static final Dc INVALID = new Dc(0, 0, 0, 0);

        boolean valid() {
            return (tc & DeviceContext.TC_V) != 0;
        }
    }

    /** tc of every valid DC: V, ATS and PRI when the unit has them, hardware A/D when it has that. */
    private long tcBase() {
        long tc = DeviceContext.TC_V;
        if (caps.ats()) {
            tc |= DeviceContext.TC_EN_ATS | DeviceContext.TC_EN_PRI;
        }
        if (caps.hardwareAd()) {
            tc |= DeviceContext.TC_GADE | DeviceContext.TC_SADE;
        }
        return tc;
    }

    /**
     * The DC of a device attached to {@code d}, with host SVA bindings in {@code pd} or a guest
     * PASID table {@code table} (at most one of them).
     */
    Dc dcFor(RiscvDomain d, ProcessDirectory pd, PasidTableConfig table) {
        switch (d.type()) {
            case UNMANAGED: {
                long iohgatp = DeviceContext.iohgatp(d.iohgatpMode, d.gscid(), d.table().root());
                if (table == null || table.config() == PasidTableConfig.BYPASS) {
                    return new Dc(tcBase(), iohgatp, 0, 0);
                }
                if (table.config() == PasidTableConfig.ABORT) {
                    return Dc.INVALID;
                }
                // §2.1.3.4 with PDTV = 1: fsc is pdtp, its PPN a GPA translated by the G-stage.
                long tc = tcBase() | DeviceContext.TC_PDTV | (table.s1dss() == 2 ? DeviceContext.TC_DPE : 0);
                return new Dc(tc, iohgatp, 0, DeviceContext.pdtp(caps.pdtMode(table.pasidBits()), table.basePtr()));
            }
            case IDENTITY:
                if (pd == null) {
                    return new Dc(tcBase(), 0, 0, 0);
                }
                // DPE = 0: requests without PASID see a Bare first stage over a Bare G-stage.
                return new Dc(tcBase() | DeviceContext.TC_PDTV, 0, 0, pd.pdtp());
            default:
                if (pd == null) {
                    return Dc.INVALID;
                }
                // DPE = 1 with PC 0 left invalid: requests without PASID fault with cause 266.
                return new Dc(tcBase() | DeviceContext.TC_PDTV | DeviceContext.TC_DPE, 0, 0, pd.pdtp());
        }
    }

    private Dc read(long address) {
        return new Dc(memory.read64(address + DeviceContext.TC), memory.read64(address + DeviceContext.IOHGATP),
                memory.read64(address + DeviceContext.TA), memory.read64(address + DeviceContext.FSC));
    }

    private void write(long address, Dc dc) {
        memory.write64(address + DeviceContext.IOHGATP, dc.iohgatp());
        memory.write64(address + DeviceContext.TA, dc.ta());
        memory.write64(address + DeviceContext.FSC, dc.fsc());
        memory.write64(address + DeviceContext.TC, dc.tc()); // V last
    }

    /**
     * Replaces a device's DC (§"Changing device directory table entry"; Linux
     * {@code riscv_iommu_iodir_update}): a valid DC is made invalid first and the unit told, so no
     * request sees a torn entry; then the new DC is written with tc last, and IODIR.INVAL_DDT plus
     * the IOTINVALs the <em>old</em> DC calls for are submitted with IOFENCE.C. If the unit
     * refuses a command, the old DC is put back. Under the driver's monitor, the unit live.
     */
    void install(int rid, Dc dc) throws IommuException {
        CommandQueue cq = unit.commandQueue();
        long address = unit.directory().dc(rid);
        Dc old = read(address);
        if (old.equals(dc)) {
            return;
        }
        try {
            if (old.valid()) {
                memory.write64(address + DeviceContext.TC, old.tc() & ~DeviceContext.TC_V);
                cq.submit(Command.iodirInvalDdt(rid), 0);
            }
            write(address, dc);
            cq.submit(changeCommands(rid, old));
        } catch (IommuException e) {
            memory.write64(address + DeviceContext.TC, 0);
            write(address, old);
            try {
                cq.submit(changeCommands(rid, dc));
            } catch (IommuException again) {
                // the unit refuses commands: nothing more can be done from here
            }
            throw e;
        }
    }

    /** IODIR.INVAL_DDT and the IOTINVALs a change of a DC whose old value was {@code old} needs. */
    private static long[] changeCommands(int rid, Dc old) {
        CommandBatch cmds = new CommandBatch().add(Command.iodirInvalDdt(rid), 0);
        if (old.valid()) {
            if (DeviceContext.atpMode(old.iohgatp()) != DeviceContext.ATP_BARE) {
                int gscid = DeviceContext.gscid(old.iohgatp());
                cmds.add(Command.iotinval(false, gscid, -1, false), 0);
                cmds.add(Command.iotinval(true, gscid, -1, false), 0);
            } else if ((old.tc() & DeviceContext.TC_PDTV) != 0) {
                cmds.add(Command.iotinval(false, -1, -1, false), 0);
            } else if (DeviceContext.atpMode(old.fsc()) != DeviceContext.ATP_BARE) {
                int pscid = (int) ((old.ta() & DeviceContext.TA_PSCID_MASK) >>> DeviceContext.TA_PSCID_SHIFT);
                cmds.add(Command.iotinval(false, -1, pscid, false), 0);
            }
            if ((old.tc() & DeviceContext.TC_EN_ATS) != 0) {
                // The device's ATC after the IOMMU's (§"Device Address Translation Cache invalidations").
                cmds.add(Command.atsInval(rid, -1), Command.atsInvalPayload(0, ATS_ALL));
            }
        }
        return cmds.toArray();
    }

    /**
     * After an unmap (§"Changing second-stage page table entry"): IOTINVAL.GVMA GV = 1 with the
     * GSCID, AV = 1 per 4 KiB page of a small range of leaves, else AV = 0. With guests nested on the
     * domain, their combined entries are tagged by guest virtual addresses a GPA cannot name, so the
     * GSCID's first-stage entries go too (IOTINVAL.VMA GV = 1), and their DCs (IODIR.INVAL_DDT: the DC
     * and PC fields that hold guest PPNs may be cached translated). Devices with ATS get ATS.INVAL.
     *
     * @param leaf leaves changed (else table pages: the whole GSCID goes)
     */
    void flushGStage(RiscvDomain d, long iova, long size, boolean leaf) throws IommuException {
        if (!unit.isLive()) {
            return; // closing: the unit is off and its caches were dropped
        }
        CommandBatch cmds = new CommandBatch();
        int gscid = d.gscid();
        if (leaf) {
            cmds.iotinval(true, gscid, -1, iova, size);
        } else {
            cmds.add(Command.iotinval(true, gscid, -1, false), 0);
        }
        if (!d.nestedDevices.isEmpty()) {
            cmds.add(Command.iotinval(false, gscid, -1, false), 0);
            // A nested DC's pdtp and its PCs' fsc hold guest PPNs an implementation may cache translated.
            for (int rid : d.nestedDevices) {
                cmds.add(Command.iodirInvalDdt(rid), 0);
            }
        }
        if (caps.ats()) {
            for (Map.Entry<Integer, RiscvDomain> e : devices.entrySet()) {
                if (e.getValue() == d) {
                    cmds.add(Command.atsInval(e.getKey(), -1), Command.atsInvalPayload(iova, size));
                }
            }
        }
        CommandQueue queue = unit.commandQueue();
        if (queue != null) {
            queue.submit(cmds.toArray());
        }
    }
}
