package org.iommulab.vfio.internal;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;

import org.iommulab.api.spi.ReservedRegion;
import org.iommulab.api.spi.ReservedRegion.Kind;
import org.iommulab.api.vfio.IovaRange;
import org.junit.jupiter.api.Test;

class IovaSpaceTest {

    @Test
    void reservedRegionsAreCutOutOfTheAperture() {
        List<IovaRange> ranges = IovaSpace.usable(48, List.of(
                new ReservedRegion(0xfee0_0000L, 0x10_0000, Kind.MSI),
                new ReservedRegion(0, 0x1000, Kind.RESERVED),
                new ReservedRegion(0xfef0_0000L - 0x1000, 0x2000, Kind.DIRECT), // overlaps the MSI window's end
                new ReservedRegion(1L << 50, 0x1000, Kind.RESERVED)));          // beyond the aperture
        assertEquals(List.of(new IovaRange(0x1000, 0xfedf_ffffL), new IovaRange(0xfef0_1000L, (1L << 48) - 1)), ranges);
    }

    @Test
    void a64BitApertureReachesTheTopAndFitsNeedsOneRange() {
        List<IovaRange> ranges = IovaSpace.usable(64, List.of(new ReservedRegion(-0x1000L, 0x1000, Kind.RESERVED)));
        assertEquals(List.of(new IovaRange(0, -0x1001L)), ranges);
        assertTrue(IovaSpace.fits(ranges, 0x8000_0000_0000_0000L, -0x1001L), "unsigned compare");
        assertFalse(IovaSpace.fits(ranges, -0x2000L, -0x1L));
        List<IovaRange> split = IovaSpace.usable(32, List.of(new ReservedRegion(0x1000, 0x1000, Kind.MSI)));
        assertFalse(IovaSpace.fits(split, 0, 0x2fff), "a mapping may not straddle a reserved region");
        assertTrue(IovaSpace.fits(split, 0x2000, 0xffff_ffffL));
    }
}
