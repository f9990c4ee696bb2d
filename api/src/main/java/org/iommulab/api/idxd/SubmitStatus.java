package org.iommulab.api.idxd;

/** What a work-queue portal answers a submission. */
public enum SubmitStatus {
    /** The descriptor was queued (ENQCMD: ZF clear; MOVDIR64B: posted). */
    ACCEPTED,
    /** The shared work queue is full or not enabled: ENQCMD sets ZF and software retries. */
    RETRY,
    /**
     * The submission never reached the device: a guest PASID the PASID translation does not know
     * (the CPU raises #GP), or a portal of a work queue that does not exist.
     */
    REJECTED
}
