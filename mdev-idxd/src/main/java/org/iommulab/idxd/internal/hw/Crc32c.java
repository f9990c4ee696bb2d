package org.iommulab.idxd.internal.hw;

/**
 * CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), the CRC DSA's CRCGEN and COPY_CRC compute.
 * A seed continues an earlier CRC: {@code crc(seed, a ++ b) == crc(crc(seed, a), b)}, and seed 0
 * gives the standard CRC-32C ({@code java.util.zip.CRC32C}). Table driven; allocates nothing.
 */
final class Crc32c {
    private static final int[] TABLE = new int[256];

    static {
        for (int n = 0; n < 256; n++) {
            int c = n;
            for (int k = 0; k < 8; k++) {
                c = (c & 1) != 0 ? (c >>> 1) ^ 0x82F6_3B78 : c >>> 1;
            }
            TABLE[n] = c;
        }
    }

    private Crc32c() {
    }

    /**
     * @param crc the CRC so far (the seed for the first piece)
     * @param b bytes
     * @param off first index
     * @param len count
     * @return the CRC including these bytes
     */
    static int update(int crc, byte[] b, int off, int len) {
        int c = ~crc;
        for (int i = off; i < off + len; i++) {
            c = TABLE[(c ^ b[i]) & 0xff] ^ (c >>> 8);
        }
        return ~c;
    }
}
