package org.iommulab.vtd.internal.hw;

import static org.iommulab.vtd.internal.hw.PageTables.FL_A;
import static org.iommulab.vtd.internal.hw.PageTables.FL_D;
import static org.iommulab.vtd.internal.hw.PageTables.FL_P;
import static org.iommulab.vtd.internal.hw.PageTables.FL_RW;
import static org.iommulab.vtd.internal.hw.PageTables.FL_US;
import static org.iommulab.vtd.internal.hw.PageTables.SL_R;
import static org.iommulab.vtd.internal.hw.PageTables.SL_W;
import static org.iommulab.vtd.internal.hw.VtdRig.CTX_PASIDE;
import static org.iommulab.vtd.internal.hw.VtdRig.DATA;
import static org.iommulab.vtd.internal.hw.VtdRig.PE2_SRE;
import static org.iommulab.vtd.internal.hw.VtdRig.PGTT_FS;
import static org.iommulab.vtd.internal.hw.VtdRig.PGTT_NESTED;
import static org.iommulab.vtd.internal.hw.VtdRig.PGTT_PT;
import static org.iommulab.vtd.internal.hw.VtdRig.PGTT_SS;
import static org.iommulab.vtd.internal.hw.VtdRig.ROOT;
import static org.iommulab.vtd.internal.hw.VtdRig.TE;
import static org.iommulab.vtd.internal.hw.VtdRig.pe0;
import static org.iommulab.vtd.internal.hw.VtdRig.pe2;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.iommulab.api.errno.IommuException;
import org.iommulab.api.spi.IommuDomain;
import org.iommulab.api.translation.Access;
import org.iommulab.api.translation.Translation;
import org.iommulab.pgtable.FlushOps;
import org.iommulab.pgtable.IoPageTable;
import org.iommulab.pgtable.format.VtdSecondStage;
import org.iommulab.platform.internal.memory.FramePool;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/** Successful translation through every PGTT (VT-d §3.6-§3.8, §9.4-§9.6). */
class VtdTranslationTest {
    private static final int SID = 0x0010; // 00:02.0
    private static final int RW = Access.READ | Access.WRITE;

    @Test
    void passThrough() {
        VtdRig r = new VtdRig();
        r.smContext(SID, 0, 0, CTX_PASIDE);
        r.pasidEntry(SID, 0, pe0(PGTT_PT, 0, 0), 1, 0);
        r.pasidEntry(SID, 9, pe0(PGTT_PT, 0, 0), 2, 0);
        r.enable();
        for (long a : new long[] {0, 0x1234_5678L, 0xfee0_0000L - 8, (1L << 52) - 1}) {
            Translation t = r.translate(SID, -1, a, Access.WRITE);
            assertTrue(t.isSuccess(), t::toString);
            assertEquals(a, t.outputAddress());
            assertEquals(a, r.pa(SID, 9, a, Access.READ));
        }
    }

    @ParameterizedTest
    @ValueSource(ints = {1, 2, 3})
    void secondStageOnlyForEveryAddressWidth(int aw) {
        VtdRig r = new VtdRig();
        PageTables ss = r.secondStage(aw);
        int inputBits = 30 + 9 * aw;
        long top = (1L << inputBits) - 0x1000; // the last page the AW allows
        ss.map(0x1000, DATA + 0x5000);
        ss.map(top, DATA + 0x9000);
        ss.map(0x4020_0000L, DATA + 0x20_0000, 2, SL_R | SL_W); // 2 MiB
        ss.map(0x80_0000_0000L >>> (aw == 1 ? 1 : 0), DATA + 0x4000_0000L, 3, SL_R); // 1 GiB, read-only
        r.secondStageDevice(SID, 7, ss);
        r.enable();
        assertEquals(DATA + 0x5abc, r.pa(SID, -1, 0x1abc, RW));
        assertEquals(DATA + 0x9ff8, r.pa(SID, -1, top + 0xff8, RW));
        assertEquals(DATA + 0x20_0000 + 0x1_2345, r.pa(SID, -1, 0x4021_2345L, Access.WRITE));
        long gig = 0x80_0000_0000L >>> (aw == 1 ? 1 : 0);
        Translation t = r.translate(SID, -1, gig + 0x3fff_fff0L, Access.READ);
        assertEquals(DATA + 0x4000_0000L + 0x3fff_fff0L, t.outputAddress());
        assertEquals(30, t.pageShift());
        // The same mapping serves the device's PASID 0 requests with PASID.
        assertEquals(DATA + 0x5abc, r.pa(SID, 0, 0x1abc, Access.READ));
    }

    @Test
    void secondStageTablesBuiltByIoPageTable() throws IommuException {
        VtdRig r = new VtdRig();
        FramePool pool = new FramePool(r.ram, 1L << 40, 1 << 20);
        IoPageTable table = IoPageTable.create(VtdSecondStage.of(2, 52, true, true, false, false), r.mem, pool, FlushOps.NONE);
        table.map(0x10_0000, DATA, 0x40_0000, IommuDomain.PROT_READ | IommuDomain.PROT_WRITE);
        table.map(0x7f_0000_0000L, DATA + 0x1000_0000L, 0x1000, IommuDomain.PROT_READ);
        r.smContext(SID, 0, 0, 0);
        r.pasidEntry(SID, 0, pe0(PGTT_SS, 2, table.root()), 3, 0);
        r.enable();
        for (long iova = 0x10_0000; iova < 0x50_0000; iova += 0x3_3000) {
            assertEquals(table.iovaToPhys(iova), r.pa(SID, -1, iova, RW));
        }
        assertEquals(DATA + 0x1000_0123L, r.pa(SID, -1, 0x7f_0000_0123L, Access.READ));
        VtdRig.assertFault(r.translate(SID, -1, 0x7f_0000_0123L, Access.WRITE), 0x85);
    }

    @ParameterizedTest
    @ValueSource(ints = {0, 1})
    void firstStageOnly(int flpm) {
        VtdRig r = new VtdRig();
        PageTables fs = r.firstStage(4 + flpm);
        long user = FL_P | FL_RW | FL_US | FL_A | FL_D;
        fs.map(0x40_1000, DATA + 0x3000);
        fs.map(0xffff_ffff_ffe0_0000L, DATA + 0x60_0000, 2, user); // canonical high half, 2 MiB
        fs.map(0x4000_0000L, DATA + 0x8000_0000L, 3, user); // 1 GiB
        long wide = 0x00ff_ff00_0000_0000L; // needs 5 levels: bits 55:48 set, canonical for 57 bits
        if (flpm == 1) {
            fs.map(wide, DATA + 0x7000);
        }
        r.smContext(SID, 0, 0, CTX_PASIDE);
        r.pasidEntry(SID, 5, pe0(PGTT_FS, 0, 0), 4, pe2(fs.root, flpm));
        r.enable();
        assertEquals(DATA + 0x3008, r.pa(SID, 5, 0x40_1008, RW));
        assertEquals(DATA + 0x60_0000 + 0x1_0010, r.pa(SID, 5, 0xffff_ffff_ffe1_0010L, Access.READ));
        Translation t = r.translate(SID, 5, 0x4abc_0000L, Access.READ);
        assertEquals(DATA + 0x8abc_0000L, t.outputAddress());
        assertEquals(30, t.pageShift());
        if (flpm == 1) {
            assertEquals(DATA + 0x7010, r.pa(SID, 5, wide + 0x10, Access.WRITE));
        } else {
            VtdRig.assertFault(r.translate(SID, 5, wide, Access.READ), 0x80); // not canonical for 48 bits
        }
    }

    /**
     * Regression (found by {@link VtdReferenceWalkPropertyTest}): FLPTPTR is PASID-entry bits
     * 191:140 (§9.6), the whole of qw2 63:12. A pointer with a bit at or above 52 set lies beyond
     * HAW: the first-stage root cannot be read (0x73), or under nesting the second stage refuses it
     * (0x74); it must not alias the table with those bits cleared.
     */
    @ParameterizedTest
    @ValueSource(ints = {52, 57, 63})
    void firstStagePointerBitsAbove51AreNotIgnored(int bit) {
        VtdRig r = new VtdRig();
        PageTables fs = r.firstStage(4);
        fs.map(0x40_1000, DATA + 0x3000);
        PageTables ss = r.secondStage(2);
        ss.map(fs.root, fs.root); // identity GPA -> HPA for the guest table pages
        ss.map(fs.table(0x40_1000, 3), fs.table(0x40_1000, 3));
        ss.map(fs.table(0x40_1000, 2), fs.table(0x40_1000, 2));
        ss.map(fs.table(0x40_1000, 1), fs.table(0x40_1000, 1));
        ss.map(DATA + 0x3000, DATA + 0x3000);
        r.smContext(SID, 0, 0, CTX_PASIDE);
        r.pasidEntry(SID, 5, pe0(PGTT_FS, 0, 0), 4, pe2(fs.root, 0));
        r.pasidEntry(SID, 6, pe0(PGTT_NESTED, 2, ss.root), 5, pe2(fs.root, 0));
        r.pasidEntry(SID, 7, pe0(PGTT_FS, 0, 0), 6, pe2(fs.root | 1L << bit, 0));
        r.pasidEntry(SID, 8, pe0(PGTT_NESTED, 2, ss.root), 7, pe2(fs.root | 1L << bit, 0));
        r.enable();
        assertEquals(DATA + 0x3008, r.pa(SID, 5, 0x40_1008, RW));
        assertEquals(DATA + 0x3008, r.pa(SID, 6, 0x40_1008, RW));
        VtdRig.assertFault(r.translate(SID, 7, 0x40_1008, Access.READ), 0x73);
        VtdRig.assertFault(r.translate(SID, 8, 0x40_1008, Access.READ), 0x74);
    }

    @Test
    void firstStageForRequestsWithoutPasidUsesRidPasid() {
        VtdRig r = new VtdRig();
        PageTables fs = r.firstStage(4);
        fs.map(0x2000, DATA + 0xa000);
        r.smContext(SID, 33, 0, 0);
        r.pasidEntry(SID, 33, pe0(PGTT_FS, 0, 0), 4, pe2(fs.root, 0) | PE2_SRE);
        r.enable();
        assertEquals(DATA + 0xa010, r.pa(SID, -1, 0x2010, RW));
    }

    /** Guest first-stage tables live in guest-physical space; the host second stage maps GPA to HPA. */
    @Test
    void nestedTranslatesGvaThroughGuestTablesInGpaSpace() {
        VtdRig r = new VtdRig();
        long hostOffset = 0x10_0000_0000L; // HPA = GPA + 64 GiB for guest pages
        PageTables ss = r.secondStage(2);
        long[] guestNext = {0x100_0000L};
        PageTables gfs = new PageTables(r.mem, true, 4, () -> {
            long gpa = guestNext[0];
            guestNext[0] += 0x1000;
            ss.map(gpa, gpa + hostOffset);
            r.zero(gpa + hostOffset, 4096);
            return gpa;
        }, gpa -> gpa + hostOffset);
        long gva = 0x7fff_dead_b000L;
        long gpa = 0x5000_0000L;
        gfs.map(gva, gpa);
        ss.map(gpa, 0x3_0000_0000L); // the data page: GPA -> HPA
        // A 2 MiB guest page backed by 4 KiB host pages.
        gfs.map(0x20_0000, 0x6000_0000L, 2, FL_P | FL_RW | FL_US | FL_A | FL_D);
        ss.map(0x6001_5000L, 0x3_1000_0000L);
        r.smContext(SID, 0, 0, CTX_PASIDE);
        r.pasidEntry(SID, 2, pe0(PGTT_NESTED, 2, ss.root), 8, pe2(gfs.root, 0));
        r.enable();
        assertEquals(0x3_0000_0abcL, r.pa(SID, 2, gva + 0xabc, RW));
        Translation t = r.translate(SID, 2, 0x21_5008L, Access.READ);
        assertEquals(0x3_1000_0008L, t.outputAddress());
        assertEquals(12, t.pageShift(), "the smaller of the two stages' pages");
        // GPA not mapped by the host: a second-stage fault on the final address.
        gfs.map(0x9000, 0x7000_0000L);
        VtdRig.assertFault(r.translate(SID, 2, 0x9000, Access.READ), 0x79);
    }

    @Test
    void requestsWithoutPasidUseRidPasidAndRequestsWithPasidTheirOwnEntry() {
        VtdRig r = new VtdRig();
        PageTables a = r.secondStage(2);
        PageTables b = r.secondStage(2);
        PageTables c = r.secondStage(2);
        a.map(0x1000, DATA + 0xa000);
        b.map(0x1000, DATA + 0xb000);
        c.map(0x1000, DATA + 0xc000);
        r.smContext(SID, 5, 4, CTX_PASIDE); // 2048 directory entries
        r.pasidEntry(SID, 5, pe0(PGTT_SS, 2, a.root), 1, 0);
        r.pasidEntry(SID, 0, pe0(PGTT_SS, 2, b.root), 2, 0);
        r.pasidEntry(SID, 0x1_2345, pe0(PGTT_SS, 2, c.root), 3, 0);
        r.enable();
        assertEquals(DATA + 0xa000, r.read(SID, 0x1000), "RID_PASID 5, not PASID 0");
        assertEquals(DATA + 0xb000, r.pa(SID, 0, 0x1000, Access.READ));
        assertEquals(DATA + 0xa000, r.pa(SID, 5, 0x1000, Access.READ));
        assertEquals(DATA + 0xc000, r.pa(SID, 0x1_2345, 0x1000, Access.READ), "PASID in the second directory block");
    }

    @Test
    void devfnAbove127UsesTheUpperContextTable() {
        VtdRig r = new VtdRig();
        int low = 0x0105; // 01:00.5
        int high = 0x0185; // 01:10.5: same index (5) in the upper table
        PageTables a = r.secondStage(2);
        PageTables b = r.secondStage(2);
        a.map(0x1000, DATA + 0xa000);
        b.map(0x1000, DATA + 0xb000);
        r.secondStageDevice(low, 1, a);
        r.secondStageDevice(high, 2, b);
        assertTrue(r.contextEntryAddress(high) - r.contextEntryAddress(low) == 0x1000, "tables a page apart");
        r.enable();
        assertEquals(DATA + 0xa000, r.read(low, 0x1000));
        assertEquals(DATA + 0xb000, r.read(high, 0x1000));
        // Remove UP (bit 64 of the root entry): only devfn 128-255 lose their context table.
        r.mem.write64(ROOT + 16 + 8, 0);
        r.submit(VtdRig.contextCacheDesc(1, 0, 0, 0));
        r.sync();
        VtdRig.assertFault(r.translate(high, -1, 0x1000, Access.READ), 0x39);
        assertEquals(DATA + 0xa000, r.read(low, 0x1000));
    }

    /**
     * §9.6 PASID entry WPE (bit 132), the counterpart of CR0.WP: when clear, supervisor requests may
     * write to read-only first-stage pages (Linux {@code pasid_enable_wpe} sets it only because the
     * CPU runs with CR0.WP = 1).
     */
    @Test
    void supervisorWriteToAReadOnlyPageIsAllowedWhenWpeIsClear() {
        VtdRig r = new VtdRig();
        PageTables fs = r.firstStage(4);
        fs.map(0x3000, DATA + 0x3000, 1, FL_P | FL_US | FL_A | FL_D); // read-only
        r.smContext(SID, 0, 0, CTX_PASIDE);
        r.pasidEntry(SID, 6, pe0(PGTT_FS, 0, 0), 4, pe2(fs.root, 0) | PE2_SRE);
        r.enable();
        VtdRig.assertFault(r.translate(SID, 6, 0x3000, Access.WRITE), 0x85); // user write: always refused
        Translation t = r.translate(SID, 6, 0x3000, Access.WRITE | Access.PRIV);
        assertTrue(t.isSuccess(), () -> "supervisor write with WPE = 0: " + t);
        assertEquals(DATA + 0x3000, t.outputAddress());
    }

    @Test
    void supervisorWriteToAReadOnlyPageFaultsWhenWpeIsSet() {
        VtdRig r = new VtdRig();
        PageTables fs = r.firstStage(4);
        fs.map(0x3000, DATA + 0x3000, 1, FL_P | FL_US | FL_A | FL_D);
        r.smContext(SID, 0, 0, CTX_PASIDE);
        r.pasidEntry(SID, 6, pe0(PGTT_FS, 0, 0), 4, pe2(fs.root, 0) | PE2_SRE | VtdRig.PE2_WPE);
        r.enable();
        VtdRig.assertFault(r.translate(SID, 6, 0x3000, Access.WRITE | Access.PRIV), 0x85);
        assertEquals(DATA + 0x3000, r.pa(SID, 6, 0x3000, Access.READ | Access.PRIV), "supervisor read of a user page");
    }

    @Test
    void translationDisabledPassesThrough() {
        VtdRig r = new VtdRig();
        Translation t = r.translate(0xffff, 0x77, 0xdead_b000L, Access.WRITE | Access.PRIV);
        assertTrue(t.isSuccess());
        assertEquals(0xdead_b000L, t.outputAddress());
        PageTables ss = r.secondStage(2);
        ss.map(0x1000, DATA);
        r.secondStageDevice(SID, 1, ss);
        r.enable();
        assertEquals(DATA, r.read(SID, 0x1000));
        VtdRig.assertFault(r.translate(0x0200, -1, 0x1000, Access.READ), 0x39);
        r.command(TE, false);
        assertEquals(0x1000, r.read(SID, 0x1000), "TE = 0: untranslated");
        assertEquals(0x1000, r.read(0x0200, 0x1000), "TE = 0: even for unconfigured devices");
        assertEquals(1, r.pendingRecords(), "only the fault while TE was set was recorded");
    }
}
