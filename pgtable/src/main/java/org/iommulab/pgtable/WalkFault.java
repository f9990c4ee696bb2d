package org.iommulab.pgtable;

import org.iommulab.api.translation.FaultKind;

/**
 * Why a walk failed, finer than {@link FaultKind}, so that a backend can pick its architectural
 * code (a VT-d fault reason distinguishes a non-present entry from a reserved bit; an SMMUv3 event
 * does not).
 */
public enum WalkFault {
    /** The input address lies outside the table's input range (ARM: beyond TxSZ; VT-d: beyond AW). */
    INPUT_RANGE(FaultKind.TRANSLATION),
    /** The input address is not canonical (x86 first stage). */
    NON_CANONICAL(FaultKind.TRANSLATION),
    /** An entry is not present / not valid. */
    NOT_PRESENT(FaultKind.TRANSLATION),
    /** An entry has a reserved bit set, or a leaf where the level allows none. */
    RESERVED(FaultKind.TRANSLATION),
    /** A table or output address exceeds the output size (ARM IPS/PS). */
    OUTPUT_RANGE(FaultKind.ADDRESS_SIZE),
    /** The access flag is clear and hardware update is off (ARM). */
    ACCESS_FLAG(FaultKind.ACCESS_FLAG),
    /** A read was not permitted. */
    READ(FaultKind.PERMISSION),
    /** A write was not permitted. */
    WRITE(FaultKind.PERMISSION),
    /** An instruction fetch was not permitted. */
    EXEC(FaultKind.PERMISSION),
    /** An unprivileged request touched a privileged-only page (x86 U/S, ARM AP[1]). */
    PRIVILEGE(FaultKind.PERMISSION),
    /** Reading a table entry failed: its memory is not backed or beyond the memory. */
    TABLE_FETCH(FaultKind.WALK_EXTERNAL_ABORT),
    /** Setting the accessed or dirty flag failed (the entry's memory could not be written). */
    AD_UPDATE(FaultKind.WALK_EXTERNAL_ABORT);

    private final FaultKind kind;

    WalkFault(FaultKind kind) {
        this.kind = kind;
    }

    /** @return the neutral fault class this detail belongs to */
    public FaultKind kind() {
        return kind;
    }
}
