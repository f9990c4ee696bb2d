package org.iommulab.riscv.internal.spec;

/**
 * Fault-queue records (RISC-V IOMMU spec 1.0, §3.2 "Fault/Event-Queue"): 32 bytes. Doubleword 0:
 * CAUSE 11:0, PID 31:12, PV 32, PRIV 33, TTYP 39:34, DID 63:40; doubleword 1: custom and
 * reserved; doubleword 2: iotval (the IOVA); doubleword 3: iotval2 (the GPA of a guest-page
 * fault, bits 63:2, with bit 0 set if an implicit first-stage access faulted, bit 1 if it wrote).
 */
public final class FaultRecord {
    private FaultRecord() {
    }

    /** Size of a record in bytes. */
    public static final int SIZE = 32;

    public static final int PID_SHIFT = 12;
    public static final long PV = 1L << 32;
    public static final long PRIV = 1L << 33;
    public static final int TTYP_SHIFT = 34;
    public static final int DID_SHIFT = 40;
    public static final long IOTVAL2_IMPLICIT = 1;
    public static final long IOTVAL2_IMPLICIT_WRITE = 1L << 1;

    // ---- CAUSE (table "Fault record CAUSE field encodings") ------------------------------------

    public static final int INSTRUCTION_ACCESS_FAULT = 1;
    public static final int READ_ACCESS_FAULT = 5;
    public static final int WRITE_ACCESS_FAULT = 7;
    public static final int INSTRUCTION_PAGE_FAULT = 12;
    public static final int READ_PAGE_FAULT = 13;
    public static final int WRITE_PAGE_FAULT = 15;
    public static final int INSTRUCTION_GUEST_PAGE_FAULT = 20;
    public static final int READ_GUEST_PAGE_FAULT = 21;
    public static final int WRITE_GUEST_PAGE_FAULT = 23;
    public static final int ALL_INBOUND_DISALLOWED = 256;
    public static final int DDT_LOAD_ACCESS_FAULT = 257;
    public static final int DDT_INVALID = 258;
    public static final int DDT_MISCONFIGURED = 259;
    public static final int TRANSACTION_TYPE_DISALLOWED = 260;
    public static final int PDT_LOAD_ACCESS_FAULT = 265;
    public static final int PDT_INVALID = 266;
    public static final int PDT_MISCONFIGURED = 267;
    public static final int DDT_DATA_CORRUPTION = 268;
    public static final int PDT_DATA_CORRUPTION = 269;
    public static final int INTERNAL_DATAPATH_ERROR = 272;
    public static final int PT_DATA_CORRUPTION = 274;

    // ---- TTYP (table "Fault record TTYP field encodings") ---------------------------------------

    public static final int TTYP_NONE = 0;
    public static final int TTYP_UNTRANSLATED_EXEC = 1;
    public static final int TTYP_UNTRANSLATED_READ = 2;
    public static final int TTYP_UNTRANSLATED_WRITE = 3;
    public static final int TTYP_PCIE_MESSAGE = 9;

    /** @return the header doubleword of a record */
    public static long header(int cause, int deviceId, int processId, boolean privileged, int ttyp) {
        long h = (cause & 0xfffL) | (long) ttyp << TTYP_SHIFT | (long) (deviceId & 0xff_ffff) << DID_SHIFT;
        if (processId >= 0) {
            h |= PV | (long) processId << PID_SHIFT | (privileged ? PRIV : 0);
        }
        return h;
    }

    /** @return CAUSE of a header */
    public static int cause(long header) {
        return (int) (header & 0xfff);
    }

    /** @return DID of a header */
    public static int deviceId(long header) {
        return (int) (header >>> DID_SHIFT);
    }

    /** @return PID of a header, or -1 when PV is 0 */
    public static int processId(long header) {
        return (header & PV) == 0 ? -1 : (int) ((header >>> PID_SHIFT) & 0xfffff);
    }

    /** @return TTYP of a header */
    public static int ttyp(long header) {
        return (int) ((header >>> TTYP_SHIFT) & 0x3f);
    }

    /** @return the spec's name of a cause, as the fault-record table gives it */
    public static String causeName(int cause) {
        return switch (cause) {
            case INSTRUCTION_ACCESS_FAULT -> "Instruction access fault";
            case 4 -> "Read address misaligned";
            case READ_ACCESS_FAULT -> "Read access fault";
            case 6 -> "Write/AMO address misaligned";
            case WRITE_ACCESS_FAULT -> "Write/AMO access fault";
            case INSTRUCTION_PAGE_FAULT -> "Instruction page fault";
            case READ_PAGE_FAULT -> "Read page fault";
            case WRITE_PAGE_FAULT -> "Write/AMO page fault";
            case INSTRUCTION_GUEST_PAGE_FAULT -> "Instruction guest page fault";
            case READ_GUEST_PAGE_FAULT -> "Read guest-page fault";
            case WRITE_GUEST_PAGE_FAULT -> "Write/AMO guest-page fault";
            case ALL_INBOUND_DISALLOWED -> "All inbound transactions disallowed";
            case DDT_LOAD_ACCESS_FAULT -> "DDT entry load access fault";
            case DDT_INVALID -> "DDT entry not valid";
            case DDT_MISCONFIGURED -> "DDT entry misconfigured";
            case TRANSACTION_TYPE_DISALLOWED -> "Transaction type disallowed";
            case 261 -> "MSI PTE load access fault";
            case 262 -> "MSI PTE not valid";
            case 263 -> "MSI PTE misconfigured";
            case 264 -> "MRIF access fault";
            case PDT_LOAD_ACCESS_FAULT -> "PDT entry load access fault";
            case PDT_INVALID -> "PDT entry not valid";
            case PDT_MISCONFIGURED -> "PDT entry misconfigured";
            case DDT_DATA_CORRUPTION -> "DDT data corruption";
            case PDT_DATA_CORRUPTION -> "PDT data corruption";
            case 270 -> "MSI PT data corruption";
            case 271 -> "MSI MRIF data corruption";
            case INTERNAL_DATAPATH_ERROR -> "Internal data path error";
            case 273 -> "IOMMU MSI write access fault";
            case PT_DATA_CORRUPTION -> "First/second-stage PT data corruption";
            default -> "cause " + cause;
        };
    }

    /**
     * @return whether DC.tc.DTF = 1 suppresses reporting of the cause (the table's "Reported if
     *     DTF is 1?" column is "No")
     */
    public static boolean suppressedByDtf(int cause) {
        return !(cause == ALL_INBOUND_DISALLOWED || cause == DDT_LOAD_ACCESS_FAULT || cause == DDT_INVALID
                || cause == DDT_MISCONFIGURED || cause == DDT_DATA_CORRUPTION || cause == INTERNAL_DATAPATH_ERROR
                || cause == 273);
    }
}
