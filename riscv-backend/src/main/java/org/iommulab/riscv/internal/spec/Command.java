package org.iommulab.riscv.internal.spec;

/**
 * Command-queue commands (RISC-V IOMMU spec 1.0, §3.1 "Command-Queue"): 16 bytes, two
 * doublewords. dword0 holds opcode 6:0 and func3 9:7 and the operands; a reserved bit set or a
 * reserved encoding makes the command illegal (cqcsr.cmd_ill, the queue stops). The encoders
 * here are what a driver writes; the decoders what the unit reads.
 */
public final class Command {
    private Command() {
    }

    /** Size of a command in bytes. */
    public static final int SIZE = 16;

    public static final int OPCODE_IOTINVAL = 1;
    public static final int OPCODE_IOFENCE = 2;
    public static final int OPCODE_IODIR = 3;
    public static final int OPCODE_ATS = 4;

    public static final int FUNC_IOTINVAL_VMA = 0;
    public static final int FUNC_IOTINVAL_GVMA = 1;
    public static final int FUNC_IOFENCE_C = 0;
    public static final int FUNC_IODIR_INVAL_DDT = 0;
    public static final int FUNC_IODIR_INVAL_PDT = 1;
    public static final int FUNC_ATS_INVAL = 0;
    public static final int FUNC_ATS_PRGR = 1;

    /** @return dword0's opcode */
    public static int opcode(long dword0) {
        return (int) (dword0 & 0x7f);
    }

    /** @return dword0's func3 */
    public static int func3(long dword0) {
        return (int) ((dword0 >>> 7) & 0x7);
    }

    private static long head(int opcode, int func3) {
        return opcode | (long) func3 << 7;
    }

    // ---- IOTINVAL (§3.1.1): AV 10, PSCID 31:12, PSCV 32, GV 33, NL 34, GSCID 59:44;
    //      dword1: S 9, ADDR[63:12] 61:10 ------------------------------------------------------

    public static final long IOTINVAL_AV = 1L << 10;
    public static final int IOTINVAL_PSCID_SHIFT = 12;
    public static final long IOTINVAL_PSCV = 1L << 32;
    public static final long IOTINVAL_GV = 1L << 33;
    public static final int IOTINVAL_GSCID_SHIFT = 44;
    /** dword0 bits that are reserved: 11, 34 (NL; the non-leaf extension is not implemented), 43:35, 63:60. */
    public static final long IOTINVAL_RESERVED0 = 1L << 11 | 0x3ffL << 34 | 0xfL << 60;
    /** dword1 bits that are reserved: 9:0 (S of the range extension is not implemented), 63:62. */
    public static final long IOTINVAL_RESERVED1 = 0x3ffL | 0x3L << 62;

    /**
     * @param gvma GVMA (G-stage) rather than VMA (first stage)
     * @param gscid GSCID, or -1 for GV = 0
     * @param pscid PSCID, or -1 for PSCV = 0 (must be -1 for GVMA)
     * @param addressValid AV
     * @return dword0 of an IOTINVAL command
     */
    public static long iotinval(boolean gvma, int gscid, int pscid, boolean addressValid) {
        long d = head(OPCODE_IOTINVAL, gvma ? FUNC_IOTINVAL_GVMA : FUNC_IOTINVAL_VMA);
        if (gscid >= 0) {
            d |= IOTINVAL_GV | (long) gscid << IOTINVAL_GSCID_SHIFT;
        }
        if (pscid >= 0) {
            d |= IOTINVAL_PSCV | (long) pscid << IOTINVAL_PSCID_SHIFT;
        }
        return addressValid ? d | IOTINVAL_AV : d;
    }

    /** @return dword1 of an IOTINVAL naming the 4 KiB page of {@code address} */
    public static long iotinvalAddress(long address) {
        return (address >>> 12) << 10 & ~IOTINVAL_RESERVED1;
    }

    /** @return the address an IOTINVAL's dword1 names */
    public static long iotinvalAddressOf(long dword1) {
        return (dword1 >>> 10 & ((1L << 52) - 1)) << 12;
    }

    // ---- IOFENCE.C (§3.1.2): AV 10, WSI 11, PR 12, PW 13, DATA 63:32; dword1 ADDR[63:2] 61:0 --

    public static final long IOFENCE_AV = 1L << 10;
    public static final long IOFENCE_WSI = 1L << 11;
    public static final long IOFENCE_PR = 1L << 12;
    public static final long IOFENCE_PW = 1L << 13;
    public static final long IOFENCE_RESERVED0 = 0x3ffffL << 14;
    public static final long IOFENCE_RESERVED1 = 0x3L << 62;

    /** @return dword0 of an IOFENCE.C that writes {@code data} when {@code addressValid}, ordering reads and writes */
    public static long iofence(boolean addressValid, int data) {
        long d = head(OPCODE_IOFENCE, FUNC_IOFENCE_C) | IOFENCE_PR | IOFENCE_PW | (data & 0xffff_ffffL) << 32;
        return addressValid ? d | IOFENCE_AV : d;
    }

    /** @return dword1 of an IOFENCE.C writing to the 4-byte aligned {@code address} */
    public static long iofenceAddress(long address) {
        return address >>> 2;
    }

    // ---- IODIR (§3.1.3): PID 31:12, DV 33, DID 63:40; dword1 reserved ----------------------

    public static final int IODIR_PID_SHIFT = 12;
    public static final long IODIR_DV = 1L << 33;
    public static final int IODIR_DID_SHIFT = 40;
    public static final long IODIR_RESERVED0 = 0x3L << 10 | 1L << 32 | 0x3fL << 34;

    /** @return dword0 of IODIR.INVAL_DDT for one device, or all with {@code deviceId} -1 */
    public static long iodirInvalDdt(int deviceId) {
        long d = head(OPCODE_IODIR, FUNC_IODIR_INVAL_DDT);
        return deviceId < 0 ? d : d | IODIR_DV | (long) deviceId << IODIR_DID_SHIFT;
    }

    /** @return dword0 of IODIR.INVAL_PDT for one process id of one device */
    public static long iodirInvalPdt(int deviceId, int processId) {
        return head(OPCODE_IODIR, FUNC_IODIR_INVAL_PDT) | IODIR_DV | (long) deviceId << IODIR_DID_SHIFT
                | (long) processId << IODIR_PID_SHIFT;
    }

    // ---- ATS (§3.1.4): PID 31:12, PV 32, DSV 33, RID 55:40, DSEG 63:56 ------------------------
    //      PRGR payload: PRG index 40:32, response code 47:44 ----------------------------------

    public static final int ATS_PID_SHIFT = 12;
    public static final long ATS_PV = 1L << 32;
    public static final long ATS_DSV = 1L << 33;
    public static final int ATS_RID_SHIFT = 40;
    public static final long ATS_RESERVED0 = 0x3L << 10 | 0x3fL << 34;
    public static final int PRGR_INDEX_SHIFT = 32;
    public static final int PRGR_CODE_SHIFT = 44;
    public static final long PRGR_PAYLOAD_RESERVED = 0xffff_ffffL | 0x7L << 41 | 0xffffL << 48;
    /** PCIe Page Request Group Response codes. */
    public static final int PRGR_SUCCESS = 0;
    public static final int PRGR_INVALID_REQUEST = 1;
    public static final int PRGR_RESPONSE_FAILURE = 0xf;

    /** ATS.INVAL payload (PCIe "Invalidation Request" body, §3.1.4 table "PAYLOAD of an ATS.INVAL command"): G 0. */
    public static final long ATS_INVAL_G = 1;
    /** ATS.INVAL payload: S 11, the range is larger than 4 KiB (its size is encoded in the address's low one bits). */
    public static final long ATS_INVAL_S = 1L << 11;

    /** @return dword0 of ATS.INVAL to requester {@code rid}, PASID-specific unless {@code pasid} is -1 */
    public static long atsInval(int rid, int pasid) {
        long d = head(OPCODE_ATS, FUNC_ATS_INVAL) | (long) (rid & 0xffff) << ATS_RID_SHIFT;
        return pasid < 0 ? d : d | ATS_PV | (long) pasid << ATS_PID_SHIFT;
    }

    /**
     * The ATS.INVAL payload invalidating at least {@code [address, address + size)}: one 4 KiB page
     * with S = 0, otherwise the smallest naturally aligned power-of-two block covering the range,
     * encoded as PCIe ATS does (S = 1, address bits 12 up to log2(block) - 2 set, bit log2(block) - 1
     * clear); a range beyond 2^63 bytes invalidates everything (address 0x7fff_ffff_ffff_f000, S = 1).
     *
     * @param address first byte
     * @param size bytes, positive
     * @return dword1 of ATS.INVAL
     */
    public static long atsInvalPayload(long address, long size) {
        long start = address & ~0xfffL;
        long last = address + size - 1;
        if (size <= 0 || last < address) {
            return 0x7fff_ffff_ffff_f000L | ATS_INVAL_S;
        }
        if ((start >>> 12) == (last >>> 12)) {
            return start;
        }
        int bits = 64 - Long.numberOfLeadingZeros(start ^ last); // the block is 2^bits bytes
        if (bits >= 63) {
            return 0x7fff_ffff_ffff_f000L | ATS_INVAL_S;
        }
        long block = 1L << bits;
        return (start & -block) | (((block >>> 1) - 1) & ~0xfffL) | ATS_INVAL_S;
    }

    /** @return dword0 of ATS.PRGR to requester {@code rid}, with a PASID unless {@code pasid} is -1 */
    public static long atsPrgr(int rid, int pasid) {
        long d = head(OPCODE_ATS, FUNC_ATS_PRGR) | (long) (rid & 0xffff) << ATS_RID_SHIFT;
        return pasid < 0 ? d : d | ATS_PV | (long) pasid << ATS_PID_SHIFT;
    }

    /** @return dword1 (the message payload) of ATS.PRGR */
    public static long prgrPayload(int groupIndex, int responseCode) {
        return (long) (groupIndex & 0x1ff) << PRGR_INDEX_SHIFT | (long) (responseCode & 0xf) << PRGR_CODE_SHIFT;
    }
}
