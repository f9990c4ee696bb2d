package org.iommulab.api.memory;

/**
 * An access to simulated physical memory that the memory system cannot complete. Hardware models
 * turn it into their architectural answer (VT-d "access error" fault reasons, SMMUv3 F_WALK_EABT or
 * F_STE_FETCH, a DSA completion status); it never escapes a model.
 *
 * <p>This exception is created only on the failing path and carries no stack trace, so a fuzzer that
 * provokes millions of them stays fast. Instances are immutable.
 */
public final class MemoryAccessException extends RuntimeException {
    private static final long serialVersionUID = 1L;

    /** Why an access failed. */
    public enum Reason {
        /** The page was never written or allocated (or was freed): nothing backs it. */
        UNBACKED,
        /** The address lies beyond the memory's physical address width. */
        ADDRESS_SIZE,
        /** An atomic access was not naturally aligned. */
        MISALIGNED
    }

    private final long address;
    private final Reason reason;

    /**
     * @param reason why the access failed, never {@code null}
     * @param address the physical address of the failing access, in bytes
     */
    public MemoryAccessException(Reason reason, long address) {
        super(null, null, false, false);
        this.reason = reason;
        this.address = address;
    }

    /** @return the physical address (bytes) whose access failed */
    public long address() {
        return address;
    }

    /** @return why the access failed, never {@code null} */
    public Reason reason() {
        return reason;
    }

    @Override
    public String getMessage() {
        switch (reason) {
            case UNBACKED:
                return String.format("0x%x: unbacked physical address (never written or allocated)", address);
            case ADDRESS_SIZE:
                return String.format("0x%x: beyond the physical address width", address);
            default:
                return String.format("0x%x: misaligned atomic access", address);
        }
    }
}
