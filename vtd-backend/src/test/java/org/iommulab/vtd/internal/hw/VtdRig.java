package org.iommulab.vtd.internal.hw;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.HashMap;
import java.util.Map;

import org.iommulab.api.errno.IommuException;
import org.iommulab.api.translation.Access;
import org.iommulab.api.translation.Translation;
import org.iommulab.platform.internal.memory.SparseMemory;

/**
 * A guest driver for one VT-d unit, in the manner of QEMU's qtest {@code libqos/qos-intel-iommu.c}:
 * it lays out the scalable-mode root table, context tables, PASID directories and tables and the
 * invalidation queue at fixed low addresses, and programs the unit only through its registers
 * ({@link VtdHardware#read}/{@link VtdHardware#write}) and those structures in memory.
 *
 * <p>Register offsets and bits are spelled out here from the specification (VT-d 3.x §11.4), not
 * taken from the model, so that a wrong offset in the model is caught.
 */
final class VtdRig {
    // ---- registers (§11.4) ----
    static final int VER = 0x00;
    static final int CAP = 0x08;
    static final int ECAP = 0x10;
    static final int GCMD = 0x18;
    static final int GSTS = 0x1c;
    static final int RTADDR = 0x20;
    static final int CCMD = 0x28;
    static final int FSTS = 0x34;
    static final int FECTL = 0x38;
    static final int FEDATA = 0x3c;
    static final int FEADDR = 0x40;
    static final int IQH = 0x80;
    static final int IQT = 0x88;
    static final int IQA = 0x90;
    static final int ICS = 0x9c;
    static final int IECTL = 0xa0;
    static final int IEDATA = 0xa4;

    // GCMD / GSTS
    static final int TE = 1 << 31;
    static final int SRTP = 1 << 30;
    static final int QIE = 1 << 26;
    /** GSTS bits that are status of one-shot commands and must not be written back (§11.4.4). */
    static final int ONE_SHOT_MASK = 0x96ff_ffff;
    static final long TTM_LEGACY = 0;
    static final long TTM_SCALABLE = 1L << 10;

    // FSTS, FECTL/IECTL, ICS
    static final int PFO = 1;
    static final int PPF = 1 << 1;
    static final int IQE = 1 << 4;
    static final int IM = 1 << 31;
    static final int IP = 1 << 30;
    static final int IWC = 1;
    static final long IQA_DW = 1L << 11;

    // Fault recording register, upper 64 bits (§11.4.9.3)
    static final long FR_F = 1L << 63;
    static final long FR_T1 = 1L << 62;
    static final long FR_PP = 1L << 31;
    /** EXE (bit 94) and PRIV (bit 93) of the 128-bit record, i.e. bits 30 and 29 of the upper half. */
    static final long FR_EXE = 1L << 30;
    static final long FR_PRIV = 1L << 29;
    /** AT (bits 125:124): address type; 0 for untranslated requests. */
    static final long FR_AT = 3L << 60;

    // Context entry (§9.4)
    static final long CTX_P = 1;
    static final long CTX_FPD = 1L << 1;
    static final long CTX_PASIDE = 1L << 3;

    // PASID table entry (§9.6)
    static final long PE_P = 1;
    static final long PE_FPD = 1L << 1;
    static final long PE_SLEE = 1L << 5;
    static final long PE_SLADE = 1L << 9;
    static final long PE2_SRE = 1;
    static final long PE2_WPE = 1L << 4;
    static final long PE2_NXE = 1L << 5;
    static final int PGTT_FS = 1;
    static final int PGTT_SS = 2;
    static final int PGTT_NESTED = 3;
    static final int PGTT_PT = 4;

    // ---- memory layout: everything below 1 TiB ----
    static final long ROOT = 0x1_0000;
    /** Invalidation queue base (room for QS up to 3). */
    static final long IQ_BASE = 0x2_0000;
    /** Status words written by wait descriptors. */
    static final long STATUS = 0x8_0000;
    /** Context tables: bus * 8 KiB, the upper (devfn 128-255) half 4 KiB further. */
    static final long CONTEXT_TABLES = 0x10_0000;
    /** PASID directories, PASID tables and page tables are allocated upwards from here. */
    static final long ALLOC_BASE = 0x40_0000;
    /** Data pages. */
    static final long DATA = 0x1_0000_0000L;

    final SparseMemory ram;
    final RomMemory mem;
    final VtdHardware hw;
    final int frcd;
    final int iotlbRegs;
    private long next = ALLOC_BASE;
    private boolean wide;
    private int qs;
    private long tail;
    private final Map<Integer, Long> directories = new HashMap<>();

    VtdRig() {
        this(Map.of());
    }

    VtdRig(Map<String, String> config) {
        ram = new SparseMemory(52);
        mem = new RomMemory(ram);
        try {
            hw = new VtdHardware(mem, VtdConfig.of(config));
        } catch (IommuException e) {
            throw new AssertionError(e);
        }
        zero(ROOT, 4096);
        zero(IQ_BASE, 0x8000 * 2);
        zero(STATUS, 4096);
        frcd = (int) ((reg64(CAP) >>> 24) & 0x3ff) * 16;
        iotlbRegs = (int) ((reg64(ECAP) >>> 8) & 0x3ff) * 16;
    }

    // ---- memory helpers ----

    void zero(long address, long bytes) {
        mem.fill(address, bytes, (byte) 0);
    }

    /** @return a fresh zeroed 4 KiB page from the allocation area */
    long page() {
        return pages(1);
    }

    long pages(int n) {
        long p = next;
        next += 4096L * n;
        zero(p, 4096L * n);
        return p;
    }

    // ---- register helpers ----

    long reg32(int offset) {
        try {
            return hw.read(offset, 4);
        } catch (IommuException e) {
            throw new AssertionError(e);
        }
    }

    long reg64(int offset) {
        try {
            return hw.read(offset, 8);
        } catch (IommuException e) {
            throw new AssertionError(e);
        }
    }

    void w32(int offset, long value) {
        try {
            hw.write(offset, value & 0xffff_ffffL, 4);
        } catch (IommuException e) {
            throw new AssertionError(e);
        }
    }

    void w64(int offset, long value) {
        try {
            hw.write(offset, value, 8);
        } catch (IommuException e) {
            throw new AssertionError(e);
        }
    }

    int gsts() {
        return (int) reg32(GSTS);
    }

    int fsts() {
        return (int) reg32(FSTS);
    }

    /**
     * Issues one global command the way §11.4.4 tells software to: read GSTS, drop the one-shot
     * status bits, change one bit, write GCMD, and check that GSTS follows.
     */
    void command(int bit, boolean on) {
        int status = gsts() & ONE_SHOT_MASK;
        w32(GCMD, on ? status | bit : status & ~bit);
        int after = gsts();
        if (bit == SRTP) {
            assertTrue((after & SRTP) != 0, "GSTS.RTPS after SRTP");
        } else {
            assertEquals(on, (after & bit) != 0, String.format("GSTS bit 0x%x after GCMD", bit));
        }
    }

    /** Root table (scalable mode), SRTP, 128-bit invalidation queue of 256 entries, QIE, TE. */
    void enable() {
        enable(false, 0);
    }

    void enable(boolean wideDescriptors, int queueSize) {
        w64(RTADDR, ROOT | TTM_SCALABLE);
        command(SRTP, true);
        enableQueue(wideDescriptors, queueSize);
        command(TE, true);
    }

    /** Root table and TE only: for register-based invalidation, which must not be mixed with QI. */
    void enableWithoutQueue() {
        w64(RTADDR, ROOT | TTM_SCALABLE);
        command(SRTP, true);
        command(TE, true);
    }

    void enableQueue(boolean wideDescriptors, int queueSize) {
        wide = wideDescriptors;
        qs = queueSize;
        tail = 0;
        w64(IQT, 0);
        w64(IQA, IQ_BASE | (wide ? IQA_DW : 0) | qs);
        command(QIE, true);
        assertEquals(0, reg64(IQH), "IQH after QIE");
    }

    // ---- root, context, PASID structures ----

    /** @return the context table for a bus half, creating the root entry half if absent */
    long contextTable(int bus, boolean upper) {
        long table = CONTEXT_TABLES + bus * 0x2000L + (upper ? 0x1000 : 0);
        long slot = ROOT + bus * 16L + (upper ? 8 : 0);
        if ((mem.read64(slot) & 1) == 0) {
            zero(table, 4096);
            mem.write64(slot, table | 1);
        }
        return table;
    }

    long contextEntryAddress(int sid) {
        return contextTable(sid >>> 8, (sid & 0x80) != 0) + (sid & 0x7f) * 32L;
    }

    /** Writes a 256-bit scalable-mode context entry (upper 128 bits zero). */
    long contextEntry(int sid, long qw0, long qw1) {
        long a = contextEntryAddress(sid);
        mem.write64(a, qw0);
        mem.write64(a + 8, qw1);
        mem.write64(a + 16, 0);
        mem.write64(a + 24, 0);
        return a;
    }

    /**
     * A present scalable-mode context entry with its own PASID directory of 2^(pdts+7) entries.
     *
     * @param flags extra qw0 flags (PASIDE, FPD, ...)
     * @return the directory
     */
    long smContext(int sid, int ridPasid, int pdts, long flags) {
        long dir = pages(Math.max(1, (8 << (pdts + 7)) / 4096));
        directories.put(sid, dir);
        contextEntry(sid, dir | ((long) pdts << 9) | CTX_P | flags, ridPasid);
        return dir;
    }

    long directory(int sid) {
        Long d = directories.get(sid);
        assertNotNull(d, "no PASID directory for sid");
        return d;
    }

    /** @return the address of the PASID directory entry of {@code pasid} */
    long directoryEntry(int sid, int pasid) {
        return directory(sid) + 8L * (pasid >>> 6);
    }

    /** Writes a PASID table entry (qw3-qw7 zero), creating the directory entry and table if absent. */
    long pasidEntry(int sid, int pasid, long qw0, long qw1, long qw2) {
        long slot = directoryEntry(sid, pasid);
        long de = mem.read64(slot);
        if ((de & 1) == 0) {
            de = page() | 1;
            mem.write64(slot, de);
        }
        long e = (de & PageTables.ADDR) + 64L * (pasid & 63);
        mem.write64(e, qw0);
        mem.write64(e + 8, qw1);
        mem.write64(e + 16, qw2);
        for (int i = 3; i < 8; i++) {
            mem.write64(e + 8L * i, 0);
        }
        return e;
    }

    static long pe0(int pgtt, int aw, long slptptr) {
        return slptptr | ((long) pgtt << 6) | ((long) aw << 2) | PE_P;
    }

    static long pe2(long flptptr, int flpm) {
        return flptptr | ((long) flpm << 2);
    }

    PageTables secondStage(int aw) {
        return new PageTables(mem, false, aw + 2, this::page, a -> a);
    }

    PageTables firstStage(int levels) {
        return new PageTables(mem, true, levels, this::page, a -> a);
    }

    /**
     * A device whose requests without PASID (RID_PASID 0) and with PASIDs go through one PASID
     * directory; PASID 0 is set up for second-stage translation with {@code ss}.
     */
    void secondStageDevice(int sid, int did, PageTables ss) {
        smContext(sid, 0, 0, CTX_PASIDE);
        pasidEntry(sid, 0, pe0(PGTT_SS, ss.levels - 2, ss.root), did, 0);
    }

    // ---- DMA ----

    Translation translate(int sid, int pasid, long address, int access) {
        Translation t = new Translation();
        boolean ok = hw.translate(sid, pasid, address, access, t);
        assertEquals(ok, t.isSuccess(), "return value and Translation agree");
        return t;
    }

    /** Translates and requires success. */
    long pa(int sid, int pasid, long address, int access) {
        Translation t = translate(sid, pasid, address, access);
        assertTrue(t.isSuccess(), () -> String.format("0x%x should translate, got %s", address, t));
        return t.outputAddress();
    }

    long read(int sid, long address) {
        return pa(sid, -1, address, Access.READ);
    }

    // ---- faults ----

    long frLo(int i) {
        return reg64(frcd + 16 * i);
    }

    long frHi(int i) {
        return reg64(frcd + 16 * i + 8);
    }

    /** Clears F of record {@code i} with a 4-byte write-1 to bits 127:96. */
    void clearRecord(int i) {
        w32(frcd + 16 * i + 12, 0x8000_0000L);
    }

    static String name(int code) {
        for (VtdFault f : VtdFault.values()) {
            if (f.code == code) {
                return f.spec;
            }
        }
        return null;
    }

    static void assertFault(Translation t, int code) {
        assertFalse(t.isSuccess(), () -> String.format("expected fault 0x%x, got %s", code, t));
        assertEquals(code, t.faultCode(), () -> String.format("fault code: expected 0x%x, got %s", code, t));
        assertNotNull(name(code), "code is a VtdFault");
        assertEquals(name(code), t.faultName(), "fault name");
        assertNotNull(t.faultKind(), "fault kind");
        assertEquals(0, t.outputAddress(), "no output address after a fault");
    }

    /**
     * Checks fault record {@code i}: F, FR, SID, PP/PV, T1 (read), FI = page of {@code address},
     * and FSTS.PPF.
     */
    void assertRecord(int i, int code, int sid, int pasid, long address, int access) {
        long hi = frHi(i);
        long lo = frLo(i);
        String what = String.format("record %d hi 0x%016x lo 0x%016x", i, hi, lo);
        assertTrue((hi & FR_F) != 0, what + ": F");
        assertEquals(code, (int) (hi >>> 32) & 0xff, what + ": FR");
        assertEquals(sid, (int) hi & 0xffff, what + ": SID");
        if (pasid < 0) {
            assertEquals(0, hi & FR_PP, what + ": PP clear without PASID");
            assertEquals(0, (hi >>> 40) & 0xfffff, what + ": PV zero without PASID");
        } else {
            assertNotEquals(0, hi & FR_PP, what + ": PP");
            assertEquals(pasid, (int) (hi >>> 40) & 0xfffff, what + ": PV");
        }
        assertEquals((access & Access.WRITE) == 0, (hi & FR_T1) != 0, what + ": T1 (1 = read)");
        assertEquals(address & ~0xfffL, lo, what + ": FI");
        assertTrue((fsts() & PPF) != 0, "FSTS.PPF");
    }

    /** @return the number of records with F set */
    int pendingRecords() {
        int n = 0;
        for (int i = 0; i < 4; i++) {
            if ((frHi(i) & FR_F) != 0) {
                n++;
            }
        }
        return n;
    }

    // ---- invalidation queue ----

    int queueBytes() {
        return 4096 << qs;
    }

    int descriptorBytes() {
        return wide ? 32 : 16;
    }

    /** Writes descriptors at the tail without moving IQT. */
    void place(long[]... descriptors) {
        for (long[] d : descriptors) {
            long at = IQ_BASE + tail;
            for (int i = 0; i < descriptorBytes() / 8; i++) {
                mem.write64(at + 8L * i, i < d.length ? d[i] : 0);
            }
            tail = (tail + descriptorBytes()) % queueBytes();
        }
    }

    /** Writes descriptors at IQT and moves IQT past them; the unit processes them before returning. */
    void submit(long[]... descriptors) {
        place(descriptors);
        w64(IQT, tail);
    }

    long tail() {
        return tail;
    }

    void setTail(long t) {
        tail = t;
    }

    /**
     * Submits a wait descriptor with SW set and checks the status was written.
     *
     * @return {@code true} if the status data arrived
     */
    boolean waitDescriptor(long statusAddress, int data) {
        mem.write32(statusAddress, ~data);
        submit(waitDesc(true, false, data, statusAddress));
        return mem.read32(statusAddress) == data;
    }

    void sync() {
        assertTrue(waitDescriptor(STATUS, 0x600d), "invalidation wait completed");
    }

    static long[] contextCacheDesc(int g, int did, int sid, int fm) {
        return new long[] {1 | (long) g << 4 | (long) did << 16 | (long) sid << 32 | (long) fm << 48, 0};
    }

    static long[] iotlbDesc(int g, int did, long address, int am, boolean ih) {
        return new long[] {2 | (long) g << 4 | (long) did << 16, address | (ih ? 1L << 6 : 0) | am};
    }

    static long[] waitDesc(boolean sw, boolean interrupt, int data, long statusAddress) {
        return new long[] {5 | (interrupt ? 1L << 4 : 0) | (sw ? 1L << 5 : 0) | (data & 0xffff_ffffL) << 32, statusAddress};
    }

    static long[] pasidIotlbDesc(int g, int did, int pasid, long address, int am, boolean ih) {
        return new long[] {6 | (long) g << 4 | (long) did << 16 | (long) pasid << 32, address | (ih ? 1L << 6 : 0) | am};
    }

    static long[] pasidCacheDesc(int g, int did, int pasid) {
        return new long[] {7 | (long) g << 4 | (long) did << 16 | (long) pasid << 32, 0};
    }
}
