package org.iommulab.smmuv3.internal.hw;

import org.iommulab.api.translation.FaultKind;

/**
 * The event types the model raises, numbered as SMMUv3 numbers them (Arm IHI 0070, §7.3), plus
 * {@link #ABORT}: a transaction terminated without an event (STE.Config abort, or GBPA.ABORT
 * while SMMUEN is clear), which has no event number and is reported with code 0.
 */
enum SmmuEvent {
    ABORT(0x00, "ABORT", FaultKind.BLOCKED, false),
    C_BAD_STREAMID(0x02, "C_BAD_STREAMID", FaultKind.CONFIGURATION, true),
    F_STE_FETCH(0x03, "F_STE_FETCH", FaultKind.WALK_EXTERNAL_ABORT, true),
    C_BAD_STE(0x04, "C_BAD_STE", FaultKind.CONFIGURATION, true),
    F_STREAM_DISABLED(0x06, "F_STREAM_DISABLED", FaultKind.BLOCKED, true),
    C_BAD_SUBSTREAMID(0x08, "C_BAD_SUBSTREAMID", FaultKind.CONFIGURATION, true),
    F_CD_FETCH(0x09, "F_CD_FETCH", FaultKind.WALK_EXTERNAL_ABORT, true),
    C_BAD_CD(0x0a, "C_BAD_CD", FaultKind.CONFIGURATION, true),
    F_WALK_EABT(0x0b, "F_WALK_EABT", FaultKind.WALK_EXTERNAL_ABORT, true),
    F_TRANSLATION(0x10, "F_TRANSLATION", FaultKind.TRANSLATION, true),
    F_ADDR_SIZE(0x11, "F_ADDR_SIZE", FaultKind.ADDRESS_SIZE, true),
    F_ACCESS(0x12, "F_ACCESS", FaultKind.ACCESS_FLAG, true),
    F_PERMISSION(0x13, "F_PERMISSION", FaultKind.PERMISSION, true);

    final int code;
    final String spec;
    final FaultKind kind;
    /** {@code false} for {@link #ABORT}: nothing is written to the event queue. */
    final boolean recorded;

    SmmuEvent(int code, String spec, FaultKind kind, boolean recorded) {
        this.code = code;
        this.spec = spec;
        this.kind = kind;
        this.recorded = recorded;
    }

    /**
     * @return {@code true} for the configuration events (C_BAD_*, F_STREAM_DISABLED, F_STE_FETCH,
     *     F_CD_FETCH) whose records carry no transaction attributes or input address (§7.3.3-§7.3.11)
     */
    boolean configuration() {
        return code >= 0x02 && code <= 0x0a;
    }

    /** @return the event with this code, or {@code null} */
    static SmmuEvent ofCode(int code) {
        for (SmmuEvent e : values()) {
            if (e.code == code) {
                return e;
            }
        }
        return null;
    }
}
