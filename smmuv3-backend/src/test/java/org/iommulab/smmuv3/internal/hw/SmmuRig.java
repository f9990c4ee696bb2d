package org.iommulab.smmuv3.internal.hw;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;

import org.iommulab.api.errno.IommuException;
import org.iommulab.api.spi.IommuDomain;
import org.iommulab.api.translation.Translation;
import org.iommulab.pgtable.FlushOps;
import org.iommulab.pgtable.IoPageTable;
import org.iommulab.pgtable.PageTableFormat;
import org.iommulab.pgtable.WalkResult;
import org.iommulab.pgtable.Walker;
import org.iommulab.pgtable.format.ArmGranule;
import org.iommulab.pgtable.format.ArmStage1;
import org.iommulab.pgtable.format.ArmStage2;
import org.iommulab.platform.internal.memory.FramePool;
import org.iommulab.platform.internal.memory.SparseMemory;

/**
 * A driver for one SMMUv3 in the manner of QEMU's qtest {@code libqos/qos-smmuv3}: it lays out the
 * stream table, context descriptors and queues at fixed low addresses and programs the unit only
 * through its registers and those structures. Offsets and bits are spelled out here from the
 * specification (Arm IHI 0070 §6), not taken from the model.
 */
final class SmmuRig {
    static final int IDR0 = 0x0;
    static final int IDR1 = 0x4;
    static final int IDR3 = 0xc;
    static final int IDR5 = 0x14;
    static final int CR0 = 0x20;
    static final int CR0ACK = 0x24;
    static final int GBPA = 0x44;
    static final int IRQ_CTRL = 0x50;
    static final int IRQ_CTRL_ACK = 0x54;
    static final int GERROR = 0x60;
    static final int GERRORN = 0x64;
    static final int STRTAB_BASE = 0x80;
    static final int STRTAB_BASE_CFG = 0x88;
    static final int CMDQ_BASE = 0x90;
    static final int CMDQ_PROD = 0x98;
    static final int CMDQ_CONS = 0x9c;
    static final int EVENTQ_BASE = 0xa0;
    static final int EVENTQ_PROD = 0x100a8;
    static final int EVENTQ_CONS = 0x100ac;

    static final int SMMUEN = 1;
    static final int EVTQEN = 1 << 2;
    static final int CMDQEN = 1 << 3;

    // STE Config values
    static final int CFG_ABORT = 0;
    static final int CFG_BYPASS = 4;
    static final int CFG_S1 = 5;
    static final int CFG_S2 = 6;
    static final int CFG_NESTED = 7;

    // memory layout
    static final long STRTAB = 0x10_0000;
    static final long CMDQ = 0x20_0000;
    static final long EVENTQ = 0x30_0000;
    static final long CDS = 0x40_0000;
    static final long POOL = 0x1000_0000L;
    static final long DATA = 0x1_0000_0000L;

    final SparseMemory ram;
    final SmmuHardware hw;
    final FramePool pool;
    int cmdqLog2 = 8;
    int eventqLog2 = 8;
    private int cmdProd;
    private long nextCd = CDS;

    SmmuRig() {
        this(Map.of());
    }

    SmmuRig(Map<String, String> config) {
        ram = new SparseMemory(52);
        try {
            hw = new SmmuHardware(ram, SmmuConfig.of(config));
        } catch (IommuException e) {
            throw new AssertionError(e);
        }
        pool = new FramePool(ram, POOL, 1 << 14);
        ram.fill(STRTAB, 0x10_0000, (byte) 0);
        ram.fill(CMDQ, 0x10_0000, (byte) 0);
        ram.fill(EVENTQ, 0x10_0000, (byte) 0);
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

    void cr0(int value) {
        w32(CR0, value);
        assertEquals(value, r32(CR0ACK), "CR0ACK follows CR0");
    }

    /** Linear stream table of 2^log2 STEs, queues, then CR0 = SMMUEN | EVTQEN | CMDQEN. */
    void enable() {
        enable(8);
    }

    void enable(int log2) {
        w64(STRTAB_BASE, STRTAB);
        w32(STRTAB_BASE_CFG, log2);
        enableQueuesAndSmmu();
    }

    /** Two-level stream table with the given SPLIT and LOG2SIZE (L1 descriptors are written with {@link #l1std}). */
    void enableTwoLevel(int log2, int split) {
        w64(STRTAB_BASE, STRTAB);
        w32(STRTAB_BASE_CFG, log2 | split << 6 | 1 << 16);
        enableQueuesAndSmmu();
    }

    void enableQueuesAndSmmu() {
        w32(0x2c, 1 << 1); // CR2.RECINVSID: record C_BAD_STREAMID, as Linux does
        w64(CMDQ_BASE, CMDQ | cmdqLog2);
        w32(CMDQ_PROD, 0);
        w32(CMDQ_CONS, 0);
        w64(EVENTQ_BASE, EVENTQ | eventqLog2);
        w32(EVENTQ_PROD, 0);
        w32(EVENTQ_CONS, 0);
        cmdProd = 0;
        cr0(EVTQEN | CMDQEN);
        cr0(EVTQEN | CMDQEN | SMMUEN);
    }

    // ---- structures ----

    /** An STE as 16 32-bit words. */
    static final class Ste {
        final int[] w = new int[16];

        Ste(int config) {
            w[0] = 1 | config << 1;
        }

        Ste valid(boolean v) {
            w[0] = v ? w[0] | 1 : w[0] & ~1;
            return this;
        }

        Ste s1(long contextPtr, int s1fmt, int cdMax) {
            w[0] |= (int) (contextPtr & 0xffff_ffc0L) | s1fmt << 4;
            w[1] = (int) ((contextPtr >>> 32) & 0xfffff) | cdMax << 27;
            return this;
        }

        Ste s1dss(int dss) {
            w[2] = (w[2] & ~3) | dss;
            return this;
        }

        /** S2: 4K=0, 64K=1, 16K=2 in tg. */
        Ste s2(int vmid, int t0sz, int sl0, int tg, int ps, long ttb) {
            w[4] = vmid;
            w[5] = t0sz | sl0 << 6 | tg << 14 | ps << 16 | 1 << 19 /* S2AA64 */ | 1 << 26 /* S2R */;
            w[6] = (int) (ttb & 0xffff_fff0L);
            w[7] = (int) ((ttb >>> 32) & 0xfffff);
            return this;
        }

        Ste w5(int bits) {
            w[5] |= bits;
            return this;
        }
    }

    /** A CD as 16 32-bit words. */
    static final class Cd {
        final int[] w = new int[16];

        /** tg0: 0 4K, 1 64K, 2 16K. */
        Cd(int t0sz, int tg0, int asid, long ttb0) {
            w[0] = t0sz | tg0 << 6 | 1 << 30 /* EPD1 */ | 1 << 31;
            w[1] = 5 /* IPS 48 */ | 1 << 9 /* AA64 */ | 1 << 13 /* R */ | 1 << 14 /* A */ | asid << 16;
            w[2] = (int) (ttb0 & 0xffff_fff0L);
            w[3] = (int) (ttb0 >>> 32);
        }

        /** tg1: 1 16K, 2 4K, 3 64K. */
        Cd ttb1(int t1sz, int tg1, long ttb1) {
            w[0] = (w[0] & ~(1 << 30) & ~(0xff << 16)) | t1sz << 16 | tg1 << 22;
            w[4] = (int) (ttb1 & 0xffff_fff0L);
            w[5] = (int) (ttb1 >>> 32);
            return this;
        }

        Cd w0(int set, int clear) {
            w[0] = (w[0] & ~clear) | set;
            return this;
        }

        Cd w1(int set, int clear) {
            w[1] = (w[1] & ~clear) | set;
            return this;
        }
    }

    void writeWords(long address, int[] words) {
        for (int i = 0; i < words.length; i++) {
            ram.write32(address + 4L * i, words[i]);
        }
    }

    long steAddress(int sid) {
        return STRTAB + 64L * sid;
    }

    void ste(int sid, Ste s) {
        writeWords(steAddress(sid), s.w);
    }

    void l1std(int index, long l2, int span) {
        ram.write64(STRTAB + 8L * index, l2 | span);
    }

    /** @return a fresh zeroed 4 KiB-aligned area of {@code bytes} for CDs */
    long cdArea(long bytes) {
        long a = nextCd;
        nextCd += (bytes + 0xfff) & ~0xfffL;
        ram.fill(a, bytes, (byte) 0);
        return a;
    }

    void cd(long address, Cd c) {
        writeWords(address, c.w);
    }

    // ---- page tables ----

    IoPageTable s1Table(ArmGranule g, int t0sz) {
        try {
            return IoPageTable.create(ArmStage1.of(g, t0sz, 48, false, false, false), ram, pool, FlushOps.NONE);
        } catch (IommuException e) {
            throw new AssertionError(e);
        }
    }

    IoPageTable s1Table(ArmStage1 f) {
        try {
            return IoPageTable.create(f, ram, pool, FlushOps.NONE);
        } catch (IommuException e) {
            throw new AssertionError(e);
        }
    }

    IoPageTable s2Table(ArmGranule g, int t0sz, int sl0) {
        try {
            return IoPageTable.create(ArmStage2.of(g, t0sz, sl0, 48, false, false, false), ram, pool, FlushOps.NONE);
        } catch (IommuException e) {
            throw new AssertionError(e);
        }
    }

    static void map(IoPageTable t, long iova, long pa, long size) {
        map(t, iova, pa, size, IommuDomain.PROT_READ | IommuDomain.PROT_WRITE);
    }

    static void map(IoPageTable t, long iova, long pa, long size, int prot) {
        try {
            t.map(iova, pa, size, prot);
        } catch (IommuException e) {
            throw new AssertionError(e);
        }
    }

    /** @return the address of the leaf entry mapping {@code iova} in a single-stage table */
    long leafEntry(PageTableFormat f, long root, long iova) {
        WalkResult w = new WalkResult();
        Walker.walk(ram, f, root, iova, 0, false, w);
        assertTrue(w.steps() > 0);
        return w.stepAddress(w.steps() - 1);
    }

    // ---- queues ----

    /** Writes a command at CMDQ_PROD and publishes it; processing is synchronous. */
    void cmd(long d0, long d1) {
        int size = 1 << cmdqLog2;
        long slot = CMDQ + 16L * (cmdProd & (size - 1));
        ram.write64(slot, d0);
        ram.write64(slot + 8, d1);
        cmdProd = (cmdProd + 1) & ((size << 1) - 1);
        w32(CMDQ_PROD, cmdProd);
    }

    /** Issues CMD_SYNC and checks the queue was fully consumed. */
    void sync() {
        cmd(0x46, 0);
        assertEquals(cmdProd, r32(CMDQ_CONS) & ((2 << cmdqLog2) - 1), "CMDQ_CONS after CMD_SYNC");
    }

    /** One event record. */
    static final class Event {
        int type;
        boolean ssv;
        int ssid;
        int sid;
        boolean pnu;
        boolean ind;
        boolean rnw;
        boolean s2;
        int cls;
        long input;
        long address2;

        @Override
        public String toString() {
            return String.format("event 0x%x sid %d ssv %b ssid %d pnu %b ind %b rnw %b s2 %b class %d in 0x%x addr2 0x%x",
                    type, sid, ssv, ssid, pnu, ind, rnw, s2, cls, input, address2);
        }
    }

    /** Reads and consumes every pending event. */
    List<Event> events() {
        List<Event> list = new ArrayList<>();
        int mask = (2 << eventqLog2) - 1;
        int prod = (int) r32(EVENTQ_PROD);
        int cons = (int) r32(EVENTQ_CONS);
        while ((cons & mask) != (prod & mask)) {
            long rec = EVENTQ + 32L * (cons & ((1 << eventqLog2) - 1));
            long q0 = ram.read64(rec);
            long q1 = ram.read64(rec + 8);
            Event e = new Event();
            e.type = (int) q0 & 0xff;
            e.ssv = (q0 & (1 << 11)) != 0;
            e.ssid = (int) (q0 >>> 12) & 0xfffff;
            e.sid = (int) (q0 >>> 32);
            int w3 = (int) (q1 >>> 32);
            e.pnu = (w3 & 2) != 0;
            e.ind = (w3 & 4) != 0;
            e.rnw = (w3 & 8) != 0;
            e.s2 = (w3 & 0x80) != 0;
            e.cls = (w3 >>> 8) & 3;
            e.input = ram.read64(rec + 16);
            e.address2 = ram.read64(rec + 24);
            list.add(e);
            cons = (cons & 0x8000_0000) | (((cons & mask) + 1) & mask);
        }
        w32(EVENTQ_CONS, cons);
        return list;
    }

    /** @return the single pending event */
    Event event() {
        List<Event> l = events();
        assertEquals(1, l.size(), () -> "events: " + l);
        return l.get(0);
    }

    Translation translate(int sid, int ssid, long address, int access) {
        Translation t = new Translation();
        hw.translate(sid, ssid, address, access, t);
        return t;
    }

    long pa(int sid, int ssid, long address, int access) {
        Translation t = translate(sid, ssid, address, access);
        assertTrue(t.isSuccess(), () -> String.format("0x%x: %s", address, t));
        return t.outputAddress();
    }
}
