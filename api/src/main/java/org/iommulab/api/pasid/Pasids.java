package org.iommulab.api.pasid;

/**
 * Constants of the PASID space (PCIe PASID, SMMUv3 SubstreamID).
 */
public final class Pasids {
    /** PASIDs are 20 bits wide (VT-d ECAP.PSS = 19, PCIe PASID capability max width 20). */
    public static final int PASID_BITS = 20;
    /** The largest PASID value, 2^20 - 1. */
    public static final int MAX_PASID = (1 << PASID_BITS) - 1;
    /**
     * The reserved PASID 0: requests without a PASID are translated as PASID 0 by convention
     * (VT-d RID_PASID, SMMUv3 SSID 0); it is never handed out.
     */
    public static final int RESERVED_PASID = 0;
    /** Marks a DMA request, fault or invalidation that carries no PASID. */
    public static final int NO_PASID = -1;

    private Pasids() {
    }

    /**
     * @param pasid any value
     * @return {@code true} for a PASID that can be allocated: 1 to {@link #MAX_PASID}
     */
    public static boolean isAllocatable(int pasid) {
        return pasid > RESERVED_PASID && pasid <= MAX_PASID;
    }
}
