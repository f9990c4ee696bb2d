package org.iommulab.idxd.internal.hw;

import static org.iommulab.idxd.internal.hw.GuestSpace.gva;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import java.lang.reflect.Field;
import java.lang.reflect.Modifier;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;

import org.iommulab.api.device.Requester;
import org.iommulab.api.fault.FaultListener;
import org.iommulab.api.fault.IommuFault;
import org.iommulab.api.fault.PageRequest;
import org.iommulab.api.fault.PageResponse;
import org.iommulab.api.idxd.Dsa;
import org.iommulab.api.idxd.Dsa.CompletionRecord;
import org.iommulab.api.idxd.SubmitStatus;
import org.iommulab.api.idxd.WorkQueueConfig;
import org.iommulab.api.pasid.Pasids;
import org.iommulab.api.spi.IommuInstance;
import org.iommulab.vfio.internal.VfioStack;

import net.jqwik.api.Arbitraries;
import net.jqwik.api.Arbitrary;
import net.jqwik.api.Builders;
import net.jqwik.api.Combinators;
import net.jqwik.api.EdgeCasesMode;
import net.jqwik.api.ForAll;
import net.jqwik.api.Property;
import net.jqwik.api.Provide;
import net.jqwik.api.Tuple;
import net.jqwik.api.constraints.IntRange;
import net.jqwik.api.lifecycle.AfterContainer;
import net.jqwik.api.lifecycle.BeforeContainer;
import net.jqwik.api.statistics.Statistics;
import net.jqwik.api.statistics.StatisticsReport;

/**
 * Random and mutated 64-byte DSA descriptors against the device model, as PASID-tagged DMA through
 * VT-d nested translation (the {@link GuestSpace} of {@link DsaOperationsTest}): every opcode byte
 * (unsupported ones too), random flags, PASID and privilege fields, reserved bits, sizes from 0 to
 * 2^32 - 1, addresses that are mapped, read-only, unmapped or wild, batches over random descriptor
 * lists, completion records aligned, misaligned, read-only or unmapped, on a dedicated queue
 * (MOVDIR64B) and a shared one (ENQCMD/ENQCMDS with the owner's, an unbound or an impossible PASID).
 * (ENQCMD never carries PASID 0 here: that is the requests-without-PASID domain, the VM's whole RAM
 * at its GPAs, where a wild descriptor may legitimately overwrite the guest's own page tables.)
 *
 * <p>Each descriptor must be answered architecturally: the portal returns within a bound, the
 * device goes idle within a bound, the descriptor ends with a completion status the DSA spec
 * defines (a record, or an SWERR entry when no record can be written), every byte the device
 * changed lies in a range the descriptor (or a batch member) names as its destination or completion
 * record, read-only pages and the guard pages around the arena never change, and a valid MEMMOVE
 * afterwards still copies byte-exact. A second property stalls a shared queue's only engine and
 * floods the queue from several threads: exactly the queue size is accepted, the rest is told to
 * retry, and nothing accepted is lost.
 *
 * <p><b>Reproducing.</b> jqwik prints the {@code seed} of a failing property; the next run of this
 * class tries the failing sample first (the jqwik database in {@code target/jqwik-database}), and
 * {@code @Property(seed = "<seed>")} pins it for good. The short pass runs
 * {@code jqwik.tries.default} (200) tries per property; the long one:
 * {@code mvn -B -o -q -pl mdev-idxd test -Dtest=DsaDescriptorPropertyTest -Djqwik.tries.default=1000000}.
 */
class DsaDescriptorPropertyTest {
    static final long MB = 1 << 20;
    static final int PAGE = 4096;
    /** A guard page below the arena: mapped writable, never named by a descriptor. */
    static final long GUARD_LO = MB - PAGE;
    /** Where generated addresses land: mapped writable. */
    static final long ARENA = MB;
    static final int ARENA_SIZE = 64 * 1024;
    /** Mapped read-only in the guest's table; batch descriptor lists live here. */
    static final long RO = ARENA + ARENA_SIZE;
    static final int RO_SIZE = 32 * 1024;
    /** Mapped by VFIO, not by the guest's table: every access faults. */
    static final long HOLE = RO + RO_SIZE;
    static final int HOLE_SIZE = 32 * 1024;
    /** A guard page above the hole: mapped writable, never named by a descriptor. */
    static final long GUARD_HI = HOLE + HOLE_SIZE;
    /** Everything a descriptor could reach: checked byte by byte after each one. */
    static final long WATCHED = GUARD_LO;
    static final int WATCHED_SIZE = (int) (GUARD_HI + PAGE - GUARD_LO);
    /** The follow-up MEMMOVE's source, destination and completion record. */
    static final long PROBE = 2 * MB;
    static final int PROBE_SIZE = 1000;

    static final int DWQ = 0;
    static final int SWQ = 1;
    /** The shared queue of the overflow property: its own group with one engine. */
    static final int STALL_WQ = 2;
    static final int STALL_WQ_SIZE = 3;

    static final long SUBMIT_BOUND_NANOS = TimeUnit.SECONDS.toNanos(1);
    static final long IDLE_BOUND_MILLIS = 10_000;

    /** Every completion status the {@link Dsa} API class defines (COMP_NONE is no status). */
    static final Set<Integer> STATUSES = statuses();
    /** A list, not a set: generation must not depend on a set's per-JVM iteration order. */
    static final List<Integer> VALID_OPCODES = List.of(Dsa.OP_NOOP, Dsa.OP_BATCH, Dsa.OP_DRAIN, Dsa.OP_MEMMOVE,
            Dsa.OP_MEMFILL, Dsa.OP_COMPARE, Dsa.OP_COMPVAL, Dsa.OP_CR_DELTA, Dsa.OP_AP_DELTA, Dsa.OP_DUALCAST,
            Dsa.OP_CRCGEN, Dsa.OP_COPY_CRC);

    static VfioStack stack;
    static IommuInstance vtd;
    static DsaDevice dev;
    static DsaDriver driver;
    static GuestSpace g;

    @BeforeContainer
    static void start() throws Exception {
        stack = new VfioStack();
        vtd = stack.instance("vtd", "vtd0");
        Requester r = stack.device("dsa0", vtd, 0x10, 20);
        dev = new DsaDevice("dsa0", vtd, 0x10);
        driver = new DsaDriver(dev);
        g = new GuestSpace(stack, r, "vm1", 8 * MB, 2 * MB)
                .map(GUARD_LO, PAGE + ARENA_SIZE, true)
                .map(RO, RO_SIZE, false)
                .map(GUARD_HI, PAGE, true)
                .map(PROBE, 4 * PAGE, true);
        driver.configure(DWQ, WorkQueueConfig.dedicated(16, g.pasid));
        driver.configure(SWQ, WorkQueueConfig.shared(4));
        driver.configure(STALL_WQ, WorkQueueConfig.shared(STALL_WQ_SIZE));
        // Group 0 keeps engines 0-2 for queues 0 and 1; group 1 has queue 2 and engine 3 alone.
        dev.mmioWrite(DsaRegisters.GRPCFG_BASE, 1L << DWQ | 1L << SWQ, 8);
        dev.mmioWrite(DsaRegisters.GRPCFG_BASE + 32, 0b0111, 8);
        dev.mmioWrite(DsaRegisters.GRPCFG_BASE + DsaRegisters.GRPCFG_SIZE, 1L << STALL_WQ, 8);
        dev.mmioWrite(DsaRegisters.GRPCFG_BASE + DsaRegisters.GRPCFG_SIZE + 32, 0b1000, 8);
        driver.enableDevice();
        driver.enableWq(DWQ);
        driver.enableWq(SWQ);
        driver.enableWq(STALL_WQ);
    }

    @AfterContainer
    static void stop() {
        if (dev != null) {
            dev.close();
        }
    }

    private static Set<Integer> statuses() {
        Set<Integer> s = new TreeSet<>();
        for (Field f : Dsa.class.getFields()) {
            if (f.getName().startsWith("COMP_") && Modifier.isStatic(f.getModifiers()) && f.getType() == int.class
                    && !Set.of("COMP_NONE", "COMP_STATUS_WRITE", "COMP_SIZE").contains(f.getName())) {
                try {
                    s.add(f.getInt(null));
                } catch (IllegalAccessException e) {
                    throw new AssertionError(e);
                }
            }
        }
        return s;
    }

    // ---- what is generated ------------------------------------------------------------------------

    /** The PASID an ENQCMD carries. */
    enum PasidChoice { OWN, UNBOUND, IMPOSSIBLE }

    /** One descriptor's fields (before mutation); mutable for jqwik's builder. */
    static final class Desc {
        int opcode;
        int flags;
        int pasidField;
        boolean priv;
        int reserved0;
        long completion;
        long addr1;
        long addr2;
        long size;
        int intHandle;
        int reserved1;
        long op40;
        long op48;
        int op56;
        boolean align8;
        boolean sameLowBits;
        /** Leave the fields the opcode does not use zero, as software would. */
        boolean tidy;
        List<int[]> mutations = List.of();

        byte[] encode() {
            byte[] b = new byte[Dsa.DESC_SIZE];
            Descriptor.put32(b, 0, (pasidField & 0xfffff) | (reserved0 & 0x7ff) << 20 | (priv ? 1 << 31 : 0));
            Descriptor.put32(b, 4, (flags & 0xffffff) | opcode << 24);
            Descriptor.put64(b, 8, completion);
            long a1 = align8 ? addr1 & ~7L : addr1;
            long a2 = align8 ? addr2 & ~7L : addr2;
            Descriptor.put64(b, 16, a1);
            Descriptor.put64(b, 24, a2);
            Descriptor.put32(b, 32, (int) (align8 ? size & ~7L : size));
            Descriptor.put32(b, 36, (intHandle & 0xffff) | reserved1 << 16);
            if (tidy && (opcode == Dsa.OP_NOOP || opcode == Dsa.OP_DRAIN)) {
                java.util.Arrays.fill(b, 16, 36, (byte) 0);
            }
            switch (opcode) {
                case Dsa.OP_DUALCAST -> Descriptor.put64(b, 40, sameLowBits ? (op40 & ~0xfffL) | (a2 & 0xfff) : op40);
                case Dsa.OP_CR_DELTA -> {
                    Descriptor.put64(b, 40, align8 ? op40 & ~7L : op40);
                    Descriptor.put32(b, 48, (int) op48);
                    b[56] = (byte) op56;
                }
                case Dsa.OP_AP_DELTA, Dsa.OP_CRCGEN, Dsa.OP_COPY_CRC -> Descriptor.put32(b, 40, (int) op48);
                case Dsa.OP_COMPARE, Dsa.OP_COMPVAL -> b[40] = (byte) op56;
                default -> {
                }
            }
            for (int[] m : mutations) {
                b[m[0]] = (byte) m[1];
            }
            return b;
        }
    }

    /** A submission: the descriptor, a batch's members, the queue and the ENQCMD arguments. */
    static final class Submission {
        Desc desc;
        List<Desc> members = List.of();
        /** Where a batch's list goes: an index of 64-byte slots in the read-only region, or -1 for {@code desc.addr1}. */
        int listSlot;
        boolean shared;
        PasidChoice pasid = PasidChoice.OWN;
        boolean supervisor;
        long patternSeed;

        @Override
        public String toString() {
            StringBuilder s = new StringBuilder(shared ? "ENQCMD" + (supervisor ? "S" : "") + "(" + pasid + ") " : "MOVDIR64B ");
            s.append(hex(encodedTop()));
            for (Desc m : members) {
                s.append("\n  member ").append(hex(m.encode()));
            }
            return s.append(" listSlot=").append(listSlot).toString();
        }

        byte[] encodedTop() {
            byte[] b = desc.encode();
            if (desc.opcode == Dsa.OP_BATCH && listSlot >= 0) {
                // Now and then 8 bytes off a 64-byte boundary: DESCLIST_ALIGN.
                long misaligned = desc.align8 ? 0 : desc.addr1 & 8;
                Descriptor.put64(b, 16, gva(RO) + 64L * listSlot + misaligned);
            }
            return b;
        }
    }

    static String hex(byte[] b) {
        StringBuilder s = new StringBuilder();
        for (int i = 0; i < b.length; i += 8) {
            s.append(String.format("%016x ", Descriptor.i64(b, i)));
        }
        return s.toString().trim();
    }

    static Arbitrary<Long> inside(long gpa, int bytes) {
        return Arbitraries.longs().between(0, bytes - 1).map(o -> gva(gpa) + o);
    }

    static Arbitrary<Long> addresses() {
        return Arbitraries.frequencyOf(
                Tuple.of(8, inside(ARENA, ARENA_SIZE)),
                Tuple.of(2, inside(RO, RO_SIZE)),
                Tuple.of(1, inside(HOLE, HOLE_SIZE)),
                Tuple.of(1, Arbitraries.longs()),
                Tuple.of(1, Arbitraries.of(0L, -1L, gva(0) - 1, gva(ARENA + ARENA_SIZE - 1), 1L << 63, gva(1L << 47))));
    }

    static Arbitrary<Long> completions() {
        return Arbitraries.frequencyOf(
                Tuple.of(8, Arbitraries.integers().between(0, ARENA_SIZE / 32 - 1).map(i -> gva(ARENA) + 32L * i)),
                Tuple.of(2, inside(ARENA, ARENA_SIZE - 32)),
                Tuple.of(1, Arbitraries.integers().between(0, RO_SIZE / 32 - 1).map(i -> gva(RO) + 32L * i)),
                Tuple.of(1, Arbitraries.integers().between(0, HOLE_SIZE / 32 - 1).map(i -> gva(HOLE) + 32L * i)),
                Tuple.of(1, Arbitraries.longs()));
    }

    static Arbitrary<Long> sizes() {
        return Arbitraries.frequencyOf(
                Tuple.of(6, Arbitraries.longs().between(1, 4096)),
                Tuple.of(2, Arbitraries.longs().between(4097, ARENA_SIZE + 2L * PAGE)),
                Tuple.of(2, Arbitraries.of(0L, 1L, 8L, 1L << 31, (1L << 31) + 1, (1L << 31) - 1, 0xffff_ffffL)),
                Tuple.of(1, Arbitraries.longs().between(0, 0xffff_ffffL)));
    }

    static Arbitrary<Integer> flags() {
        int cr = Dsa.FLAG_CRAV | Dsa.FLAG_RCR;
        return Arbitraries.frequencyOf(
                Tuple.of(8, Arbitraries.of(cr, cr | Dsa.FLAG_RCI, cr | Dsa.FLAG_CR, Dsa.FLAG_CRAV, 0, cr | Dsa.FLAG_CC | Dsa.FLAG_STORD)),
                Tuple.of(1, Arbitraries.of(cr | Dsa.FLAG_BOF, Dsa.FLAG_RCR, cr | Dsa.FLAG_FENCE)),
                Tuple.of(3, Arbitraries.integers().between(0, 0xffff)
                        .map(f -> f & Dsa.FLAGS_SUPPORTED & ~Dsa.FLAG_FENCE & ~Dsa.FLAG_BOF)
                        .map(f -> (f & Dsa.FLAG_RCR) != 0 ? f | Dsa.FLAG_CRAV : f)),
                Tuple.of(1, Arbitraries.integers().between(0, 0xffff).map(f -> f & Dsa.FLAGS_SUPPORTED)),
                Tuple.of(1, Arbitraries.integers().between(0, 0xff_ffff)));
    }

    static Arbitrary<Integer> rarelyNonZero(int max) {
        return Arbitraries.frequencyOf(Tuple.of(25, Arbitraries.just(0)), Tuple.of(1, Arbitraries.integers().between(1, max)));
    }

    static Arbitrary<Desc> descriptors() {
        Arbitrary<Integer> opcode = Arbitraries.frequencyOf(
                Tuple.of(8, Arbitraries.of(VALID_OPCODES.stream().filter(o -> o != Dsa.OP_BATCH).toList())),
                Tuple.of(2, Arbitraries.integers().between(0, 255)));
        Arbitrary<List<int[]>> mutations = Arbitraries.frequencyOf(
                Tuple.of(8, Arbitraries.just(List.of())),
                Tuple.of(1, Combinators.combine(Arbitraries.integers().between(0, 63), Arbitraries.integers().between(0, 255))
                        .as((o, v) -> new int[] {o, v}).list().ofMinSize(1).ofMaxSize(3)));
        return Builders.withBuilder(Desc::new)
                .use(opcode).inSetter((d, v) -> d.opcode = v)
                .use(flags()).inSetter((d, v) -> d.flags = v)
                .use(rarelyNonZero(0xfffff)).inSetter((d, v) -> d.pasidField = v)
                .use(Arbitraries.integers().between(0, 15).map(i -> i == 0)).inSetter((d, v) -> d.priv = v)
                .use(rarelyNonZero(0x7ff)).inSetter((d, v) -> d.reserved0 = v)
                .use(completions()).inSetter((d, v) -> d.completion = v)
                .use(addresses()).inSetter((d, v) -> d.addr1 = v)
                .use(addresses()).inSetter((d, v) -> d.addr2 = v)
                .use(sizes()).inSetter((d, v) -> d.size = v)
                .use(rarelyNonZero(0xffff)).inSetter((d, v) -> d.intHandle = v)
                .use(rarelyNonZero(0xffff)).inSetter((d, v) -> d.reserved1 = v)
                .use(addresses()).inSetter((d, v) -> d.op40 = v)
                .use(Arbitraries.frequencyOf(Tuple.of(3, Arbitraries.longs().between(1, 100).map(n -> n * 10)),
                        Tuple.of(1, Arbitraries.longs().between(0, 0xffff_ffffL)))).inSetter((d, v) -> d.op48 = v)
                .use(Arbitraries.integers().between(0, 255)).inSetter((d, v) -> d.op56 = v)
                .use(Arbitraries.of(true, false)).inSetter((d, v) -> d.align8 = v)
                .use(Arbitraries.of(true, false)).inSetter((d, v) -> d.sameLowBits = v)
                .use(Arbitraries.integers().between(0, 3).map(i -> i > 0)).inSetter((d, v) -> d.tidy = v)
                .use(mutations).inSetter((d, v) -> d.mutations = v)
                .build();
    }

    @Provide
    Arbitrary<Submission> submissions() {
        Arbitrary<Desc> batch = descriptors().map(d -> {
            d.opcode = Dsa.OP_BATCH;
            return d;
        });
        Arbitrary<Desc> top = Arbitraries.frequencyOf(Tuple.of(4, descriptors()), Tuple.of(1, batch));
        Arbitrary<Long> count = Arbitraries.frequencyOf(Tuple.of(1, Arbitraries.of(0L, 1L, 1024L, 1025L, 0xffff_ffffL)),
                Tuple.of(1, Arbitraries.longs().between(2, 1100)));
        return Builders.withBuilder(Submission::new)
                .use(top).inSetter((s, v) -> s.desc = v)
                .use(descriptors().list().ofMinSize(2).ofMaxSize(6)).inSetter((s, v) -> s.members = v)
                // Mostly the list is where it is written; else the batch names its own (odd) address.
                .use(Arbitraries.frequencyOf(Tuple.of(6, Arbitraries.integers().between(0, 32)), Tuple.of(1, Arbitraries.just(-1))))
                .inSetter((s, v) -> s.listSlot = v)
                .use(Arbitraries.frequencyOf(Tuple.of(5, Arbitraries.just(-1L)), Tuple.of(1, count)))
                .inSetter((s, v) -> {
                    if (v >= 0 && s.desc.opcode == Dsa.OP_BATCH) {
                        s.desc.size = v;
                    } else if (s.desc.opcode == Dsa.OP_BATCH) {
                        s.desc.size = s.members.size();
                    }
                })
                .use(Arbitraries.of(true, false)).inSetter((s, v) -> s.shared = v)
                .use(Arbitraries.frequencyOf(Tuple.of(8, Arbitraries.just(PasidChoice.OWN)),
                        Tuple.of(1, Arbitraries.of(PasidChoice.UNBOUND, PasidChoice.IMPOSSIBLE))))
                .inSetter((s, v) -> s.pasid = v)
                .use(Arbitraries.integers().between(0, 7).map(i -> i == 0)).inSetter((s, v) -> s.supervisor = v)
                .use(Arbitraries.longs()).inSetter((s, v) -> s.patternSeed = v)
                .build();
    }

    // ---- property 1: every descriptor gets an architectural answer --------------------------------

    @StatisticsReport(onFailureOnly = true) // the coverage checks below fail a property that gets nowhere
    @Property(edgeCases = EdgeCasesMode.NONE) // the generators weigh their own edge cases
    void everyDescriptorEndsWithASpecStatusAndWritesOnlyWhereItMay(@ForAll("submissions") Submission s) throws Exception {
        byte[] top = s.encodedTop();
        Descriptor d = Descriptor.decode(top);
        prepare(s, d);
        byte[] before = g.read(WATCHED, WATCHED_SIZE);
        Map<String, Long> statsBefore = dev.statistics();

        long t0 = System.nanoTime();
        SubmitStatus answer = s.shared ? dev.enqcmd(SWQ, top, enqPasid(s.pasid), s.supervisor) : dev.movdir64b(DWQ, top);
        long took = System.nanoTime() - t0;
        assertTrue(took < SUBMIT_BOUND_NANOS, "the portal answered after " + took / 1000 + " us");
        assertEquals(s.shared && s.pasid == PasidChoice.IMPOSSIBLE ? SubmitStatus.REJECTED : SubmitStatus.ACCEPTED, answer,
                "an empty, enabled queue takes any 64 bytes; only a PASID beyond 20 bits is refused");
        assertTrue(dev.awaitIdle(IDLE_BOUND_MILLIS), "the device went idle within " + IDLE_BOUND_MILLIS + " ms");

        byte[] after = g.read(WATCHED, WATCHED_SIZE);
        Map<String, Long> completed = completedSince(statsBefore);
        if (answer != SubmitStatus.ACCEPTED) {
            assertArrayEquals(before, after, "a refused submission writes nothing");
            assertTrue(completed.isEmpty(), "a refused submission completes nothing: " + completed);
            assertEquals(0, dev.mmioRead(DsaRegisters.SWERR, 8) & 1, "and reports nothing");
        } else {
            List<long[]> allowed = checkWrites(d, before, after);
            checkAnswer(s, d, after, completed, allowed);
        }
        deviceStillCopies(s.patternSeed);
        // The samples must reach every kind of answer, and the data operations must run.
        Statistics.label("answer").coverage(c -> {
            c.check("record").count(n -> n > 0);
            c.check("swerr").count(n -> n > 0);
        });
        Statistics.label("status").collect(completed.keySet().stream().findFirst().orElse("refused"));
        Statistics.label("status").coverage(c -> {
            c.check("completed.SUCCESS").count(n -> n > 0);
            c.check("completed.PAGE_FAULT_NOBOF").count(n -> n > 0);
        });
    }

    private static int enqPasid(PasidChoice c) {
        return switch (c) {
            case OWN -> g.pasid;
            case UNBOUND -> g.pasid + 77; // allocated by nobody, bound nowhere
            case IMPOSSIBLE -> Pasids.MAX_PASID + 1;
        };
    }

    /** Fills the arena with the sample's pattern, lays out a batch's list, zeroes the top record, clears SWERR. */
    private static void prepare(Submission s, Descriptor d) throws Exception {
        byte[] arena = new byte[ARENA_SIZE];
        new Random(s.patternSeed).nextBytes(arena);
        byte[] guard = new byte[PAGE];
        java.util.Arrays.fill(guard, (byte) 0xa5);
        g.write(GUARD_LO, guard);
        g.write(ARENA, arena);
        g.write(GUARD_HI, guard);
        byte[] ro = new byte[RO_SIZE];
        if (d.opcode == Dsa.OP_BATCH && s.listSlot >= 0) {
            long at = d.addr1 - gva(RO);
            for (Desc m : s.members) {
                if (at < 0 || at + Dsa.DESC_SIZE > RO_SIZE) { // a mutated opcode byte made a batch of another descriptor
                    break;
                }
                System.arraycopy(m.encode(), 0, ro, (int) at, Dsa.DESC_SIZE);
                at += Dsa.DESC_SIZE;
            }
        }
        g.write(RO, ro);
        long comp = d.completionAddr - gva(ARENA);
        if (comp >= 0 && comp + Dsa.COMP_SIZE <= ARENA_SIZE) {
            g.write(ARENA + comp, new byte[Dsa.COMP_SIZE]);
        }
        dev.mmioWrite(DsaRegisters.SWERR, 3, 8);
    }

    /**
     * Every byte that changed lies in a range some executed descriptor may write; read-only pages
     * never change.
     *
     * @return the ranges the descriptor and its members may write, the top record's first
     */
    private static List<long[]> checkWrites(Descriptor top, byte[] before, byte[] after) {
        List<long[]> allowed = new ArrayList<>();
        allowedWrites(top, allowed);
        for (Descriptor m : members(top, before)) {
            allowedWrites(m, allowed);
        }
        for (int i = 0; i < WATCHED_SIZE; i++) {
            if (before[i] == after[i]) {
                continue;
            }
            long gpa = WATCHED + i;
            String where = String.format("GPA 0x%x (%s) changed 0x%02x -> 0x%02x", gpa, region(gpa), before[i], after[i]);
            if (gpa >= RO && gpa < GUARD_HI) {
                fail(where + ": the device wrote through a read-only or unmapped page");
            }
            long at = gva(gpa);
            if (allowed.stream().noneMatch(r -> Long.compareUnsigned(at - r[0], r[1]) < 0)) {
                fail(where + ", which no destination of the descriptor covers");
            }
        }
        return allowed;
    }

    private static String region(long gpa) {
        return gpa < ARENA ? "guard below" : gpa < RO ? "arena" : gpa < HOLE ? "read-only" : gpa < GUARD_HI ? "hole" : "guard above";
    }

    /** The members a batch may have run: those inside the read-only region the list starts in (the rest faults). */
    private static List<Descriptor> members(Descriptor top, byte[] watched) {
        List<Descriptor> list = new ArrayList<>();
        if (top.opcode != Dsa.OP_BATCH) {
            return list;
        }
        long first = top.addr1 - gva(WATCHED);
        long end = Math.min(WATCHED_SIZE, first + 64 * Math.min(top.sizeBytes(), 2048));
        for (long at = first; at >= 0 && at + 64 <= end; at += 64) {
            byte[] raw = new byte[64];
            System.arraycopy(watched, (int) at, raw, 0, 64);
            list.add(Descriptor.decode(raw));
        }
        return list;
    }

    /** The ranges {@code [start, start + length)} (GVA) a descriptor may write: its destinations and its record. */
    private static void allowedWrites(Descriptor d, List<long[]> into) {
        into.add(new long[] {d.completionAddr, Dsa.COMP_SIZE});
        long size = d.sizeBytes();
        switch (d.opcode) {
            case Dsa.OP_MEMMOVE, Dsa.OP_MEMFILL, Dsa.OP_COPY_CRC, Dsa.OP_AP_DELTA -> into.add(new long[] {d.addr2, size});
            case Dsa.OP_DUALCAST -> {
                into.add(new long[] {d.addr2, size});
                into.add(new long[] {d.op64(40), size});
            }
            case Dsa.OP_CR_DELTA -> into.add(new long[] {d.op64(40), d.op32(48) & 0xffff_ffffL});
            default -> {
            }
        }
    }

    /**
     * The descriptor's answer: a record with a spec status where one was asked for and can be
     * written, else an SWERR entry with a spec error for a failure, else it succeeded.
     */
    private static void checkAnswer(Submission s, Descriptor d, byte[] after, Map<String, Long> completed,
            List<long[]> allowed) throws Exception {
        for (String key : completed.keySet()) {
            String name = key.substring("completed.".length());
            assertTrue(STATUSES.stream().anyMatch(st -> Dsa.statusName(st).equals(name)), "status " + name + " is not in the DSA spec");
        }
        long executed = completed.values().stream().mapToLong(Long::longValue).sum();
        assertTrue(executed >= 1, "the descriptor completed: " + completed);

        boolean crav = (d.flags & Dsa.FLAG_CRAV) != 0;
        boolean rcr = (d.flags & Dsa.FLAG_RCR) != 0;
        long comp = d.completionAddr - gva(ARENA);
        boolean recordable = crav && (d.completionAddr & 31) == 0 && comp >= 0 && comp + 32 <= ARENA_SIZE
                && !(s.shared && s.pasid != PasidChoice.OWN);
        // A destination or a member's record over the top record's place leaves bytes that are no record.
        boolean ambiguous = allowed.stream().skip(1).anyMatch(r -> overlaps(r, d.completionAddr, Dsa.COMP_SIZE));
        int status = recordable ? after[(int) (ARENA - WATCHED + comp)] & 0xff : 0;
        long swerr = dev.mmioRead(DsaRegisters.SWERR, 8);
        if (ambiguous) {
            assertTrue((swerr & 1) == 0 || STATUSES.contains((int) (swerr >>> 8) & 0xff), "SWERR error is a spec status");
            return;
        }
        Statistics.label("answer").collect(status != 0 ? "record" : (swerr & 1) != 0 ? "swerr" : "none");
        if (status != 0) {
            assertTrue(STATUSES.contains(status & 0x7f), String.format("record status 0x%02x is not in the DSA spec", status));
            boolean success = (status & 0x7f) == Dsa.COMP_SUCCESS || (status & 0x7f) == Dsa.COMP_SUCCESS_PRED;
            assertTrue(!success || rcr, "a success is recorded only when RCR asks for it");
            assertTrue((status & Dsa.COMP_STATUS_WRITE) == 0 || isPageFault(status & 0x7f),
                    String.format("status 0x%02x: the write bit belongs to page faults", status));
            return;
        }
        assertTrue(!(recordable && rcr), "RCR with a valid, writable, aligned address: the record must be written");
        if ((swerr & 1) != 0) {
            int error = (int) (swerr >>> 8) & 0xff;
            assertTrue(STATUSES.contains(error), String.format("SWERR error 0x%02x is not in the DSA spec", error));
            return;
        }
        // Neither record nor SWERR: the descriptor (and so every member) succeeded.
        for (Map.Entry<String, Long> e : completed.entrySet()) {
            assertTrue(e.getKey().endsWith(".SUCCESS") || e.getKey().endsWith(".SUCCESS_PRED"),
                    "a failure (" + e.getKey() + ") left neither a completion record nor SWERR");
        }
    }

    private static boolean overlaps(long[] range, long start, long length) {
        return range[1] > 0 && (Long.compareUnsigned(start - range[0], range[1]) < 0
                || Long.compareUnsigned(range[0] - start, length) < 0);
    }

    private static boolean isPageFault(int status) {
        return status == Dsa.COMP_PAGE_FAULT_NOBOF || status == Dsa.COMP_PAGE_FAULT_IR
                || status == Dsa.COMP_BATCH_PAGE_FAULT || status == Dsa.COMP_TRANSLATION_FAIL;
    }

    private static Map<String, Long> completedSince(Map<String, Long> before) {
        Map<String, Long> delta = new java.util.TreeMap<>();
        dev.statistics().forEach((k, v) -> {
            long n = v - before.getOrDefault(k, 0L);
            if (k.startsWith("completed.") && n != 0) {
                delta.put(k, n);
            }
        });
        return delta;
    }

    /** A valid MEMMOVE on the dedicated queue still copies byte-exact. */
    private static void deviceStillCopies(long seed) throws Exception {
        byte[] data = new byte[PROBE_SIZE];
        new Random(~seed).nextBytes(data);
        g.write(PROBE, data);
        g.write(PROBE + 2 * PAGE, new byte[Dsa.COMP_SIZE]);
        assertEquals(SubmitStatus.ACCEPTED, dev.movdir64b(DWQ, Dsa.descriptor(Dsa.OP_MEMMOVE).addr1(gva(PROBE))
                .addr2(gva(PROBE + PAGE + 8)).size(PROBE_SIZE).completion(gva(PROBE + 2 * PAGE)).build()));
        assertTrue(dev.awaitIdle(IDLE_BOUND_MILLIS));
        CompletionRecord c = CompletionRecord.decode(g.read(PROBE + 2 * PAGE, Dsa.COMP_SIZE));
        assertEquals(Dsa.COMP_SUCCESS, c.status(), "the follow-up MEMMOVE: " + c);
        assertArrayEquals(data, g.read(PROBE + PAGE + 8, PROBE_SIZE), "the follow-up MEMMOVE copied byte-exact");
    }

    // ---- property 2: a stalled shared queue overflows into RETRY and loses nothing ----------------

    /**
     * A block-on-fault MEMMOVE into the hole stalls the stall queue's only engine on its page
     * request; then {@code threads} submitters flood the queue with {@code perThread} NOOPs each, every
     * one with its own completion record. Exactly the queue size is accepted (WQCFG occupancy says
     * so), every other ENQCMD answers RETRY, and once the page request is answered every accepted
     * descriptor completes and no retried one does.
     */
    @Property
    void aFloodedSharedQueueAcceptsItsSizeAndAnswersRetry(@ForAll @IntRange(min = 1, max = 4) int threads,
            @ForAll @IntRange(min = 1, max = 12) int perThread) throws Exception {
        BlockingQueue<PageRequest> requests = new LinkedBlockingQueue<>();
        FaultListener listener = new FaultListener() {
            @Override
            public void fault(IommuFault fault) {
            }

            @Override
            public void pageRequest(PageRequest request) {
                requests.add(request);
            }
        };
        vtd.driver().addFaultListener(listener);
        try {
            g.write(ARENA, new byte[ARENA_SIZE]);
            long retriesBefore = dev.statistics().getOrDefault("retries", 0L);
            byte[] blocker = Dsa.descriptor(Dsa.OP_MEMFILL).flags(Dsa.FLAG_BOF).addr1(0x5a).addr2(gva(HOLE)).size(64)
                    .completion(gva(ARENA)).build();
            assertEquals(SubmitStatus.ACCEPTED, dev.enqcmd(STALL_WQ, blocker, g.pasid, false));
            PageRequest stalled = requests.poll(IDLE_BOUND_MILLIS, TimeUnit.MILLISECONDS);
            assertTrue(stalled != null, "the blocker's fault became a page request");

            int total = threads * perThread;
            SubmitStatus[] answers = new SubmitStatus[total];
            CountDownLatch go = new CountDownLatch(1);
            AtomicReference<Throwable> failure = new AtomicReference<>();
            List<Thread> submitters = new ArrayList<>();
            for (int t = 0; t < threads; t++) {
                int first = t * perThread;
                Thread th = new Thread(() -> {
                    try {
                        go.await();
                        for (int i = first; i < first + perThread; i++) {
                            byte[] noop = Dsa.descriptor(Dsa.OP_NOOP).completion(gva(ARENA) + 32L * (1 + i)).build();
                            answers[i] = dev.enqcmd(STALL_WQ, noop, g.pasid, false);
                        }
                    } catch (Throwable e) {
                        failure.compareAndSet(null, e);
                    }
                });
                submitters.add(th);
                th.start();
            }
            go.countDown();
            for (Thread th : submitters) {
                th.join(IDLE_BOUND_MILLIS);
            }
            assertEquals(null, failure.get());
            int accepted = 0;
            for (SubmitStatus a : answers) {
                assertTrue(a == SubmitStatus.ACCEPTED || a == SubmitStatus.RETRY, "answer " + a);
                accepted += a == SubmitStatus.ACCEPTED ? 1 : 0;
            }
            assertEquals(Math.min(total, STALL_WQ_SIZE), accepted, "a stalled queue takes exactly its size");
            assertEquals(accepted, dev.wqConfig(STALL_WQ)[6] & 0xffff, "WQCFG occupancy");
            assertEquals(total - accepted, dev.statistics().getOrDefault("retries", 0L) - retriesBefore, "retries counted");

            vtd.driver().pageResponse(stalled.requesterId(), stalled.pasid(), stalled.groupIndex(), PageResponse.INVALID);
            assertTrue(dev.awaitIdle(IDLE_BOUND_MILLIS));
            assertEquals(Dsa.COMP_PAGE_FAULT_IR | Dsa.COMP_STATUS_WRITE, g.read(ARENA, 1)[0] & 0xff, "the blocker's answer");
            for (int i = 0; i < total; i++) {
                int status = g.read(ARENA + 32L * (1 + i), 1)[0] & 0xff;
                assertEquals(answers[i] == SubmitStatus.ACCEPTED ? Dsa.COMP_SUCCESS : 0, status,
                        "descriptor " + i + " (" + answers[i] + ")");
            }
            assertEquals(0, dev.wqConfig(STALL_WQ)[6] & 0xffff, "drained");
        } finally {
            vtd.driver().removeFaultListener(listener);
        }
    }
}
