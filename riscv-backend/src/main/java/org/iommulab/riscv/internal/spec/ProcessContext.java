package org.iommulab.riscv.internal.spec;

/**
 * The process-context (PC) and the process-directory table (PDT) (RISC-V IOMMU spec 1.0, §2.2
 * "Process-Directory-Table"). A PC is 16 bytes: {@code ta} then {@code fsc}; 256 fit a 4 KiB
 * leaf page. Process ids split into PDI[0] = bits 7:0, PDI[1] = bits 16:8 and PDI[2] = bits 19:17;
 * PD8 has one level, PD17 two and PD20 three. Non-leaf entries have the layout of non-leaf DDT
 * entries (V 0, PPN 53:10).
 */
public final class ProcessContext {
    private ProcessContext() {
    }

    /** Size of a PC in bytes. */
    public static final int SIZE = 16;
    public static final int TA = 0;
    public static final int FSC = 8;

    // ---- ta (§2.2.3.1): V 0, ENS 1, SUM 2, reserved 11:3, PSCID 31:12, reserved 63:32 -------

    public static final long TA_V = 1;
    /** Supervisor requests are allowed with this process id. */
    public static final long TA_ENS = 1L << 1;
    /** Supervisor requests may access U = 1 pages (with ENS). */
    public static final long TA_SUM = 1L << 2;
    public static final int TA_PSCID_SHIFT = 12;
    public static final long TA_PSCID_MASK = 0xfffffL << TA_PSCID_SHIFT;
    public static final long TA_RESERVED = ~(TA_V | TA_ENS | TA_SUM | TA_PSCID_MASK);

    /** A PC.ta value. */
    public static long ta(int pscid, boolean ens, boolean sum) {
        return TA_V | (ens ? TA_ENS : 0) | (sum ? TA_SUM : 0) | (long) pscid << TA_PSCID_SHIFT;
    }

    /** @return PC.ta.PSCID */
    public static int pscid(long ta) {
        return (int) ((ta & TA_PSCID_MASK) >>> TA_PSCID_SHIFT);
    }

    /** @return PDI[level] of a process id */
    public static int pdi(int processId, int level) {
        return switch (level) {
            case 0 -> processId & 0xff;
            case 1 -> (processId >>> 8) & 0x1ff;
            default -> (processId >>> 17) & 0x7;
        };
    }

    /** @return the number of PDT levels of a pdtp.MODE (PD8 1, PD17 2, PD20 3), else 0 */
    public static int levels(int pdtpMode) {
        return switch (pdtpMode) {
            case DeviceContext.PDTP_PD8 -> 1;
            case DeviceContext.PDTP_PD17 -> 2;
            case DeviceContext.PDTP_PD20 -> 3;
            default -> 0;
        };
    }

    /** @return the widest process id (in bits) a PDT of {@code levels} levels indexes */
    public static int processIdBits(int levels) {
        return switch (levels) {
            case 1 -> 8;
            case 2 -> 17;
            default -> 20;
        };
    }
}
