package org.iommulab.idxd.internal.hw;

/** A descriptor accepted by a work queue, with the PASID and privilege its portal gave it. */
final class Work {
    final byte[] descriptor;
    final int pasid;
    final boolean priv;
    final WorkQueue wq;
    /** Arrival order within the queue, for DRAIN. */
    final long seq;

    Work(byte[] descriptor, int pasid, boolean priv, WorkQueue wq, long seq) {
        this.descriptor = descriptor;
        this.pasid = pasid;
        this.priv = priv;
        this.wq = wq;
        this.seq = seq;
    }
}
