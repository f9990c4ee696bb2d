package org.iommulab.smmuv3.internal.hw;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

import org.iommulab.api.errno.Errno;
import org.iommulab.api.errno.IommuException;
import org.iommulab.api.translation.Access;
import org.iommulab.api.translation.Translation;
import org.iommulab.pgtable.IoPageTable;
import org.iommulab.pgtable.format.ArmGranule;
import org.iommulab.smmuv3.internal.hw.SmmuRig.Cd;
import org.iommulab.smmuv3.internal.hw.SmmuRig.Ste;

import net.jqwik.api.Arbitraries;
import net.jqwik.api.Arbitrary;
import net.jqwik.api.Combinators;
import net.jqwik.api.ForAll;
import net.jqwik.api.Property;
import net.jqwik.api.Provide;
import net.jqwik.api.Tuple;
import net.jqwik.api.statistics.Statistics;

/**
 * Fuzzing of the programming interface: random command queue contents and random register writes
 * interleaved with transactions, on every unit configuration of {@link SmmuScenario#VARIANTS}.
 *
 * <p>{@link #commandQueueStopsAtIllegalCommandsAndRecovers}: batches of random commands (random
 * opcodes and fields, and every defined command with random fields: CMD_CFGI_*, CMD_TLBI_*,
 * CMD_SYNC with and without an MSI, CMD_PRI_RESP, CMD_RESUME, CMD_STALL_TERM, ...) published with
 * one CMDQ_PROD write. Consumption must stop exactly at the first command that Arm IHI 0070 §4
 * makes illegal for this unit ({@link #legal}), with CMDQ_CONS.ERR = CERROR_ILL and
 * GERROR.CMDQ_ERR active (§7.1); the driver's recovery, as Linux does it (replace the command with
 * CMD_SYNC, acknowledge through GERRORN), must resume consumption at CMDQ_CONS; a CMD_SYNC with
 * ComplSignal SIG_IRQ must write its MSI, at the address truncated to the OAS (§3.4.3). At
 * the end, the invalidations a driver issues must still take effect: a TLB entry made stale behind
 * the unit's back before the batches is gone after CMD_CFGI_ALL, CMD_TLBI_NSNH_ALL, CMD_SYNC.
 *
 * <p>{@link #registerWritesNeverBreakTheUnit}: random 4- and 8-byte writes to the offsets the model
 * defines (and anywhere else in its two pages), reads, badly sized or aligned accesses (which must
 * be EINVAL) and translations, interleaved. Nothing may throw otherwise, every call returns within
 * {@link Bounded#CALL_NANOS}, a failed translation carries an architectural code (§7.3, or 0 for a
 * silent abort), and after the driver's reset sequence (CR0 = 0, acknowledge GERROR, program the
 * tables and queues, enable) translation and event recording work again.
 *
 * <p>Reproducing: a failure prints jqwik's seed and the shrunk sample; rerun it with
 * {@code @Property(seed = "<seed>")} on the method. The long run: {@code mvn -B -o -pl
 * smmuv3-backend test -Dtest=SmmuCommandAndRegisterPropertyTest -Djqwik.tries.default=1000000}.
 */
class SmmuCommandAndRegisterPropertyTest {
    private static final int CERROR_ILL = 1;
    private static final int GERROR_CMDQ_ERR = 1;
    private static final long MSI_AREA = 0x8_0000;
    /** An MSI address bit above every OAS the variants use: §3.4.3 (6) truncates it away. */
    private static final long ABOVE_OAS = 1L << 50;
    private static final long DATA = SmmuRig.DATA;
    private static final long NEW = DATA + 0x10_0000;
    private static final int CMD_SYNC = 0x46;

    /** Every opcode §4.1.1 defines. */
    private static final int[] DEFINED = {0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x10, 0x11, 0x12, 0x13, 0x18, 0x1a,
        0x20, 0x21, 0x22, 0x23, 0x28, 0x2a, 0x30, 0x40, 0x41, 0x44, 0x45, 0x46, 0x50, 0x51, 0x52, 0x53, 0x58, 0x5a, 0x60,
        0x70, 0x73};

    /** One command queue entry (§4.1: 16 bytes, opcode in bits 7:0). */
    record Command(long d0, long d1) {
        int opcode() {
            return (int) d0 & 0xff;
        }

        @Override
        public String toString() {
            return String.format("cmd 0x%02x [0x%016x 0x%016x]", opcode(), d0, d1);
        }
    }

    @Provide
    Arbitrary<Integer> variants() {
        return Arbitraries.frequency(Tuple.of(4, 0), Tuple.of(1, 1), Tuple.of(1, 2), Tuple.of(1, 3), Tuple.of(1, 4));
    }

    private static Arbitrary<Command> command() {
        Arbitrary<Integer> opcode = Arbitraries.frequencyOf(Tuple.of(6, Arbitraries.of(toList(DEFINED))),
                Tuple.of(4, Arbitraries.integers().between(0, 255)));
        Arbitrary<Long> msi = Arbitraries.frequencyOf(Tuple.of(2, Arbitraries.just(0L)),
                Tuple.of(5, Arbitraries.integers().between(0, 255).map(i -> MSI_AREA + 4L * i)),
                Tuple.of(1, Arbitraries.integers().between(0, 255).map(i -> ABOVE_OAS | (MSI_AREA + 4L * i))));
        return Combinators.combine(opcode, Arbitraries.longs(), Arbitraries.longs(), Arbitraries.integers().between(0, 99), msi)
                .as((op, d0, d1, ssec, msiAddress) -> {
                    long w0 = (d0 & ~0xffL) | op;
                    if (ssec >= 15) {
                        w0 &= ~(1L << 10); // SSec mostly clear (§4.1.6)
                    }
                    // CMD_SYNC: only MSI addresses the test owns (a random one could hit the tables).
                    return new Command(w0, op == CMD_SYNC ? msiAddress | (d1 & 3) : d1);
                });
    }

    private static List<Integer> toList(int[] a) {
        List<Integer> l = new ArrayList<>();
        for (int i : a) {
            l.add(i);
        }
        return l;
    }

    @Provide
    Arbitrary<List<List<Command>>> batches() {
        return command().list().ofMinSize(1).ofMaxSize(12).list().ofMinSize(1).ofMaxSize(5);
    }

    /**
     * Whether a command is legal on the Non-secure command queue of this unit (IDR0.STALL_MODEL
     * 0b01, no Hyp, no Secure state, no MPAM, no DPT), per Arm IHI 0070 §4: {@code TRUE} it must be
     * consumed, {@code FALSE} it must stop the queue with CERROR_ILL, {@code null} either (a choice
     * the specification leaves to the implementation, e.g. IMPLEMENTATION DEFINED opcodes or
     * fields whose checks are not modelled here).
     */
    static Boolean legal(SmmuReference.Features f, Command c) {
        boolean ssec = (c.d0() & 1 << 10) != 0;
        switch (c.opcode()) {
            case 0x01: // CMD_PREFETCH_CONFIG
            case 0x02: // CMD_PREFETCH_ADDR
            case 0x03: // CMD_CFGI_STE
            case 0x04: // CMD_CFGI_STE_RANGE / CMD_CFGI_ALL
                return !ssec; // §4.1.6: SSec == 1 on the Non-secure queue is ILLEGAL
            case 0x05: // CMD_CFGI_CD
            case 0x06: // CMD_CFGI_CD_ALL
                return !ssec && f.s1p; // §4.3.3, §4.3.4: CERROR_ILL when stage 1 is not implemented
            case 0x10: // CMD_TLBI_NH_ALL
            case 0x11: // CMD_TLBI_NH_ASID
            case 0x12: // CMD_TLBI_NH_VA
            case 0x13: // CMD_TLBI_NH_VAA
                return f.s1p; // §4.4.2
            case 0x28: // CMD_TLBI_S12_VMALL
            case 0x2a: // CMD_TLBI_S2_IPA
                return f.s2p; // §4.4.3
            case 0x30: // CMD_TLBI_NSNH_ALL
                return true;
            case 0x40: // CMD_ATC_INV
                return f.ats ? null : false; // §4.5.1; its field checks are not modelled here
            case 0x41: // CMD_PRI_RESP
                return !f.pri || ((c.d1() >>> 12) & 3) == 3 ? false : null; // §4.5.2: Resp 0b11 is reserved
            case 0x46: // CMD_SYNC
                return ((c.d0() >>> 12) & 3) != 3; // §4.7.3: ComplSignal 0b11 is reserved
            default:
                if (c.opcode() >= 0x80 && c.opcode() <= 0x8f) {
                    return null; // IMPLEMENTATION DEFINED
                }
                // Reserved opcodes; CMD_CFGI_VMS_PIDM (no MPAM); CMD_TLBI_EL2_* (IDR0.Hyp 0);
                // CMD_TLBI_EL3_* and CMD_TLBI_S_* (Secure only); CMD_RESUME and CMD_STALL_TERM
                // (IDR0.STALL_MODEL 0b01, §4.7.1, §4.7.2); CMD_DPTI_* (no DPT).
                return false;
        }
    }

    /** A stream whose translation the test can make stale: stage 1 if implemented, else stage 2. */
    private static final class Stream {
        final SmmuRig rig;
        final IoPageTable table;

        Stream(SmmuRig rig, SmmuReference.Features f) {
            this.rig = rig;
            if (f.s1p) {
                table = rig.s1Table(f.g4k ? ArmGranule.G4K : ArmGranule.G64K, 16);
                long cd = rig.cdArea(64);
                rig.cd(cd, new Cd(16, f.g4k ? 0 : 1, 5, table.root()));
                rig.ste(1, new Ste(SmmuRig.CFG_S1).s1(cd, 0, 0));
            } else {
                table = rig.s2Table(f.g4k ? ArmGranule.G4K : ArmGranule.G64K, 24, 1);
                rig.ste(1, new Ste(SmmuRig.CFG_S2).s2(3, 24, 1, f.g4k ? 0 : 1, 5, table.root()));
            }
            SmmuRig.map(table, 0x10000, DATA, 0x10000);
            rig.ste(2, new Ste(SmmuRig.CFG_BYPASS));
        }

        long pa() {
            return Bounded.call("translate", () -> rig.pa(1, -1, 0x10000, Access.READ | Access.WRITE));
        }

        /** Points the leaf of 0x10000 at NEW without telling the unit. */
        void remap() {
            long leaf = rig.leafEntry(table.format(), table.root(), 0x10000);
            long e = rig.ram.read64(leaf);
            rig.ram.write64(leaf, (e & ~0x0000_ffff_ffff_f000L) | NEW);
        }
    }

    @Property
    void commandQueueStopsAtIllegalCommandsAndRecovers(@ForAll("variants") int variant,
            @ForAll("batches") List<List<Command>> batches) {
        List<String> outcomes = new ArrayList<>();
        Bounded.run("commands", () -> runCommands(SmmuScenario.VARIANTS.get(variant), batches, outcomes));
        for (String o : outcomes) {
            Statistics.label("command").collect(o);
        }
        Statistics.label("command").coverage(c -> {
            c.check("consumed").percentage(p -> p >= 20);
            c.check("CERROR_ILL").percentage(p -> p >= 20);
        });
    }

    private static void runCommands(Map<String, String> config, List<List<Command>> batches, List<String> outcomes) {
        SmmuRig r = new SmmuRig(config);
        SmmuReference.Features f = new SmmuReference.Features(config);
        Stream stream = new Stream(r, f);
        r.enable();
        assertEquals(DATA, stream.pa());
        stream.remap(); // the TLB now holds a stale entry; random commands may or may not remove it
        int size = 1 << r.cmdqLog2;
        int prod = (int) r.r32(SmmuRig.CMDQ_PROD);
        for (List<Command> batch : batches) {
            r.ram.fill(MSI_AREA, 0x400, (byte) 0);
            int start = prod;
            for (Command c : batch) {
                long slot = SmmuRig.CMDQ + 16L * (prod & (size - 1));
                r.ram.write64(slot, c.d0());
                r.ram.write64(slot + 8, c.d1());
                prod = (prod + 1) & (2 * size - 1);
            }
            int published = prod;
            Bounded.call("CMDQ_PROD write", () -> {
                r.w32(SmmuRig.CMDQ_PROD, published);
                return null;
            });
            Map<Long, Integer> msis = new HashMap<>();
            for (int i = 0; i < batch.size(); i++) {
                Command c = batch.get(i);
                int at = (start + i) & (2 * size - 1);
                long cons = r.r32(SmmuRig.CMDQ_CONS);
                long gerror = r.r32(SmmuRig.GERROR) ^ r.r32(SmmuRig.GERRORN);
                boolean stopped = (cons & (2 * size - 1)) == at && (gerror & GERROR_CMDQ_ERR) != 0;
                Boolean legal = legal(f, c);
                String where = String.format("%s, command %d of %s: CMDQ_CONS 0x%x, GERROR ^ GERRORN 0x%x", config, i, batch, cons,
                        gerror);
                if (legal != null && legal == stopped) {
                    fail(where + (legal ? ": a legal command stopped the queue" : ": an illegal command was consumed (§4.1.3)"));
                }
                if (!stopped) {
                    outcomes.add("consumed");
                    expectSync(c, msis);
                    continue;
                }
                outcomes.add("CERROR_ILL");
                assertEquals(CERROR_ILL, (cons >>> 24) & 0x7f, where + ": CMDQ_CONS.ERR");
                checkSyncs(r, msis, where);
                // Linux's recovery (arm_smmu_cmdq_skip_err): overwrite the command with CMD_SYNC and
                // acknowledge; consumption resumes at CMDQ_CONS without another CMDQ_PROD write (§7.1).
                long slot = SmmuRig.CMDQ + 16L * (at & (size - 1));
                r.ram.write64(slot, CMD_SYNC);
                r.ram.write64(slot + 8, 0);
                long ge = r.r32(SmmuRig.GERROR);
                Bounded.call("GERRORN write", () -> {
                    r.w32(SmmuRig.GERRORN, ge);
                    return null;
                });
                assertTrue((r.r32(SmmuRig.CMDQ_CONS) & (2 * size - 1)) != at, where + ": consumption resumed after GERRORN");
            }
            assertEquals(published, r.r32(SmmuRig.CMDQ_CONS) & (2 * size - 1), "every command of the batch consumed in the end");
            checkSyncs(r, msis, config + ", end of " + batch);
            assertEquals(0, r.r32(SmmuRig.GERROR) ^ r.r32(SmmuRig.GERRORN), "no other global error");
        }
        // The driver's invalidations still work: the stale entry goes.
        for (long[] c : new long[][] {{0x04, 31}, {0x30, 0}, {CMD_SYNC, 0}}) {
            long slot = SmmuRig.CMDQ + 16L * (prod & (size - 1));
            r.ram.write64(slot, c[0]);
            r.ram.write64(slot + 8, c[1]);
            prod = (prod + 1) & (2 * size - 1);
        }
        r.w32(SmmuRig.CMDQ_PROD, prod);
        assertEquals(prod, r.r32(SmmuRig.CMDQ_CONS) & (2 * size - 1), "CMD_CFGI_ALL, CMD_TLBI_NSNH_ALL, CMD_SYNC consumed");
        assertEquals(NEW, stream.pa(), "the invalidation took effect after the fuzzed commands");
    }

    /** Notes what a consumed CMD_SYNC with ComplSignal SIG_IRQ and an MSIAddress must write (§4.7.3). */
    private static void expectSync(Command c, Map<Long, Integer> msis) {
        if (c.opcode() != CMD_SYNC || ((c.d0() >>> 12) & 3) != 1) {
            return;
        }
        long address = c.d1() & 0x000f_ffff_ffff_fffcL & ~ABOVE_OAS; // MSIAddress[51:2], truncated to the OAS (§3.4.3)
        if (address != 0) {
            msis.put(address, (int) (c.d0() >>> 32)); // MSIData; a later write to the same address wins
        }
    }

    /** The MSIs of the CMD_SYNCs consumed so far were written. */
    private static void checkSyncs(SmmuRig r, Map<Long, Integer> msis, String where) {
        for (Map.Entry<Long, Integer> m : msis.entrySet()) {
            assertEquals((int) m.getValue(), r.ram.read32(m.getKey()), where + ": MSI at 0x" + Long.toHexString(m.getKey()));
        }
        msis.clear();
    }

    // ---- registers --------------------------------------------------------------------------

    /** The offsets the model defines (SMMU_IDR0 .. PRIQ_CONS, §6.2). */
    private static final int[] REGISTERS = {0x00, 0x04, 0x08, 0x0c, 0x10, 0x14, 0x18, 0x1c, 0x20, 0x24, 0x28, 0x2c, 0x40,
        0x44, 0x50, 0x54, 0x60, 0x64, 0x80, 0x88, 0x90, 0x98, 0x9c, 0xa0, 0x100a8, 0x100ac, 0xc0, 0x100c8, 0x100cc};

    /** The event types a transaction can end with (§7.3), and 0 for a silent abort. */
    private static final java.util.Set<Integer> ARCHITECTURAL = java.util.Set.of(0, SmmuReference.C_BAD_STREAMID,
            SmmuReference.F_STE_FETCH, SmmuReference.C_BAD_STE, SmmuReference.F_STREAM_DISABLED, SmmuReference.C_BAD_SUBSTREAMID,
            SmmuReference.F_CD_FETCH, SmmuReference.C_BAD_CD, SmmuReference.F_WALK_EABT, SmmuReference.F_TRANSLATION,
            SmmuReference.F_ADDR_SIZE, SmmuReference.F_ACCESS, SmmuReference.F_PERMISSION);

    /** One step: 0 write, 1 read, 2 translate, 3 a bad access. */
    record RegOp(int kind, int register, int size, long value, int sid, long address) {
    }

    @Provide
    Arbitrary<List<RegOp>> registerOps() {
        Arbitrary<Integer> kind = Arbitraries.frequency(Tuple.of(5, 0), Tuple.of(2, 1), Tuple.of(3, 2), Tuple.of(1, 3));
        Arbitrary<Long> value = Arbitraries.frequencyOf(Tuple.of(3, Arbitraries.longs()),
                Tuple.of(1, Arbitraries.integers().between(0, 31).map(b -> 1L << b)), Tuple.of(1, Arbitraries.just(0L)));
        return Combinators.combine(kind, Arbitraries.integers().between(0, 1 << 16), Arbitraries.of(4, 8), value,
                Arbitraries.integers().between(0, 7), Arbitraries.longs()).as(RegOp::new).list().ofMinSize(1).ofMaxSize(40);
    }

    private static int offset(RegOp op) {
        return op.register() % 10 == 0 ? (op.register() * 4) % SmmuHardware.SIZE : REGISTERS[op.register() % REGISTERS.length];
    }

    @Property
    void registerWritesNeverBreakTheUnit(@ForAll("variants") int variant, @ForAll("registerOps") List<RegOp> ops) {
        Bounded.run("registers", () -> runRegisters(SmmuScenario.VARIANTS.get(variant), ops));
    }

    private static void runRegisters(Map<String, String> config, List<RegOp> ops) {
        SmmuRig r = new SmmuRig(config);
        SmmuReference.Features f = new SmmuReference.Features(config);
        Stream stream = new Stream(r, f);
        r.enable();
        assertEquals(DATA, stream.pa());
        for (RegOp op : ops) {
            int off = offset(op);
            int size = off % 8 == 0 ? op.size() : 4;
            String what = String.format("%s: %s at 0x%x", config, op, off);
            switch (op.kind()) {
                case 0:
                    Bounded.call(what, () -> {
                        try {
                            r.hw.write(off, size == 4 ? op.value() & 0xffff_ffffL : op.value(), size);
                        } catch (IommuException e) {
                            throw new AssertionError(what, e);
                        }
                        return null;
                    });
                    break;
                case 1:
                    long v = Bounded.call(what, () -> {
                        try {
                            return r.hw.read(off, size);
                        } catch (IommuException e) {
                            throw new AssertionError(what, e);
                        }
                    });
                    assertTrue(size == 8 || (v >>> 32) == 0, what + ": a 4-byte read returned 0x" + Long.toHexString(v));
                    break;
                case 2: {
                    long address = (op.address() & 1) == 0 ? 0x10000 + (op.address() & 0xfff8) : op.address();
                    Translation t = Bounded.call(what, () -> r.translate(op.sid(), -1, address, Access.READ));
                    assertTrue(t.isSuccess() || ARCHITECTURAL.contains(t.faultCode()),
                            () -> what + ": fault code 0x" + Integer.toHexString(t.faultCode()));
                    break;
                }
                default: {
                    long[][] bad = {{off + 2, 4}, {SmmuHardware.SIZE + off, 4}, {-4, 4}, {(off & ~7) | 4, 8}, {off, 2}};
                    long[] b = bad[(int) Long.remainderUnsigned(op.value(), bad.length)];
                    IommuException e = null;
                    try {
                        r.hw.write(b[0], op.value(), (int) b[1]);
                    } catch (IommuException x) {
                        e = x;
                    }
                    assertNotNull(e, what + ": a bad access " + b[1] + " bytes at 0x" + Long.toHexString(b[0]) + " was accepted");
                    assertEquals(Errno.EINVAL, e.errno());
                    break;
                }
            }
        }
        // A driver's reset (Linux arm_smmu_device_reset): disable, acknowledge global errors,
        // program the structures and queues, enable, invalidate everything.
        r.cr0(0);
        r.w32(SmmuRig.GERRORN, r.r32(SmmuRig.GERROR));
        r.w32(SmmuRig.IRQ_CTRL, 0);
        r.enable();
        r.cmd(0x04, 31); // CMD_CFGI_ALL
        r.cmd(0x30, 0); // CMD_TLBI_NSNH_ALL
        r.sync();
        assertEquals(0, r.r32(SmmuRig.GERROR) ^ r.r32(SmmuRig.GERRORN), "no global error after the reset");
        assertEquals(DATA, stream.pa(), "translation works again");
        assertEquals(0x1234_5000L, r.pa(2, -1, 0x1234_5000L, Access.READ), "bypass stream");
        Translation bad = r.translate(1 << 9, -1, 0, Access.READ);
        assertEquals(SmmuReference.C_BAD_STREAMID, bad.faultCode(), "StreamID beyond the table");
        assertEquals(List.of(SmmuReference.C_BAD_STREAMID), r.events().stream().map(e -> e.type).toList(), "recorded");
    }
}
