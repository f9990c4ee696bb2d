package org.iommulab.api.invalidation;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.EnumSet;
import java.util.HashSet;
import java.util.Set;

import org.iommulab.api.errno.Errno;
import org.iommulab.api.errno.IommuException;
import org.iommulab.api.pasid.Pasids;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.function.Executable;

class CacheInvalidationTest {
    private static final long G4K = 4096;

    private static IommuException invalid(Executable call) {
        IommuException e = assertThrows(IommuException.class, call);
        assertEquals(Errno.EINVAL, e.errno(), e.toString());
        return e;
    }

    private static CacheInvalidation build(Granularity granularity, Set<CacheType> caches) throws IommuException {
        switch (granularity) {
            case DOMAIN:
                return CacheInvalidation.domain(caches);
            case PASID:
                return CacheInvalidation.pasid(caches, 5, -1);
            default:
                return CacheInvalidation.range(caches, 5, -1, 0x10000, G4K, 1, false);
        }
    }

    private static boolean valid(CacheType type, Granularity granularity) {
        return !(type == CacheType.DEV_IOTLB && granularity == Granularity.DOMAIN
                || type == CacheType.PASID && granularity == Granularity.ADDR);
    }

    @Test
    void theCacheTypeByGranularityMatrix() throws IommuException {
        for (Granularity g : Granularity.values()) {
            for (CacheType t : CacheType.values()) {
                if (valid(t, g)) {
                    CacheInvalidation inv = build(g, EnumSet.of(t));
                    assertEquals(g, inv.granularity());
                    assertEquals(Set.of(t), inv.caches());
                } else {
                    invalid(() -> build(g, EnumSet.of(t)));
                }
            }
        }
    }

    @Test
    void anInvalidTypeSpoilsACombinedSet() throws IommuException {
        invalid(() -> CacheInvalidation.domain(EnumSet.of(CacheType.IOTLB, CacheType.DEV_IOTLB)));
        invalid(() -> CacheInvalidation.range(EnumSet.of(CacheType.IOTLB, CacheType.PASID), 1, -1, 0, G4K, 1, false));
        assertEquals(EnumSet.allOf(CacheType.class), CacheInvalidation.pasid(EnumSet.allOf(CacheType.class), 1, -1).caches());
        assertEquals(EnumSet.of(CacheType.IOTLB, CacheType.PASID),
                CacheInvalidation.domain(EnumSet.of(CacheType.IOTLB, CacheType.PASID)).caches());
        assertEquals(EnumSet.of(CacheType.IOTLB, CacheType.DEV_IOTLB),
                CacheInvalidation.range(EnumSet.of(CacheType.IOTLB, CacheType.DEV_IOTLB), 1, -1, 0, G4K, 1, false).caches());
    }

    @Test
    void emptyOrNullCachesAreEinval() {
        for (Granularity g : Granularity.values()) {
            invalid(() -> build(g, EnumSet.noneOf(CacheType.class)));
            invalid(() -> build(g, null));
        }
    }

    @Test
    void pasidOutOfRangeIsEinval() throws IommuException {
        Set<CacheType> iotlb = EnumSet.of(CacheType.IOTLB);
        invalid(() -> CacheInvalidation.pasid(iotlb, -1, -1));
        invalid(() -> CacheInvalidation.pasid(iotlb, Pasids.MAX_PASID + 1, -1));
        invalid(() -> CacheInvalidation.pasid(iotlb, Integer.MIN_VALUE, -1));
        invalid(() -> CacheInvalidation.range(iotlb, -2, -1, 0, G4K, 1, false));
        invalid(() -> CacheInvalidation.range(iotlb, Pasids.MAX_PASID + 1, -1, 0, G4K, 1, false));
        assertEquals(0, CacheInvalidation.pasid(iotlb, 0, -1).pasid());
        assertEquals(Pasids.MAX_PASID, CacheInvalidation.pasid(iotlb, Pasids.MAX_PASID, -1).pasid());
        assertEquals(Pasids.NO_PASID, CacheInvalidation.range(iotlb, Pasids.NO_PASID, -1, 0, G4K, 1, false).pasid());
    }

    @Test
    void negativeArchIdIsEinval() throws IommuException {
        Set<CacheType> iotlb = EnumSet.of(CacheType.IOTLB);
        invalid(() -> CacheInvalidation.pasid(iotlb, 1, -2));
        invalid(() -> CacheInvalidation.range(iotlb, 1, Long.MIN_VALUE, 0, G4K, 1, false));
        assertEquals(65535, CacheInvalidation.pasid(iotlb, 1, 65535).archId());
    }

    @Test
    void granuleSizeMustBeAPowerOfTwoOfAtLeast4K() throws IommuException {
        Set<CacheType> iotlb = EnumSet.of(CacheType.IOTLB);
        for (long bad : new long[] {0, 1, 2048, 4095, 4097, 12288, 3 * G4K, -4096, Long.MIN_VALUE}) {
            invalid(() -> CacheInvalidation.range(iotlb, Pasids.NO_PASID, -1, 0, bad, 1, false));
        }
        for (long good : new long[] {G4K, 1L << 16, 1L << 21, 1L << 30, 1L << 62}) {
            assertEquals(good, CacheInvalidation.range(iotlb, Pasids.NO_PASID, -1, 0, good, 1, false).granuleSize());
        }
    }

    @Test
    void addressMustBeAlignedToTheGranule() throws IommuException {
        Set<CacheType> iotlb = EnumSet.of(CacheType.IOTLB);
        invalid(() -> CacheInvalidation.range(iotlb, 1, -1, 0x1001, G4K, 1, false));
        invalid(() -> CacheInvalidation.range(iotlb, 1, -1, 0x1000, 1L << 21, 1, false));
        invalid(() -> CacheInvalidation.range(iotlb, 1, -1, 0x20_0800, 1L << 21, 1, false));
        assertEquals(0x20_0000, CacheInvalidation.range(iotlb, 1, -1, 0x20_0000, 1L << 21, 1, false).address());
    }

    @Test
    void granuleCountMustBe1To2Pow32() throws IommuException {
        Set<CacheType> iotlb = EnumSet.of(CacheType.IOTLB);
        invalid(() -> CacheInvalidation.range(iotlb, 1, -1, 0, G4K, 0, false));
        invalid(() -> CacheInvalidation.range(iotlb, 1, -1, 0, G4K, -1, false));
        invalid(() -> CacheInvalidation.range(iotlb, 1, -1, 0, G4K, (1L << 32) + 1, false));
        invalid(() -> CacheInvalidation.range(iotlb, 1, -1, 0, G4K, Long.MAX_VALUE, false));
        CacheInvalidation max = CacheInvalidation.range(iotlb, 1, -1, 0, G4K, 1L << 32, false);
        assertEquals(CacheInvalidation.MAX_GRANULES, max.granules());
        assertEquals(1L << 44, max.size());
    }

    @Test
    void rangesThatWrapAroundAreEinval() throws IommuException {
        Set<CacheType> iotlb = EnumSet.of(CacheType.IOTLB);
        // the last granule of the address space is fine
        CacheInvalidation last = CacheInvalidation.range(iotlb, 1, -1, -G4K, G4K, 1, false);
        assertEquals(-G4K, last.address());
        // the last 2^32 granules end exactly at 2^64 - 1
        long top = -(G4K << 32);
        assertEquals(top, CacheInvalidation.range(iotlb, 1, -1, top, G4K, 1L << 32, false).address());
        // one granule more wraps
        invalid(() -> CacheInvalidation.range(iotlb, 1, -1, -G4K, G4K, 2, false));
        invalid(() -> CacheInvalidation.range(iotlb, 1, -1, top + G4K, G4K, 1L << 32, false));
        invalid(() -> CacheInvalidation.range(iotlb, 1, -1, 1L << 63, 1L << 62, 3, false));
        // a range whose size alone exceeds 64 bits
        invalid(() -> CacheInvalidation.range(iotlb, 1, -1, 0, 1L << 40, 1L << 32, false));
        // exactly the upper half is fine
        CacheInvalidation half = CacheInvalidation.range(iotlb, 1, -1, 1L << 63, 1L << 62, 2, false);
        assertEquals(1L << 63, half.size());
    }

    @Test
    void sizeIsGranulesTimesGranuleSize() throws IommuException {
        Set<CacheType> iotlb = EnumSet.of(CacheType.IOTLB);
        assertEquals(3 * G4K, CacheInvalidation.range(iotlb, 1, -1, 0x3000, G4K, 3, false).size());
        assertEquals(5L << 21, CacheInvalidation.range(iotlb, 1, -1, 0x4000_0000, 1L << 21, 5, true).size());
        assertEquals(0, CacheInvalidation.domain(iotlb).size());
        assertEquals(0, CacheInvalidation.pasid(iotlb, 3, -1).size());
    }

    @Test
    void accessorsOfADomainRequest() throws IommuException {
        CacheInvalidation inv = CacheInvalidation.domain(EnumSet.of(CacheType.IOTLB, CacheType.PASID));
        assertEquals(Granularity.DOMAIN, inv.granularity());
        assertEquals(Pasids.NO_PASID, inv.pasid());
        assertEquals(-1, inv.archId());
        assertEquals(0, inv.address());
        assertEquals(0, inv.granuleSize());
        assertEquals(0, inv.granules());
        assertFalse(inv.leaf());
        assertEquals("[IOTLB, PASID] DOMAIN", inv.toString());
    }

    @Test
    void accessorsOfAPasidRequest() throws IommuException {
        CacheInvalidation inv = CacheInvalidation.pasid(EnumSet.of(CacheType.DEV_IOTLB), 77, 9);
        assertEquals(Granularity.PASID, inv.granularity());
        assertEquals(77, inv.pasid());
        assertEquals(9, inv.archId());
        assertEquals(0, inv.address());
        assertEquals(0, inv.granules());
        assertFalse(inv.leaf());
        assertEquals("[DEV_IOTLB] PASID pasid=77 archid=9", inv.toString());
    }

    @Test
    void accessorsOfARangeRequest() throws IommuException {
        CacheInvalidation inv = CacheInvalidation.range(EnumSet.of(CacheType.IOTLB, CacheType.DEV_IOTLB), 12, 3,
                0x7f00_0000_0000L, 1L << 21, 16, true);
        assertEquals(Granularity.ADDR, inv.granularity());
        assertEquals(12, inv.pasid());
        assertEquals(3, inv.archId());
        assertEquals(0x7f00_0000_0000L, inv.address());
        assertEquals(1L << 21, inv.granuleSize());
        assertEquals(16, inv.granules());
        assertEquals(16L << 21, inv.size());
        assertTrue(inv.leaf());
        assertEquals("[IOTLB, DEV_IOTLB] ADDR pasid=12 archid=3 addr=0x7f0000000000 granule=0x200000 n=16 leaf",
                inv.toString());
        CacheInvalidation noPasid = CacheInvalidation.range(EnumSet.of(CacheType.IOTLB), Pasids.NO_PASID, -1,
                0x1000, G4K, 1, false);
        assertEquals("[IOTLB] ADDR addr=0x1000 granule=0x1000 n=1", noPasid.toString());
    }

    @Test
    void cachesAreACopyAndUnmodifiable() throws IommuException {
        Set<CacheType> mine = new HashSet<>(Set.of(CacheType.IOTLB));
        CacheInvalidation inv = CacheInvalidation.domain(mine);
        mine.add(CacheType.PASID);
        assertEquals(Set.of(CacheType.IOTLB), inv.caches());
        assertThrows(UnsupportedOperationException.class, () -> inv.caches().add(CacheType.PASID));
    }
}
