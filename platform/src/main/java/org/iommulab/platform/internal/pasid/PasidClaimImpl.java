package org.iommulab.platform.internal.pasid;

import org.iommulab.api.pasid.PasidClaim;
import org.iommulab.api.pasid.PasidSet;

/** A claim: registered in its set's claim table under the space's monitor; ended once. */
final class PasidClaimImpl implements PasidClaim {
    private final PasidSpaceImpl space;
    private final PasidSetImpl set;
    private final int pasid;
    private final String consumer;
    /** Cleared under the space's monitor, read by submission paths without it. */
    volatile boolean valid = true;

    PasidClaimImpl(PasidSpaceImpl space, PasidSetImpl set, int pasid, String consumer) {
        this.space = space;
        this.set = set;
        this.pasid = pasid;
        this.consumer = consumer;
    }

    @Override
    public int pasid() {
        return pasid;
    }

    @Override
    public String consumer() {
        return consumer;
    }

    @Override
    public PasidSet set() {
        return set;
    }

    @Override
    public boolean isValid() {
        return valid;
    }

    @Override
    public void release() {
        space.release(this);
    }

    PasidSetImpl owningSet() {
        return set;
    }

    @Override
    public String toString() {
        return "PasidClaim[" + consumer + " PASID " + pasid + (valid ? "" : " ended") + "]";
    }
}
