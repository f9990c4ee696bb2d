package org.iommulab.idxd.internal.hw;

/**
 * One work queue's WQCFG registers (DSA spec §9.2.19; Linux {@code union wqcfg}): eight 32-bit
 * words, of which the model implements words 0-3 and the state/occupancy word 6.
 *
 * <pre>
 * word 0  wq_size:16
 * word 1  wq_thresh:16
 * word 2  mode:1 (1 dedicated) bof:1 wq_ats_disable:1 wq_prs_disable:1 priority:4 pasid:20 pasid_en:1 priv:1
 * word 3  max_xfer_shift:5 max_batch_shift:4
 * word 6  occupancy:16 ... wq_state:2 (bits 31:30, 1 = enabled)   read-only
 * </pre>
 */
final class WqConfig {
    static final int WORDS = 8;
    static final int BYTES = 32;

    final int[] words = new int[WORDS];

    int size() {
        return words[0] & 0xffff;
    }

    int threshold() {
        return words[1] & 0xffff;
    }

    boolean dedicated() {
        return (words[2] & 1) != 0;
    }

    boolean blockOnFault() {
        return (words[2] & 2) != 0;
    }

    boolean atsDisabled() {
        return (words[2] & 4) != 0;
    }

    boolean prsDisabled() {
        return (words[2] & 8) != 0;
    }

    int priority() {
        return (words[2] >>> 4) & 0xf;
    }

    int pasid() {
        return (words[2] >>> 8) & 0xfffff;
    }

    boolean pasidEnabled() {
        return (words[2] & (1 << 28)) != 0;
    }

    boolean priv() {
        return (words[2] & (1 << 29)) != 0;
    }

    int maxTransferShift() {
        return words[3] & 0x1f;
    }

    int maxBatchShift() {
        return (words[3] >>> 5) & 0xf;
    }

    /** Software-writable bits of each word (reserved and read-only bits ignore writes). */
    static int writableMask(int word) {
        return switch (word) {
            case 0, 1 -> 0xffff;
            case 2 -> 0x3fff_ffff;
            case 3 -> 0x1ff;
            default -> 0;
        };
    }

    /** Builds word 2 from its fields, for software that programs a queue. */
    static int word2(boolean dedicated, boolean bof, boolean atsDisable, boolean prsDisable, int priority, int pasid,
            boolean pasidEnable, boolean priv) {
        return (dedicated ? 1 : 0) | (bof ? 2 : 0) | (atsDisable ? 4 : 0) | (prsDisable ? 8 : 0) | (priority & 0xf) << 4
                | (pasid & 0xfffff) << 8 | (pasidEnable ? 1 << 28 : 0) | (priv ? 1 << 29 : 0);
    }
}
