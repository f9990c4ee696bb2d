package org.iommulab.riscv.internal.hw;

import java.util.function.LongSupplier;

import org.iommulab.api.memory.MemoryAccessException;
import org.iommulab.api.memory.PhysicalMemory;
import org.iommulab.api.pasid.Pasids;
import org.iommulab.riscv.internal.spec.Command;
import org.iommulab.riscv.internal.spec.DeviceContext;
import org.iommulab.riscv.internal.spec.Reg;

/**
 * The command queue's consumer (spec §3.1 "Command-Queue"): fetches 16-byte commands from cqh up
 * to cqt and executes them in order, synchronously (the write of cqt, or of cqcsr enabling the
 * queue or clearing an error, returns after the unit consumed up to cqt or stopped). It stops,
 * with cqh at the command, on
 * <ul>
 * <li>an illegal or unsupported command: a reserved opcode or func3, a reserved bit set, NL or S
 * (the non-leaf and range extensions are not implemented, capabilities.NL = S = 0), PSCV with
 * IOTINVAL.GVMA, IOFENCE.C with WSI while fctl.WSI = 0, IODIR.INVAL_DDT with a PID, IODIR.INVAL_PDT
 * without DV, a DID wider than ddtp.iommu_mode allows, a PID wider than the PD* capabilities, any
 * ATS command without capabilities.ATS: cqcsr.cmd_ill;</li>
 * <li>a command that cannot be fetched, or an IOFENCE.C whose DATA write fails: cqcsr.cqmf;</li>
 * </ul>
 * until software clears the bit (RW1C), which resumes processing. Both raise cip with cqcsr.cie.
 * ATS.INVAL completes at once (no device ATC is modelled, so cmd_to never happens). IOFENCE.C with
 * WSI sets cqcsr.fence_w_ip (cip with cie); with AV it writes DATA to ADDR[63:2] * 4; PR and PW need
 * no action (every earlier request has completed).
 *
 * <p>Not thread safe: the owner calls it under its register lock.
 */
final class CommandProcessor {
    /** Outcomes of one command. */
    private static final int DONE = 0;
    private static final int ILLEGAL = 1;
    private static final int MEMORY_FAULT = 2;

    private final PhysicalMemory memory;
    private final RiscvConfig config;
    private final QueueRegisters cq;
    private final Interrupts interrupts;
    private final Translator translator;
    private final PageRequestQueue pageRequests;
    private final GuestReporter guest;
    private final LongSupplier ddtp;
    private final java.util.function.BooleanSupplier wsi;
    long executed;
    long illegal;
    long fences;

    CommandProcessor(PhysicalMemory memory, RiscvConfig config, QueueRegisters cq, Interrupts interrupts,
            Translator translator, PageRequestQueue pageRequests, GuestReporter guest, LongSupplier ddtp,
            java.util.function.BooleanSupplier wsi) {
        this.memory = memory;
        this.config = config;
        this.cq = cq;
        this.interrupts = interrupts;
        this.translator = translator;
        this.pageRequests = pageRequests;
        this.guest = guest;
        this.ddtp = ddtp;
        this.wsi = wsi;
    }

    /** Consumes commands from cqh to cqt while the queue is on and no error bit stops it. */
    void process() {
        int stop = Reg.CSR_MF | Reg.CQCSR_CMD_TO | Reg.CQCSR_CMD_ILL;
        while (cq.on() && (cq.csr & stop) == 0 && cq.unitIndex != cq.softwareIndex) {
            long a = cq.entryAddress(cq.unitIndex);
            long d0;
            long d1;
            try {
                if (a < 0) {
                    error(Reg.CSR_MF);
                    return;
                }
                d0 = memory.read64(a);
                d1 = memory.read64(a + 8);
            } catch (MemoryAccessException e) {
                error(Reg.CSR_MF);
                return;
            }
            int result = execute(d0, d1);
            if (result == ILLEGAL) {
                illegal++;
                error(Reg.CQCSR_CMD_ILL);
                return;
            }
            if (result == MEMORY_FAULT) {
                error(Reg.CSR_MF);
                return;
            }
            executed++;
            cq.unitIndex = (cq.unitIndex + 1) & cq.indexMask();
        }
    }

    private void error(int bit) {
        cq.setError(bit);
        if (cq.interruptEnabled()) {
            interrupts.raise(Reg.IPSR_CIP);
        }
    }

    /** Executes one command (§3.1.1-§3.1.4). */
    private int execute(long d0, long d1) {
        int func3 = Command.func3(d0);
        switch (Command.opcode(d0)) {
            case Command.OPCODE_IOTINVAL:
                return iotinval(d0, d1, func3);
            case Command.OPCODE_IOFENCE:
                return iofence(d0, d1, func3);
            case Command.OPCODE_IODIR:
                return iodir(d0, d1, func3);
            case Command.OPCODE_ATS:
                return ats(d0, d1, func3);
            default:
                return ILLEGAL; // 0, 5-63 reserved; 64-127 custom, none defined
        }
    }

    /** §3.1.1 IOTINVAL.VMA / IOTINVAL.GVMA. */
    private int iotinval(long d0, long d1, int func3) {
        if ((d0 & Command.IOTINVAL_RESERVED0) != 0 || (d1 & Command.IOTINVAL_RESERVED1) != 0
                || (func3 != Command.FUNC_IOTINVAL_VMA && func3 != Command.FUNC_IOTINVAL_GVMA)) {
            return ILLEGAL;
        }
        boolean av = (d0 & Command.IOTINVAL_AV) != 0;
        boolean pscv = (d0 & Command.IOTINVAL_PSCV) != 0;
        boolean gv = (d0 & Command.IOTINVAL_GV) != 0;
        int pscid = (int) (d0 >>> Command.IOTINVAL_PSCID_SHIFT) & 0xfffff;
        int gscid = (int) (d0 >>> Command.IOTINVAL_GSCID_SHIFT) & 0xffff;
        long address = Command.iotinvalAddressOf(d1);
        if (func3 == Command.FUNC_IOTINVAL_GVMA) {
            if (pscv) {
                return ILLEGAL; // "Setting PSCV to 1 with IOTINVAL.GVMA is illegal."
            }
            translator.iotlb.invalidateGvma(gv, gscid, av, address);
        } else {
            translator.iotlb.invalidateVma(gv, gscid, pscv, pscid, av, address);
            guest.vmaInvalidated(pscv, pscid, av, address);
        }
        return DONE;
    }

    /** §3.1.2 IOFENCE.C: every earlier command has completed; then the optional write and WSI. */
    private int iofence(long d0, long d1, int func3) {
        if (func3 != Command.FUNC_IOFENCE_C || (d0 & Command.IOFENCE_RESERVED0) != 0
                || (d1 & Command.IOFENCE_RESERVED1) != 0) {
            return ILLEGAL;
        }
        boolean wsiBit = (d0 & Command.IOFENCE_WSI) != 0;
        if (wsiBit && !wsi.getAsBoolean()) {
            return ILLEGAL; // WSI "is reserved if ... wired-interrupts have not been enabled"
        }
        if ((d0 & Command.IOFENCE_AV) != 0) {
            long address = (d1 & ((1L << 62) - 1)) << 2;
            if ((address + 3) >>> config.pas != 0) {
                return MEMORY_FAULT;
            }
            try {
                memory.write32(address, (int) (d0 >>> 32));
            } catch (MemoryAccessException e) {
                return MEMORY_FAULT;
            }
        }
        fences++;
        if (wsiBit) {
            cq.csr |= Reg.CQCSR_FENCE_W_IP;
            if (cq.interruptEnabled()) {
                interrupts.raise(Reg.IPSR_CIP);
            }
        }
        return DONE;
    }

    /** §3.1.3 IODIR.INVAL_DDT / IODIR.INVAL_PDT. */
    private int iodir(long d0, long d1, int func3) {
        if ((d0 & Command.IODIR_RESERVED0) != 0 || d1 != 0) {
            return ILLEGAL;
        }
        boolean dv = (d0 & Command.IODIR_DV) != 0;
        int did = (int) (d0 >>> Command.IODIR_DID_SHIFT) & 0xff_ffff;
        int pid = (int) (d0 >>> Command.IODIR_PID_SHIFT) & 0xfffff;
        int levels = DeviceContext.levels((int) (ddtp.getAsLong() & Reg.DDTP_MODE_MASK));
        int didBits = levels == 0 ? 24 : DeviceContext.deviceIdBits(levels);
        if (dv && (did >>> didBits) != 0) {
            return ILLEGAL; // "the value of the DID operand must not be wider than ... ddtp.iommu_mode"
        }
        DirectoryWalker dirs = translator.directory;
        if (func3 == Command.FUNC_IODIR_INVAL_DDT) {
            if (pid != 0) {
                return ILLEGAL; // PID is reserved for INVAL_DDT
            }
            if (!dv) {
                dirs.dcCache.invalidateAll();
                dirs.pcCache.invalidateAll();
                guest.allDeviceContextsChanged(dirs, ddtp.getAsLong());
            } else {
                long key = DirectoryWalker.dcKey(did);
                dirs.dcCache.invalidateKeys(k -> k == key);
                dirs.pcCache.invalidateKeys(k -> (k >>> 20) == key);
                guest.deviceContextChanged(did, dirs, ddtp.getAsLong());
            }
            return DONE;
        }
        if (func3 == Command.FUNC_IODIR_INVAL_PDT) {
            if (!dv || (pid >>> config.processIdBits()) != 0) {
                return ILLEGAL;
            }
            long key = DirectoryWalker.pcKey(did, pid);
            dirs.pcCache.invalidateKeys(k -> k == key);
            guest.pdtInvalidated(pid);
            return DONE;
        }
        return ILLEGAL;
    }

    /** §3.1.4 ATS.INVAL / ATS.PRGR (capabilities.ATS). */
    private int ats(long d0, long d1, int func3) {
        if (!config.ats || (d0 & Command.ATS_RESERVED0) != 0) {
            return ILLEGAL;
        }
        if (func3 == Command.FUNC_ATS_INVAL) {
            return DONE; // no device ATC is modelled: the invalidation completes at once
        }
        if (func3 != Command.FUNC_ATS_PRGR) {
            return ILLEGAL;
        }
        int rid = (int) (d0 >>> Command.ATS_RID_SHIFT) & 0xffff;
        int deviceId = (d0 & Command.ATS_DSV) != 0 ? (int) (d0 >>> 56) << 16 | rid : rid;
        int pasid = (d0 & Command.ATS_PV) != 0 ? (int) (d0 >>> Command.ATS_PID_SHIFT) & 0xfffff : Pasids.NO_PASID;
        int group = (int) (d1 >>> Command.PRGR_INDEX_SHIFT) & 0x1ff;
        int code = (int) (d1 >>> Command.PRGR_CODE_SHIFT) & 0xf;
        pageRequests.respond(deviceId, pasid, group, code);
        guest.pageResponse(deviceId, pasid, group, PageRequestQueue.response(code));
        return DONE;
    }
}
