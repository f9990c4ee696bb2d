package org.iommulab.riscv.internal.hw;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import org.iommulab.api.errno.IommuException;
import org.iommulab.api.translation.Translation;
import org.iommulab.pgtable.FlushOps;
import org.iommulab.pgtable.IoPageTable;
import org.iommulab.pgtable.format.RiscvPaging;
import org.iommulab.platform.internal.memory.FramePool;
import org.iommulab.platform.internal.memory.SparseMemory;

/**
 * Drives one RISC-V IOMMU model as a bare-metal test would: lays out the DDT, PDTs, queues and
 * page tables at fixed addresses and programs the unit only through its registers and those
 * structures. Offsets and bit positions are spelled out here from the specification (chapter 5
 * register layout, §2.1 DC, §2.2 PC, §3 queues), not taken from the model's spec package.
 */
final class RiscvRig {
    // ---- registers ("Register layout") ----
    static final int CAPABILITIES = 0x00;
    static final int FCTL = 0x08;
    static final int DDTP = 0x10;
    static final int CQB = 0x18;
    static final int CQH = 0x20;
    static final int CQT = 0x24;
    static final int FQB = 0x28;
    static final int FQH = 0x30;
    static final int FQT = 0x34;
    static final int PQB = 0x38;
    static final int PQH = 0x40;
    static final int PQT = 0x44;
    static final int CQCSR = 0x48;
    static final int FQCSR = 0x4c;
    static final int PQCSR = 0x50;
    static final int IPSR = 0x54;
    static final int TR_REQ_IOVA = 0x258;
    static final int TR_REQ_CTL = 0x260;
    static final int TR_RESPONSE = 0x268;
    static final int ICVEC = 0x2f8;

    // ddtp.iommu_mode
    static final int OFF = 0;
    static final int BARE = 1;
    static final int LVL1 = 2;
    static final int LVL2 = 3;
    static final int LVL3 = 4;

    // csr bits
    static final int EN = 1;
    static final int IE = 2;
    static final int MF = 1 << 8;
    static final int OF = 1 << 9;
    static final int CMD_TO = 1 << 9;
    static final int CMD_ILL = 1 << 10;
    static final int FENCE_W_IP = 1 << 11;
    static final int ON = 1 << 16;
    static final int CIP = 1;
    static final int FIP = 2;
    static final int PIP = 8;

    // DC.tc (§2.1.3.1)
    static final long V = 1;
    static final long EN_ATS = 1 << 1;
    static final long EN_PRI = 1 << 2;
    static final long T2GPA = 1 << 3;
    static final long DTF = 1 << 4;
    static final long PDTV = 1 << 5;
    static final long PRPR = 1 << 6;
    static final long GADE = 1 << 7;
    static final long SADE = 1 << 8;
    static final long DPE = 1 << 9;
    static final long SBE = 1 << 10;
    static final long SXL = 1 << 11;
    // PC.ta
    static final long ENS = 1 << 1;
    static final long SUM = 1 << 2;
    // atp modes
    static final int SV39 = 8;
    static final int SV48 = 9;
    static final int SV57 = 10;
    static final int PD8 = 1;
    static final int PD17 = 2;
    static final int PD20 = 3;
    // PTE bits (privileged ISA §4.4.1)
    static final long PTE_V = 1;
    static final long PTE_R = 2;
    static final long PTE_W = 4;
    static final long PTE_X = 8;
    static final long PTE_U = 16;
    static final long PTE_A = 64;
    static final long PTE_D = 128;

    // ---- memory layout ----
    static final long DDT = 0x10_0000;
    static final long CQ = 0x20_0000;
    static final long FQ = 0x30_0000;
    static final long PQ = 0x40_0000;
    /** Bump-allocated structure pages (DDT levels, PDTs, hand-made page tables). */
    static final long STRUCTS = 0x100_0000;
    static final long POOL = 0x1000_0000L;
    static final long DATA = 0x1_0000_0000L;

    final SparseMemory ram = new SparseMemory(52);
    final FramePool pool = new FramePool(ram, POOL, 1 << 14);
    final RiscvHardware hw;
    final List<Integer> interrupts = new ArrayList<>();
    int ddtMode = LVL2;
    int cqLog2 = 6;
    int fqLog2 = 6;
    int pqLog2 = 6;
    private long nextStruct = STRUCTS;
    private int cqTail;

    RiscvRig() {
        this(Map.of());
    }

    RiscvRig(Map<String, String> overrides) {
        Map<String, String> c = new LinkedHashMap<>(RiscvHardware.DEFAULTS);
        c.putAll(overrides);
        try {
            hw = new RiscvHardware(ram, c);
        } catch (IommuException e) {
            throw new AssertionError(e);
        }
        hw.setInterruptHandler(interrupts::add);
    }

    // ---- registers ----

    long r32(int off) {
        try {
            return hw.read(off, 4);
        } catch (IommuException e) {
            throw new AssertionError(e);
        }
    }

    long r64(int off) {
        try {
            return hw.read(off, 8);
        } catch (IommuException e) {
            throw new AssertionError(e);
        }
    }

    void w32(int off, long v) {
        try {
            hw.write(off, v & 0xffff_ffffL, 4);
        } catch (IommuException e) {
            throw new AssertionError(e);
        }
    }

    void w64(int off, long v) {
        try {
            hw.write(off, v, 8);
        } catch (IommuException e) {
            throw new AssertionError(e);
        }
    }

    /** fctl.WSI, the three queues on (with interrupts), then ddtp = mode | DDT root. */
    RiscvRig enable(int mode) {
        w32(FCTL, 2);
        enableQueues();
        ddtp(mode);
        return this;
    }

    RiscvRig enable() {
        return enable(LVL2);
    }

    void enableQueues() {
        w64(CQB, (CQ >>> 12) << 10 | (cqLog2 - 1));
        w32(CQCSR, EN | IE);
        assertEquals(ON, r32(CQCSR) & (ON | 1 << 17), "cqon after cqen, busy 0");
        w64(FQB, (FQ >>> 12) << 10 | (fqLog2 - 1));
        w32(FQCSR, EN | IE);
        assertEquals(ON, r32(FQCSR) & (ON | 1 << 17), "fqon after fqen");
        if ((r64(CAPABILITIES) & 1L << 25) != 0) { // the page-request queue exists with ATS
            w64(PQB, (PQ >>> 12) << 10 | (pqLog2 - 1));
            w32(PQCSR, EN | IE);
            assertEquals(ON, r32(PQCSR) & (ON | 1 << 17), "pqon after pqen");
        }
        cqTail = 0;
    }

    void ddtp(int mode) {
        ddtMode = mode;
        w64(DDTP, (DDT >>> 12) << 10 | mode);
    }

    // ---- structures ----

    /** @return a zeroed 4 KiB page (or {@code pages} contiguous, naturally aligned) */
    long page(int pages) {
        long size = 4096L * pages;
        long a = (nextStruct + size - 1) & -size;
        nextStruct = a + size;
        ram.fill(a, size, (byte) 0);
        return a;
    }

    long page() {
        return page(1);
    }

    /**
     * The address of a device's 32-byte DC in the DDT of {@link #ddtMode}, creating the non-leaf
     * entries on the way (DDI[0] = 6:0, DDI[1] = 15:7, DDI[2] = 23:16; non-leaf entry V 0, PPN 53:10).
     */
    long dcAddress(int deviceId) {
        int levels = ddtMode - 1;
        long a = DDT;
        int[] ddi = {deviceId & 0x7f, (deviceId >>> 7) & 0x1ff, (deviceId >>> 16) & 0xff};
        for (int i = levels - 1; i > 0; i--) {
            long e = a + ddi[i] * 8L;
            long entry = ram.isBacked(e) ? ram.read64(e) : 0;
            if ((entry & 1) == 0) {
                long next = page();
                entry = (next >>> 12) << 10 | 1;
                ram.write64(e, entry);
            }
            a = ((entry >>> 10) & ((1L << 44) - 1)) << 12;
        }
        if (!ram.isBacked(a)) {
            ram.fill(a, 4096, (byte) 0);
        }
        return a + ddi[0] * 32L;
    }

    /** Writes a DC: tc, iohgatp, ta, fsc. @return its address */
    long dc(int deviceId, long tc, long iohgatp, long ta, long fsc) {
        long a = dcAddress(deviceId);
        ram.write64(a + 8, iohgatp);
        ram.write64(a + 16, ta);
        ram.write64(a + 24, fsc);
        ram.write64(a, tc); // V last
        return a;
    }

    static long iohgatp(int mode, int gscid, long root) {
        return (long) mode << 60 | (long) gscid << 44 | root >>> 12;
    }

    static long atp(int mode, long root) {
        return (long) mode << 60 | root >>> 12;
    }

    static long dcTa(int pscid) {
        return (long) pscid << 12;
    }

    static long pcTa(int pscid, boolean ens, boolean sum) {
        return 1 | (ens ? ENS : 0) | (sum ? SUM : 0) | (long) pscid << 12;
    }

    /**
     * The address of a 16-byte PC in a PDT (PDI[0] = 7:0, PDI[1] = 16:8, PDI[2] = 19:17), creating
     * non-leaf entries; {@code gpaToSpa} maps the PDT's (guest) addresses to where they are written.
     */
    long pcAddress(long root, int pdtMode, int processId, java.util.function.LongUnaryOperator gpaToSpa) {
        int levels = pdtMode;
        long a = root;
        int[] pdi = {processId & 0xff, (processId >>> 8) & 0x1ff, (processId >>> 17) & 0x7};
        for (int i = levels - 1; i > 0; i--) {
            long e = gpaToSpa.applyAsLong(a + pdi[i] * 8L);
            long entry = ram.isBacked(e) ? ram.read64(e) : 0;
            if ((entry & 1) == 0) {
                long next = page();
                entry = (next >>> 12) << 10 | 1;
                ram.write64(e, entry);
            }
            a = ((entry >>> 10) & ((1L << 44) - 1)) << 12;
        }
        return gpaToSpa.applyAsLong(a + pdi[0] * 16L);
    }

    long pc(long root, int pdtMode, int processId, long ta, long fsc) {
        long a = pcAddress(root, pdtMode, processId, x -> x);
        ram.write64(a + 8, fsc);
        ram.write64(a, ta);
        return a;
    }

    /** A first-stage table (supervisor pages unless {@code user}) from the pool. */
    IoPageTable firstStage(RiscvPaging.Mode mode, boolean user) {
        try {
            return IoPageTable.create(RiscvPaging.firstStage(mode, 52, false, false, user), ram, pool, FlushOps.NONE);
        } catch (IommuException e) {
            throw new AssertionError(e);
        }
    }

    IoPageTable gStage(RiscvPaging.Mode mode) {
        try {
            return IoPageTable.create(RiscvPaging.gStage(mode, 52, false), ram, pool, FlushOps.NONE);
        } catch (IommuException e) {
            throw new AssertionError(e);
        }
    }

    /** A G-stage table that maps 4 KiB pages only (so single pages can be remapped later). */
    IoPageTable gStage4k(RiscvPaging.Mode mode) {
        try {
            return IoPageTable.create(RiscvPaging.gStage(mode, 52, false), ram, pool, FlushOps.NONE, 1L << 12);
        } catch (IommuException e) {
            throw new AssertionError(e);
        }
    }

    static void map(IoPageTable t, long iova, long pa, long size, int prot) {
        try {
            t.map(iova, pa, size, prot);
        } catch (IommuException e) {
            throw new AssertionError(e);
        }
    }

    /**
     * A hand-made Sv39/48/57 (or x4) table: writes {@code leaf} as the level-0 (4 KiB) PTE of
     * {@code va}, creating pointer PTEs from the structure pages. @return the leaf PTE's address
     */
    long handPte(long root, int levels, boolean gStage, long va, long leaf) {
        long table = root;
        for (int depth = 0; depth < levels; depth++) {
            int shift = 12 + 9 * (levels - 1 - depth);
            int bits = depth == 0 && gStage ? 11 : 9;
            long e = table + ((va >>> shift) & ((1L << bits) - 1)) * 8;
            if (depth == levels - 1) {
                ram.write64(e, leaf);
                return e;
            }
            long entry = ram.read64(e);
            if ((entry & 1) == 0) {
                long next = page();
                entry = (next >>> 12) << 10 | PTE_V;
                ram.write64(e, entry);
            }
            table = ((entry >>> 10) & ((1L << 44) - 1)) << 12;
        }
        throw new AssertionError();
    }

    static long leaf(long pa, long flags) {
        return (pa >>> 12) << 10 | flags;
    }

    // ---- command queue ----

    /** Writes one command at cqt and advances cqt (the unit executes it during the write). */
    void command(long d0, long d1) {
        long a = CQ + 16L * cqTail;
        ram.write64(a, d0);
        ram.write64(a + 8, d1);
        cqTail = (cqTail + 1) & ((1 << cqLog2) - 1);
        w32(CQT, cqTail);
    }

    /** Writes commands without advancing cqt; {@link #submit} then moves cqt past all of them. */
    void queue(long d0, long d1) {
        long a = CQ + 16L * cqTail;
        ram.write64(a, d0);
        ram.write64(a + 8, d1);
        cqTail = (cqTail + 1) & ((1 << cqLog2) - 1);
    }

    void submit() {
        w32(CQT, cqTail);
    }

    int cqTail() {
        return cqTail;
    }

    void resyncCqTail() {
        cqTail = (int) r32(CQT);
    }

    // opcodes (§3.1)
    static long iotinvalVma(boolean gv, int gscid, boolean pscv, int pscid, boolean av) {
        return 1 | (av ? 1L << 10 : 0) | (pscv ? 1L << 32 | (long) pscid << 12 : 0) | (gv ? 1L << 33 | (long) gscid << 44 : 0);
    }

    static long iotinvalGvma(boolean gv, int gscid, boolean av) {
        return 1 | 1 << 7 | (av ? 1L << 10 : 0) | (gv ? 1L << 33 | (long) gscid << 44 : 0);
    }

    static long addr(long address) {
        return (address >>> 12) << 10;
    }

    static long iofence(boolean av, boolean wsi, int data) {
        return 2 | (av ? 1L << 10 : 0) | (wsi ? 1L << 11 : 0) | (long) data << 32;
    }

    static long iodirDdt(boolean dv, int did) {
        return 3 | (dv ? 1L << 33 | (long) did << 40 : 0);
    }

    static long iodirPdt(int did, int pid) {
        return 3 | 1 << 7 | 1L << 33 | (long) did << 40 | (long) pid << 12;
    }

    static long prgr(int rid, int pasid) {
        return 4 | 1 << 7 | (long) rid << 40 | (pasid >= 0 ? 1L << 32 | (long) pasid << 12 : 0);
    }

    static long prgrPayload(int group, int code) {
        return (long) group << 32 | (long) code << 44;
    }

    /** IOTINVAL.VMA all + IODIR.INVAL_DDT all, as software would after changing everything. */
    void invalidateEverything() {
        command(iodirDdt(false, 0), 0);
        command(iotinvalVma(false, 0, false, 0, false), 0);
        command(iotinvalGvma(false, 0, false), 0);
    }

    // ---- fault queue ----

    /** A fault record (§3.2), decoded here from the spec's layout. */
    record Fault(int cause, int pid, boolean pv, boolean priv, int ttyp, int did, long reserved, long iotval, long iotval2) {
    }

    /** Reads the records between fqh and fqt and moves fqh past them. */
    List<Fault> faults() {
        List<Fault> list = new ArrayList<>();
        int h = (int) r32(FQH);
        int t = (int) r32(FQT);
        while (h != t) {
            long a = FQ + 32L * h;
            long d0 = ram.read64(a);
            list.add(new Fault((int) (d0 & 0xfff), (int) (d0 >>> 12) & 0xfffff, (d0 >>> 32 & 1) != 0, (d0 >>> 33 & 1) != 0,
                    (int) (d0 >>> 34) & 0x3f, (int) (d0 >>> 40), ram.read64(a + 8), ram.read64(a + 16), ram.read64(a + 24)));
            h = (h + 1) & ((1 << fqLog2) - 1);
        }
        w32(FQH, h);
        return list;
    }

    Translation translate(int rid, int pasid, long address, int access) {
        Translation t = new Translation();
        hw.translate(rid, pasid, address, access, t);
        return t;
    }
}
