package org.iommulab.api.idxd;

/**
 * DSA architectural constants: opcodes, descriptor flags and completion status codes, as Linux
 * {@code include/uapi/linux/idxd.h} names them (Intel DSA Architecture Specification, chapter 8),
 * with a descriptor builder and a completion-record decoder for software that drives a device.
 */
public final class Dsa {
    private Dsa() {
    }

    // Opcodes (enum dsa_opcode).
    public static final int OP_NOOP = 0x00;
    public static final int OP_BATCH = 0x01;
    public static final int OP_DRAIN = 0x02;
    public static final int OP_MEMMOVE = 0x03;
    public static final int OP_MEMFILL = 0x04;
    public static final int OP_COMPARE = 0x05;
    public static final int OP_COMPVAL = 0x06;
    public static final int OP_CR_DELTA = 0x07;
    public static final int OP_AP_DELTA = 0x08;
    public static final int OP_DUALCAST = 0x09;
    public static final int OP_CRCGEN = 0x10;
    public static final int OP_COPY_CRC = 0x11;

    // Descriptor flags (IDXD_OP_FLAG_*).
    public static final int FLAG_FENCE = 0x0001;
    public static final int FLAG_BOF = 0x0002;
    public static final int FLAG_CRAV = 0x0004;
    public static final int FLAG_RCR = 0x0008;
    public static final int FLAG_RCI = 0x0010;
    public static final int FLAG_CRSTS = 0x0020;
    public static final int FLAG_CR = 0x0080;
    public static final int FLAG_CC = 0x0100;
    public static final int FLAG_ADDR1_TCS = 0x0200;
    public static final int FLAG_ADDR2_TCS = 0x0400;
    public static final int FLAG_ADDR3_TCS = 0x0800;
    public static final int FLAG_CR_TCS = 0x1000;
    public static final int FLAG_STORD = 0x2000;
    public static final int FLAG_DRDBK = 0x4000;
    public static final int FLAG_DSTS = 0x8000;
    /**
     * Flags this model accepts. Destination readback (DRDBK) is absent (GENCAP.dest_readback 0);
     * bit 6 and bits 23:16 are reserved.
     */
    public static final int FLAGS_SUPPORTED = FLAG_FENCE | FLAG_BOF | FLAG_CRAV | FLAG_RCR | FLAG_RCI | FLAG_CRSTS
            | FLAG_CR | FLAG_CC | FLAG_ADDR1_TCS | FLAG_ADDR2_TCS | FLAG_ADDR3_TCS | FLAG_CR_TCS | FLAG_STORD | FLAG_DSTS;

    // Completion status (enum dsa_completion_status).
    public static final int COMP_NONE = 0x00;
    public static final int COMP_SUCCESS = 0x01;
    public static final int COMP_SUCCESS_PRED = 0x02;
    public static final int COMP_PAGE_FAULT_NOBOF = 0x03;
    public static final int COMP_PAGE_FAULT_IR = 0x04;
    public static final int COMP_BATCH_FAIL = 0x05;
    public static final int COMP_BATCH_PAGE_FAULT = 0x06;
    public static final int COMP_DR_OFFSET_NOINC = 0x07;
    public static final int COMP_DR_OFFSET_ERANGE = 0x08;
    public static final int COMP_BAD_OPCODE = 0x10;
    public static final int COMP_INVALID_FLAGS = 0x11;
    public static final int COMP_NOZERO_RESERVE = 0x12;
    public static final int COMP_XFER_ERANGE = 0x13;
    public static final int COMP_DESC_CNT_ERANGE = 0x14;
    public static final int COMP_DR_ERANGE = 0x15;
    public static final int COMP_OVERLAP_BUFFERS = 0x16;
    public static final int COMP_DCAST_ERR = 0x17;
    public static final int COMP_DESCLIST_ALIGN = 0x18;
    public static final int COMP_INT_HANDLE_INVAL = 0x19;
    public static final int COMP_CRA_XLAT = 0x1a;
    public static final int COMP_CRA_ALIGN = 0x1b;
    public static final int COMP_ADDR_ALIGN = 0x1c;
    public static final int COMP_PRIV_BAD = 0x1d;
    public static final int COMP_HW_ERR1 = 0x20;
    public static final int COMP_TRANSLATION_FAIL = 0x22;
    /** Status bit 7: the faulting access was a write (DSA_COMP_STATUS_WRITE). */
    public static final int COMP_STATUS_WRITE = 0x80;

    /** Descriptor size in bytes. */
    public static final int DESC_SIZE = 64;
    /** Completion record size in bytes. */
    public static final int COMP_SIZE = 32;

    /** @return a name for a status code, for people */
    public static String statusName(int status) {
        return switch (status & 0x7f) {
            case COMP_NONE -> "NONE";
            case COMP_SUCCESS -> "SUCCESS";
            case COMP_SUCCESS_PRED -> "SUCCESS_PRED";
            case COMP_PAGE_FAULT_NOBOF -> "PAGE_FAULT_NOBOF";
            case COMP_PAGE_FAULT_IR -> "PAGE_FAULT_IR";
            case COMP_BATCH_FAIL -> "BATCH_FAIL";
            case COMP_BATCH_PAGE_FAULT -> "BATCH_PAGE_FAULT";
            case COMP_DR_OFFSET_NOINC -> "DR_OFFSET_NOINC";
            case COMP_DR_OFFSET_ERANGE -> "DR_OFFSET_ERANGE";
            case COMP_BAD_OPCODE -> "BAD_OPCODE";
            case COMP_INVALID_FLAGS -> "INVALID_FLAGS";
            case COMP_NOZERO_RESERVE -> "NOZERO_RESERVE";
            case COMP_XFER_ERANGE -> "XFER_ERANGE";
            case COMP_DESC_CNT_ERANGE -> "DESC_CNT_ERANGE";
            case COMP_DR_ERANGE -> "DR_ERANGE";
            case COMP_OVERLAP_BUFFERS -> "OVERLAP_BUFFERS";
            case COMP_DCAST_ERR -> "DCAST_ERR";
            case COMP_DESCLIST_ALIGN -> "DESCLIST_ALIGN";
            case COMP_INT_HANDLE_INVAL -> "INT_HANDLE_INVAL";
            case COMP_CRA_XLAT -> "CRA_XLAT";
            case COMP_CRA_ALIGN -> "CRA_ALIGN";
            case COMP_ADDR_ALIGN -> "ADDR_ALIGN";
            case COMP_PRIV_BAD -> "PRIV_BAD";
            case COMP_HW_ERR1 -> "HW_ERR1";
            case COMP_TRANSLATION_FAIL -> "TRANSLATION_FAIL";
            default -> String.format("0x%02x", status & 0x7f);
        };
    }

    /** @return a builder of a zeroed descriptor */
    public static Builder descriptor(int opcode) {
        return new Builder(opcode);
    }

    /**
     * Builds a 64-byte descriptor in the {@code struct dsa_hw_desc} layout: pasid (bits 19:0 of
     * bytes 0-3), priv (bit 31), flags (bytes 4-6), opcode (byte 7), completion_addr (8),
     * src/pattern/desc_list (16), dst/src2/comp_pattern (24), xfer_size/desc_count (32),
     * int_handle (36), operation-specific bytes (40-63). Not thread safe.
     */
    public static final class Builder {
        private final byte[] b = new byte[DESC_SIZE];

        private Builder(int opcode) {
            b[7] = (byte) opcode;
        }

        private Builder put(int offset, long value, int bytes) {
            for (int i = 0; i < bytes; i++) {
                b[offset + i] = (byte) (value >>> (8 * i));
            }
            return this;
        }

        /** @param pasid the PASID field (ignored by dedicated queues, replaced by ENQCMD) */
        public Builder pasid(int pasid) {
            int w0 = (b[0] & 0xff | (b[1] & 0xff) << 8 | (b[2] & 0xff) << 16 | (b[3] & 0xff) << 24) & ~0xfffff;
            return put(0, w0 | (pasid & 0xfffff), 4);
        }

        /** Sets the privilege bit (bit 31 of bytes 0-3). */
        public Builder priv() {
            b[3] |= (byte) 0x80;
            return this;
        }

        /** @param flags FLAG_* bits (24 bits) */
        public Builder flags(int flags) {
            return put(4, flags, 3);
        }

        /** @param address the completion record address; also sets CRAV and RCR */
        public Builder completion(long address) {
            int f = (b[4] & 0xff) | (b[5] & 0xff) << 8 | (b[6] & 0xff) << 16;
            flags(f | FLAG_CRAV | FLAG_RCR);
            return put(8, address, 8);
        }

        /** @param value source address, fill pattern or descriptor list address (bytes 16-23) */
        public Builder addr1(long value) {
            return put(16, value, 8);
        }

        /** @param value destination, second source or compare pattern (bytes 24-31) */
        public Builder addr2(long value) {
            return put(24, value, 8);
        }

        /** @param value transfer size or descriptor count (bytes 32-35) */
        public Builder size(long value) {
            return put(32, value, 4);
        }

        /** @param handle the interrupt handle (bytes 36-37) */
        public Builder interruptHandle(int handle) {
            return put(36, handle, 2);
        }

        /**
         * @param offset 40 to 63
         * @param value the value
         * @param bytes its width
         */
        public Builder op(int offset, long value, int bytes) {
            if (offset < 40 || offset + bytes > DESC_SIZE) {
                throw new IllegalArgumentException("operation-specific fields are bytes 40-63");
            }
            return put(offset, value, bytes);
        }

        /** @return the 64 bytes, a copy */
        public byte[] build() {
            return b.clone();
        }
    }

    /**
     * A decoded 32-byte completion record ({@code struct dsa_completion_record}).
     *
     * @param status status byte (bit 7: the faulting access was a write)
     * @param result result byte
     * @param bytesCompleted bytes (or, for a batch, descriptors) completed
     * @param faultAddress the faulting address
     * @param opSpecific bytes 16-19: invalid flags, CRC value or delta record size
     */
    public record CompletionRecord(int status, int result, long bytesCompleted, long faultAddress, int opSpecific) {

        /** @param raw 32 bytes */
        public static CompletionRecord decode(byte[] raw) {
            return new CompletionRecord(raw[0] & 0xff, raw[1] & 0xff, i32(raw, 4) & 0xffff_ffffL,
                    i32(raw, 8) & 0xffff_ffffL | (long) i32(raw, 12) << 32, i32(raw, 16));
        }

        private static int i32(byte[] b, int o) {
            return (b[o] & 0xff) | (b[o + 1] & 0xff) << 8 | (b[o + 2] & 0xff) << 16 | (b[o + 3] & 0xff) << 24;
        }

        @Override
        public String toString() {
            return String.format("status=%s%s result=%d bytes=%d fault=0x%x op=0x%x", statusName(status),
                    (status & COMP_STATUS_WRITE) != 0 ? "|WRITE" : "", result, bytesCompleted, faultAddress, opSpecific);
        }
    }
}
