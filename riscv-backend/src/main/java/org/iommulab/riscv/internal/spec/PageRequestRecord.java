package org.iommulab.riscv.internal.spec;

/**
 * Page-request-queue records (RISC-V IOMMU spec 1.0, §3.3 "Page-Request-Queue"): 16 bytes.
 * Doubleword 0: reserved 11:0, PID 31:12, PV 32, PRIV 33, EXEC 34, reserved 39:35, DID 63:40;
 * doubleword 1, the PCIe "Page Request" payload: R 0, W 1, L 2, PRG index 11:3, page address 63:12.
 * R = W = 0 with L = 1 is a Stop Marker.
 */
public final class PageRequestRecord {
    private PageRequestRecord() {
    }

    /** Size of a record in bytes. */
    public static final int SIZE = 16;

    public static final int PID_SHIFT = 12;
    public static final long PV = 1L << 32;
    public static final long PRIV = 1L << 33;
    public static final long EXEC = 1L << 34;
    public static final int DID_SHIFT = 40;
    public static final long R = 1;
    public static final long W = 1L << 1;
    /** Last request in the page request group: a response is expected. */
    public static final long L = 1L << 2;
    public static final int PRGI_SHIFT = 3;

    /** @return the header doubleword of a record */
    public static long header(int deviceId, int processId, boolean privileged, boolean exec) {
        long h = (long) (deviceId & 0xff_ffff) << DID_SHIFT;
        if (processId >= 0) {
            h |= PV | (long) processId << PID_SHIFT | (privileged ? PRIV : 0) | (exec ? EXEC : 0);
        }
        return h;
    }

    /** @return the payload doubleword of a page request */
    public static long payload(long address, boolean read, boolean write, boolean last, int groupIndex) {
        return (address & ~0xfffL) | (read ? R : 0) | (write ? W : 0) | (last ? L : 0)
                | (long) (groupIndex & 0x1ff) << PRGI_SHIFT;
    }

    /** @return DID of a header */
    public static int deviceId(long header) {
        return (int) (header >>> DID_SHIFT);
    }

    /** @return PID of a header, or -1 when PV is 0 */
    public static int processId(long header) {
        return (header & PV) == 0 ? -1 : (int) ((header >>> PID_SHIFT) & 0xfffff);
    }

    /** @return the PRG index of a payload */
    public static int groupIndex(long payload) {
        return (int) ((payload >>> PRGI_SHIFT) & 0x1ff);
    }
}
