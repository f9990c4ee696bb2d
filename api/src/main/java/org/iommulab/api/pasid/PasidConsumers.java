package org.iommulab.api.pasid;

/**
 * The consumer names the lab's own drivers claim PASIDs with ({@link PasidSet#claim}). A third-party
 * driver picks a name of its own.
 */
public final class PasidConsumers {
    /**
     * A VFIO mediated device used by a guest: the guest's PASIDs are translated to host PASIDs of the
     * VM's set (Linux idxd {@code vdcm}).
     */
    public static final String VFIO_MDEV = "vfio-mdev";
    /** A host user work queue: a process submits with ENQCMD (Linux idxd's character device). */
    public static final String USER_WQ = "user-wq";

    private PasidConsumers() {
    }
}
