package org.iommulab.riscv.internal.driver;

import java.util.List;
import java.util.Map;
import java.util.function.LongUnaryOperator;

import org.iommulab.api.fault.FaultListener;
import org.iommulab.api.fault.IommuFault;
import org.iommulab.api.memory.MemoryAccessException;
import org.iommulab.api.memory.PhysicalMemory;
import org.iommulab.api.nesting.PasidTableConfig;
import org.iommulab.api.pasid.Pasids;
import org.iommulab.api.translation.Access;
import org.iommulab.api.translation.FaultKind;
import org.iommulab.api.translation.Stage;
import org.iommulab.pgtable.format.RiscvPaging;
import org.iommulab.pgtable.unit.Drainer;
import org.iommulab.riscv.internal.spec.DeviceContext;
import org.iommulab.riscv.internal.spec.FaultRecord;
import org.iommulab.riscv.internal.spec.ProcessContext;
import org.iommulab.riscv.internal.spec.Reg;

/**
 * Reports the unit's faults: on ipsr.FIP it drains the fault queue (§3.2; Linux
 * {@code riscv_iommu_fltq_process}) on a {@link Drainer}, turns each record into an
 * {@link IommuFault} and hands it to every {@link FaultListener}.
 *
 * <p>RISC-V page-fault causes (12/13/15 first stage, 20/21/23 G-stage) do not tell "not present"
 * from "not permitted", which the API's {@link FaultKind} does; so the driver decides as an OS
 * would, by walking the table the device (and process id) uses: a valid leaf for the faulting
 * address means PERMISSION, anything else TRANSLATION.
 *
 * <p>Thread safe. Runs on the thread that raised the interrupt (a device thread) and never takes
 * the driver's monitor: it reads the driver's state only through concurrent maps, and the queue
 * through {@link IommuUnit#consumeFaults}, under the unit's queue lock.
 */
final class FaultReporter {
    private final String name;
    private final PhysicalMemory memory;
    private final Capabilities caps;
    private final IommuUnit unit;
    private final List<FaultListener> listeners;
    /** Attached devices and their domain (read only here). */
    private final Map<Integer, RiscvDomain> devices;
    private final HostSva sva;
    private final PasidTables pasidTables;
    private final Drainer drainer = new Drainer(this::drain);

    FaultReporter(String name, PhysicalMemory memory, Capabilities caps, IommuUnit unit, List<FaultListener> listeners,
            Map<Integer, RiscvDomain> devices, HostSva sva, PasidTables pasidTables) {
        this.name = name;
        this.memory = memory;
        this.caps = caps;
        this.unit = unit;
        this.listeners = listeners;
        this.devices = devices;
        this.sva = sva;
        this.pasidTables = pasidTables;
    }

    /** ipsr.FIP: drains now, or leaves it to the thread already draining. */
    void interrupt() {
        drainer.interrupt();
    }

    private void drain() {
        for (long[] r : unit.consumeFaults()) {
            IommuFault f = decode(r);
            for (FaultListener l : listeners) {
                try {
                    l.fault(f);
                } catch (RuntimeException e) {
                    // a listener's failure must not stop fault handling
                }
            }
        }
    }

    /** A fault record (§3.2: CAUSE, PID, PV, PRIV, TTYP, DID, iotval, iotval2) as an {@link IommuFault}. */
    IommuFault decode(long[] r) {
        long header = r[0];
        int cause = FaultRecord.cause(header);
        int did = FaultRecord.deviceId(header);
        int pid = FaultRecord.processId(header);
        long iotval = r[2];
        long iotval2 = r[3];
        int access = switch (FaultRecord.ttyp(header)) {
            case FaultRecord.TTYP_UNTRANSLATED_EXEC, 5 -> Access.READ | Access.EXEC;
            case FaultRecord.TTYP_UNTRANSLATED_READ, 6 -> Access.READ;
            case FaultRecord.TTYP_UNTRANSLATED_WRITE, 7 -> Access.WRITE;
            default -> 0;
        };
        if ((header & FaultRecord.PRIV) != 0) {
            access |= Access.PRIV;
        }
        FaultKind kind;
        Stage stage;
        switch (cause) {
            case FaultRecord.INSTRUCTION_PAGE_FAULT, FaultRecord.READ_PAGE_FAULT, FaultRecord.WRITE_PAGE_FAULT:
                stage = Stage.STAGE1;
                kind = firstStageMapped(did, pid, iotval) ? FaultKind.PERMISSION : FaultKind.TRANSLATION;
                break;
            case FaultRecord.INSTRUCTION_GUEST_PAGE_FAULT, FaultRecord.READ_GUEST_PAGE_FAULT,
                    FaultRecord.WRITE_GUEST_PAGE_FAULT: {
                stage = Stage.STAGE2;
                RiscvDomain d = devices.get(did);
                long gpa = iotval2 & ~3L;
                kind = d != null && d.table() != null && !d.isFreed() && d.iovaToPhys(gpa) != -1 ? FaultKind.PERMISSION
                        : FaultKind.TRANSLATION;
                break;
            }
            case FaultRecord.INSTRUCTION_ACCESS_FAULT, FaultRecord.READ_ACCESS_FAULT, FaultRecord.WRITE_ACCESS_FAULT,
                    FaultRecord.PT_DATA_CORRUPTION:
                stage = Stage.STAGE1;
                kind = FaultKind.WALK_EXTERNAL_ABORT;
                break;
            case FaultRecord.ALL_INBOUND_DISALLOWED:
                stage = Stage.CONFIG;
                kind = FaultKind.BLOCKED;
                break;
            default:
                stage = Stage.CONFIG;
                kind = FaultKind.CONFIGURATION;
                break;
        }
        return new IommuFault(name, did, pid < 0 ? Pasids.NO_PASID : pid, iotval, access, kind, stage, cause,
                FaultRecord.causeName(cause));
    }

    /**
     * @return whether the first-stage table the device uses for {@code pid} has a valid leaf at
     *     {@code va}: the driver's own table for a host SVA binding, else the guest's, found
     *     through the guest PDT (GPAs, read through the parent's G-stage)
     */
    private boolean firstStageMapped(int did, int pid, long va) {
        try {
            ProcessDirectory pd = sva.directory(did);
            if (pd != null) {
                ProcessDirectory.Binding b = pd.bindings.get(pid);
                return b != null && leafAt(b.pgd(), DeviceContext.atpLevels(b.iosatpMode()), va,
                        LongUnaryOperator.identity());
            }
            RiscvDomain d = devices.get(did);
            PasidTableConfig c = pasidTables.config(did);
            if (d == null || c == null || c.config() != PasidTableConfig.TRANSLATE || d.isFreed()) {
                return false;
            }
            int process = pid >= 0 ? pid : c.s1dss() == 2 ? 0 : -1;
            if (process < 0 || process >>> c.pasidBits() != 0) {
                return false;
            }
            // The guest's PDT and first-stage table are GPAs: read them through the G-stage.
            LongUnaryOperator g = d::iovaToPhys;
            long table = c.basePtr();
            int levels = ProcessContext.levels(caps.pdtMode(c.pasidBits()));
            for (int level = levels - 1; level > 0; level--) {
                long e = read(g, table + 8L * ProcessContext.pdi(process, level));
                if ((e & 1) == 0) {
                    return false;
                }
                table = Reg.ppnAddress(e);
            }
            long pc = table + (long) ProcessContext.SIZE * ProcessContext.pdi(process, 0);
            long ta = read(g, pc + ProcessContext.TA);
            long fsc = read(g, pc + ProcessContext.FSC);
            return (ta & ProcessContext.TA_V) != 0
                    && leafAt(DeviceContext.atpRoot(fsc), DeviceContext.atpLevels(DeviceContext.atpMode(fsc)), va, g);
        } catch (MemoryAccessException | NotMapped e) {
            return false;
        }
    }

    /** An address a table walk could not translate or read. */
    private static final class NotMapped extends RuntimeException {
        private static final long serialVersionUID = 1L;

        NotMapped() {
            super(null, null, false, false);
        }
    }

    private long read(LongUnaryOperator toPa, long address) {
        long pa = toPa.applyAsLong(address);
        if (pa < 0) {
            throw new NotMapped();
        }
        return memory.read64(pa);
    }

    /**
     * A software walk of an Sv39/48/57 table (privileged ISA §4.3.2): is there a valid leaf at
     * {@code va}? Not the pgtable {@code Walker}: that one sets A/D bits as hardware does, and
     * looking must not change the tables.
     */
    private boolean leafAt(long root, int levels, long va, LongUnaryOperator toPa) {
        long table = root;
        for (int depth = 0; depth < levels; depth++) {
            int shift = 12 + 9 * (levels - 1 - depth);
            long pte = read(toPa, table + 8L * ((va >>> shift) & 511));
            if ((pte & RiscvPaging.V) == 0) {
                return false;
            }
            if ((pte & (RiscvPaging.R | RiscvPaging.W | RiscvPaging.X)) != 0) {
                return true;
            }
            table = ((pte >>> 10) & ((1L << 44) - 1)) << 12;
        }
        return false;
    }
}
