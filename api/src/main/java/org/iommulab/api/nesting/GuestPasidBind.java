package org.iommulab.api.nesting;

import java.util.Objects;

/**
 * Bind a guest's first-stage page table to a host PASID (Linux {@code iommu_gpasid_bind_data},
 * VT-d format). The host writes a nested PASID entry for {@code hostPasid}: first-stage pointer
 * {@code guestPgd} (a guest physical address), second stage the VM's domain. Immutable.
 *
 * @param format {@link NestingInfo#FORMAT_INTEL_VTD}, never {@code null}
 * @param hostPasid the host PASID, which must belong to the caller's PASID set
 * @param guestPasid the guest's PASID, meaningful when {@code guestPasidValid}
 * @param guestPasidValid {@code true} if {@code guestPasid} is given ({@code IOMMU_SVA_GPASID_VAL})
 * @param guestPgd guest physical address of the first-stage root table (CR3), 4 KiB aligned
 * @param addressWidth the guest's virtual address width: 48 (4-level) or 57 (5-level)
 * @param vtdFlags {@code IOMMU_SVA_VTD_GPASID_*} bits, see the {@code VTD_*} constants
 * @param pat page attribute table, meaningful with {@link #VTD_EMTE}
 * @param emt extended memory type, meaningful with {@link #VTD_EMTE}
 */
public record GuestPasidBind(String format, int hostPasid, int guestPasid, boolean guestPasidValid,
        long guestPgd, int addressWidth, int vtdFlags, int pat, int emt) {

    /** Supervisor requests are allowed (PASID entry SRE). */
    public static final int VTD_SRE = 1;
    /** Extended access flag enable (EAFE). */
    public static final int VTD_EAFE = 1 << 1;
    /** Page-level cache disable for the first-stage root (PCD). */
    public static final int VTD_PCD = 1 << 2;
    /** Page-level write through for the first-stage root (PWT). */
    public static final int VTD_PWT = 1 << 3;
    /** Extended memory type enable (EMTE). */
    public static final int VTD_EMTE = 1 << 4;
    /** Cache disable (CD). */
    public static final int VTD_CD = 1 << 5;
    /** Every defined flag; a bind with other bits set is rejected with EINVAL. */
    public static final int VTD_FLAGS_MASK = (1 << 6) - 1;

    /** Validates the components that cannot be null. */
    public GuestPasidBind {
        Objects.requireNonNull(format, "format");
    }
}
