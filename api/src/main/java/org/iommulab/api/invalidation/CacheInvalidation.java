package org.iommulab.api.invalidation;

import java.util.Collections;
import java.util.EnumSet;
import java.util.Set;

import org.iommulab.api.errno.Errno;
import org.iommulab.api.errno.IommuException;
import org.iommulab.api.pasid.Pasids;

/**
 * A cache invalidation request passed from a guest down to the host IOMMU (Linux
 * {@code iommu_cache_invalidate_info}). Built only through the factory methods, which reject what
 * the kernel rejects:
 *
 * <table>
 * <caption>Valid cache type x granularity combinations</caption>
 * <tr><th></th><th>DOMAIN</th><th>PASID</th><th>ADDR</th></tr>
 * <tr><td>IOTLB</td><td>yes</td><td>yes</td><td>yes</td></tr>
 * <tr><td>DEV_IOTLB</td><td>no</td><td>yes</td><td>yes</td></tr>
 * <tr><td>PASID</td><td>yes</td><td>yes</td><td>no</td></tr>
 * </table>
 *
 * <p>Immutable and thread safe.
 */
public final class CacheInvalidation {
    /** Largest number of granules one request may name (keeps a range from wrapping). */
    public static final long MAX_GRANULES = 1L << 32;

    private final Set<CacheType> caches;
    private final Granularity granularity;
    private final int pasid;
    private final long archId;
    private final long address;
    private final long granuleSize;
    private final long granules;
    private final boolean leaf;

    private CacheInvalidation(Set<CacheType> caches, Granularity granularity, int pasid, long archId,
            long address, long granuleSize, long granules, boolean leaf) {
        this.caches = Collections.unmodifiableSet(EnumSet.copyOf(caches));
        this.granularity = granularity;
        this.pasid = pasid;
        this.archId = archId;
        this.address = address;
        this.granuleSize = granuleSize;
        this.granules = granules;
        this.leaf = leaf;
    }

    /**
     * Invalidates everything the domain caches in {@code caches}.
     *
     * @param caches non-empty; {@link CacheType#DEV_IOTLB} is not allowed at this granularity
     * @return the request
     * @throws IommuException {@code EINVAL} for an empty or invalid cache set
     */
    public static CacheInvalidation domain(Set<CacheType> caches) throws IommuException {
        check(caches, Granularity.DOMAIN);
        return new CacheInvalidation(caches, Granularity.DOMAIN, Pasids.NO_PASID, -1, 0, 0, 0, false);
    }

    /**
     * Invalidates everything tagged with one PASID.
     *
     * @param caches non-empty
     * @param pasid the PASID, 0 to {@link Pasids#MAX_PASID}
     * @param archId an architecture-specific id (SMMUv3 ASID) or -1 for none
     * @return the request
     * @throws IommuException {@code EINVAL} for an empty cache set or a PASID out of range
     */
    public static CacheInvalidation pasid(Set<CacheType> caches, int pasid, long archId) throws IommuException {
        check(caches, Granularity.PASID);
        checkPasid(pasid, archId);
        return new CacheInvalidation(caches, Granularity.PASID, pasid, archId, 0, 0, 0, false);
    }

    /**
     * Invalidates {@code granules} granules of {@code granuleSize} bytes from {@code address}.
     *
     * @param caches non-empty; {@link CacheType#PASID} is not allowed at this granularity
     * @param pasid the PASID, or {@link Pasids#NO_PASID} for requests without PASID
     * @param archId an architecture-specific id (SMMUv3 ASID) or -1 for none
     * @param address first address, aligned to {@code granuleSize}
     * @param granuleSize a power of two, 4 KiB or more
     * @param granules at least 1, at most {@link #MAX_GRANULES}, and the range must not wrap
     * @param leaf {@code true} if only leaf entries changed (non-leaf caches may be kept)
     * @return the request
     * @throws IommuException {@code EINVAL} for anything malformed
     */
    public static CacheInvalidation range(Set<CacheType> caches, int pasid, long archId, long address,
            long granuleSize, long granules, boolean leaf) throws IommuException {
        check(caches, Granularity.ADDR);
        if (pasid != Pasids.NO_PASID) {
            checkPasid(pasid, archId);
        }
        if (granuleSize < 4096 || Long.bitCount(granuleSize) != 1) {
            throw invalid("granule size must be a power of two of at least 4096, not " + granuleSize);
        }
        if ((address & (granuleSize - 1)) != 0) {
            throw invalid(String.format("address 0x%x is not aligned to the granule size 0x%x", address, granuleSize));
        }
        if (granules < 1 || granules > MAX_GRANULES) {
            throw invalid("number of granules must be 1 to 2^32, not " + granules);
        }
        int shift = Long.numberOfTrailingZeros(granuleSize);
        if (shift + (64 - Long.numberOfLeadingZeros(granules)) > 64
                || Long.compareUnsigned(address + granules * granuleSize - 1, address) < 0) {
            throw invalid(String.format("range 0x%x + %d x 0x%x wraps around", address, granules, granuleSize));
        }
        return new CacheInvalidation(caches, Granularity.ADDR, pasid, archId, address, granuleSize, granules, leaf);
    }

    private static void check(Set<CacheType> caches, Granularity granularity) throws IommuException {
        if (caches == null || caches.isEmpty()) {
            throw invalid("no cache type selected");
        }
        if (granularity == Granularity.DOMAIN && caches.contains(CacheType.DEV_IOTLB)) {
            throw invalid("device-IOTLB invalidation has no domain granularity");
        }
        if (granularity == Granularity.ADDR && caches.contains(CacheType.PASID)) {
            throw invalid("PASID-cache invalidation has no address granularity");
        }
    }

    private static void checkPasid(int pasid, long archId) throws IommuException {
        if (pasid < 0 || pasid > Pasids.MAX_PASID) {
            throw invalid("PASID " + pasid + " is outside 0.." + Pasids.MAX_PASID);
        }
        if (archId < -1) {
            throw invalid("architecture id " + archId + " is negative");
        }
    }

    private static IommuException invalid(String message) {
        return new IommuException(Errno.EINVAL, message);
    }

    /** @return the caches to invalidate, non-empty and unmodifiable */
    public Set<CacheType> caches() {
        return caches;
    }

    /** @return the granularity, never {@code null} */
    public Granularity granularity() {
        return granularity;
    }

    /** @return the PASID, or {@link Pasids#NO_PASID} */
    public int pasid() {
        return pasid;
    }

    /** @return the architecture id (SMMUv3 ASID), or -1 */
    public long archId() {
        return archId;
    }

    /** @return the first address of an {@link Granularity#ADDR} request, in bytes; 0 otherwise */
    public long address() {
        return address;
    }

    /** @return the granule size in bytes of an {@link Granularity#ADDR} request; 0 otherwise */
    public long granuleSize() {
        return granuleSize;
    }

    /** @return the number of granules of an {@link Granularity#ADDR} request; 0 otherwise */
    public long granules() {
        return granules;
    }

    /** @return the size of an {@link Granularity#ADDR} request's range in bytes; 0 otherwise */
    public long size() {
        return granules * granuleSize;
    }

    /** @return {@code true} if only leaf entries need invalidating */
    public boolean leaf() {
        return leaf;
    }

    @Override
    public String toString() {
        StringBuilder b = new StringBuilder().append(caches).append(' ').append(granularity);
        if (pasid != Pasids.NO_PASID) {
            b.append(" pasid=").append(pasid);
        }
        if (archId >= 0) {
            b.append(" archid=").append(archId);
        }
        if (granularity == Granularity.ADDR) {
            b.append(String.format(" addr=0x%x granule=0x%x n=%d%s", address, granuleSize, granules, leaf ? " leaf" : ""));
        }
        return b.toString();
    }
}
