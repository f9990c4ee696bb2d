package org.iommulab.vtd.internal.hw;

/**
 * Register offsets and fields of a VT-d remapping unit (VT-d spec §11.4, "Register Descriptions";
 * offsets as in Linux {@code include/linux/intel-iommu.h} and QEMU {@code intel_iommu_internal.h}).
 */
final class VtdReg {
    static final int VER = 0x00;
    static final int CAP = 0x08;
    static final int ECAP = 0x10;
    static final int GCMD = 0x18;
    static final int GSTS = 0x1c;
    static final int RTADDR = 0x20;
    static final int CCMD = 0x28;
    static final int FSTS = 0x34;
    static final int FECTL = 0x38;
    static final int FEDATA = 0x3c;
    static final int FEADDR = 0x40;
    static final int FEUADDR = 0x44;
    static final int IQH = 0x80;
    static final int IQT = 0x88;
    static final int IQA = 0x90;
    static final int ICS = 0x9c;
    static final int IECTL = 0xa0;
    static final int IEDATA = 0xa4;
    static final int IEADDR = 0xa8;
    static final int IEUADDR = 0xac;
    static final int IQERCD = 0xb0;
    static final int PQH = 0xc0;
    static final int PQT = 0xc8;
    static final int PQA = 0xd0;
    static final int PRS = 0xdc;
    static final int PECTL = 0xe0;
    /** Fault recording registers: CAP.FRO * 16. */
    static final int FRCD = 0x220;
    /** Number of fault recording registers (CAP.NFR + 1). */
    static final int NFR = 4;
    /** Size of the register page. */
    static final int SIZE = 0x1000;

    // GCMD / GSTS (§11.4.4, §11.4.5)
    static final int GCMD_TE = 1 << 31;
    static final int GCMD_SRTP = 1 << 30;
    static final int GCMD_SFL = 1 << 29;
    static final int GCMD_EAFL = 1 << 28;
    static final int GCMD_WBF = 1 << 27;
    static final int GCMD_QIE = 1 << 26;
    static final int GCMD_IRE = 1 << 25;
    static final int GCMD_SIRTP = 1 << 24;
    static final int GCMD_CFI = 1 << 23;
    static final int GSTS_TES = GCMD_TE;
    static final int GSTS_RTPS = GCMD_SRTP;
    static final int GSTS_QIES = GCMD_QIE;

    // RTADDR (§11.4.6): bits 11:10 TTM translation table mode
    static final long RTADDR_TTM_MASK = 3L << 10;
    static final long RTADDR_TTM_LEGACY = 0;
    static final long RTADDR_TTM_SCALABLE = 1L << 10;
    static final long RTADDR_TTM_ABORT_DMA = 3L << 10;

    // FSTS (§11.4.9.1)
    static final int FSTS_PFO = 1;
    static final int FSTS_PPF = 1 << 1;
    static final int FSTS_IQE = 1 << 4;
    static final int FSTS_ICE = 1 << 5;
    static final int FSTS_ITE = 1 << 6;
    static final int FSTS_FRI_SHIFT = 8;
    static final int FSTS_RW1C = FSTS_PFO | FSTS_IQE | FSTS_ICE | FSTS_ITE;

    // FECTL / IECTL: interrupt mask and pending
    static final int CTL_IM = 1 << 31;
    static final int CTL_IP = 1 << 30;

    // IQA (§11.4.10.3): base 63:12, DW bit 11 (256-bit descriptors), QS 2:0
    static final long IQA_DW = 1L << 11;
    static final long IQA_QS = 7;

    // ICS: IWC invalidation wait descriptor complete
    static final int ICS_IWC = 1;

    // Fault recording register, upper 64 bits (§11.4.9.3)
    static final long FRCD_F = 1L << 63;
    static final long FRCD_T1 = 1L << 62;
    /** PRIV, record bit 93: privileged request. */
    static final long FRCD_PRIV = 1L << 29;
    /** EXE, record bit 94: execute requested. */
    static final long FRCD_EXE = 1L << 30;
    static final int FRCD_PV_SHIFT = 40;
    static final int FRCD_FR_SHIFT = 32;
    static final long FRCD_PP = 1L << 31;

    private VtdReg() {
    }
}
