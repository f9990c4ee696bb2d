package org.iommulab.api.idxd;

/**
 * A work queue's configuration as the host driver programs it into WQCFG (Linux idxd's sysfs /
 * {@code accel-config} attributes). Immutable.
 *
 * @param size entries, 1 to the device's total
 * @param dedicated {@code true} for a dedicated queue (MOVDIR64B, PASID from here), {@code false}
 *     for a shared one (ENQCMD, PASID from the submitter)
 * @param priority 1 to 15
 * @param blockOnFault descriptors with the BOF flag wait for page requests on faults
 * @param pasidEnabled requests carry a PASID (required for a shared queue)
 * @param pasid the dedicated queue's PASID
 * @param priv supervisor requests allowed
 * @param prsDisabled page requests disabled for this queue (no blocking on faults)
 * @param maxTransferShift log2 of the largest transfer size
 * @param maxBatchShift log2 of the largest batch
 */
public record WorkQueueConfig(int size, boolean dedicated, int priority, boolean blockOnFault, boolean pasidEnabled,
        int pasid, boolean priv, boolean prsDisabled, int maxTransferShift, int maxBatchShift) {

    /** Largest transfer of the model: 2 GiB. */
    public static final int MAX_TRANSFER_SHIFT = 31;
    /** Largest batch of the model: 1024 descriptors. */
    public static final int MAX_BATCH_SHIFT = 10;

    /**
     * @param size entries
     * @return a shared queue with block-on-fault, priority 10, the largest limits
     */
    public static WorkQueueConfig shared(int size) {
        return new WorkQueueConfig(size, false, 10, true, true, 0, false, false, MAX_TRANSFER_SHIFT, MAX_BATCH_SHIFT);
    }

    /**
     * @param size entries
     * @param pasid the queue's PASID, or -1 for requests without PASID
     * @return a dedicated queue, priority 10, the largest limits
     */
    public static WorkQueueConfig dedicated(int size, int pasid) {
        return new WorkQueueConfig(size, true, 10, false, pasid >= 0, Math.max(pasid, 0), false, false,
                MAX_TRANSFER_SHIFT, MAX_BATCH_SHIFT);
    }
}
