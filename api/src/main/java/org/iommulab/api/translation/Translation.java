package org.iommulab.api.translation;

/**
 * The result of translating one DMA request: either an output address with the page size and
 * permissions that produced it, or a fault with its neutral {@link FaultKind} and the vendor's
 * architectural code.
 *
 * <p>A mutable holder so that the translate hot path allocates nothing: a caller keeps one per
 * thread and passes it to every call, which overwrites it completely. Not thread safe; the string
 * fields hold constants, never per-call text.
 */
public final class Translation {
    private boolean success;
    private long outputAddress;
    private int pageShift;
    private int permissions;
    private FaultKind faultKind;
    private Stage faultStage;
    private int faultCode;
    private String faultName;
    private int faultLevel;
    private long faultAddress;

    /**
     * Records a successful translation.
     *
     * @param outputAddress the physical address the request goes to, in bytes
     * @param pageShift log2 of the size of the page (or block) that mapped it, 12 for 4 KiB
     * @param permissions the {@link Access} bits the mapping allows
     * @return this holder
     */
    public Translation success(long outputAddress, int pageShift, int permissions) {
        this.success = true;
        this.outputAddress = outputAddress;
        this.pageShift = pageShift;
        this.permissions = permissions;
        this.faultKind = null;
        this.faultStage = null;
        this.faultCode = 0;
        this.faultName = null;
        this.faultLevel = 0;
        this.faultAddress = 0;
        return this;
    }

    /**
     * Records a fault.
     *
     * @param kind the neutral class, not {@code null}
     * @param stage where it happened, not {@code null}
     * @param code the vendor's architectural code (VT-d fault reason, SMMUv3 event type)
     * @param name the vendor's name for the code, a constant such as {@code "PASID_ENTRY_P"}
     * @param level the table level where it happened, or 0 when not in a walk
     * @param address the address being translated at the failing stage (input address, or the
     *     IPA/GPA for a stage-2 fault inside a nested walk), in bytes
     * @return this holder
     */
    public Translation fault(FaultKind kind, Stage stage, int code, String name, int level, long address) {
        this.success = false;
        this.outputAddress = 0;
        this.pageShift = 0;
        this.permissions = 0;
        this.faultKind = kind;
        this.faultStage = stage;
        this.faultCode = code;
        this.faultName = name;
        this.faultLevel = level;
        this.faultAddress = address;
        return this;
    }

    /** @return {@code true} if the last translation succeeded */
    public boolean isSuccess() {
        return success;
    }

    /** @return the output physical address in bytes; 0 after a fault */
    public long outputAddress() {
        return outputAddress;
    }

    /** @return log2 of the mapping's page size in bytes; 0 after a fault */
    public int pageShift() {
        return pageShift;
    }

    /** @return the {@link Access} permission bits of the mapping; 0 after a fault */
    public int permissions() {
        return permissions;
    }

    /** @return the neutral fault class, or {@code null} after a success */
    public FaultKind faultKind() {
        return faultKind;
    }

    /** @return the stage that faulted, or {@code null} after a success */
    public Stage faultStage() {
        return faultStage;
    }

    /** @return the vendor's architectural fault code; 0 after a success */
    public int faultCode() {
        return faultCode;
    }

    /** @return the vendor's name for the fault code, or {@code null} after a success */
    public String faultName() {
        return faultName;
    }

    /** @return the table level of the fault, 0 when not in a walk */
    public int faultLevel() {
        return faultLevel;
    }

    /** @return the address being translated where the fault happened, in bytes */
    public long faultAddress() {
        return faultAddress;
    }

    /** @return {@code 0x<pa>} or {@code fault 0x<code> <NAME>}, the form {@code dma:translate} prints */
    @Override
    public String toString() {
        if (success) {
            return String.format("0x%x", outputAddress);
        }
        return String.format("fault 0x%x %s", faultCode, faultName);
    }
}
