package org.iommulab.vtd.internal.hw;

import static org.iommulab.vtd.internal.hw.PageTables.FL_A;
import static org.iommulab.vtd.internal.hw.PageTables.FL_D;
import static org.iommulab.vtd.internal.hw.PageTables.FL_P;
import static org.iommulab.vtd.internal.hw.PageTables.FL_RW;
import static org.iommulab.vtd.internal.hw.PageTables.FL_US;
import static org.iommulab.vtd.internal.hw.PageTables.FL_XD;
import static org.iommulab.vtd.internal.hw.PageTables.PS;
import static org.iommulab.vtd.internal.hw.PageTables.SL_R;
import static org.iommulab.vtd.internal.hw.PageTables.SL_W;
import static org.iommulab.vtd.internal.hw.VtdRig.CTX_FPD;
import static org.iommulab.vtd.internal.hw.VtdRig.CTX_P;
import static org.iommulab.vtd.internal.hw.VtdRig.CTX_PASIDE;
import static org.iommulab.vtd.internal.hw.VtdRig.DATA;
import static org.iommulab.vtd.internal.hw.VtdRig.FECTL;
import static org.iommulab.vtd.internal.hw.VtdRig.FR_AT;
import static org.iommulab.vtd.internal.hw.VtdRig.FR_EXE;
import static org.iommulab.vtd.internal.hw.VtdRig.FR_F;
import static org.iommulab.vtd.internal.hw.VtdRig.FR_PRIV;
import static org.iommulab.vtd.internal.hw.VtdRig.FSTS;
import static org.iommulab.vtd.internal.hw.VtdRig.IM;
import static org.iommulab.vtd.internal.hw.VtdRig.IP;
import static org.iommulab.vtd.internal.hw.VtdRig.PE2_NXE;
import static org.iommulab.vtd.internal.hw.VtdRig.PE2_SRE;
import static org.iommulab.vtd.internal.hw.VtdRig.PE_FPD;
import static org.iommulab.vtd.internal.hw.VtdRig.PE_SLADE;
import static org.iommulab.vtd.internal.hw.VtdRig.PE_SLEE;
import static org.iommulab.vtd.internal.hw.VtdRig.PFO;
import static org.iommulab.vtd.internal.hw.VtdRig.PGTT_FS;
import static org.iommulab.vtd.internal.hw.VtdRig.PGTT_NESTED;
import static org.iommulab.vtd.internal.hw.VtdRig.PGTT_PT;
import static org.iommulab.vtd.internal.hw.VtdRig.PGTT_SS;
import static org.iommulab.vtd.internal.hw.VtdRig.PPF;
import static org.iommulab.vtd.internal.hw.VtdRig.ROOT;
import static org.iommulab.vtd.internal.hw.VtdRig.RTADDR;
import static org.iommulab.vtd.internal.hw.VtdRig.SRTP;
import static org.iommulab.vtd.internal.hw.VtdRig.TTM_LEGACY;
import static org.iommulab.vtd.internal.hw.VtdRig.TTM_SCALABLE;
import static org.iommulab.vtd.internal.hw.VtdRig.pe0;
import static org.iommulab.vtd.internal.hw.VtdRig.pe2;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.stream.Collectors;
import java.util.stream.Stream;

import org.iommulab.api.translation.Access;
import org.iommulab.api.translation.Translation;
import org.junit.jupiter.api.Named;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Every fault reason the model raises (VT-d §7.1.3, Table 9 "Scalable-Mode Fault Conditions"), seen
 * both in the returned {@link Translation} and in the primary fault log (§7.2.1, §11.4.9).
 */
class VtdFaultTest {
    static final int S = 0x0010; // 00:02.0
    static final int P = 5;
    static final long VA = 0x40_1000L;
    static final int R = Access.READ;
    static final int W = Access.WRITE;

    /**
     * Fault reasons {@link VtdFault} defines but the model never raises: 0x5c (ERE is not modelled,
     * ECAP.ERS = 0), 0x84 (second-stage address
     * bits at or above HAW are reserved bits, reported as 0x7a) and 0x87 (outputs in the interrupt
     * address range are not checked).
     */
    static final Set<Integer> UNREACHABLE = Set.of(0x5c, 0x84, 0x87);

    record Req(int sid, int pasid, long address, int access) {
    }

    interface Setup {
        Req apply(VtdRig r);
    }

    record Case(int code, Map<String, String> config, Setup setup) {
    }

    static Named<Case> c(int code, String what, Setup setup) {
        return c(code, what, Map.of(), setup);
    }

    static Named<Case> c(int code, String what, Map<String, String> cfg, Setup setup) {
        return Named.of(String.format("0x%02x %s", code, what), new Case(code, cfg, setup));
    }

    // ---- building blocks ----

    static PageTables ssDevice(VtdRig r, int aw, long peFlags) {
        PageTables ss = r.secondStage(aw);
        ss.map(VA, DATA);
        r.smContext(S, 0, 0, CTX_PASIDE);
        r.pasidEntry(S, 0, pe0(PGTT_SS, aw, ss.root) | peFlags, 1, 0);
        return ss;
    }

    static PageTables fsDevice(VtdRig r, int levels, long pe2Flags) {
        PageTables fs = r.firstStage(levels);
        r.smContext(S, 0, 0, CTX_PASIDE);
        r.pasidEntry(S, P, pe0(PGTT_FS, 0, 0), 2, pe2(fs.root, levels - 4) | pe2Flags);
        return fs;
    }

    static final long HOST_OFFSET = 0x10_0000_0000L;

    /** Host second stage and guest first-stage tables in GPA space (HPA = GPA + 64 GiB). */
    static final class Nested {
        final PageTables ss;
        final PageTables gfs;
        long nextGpa = 0x100_0000L;
        long tableMapping = SL_R | SL_W;

        Nested(VtdRig r, int aw, long tableMapping, long guestTableFlags) {
            this.tableMapping = tableMapping;
            ss = r.secondStage(aw);
            gfs = new PageTables(r.mem, true, 4, () -> {
                long gpa = nextGpa;
                nextGpa += 0x1000;
                r.zero(gpa + HOST_OFFSET, 4096);
                if (this.tableMapping != 0) {
                    ss.map(gpa, gpa + HOST_OFFSET, 1, this.tableMapping);
                }
                return gpa;
            }, gpa -> gpa + HOST_OFFSET);
            gfs.tableFlags = guestTableFlags;
        }

        static Nested device(VtdRig r, int aw, long tableMapping, long guestTableFlags, long peFlags) {
            Nested n = new Nested(r, aw, tableMapping, guestTableFlags);
            r.smContext(S, 0, 0, CTX_PASIDE);
            r.pasidEntry(S, P, pe0(PGTT_NESTED, aw, n.ss.root) | peFlags, 3, pe2(n.gfs.root, 0));
            return n;
        }
    }

    static final long GUEST_TABLE = FL_P | FL_RW | FL_US | FL_A;
    static final long USER_RW = FL_P | FL_RW | FL_US | FL_A | FL_D;

    static Stream<Named<Case>> faults() {
        return Stream.of(
                // ---- root table ----
                c(0x30, "TTM legacy, request without PASID", r -> {
                    ssDevice(r, 2, 0);
                    r.w64(RTADDR, ROOT | TTM_LEGACY);
                    r.command(SRTP, true);
                    return new Req(S, -1, VA, R);
                }),
                c(0x31, "TTM legacy, request with PASID", r -> {
                    ssDevice(r, 2, 0);
                    r.w64(RTADDR, ROOT | TTM_LEGACY);
                    r.command(SRTP, true);
                    return new Req(S, 3, VA, W);
                }),
                c(0x38, "root table not backed", r -> {
                    r.w64(RTADDR, 0x80_0000_0000L | TTM_SCALABLE);
                    r.command(SRTP, true);
                    return new Req(S, -1, VA, R);
                }),
                c(0x39, "root entry not present", r -> new Req(0x0700, -1, 0x2345, W)),
                c(0x3a, "root entry reserved bit 2", r -> {
                    r.mem.write64(ROOT + 2 * 16, r.page() | 1 | 4);
                    return new Req(0x0201, -1, VA, R);
                }),
                c(0x3a, "upper root entry reserved bit 11", r -> {
                    r.mem.write64(ROOT + 2 * 16 + 8, r.page() | 1 | 0x800);
                    return new Req(0x0281, -1, VA, R);
                }),
                c(0x3a, "context-table pointer beyond HAW", Map.of("haw", "40"), r -> {
                    r.mem.write64(ROOT + 2 * 16, 1L << 45 | 1);
                    return new Req(0x0201, -1, VA, R);
                }),
                // ---- context entry ----
                c(0x40, "context table not backed", r -> {
                    r.mem.write64(ROOT + 3 * 16, 0x90_0000_0000L | 1);
                    return new Req(0x0300, -1, VA, R);
                }),
                c(0x41, "context entry not present", r -> {
                    r.contextTable(4, false);
                    return new Req(0x0408, -1, VA, R);
                }),
                c(0x42, "context entry reserved bit 5", r -> {
                    r.contextEntry(S, r.page() | CTX_P | 1L << 5, 0);
                    return new Req(S, -1, VA, R);
                }),
                c(0x42, "context entry reserved bit 85", r -> {
                    r.contextEntry(S, r.page() | CTX_P, 1L << 21);
                    return new Req(S, -1, VA, R);
                }),
                c(0x45, "request with PASID, PASIDE clear", r -> {
                    r.smContext(S, 0, 0, 0);
                    return new Req(S, 4, VA, R);
                }),
                c(0x46, "PASID beyond PDTS", r -> {
                    r.smContext(S, 0, 0, CTX_PASIDE); // 128 directory entries: PASIDs below 8192
                    return new Req(S, 8192, VA, R);
                }),
                c(0x46, "PASID beyond PDTS 3", r -> {
                    r.smContext(S, 0, 3, CTX_PASIDE); // 1024 directory entries: PASIDs below 65536
                    return new Req(S, 65536 + 7, VA, R);
                }),
                // ---- PASID directory ----
                c(0x50, "PASID directory not backed", r -> {
                    r.contextEntry(S, 0xa0_0000_0000L | CTX_P | CTX_PASIDE, 0);
                    return new Req(S, -1, VA, R);
                }),
                c(0x51, "PASID directory entry not present", r -> {
                    r.smContext(S, 0, 0, CTX_PASIDE);
                    return new Req(S, 64, VA, R);
                }),
                c(0x52, "PASID directory entry reserved bit 2", r -> {
                    r.smContext(S, 0, 0, CTX_PASIDE);
                    r.mem.write64(r.directoryEntry(S, 0), r.page() | 1 | 4);
                    return new Req(S, -1, VA, R);
                }),
                c(0x58, "PASID table not backed", r -> {
                    r.smContext(S, 0, 0, CTX_PASIDE);
                    r.mem.write64(r.directoryEntry(S, 70), 0xb0_0000_0000L | 1);
                    return new Req(S, 70, VA, R);
                }),
                // ---- PASID table entry ----
                c(0x59, "PASID entry not present", r -> {
                    r.smContext(S, 0, 0, CTX_PASIDE);
                    r.pasidEntry(S, 1, pe0(PGTT_PT, 0, 0), 1, 0);
                    return new Req(S, 2, VA, R);
                }),
                c(0x5a, "PASID entry reserved bit 10", r -> {
                    ssDevice(r, 2, 1L << 10);
                    return new Req(S, -1, VA, R);
                }),
                c(0x5a, "PASID entry reserved bit 80", r -> {
                    PageTables ss = r.secondStage(2);
                    r.smContext(S, 0, 0, 0);
                    r.pasidEntry(S, 0, pe0(PGTT_SS, 2, ss.root), 1 | 1L << 16, 0);
                    return new Req(S, -1, VA, R);
                }),
                c(0x5a, "PASID entry reserved bit 136", r -> {
                    fsDevice(r, 4, 1L << 8);
                    return new Req(S, P, VA, R);
                }),
                c(0x5b, "PGTT 0", r -> pgtt(r, pe0(0, 2, r.page()), 0)),
                c(0x5b, "PGTT 5", r -> pgtt(r, pe0(5, 2, r.page()), 0)),
                c(0x5b, "PGTT 7", r -> pgtt(r, pe0(7, 2, r.page()), 0)),
                c(0x5b, "second stage AW 0", r -> pgtt(r, pe0(PGTT_SS, 0, r.page()), 0)),
                c(0x5b, "second stage AW 4", r -> pgtt(r, pe0(PGTT_SS, 4, r.page()), 0)),
                c(0x5b, "nested AW 5", r -> pgtt(r, pe0(PGTT_NESTED, 5, r.page()), pe2(r.page(), 0))),
                c(0x5b, "AW 3 (57-bit) not in SAGAW of a 48-bit unit", Map.of("mgaw", "48"),
                        r -> pgtt(r, pe0(PGTT_SS, 3, r.page()), 0)),
                c(0x5b, "AW 2 (48-bit) not in SAGAW of a 39-bit unit", Map.of("mgaw", "39", "haw", "39"),
                        r -> pgtt(r, pe0(PGTT_SS, 2, r.page()), 0)),
                c(0x5b, "FLPM 1 without FS5LP", Map.of("fs5lp", "false"),
                        r -> pgtt(r, pe0(PGTT_FS, 0, 0), pe2(r.page(), 1))),
                c(0x5b, "FLPM 2", r -> pgtt(r, pe0(PGTT_FS, 0, 0), pe2(r.page(), 2))),
                c(0x5b, "nested FLPM 3", r -> pgtt(r, pe0(PGTT_NESTED, 2, r.page()), pe2(r.page(), 3))),
                c(0x7b, "SLPTPTR beyond HAW", Map.of("haw", "44"), r -> pgtt(r, pe0(PGTT_SS, 2, 1L << 46), 0)),
                c(0x5d, "privileged request, SRE clear", r -> {
                    PageTables fs = fsDevice(r, 4, 0);
                    fs.map(VA, DATA);
                    return new Req(S, P, VA, R | Access.PRIV);
                }),
                // ---- first stage ----
                c(0x70, "first-stage table below the root not backed", r -> {
                    PageTables fs = fsDevice(r, 4, 0);
                    r.mem.write64(fs.root + 8L * PageTables.index(VA, 4), 0xc0_0000_0000L | GUEST_TABLE);
                    return new Req(S, P, VA, R);
                }),
                c(0x71, "first-stage entry not present", r -> {
                    fsDevice(r, 4, 0);
                    return new Req(S, P, VA, W);
                }),
                c(0x71, "first-stage leaf not present (5-level)", r -> {
                    PageTables fs = fsDevice(r, 5, 0);
                    fs.map(VA + 0x1000, DATA);
                    return new Req(S, P, VA, R);
                }),
                c(0x72, "PS in a PML4E", r -> {
                    PageTables fs = fsDevice(r, 4, 0);
                    r.mem.write64(fs.root + 8L * PageTables.index(VA, 4), USER_RW | PS);
                    return new Req(S, P, VA, R);
                }),
                c(0x72, "XD with NXE clear", r -> {
                    PageTables fs = fsDevice(r, 4, 0);
                    fs.map(VA, DATA, 1, USER_RW | FL_XD);
                    return new Req(S, P, VA, R);
                }),
                c(0x72, "address bits above HAW", Map.of("haw", "40"), r -> {
                    PageTables fs = fsDevice(r, 4, 0);
                    fs.map(VA, 1L << 42, 1, USER_RW);
                    return new Req(S, P, VA, R);
                }),
                c(0x73, "first-stage root not backed", r -> {
                    r.smContext(S, 0, 0, CTX_PASIDE);
                    r.pasidEntry(S, P, pe0(PGTT_FS, 0, 0), 2, pe2(0xd0_0000_0000L, 0));
                    return new Req(S, P, VA, R);
                }),
                c(0x80, "non-canonical address", r -> {
                    fsDevice(r, 4, 0).map(VA, DATA);
                    return new Req(S, P, 0x0000_8000_0000_0000L, R);
                }),
                c(0x81, "user request to a supervisor page", r -> {
                    fsDevice(r, 4, PE2_SRE).map(VA, DATA, 1, FL_P | FL_RW | FL_A | FL_D);
                    return new Req(S, P, VA, R);
                }),
                c(0x82, "execute from an XD page with NXE", r -> {
                    fsDevice(r, 4, PE2_NXE).map(VA, DATA, 1, USER_RW | FL_XD);
                    return new Req(S, P, VA, R | Access.EXEC);
                }),
                c(0x82, "execute from a second-stage page without X, SLEE set", r -> {
                    ssDevice(r, 2, PE_SLEE).map(VA, DATA, 1, SL_R | SL_W);
                    return new Req(S, -1, VA, R | Access.EXEC);
                }),
                c(0x85, "write to a read-only first-stage page", r -> {
                    fsDevice(r, 4, 0).map(VA, DATA, 1, FL_P | FL_US | FL_A);
                    return new Req(S, P, VA, W);
                }),
                c(0x85, "write to a read-only second-stage page", r -> {
                    ssDevice(r, 2, 0).map(VA, DATA, 1, SL_R);
                    return new Req(S, -1, VA, W);
                }),
                c(0x86, "read from a write-only second-stage page", r -> {
                    ssDevice(r, 2, 0).map(VA, DATA, 1, SL_W);
                    return new Req(S, -1, VA, R);
                }),
                c(0x91, "accessed flag update in read-only memory", r -> {
                    PageTables fs = fsDevice(r, 4, 0);
                    long leaf = fs.map(VA, DATA, 1, FL_P | FL_RW | FL_US); // A clear
                    r.mem.makeRom(leaf);
                    return new Req(S, P, VA, R);
                }),
                // ---- second stage ----
                c(0x78, "second-stage root not backed", r -> {
                    r.smContext(S, 0, 0, 0);
                    r.pasidEntry(S, 0, pe0(PGTT_SS, 2, 0xe0_0000_0000L), 1, 0);
                    return new Req(S, -1, VA, R);
                }),
                c(0x78, "second-stage table not backed", r -> {
                    PageTables ss = ssDevice(r, 2, 0);
                    r.mem.write64(ss.entry(VA, 3), 0xe0_0000_0000L | SL_R | SL_W);
                    return new Req(S, -1, VA, R);
                }),
                c(0x79, "second-stage entry not present", r -> {
                    ssDevice(r, 2, 0);
                    return new Req(S, -1, VA + 0x1000, W);
                }),
                c(0x7a, "second-stage bit 63", r -> {
                    ssDevice(r, 2, 0).map(VA, DATA, 1, SL_R | SL_W | 1L << 63);
                    return new Req(S, -1, VA, R);
                }),
                c(0x7a, "PS in an SL-PML4E", r -> {
                    PageTables ss = ssDevice(r, 2, 0);
                    r.mem.write64(ss.entry(VA, 4), r.page() | SL_R | SL_W | PS);
                    return new Req(S, -1, VA, R);
                }),
                c(0x7a, "output address above HAW", Map.of("haw", "40"), r -> {
                    ssDevice(r, 2, 0).map(VA, 1L << 42, 1, SL_R | SL_W);
                    return new Req(S, -1, VA, R);
                }),
                c(0x7c, "second-stage accessed flag update in read-only memory", r -> {
                    PageTables ss = ssDevice(r, 2, PE_SLADE);
                    long leaf = ss.map(VA, DATA, 1, SL_R | SL_W); // A clear
                    r.mem.makeRom(leaf);
                    return new Req(S, -1, VA, R);
                }),
                c(0x83, "address beyond AW 1 (39 bits)", r -> {
                    ssDevice(r, 1, 0);
                    return new Req(S, -1, 1L << 39, R);
                }),
                c(0x83, "pass-through address beyond HAW", r -> {
                    r.smContext(S, 0, 0, 0);
                    r.pasidEntry(S, 0, pe0(PGTT_PT, 0, 0), 1, 0);
                    return new Req(S, -1, 1L << 52 | 0x123, W);
                }),
                // ---- nested ----
                c(0x74, "first-stage table GPA beyond the second stage's AW", r -> {
                    r.smContext(S, 0, 0, CTX_PASIDE);
                    r.pasidEntry(S, P, pe0(PGTT_NESTED, 1, r.secondStage(1).root), 3, pe2(1L << 40, 0));
                    return new Req(S, P, VA, R);
                }),
                c(0x75, "first-stage root GPA not mapped by the second stage", r -> {
                    Nested n = Nested.device(r, 2, 0, GUEST_TABLE, 0);
                    n.gfs.map(VA, 0x5000_0000L);
                    return new Req(S, P, VA, R);
                }),
                c(0x75, "first-stage root GPA write-only in the second stage", r -> {
                    Nested n = Nested.device(r, 2, SL_W, GUEST_TABLE, 0);
                    n.gfs.map(VA, 0x5000_0000L);
                    return new Req(S, P, VA, R);
                }),
                c(0x76, "lower first-stage table GPA not mapped by the second stage", r -> {
                    Nested n = Nested.device(r, 2, SL_R | SL_W, GUEST_TABLE, 0);
                    n.tableMapping = 0; // tables from now on are not mapped
                    n.gfs.map(VA, 0x5000_0000L);
                    return new Req(S, P, VA, R);
                }),
                c(0x77, "first-stage A update through a read-only second-stage mapping", r -> {
                    Nested n = Nested.device(r, 2, SL_R, FL_P | FL_RW | FL_US, 0); // table entries without A
                    n.gfs.map(VA, 0x5000_0000L);
                    n.ss.map(0x5000_0000L, DATA);
                    return new Req(S, P, VA, R);
                }),
                c(0x78, "second-stage table not backed while fetching a first-stage table", r -> {
                    Nested n = Nested.device(r, 2, SL_R | SL_W, GUEST_TABLE, 0);
                    r.mem.write64(n.ss.entry(n.gfs.root, 2), 0xe8_0000_0000L | SL_R | SL_W);
                    return new Req(S, P, VA, R);
                }),
                c(0x79, "final GPA not mapped by the second stage", r -> {
                    Nested n = Nested.device(r, 2, SL_R | SL_W, GUEST_TABLE, 0);
                    n.gfs.map(VA, 0x5000_0000L);
                    return new Req(S, P, VA, W);
                }),
                c(0x7a, "second-stage reserved bit while fetching a first-stage table", r -> {
                    Nested n = Nested.device(r, 2, SL_R | SL_W, GUEST_TABLE, 0);
                    long e = n.ss.entry(n.gfs.root, 1);
                    r.mem.write64(e, r.mem.read64(e) | 1L << 63);
                    return new Req(S, P, VA, R);
                }),
                c(0x7c, "second-stage A update in read-only memory while fetching a first-stage table", r -> {
                    Nested n = Nested.device(r, 2, SL_R | SL_W, GUEST_TABLE, PE_SLADE);
                    r.mem.makeRom(n.ss.entry(n.gfs.root, 1));
                    return new Req(S, P, VA, R);
                }),
                c(0x83, "final GPA beyond the second stage's AW", r -> {
                    Nested n = Nested.device(r, 1, SL_R | SL_W, GUEST_TABLE, 0);
                    n.gfs.map(VA, 1L << 40);
                    return new Req(S, P, VA, R);
                }),
                c(0x85, "nested write to a page read-only in the second stage", r -> {
                    Nested n = Nested.device(r, 2, SL_R | SL_W, GUEST_TABLE, 0);
                    n.gfs.map(VA, 0x5000_0000L);
                    n.ss.map(0x5000_0000L, DATA, 1, SL_R);
                    return new Req(S, P, VA, W);
                }));
    }

    static Req pgtt(VtdRig r, long qw0, long qw2) {
        r.smContext(S, 0, 0, CTX_PASIDE);
        r.pasidEntry(S, 9, qw0, 1, qw2);
        return new Req(S, 9, VA, R);
    }

    static VtdFault fault(int code) {
        for (VtdFault f : VtdFault.values()) {
            if (f.code == code) {
                return f;
            }
        }
        throw new AssertionError(String.format("0x%x is not a VtdFault", code));
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("faults")
    void faultIsReturnedAndRecorded(Case k) {
        VtdRig r = new VtdRig(k.config());
        r.enable();
        Req q = k.setup().apply(r);
        Translation t = r.translate(q.sid(), q.pasid(), q.address(), q.access());
        VtdRig.assertFault(t, k.code());
        assertEquals(fault(k.code()).kind, t.faultKind(), "fault kind");
        r.assertRecord(0, k.code(), q.sid(), q.pasid(), q.address(), q.access());
        assertEquals(1, r.pendingRecords(), "exactly one record");
        assertEquals(0, (r.fsts() >>> 8) & 0xff, "FSTS.FRI");
        assertEquals(0, r.fsts() & PFO, "no overflow");
        // The same request faults the same way again (nothing was cached as a success); whether the
        // repeat gets a record of its own or is compressed into the pending one is up to the hardware.
        long first = r.frHi(0);
        VtdRig.assertFault(r.translate(q.sid(), q.pasid(), q.address(), q.access()), k.code());
        assertEquals(first, r.frHi(0), "record 0 unchanged");
        if ((r.frHi(1) & VtdRig.FR_F) != 0) {
            r.assertRecord(1, k.code(), q.sid(), q.pasid(), q.address(), q.access());
        }
    }

    @Test
    void everyReachableFaultReasonHasACase() {
        Set<Integer> covered = faults().map(n -> n.getPayload().code()).collect(Collectors.toCollection(TreeSet::new));
        Set<String> missing = new TreeSet<>();
        for (VtdFault f : VtdFault.values()) {
            if (!covered.contains(f.code) && !UNREACHABLE.contains(f.code)) {
                missing.add(String.format("0x%02x %s", f.code, f.spec));
            }
        }
        assertTrue(missing.isEmpty(), "fault reasons without a test: " + missing);
    }

    // ---- fault processing disable (§9.4, §9.5, §9.6: FPD; §7.1.3 qualified faults) ----

    @Test
    void contextFpdSuppressesRecordingOfQualifiedFaults() {
        VtdRig r = new VtdRig();
        r.enable();
        r.smContext(S, 0, 0, CTX_PASIDE | CTX_FPD);
        VtdRig.assertFault(r.translate(S, -1, VA, R), 0x51);
        VtdRig.assertFault(r.translate(S, 9000, VA, R), 0x46);
        assertEquals(0, r.pendingRecords());
        assertEquals(0, r.fsts() & PPF);
        assertEquals(2, r.hw.statistics().get("faults"), "the faults still happened");
    }

    @Test
    void pasidEntryFpdSuppressesRecordingOfWalkFaults() {
        VtdRig r = new VtdRig();
        r.enable();
        ssDevice(r, 2, PE_FPD);
        VtdRig.assertFault(r.translate(S, -1, VA + 0x1000, R), 0x79);
        VtdRig.assertFault(r.translate(S, -1, VA, R | Access.PRIV), 0x5d);
        assertEquals(DATA, r.read(S, VA), "the mapped page still works");
        assertEquals(0, r.pendingRecords());
        assertEquals(0, r.fsts() & PPF);
    }

    @Test
    void pasidDirectoryFpdSuppressesRecordingBelowIt() {
        VtdRig r = new VtdRig();
        r.enable();
        r.smContext(S, 0, 0, CTX_PASIDE);
        r.pasidEntry(S, 1, pe0(PGTT_PT, 0, 0), 1, 0);
        long de = r.directoryEntry(S, 1);
        r.mem.write64(de, r.mem.read64(de) | 2);
        VtdRig.assertFault(r.translate(S, 2, VA, R), 0x59);
        assertEquals(0, r.pendingRecords());
    }

    @Test
    void fpdDoesNotSuppressNonQualifiedFaults() {
        VtdRig r = new VtdRig();
        r.enable();
        r.smContext(S, 0, 0, CTX_PASIDE | CTX_FPD);
        r.mem.write64(r.directoryEntry(S, 0), 0xb0_0000_0000L | 1 | 2); // directory FPD too
        VtdRig.assertFault(r.translate(S, -1, VA, R), 0x58);
        r.assertRecord(0, 0x58, S, -1, VA, R);
    }

    // ---- fault recording registers ----

    @Test
    void faultBitIsWriteOneToClearAndOtherFieldsAreReadOnly() {
        VtdRig r = new VtdRig();
        r.enable();
        VtdRig.assertFault(r.translate(0x0700, 1, 0x1234_5000L, R), 0x39);
        long hi = r.frHi(0);
        long lo = r.frLo(0);
        r.w64(r.frcd, 0);
        r.w32(r.frcd + 8, 0);
        r.w32(r.frcd + 12, 0x7fff_ffffL); // everything but F
        assertEquals(hi, r.frHi(0), "writing 0 to F and to read-only fields changes nothing");
        assertEquals(lo, r.frLo(0));
        r.w64(r.frcd + 8, FR_F);
        assertEquals(0, r.frHi(0) & FR_F, "F cleared by writing 1");
        assertEquals(0, r.fsts() & PPF, "no record pending: PPF clear");
        assertEquals(hi & ~FR_F, r.frHi(0), "the rest of the record stays readable");
    }

    @Test
    void recordsFillInOrderAndFriPointsAtTheFirstPending() {
        VtdRig r = new VtdRig();
        r.enable();
        VtdRig.assertFault(r.translate(0x0700, -1, 0x1000, R), 0x39);
        VtdRig.assertFault(r.translate(0x0701, -1, 0x2000, W), 0x39);
        r.assertRecord(0, 0x39, 0x0700, -1, 0x1000, R);
        r.assertRecord(1, 0x39, 0x0701, -1, 0x2000, W);
        assertEquals(0, (r.fsts() >>> 8) & 0xff);
        r.clearRecord(0);
        r.clearRecord(1);
        assertEquals(0, r.fsts() & PPF);
        VtdRig.assertFault(r.translate(0x0702, -1, 0x3000, R), 0x39);
        r.assertRecord(2, 0x39, 0x0702, -1, 0x3000, R);
        assertEquals(2, (r.fsts() >>> 8) & 0xff, "FRI: the record that set PPF");
    }

    @Test
    void overflowSetsPfoAndDropsTheFault() {
        VtdRig r = new VtdRig();
        r.enable();
        for (int i = 0; i < 4; i++) {
            VtdRig.assertFault(r.translate(0x0700 + i, -1, 0x1000L * (i + 1), R), 0x39);
        }
        assertEquals(4, r.pendingRecords());
        assertEquals(0, r.fsts() & PFO);
        VtdRig.assertFault(r.translate(0x0777, -1, 0x9000, R), 0x39);
        assertEquals(PFO, r.fsts() & PFO, "PFO");
        for (int i = 0; i < 4; i++) {
            r.assertRecord(i, 0x39, 0x0700 + i, -1, 0x1000L * (i + 1), R);
        }
        r.w32(FSTS, 0);
        assertEquals(PFO, r.fsts() & PFO, "writing 0 keeps PFO");
        r.w32(FSTS, PFO);
        assertEquals(0, r.fsts() & PFO, "PFO is write-1-to-clear");
        assertEquals(PPF, r.fsts() & PPF, "records still pending");
        for (int i = 0; i < 4; i++) {
            r.clearRecord(i);
        }
        assertEquals(0, r.fsts() & (PPF | PFO));
        VtdRig.assertFault(r.translate(0x0778, -1, 0xa000, R), 0x39);
        r.assertRecord(0, 0x39, 0x0778, -1, 0xa000, R);
        assertEquals(5, r.hw.statistics().get("faults-recorded"));
        assertEquals(1, r.hw.statistics().get("faults-dropped"));
    }

    /**
     * §11.4.9.1 FSTS.PFO: while PFO is set, hardware does not record new faults, even if the next
     * fault recording register has been freed (QEMU {@code vtd_report_dmar_fault} and VirtualBox
     * {@code dmarPrimaryFaultCanRecord} implement it so).
     */
    @Test
    void noFaultIsRecordedWhilePfoIsSet() {
        VtdRig r = new VtdRig();
        r.enable();
        for (int i = 0; i < 5; i++) {
            r.translate(0x0700 + i, -1, 0x1000L * (i + 1), R);
        }
        assertEquals(PFO, r.fsts() & PFO);
        r.clearRecord(0); // the next record index is free again, PFO still set
        VtdRig.assertFault(r.translate(0x0799, -1, 0xf000, R), 0x39);
        assertFalse((r.frHi(0) & FR_F) != 0, "fault recorded into record 0 although PFO was set: " + Long.toHexString(r.frHi(0)));
    }

    @Test
    void fectlMaskAndPending() {
        VtdRig r = new VtdRig();
        r.enable();
        assertEquals(IM, (int) r.reg32(FECTL), "FECTL after reset: IM set, IP clear");
        r.translate(0x0700, -1, 0x1000, R);
        assertEquals(IM | IP, (int) r.reg32(FECTL), "masked fault event: IP set");
        assertEquals(0, r.hw.statistics().get("fault-interrupts"));
        r.w32(FECTL, 0); // unmask: the pending event is delivered
        assertEquals(0, (int) r.reg32(FECTL));
        assertEquals(1, r.hw.statistics().get("fault-interrupts"));
        r.clearRecord(0);
        r.translate(0x0701, -1, 0x1000, R);
        assertEquals(0, (int) r.reg32(FECTL), "unmasked: delivered at once, IP stays clear");
        assertEquals(2, r.hw.statistics().get("fault-interrupts"));
        r.w32(FECTL, IP); // IP is read-only
        assertEquals(0, (int) r.reg32(FECTL));
        r.w32(VtdRig.FEDATA, 0x4021);
        assertEquals(0x4021, r.reg32(VtdRig.FEDATA));
        r.w64(VtdRig.FEADDR, 0xfee0_0000L);
        assertEquals(0xfee0_0000L, r.reg64(VtdRig.FEADDR));
    }

    /**
     * §11.4.9.2 FECTL.IP: hardware clears IP when software services all pending status fields,
     * e.g. clears F in every fault record so that PPF evaluates clear.
     */
    @Test
    void servicingEveryRecordClearsFectlIp() {
        VtdRig r = new VtdRig();
        r.enable();
        r.translate(0x0700, -1, 0x1000, R);
        assertEquals(IM | IP, (int) r.reg32(FECTL));
        r.clearRecord(0);
        assertEquals(0, r.fsts() & PPF);
        assertEquals(IM, (int) r.reg32(FECTL), "IP still set after all status was serviced");
    }

    /**
     * §11.4.9.2 FECTL.IP and §7.3.1: a fault recorded while PPF is already set is not a new interrupt
     * condition, so a serviced (delivered) event is not raised again.
     */
    @Test
    void aFaultWhilePpfIsSetIsNotANewInterruptCondition() {
        VtdRig r = new VtdRig();
        r.enable();
        r.translate(0x0700, -1, 0x1000, R);
        r.w32(FECTL, 0); // deliver
        r.w32(FECTL, IM); // mask again
        r.translate(0x0701, -1, 0x2000, R); // PPF was already set
        assertEquals(IM, (int) r.reg32(FECTL), "IP set for a fault that is not a new interrupt condition");
    }

    /**
     * §11.4.9.3 fault recording register: PRIV is bit 93 and EXE bit 94 (the upper half's bits 29
     * and 30, as Linux and VirtualBox decode them); bits 125:124 are AT, zero for an untranslated
     * request.
     */
    @Test
    void privilegedExecuteRequestSetsPrivAndExeInTheirFields() {
        VtdRig r = new VtdRig();
        r.enable();
        fsDevice(r, 4, PE2_SRE | PE2_NXE).map(VA, DATA, 1, USER_RW | FL_XD);
        VtdRig.assertFault(r.translate(S, P, VA, R | Access.EXEC | Access.PRIV), 0x82);
        long hi = r.frHi(0);
        assertEquals(0, hi & FR_AT, String.format("AT (bits 125:124) must be 0 for an untranslated request: 0x%016x", hi));
        assertEquals(FR_PRIV | FR_EXE, hi & (FR_PRIV | FR_EXE), String.format("PRIV (93), EXE (94): 0x%016x", hi));
    }
}
