package org.iommulab.riscv.internal.spec;

import org.iommulab.pgtable.format.RiscvPaging;

/**
 * The device-context (DC) and the device-directory table (DDT) that holds it (RISC-V IOMMU spec
 * 1.0, §2.1 "Device-Directory-Table"). This model implements the base format: capabilities.MSI_FLAT
 * is 0, so a DC is 32 bytes, four doublewords in this order: {@code tc}, {@code iohgatp},
 * {@code ta}, {@code fsc}. Device ids split into DDI[0] = bits 6:0 (128 DCs per 4 KiB leaf page),
 * DDI[1] = bits 15:7 and DDI[2] = bits 23:16 (512 and 256 non-leaf entries of 8 bytes).
 */
public final class DeviceContext {
    private DeviceContext() {
    }

    /** Size of a base-format DC in bytes. */
    public static final int SIZE = 32;
    /** Byte offsets of the doublewords in a DC. */
    public static final int TC = 0;
    public static final int IOHGATP = 8;
    public static final int TA = 16;
    public static final int FSC = 24;

    // ---- non-leaf DDT entry (§2.1.1): V 0, reserved 9:1, PPN 53:10, reserved 63:54 ----------

    public static final long DDTE_V = 1;
    /** Bits a non-leaf DDT entry must keep zero. */
    public static final long DDTE_RESERVED = ~(Reg.PPN_MASK | DDTE_V);

    // ---- tc (§2.1.3.1) --------------------------------------------------------------------------

    public static final long TC_V = 1;
    public static final long TC_EN_ATS = 1L << 1;
    public static final long TC_EN_PRI = 1L << 2;
    public static final long TC_T2GPA = 1L << 3;
    /** Disable translation fault reporting. */
    public static final long TC_DTF = 1L << 4;
    /** fsc holds a process-directory-table pointer (pdtp), not iosatp. */
    public static final long TC_PDTV = 1L << 5;
    /** IOMMU-generated page-request group responses carry the PASID. */
    public static final long TC_PRPR = 1L << 6;
    /** Hardware updates A/D bits in G-stage PTEs. */
    public static final long TC_GADE = 1L << 7;
    /** Hardware updates A/D bits in first-stage PTEs. */
    public static final long TC_SADE = 1L << 8;
    /** process_id 0 is the default for requests without one (only with PDTV). */
    public static final long TC_DPE = 1L << 9;
    /** Big-endian first-stage and PDT accesses. */
    public static final long TC_SBE = 1L << 10;
    /** 32-bit first stage (Sv32). */
    public static final long TC_SXL = 1L << 11;
    /** Bits 23:12 and 63:32 are reserved; 31:24 are for custom use (this model defines none). */
    public static final long TC_RESERVED = ~0xfffL;

    // ---- iohgatp (§2.1.3.2): PPN 43:0, GSCID 59:44, MODE 63:60 ---------------------------------

    public static final long ATP_PPN_MASK = (1L << 44) - 1;
    public static final int IOHGATP_GSCID_SHIFT = 44;
    public static final long IOHGATP_GSCID_MASK = 0xffffL << IOHGATP_GSCID_SHIFT;
    public static final int ATP_MODE_SHIFT = 60;
    /** iohgatp.MODE and iosatp.MODE encodings (fctl.GXL / DC.tc.SXL = 0). */
    public static final int ATP_BARE = 0;
    public static final int ATP_SV39 = 8;
    public static final int ATP_SV48 = 9;
    public static final int ATP_SV57 = 10;

    /** An iohgatp value: a G-stage table of {@code mode} (ATP_SV39 for Sv39x4, ...) at {@code root}. */
    public static long iohgatp(int mode, int gscid, long root) {
        return (long) mode << ATP_MODE_SHIFT | (long) gscid << IOHGATP_GSCID_SHIFT | root >>> 12;
    }

    /** An iosatp (or PC.fsc) value: a first-stage table of {@code mode} at {@code root}. */
    public static long iosatp(int mode, long root) {
        return (long) mode << ATP_MODE_SHIFT | root >>> 12;
    }

    /** @return the MODE field of an iohgatp, iosatp or pdtp */
    public static int atpMode(long atp) {
        return (int) (atp >>> ATP_MODE_SHIFT);
    }

    /** @return the address the PPN field of an iohgatp, iosatp or pdtp points at */
    public static long atpRoot(long atp) {
        return (atp & ATP_PPN_MASK) << 12;
    }

    /**
     * @param atpMode an iosatp or iohgatp MODE: Sv39 (Sv39x4), Sv48 (Sv48x4) or Sv57 (Sv57x4)
     * @return the paging mode of that table (privileged ISA §4.4-§4.6, §9.5); Sv57 for any other MODE
     */
    public static RiscvPaging.Mode pagingMode(int atpMode) {
        return switch (atpMode) {
            case ATP_SV39 -> RiscvPaging.Mode.SV39;
            case ATP_SV48 -> RiscvPaging.Mode.SV48;
            default -> RiscvPaging.Mode.SV57;
        };
    }

    /** @return the number of page-table levels of an iosatp/iohgatp MODE (Sv39 3, Sv48 4, Sv57 5), else 0 */
    public static int atpLevels(int atpMode) {
        return switch (atpMode) {
            case ATP_SV39 -> 3;
            case ATP_SV48 -> 4;
            case ATP_SV57 -> 5;
            default -> 0;
        };
    }

    /** @return iohgatp.GSCID */
    public static int gscid(long iohgatp) {
        return (int) ((iohgatp & IOHGATP_GSCID_MASK) >>> IOHGATP_GSCID_SHIFT);
    }

    // ---- ta (§2.1.3.3): reserved 11:0, PSCID 31:12, reserved 63:32 ---------------------------

    public static final int TA_PSCID_SHIFT = 12;
    public static final long TA_PSCID_MASK = 0xfffffL << TA_PSCID_SHIFT;
    public static final long DC_TA_RESERVED = ~TA_PSCID_MASK;

    // ---- fsc (§2.1.3.4): iosatp when PDTV = 0, pdtp when PDTV = 1; reserved 59:44 ------------

    /** pdtp.MODE encodings. */
    public static final int PDTP_BARE = 0;
    public static final int PDTP_PD8 = 1;
    public static final int PDTP_PD17 = 2;
    public static final int PDTP_PD20 = 3;
    /** Bits 59:44 of iosatp and pdtp are reserved. */
    public static final long FSC_RESERVED = 0xffffL << 44;

    /** A pdtp value: a process-directory table of {@code mode} (PDTP_PD8 ...) at {@code root}. */
    public static long pdtp(int mode, long root) {
        return (long) mode << ATP_MODE_SHIFT | root >>> 12;
    }

    // ---- device-directory index (§2.3 steps 3 and 5) -----------------------------------------

    /** @return DDI[level] of a device id in the base format */
    public static int ddi(int deviceId, int level) {
        return switch (level) {
            case 0 -> deviceId & 0x7f;
            case 1 -> (deviceId >>> 7) & 0x1ff;
            default -> (deviceId >>> 16) & 0xff;
        };
    }

    /** @return the number of DDT levels of a ddtp.iommu_mode (1LVL to 3LVL), else 0 */
    public static int levels(int iommuMode) {
        return switch (iommuMode) {
            case Reg.MODE_1LVL -> 1;
            case Reg.MODE_2LVL -> 2;
            case Reg.MODE_3LVL -> 3;
            default -> 0;
        };
    }

    /** @return the widest device id (in bits) a DDT of {@code levels} levels indexes */
    public static int deviceIdBits(int levels) {
        return switch (levels) {
            case 1 -> 7;
            case 2 -> 16;
            default -> 24;
        };
    }
}
