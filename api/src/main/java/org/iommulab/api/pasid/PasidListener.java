package org.iommulab.api.pasid;

import org.osgi.annotation.versioning.ConsumerType;

/**
 * Told when a PASID leaves its set (freed, or its set closed), so that whatever was bound through
 * it (a PASID entry, a context descriptor, a work queue) is torn down. Register an implementation as
 * an OSGi service (whiteboard).
 *
 * <p>Called synchronously on the thread that freed the PASID, after the PASID is free and with no
 * platform lock held. Implementations must be thread safe, must not block for long and must not
 * throw; a throwing listener is logged and skipped.
 */
@ConsumerType
public interface PasidListener {

    /**
     * @param owner the owner token of the set that held the PASID, never {@code null}
     * @param setId the {@link PasidSet#id()} of that set
     * @param pasid the PASID that is no longer allocated
     */
    void pasidFreed(String owner, int setId, int pasid);
}
