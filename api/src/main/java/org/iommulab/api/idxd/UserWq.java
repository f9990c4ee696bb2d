package org.iommulab.api.idxd;

import org.iommulab.api.pasid.PasidSet;
import org.osgi.annotation.versioning.ProviderType;

/**
 * A host user work queue opened by a process (Linux idxd's character device {@code /dev/dsa/wqD.Q}):
 * a shared work queue the process feeds with ENQCMD, every descriptor carrying the PASID it was
 * opened with. The PASID is a handle from a PASID set, claimed with the consumer name
 * {@link org.iommulab.api.pasid.PasidConsumers#USER_WQ}; it normally is the process's SVA PASID.
 *
 * <p>Thread safe. Once the queue is closed or the PASID revoked (freed, or its set closed) every
 * submission is {@link SubmitStatus#REJECTED}, as ENQCMD faults once the kernel has dropped the
 * process's PASID.
 */
@ProviderType
public interface UserWq {

    /** @return the device */
    IdxdDevice device();

    /** @return the work-queue index */
    int wq();

    /** @return the PASID every descriptor carries */
    int pasid();

    /** @return the set the PASID belongs to */
    PasidSet set();

    /** @return {@code true} until closed or until its PASID is revoked */
    boolean isOpen();

    /**
     * ENQCMD to the queue's portal with the queue's PASID (user privilege).
     *
     * @param descriptor 64 bytes in the uAPI layout
     * @return ACCEPTED, RETRY when the queue is full or disabled, REJECTED once closed or revoked
     */
    SubmitStatus enqcmd(byte[] descriptor);

    /**
     * Closes the file: waits for the queue's descriptors with this PASID to finish (as Linux drains
     * the PASID at release), then ends the claim. Idempotent.
     */
    void close();
}
