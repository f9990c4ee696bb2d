package org.iommulab.riscv.internal.hw;

import org.iommulab.api.errno.IommuException;
import org.iommulab.api.memory.PhysicalMemory;
import org.iommulab.api.pasid.Pasids;
import org.iommulab.api.translation.Access;
import org.iommulab.api.translation.FaultKind;
import org.iommulab.api.translation.Stage;
import org.iommulab.api.translation.Translation;
import org.iommulab.pgtable.Perm;
import org.iommulab.pgtable.WalkFault;
import org.iommulab.pgtable.WalkResult;
import org.iommulab.pgtable.Walker;
import org.iommulab.pgtable.format.RiscvPaging;
import org.iommulab.riscv.internal.spec.DeviceContext;
import org.iommulab.riscv.internal.spec.FaultRecord;
import org.iommulab.riscv.internal.spec.ProcessContext;
import org.iommulab.riscv.internal.spec.Reg;

/**
 * The spec's "Process to translate an IOVA" (§2.3) for untranslated requests, step by step: ddtp
 * Off (256) and Bare, the device_id width (260), GET_DC, the process_id checks (260), PDTV = 0
 * (DC.fsc is iosatp, DC.ta.PSCID), DPE, pdtp Bare, GET_PC (through the G-stage), the ENS check
 * (260), then the two-stage translation of the privileged spec (first stage Sv39/48/57 nested in
 * the G-stage Sv39x4/48x4/57x4) with the pgtable {@link Walker}, through the {@link Iotlb}.
 *
 * <p>Privilege: PCIe carries the privilege only in a PASID prefix, so a request without a
 * process_id (and one given the default process_id 0 by DPE) is a user request whatever its
 * {@link Access#PRIV} bit (the reference model clears priv_req for DPE). G-stage accesses are
 * user accesses (§2.3: "When checking the U bit in a second-stage PTE, the transaction is treated
 * as not requesting supervisor privilege").
 *
 * <p>Faults: page faults 12/13/15 in the first stage, guest-page faults 20/21/23 in the G-stage
 * (including implicit accesses of the first-stage walk: iotval2 = GPA with bit 0 set, and bit 1
 * when the implicit access was the A/D update), access faults 1/5/7 when a table read or A/D
 * write hits memory that is not there or lies beyond capabilities.PAS (a page beyond PAS is not
 * the IOMMU's fault: the translation completes, as in the reference model). A read for execute
 * needs X only (there is no MXR); its cause is the instruction fault. The fault's
 * {@link FaultKind} is the walk's (TRANSLATION for a not-valid or reserved entry, PERMISSION,
 * ACCESS_FLAG for A = 0 without SADE/GADE, WALK_EXTERNAL_ABORT, ADDRESS_SIZE), CONFIGURATION for
 * DDT/PDT causes, BLOCKED for Off.
 *
 * <p>Thread safe; a translation that hits the IOTLB allocates nothing.
 */
final class Translator {
    private static final int RWX = Access.READ | Access.WRITE | Access.EXEC;
    /** Restarts of one translation that overlapped invalidations, at most. */
    private static final int MAX_RESTARTS = 16;

    private final PhysicalMemory memory;
    final DirectoryWalker directory;
    final Iotlb iotlb;
    /** First-stage formats by (mode, SADE, SUM, nested). */
    private final RiscvPaging[] firstStage = new RiscvPaging[3 * 8];
    /** G-stage formats by (mode, GADE). */
    private final RiscvPaging[] gStage = new RiscvPaging[3 * 2];
    private final ThreadLocal<Scratch> scratch = ThreadLocal.withInitial(Scratch::new);

    Translator(PhysicalMemory memory, RiscvConfig config) throws IommuException {
        // Implicit accesses reach only the first 2^PAS bytes (§5.3): a table beyond is an access fault.
        this.memory = new PasMemory(memory, config.pas);
        this.directory = new DirectoryWalker(this.memory, config);
        this.iotlb = new Iotlb(config.iotlbSize);
        for (RiscvPaging.Mode m : RiscvPaging.Mode.values()) {
            for (int i = 0; i < 8; i++) {
                boolean sade = (i & 4) != 0;
                boolean sum = (i & 2) != 0;
                boolean nested = (i & 1) != 0;
                // Output addresses as wide as the 44-bit PPNs allow: a table beyond PAS fails when it
                // is read (PasMemory: access fault); a page beyond PAS is the IO bridge's business
                // (the translation completes, as in the reference model). Nested, the G-stage
                // checks the GPA against its own width.
                firstStage[m.ordinal() * 8 + i] = RiscvPaging.firstStage(m, 56, sade, sum, false);
            }
            gStage[m.ordinal() * 2] = RiscvPaging.gStage(m, 56, false);
            gStage[m.ordinal() * 2 + 1] = RiscvPaging.gStage(m, 56, true);
        }
    }

    Scratch scratch() {
        return scratch.get();
    }

    RiscvPaging gFormat(int atpMode, boolean gade) {
        return gStage[DeviceContext.pagingMode(atpMode).ordinal() * 2 + (gade ? 1 : 0)];
    }

    RiscvPaging firstFormat(int atpMode, boolean sade, boolean sum, boolean nested) {
        return firstStage[DeviceContext.pagingMode(atpMode).ordinal() * 8 + (sade ? 4 : 0) + (sum ? 2 : 0)
                + (nested ? 1 : 0)];
    }

    /**
     * Translates one untranslated request.
     *
     * @param ddtp the ddtp register
     * @param deviceId device_id (requester id)
     * @param pasid process_id, or {@link Pasids#NO_PASID}
     * @param address the IOVA
     * @param access {@link Access} bits
     * @param update a real request (A/D updates, caches filled) rather than an explanation
     * @param out the result
     * @param s scratch; on a fault its cause, iotval2 and DTF describe the record to write
     * @return {@code out.isSuccess()}
     */
    boolean translate(long ddtp, int deviceId, int pasid, long address, int access, boolean update, Translation out,
            Scratch s) {
        for (int attempt = 0;; attempt++) {
            long tlbGeneration = iotlb.generation();
            long dcGeneration = directory.dcCache.generation();
            long pcGeneration = directory.pcCache.generation();
            boolean ok = translateOnce(ddtp, deviceId, pasid, address, access, update, out, s, tlbGeneration);
            // An IOFENCE.C completes only once requests that may have used invalidated state have
            // completed (§3.1.2). A model request is not atomic with an invalidation, so one that
            // overlapped any invalidation starts again, a bounded number of times.
            if (!update || attempt == MAX_RESTARTS || (iotlb.generation() == tlbGeneration
                    && directory.dcCache.generation() == dcGeneration && directory.pcCache.generation() == pcGeneration)) {
                return ok;
            }
        }
    }

    private boolean translateOnce(long ddtp, int deviceId, int pasid, long address, int access, boolean update,
            Translation out, Scratch s, long tlbGeneration) {
        s.reset();
        // Step 1: Off.
        int iommuMode = (int) (ddtp & Reg.DDTP_MODE_MASK);
        if (iommuMode == Reg.MODE_OFF) {
            return s.fail(out, FaultKind.BLOCKED, Stage.CONFIG, FaultRecord.ALL_INBOUND_DISALLOWED, 0, address);
        }
        // Step 2: Bare, untranslated requests pass through.
        if (iommuMode == Reg.MODE_BARE) {
            out.success(address, 12, RWX);
            return true;
        }
        // Steps 3-5: base-format DDI; a device_id too wide for the mode.
        int levels = DeviceContext.levels(iommuMode);
        if ((deviceId >>> DeviceContext.deviceIdBits(levels)) != 0) {
            return disallowed(s, out, address);
        }
        // Step 6: GET_DC.
        if (!directory.deviceContext(ddtp, deviceId, s, out)) {
            return false;
        }
        long tc = s.dc[0];
        s.dtf = (tc & DeviceContext.TC_DTF) != 0;
        boolean pdtv = (tc & DeviceContext.TC_PDTV) != 0;
        long fsc = s.dc[3];
        // Step 7: a process_id without PDTV, or wider than pdtp.MODE.
        boolean pv = pasid != Pasids.NO_PASID;
        if (pv && (!pdtv || pasid < 0 || (pasid >>> pidBits(DeviceContext.atpMode(fsc))) != 0)) {
            return disallowed(s, out, address);
        }
        boolean priv = pv && (access & Access.PRIV) != 0;
        long iohgatp = s.dc[1];
        int gMode = DeviceContext.atpMode(iohgatp);
        RiscvPaging g = gMode == DeviceContext.ATP_BARE ? null : gFormat(gMode, (tc & DeviceContext.TC_GADE) != 0);
        long gRoot = DeviceContext.atpRoot(iohgatp);
        long iosatp;
        int pscid = 0;
        boolean sum = false;
        if (!pdtv) {
            // Step 10: DC.fsc is iosatp, DC.ta.PSCID the address space.
            iosatp = fsc;
            pscid = (int) ((s.dc[2] & DeviceContext.TA_PSCID_MASK) >>> DeviceContext.TA_PSCID_SHIFT);
        } else {
            // Steps 11-13: DPE gives requests without a process_id the default 0 (as user requests).
            int processId = pv ? pasid : (tc & DeviceContext.TC_DPE) != 0 ? 0 : -1;
            if (processId < 0 || DeviceContext.atpMode(fsc) == DeviceContext.PDTP_BARE) {
                iosatp = 0;
            } else {
                // Step 14: GET_PC; step 15: supervisor requests need PC.ta.ENS.
                if (!directory.processContext(deviceId, processId, fsc, g, gRoot, access, update, s, out)) {
                    return false;
                }
                if (priv && (s.pc[0] & ProcessContext.TA_ENS) == 0) {
                    return disallowed(s, out, address);
                }
                iosatp = s.pc[1];
                pscid = ProcessContext.pscid(s.pc[0]);
                sum = (s.pc[0] & ProcessContext.TA_SUM) != 0;
            }
        }
        int request = priv ? access : access & ~Access.PRIV;
        if ((request & Access.EXEC) != 0) {
            request &= ~Access.READ; // a read for execute needs X, not R (privileged spec §4.3.2 step 5; no MXR)
        }
        int fsMode = DeviceContext.atpMode(iosatp);
        if (fsMode == DeviceContext.ATP_BARE && g == null) {
            out.success(address, 12, RWX);
            return true;
        }
        // Steps 17-19: the IOTLB, else the walk.
        long tag1 = g == null ? Iotlb.HOST : DeviceContext.gscid(iohgatp);
        long tag2 = fsMode == DeviceContext.ATP_BARE ? Iotlb.NO_PSCID : pscid;
        boolean write = (access & Access.WRITE) != 0;
        int check = fsMode == DeviceContext.ATP_BARE ? request | Access.PRIV : request;
        if (s.explain == null && iotlb.lookup(tag1, tag2, address, s.hit) && Perm.check(s.hit.permissions(), check) == null
                && (!write || s.hit.attributes() == Iotlb.DIRTY)) {
            out.success(s.hit.outputAddress(), s.hit.pageShift(), Perm.toAccess(s.hit.permissions()));
            return true;
        }
        WalkResult w = s.walk;
        s.walked = true;
        boolean ok;
        RiscvPaging f = null;
        if (fsMode == DeviceContext.ATP_BARE) {
            ok = Walker.walk(memory, g, gRoot, address, request | Access.PRIV, update, w);
        } else {
            f = firstFormat(fsMode, (tc & DeviceContext.TC_SADE) != 0, sum, g != null);
            long root = DeviceContext.atpRoot(iosatp);
            ok = g == null ? Walker.walk(memory, f, root, address, request, update, w)
                    : Walker.walkNested(memory, f, root, g, gRoot, address, request, update, w);
        }
        if (!ok) {
            return walkFault(w, access, s, out);
        }
        if (update && s.explain == null) {
            iotlb.insert(tlbGeneration, tag1, tag2, address, w.pageShift(), w.outputAddress(), w.permissions(), write,
                    f != null && g != null);
        }
        out.success(w.outputAddress(), w.pageShift(), Perm.toAccess(w.permissions()));
        return true;
    }

    /** @return the process_id width of a pdtp.MODE (PD8 8, PD17 17, else 20) */
    private static int pidBits(int pdtpMode) {
        return pdtpMode == DeviceContext.PDTP_PD8 ? 8 : pdtpMode == DeviceContext.PDTP_PD17 ? 17 : 20;
    }

    private static boolean disallowed(Scratch s, Translation out, long address) {
        return s.fail(out, FaultKind.CONFIGURATION, Stage.CONFIG, FaultRecord.TRANSACTION_TYPE_DISALLOWED, 0, address);
    }

    /** Turns a failed walk into its cause (see the class comment). */
    private static boolean walkFault(WalkResult w, int access, Scratch s, Translation out) {
        WalkFault f = w.fault();
        Stage stage = w.faultStage();
        int cause;
        if (f == WalkFault.TABLE_FETCH || f == WalkFault.AD_UPDATE || f == WalkFault.OUTPUT_RANGE) {
            cause = Causes.accessFault(access);
        } else if (stage == Stage.STAGE2) {
            cause = Causes.guestPageFault(access);
            long bits = 0;
            if (w.faultDuringTableFetch()) {
                // An implicit access of the first-stage walk: a read of a PTE, or the write that
                // sets its A/D bits (the only way a table fetch fails a write permission check).
                bits = FaultRecord.IOTVAL2_IMPLICIT | (f == WalkFault.WRITE ? FaultRecord.IOTVAL2_IMPLICIT_WRITE : 0);
            }
            s.iotval2 = (w.faultAddress() & ~3L) | bits;
        } else {
            cause = Causes.pageFault(access);
        }
        return s.fail(out, w.faultKind(), stage, cause, w.faultDepth(), w.faultAddress());
    }

    /** Drops every cached structure and translation (reset). */
    void invalidateAll() {
        directory.dcCache.invalidateAll();
        directory.pcCache.invalidateAll();
        iotlb.invalidateAll();
    }
}
