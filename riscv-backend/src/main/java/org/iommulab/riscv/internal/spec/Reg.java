package org.iommulab.riscv.internal.spec;

/**
 * The RISC-V IOMMU's memory-mapped registers (RISC-V IOMMU Architecture Specification 1.0,
 * chapter "Memory-mapped register interface"): offsets into the 4 KiB register window and their
 * fields. Registers are little-endian; 64-bit registers may be accessed as two 32-bit halves.
 */
public final class Reg {
    private Reg() {
    }

    /** Size of the register window. */
    public static final int SIZE = 0x1000;

    // ---- offsets -----------------------------------------------------------------------------

    /** capabilities (64, RO): what the implementation supports. */
    public static final int CAPABILITIES = 0x00;
    /** fctl (32): features control: BE 0, WSI 1, GXL 2. */
    public static final int FCTL = 0x08;
    /** ddtp (64): device-directory-table pointer: iommu_mode 3:0, busy 4, PPN 53:10. */
    public static final int DDTP = 0x10;
    /** cqb (64): command-queue base: LOG2SZ-1 4:0, PPN 53:10. */
    public static final int CQB = 0x18;
    /** cqh (32, RO): command-queue head index. */
    public static final int CQH = 0x20;
    /** cqt (32): command-queue tail index, written by software. */
    public static final int CQT = 0x24;
    /** fqb (64): fault-queue base. */
    public static final int FQB = 0x28;
    /** fqh (32): fault-queue head index, written by software. */
    public static final int FQH = 0x30;
    /** fqt (32, RO): fault-queue tail index. */
    public static final int FQT = 0x34;
    /** pqb (64): page-request-queue base. */
    public static final int PQB = 0x38;
    /** pqh (32): page-request-queue head index, written by software. */
    public static final int PQH = 0x40;
    /** pqt (32, RO): page-request-queue tail index. */
    public static final int PQT = 0x44;
    /** cqcsr (32): command-queue control and status. */
    public static final int CQCSR = 0x48;
    /** fqcsr (32): fault-queue control and status. */
    public static final int FQCSR = 0x4c;
    /** pqcsr (32): page-request-queue control and status. */
    public static final int PQCSR = 0x50;
    /** ipsr (32, RW1C): interrupt pending status: CIP 0, FIP 1, PMIP 2, PIP 3. */
    public static final int IPSR = 0x54;
    /** tr_req_iova (64): debug translation request IOVA (capabilities.DBG). */
    public static final int TR_REQ_IOVA = 0x258;
    /** tr_req_ctl (64): debug translation request control. */
    public static final int TR_REQ_CTL = 0x260;
    /** tr_response (64, RO): debug translation response. */
    public static final int TR_RESPONSE = 0x268;
    /** icvec (64): interrupt cause to vector. */
    public static final int ICVEC = 0x2f8;

    // ---- capabilities (§ "IOMMU capabilities") ------------------------------------------------

    /** version 7:0: 0x10 is version 1.0. */
    public static final long CAP_VERSION_1_0 = 0x10;
    public static final long CAP_SV32 = 1L << 8;
    public static final long CAP_SV39 = 1L << 9;
    public static final long CAP_SV48 = 1L << 10;
    public static final long CAP_SV57 = 1L << 11;
    public static final long CAP_SVPBMT = 1L << 15;
    public static final long CAP_SV32X4 = 1L << 16;
    public static final long CAP_SV39X4 = 1L << 17;
    public static final long CAP_SV48X4 = 1L << 18;
    public static final long CAP_SV57X4 = 1L << 19;
    public static final long CAP_MSI_FLAT = 1L << 22;
    public static final long CAP_MSI_MRIF = 1L << 23;
    /** Hardware updating of A/D bits (DC.tc.SADE/GADE may be 1). */
    public static final long CAP_AMO_HWAD = 1L << 24;
    /** PCIe ATS and PRI. */
    public static final long CAP_ATS = 1L << 25;
    public static final long CAP_T2GPA = 1L << 26;
    /** fctl.BE is writable. */
    public static final long CAP_END = 1L << 27;
    /** IGS 29:28: 0 MSI only, 1 WSI only, 2 both. */
    public static final int CAP_IGS_SHIFT = 28;
    public static final long CAP_IGS_WSI = 1;
    public static final long CAP_DBG = 1L << 31;
    /** PAS 37:32: physical address size in bits. */
    public static final int CAP_PAS_SHIFT = 32;
    public static final long CAP_PD8 = 1L << 38;
    public static final long CAP_PD17 = 1L << 39;
    public static final long CAP_PD20 = 1L << 40;

    // ---- fctl --------------------------------------------------------------------------------

    public static final int FCTL_BE = 1;
    public static final int FCTL_WSI = 1 << 1;
    public static final int FCTL_GXL = 1 << 2;

    // ---- ddtp (§ "Device-directory-table pointer") ---------------------------------------------

    public static final long DDTP_MODE_MASK = 0xf;
    /** ddtp.busy: a write of ddtp is in progress; software waits for 0 before the next write. */
    public static final long DDTP_BUSY = 1L << 4;
    public static final int MODE_OFF = 0;
    public static final int MODE_BARE = 1;
    public static final int MODE_1LVL = 2;
    public static final int MODE_2LVL = 3;
    public static final int MODE_3LVL = 4;

    // ---- common PPN and queue fields -------------------------------------------------------------

    /** PPN 53:10 of ddtp, cqb, fqb, pqb and of non-leaf DDT and PDT entries. */
    public static final int PPN_SHIFT = 10;
    public static final long PPN_MASK = ((1L << 44) - 1) << PPN_SHIFT;
    /** cqb/fqb/pqb LOG2SZ-1 4:0: the queue has 2^(LOG2SZ-1 + 1) entries. */
    public static final long QUEUE_LOG2SZ_MASK = 0x1f;

    /** A *qb register value for a queue at {@code base} with {@code 1 << log2Entries} entries. */
    public static long queueBase(long base, int log2Entries) {
        return (base >>> 12) << PPN_SHIFT | (log2Entries - 1);
    }

    /** The physical address a PPN 53:10 field points at. */
    public static long ppnAddress(long register) {
        return (register & PPN_MASK) >>> PPN_SHIFT << 12;
    }

    // ---- cqcsr, fqcsr, pqcsr (§ "Command-queue CSR", "Fault-queue CSR", "Page-request-queue CSR") --

    /** cqen / fqen / pqen: software enables the queue. */
    public static final int CSR_EN = 1;
    /** cie / fie / pie: interrupt enable. */
    public static final int CSR_IE = 1 << 1;
    /** cqmf / fqmf / pqmf (RW1C): memory fault accessing the queue. */
    public static final int CSR_MF = 1 << 8;
    /** cmd_to (cqcsr, RW1C): command timeout. */
    public static final int CQCSR_CMD_TO = 1 << 9;
    /** cmd_ill (cqcsr, RW1C): illegal or unsupported command. */
    public static final int CQCSR_CMD_ILL = 1 << 10;
    /** fence_w_ip (cqcsr, RW1C): an IOFENCE.C with WSI = 1 completed. */
    public static final int CQCSR_FENCE_W_IP = 1 << 11;
    /** fqof / pqof (RW1C): the queue overflowed and a record was dropped. */
    public static final int CSR_OF = 1 << 9;
    /** cqon / fqon / pqon (RO): the queue is active. */
    public static final int CSR_ON = 1 << 16;
    /** busy (RO): an enable or disable is in progress. */
    public static final int CSR_BUSY = 1 << 17;

    // ---- ipsr --------------------------------------------------------------------------------

    public static final int IPSR_CIP = 1;
    public static final int IPSR_FIP = 1 << 1;
    public static final int IPSR_PMIP = 1 << 2;
    public static final int IPSR_PIP = 1 << 3;

    // ---- debug translation interface (§ "Translation-request interface") --------------------

    public static final long TR_CTL_GO_BUSY = 1;
    public static final long TR_CTL_PRIV = 1L << 1;
    public static final long TR_CTL_EXE = 1L << 2;
    /** NW: no write (a read request). */
    public static final long TR_CTL_NW = 1L << 3;
    public static final int TR_CTL_PID_SHIFT = 12;
    public static final long TR_CTL_PV = 1L << 32;
    public static final int TR_CTL_DID_SHIFT = 40;
    public static final long TR_RESPONSE_FAULT = 1;
}
