package org.iommulab.idxd.internal;

import org.iommulab.api.errno.IommuException;
import org.iommulab.api.idxd.IdxdDevice;
import org.iommulab.api.idxd.SubmitStatus;
import org.iommulab.api.idxd.UserWq;
import org.iommulab.api.pasid.PasidClaim;
import org.iommulab.api.pasid.PasidSet;
import org.iommulab.idxd.internal.hw.DsaDevice;
import org.iommulab.idxd.internal.hw.DsaDriver;

/**
 * An open user work queue (Linux idxd's {@code idxd_user_context}): a shared queue plus the claim on
 * the PASID its descriptors carry. Submission checks the claim on every descriptor, so a revoked
 * PASID stops the queue's submissions at once.
 */
final class UserWqImpl implements UserWq {
    private final IdxdDeviceImpl device;
    private final DsaDevice hw;
    private final int wq;
    private final PasidClaim claim;
    private volatile boolean closed;

    UserWqImpl(IdxdDeviceImpl device, DsaDevice hw, int wq, PasidClaim claim) {
        this.device = device;
        this.hw = hw;
        this.wq = wq;
        this.claim = claim;
    }

    @Override
    public IdxdDevice device() {
        return device;
    }

    @Override
    public int wq() {
        return wq;
    }

    @Override
    public int pasid() {
        return claim.pasid();
    }

    @Override
    public PasidSet set() {
        return claim.set();
    }

    @Override
    public boolean isOpen() {
        return !closed && claim.isValid();
    }

    @Override
    public SubmitStatus enqcmd(byte[] descriptor) {
        if (!isOpen()) {
            return SubmitStatus.REJECTED; // the kernel dropped the PASID: ENQCMD faults
        }
        return hw.enqcmd(wq, descriptor, claim.pasid(), false);
    }

    @Override
    public void close() {
        synchronized (this) {
            if (closed) {
                return;
            }
            closed = true;
        }
        try {
            new DsaDriver(hw).drainPasid(claim.pasid());
        } catch (IommuException e) {
            // the device is disabled: nothing of ours runs
        }
        claim.release();
        hw.release(wq, this);
        device.forget(this);
    }

    @Override
    public String toString() {
        return "user wq " + hw.name() + " wq" + wq + " PASID " + claim.pasid() + (isOpen() ? "" : " (closed)");
    }
}
