package org.iommulab.vfio.internal;

import java.util.ArrayList;
import java.util.List;

import org.iommulab.api.spi.ReservedRegion;
import org.iommulab.api.vfio.IovaRange;

/**
 * The usable IOVA ranges of a container (Linux {@code iova_list}): the intersection of every
 * domain's aperture, minus every reserved region of every attached requester. All addresses are
 * unsigned; ranges are inclusive and kept ascending and disjoint.
 */
final class IovaSpace {
    private IovaSpace() {
    }

    /**
     * @param apertureBits the smallest input address width of the domains
     * @param reserved reserved regions, any order, may overlap
     * @return the usable ranges, ascending
     */
    static List<IovaRange> usable(int apertureBits, List<ReservedRegion> reserved) {
        long top = apertureBits >= 64 ? -1L : (1L << apertureBits) - 1;
        List<IovaRange> ranges = new ArrayList<>();
        ranges.add(new IovaRange(0, top));
        for (ReservedRegion r : reserved) {
            List<IovaRange> next = new ArrayList<>();
            for (IovaRange range : ranges) {
                if (Long.compareUnsigned(r.end(), range.start()) < 0 || Long.compareUnsigned(r.start(), range.end()) > 0) {
                    next.add(range);
                    continue;
                }
                if (Long.compareUnsigned(r.start(), range.start()) > 0) {
                    next.add(new IovaRange(range.start(), r.start() - 1));
                }
                if (Long.compareUnsigned(r.end(), range.end()) < 0) {
                    next.add(new IovaRange(r.end() + 1, range.end()));
                }
            }
            ranges = next;
        }
        return ranges;
    }

    /**
     * @param ranges usable ranges
     * @param first first address
     * @param last last address, inclusive, not below {@code first}
     * @return {@code true} if one usable range holds all of {@code [first, last]}
     */
    static boolean fits(List<IovaRange> ranges, long first, long last) {
        for (IovaRange range : ranges) {
            if (range.contains(first)) {
                return range.contains(last);
            }
        }
        return false;
    }
}
