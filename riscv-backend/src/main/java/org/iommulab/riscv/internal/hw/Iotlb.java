package org.iommulab.riscv.internal.hw;

import java.util.concurrent.atomic.AtomicLongArray;

import org.iommulab.pgtable.tlb.Tlb;
import org.iommulab.pgtable.tlb.TlbHit;

/**
 * The IOMMU address-translation cache (IOATC, spec "Caching in-memory data structures"):
 * leaf translations from the IOVA straight to the supervisor physical address, both stages
 * combined, tagged as the spec's table "Identifiers used to tag IOATC entries" says:
 * <ul>
 * <li>tag1: the GSCID when the G-stage is active, else {@link #HOST} (host address spaces,
 * G-stage Bare);</li>
 * <li>tag2: the PSCID when the first stage is active, else {@link #NO_PSCID} (first stage Bare:
 * the entry is a G-stage translation of a GPA).</li>
 * </ul>
 * With both stages Bare nothing is cached (identity). The IOTINVAL forms (§3.1.1, tables
 * "IOTINVAL.VMA operands and operations" and "IOTINVAL.GVMA operands and operations") map onto
 * the pgtable {@link Tlb} as documented on {@link #invalidateVma} and {@link #invalidateGvma}.
 * Global (G = 1) mappings are not told apart: an invalidation "except for entries containing
 * global mappings" drops them too (over-invalidation is always allowed: "entries may generally be
 * invalidated from the address translation cache at any time").
 *
 * <p>Thread safe: lookups run concurrently with invalidations (the Tlb's optimistic reads).
 */
final class Iotlb {
    /** tag1 of host (G-stage Bare) translations: beyond every 16-bit GSCID. */
    static final long HOST = 1L << 16;
    /** tag2 of G-stage-only translations: beyond every 20-bit PSCID. */
    static final long NO_PSCID = 1L << 20;
    /** Attribute of an entry filled by a write (the D bits are set), else {@link #CLEAN}. */
    static final long DIRTY = 1;
    static final long CLEAN = 0;
    private static final long PAGE = 4096;

    final Tlb tlb;
    /**
     * GSCIDs that ever held a nested (first stage + G-stage) entry, one bit each. Such entries do
     * not record the GPA, so an address-selective IOTINVAL.GVMA must drop all of their GSCID (the
     * spec's note allows it). Bits are set before the entry is inserted and never cleared, so a
     * GVMA that reads a clear bit knows no nested entry of that GSCID can be cached.
     */
    private final AtomicLongArray nestedGscids = new AtomicLongArray(1 << 10);

    Iotlb(int capacity) {
        this.tlb = new Tlb("riscv-iotlb", capacity);
    }

    boolean lookup(long tag1, long tag2, long address, TlbHit out) {
        return tlb.lookup(tag1, tag2, address, true, out);
    }

    long generation() {
        return tlb.generation();
    }

    /**
     * Caches a walk's result unless an invalidation ran since {@code generation}.
     *
     * @param nested the entry combines an active first stage with an active G-stage
     */
    void insert(long generation, long tag1, long tag2, long address, int pageShift, long output, int perms,
            boolean dirty, boolean nested) {
        if (nested) {
            int g = (int) tag1;
            long bit = 1L << (g & 63);
            long w;
            while (((w = nestedGscids.get(g >>> 6)) & bit) == 0 && !nestedGscids.compareAndSet(g >>> 6, w, w | bit)) {
                Thread.onSpinWait();
            }
        }
        tlb.insertIfUnchanged(generation, tag1, tag2, address, pageShift, output, perms, dirty ? DIRTY : CLEAN, true);
    }

    /**
     * IOTINVAL.VMA (§3.1.1):
     * <ul>
     * <li>GV 0, AV 0, PSCV 0: every host entry (tag1 HOST);</li>
     * <li>GV 0, AV 0, PSCV 1: the host space of PSCID;</li>
     * <li>GV 0, AV 1, PSCV 0: the page of ADDR in every host space;</li>
     * <li>GV 0, AV 1, PSCV 1: the page of ADDR in the host space of PSCID;</li>
     * <li>GV 1: the same within the VM of GSCID instead of the host.</li>
     * </ul>
     */
    void invalidateVma(boolean gv, int gscid, boolean pscv, int pscid, boolean av, long address) {
        long tag1 = gv ? gscid : HOST;
        if (!av) {
            if (pscv) {
                tlb.invalidateTag(tag1, pscid);
            } else {
                tlb.invalidateTag1(tag1);
            }
        } else if (pscv) {
            tlb.invalidateRange(tag1, pscid, address, PAGE, true);
        } else {
            tlb.invalidateRangeAnyTag2(tag1, address, PAGE, true);
        }
    }

    /**
     * IOTINVAL.GVMA (§3.1.1): GV 0 drops every entry (all VM address spaces; host entries go too,
     * which the note "simpler implementations may ... perform a global invalidation" allows);
     * GV 1 AV 0 every entry of the GSCID; GV 1 AV 1 the G-stage-only entries of the GPA's page, and
     * every entry of the GSCID if it ever cached nested translations (they are not tagged with the
     * GPA, see the note after the GVMA table).
     */
    void invalidateGvma(boolean gv, int gscid, boolean av, long address) {
        if (!gv) {
            tlb.invalidateAll();
        } else if (!av || (nestedGscids.get(gscid >>> 6) & (1L << (gscid & 63))) != 0) {
            tlb.invalidateTag1(gscid);
        } else {
            tlb.invalidateRange(gscid, NO_PSCID, address, PAGE, true);
        }
    }

    void invalidateAll() {
        tlb.invalidateAll();
    }
}
