package org.iommulab.idxd.internal.hw;

import org.iommulab.api.idxd.Dsa;

import java.util.Arrays;

/**
 * The data operations of DSA (spec §8.3), each working through a {@link DmaPort} in page-sized
 * bulk pieces. A fault stops an operation with the bytes completed so far and the fault address in
 * the completion. Not thread safe: one per engine; its scratch buffers are reused.
 */
final class Operations {
    private static final int CHUNK = 4096;
    /** CR_DELTA offsets are 16-bit counts of 8-byte words: at most 512 KiB is compared. */
    static final long MAX_DELTA_XFER = 0x8_0000;
    /** One delta record entry: a 2-byte word offset and 8 bytes of data. */
    static final int DELTA_ENTRY = 10;

    private final DmaPort port;
    private final byte[] a = new byte[CHUNK];
    private final byte[] b = new byte[CHUNK];
    private final byte[] patternBuf = new byte[CHUNK + 8];
    private final byte[] entry = new byte[DELTA_ENTRY];

    Operations(DmaPort port) {
        this.port = port;
    }

    /** Reports a fault of the port in the completion. */
    private void fault(Completion c, long done) {
        c.status = port.faultStatus | (port.faultWrite ? Dsa.COMP_STATUS_WRITE : 0);
        c.faultAddr = port.faultAddress;
        c.bytesCompleted = done;
    }

    private static boolean overlap(long a, long b, long length) {
        return Long.compareUnsigned(a - b, length) < 0 || Long.compareUnsigned(b - a, length) < 0;
    }

    /** MEMMOVE: overlapping buffers are copied as memmove does (GENCAP.overlap_copy); result bit 0 is the direction. */
    void memmove(Descriptor d, Completion c) {
        long len = d.sizeBytes();
        // Destination above the source and overlapping it: copy from the top down.
        long distance = d.addr2 - d.addr1;
        boolean backward = distance != 0 && Long.compareUnsigned(distance, len) < 0;
        long done = backward ? port.copyBackward(d.addr1, d.addr2, len) : port.copyForward(d.addr1, d.addr2, len);
        c.result = backward ? 1 : 0;
        if (done < len) {
            fault(c, done);
        }
    }

    /** MEMFILL: the 8-byte pattern repeated over the destination. */
    void fill(Descriptor d, Completion c) {
        long pattern = d.addr1;
        for (int i = 0; i < patternBuf.length; i++) {
            patternBuf[i] = (byte) (pattern >>> (8 * (i & 7)));
        }
        long len = d.sizeBytes();
        long done = 0;
        while (done < len) {
            int n = (int) Math.min(len - done, CHUNK);
            int w = port.write(d.addr2 + done, patternBuf, (int) (done & 7), n);
            done += w;
            if (w < n) {
                fault(c, done);
                return;
            }
        }
    }

    /**
     * COMPARE: result 0 if equal, else 1 with bytes completed = offset of the first difference.
     * With FLAG_CR, a result other than expected_res completes with SUCCESS_PRED.
     */
    void compare(Descriptor d, Completion c) {
        long len = d.sizeBytes();
        long done = 0;
        while (done < len) {
            int m = readBoth(d, done, len, c);
            if (m < 0) {
                return;
            }
            int diff = Arrays.mismatch(a, 0, m, b, 0, m);
            if (diff >= 0) {
                differs(d, c, done + diff);
                return;
            }
            done += m;
        }
        checkResult(d, c);
    }

    /**
     * Reads the next piece of both sources (addr1 into {@code a}, addr2 into {@code b}), at most a
     * chunk and never across a page of either.
     *
     * @return the bytes read into both, or -1 after a fault, which is reported in {@code c}
     */
    private int readBoth(Descriptor d, long done, long len, Completion c) {
        int n = port.readSome(d.addr1 + done, a, (int) Math.min(len - done, CHUNK));
        int m = n < 0 ? -1 : port.readSome(d.addr2 + done, b, n);
        if (m < 0) {
            fault(c, done);
        }
        return m;
    }

    /** COMPVAL: the source against the 8-byte pattern repeated. */
    void compareValue(Descriptor d, Completion c) {
        long pattern = d.addr2;
        long len = d.sizeBytes();
        long done = 0;
        while (done < len) {
            int n = port.readSome(d.addr1 + done, a, (int) Math.min(len - done, CHUNK));
            if (n < 0) {
                fault(c, done);
                return;
            }
            for (int i = 0; i < n; i++) {
                if (a[i] != (byte) (pattern >>> (8 * ((done + i) & 7)))) {
                    differs(d, c, done + i);
                    return;
                }
            }
            done += n;
        }
        checkResult(d, c);
    }

    private static void differs(Descriptor d, Completion c, long offset) {
        c.result = 1;
        c.bytesCompleted = offset;
        checkResult(d, c);
    }

    /** Check Result (FLAG_CR): a result that differs from expected_res makes the predicate false. */
    private static void checkResult(Descriptor d, Completion c) {
        if ((d.flags & Dsa.FLAG_CR) != 0 && c.result != (d.op8(40) & 1)) {
            c.status = Dsa.COMP_SUCCESS_PRED;
        }
    }

    /** DUALCAST: the source to two destinations (same bits 11:0, checked by the caller). */
    void dualcast(Descriptor d, Completion c) {
        long dest2 = d.op64(40);
        long len = d.sizeBytes();
        long done = port.copyForward(d.addr1, d.addr2, len);
        if (done < len) {
            fault(c, done);
            return;
        }
        done = port.copyForward(d.addr1, dest2, len);
        if (done < len) {
            fault(c, done);
        }
    }

    /** CRCGEN: CRC-32C of the source from crc_seed; the CRC goes to the record's operation-specific field. */
    void crc(Descriptor d, Completion c) {
        crcOver(d, c, false);
    }

    /** COPY_CRC: MEMMOVE (no overlap) and CRC-32C of the data. */
    void copyCrc(Descriptor d, Completion c) {
        crcOver(d, c, true);
    }

    private void crcOver(Descriptor d, Completion c, boolean copy) {
        int crc = d.op32(40);
        long len = d.sizeBytes();
        long done = 0;
        while (done < len) {
            int n = port.readSome(d.addr1 + done, a, (int) Math.min(len - done, CHUNK));
            if (n < 0) {
                fault(c, done);
                return;
            }
            if (copy) {
                int w = port.write(d.addr2 + done, a, 0, n);
                if (w < n) {
                    fault(c, done + w);
                    return;
                }
            }
            crc = Crc32c.update(crc, a, 0, n);
            done += n;
        }
        c.opSpecific = crc;
    }

    /**
     * CR_DELTA: compares two buffers 8 bytes at a time and writes a delta record of (word offset,
     * source-2 data) entries; result 0 (equal), 1 (delta written) or 2 (the record would exceed
     * max_delta_size). The record size goes to the operation-specific field.
     */
    void createDelta(Descriptor d, Completion c) {
        long deltaAddr = d.op64(40);
        long maxDelta = d.op32(48) & 0xffff_ffffL;
        long len = d.sizeBytes();
        long recSize = 0;
        long done = 0;
        while (done < len) {
            int m = readBoth(d, done, len, c);
            if (m < 0) {
                return;
            }
            for (int w = 0; w + 8 <= m; w += 8) {
                if (Arrays.mismatch(a, w, w + 8, b, w, w + 8) < 0) {
                    continue;
                }
                if (recSize + DELTA_ENTRY > maxDelta) {
                    c.result = 2;
                    c.opSpecific = (int) recSize;
                    c.bytesCompleted = done + w;
                    if ((d.flags & Dsa.FLAG_CR) != 0 && (d.op8(56) & (1 << 2)) == 0) {
                        c.status = Dsa.COMP_SUCCESS_PRED;
                    }
                    return;
                }
                int word = (int) ((done + w) >>> 3);
                entry[0] = (byte) word;
                entry[1] = (byte) (word >>> 8);
                System.arraycopy(b, w, entry, 2, 8);
                int written = port.write(deltaAddr + recSize, entry, 0, DELTA_ENTRY);
                if (written < DELTA_ENTRY) {
                    fault(c, done + w);
                    c.opSpecific = (int) recSize;
                    return;
                }
                recSize += DELTA_ENTRY;
            }
            done += m;
        }
        c.result = recSize == 0 ? 0 : 1;
        c.opSpecific = (int) recSize;
        // Check Result: the predicate holds if the mask (byte 56) has the result's bit set.
        if ((d.flags & Dsa.FLAG_CR) != 0 && (d.op8(56) & (1 << c.result)) == 0) {
            c.status = Dsa.COMP_SUCCESS_PRED;
        }
    }

    /**
     * AP_DELTA: applies a delta record (at addr1, delta_rec_size bytes) to the destination region of
     * xfer_size bytes. Offsets must increase (DR_OFFSET_NOINC) and stay inside it (DR_OFFSET_ERANGE).
     */
    void applyDelta(Descriptor d, Completion c) {
        long recSize = d.op32(40) & 0xffff_ffffL;
        long region = d.sizeBytes();
        long previous = -1;
        for (long at = 0; at < recSize; at += DELTA_ENTRY) {
            long got = 0;
            while (got < DELTA_ENTRY) {
                int n = port.readSome(d.addr1 + at + got, a, (int) (DELTA_ENTRY - got));
                if (n < 0) {
                    fault(c, at);
                    return;
                }
                System.arraycopy(a, 0, entry, (int) got, n);
                got += n;
            }
            long word = (entry[0] & 0xff) | (entry[1] & 0xff) << 8;
            if (word <= previous) {
                c.status = Dsa.COMP_DR_OFFSET_NOINC;
                c.bytesCompleted = at;
                return;
            }
            if (word * 8 + 8 > region) {
                c.status = Dsa.COMP_DR_OFFSET_ERANGE;
                c.bytesCompleted = at;
                return;
            }
            previous = word;
            int w = port.write(d.addr2 + word * 8, entry, 2, 8);
            if (w < 8) {
                fault(c, at);
                return;
            }
        }
    }

    static boolean overlaps(long a, long b, long length) {
        return length > 0 && overlap(a, b, length);
    }
}
