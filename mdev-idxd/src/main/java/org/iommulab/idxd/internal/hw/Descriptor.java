package org.iommulab.idxd.internal.hw;

/**
 * A decoded 64-byte work descriptor ({@code struct dsa_hw_desc}, DSA spec §8.1): little-endian
 * fields at fixed offsets. Immutable.
 *
 * <pre>
 *  0  pasid:20 rsvd:11 priv:1        4  flags:24 opcode:8
 *  8  completion_addr               16  src_addr | pattern | desc_list_addr
 * 24  dst_addr | src2_addr | comp_pattern
 * 32  xfer_size | desc_count        36  int_handle:16 rsvd1:16
 * 40  op_specific[24]: expected_res (40); delta_addr (40), max_delta_size (48), expected_res_mask (56);
 *     delta_rec_size (40); dest2 (40); crc_seed (40), seed_addr (48)
 * </pre>
 */
final class Descriptor {
    final byte[] raw;
    final int pasid;
    final int reserved0;
    final boolean priv;
    final int flags;
    final int opcode;
    final long completionAddr;
    final long addr1;
    final long addr2;
    final int size;
    final int intHandle;
    final int reserved1;

    private Descriptor(byte[] raw) {
        this.raw = raw;
        int w0 = i32(raw, 0);
        this.pasid = w0 & 0xfffff;
        this.reserved0 = (w0 >>> 20) & 0x7ff;
        this.priv = (w0 >>> 31) != 0;
        int w1 = i32(raw, 4);
        this.flags = w1 & 0xffffff;
        this.opcode = w1 >>> 24;
        this.completionAddr = i64(raw, 8);
        this.addr1 = i64(raw, 16);
        this.addr2 = i64(raw, 24);
        this.size = i32(raw, 32);
        this.intHandle = i32(raw, 36) & 0xffff;
        this.reserved1 = i32(raw, 36) >>> 16;
    }

    /** @param raw 64 bytes, copied */
    static Descriptor decode(byte[] raw) {
        return new Descriptor(raw.clone());
    }

    /** @return the transfer size as an unsigned number of bytes */
    long sizeBytes() {
        return size & 0xffff_ffffL;
    }

    long op64(int offset) {
        return i64(raw, offset);
    }

    int op32(int offset) {
        return i32(raw, offset);
    }

    int op8(int offset) {
        return raw[offset] & 0xff;
    }

    /** @return {@code true} if bytes {@code [from, to)} are all zero */
    boolean zero(int from, int to) {
        for (int i = from; i < to; i++) {
            if (raw[i] != 0) {
                return false;
            }
        }
        return true;
    }

    static int i32(byte[] b, int o) {
        return (b[o] & 0xff) | (b[o + 1] & 0xff) << 8 | (b[o + 2] & 0xff) << 16 | (b[o + 3] & 0xff) << 24;
    }

    static long i64(byte[] b, int o) {
        return (i32(b, o) & 0xffff_ffffL) | (long) i32(b, o + 4) << 32;
    }

    static void put32(byte[] b, int o, int v) {
        b[o] = (byte) v;
        b[o + 1] = (byte) (v >>> 8);
        b[o + 2] = (byte) (v >>> 16);
        b[o + 3] = (byte) (v >>> 24);
    }

    static void put64(byte[] b, int o, long v) {
        put32(b, o, (int) v);
        put32(b, o + 4, (int) (v >>> 32));
    }

    /** @return a copy of {@code raw} with the PASID field replaced, as ENQCMD does */
    static byte[] withPasid(byte[] raw, int pasid, boolean priv) {
        byte[] b = raw.clone();
        int w0 = (i32(b, 0) & 0x7ff0_0000) | (pasid & 0xfffff) | (priv ? 1 << 31 : 0);
        put32(b, 0, w0);
        return b;
    }
}
