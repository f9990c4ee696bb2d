package org.iommulab.sva.internal;

import org.iommulab.api.errno.Errno;
import org.iommulab.api.errno.IommuException;
import org.iommulab.api.nesting.NestingInfo;
import org.iommulab.pgtable.PageTableFormat;
import org.iommulab.pgtable.format.ArmGranule;
import org.iommulab.pgtable.format.ArmStage1;
import org.iommulab.pgtable.format.RiscvPaging;
import org.iommulab.pgtable.format.X86FirstStage;

/**
 * The CPU page-table format of the host an IOMMU belongs to, which a process's address space is
 * built in for SVA: x86-64 4-level paging with user pages for VT-d, VMSAv8-64 stage 1 with a 4 KiB
 * granule and a 48-bit input for SMMUv3, Sv48 with user pages for the RISC-V IOMMU. Every format
 * takes 48-bit input addresses ({@link #INPUT_BITS}), which cover the process's user half.
 */
final class HostFormat {
    /** The input width every host format here walks, as {@code bindFirstStage} takes it. */
    static final int INPUT_BITS = 48;
    /** The RISC-V IOMMU's nesting format id (its backend's {@code RiscvDriver.FORMAT}). */
    static final String FORMAT_RISCV_IOMMU = "riscv-iommu";

    /** The format's id and the format. */
    record Choice(String id, PageTableFormat format) {
    }

    private HostFormat() {
    }

    /**
     * @param info what the IOMMU reports, not {@code null}
     * @return the host format for it
     * @throws IommuException {@code EOPNOTSUPP} for a host architecture this service does not know
     */
    static Choice of(NestingInfo info) throws IommuException {
        String id = info.format();
        PageTableFormat format = switch (id) {
            case NestingInfo.FORMAT_INTEL_VTD -> X86FirstStage.of(4, INPUT_BITS, false, true, true);
            case NestingInfo.FORMAT_ARM_SMMUV3 -> ArmStage1.of(ArmGranule.G4K, 64 - INPUT_BITS, 48, false, false, false);
            case FORMAT_RISCV_IOMMU -> RiscvPaging.firstStage(RiscvPaging.Mode.SV48, 52, true, false, true);
            default -> throw new IommuException(Errno.EOPNOTSUPP, "no host page-table format for IOMMUs of format '" + id + "'");
        };
        return new Choice(id, format);
    }
}
