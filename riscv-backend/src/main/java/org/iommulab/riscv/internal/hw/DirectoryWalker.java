package org.iommulab.riscv.internal.hw;

import org.iommulab.api.memory.MemoryAccessException;
import org.iommulab.api.memory.PhysicalMemory;
import org.iommulab.api.translation.Access;
import org.iommulab.api.translation.FaultKind;
import org.iommulab.api.translation.Stage;
import org.iommulab.api.translation.Translation;
import org.iommulab.pgtable.WalkFault;
import org.iommulab.pgtable.WalkResult;
import org.iommulab.pgtable.Walker;
import org.iommulab.pgtable.format.RiscvPaging;
import org.iommulab.pgtable.tlb.EntryCache;
import org.iommulab.riscv.internal.spec.DeviceContext;
import org.iommulab.riscv.internal.spec.FaultRecord;
import org.iommulab.riscv.internal.spec.ProcessContext;
import org.iommulab.riscv.internal.spec.Reg;

/**
 * Locates device and process contexts (spec §2.3.1 "Process to locate the Device-context"
 * (GET_DC), §2.3.2 "Process to locate the Process-context" (GET_PC)) and checks them (§2.1.4
 * "Device-context configuration checks", §2.2.4 "Process-context configuration checks"),
 * through the directory caches: a DC cache tagged by device_id and a PC cache tagged by
 * (device_id, process_id), invalidated only by IODIR (§3.1.3). Only valid, well-formed contexts
 * are cached ("Caching in-memory data structures": nothing with V = 0 may be cached). A PC read through the G-stage is cached as
 * read; the G-stage translation of PDT addresses is not cached (every miss walks it again).
 *
 * <p>Thread safe and allocation free (per-thread state lives in {@link Scratch}).
 */
final class DirectoryWalker {
    private final PhysicalMemory memory;
    private final RiscvConfig config;
    final EntryCache dcCache = new EntryCache(256, 4);
    final EntryCache pcCache = new EntryCache(1024, 2);

    DirectoryWalker(PhysicalMemory memory, RiscvConfig config) {
        this.memory = memory;
        this.config = config;
    }

    /** @return the DC cache key of a device */
    static long dcKey(int deviceId) {
        return deviceId & 0xff_ffffL;
    }

    /** @return the PC cache key of (device_id, process_id) */
    static long pcKey(int deviceId, int processId) {
        return (deviceId & 0xff_ffffL) << 20 | (processId & 0xfffff);
    }

    private boolean beyondPas(long address) {
        return address >>> config.pas != 0;
    }

    /**
     * GET_DC (§2.3.1): the DDT walk from ddtp, then the 32-byte base-format DC (MSI_FLAT is 0),
     * into {@code s.dc}. The caller has checked that the device_id fits the mode.
     *
     * @param ddtp the ddtp register (mode 1LVL, 2LVL or 3LVL)
     * @return {@code true} with the DC in {@code s.dc}; else the fault is in {@code out}/{@code s}
     *     (257 load access fault, 258 not valid, 259 misconfigured)
     */
    boolean deviceContext(long ddtp, int deviceId, Scratch s, Translation out) {
        long key = dcKey(deviceId);
        if (s.explain == null && dcCache.lookup(key, s.dc)) {
            return true;
        }
        long generation = dcCache.generation();
        int levels = DeviceContext.levels((int) (ddtp & Reg.DDTP_MODE_MASK));
        long a = Reg.ppnAddress(ddtp);
        // Steps 2-7: the non-leaf DDT entries, DDI[LEVELS - 1] down to DDI[1].
        for (int i = levels - 1; i > 0; i--) {
            long entryAddress = a + DeviceContext.ddi(deviceId, i) * 8L;
            long ddte;
            try {
                if (beyondPas(entryAddress)) {
                    return configFault(s, out, FaultRecord.DDT_LOAD_ACCESS_FAULT, entryAddress);
                }
                ddte = memory.read64(entryAddress);
            } catch (MemoryAccessException e) {
                return configFault(s, out, FaultRecord.DDT_LOAD_ACCESS_FAULT, entryAddress);
            }
            if (s.explain != null) {
                s.note("DDT[" + i + "] entry " + DeviceContext.ddi(deviceId, i), entryAddress, ddte,
                        (ddte & DeviceContext.DDTE_V) == 0 ? "not valid"
                                : String.format("next DDT 0x%x%s", Reg.ppnAddress(ddte),
                                        (ddte & DeviceContext.DDTE_RESERVED) != 0 ? ", reserved bits set" : ""));
            }
            if ((ddte & DeviceContext.DDTE_V) == 0) {
                return configFault(s, out, FaultRecord.DDT_INVALID, entryAddress);
            }
            if ((ddte & DeviceContext.DDTE_RESERVED) != 0) {
                return configFault(s, out, FaultRecord.DDT_MISCONFIGURED, entryAddress);
            }
            a = Reg.ppnAddress(ddte);
        }
        // Step 8: the DC at a + DDI[0] * DC_SIZE.
        long dcAddress = a + DeviceContext.ddi(deviceId, 0) * (long) DeviceContext.SIZE;
        try {
            if (beyondPas(dcAddress + DeviceContext.SIZE - 1)) {
                return configFault(s, out, FaultRecord.DDT_LOAD_ACCESS_FAULT, dcAddress);
            }
            for (int i = 0; i < 4; i++) {
                s.dc[i] = memory.read64(dcAddress + 8L * i);
            }
        } catch (MemoryAccessException e) {
            return configFault(s, out, FaultRecord.DDT_LOAD_ACCESS_FAULT, dcAddress);
        }
        if (s.explain != null) {
            s.note("DC " + deviceId, dcAddress, s.dc[0], describeDc(s.dc));
        }
        // Steps 9-10.
        if ((s.dc[0] & DeviceContext.TC_V) == 0) {
            return configFault(s, out, FaultRecord.DDT_INVALID, dcAddress);
        }
        if (misconfigured(s.dc)) {
            return configFault(s, out, FaultRecord.DDT_MISCONFIGURED, dcAddress);
        }
        if (s.explain == null) {
            dcCache.fill(key, s.dc, generation);
        }
        return true;
    }

    /**
     * Reads a DC straight from memory, bypassing the cache and recording nothing (the guest
     * listener's view after IODIR.INVAL_DDT).
     *
     * @return the DC's four doublewords, or {@code null} if it cannot be located or is not valid
     *     and well formed
     */
    long[] readDeviceContext(long ddtp, int deviceId) {
        Scratch s = new Scratch();
        s.explain = new java.util.ArrayList<>();
        int levels = DeviceContext.levels((int) (ddtp & Reg.DDTP_MODE_MASK));
        if (levels == 0 || (deviceId >>> DeviceContext.deviceIdBits(levels)) != 0) {
            return null;
        }
        return deviceContext(ddtp, deviceId, s, new Translation()) ? s.dc.clone() : null;
    }

    /**
     * §2.1.4: the rules that make a valid DC misconfigured (cause 259). This model: MSI_FLAT 0,
     * T2GPA 0, END 0 with fctl.BE 0, fctl.GXL 0, QOSID 0 (so RCID/MCID in DC.ta are reserved).
     */
    boolean misconfigured(long[] dc) {
        long tc = dc[0];
        long iohgatp = dc[1];
        long ta = dc[2];
        long fsc = dc[3];
        boolean enAts = (tc & DeviceContext.TC_EN_ATS) != 0;
        boolean enPri = (tc & DeviceContext.TC_EN_PRI) != 0;
        boolean prpr = (tc & DeviceContext.TC_PRPR) != 0;
        boolean pdtv = (tc & DeviceContext.TC_PDTV) != 0;
        // 1. Reserved bits (tc 63:12, including the custom bits this model does not define;
        //    ta 11:0 and 63:32; fsc 59:44).
        if ((tc & DeviceContext.TC_RESERVED) != 0 || (ta & DeviceContext.DC_TA_RESERVED) != 0
                || (fsc & DeviceContext.FSC_RESERVED) != 0) {
            return true;
        }
        // 2. EN_ATS, EN_PRI, PRPR without capabilities.ATS.
        if (!config.ats && (enAts || enPri || prpr)) {
            return true;
        }
        // 3-7. T2GPA needs EN_ATS and capabilities.T2GPA (0 here); EN_PRI needs EN_ATS; PRPR needs EN_PRI.
        if ((tc & DeviceContext.TC_T2GPA) != 0 || (!enAts && enPri) || (!enPri && prpr)) {
            return true;
        }
        // 8. pdtp.MODE reserved or not supported.
        if (pdtv && !config.pdtpSupported(DeviceContext.atpMode(fsc))) {
            return true;
        }
        // 9-11. iosatp.MODE reserved or not supported (SXL is 0, checked below); 12. DPE without PDTV.
        if (!pdtv && (!config.firstStageSupported(DeviceContext.atpMode(fsc)) || (tc & DeviceContext.TC_DPE) != 0)) {
            return true;
        }
        // 13-15. iohgatp.MODE reserved or not supported (fctl.GXL is 0).
        int gMode = DeviceContext.atpMode(iohgatp);
        if (!config.gStageSupported(gMode)) {
            return true;
        }
        // 17. The G-stage root must be 16-KiB aligned.
        if (gMode != DeviceContext.ATP_BARE && (iohgatp & 3) != 0) {
            return true;
        }
        // 18. SADE / GADE without capabilities.AMO_HWAD.
        if (!config.hardwareAd && (tc & (DeviceContext.TC_SADE | DeviceContext.TC_GADE)) != 0) {
            return true;
        }
        // 19-21. END is 0 and fctl.BE is 0 and not writable: SBE must be 0; fctl.GXL is 0 and not
        //    writable: SXL must be 0.
        return (tc & (DeviceContext.TC_SBE | DeviceContext.TC_SXL)) != 0;
    }

    /**
     * GET_PC (§2.3.2) into {@code s.pc}. When the G-stage is active every PDT address is a GPA,
     * translated as an implicit read: a G-stage page fault is reported as a guest-page fault of
     * the original access type with iotval2 = GPA | 1 (implicit), an access fault as cause 265.
     *
     * @param pdtp DC.fsc with DC.tc.PDTV = 1 (mode PD8, PD17 or PD20)
     * @param g the G-stage format, or {@code null} when iohgatp is Bare
     * @param gRoot the G-stage root
     * @param access the request's {@link Access} bits (the guest-page fault's type)
     * @param update set A/D bits in the G-stage
     * @return {@code true} with the PC in {@code s.pc}; else the fault is in {@code out}/{@code s}
     */
    boolean processContext(int deviceId, int processId, long pdtp, RiscvPaging g, long gRoot, int access,
            boolean update, Scratch s, Translation out) {
        long key = pcKey(deviceId, processId);
        if (s.explain == null && pcCache.lookup(key, s.pc)) {
            return true;
        }
        long generation = pcCache.generation();
        int levels = ProcessContext.levels(DeviceContext.atpMode(pdtp));
        long a = DeviceContext.atpRoot(pdtp);
        for (int i = levels - 1; i > 0; i--) {
            long entryAddress = a + ProcessContext.pdi(processId, i) * 8L;
            long spa = pdtAddress(entryAddress, g, gRoot, access, update, s, out);
            if (spa < 0) {
                return false;
            }
            long pdte;
            try {
                pdte = memory.read64(spa);
            } catch (MemoryAccessException e) {
                return configFault(s, out, FaultRecord.PDT_LOAD_ACCESS_FAULT, entryAddress);
            }
            if (s.explain != null) {
                s.note("PDT[" + i + "] entry " + ProcessContext.pdi(processId, i), spa, pdte,
                        (pdte & DeviceContext.DDTE_V) == 0 ? "not valid"
                                : String.format("next PDT 0x%x%s", Reg.ppnAddress(pdte),
                                        (pdte & DeviceContext.DDTE_RESERVED) != 0 ? ", reserved bits set" : ""));
            }
            // The non-leaf PDT entry has the non-leaf DDT entry's layout: V 0, PPN 53:10.
            if ((pdte & DeviceContext.DDTE_V) == 0) {
                return configFault(s, out, FaultRecord.PDT_INVALID, entryAddress);
            }
            if ((pdte & DeviceContext.DDTE_RESERVED) != 0) {
                return configFault(s, out, FaultRecord.PDT_MISCONFIGURED, entryAddress);
            }
            a = Reg.ppnAddress(pdte);
        }
        long pcAddress = a + ProcessContext.pdi(processId, 0) * (long) ProcessContext.SIZE;
        long spa = pdtAddress(pcAddress, g, gRoot, access, update, s, out);
        if (spa < 0) {
            return false;
        }
        try {
            s.pc[0] = memory.read64(spa);
            s.pc[1] = memory.read64(spa + 8);
        } catch (MemoryAccessException e) {
            return configFault(s, out, FaultRecord.PDT_LOAD_ACCESS_FAULT, pcAddress);
        }
        if (s.explain != null) {
            s.note("PC " + processId, spa, s.pc[0], describePc(s.pc));
        }
        if ((s.pc[0] & ProcessContext.TA_V) == 0) {
            return configFault(s, out, FaultRecord.PDT_INVALID, pcAddress);
        }
        // §2.2.4: reserved bits (ta 11:3 and 63:32, fsc 59:44), an iosatp MODE that is reserved or
        // not supported (SXL is 0).
        if ((s.pc[0] & ProcessContext.TA_RESERVED) != 0 || (s.pc[1] & DeviceContext.FSC_RESERVED) != 0
                || !config.firstStageSupported(DeviceContext.atpMode(s.pc[1]))) {
            return configFault(s, out, FaultRecord.PDT_MISCONFIGURED, pcAddress);
        }
        if (s.explain == null) {
            pcCache.fill(key, s.pc, generation);
        }
        return true;
    }

    /**
     * §2.3.2 step 3: a PDT address through the G-stage (an implicit read).
     *
     * @return the supervisor physical address, or -1 with the fault recorded
     */
    private long pdtAddress(long gpa, RiscvPaging g, long gRoot, int access, boolean update, Scratch s,
            Translation out) {
        if (g == null) {
            if (beyondPas(gpa)) {
                configFault(s, out, FaultRecord.PDT_LOAD_ACCESS_FAULT, gpa);
                return -1;
            }
            return gpa;
        }
        WalkResult w = s.walk;
        if (Walker.walk(memory, g, gRoot, gpa, Access.READ | Access.PRIV, update, w)) {
            if (s.explain != null) {
                for (int i = 0; i < w.steps(); i++) {
                    s.note("G-stage " + w.stepLevel(i) + " (PDT address)", w.stepAddress(i), w.stepEntry(i),
                            g.describe(w.stepEntry(i), i));
                }
            }
            return w.outputAddress();
        }
        WalkFault f = w.fault();
        if (f == WalkFault.TABLE_FETCH || f == WalkFault.AD_UPDATE || f == WalkFault.OUTPUT_RANGE) {
            // "An access fault in the second stage is reported as PDT entry load access fault".
            configFault(s, out, FaultRecord.PDT_LOAD_ACCESS_FAULT, gpa);
            return -1;
        }
        s.iotval2 = (gpa & ~3L) | FaultRecord.IOTVAL2_IMPLICIT;
        s.fail(out, w.faultKind(), Stage.STAGE2, Causes.guestPageFault(access), w.faultDepth(), gpa);
        return -1;
    }

    private static boolean configFault(Scratch s, Translation out, int cause, long address) {
        return s.fail(out, FaultKind.CONFIGURATION, Stage.CONFIG, cause, 0, address);
    }

    static String describeDc(long[] dc) {
        long tc = dc[0];
        return String.format("tc 0x%x (V %d EN_ATS %d EN_PRI %d DTF %d PDTV %d PRPR %d GADE %d SADE %d DPE %d), "
                + "iohgatp mode %d GSCID %d root 0x%x, ta PSCID %d, fsc mode %d root 0x%x", tc, tc & 1, (tc >>> 1) & 1,
                (tc >>> 2) & 1, (tc >>> 4) & 1, (tc >>> 5) & 1, (tc >>> 6) & 1, (tc >>> 7) & 1, (tc >>> 8) & 1,
                (tc >>> 9) & 1, DeviceContext.atpMode(dc[1]), DeviceContext.gscid(dc[1]), DeviceContext.atpRoot(dc[1]),
                (dc[2] & DeviceContext.TA_PSCID_MASK) >>> DeviceContext.TA_PSCID_SHIFT, DeviceContext.atpMode(dc[3]),
                DeviceContext.atpRoot(dc[3]));
    }

    static String describePc(long[] pc) {
        return String.format("ta V %d ENS %d SUM %d PSCID %d, fsc mode %d root 0x%x", pc[0] & 1, (pc[0] >>> 1) & 1,
                (pc[0] >>> 2) & 1, ProcessContext.pscid(pc[0]), DeviceContext.atpMode(pc[1]),
                DeviceContext.atpRoot(pc[1]));
    }
}
