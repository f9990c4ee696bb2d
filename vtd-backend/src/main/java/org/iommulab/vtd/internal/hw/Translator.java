package org.iommulab.vtd.internal.hw;

import org.iommulab.pgtable.tlb.EntryCache;

import org.iommulab.api.errno.IommuException;
import org.iommulab.api.memory.MemoryAccessException;
import org.iommulab.api.memory.PhysicalMemory;
import org.iommulab.api.pasid.Pasids;
import org.iommulab.api.translation.Access;
import org.iommulab.api.translation.Stage;
import org.iommulab.api.translation.Translation;
import org.iommulab.pgtable.PageTableFormat;
import org.iommulab.pgtable.Perm;
import org.iommulab.pgtable.WalkFault;
import org.iommulab.pgtable.WalkResult;
import org.iommulab.pgtable.Walker;
import org.iommulab.pgtable.format.VtdSecondStage;
import org.iommulab.pgtable.format.X86FirstStage;
import org.iommulab.pgtable.tlb.Tlb;
import org.iommulab.pgtable.tlb.TlbHit;

/**
 * Translates DMA requests in scalable mode (VT-d spec §3.4-§3.8, §9.1-§9.6): root entry -> scalable-mode
 * context entry -> PASID directory entry -> PASID table entry -> first-stage, second-stage, nested or
 * pass-through translation, through the context cache, the PASID cache and the IOTLB.
 *
 * <p>Structure layouts (§9):
 * <ul>
 * <li>Scalable-mode root entry, 128 bits: lower half LP bit 0, LCTP 63:12 (devfn 0-127); upper half
 * UP bit 64, UCTP 127:76 (devfn 128-255).</li>
 * <li>Scalable-mode context entry, 256 bits: P 0, FPD 1, DTE 2, PASIDE 3, PRE 4, PDTS 11:9 (the
 * directory has 2^(PDTS+7) entries), PASIDDIRPTR 63:12; RID_PASID 83:64.</li>
 * <li>PASID directory entry, 64 bits: P 0, FPD 1, SMPTBLPTR 63:12; indexed by PASID[19:6].</li>
 * <li>PASID table entry, 512 bits, indexed by PASID[5:0]: P 0, FPD 1, AW 4:2, SLEE 5, PGTT 8:6
 * (1 first stage, 2 second stage, 3 nested, 4 pass-through), SLADE 9, SLPTPTR 63:12; DID 79:64;
 * SRE 128, ERE 129, FLPM 131:130, WPE 132, NXE 133, FLPTPTR 191:140.</li>
 * </ul>
 *
 * <p>Thread safe; allocates nothing per translation once a thread has translated before.
 */
final class Translator {
    static final int PGTT_FIRST = 1;
    static final int PGTT_SECOND = 2;
    static final int PGTT_NESTED = 3;
    static final int PGTT_PASS_THROUGH = 4;
    /** IOTLB attribute: cached by a write walk, so the leaf's dirty flag is set. */
    private static final long DIRTY = 1;
    private static final long CLEAN = 0;

    private static final long ROOT_RSVD = 0xffeL;
    private static final long CTX0_RSVD = 0x1e0L;
    private static final long CTX1_RSVD = 0xffff_ffff_ffe0_0000L;
    private static final long PDIR_RSVD = 0xffcL;
    private static final long PTE0_RSVD = 0xc00L;
    private static final long PTE1_RSVD = 0x7f_0000L;
    private static final long PTE2_RSVD = 0xf00L;

    private final PhysicalMemory memory;
    private final VtdConfig config;
    final EntryCache contextCache;
    final EntryCache pasidCache;
    final Tlb iotlb;
    /** Second-stage formats by AW (1-3), SLEE and SLADE. */
    private final VtdSecondStage[] secondStage = new VtdSecondStage[16];
    /** First-stage formats by FLPM (0-1), NXE and WPE. */
    private final X86FirstStage[] firstStage = new X86FirstStage[8];
    private final ThreadLocal<Scratch> scratch = ThreadLocal.withInitial(Scratch::new);

    /** Per-thread state, so that translating allocates nothing. */
    static final class Scratch {
        final long[] context = new long[2];
        final long[] pasidEntry = new long[3];
        final WalkResult walk = new WalkResult();
        final TlbHit hit = new TlbHit();
        /**
         * The IOTLB's invalidation generation as the request began, before the context and PASID
         * entries were fetched: a walk result is cached only if no invalidation ran since, so a walk
         * through an entry software has since cleared and invalidated never leaves an IOTLB entry.
         */
        long iotlbGeneration;
        VtdFault fault;
        boolean faultRecordable;
        long faultAddress;
        /** Non-null while explaining: caches are bypassed and configuration entries recorded. */
        java.util.List<org.iommulab.api.dto.WalkStepDTO> explain;

        void note(String level, long address, long entry, String meaning) {
            if (explain != null) {
                org.iommulab.api.dto.WalkStepDTO d = new org.iommulab.api.dto.WalkStepDTO();
                d.stage = "CONFIG";
                d.level = level;
                d.address = address;
                d.entry = entry;
                d.meaning = meaning;
                explain.add(d);
            }
        }
    }

    Translator(PhysicalMemory memory, VtdConfig config) throws IommuException {
        this.memory = memory;
        this.config = config;
        this.contextCache = new EntryCache(config.contextCacheSize, 2);
        this.pasidCache = new EntryCache(config.pasidCacheSize, 3);
        this.iotlb = new Tlb("vtd-iotlb", config.iotlbSize);
        for (int aw = 1; aw <= 3; aw++) {
            for (int flags = 0; flags < 4; flags++) {
                secondStage[aw * 4 + flags] = VtdSecondStage.of(aw, config.haw, (config.sllps & 1) != 0,
                        (config.sllps & 2) != 0, (flags & 1) != 0, (flags & 2) != 0 && config.slAccessDirty);
            }
        }
        for (int flpm = 0; flpm <= 1; flpm++) {
            for (int nxe = 0; nxe <= 1; nxe++) {
                for (int wpe = 0; wpe <= 1; wpe++) {
                    firstStage[flpm * 4 + nxe * 2 + wpe] = X86FirstStage.of(4 + flpm, config.haw, config.fs1gp, nxe == 1,
                            true, wpe == 1);
                }
            }
        }
    }

    Scratch scratch() {
        return scratch.get();
    }

    /**
     * Translates one request with translation enabled.
     *
     * @param rootTable latched root table address and TTM (RTADDR as of the last SRTP)
     * @param sid source id (bus << 8 | devfn)
     * @param pasid PASID or {@link Pasids#NO_PASID}
     * @param address input address
     * @param access {@link Access} bits
     * @param update set A/D flags (a real DMA) or not (explain)
     * @param out the result
     * @param s scratch; on a fault, {@code s.fault} names it and {@code s.faultRecordable} says
     *     whether FPD allows recording it
     * @return {@code true} on success
     */
    boolean translate(long rootTable, int sid, int pasid, long address, int access, boolean update, Translation out,
            Scratch s) {
        s.fault = null;
        s.faultRecordable = true;
        s.faultAddress = address;
        s.iotlbGeneration = iotlb.generation();
        if (s.explain != null) {
            s.walk.clear();
        }
        if ((rootTable & VtdReg.RTADDR_TTM_MASK) != VtdReg.RTADDR_TTM_SCALABLE) {
            return fail(s, out, pasid != Pasids.NO_PASID ? VtdFault.SM_TTM0_PASID : VtdFault.SM_RTADDR_INV);
        }
        if (!context(rootTable & ~0xfffL, sid & 0xffff, s, out)) {
            return false;
        }
        long ctx0 = s.context[0];
        boolean contextFpd = (ctx0 & 2) != 0;
        int effectivePasid = pasid;
        if (pasid == Pasids.NO_PASID) {
            effectivePasid = (int) (s.context[1] & 0xfffff);
        } else if ((ctx0 & 8) == 0) {
            return fail(s, out, VtdFault.SM_CTX_PASIDE, contextFpd);
        }
        int pdts = (int) (ctx0 >>> 9) & 7;
        if ((effectivePasid >>> 6) >= 1 << (pdts + 7)) {
            return fail(s, out, VtdFault.SM_CTX_PDTS, contextFpd);
        }
        if (!pasidEntry(sid, effectivePasid, ctx0 & ~0xfffL, contextFpd, s, out)) {
            return false;
        }

        long pe0 = s.pasidEntry[0];
        long pe1 = s.pasidEntry[1];
        long pe2 = s.pasidEntry[2];
        boolean fpd = contextFpd || (pe0 & 2) != 0;
        if ((access & Access.PRIV) != 0 && (pe2 & 1) == 0) {
            return fail(s, out, VtdFault.PASID_SRE_CLEAR, fpd);
        }
        int pgtt = (int) (pe0 >>> 6) & 7;
        int did = (int) (pe1 & 0xffff);
        if (pgtt == PGTT_PASS_THROUGH) {
            if (address >>> config.haw != 0) {
                return fail(s, out, VtdFault.SM_ADDR_BEYOND, fpd);
            }
            out.success(address, 12, Access.READ | Access.WRITE | Access.EXEC);
            return true;
        }
        // IOTLB: tagged by domain id and PASID.
        // A write needs the leaf's dirty flag: an entry cached by a read walk does not serve it.
        boolean write = (access & Access.WRITE) != 0;
        if (s.explain == null && iotlb.lookup(did, effectivePasid, address, true, s.hit)
                && Perm.check(s.hit.permissions(), access) == null && (!write || s.hit.attributes() == DIRTY)) {
            out.success(s.hit.outputAddress(), s.hit.pageShift(), Perm.toAccess(s.hit.permissions()));
            return true;
        }
        long generation = s.iotlbGeneration;
        WalkResult w = s.walk;
        boolean ok;
        if (pgtt == PGTT_SECOND) {
            ok = Walker.walk(memory, secondStage(pe0), pe0 & ~0xfffL, address, access | Access.PRIV, update, w);
        } else {
            PageTableFormat fs = firstStage(pe2);
            // FLPTPTR is PASID-entry bits 191:140 (§9.6), all of qw2 63:12: a pointer with bits 63:52 set
            // is beyond HAW and faults (0x73, or 0x74 when nested), it does not alias a low table.
            long flptr = pe2 & ~0xfffL;
            if (pgtt == PGTT_FIRST) {
                ok = Walker.walk(memory, fs, flptr, address, access, update, w);
            } else {
                ok = Walker.walkNested(memory, fs, flptr, secondStage(pe0), pe0 & ~0xfffL, address, access, update, w);
            }
        }
        if (!ok) {
            VtdFault fault = walkFault(w);
            s.fault = fault;
            s.faultRecordable = !(fault.qualified && fpd);
            s.faultAddress = address;
            out.fault(fault.kind, w.faultStage(), fault.code, fault.spec, w.faultDepth(), w.faultAddress());
            return false;
        }
        if (update && s.explain == null) {
            iotlb.insertIfUnchanged(generation, did, effectivePasid, address, w.pageShift(), w.outputAddress(),
                    w.permissions(), write ? DIRTY : CLEAN, true);
        }
        out.success(w.outputAddress(), w.pageShift(), Perm.toAccess(w.permissions()));
        return true;
    }

    /** @return {@code true} if the device's context entry is present with PRE (page requests) set */
    boolean pageRequestsEnabled(long rootTable, int sid) {
        if ((rootTable & VtdReg.RTADDR_TTM_MASK) != VtdReg.RTADDR_TTM_SCALABLE) {
            return false;
        }
        Scratch s = scratch();
        Translation ignored = new Translation();
        return context(rootTable & ~0xfffL, sid, s, ignored) && (s.context[0] & (1L << 4)) != 0;
    }

    private VtdSecondStage secondStage(long pe0) {
        int aw = (int) (pe0 >>> 2) & 7;
        int flags = (int) ((pe0 >>> 5) & 1) | (int) ((pe0 >>> 8) & 2); // SLEE bit 5, SLADE bit 9
        return secondStage[Math.max(1, Math.min(3, aw)) * 4 + flags];
    }

    /** The first-stage format a PASID entry selects: FLPM 3:2, WPE 4 (supervisor write protect), NXE 5. */
    private X86FirstStage firstStage(long pe2) {
        int flpm = (int) (pe2 >>> 2) & 3;
        int wpe = (int) (pe2 >>> 4) & 1;
        int nxe = (int) (pe2 >>> 5) & 1;
        return firstStage[Math.min(1, flpm) * 4 + nxe * 2 + wpe];
    }

    /** Reads (or finds cached) the context entry of {@code sid} into {@code s.context}. */
    private boolean context(long root, int sid, Scratch s, Translation out) {
        if (s.explain == null && contextCache.lookup(sid, s.context)) {
            return true;
        }
        long generation = contextCache.generation();
        int bus = sid >>> 8;
        int devfn = sid & 0xff;
        long rootEntry;
        try {
            rootEntry = memory.read64(root + bus * 16L + (devfn >= 128 ? 8 : 0));
        } catch (MemoryAccessException e) {
            return fail(s, out, VtdFault.SM_ROOT_ACCESS);
        }
        s.note("root entry", root + bus * 16L + (devfn >= 128 ? 8 : 0), rootEntry,
                (rootEntry & 1) == 0 ? "not present" : String.format("context table 0x%x", rootEntry & ~0xfffL));
        if ((rootEntry & 1) == 0) {
            return fail(s, out, VtdFault.SM_ROOT_P);
        }
        long ctp = rootEntry & ~0xfffL;
        if ((rootEntry & ROOT_RSVD) != 0 || ctp >>> config.haw != 0) {
            return fail(s, out, VtdFault.SM_ROOT_RSVD);
        }
        long entry = ctp + (devfn & 0x7f) * 32L;
        try {
            s.context[0] = memory.read64(entry);
            s.context[1] = memory.read64(entry + 8);
        } catch (MemoryAccessException e) {
            return fail(s, out, VtdFault.SM_CTX_ACCESS);
        }
        long c0 = s.context[0];
        s.note("context entry", entry, c0, (c0 & 1) == 0 ? "not present"
                : String.format("PASID directory 0x%x, PDTS %d, PASIDE %d, RID_PASID %d", c0 & ~0xfffL, (c0 >>> 9) & 7,
                        (c0 >>> 3) & 1, s.context[1] & 0xfffff));
        if ((c0 & 1) == 0) {
            return fail(s, out, VtdFault.SM_CTX_P);
        }
        if ((c0 & CTX0_RSVD) != 0 || (c0 & ~0xfffL) >>> config.haw != 0 || (s.context[1] & CTX1_RSVD) != 0) {
            return fail(s, out, VtdFault.SM_CTX_RSVD, (c0 & 2) != 0);
        }
        contextCache.fill(sid, s.context, generation);
        return true;
    }

    /** Reads (or finds cached) the PASID table entry into {@code s.pasidEntry}. */
    private boolean pasidEntry(int sid, int pasid, long directory, boolean fpd, Scratch s, Translation out) {
        long key = ((long) sid << 20) | pasid;
        if (s.explain == null && pasidCache.lookup(key, s.pasidEntry)) {
            return true;
        }
        long generation = pasidCache.generation();
        long dirEntry;
        try {
            dirEntry = memory.read64(directory + ((long) (pasid >>> 6) << 3));
        } catch (MemoryAccessException e) {
            return fail(s, out, VtdFault.PASID_DIR_ACCESS, fpd);
        }
        s.note("PASID directory entry", directory + ((long) (pasid >>> 6) << 3), dirEntry,
                (dirEntry & 1) == 0 ? "not present" : String.format("PASID table 0x%x", dirEntry & ~0xfffL));
        if ((dirEntry & 1) == 0) {
            return fail(s, out, VtdFault.PASID_DIR_P, fpd);
        }
        boolean dirFpd = fpd || (dirEntry & 2) != 0;
        long table = dirEntry & ~0xfffL;
        if ((dirEntry & PDIR_RSVD) != 0 || table >>> config.haw != 0) {
            return fail(s, out, VtdFault.PASID_DIR_RSVD, dirFpd);
        }
        long entry = table + ((long) (pasid & 0x3f) << 6);
        try {
            s.pasidEntry[0] = memory.read64(entry);
            s.pasidEntry[1] = memory.read64(entry + 8);
            s.pasidEntry[2] = memory.read64(entry + 16);
        } catch (MemoryAccessException e) {
            return fail(s, out, VtdFault.PASID_TABLE_ACCESS, dirFpd);
        }
        long pe0 = s.pasidEntry[0];
        s.note("PASID entry " + pasid, entry, pe0, (pe0 & 1) == 0 ? "not present"
                : String.format("PGTT %d, DID %d, SLPTPTR 0x%x AW %d, FLPTPTR 0x%x FLPM %d, SRE %d", (pe0 >>> 6) & 7,
                        s.pasidEntry[1] & 0xffff, pe0 & ~0xfffL, (pe0 >>> 2) & 7, s.pasidEntry[2] & ~0xfffL,
                        (s.pasidEntry[2] >>> 2) & 3, s.pasidEntry[2] & 1));
        if ((pe0 & 1) == 0) {
            return fail(s, out, VtdFault.PASID_ENTRY_P, dirFpd);
        }
        boolean entryFpd = dirFpd || (pe0 & 2) != 0;
        if ((pe0 & PTE0_RSVD) != 0 || (s.pasidEntry[1] & PTE1_RSVD) != 0 || (s.pasidEntry[2] & PTE2_RSVD) != 0) {
            return fail(s, out, VtdFault.PASID_ENTRY_RSVD, entryFpd);
        }
        if (!validPgtt(pe0, s.pasidEntry[2])) {
            return fail(s, out, VtdFault.PASID_ENTRY_INV, entryFpd);
        }
        int pgtt = (int) (pe0 >>> 6) & 7;
        if ((pgtt == PGTT_SECOND || pgtt == PGTT_NESTED) && (pe0 & ~0xfffL) >>> config.haw != 0) {
            return fail(s, out, VtdFault.SS_PTR_INV, entryFpd);
        }
        pasidCache.fill(key, s.pasidEntry, generation);
        return true;
    }

    /** PGTT 1-4 with the fields that mode uses within what CAP/ECAP advertise (§9.6). */
    private boolean validPgtt(long pe0, long pe2) {
        int pgtt = (int) (pe0 >>> 6) & 7;
        if (pgtt < PGTT_FIRST || pgtt > PGTT_PASS_THROUGH) {
            return false;
        }
        if (pgtt == PGTT_SECOND || pgtt == PGTT_NESTED) {
            int aw = (int) (pe0 >>> 2) & 7;
            if (aw < 1 || aw > 3 || ((config.sagaw() >>> aw) & 1) == 0) {
                return false;
            }
        }
        if (pgtt == PGTT_FIRST || pgtt == PGTT_NESTED) {
            int flpm = (int) (pe2 >>> 2) & 3;
            if (flpm > 1 || (flpm == 1 && !config.fs5lp)) {
                return false;
            }
        }
        return true;
    }

    /** Maps a neutral walk fault to the scalable-mode fault reason (§7.1.3 Table 9). */
    static VtdFault walkFault(WalkResult w) {
        WalkFault f = w.fault();
        if (w.faultStage() == Stage.STAGE1) {
            switch (f) {
                case NON_CANONICAL:
                    return VtdFault.FS_NON_CANONICAL;
                case NOT_PRESENT:
                    return VtdFault.FS_P;
                case TABLE_FETCH:
                    return w.faultDepth() == 0 ? VtdFault.FS_ROOT_ACCESS : VtdFault.FS_ACCESS;
                case PRIVILEGE:
                    return VtdFault.FS_US;
                case WRITE:
                    return VtdFault.SM_WRITE;
                case READ:
                    return VtdFault.SM_READ;
                case EXEC:
                    return VtdFault.SM_EXECUTE;
                case AD_UPDATE:
                    return VtdFault.FS_AD_UPDATE;
                case INPUT_RANGE:
                    return VtdFault.SM_ADDR_BEYOND;
                default:
                    return VtdFault.FS_RSVD;
            }
        }
        if (w.faultDuringTableFetch()) {
            switch (f) {
                case WRITE:
                    return VtdFault.NESTED_FS_WRITE;
                case INPUT_RANGE:
                case OUTPUT_RANGE:
                    return VtdFault.NESTED_FS_ADDR_BEYOND;
                case RESERVED:
                    return VtdFault.SS_RSVD;
                case TABLE_FETCH:
                    return VtdFault.SS_ACCESS;
                case AD_UPDATE:
                    return VtdFault.SS_AD_UPDATE;
                default:
                    return w.faultFetchDepth() == 0 ? VtdFault.NESTED_FS_ROOT_READ : VtdFault.NESTED_FS_READ;
            }
        }
        switch (f) {
            case INPUT_RANGE:
                return VtdFault.SM_ADDR_BEYOND;
            case NOT_PRESENT:
                return VtdFault.SS_RW;
            case RESERVED:
                return VtdFault.SS_RSVD;
            case TABLE_FETCH:
                return VtdFault.SS_ACCESS;
            case OUTPUT_RANGE:
                return VtdFault.SS_ADDR_BEYOND;
            case WRITE:
                return VtdFault.SM_WRITE;
            case EXEC:
                return VtdFault.SM_EXECUTE;
            case AD_UPDATE:
                return VtdFault.SS_AD_UPDATE;
            default:
                return VtdFault.SM_READ;
        }
    }

    private static boolean fail(Scratch s, Translation out, VtdFault fault) {
        return fail(s, out, fault, false);
    }

    /** A fault in the configuration structures (root, context, PASID directory and table). */
    private static boolean fail(Scratch s, Translation out, VtdFault fault, boolean fpd) {
        s.fault = fault;
        s.faultRecordable = !(fault.qualified && fpd);
        out.fault(fault.kind, Stage.CONFIG, fault.code, fault.spec, 0, s.faultAddress);
        return false;
    }
}
