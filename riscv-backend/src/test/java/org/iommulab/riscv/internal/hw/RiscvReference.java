package org.iommulab.riscv.internal.hw;

import org.iommulab.api.memory.PhysicalMemory;

/**
 * An independent decode of the RISC-V IOMMU's translation process, written from the specification
 * alone (IOMMU spec 1.0 §2.3 "Process to translate an IOVA", §2.3.1 GET_DC, §2.3.2 GET_PC, §2.1.4
 * and §2.2.4 configuration checks; privileged ISA §4.3.2 "Virtual Address Translation Process"
 * and §9.5 "Two-Stage Address Translation") for the configuration the property test uses (the
 * model's defaults: PAS 52, Sv39/48/57, Sv39x4/48x4, PD8/17/20, AMO_HWAD, ATS, no T2GPA, no
 * QOSID, END 0, fctl.BE 0, fctl.GXL 0). It never calls the model or its spec package, reads
 * memory only (A/D updates are predicted, not written) and keeps no caches.
 *
 * <p>Implementation-defined choices it shares with the model: DC.tc bits 31:24 (custom) are
 * rejected as misconfigured; a request without a process_id (or with the default process_id 0
 * of DPE) is a user request; a read for execute needs X only; a page beyond PAS is not a fault.
 */
final class RiscvReference {
    static final int READ = 1;
    static final int WRITE = 2;
    static final int EXEC = 4;
    static final int PRIV = 8;
    private static final long PPN44 = (1L << 44) - 1;
    private static final int PAS = 52;

    /** The outcome: ok with pa and page shift, or the cause with iotval2 and whether DTF applies. */
    static final class Result {
        boolean ok;
        long pa;
        int shift;
        int cause;
        long iotval2;
        boolean dtf;
        final StringBuilder trace = new StringBuilder();

        @Override
        public String toString() {
            return (ok ? String.format("ok 0x%x (2^%d)", pa, shift) : String.format("cause %d iotval2 0x%x dtf %b", cause,
                    iotval2, dtf)) + " | " + trace;
        }
    }

    /** A fault inside a walk. */
    private static final class Fault extends Exception {
        private static final long serialVersionUID = 1;
        final int cause;
        final long iotval2;

        Fault(int cause, long iotval2) {
            super(null, null, false, false);
            this.cause = cause;
            this.iotval2 = iotval2;
        }
    }

    private final PhysicalMemory ram;

    RiscvReference(PhysicalMemory ram) {
        this.ram = ram;
    }

    /** @return the doubleword at {@code a}, or null where an implicit access faults (unbacked or beyond PAS) */
    private Long load(long a) {
        if (a >>> PAS != 0 || (a + 7) >>> PAS != 0 || !ram.isBacked(a) || !ram.isBacked(a + 7)) {
            return null;
        }
        return ram.read64(a);
    }

    private static long ppn(long entry) {
        return ((entry >>> 10) & PPN44) << 12;
    }

    private static int pageFault(int access) {
        return (access & EXEC) != 0 ? 12 : (access & WRITE) != 0 ? 15 : 13;
    }

    private static int guestPageFault(int access) {
        return (access & EXEC) != 0 ? 20 : (access & WRITE) != 0 ? 23 : 21;
    }

    private static int accessFault(int access) {
        return (access & EXEC) != 0 ? 1 : (access & WRITE) != 0 ? 7 : 5;
    }

    Result translate(long ddtp, int did, int pasid, long va, int access) {
        Result r = new Result();
        try {
            translate(ddtp, did, pasid, va, access, r);
            r.ok = true;
        } catch (Fault f) {
            r.ok = false;
            r.cause = f.cause;
            r.iotval2 = f.iotval2;
        }
        return r;
    }

    private void translate(long ddtp, int did, int pasid, long va, int access, Result r) throws Fault {
        int mode = (int) (ddtp & 0xf);
        if (mode == 0) {
            throw new Fault(256, 0);
        }
        if (mode == 1) {
            r.pa = va;
            r.shift = 12;
            return;
        }
        int levels = mode - 1;
        int didBits = levels == 1 ? 7 : levels == 2 ? 16 : 24;
        if ((did >>> didBits) != 0) {
            throw new Fault(260, 0);
        }
        // GET_DC: DDI[0] = 6:0, DDI[1] = 15:7, DDI[2] = 23:16.
        long a = ppn(ddtp);
        for (int i = levels - 1; i > 0; i--) {
            int ddi = i == 1 ? (did >>> 7) & 0x1ff : (did >>> 16) & 0xff;
            Long e = load(a + ddi * 8L);
            if (e == null) {
                throw new Fault(257, 0);
            }
            if ((e & 1) == 0) {
                throw new Fault(258, 0);
            }
            if ((e & ~(1L | PPN44 << 10)) != 0) {
                throw new Fault(259, 0);
            }
            a = ppn(e);
        }
        long dcAddress = a + (did & 0x7f) * 32L;
        long[] dc = new long[4];
        for (int i = 0; i < 4; i++) {
            Long w = load(dcAddress + 8L * i);
            if (w == null) {
                throw new Fault(257, 0);
            }
            dc[i] = w;
        }
        long tc = dc[0];
        long iohgatp = dc[1];
        long ta = dc[2];
        long fsc = dc[3];
        if ((tc & 1) == 0) {
            throw new Fault(258, 0);
        }
        if (dcMisconfigured(tc, iohgatp, ta, fsc)) {
            r.trace.append("DC misconfigured; ");
            throw new Fault(259, 0);
        }
        r.dtf = (tc & 1 << 4) != 0;
        boolean pdtv = (tc & 1 << 5) != 0;
        boolean pv = pasid != -1;
        int pdtpMode = (int) (fsc >>> 60);
        if (pv && !pdtv) {
            throw new Fault(260, 0);
        }
        if (pv && pdtv) {
            int width = pdtpMode == 1 ? 8 : pdtpMode == 2 ? 17 : 20;
            if (pasid < 0 || (pasid >>> width) != 0) {
                throw new Fault(260, 0);
            }
        }
        boolean priv = pv && (access & PRIV) != 0;
        G g = new G(iohgatp, (tc & 1 << 7) != 0);
        boolean sade = (tc & 1 << 8) != 0;
        long satp;
        boolean sum = false;
        if (!pdtv) {
            satp = fsc;
        } else {
            int pid = pv ? pasid : (tc & 1 << 9) != 0 ? 0 : -1;
            if (pid < 0 || pdtpMode == 0) {
                satp = 0;
            } else {
                long[] pc = processContext(fsc, pdtpMode, pid, g, access, r);
                if (priv && (pc[0] & 2) == 0) {
                    throw new Fault(260, 0);
                }
                satp = pc[1];
                sum = (pc[0] & 4) != 0;
            }
        }
        int satpMode = (int) (satp >>> 60);
        long gpa;
        int shift = 63;
        if (satpMode == 0) {
            gpa = va;
        } else {
            int fsLevels = satpMode - 5;
            int width = 12 + 9 * fsLevels;
            long high = va >> (width - 1);
            if (high != 0 && high != -1) {
                r.trace.append("non-canonical; ");
                throw new Fault(pageFault(access), 0);
            }
            long table = (satp & PPN44) << 12;
            long leafGpa = 0;
            for (int i = fsLevels - 1;; i--) {
                long pteGpa = table + ((va >>> (12 + 9 * i)) & 0x1ff) * 8;
                long pteSpa = g.on ? g.implicit(pteGpa, false, access, this) : pteGpa;
                Long pteBox = load(pteSpa);
                if (pteBox == null) {
                    r.trace.append("first-stage PTE unreadable; ");
                    throw new Fault(accessFault(access), 0);
                }
                long pte = pteBox;
                r.trace.append(String.format("s1 L%d 0x%x; ", i, pte));
                boolean v = (pte & 1) != 0;
                boolean rd = (pte & 2) != 0;
                boolean wr = (pte & 4) != 0;
                boolean x = (pte & 8) != 0;
                boolean u = (pte & 16) != 0;
                boolean acc = (pte & 64) != 0;
                boolean dirty = (pte & 128) != 0;
                if (!v || (!rd && wr) || (pte >>> 54) != 0) {
                    throw new Fault(pageFault(access), 0);
                }
                if (!rd && !x) {
                    // A pointer: A, D and U are reserved in it; none at level 0.
                    if (acc || dirty || u || i == 0) {
                        throw new Fault(pageFault(access), 0);
                    }
                    table = ppn(pte);
                    continue;
                }
                // A leaf: privilege, then permissions (privileged §4.3.1 U/SUM, no MXR).
                if (u ? priv && ((access & EXEC) != 0 || !sum) : !priv) {
                    throw new Fault(pageFault(access), 0);
                }
                if ((access & EXEC) != 0 ? !x : ((access & READ) != 0 && !rd) || ((access & WRITE) != 0 && !wr)) {
                    throw new Fault(pageFault(access), 0);
                }
                long superBits = (1L << (9 * i)) - 1;
                if (((pte >>> 10) & superBits) != 0) {
                    throw new Fault(pageFault(access), 0); // misaligned superpage
                }
                boolean write = (access & WRITE) != 0;
                if (!acc || (write && !dirty)) {
                    if (!sade) {
                        throw new Fault(pageFault(access), 0);
                    }
                    if (g.on) {
                        g.implicit(pteGpa, true, access, this); // the A/D update is an implicit write
                    }
                }
                shift = 12 + 9 * i;
                leafGpa = (ppn(pte) & -(1L << shift)) | (va & ((1L << shift) - 1));
                break;
            }
            gpa = leafGpa;
        }
        if (g.on) {
            long[] out = g.walk(gpa, access, false, false, this);
            if (out == null) {
                throw new Fault(g.faultCause(access), g.faultCause(access) == accessFault(access) ? 0 : gpa & ~3L);
            }
            r.pa = out[0];
            shift = Math.min(shift, (int) out[1]);
        } else {
            r.pa = gpa;
        }
        r.shift = Math.min(shift, 63) == 63 ? 12 : shift;
    }

    /** §2.1.4 for this configuration. */
    private static boolean dcMisconfigured(long tc, long iohgatp, long ta, long fsc) {
        boolean enAts = (tc & 2) != 0;
        boolean enPri = (tc & 4) != 0;
        boolean t2gpa = (tc & 8) != 0;
        boolean pdtv = (tc & 32) != 0;
        boolean prpr = (tc & 64) != 0;
        boolean dpe = (tc & 512) != 0;
        if ((tc >>> 12) != 0 || (ta & 0xfff) != 0 || (ta >>> 32) != 0 || ((fsc >>> 44) & 0xffff) != 0) {
            return true; // reserved (and custom) bits
        }
        if (t2gpa || (!enAts && enPri) || (!enPri && prpr)) {
            return true; // capabilities.T2GPA is 0; EN_PRI needs EN_ATS; PRPR needs EN_PRI
        }
        int fscMode = (int) (fsc >>> 60);
        if (pdtv ? fscMode > 3 : (fscMode != 0 && (fscMode < 8 || fscMode > 10))) {
            return true;
        }
        if (!pdtv && dpe) {
            return true;
        }
        int gMode = (int) (iohgatp >>> 60);
        if (gMode != 0 && gMode != 8 && gMode != 9) {
            return true; // Sv57x4 is not supported by the default configuration
        }
        if (gMode != 0 && (iohgatp & 3) != 0) {
            return true; // 16-KiB aligned root
        }
        return (tc & (1 << 10 | 1 << 11)) != 0; // SBE must equal fctl.BE (0); SXL must be 0 (GXL 0)
    }

    /** GET_PC through the G-stage. @return ta, fsc */
    private long[] processContext(long pdtp, int pdtpMode, int pid, G g, int access, Result r) throws Fault {
        long a = (pdtp & PPN44) << 12;
        for (int i = pdtpMode - 1; i > 0; i--) {
            int pdi = i == 1 ? (pid >>> 8) & 0x1ff : (pid >>> 17) & 7;
            long gpa = a + pdi * 8L;
            long spa = g.on ? g.pdt(gpa, access, this) : gpa;
            Long e = load(spa);
            if (e == null) {
                throw new Fault(265, 0);
            }
            if ((e & 1) == 0) {
                throw new Fault(266, 0);
            }
            if ((e & ~(1L | PPN44 << 10)) != 0) {
                throw new Fault(267, 0);
            }
            a = ppn(e);
        }
        long gpa = a + (pid & 0xff) * 16L;
        long spa = g.on ? g.pdt(gpa, access, this) : gpa;
        Long ta = load(spa);
        Long fsc = load(spa + 8);
        if (ta == null || fsc == null) {
            throw new Fault(265, 0);
        }
        r.trace.append(String.format("PC 0x%x 0x%x; ", ta, fsc));
        if ((ta & 1) == 0) {
            throw new Fault(266, 0);
        }
        int mode = (int) (fsc >>> 60);
        if ((ta & 0xff8) != 0 || (ta >>> 32) != 0 || ((fsc >>> 44) & 0xffff) != 0
                || (mode != 0 && (mode < 8 || mode > 10))) {
            throw new Fault(267, 0);
        }
        return new long[] {ta, fsc};
    }

    /** The G-stage of a DC (privileged §9.5.1: Sv39x4 / Sv48x4, every access a user access). */
    private static final class G {
        final boolean on;
        final int levels;
        final long root;
        final boolean gade;
        /** Why the last walk failed: true for an access fault (a PTE unreadable). */
        boolean accessFault;

        G(long iohgatp, boolean gade) {
            int mode = (int) (iohgatp >>> 60);
            this.on = mode != 0;
            this.levels = mode - 5;
            this.root = (iohgatp & PPN44) << 12;
            this.gade = gade;
        }

        int faultCause(int access) {
            return accessFault ? accessFault(access) : guestPageFault(access);
        }

        /** A PDT access: a guest-page fault (iotval2 = GPA | 1) or cause 265. */
        long pdt(long gpa, int access, RiscvReference ref) throws Fault {
            long[] out = walk(gpa, READ, true, false, ref);
            if (out == null) {
                throw accessFault ? new Fault(265, 0) : new Fault(guestPageFault(access), (gpa & ~3L) | 1);
            }
            return out[0];
        }

        /** A first-stage PTE access (read, or the write of an A/D update). */
        long implicit(long gpa, boolean write, int access, RiscvReference ref) throws Fault {
            long[] out = walk(gpa, write ? WRITE : READ, true, write, ref);
            if (out == null) {
                throw accessFault ? new Fault(accessFault(access), 0)
                        : new Fault(guestPageFault(access), (gpa & ~3L) | 1 | (write ? 2 : 0));
            }
            return out[0];
        }

        /** @return {spa, page shift}, or null with {@link #accessFault} saying why */
        long[] walk(long gpa, int access, boolean implicit, boolean implicitWrite, RiscvReference ref) {
            accessFault = false;
            int width = 12 + 9 * levels + 2;
            if ((gpa >>> width) != 0) {
                return null;
            }
            long table = root;
            for (int i = levels - 1; i >= 0; i--) {
                int bits = i == levels - 1 ? 11 : 9;
                long index = (gpa >>> (12 + 9 * i)) & ((1L << bits) - 1);
                Long box = ref.load(table + index * 8);
                if (box == null) {
                    accessFault = true;
                    return null;
                }
                long pte = box;
                boolean v = (pte & 1) != 0;
                boolean rd = (pte & 2) != 0;
                boolean wr = (pte & 4) != 0;
                boolean x = (pte & 8) != 0;
                boolean u = (pte & 16) != 0;
                boolean acc = (pte & 64) != 0;
                boolean dirty = (pte & 128) != 0;
                if (!v || (!rd && wr) || (pte >>> 54) != 0) {
                    return null;
                }
                if (!rd && !x) {
                    if (acc || dirty || u || i == 0) {
                        return null;
                    }
                    table = ppn(pte);
                    continue;
                }
                if (!u) {
                    return null; // G-stage accesses are user accesses
                }
                boolean write = (access & WRITE) != 0;
                if ((access & EXEC) != 0 ? !x : ((access & READ) != 0 && !rd) || (write && !wr)) {
                    return null;
                }
                if (((pte >>> 10) & ((1L << (9 * i)) - 1)) != 0) {
                    return null;
                }
                if (!acc || (write && !dirty)) {
                    if (!gade) {
                        return null;
                    }
                }
                int shift = 12 + 9 * i;
                return new long[] {(ppn(pte) & -(1L << shift)) | (gpa & ((1L << shift) - 1)), shift};
            }
            return null;
        }
    }
}
