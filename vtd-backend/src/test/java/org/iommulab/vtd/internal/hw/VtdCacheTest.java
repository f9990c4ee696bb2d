package org.iommulab.vtd.internal.hw;

import static org.iommulab.vtd.internal.hw.PageTables.FL_A;
import static org.iommulab.vtd.internal.hw.PageTables.FL_D;
import static org.iommulab.vtd.internal.hw.PageTables.FL_P;
import static org.iommulab.vtd.internal.hw.PageTables.FL_RW;
import static org.iommulab.vtd.internal.hw.PageTables.FL_US;
import static org.iommulab.vtd.internal.hw.PageTables.SL_A;
import static org.iommulab.vtd.internal.hw.PageTables.SL_D;
import static org.iommulab.vtd.internal.hw.PageTables.SL_R;
import static org.iommulab.vtd.internal.hw.PageTables.SL_W;
import static org.iommulab.vtd.internal.hw.VtdRig.CCMD;
import static org.iommulab.vtd.internal.hw.VtdRig.CTX_P;
import static org.iommulab.vtd.internal.hw.VtdRig.CTX_PASIDE;
import static org.iommulab.vtd.internal.hw.VtdRig.DATA;
import static org.iommulab.vtd.internal.hw.VtdRig.PE_SLADE;
import static org.iommulab.vtd.internal.hw.VtdRig.PGTT_FS;
import static org.iommulab.vtd.internal.hw.VtdRig.PGTT_PT;
import static org.iommulab.vtd.internal.hw.VtdRig.PGTT_SS;
import static org.iommulab.vtd.internal.hw.VtdRig.contextCacheDesc;
import static org.iommulab.vtd.internal.hw.VtdRig.iotlbDesc;
import static org.iommulab.vtd.internal.hw.VtdRig.pasidCacheDesc;
import static org.iommulab.vtd.internal.hw.VtdRig.pasidIotlbDesc;
import static org.iommulab.vtd.internal.hw.VtdRig.pe0;
import static org.iommulab.vtd.internal.hw.VtdRig.pe2;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;

import org.iommulab.api.translation.Access;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * The IOTLB, PASID cache and context cache (VT-d §6.2, §6.5): a changed entry is not seen until
 * software invalidates it, at each granularity, through the queue (§6.5.2) and the registers
 * (§6.5.1).
 */
class VtdCacheTest {
    static final int S = 0x0010;
    static final int DID = 1;
    static final long A = 0x10_0000L;
    static final long B = 0x20_0000L;
    static final long PA1 = DATA + 0x1000;
    static final long PA2 = DATA + 0x2000;
    static final long PB1 = DATA + 0x3000;
    static final long PB2 = DATA + 0x4000;

    VtdRig r;
    PageTables ss;
    long leafA;
    long leafB;

    /** Second stage for S (RID_PASID 0, DID 1): A and B cached in the IOTLB, then remapped in memory. */
    void staleSecondStage(boolean queue) {
        r = new VtdRig();
        ss = r.secondStage(2);
        leafA = ss.map(A, PA1);
        leafB = ss.map(B, PB1);
        r.secondStageDevice(S, DID, ss);
        if (queue) {
            r.enable();
        } else {
            r.enableWithoutQueue();
        }
        assertEquals(PA1, r.read(S, A));
        assertEquals(PB1, r.read(S, B));
        r.mem.write64(leafA, PA2 | SL_R | SL_W);
        r.mem.write64(leafB, PB2 | SL_R | SL_W);
        assertEquals(PA1, r.read(S, A), "stale IOTLB hit");
        assertEquals(PB1, r.read(S, B), "stale IOTLB hit");
    }

    // ---- IOTLB through the queue ----

    @Test
    void globalIotlbInvalidation() {
        staleSecondStage(true);
        r.submit(iotlbDesc(1, 0, 0, 0, false));
        r.sync();
        assertEquals(PA2, r.read(S, A));
        assertEquals(PB2, r.read(S, B));
    }

    @Test
    void domainSelectiveIotlbInvalidation() {
        staleSecondStage(true);
        r.submit(iotlbDesc(2, DID + 1, 0, 0, false));
        r.sync();
        assertEquals(PA1, r.read(S, A), "another domain's invalidation keeps the entry");
        r.submit(iotlbDesc(2, DID, 0, 0, false));
        r.sync();
        assertEquals(PA2, r.read(S, A));
        assertEquals(PB2, r.read(S, B));
    }

    @ParameterizedTest
    @ValueSource(booleans = {false, true})
    void pageSelectiveIotlbInvalidation(boolean ih) {
        staleSecondStage(true);
        r.submit(iotlbDesc(3, DID + 1, B, 0, ih));
        r.sync();
        assertEquals(PB1, r.read(S, B), "other domain");
        r.submit(iotlbDesc(3, DID, B + 0x1000, 0, ih));
        r.sync();
        assertEquals(PB1, r.read(S, B), "other page");
        r.submit(iotlbDesc(3, DID, B, 0, ih));
        r.sync();
        assertEquals(PB2, r.read(S, B), "the page");
        assertEquals(PA1, r.read(S, A), "a page-selective invalidation of another page keeps the stale entry");
        r.submit(iotlbDesc(3, DID, 0, 9, ih)); // 2 MiB at 0: covers A
        r.sync();
        assertEquals(PA2, r.read(S, A), "AM 9 covers A");
    }

    @Test
    void pageSelectiveInvalidationThenFault() {
        staleSecondStage(true);
        r.mem.write64(leafA, 0);
        assertEquals(PA1, r.read(S, A), "unmapped in memory, still cached");
        r.submit(iotlbDesc(3, DID, A, 0, false));
        r.sync();
        VtdRig.assertFault(r.translate(S, -1, A, Access.READ), 0x79);
    }

    @Test
    void iotlbInvalidationCoversEveryPasidOfTheDomain() {
        staleSecondStage(true);
        r.pasidEntry(S, 7, pe0(PGTT_SS, 2, ss.root), DID, 0);
        r.mem.write64(leafA, PA1 | SL_R | SL_W);
        assertEquals(PA1, r.pa(S, 7, A, Access.READ));
        r.mem.write64(leafA, PA2 | SL_R | SL_W);
        assertEquals(PA1, r.pa(S, 7, A, Access.READ));
        r.submit(iotlbDesc(3, DID, A, 0, false));
        r.sync();
        assertEquals(PA2, r.pa(S, 7, A, Access.READ));
        assertEquals(PA2, r.read(S, A));
    }

    // ---- PASID-based IOTLB ----

    static final int S2 = 0x0018;

    /** First stage for PASIDs 5 and 6 of S2, both in domain 3, sharing one table; all four cached, then remapped. */
    PageTables staleFirstStage() {
        r = new VtdRig();
        PageTables fs = r.firstStage(4);
        leafA = fs.map(A, PA1);
        leafB = fs.map(B, PB1);
        r.smContext(S2, 0, 0, CTX_PASIDE);
        r.pasidEntry(S2, 5, pe0(PGTT_FS, 0, 0), 3, pe2(fs.root, 0));
        r.pasidEntry(S2, 6, pe0(PGTT_FS, 0, 0), 3, pe2(fs.root, 0));
        r.enable();
        for (int pasid = 5; pasid <= 6; pasid++) {
            assertEquals(PA1, r.pa(S2, pasid, A, Access.READ));
            assertEquals(PB1, r.pa(S2, pasid, B, Access.READ));
        }
        long user = FL_P | FL_RW | FL_US | FL_A | FL_D;
        r.mem.write64(leafA, PA2 | user);
        r.mem.write64(leafB, PB2 | user);
        assertEquals(PA1, r.pa(S2, 5, A, Access.READ));
        assertEquals(PB1, r.pa(S2, 6, B, Access.READ));
        return fs;
    }

    @Test
    void pasidSelectiveIotlbInvalidation() {
        staleFirstStage();
        r.submit(pasidIotlbDesc(2, 4, 5, 0, 0, false));
        r.sync();
        assertEquals(PA1, r.pa(S2, 5, A, Access.READ), "other domain");
        r.submit(pasidIotlbDesc(2, 3, 6, 0, 0, false));
        r.sync();
        assertEquals(PA2, r.pa(S2, 6, A, Access.READ));
        assertEquals(PB2, r.pa(S2, 6, B, Access.READ));
        assertEquals(PA1, r.pa(S2, 5, A, Access.READ), "other PASID keeps its entries");
        r.submit(pasidIotlbDesc(2, 3, 5, 0, 0, false));
        r.sync();
        assertEquals(PA2, r.pa(S2, 5, A, Access.READ));
    }

    @Test
    void pageSelectiveWithinPasidIotlbInvalidation() {
        staleFirstStage();
        r.submit(pasidIotlbDesc(3, 3, 5, B, 0, false));
        r.sync();
        assertEquals(PB2, r.pa(S2, 5, B, Access.READ));
        assertEquals(PA1, r.pa(S2, 5, A, Access.READ), "other page");
        assertEquals(PB1, r.pa(S2, 6, B, Access.READ), "other PASID");
        r.submit(pasidIotlbDesc(3, 3, 5, 0, 9, true)); // 2 MiB at 0 covers A
        r.sync();
        assertEquals(PA2, r.pa(S2, 5, A, Access.READ));
        assertEquals(PA1, r.pa(S2, 6, A, Access.READ), "other PASID");
        r.submit(pasidIotlbDesc(3, 3, 6, 0, 10, false)); // 4 MiB at 0 covers A and B
        r.sync();
        assertEquals(PA2, r.pa(S2, 6, A, Access.READ));
        assertEquals(PB2, r.pa(S2, 6, B, Access.READ));
    }

    // ---- register-based IOTLB invalidation (§11.4.8: IVA and IOTLB at ECAP.IRO * 16) ----

    long iotlbCommand(long iva, int granularity, int did) {
        r.w64(r.iotlbRegs, iva);
        r.w64(r.iotlbRegs + 8, 1L << 63 | (long) granularity << 60 | (long) did << 32);
        long reg = r.reg64(r.iotlbRegs + 8);
        assertEquals(0, reg >>> 63, "IVT clears when the invalidation is done");
        return reg;
    }

    @Test
    void registerBasedGlobalIotlbInvalidation() {
        staleSecondStage(false);
        long reg = iotlbCommand(0, 1, 0);
        assertNotEquals(0, (reg >>> 57) & 3, "IAIG reports the granularity performed");
        assertEquals(PA2, r.read(S, A));
        assertEquals(PB2, r.read(S, B));
    }

    @Test
    void registerBasedDomainIotlbInvalidation() {
        staleSecondStage(false);
        iotlbCommand(0, 2, DID + 1);
        assertEquals(PA1, r.read(S, A));
        long reg = iotlbCommand(0, 2, DID);
        assertNotEquals(0, (reg >>> 57) & 3);
        assertEquals(PA2, r.read(S, A));
        assertEquals(PB2, r.read(S, B));
    }

    @Test
    void registerBasedPageIotlbInvalidation() {
        staleSecondStage(false);
        iotlbCommand(B, 3, DID);
        assertEquals(PB2, r.read(S, B));
        assertEquals(PA1, r.read(S, A), "other page");
        iotlbCommand(0 | 9, 3, DID); // AM 9: 2 MiB at 0
        assertEquals(PA2, r.read(S, A));
    }

    /**
     * IVA.AM is a 6-bit field; a value beyond CAP.MAMV must not make a register write throw (a
     * register write only fails for a bad size, alignment or offset).
     */
    @ParameterizedTest
    @ValueSource(ints = {19, 51, 52, 63})
    void registerBasedPageInvalidationWithLargeAmDoesNotThrow(int am) {
        staleSecondStage(false);
        r.w64(r.iotlbRegs, am);
        try {
            r.hw.write(r.iotlbRegs + 8, 1L << 63 | 3L << 60 | (long) DID << 32, 8);
        } catch (Throwable t) {
            throw new AssertionError("IOTLB register write with IVA.AM=" + am + " threw " + t, t);
        }
        assertEquals(0, r.reg64(r.iotlbRegs + 8) >>> 63, "IVT clear");
    }

    // ---- PASID cache (§6.5.2.2 PASID-cache invalidate descriptor, type 7) ----

    /** S's RID_PASID entry switched from second stage to pass-through in memory; the cached entry still used. */
    void stalePasidEntry() {
        staleSecondStage(true);
        r.pasidEntry(S, 0, pe0(PGTT_PT, 0, 0), DID, 0);
        assertEquals(PA1, r.read(S, A), "cached PASID entry: still second stage");
    }

    @Test
    void pasidSelectivePasidCacheInvalidation() {
        stalePasidEntry();
        r.submit(pasidCacheDesc(1, DID, 1));
        r.sync();
        assertEquals(PA1, r.read(S, A), "other PASID");
        r.submit(pasidCacheDesc(1, DID + 1, 0));
        r.sync();
        assertEquals(PA1, r.read(S, A), "other domain");
        r.submit(pasidCacheDesc(1, DID, 0));
        r.sync();
        assertEquals(A, r.read(S, A), "pass-through now");
    }

    @Test
    void domainSelectivePasidCacheInvalidation() {
        stalePasidEntry();
        r.submit(pasidCacheDesc(0, DID + 1, 0));
        r.sync();
        assertEquals(PA1, r.read(S, A), "other domain");
        r.submit(pasidCacheDesc(0, DID, 0));
        r.sync();
        assertEquals(A, r.read(S, A));
    }

    @Test
    void globalPasidCacheInvalidation() {
        stalePasidEntry();
        r.submit(pasidCacheDesc(3, 0, 0));
        r.sync();
        assertEquals(A, r.read(S, A));
    }

    @Test
    void newSecondStagePointerNeedsPasidCacheAndIotlbInvalidation() {
        staleSecondStage(true);
        long c = 0x30_0000L;
        long d = 0x40_0000L;
        ss.map(c, DATA + 0xc000);
        ss.map(d, DATA + 0xd000);
        PageTables other = r.secondStage(2);
        other.map(A, DATA + 0xa0000);
        other.map(c, DATA + 0xc0000);
        other.map(d, DATA + 0xd0000);
        r.pasidEntry(S, 0, pe0(PGTT_SS, 2, other.root), DID, 0);
        assertEquals(DATA + 0xc000, r.read(S, c), "stale PASID entry: the old table is walked");
        r.submit(pasidCacheDesc(1, DID, 0));
        r.sync();
        assertEquals(DATA + 0xd0000, r.read(S, d), "a new walk uses the new table");
        assertEquals(DATA + 0xc000, r.read(S, c), "the IOTLB still holds the old translation");
        r.submit(iotlbDesc(2, DID, 0, 0, false));
        r.sync();
        assertEquals(DATA + 0xc0000, r.read(S, c));
        assertEquals(DATA + 0xa0000, r.read(S, A));
    }

    // ---- context cache (§6.5.2.1 descriptor type 1, §11.4.7 CCMD) ----

    /** S's context entry made not-present in memory, the cached copy still used. */
    void staleContext(boolean queue) {
        staleSecondStage(queue);
        long ce = r.contextEntryAddress(S);
        r.mem.write64(ce, r.mem.read64(ce) & ~CTX_P);
        assertEquals(PA1, r.read(S, A), "cached context entry");
    }

    @Test
    void deviceSelectiveContextCacheInvalidation() {
        staleContext(true);
        r.submit(contextCacheDesc(3, 0, S + 1, 0));
        r.sync();
        assertEquals(PA1, r.read(S, A), "other device");
        r.submit(contextCacheDesc(3, 0, S, 0));
        r.sync();
        VtdRig.assertFault(r.translate(S, -1, A, Access.READ), 0x41);
    }

    @Test
    void globalContextCacheInvalidation() {
        staleContext(true);
        r.submit(contextCacheDesc(1, 0, 0, 0));
        r.sync();
        VtdRig.assertFault(r.translate(S, -1, A, Access.READ), 0x41);
    }

    @Test
    void changedRidPasidSeenAfterContextCacheInvalidation() {
        staleSecondStage(true);
        r.pasidEntry(S, 1, pe0(PGTT_PT, 0, 0), 2, 0);
        long ce = r.contextEntryAddress(S);
        r.mem.write64(ce + 8, 1); // RID_PASID 1
        assertEquals(PA1, r.read(S, A));
        r.submit(contextCacheDesc(3, 0, S, 0));
        r.sync();
        assertEquals(A, r.read(S, A), "requests without PASID now use PASID 1: pass-through");
    }

    @Test
    void ccmdDeviceSelective() {
        staleContext(false);
        r.w64(CCMD, 1L << 63 | 3L << 61 | (long) (S + 1) << 16);
        assertEquals(PA1, r.read(S, A), "other device");
        r.w64(CCMD, 1L << 63 | 3L << 61 | (long) S << 16);
        long ccmd = r.reg64(CCMD);
        assertEquals(0, ccmd >>> 63, "ICC clears when done");
        assertNotEquals(0, (ccmd >>> 59) & 3, "CAIG reports the granularity performed");
        VtdRig.assertFault(r.translate(S, -1, A, Access.READ), 0x41);
    }

    @Test
    void ccmdGlobal() {
        staleContext(false);
        r.w64(CCMD, 1L << 63 | 1L << 61);
        assertEquals(0, r.reg64(CCMD) >>> 63);
        VtdRig.assertFault(r.translate(S, -1, A, Access.READ), 0x41);
    }

    /** Two functions of one device, both cached, both made not-present in memory. */
    void staleFunctions(boolean queue) {
        staleSecondStage(queue);
        int sibling = S | 3; // 00:02.3
        r.secondStageDevice(sibling, DID, ss);
        assertEquals(PA1, r.read(sibling, A));
        for (int sid : new int[] {S, sibling}) {
            long ce = r.contextEntryAddress(sid);
            r.mem.write64(ce, r.mem.read64(ce) & ~CTX_P);
        }
        assertEquals(PA1, r.read(sibling, A));
    }

    /**
     * §6.5.2.1: a device-selective context-cache invalidation with function mask FM = 3 (SID bits
     * 2:0 masked) invalidates every function of the device.
     */
    @Test
    void deviceSelectiveContextInvalidationHonoursTheFunctionMask() {
        staleFunctions(true);
        r.submit(contextCacheDesc(3, 0, S, 3));
        r.sync();
        VtdRig.assertFault(r.translate(S, -1, A, Access.READ), 0x41);
        VtdRig.assertFault(r.translate(S | 3, -1, A, Access.READ), 0x41);
    }

    /** §11.4.7 CCMD.FM (bits 33:32), as for the descriptor. */
    @Test
    void ccmdDeviceSelectiveHonoursTheFunctionMask() {
        staleFunctions(false);
        r.w64(CCMD, 1L << 63 | 3L << 61 | 3L << 32 | (long) S << 16);
        VtdRig.assertFault(r.translate(S, -1, A, Access.READ), 0x41);
        VtdRig.assertFault(r.translate(S | 3, -1, A, Access.READ), 0x41);
    }

    // ---- accessed/dirty flags and the IOTLB ----

    /**
     * First-stage accessed/dirty flags (VT-d §3.6, which follows Intel SDM Vol. 3A §4.8): the first
     * write through a translation sets the dirty flag of its leaf, also when the translation was
     * cached by an earlier read while D was clear.
     */
    @Test
    void firstWriteAfterACachedReadSetsTheFirstStageDirtyFlag() {
        r = new VtdRig();
        PageTables fs = r.firstStage(4);
        long leaf = fs.map(A, PA1, 1, FL_P | FL_RW | FL_US); // A and D clear
        r.smContext(S2, 0, 0, CTX_PASIDE);
        r.pasidEntry(S2, 5, pe0(PGTT_FS, 0, 0), 3, pe2(fs.root, 0));
        r.enable();
        assertEquals(PA1, r.pa(S2, 5, A, Access.READ));
        assertEquals(FL_A, r.mem.read64(leaf) & (FL_A | FL_D), "a read sets A only");
        assertEquals(PA1, r.pa(S2, 5, A, Access.WRITE));
        assertEquals(FL_A | FL_D, r.mem.read64(leaf) & (FL_A | FL_D), "the write must set D");
    }

    /** Second-stage accessed/dirty flags (PASID entry SLADE, ECAP.SLADS): the same for the second-stage D. */
    @Test
    void firstWriteAfterACachedReadSetsTheSecondStageDirtyFlag() {
        r = new VtdRig();
        ss = r.secondStage(2);
        long leaf = ss.map(A, PA1); // R/W, A and D clear
        r.smContext(S, 0, 0, 0);
        r.pasidEntry(S, 0, pe0(PGTT_SS, 2, ss.root) | PE_SLADE, DID, 0);
        r.enable();
        assertEquals(PA1, r.read(S, A));
        assertEquals(SL_A, r.mem.read64(leaf) & (SL_A | SL_D), "a read sets A only");
        assertEquals(PA1, r.pa(S, -1, A, Access.WRITE));
        assertEquals(SL_A | SL_D, r.mem.read64(leaf) & (SL_A | SL_D), "the write must set D");
    }

    @Test
    void writeWalkSetsDirtyFlags() {
        r = new VtdRig();
        PageTables fs = r.firstStage(4);
        long leaf = fs.map(A, PA1, 1, FL_P | FL_RW | FL_US);
        r.smContext(S2, 0, 0, CTX_PASIDE);
        r.pasidEntry(S2, 5, pe0(PGTT_FS, 0, 0), 3, pe2(fs.root, 0));
        r.enable();
        assertEquals(PA1, r.pa(S2, 5, A, Access.WRITE));
        assertEquals(FL_A | FL_D, r.mem.read64(leaf) & (FL_A | FL_D), "a write walk sets A and D");
    }
}
