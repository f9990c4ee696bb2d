package org.iommulab.idxd.internal.hw;

import org.iommulab.api.idxd.Dsa;

/**
 * The outcome of a descriptor, encoded as the 32-byte completion record
 * ({@code struct dsa_completion_record}, DSA spec §8.2): status (0), result (1), bytes completed
 * (4), fault address (8), and an operation-specific 32-bit value at 16 (invalid flags, CRC value,
 * delta record size). Mutable and reused by an engine.
 */
final class Completion {
    int status;
    int result;
    long bytesCompleted;
    long faultAddr;
    int opSpecific;

    Completion reset() {
        status = Dsa.COMP_SUCCESS;
        result = 0;
        bytesCompleted = 0;
        faultAddr = 0;
        opSpecific = 0;
        return this;
    }

    Completion set(int status) {
        this.status = status;
        return this;
    }

    boolean success() {
        return (status & 0x7f) == Dsa.COMP_SUCCESS || (status & 0x7f) == Dsa.COMP_SUCCESS_PRED;
    }

    void encode(byte[] into) {
        java.util.Arrays.fill(into, 0, Dsa.COMP_SIZE, (byte) 0);
        into[0] = (byte) status;
        into[1] = (byte) result;
        Descriptor.put32(into, 4, (int) bytesCompleted);
        Descriptor.put64(into, 8, faultAddr);
        Descriptor.put32(into, 16, opSpecific);
    }
}
