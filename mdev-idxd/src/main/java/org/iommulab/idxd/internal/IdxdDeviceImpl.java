package org.iommulab.idxd.internal;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;

import org.iommulab.api.device.Requester;
import org.iommulab.api.errno.Errno;
import org.iommulab.api.errno.IommuException;
import org.iommulab.api.idxd.IdxdDevice;
import org.iommulab.api.idxd.Mdev;
import org.iommulab.api.idxd.SubmitStatus;
import org.iommulab.api.idxd.UserWq;
import org.iommulab.api.idxd.WorkQueueConfig;
import org.iommulab.api.pasid.PasidClaim;
import org.iommulab.api.pasid.PasidConsumers;
import org.iommulab.api.pasid.PasidSet;
import org.iommulab.idxd.internal.hw.DsaDevice;
import org.iommulab.idxd.internal.hw.DsaDriver;
import org.iommulab.idxd.internal.mdev.MdevImpl;

/** A device as the API presents it: the hardware model plus the host driver's register programming. */
final class IdxdDeviceImpl implements IdxdDevice {
    private final DsaDevice hw;
    private final DsaDriver driver;
    private final IdxdServiceImpl service;
    private final List<MdevImpl> mdevs = new ArrayList<>();
    /** Guarded by this. */
    private final List<UserWqImpl> userWqs = new ArrayList<>();

    IdxdDeviceImpl(DsaDevice hw, IdxdServiceImpl service) {
        this.hw = hw;
        this.driver = new DsaDriver(hw);
        this.service = service;
    }

    DsaDevice hw() {
        return hw;
    }

    @Override
    public String name() {
        return hw.name();
    }

    @Override
    public String iommu() {
        return hw.iommu().name();
    }

    @Override
    public int requesterId() {
        return hw.requesterId();
    }

    @Override
    public long mmioSize() {
        return 0x1000;
    }

    @Override
    public long mmioRead(long offset, int size) throws IommuException {
        return hw.mmioRead(offset, size);
    }

    @Override
    public void mmioWrite(long offset, long value, int size) throws IommuException {
        hw.mmioWrite(offset, value, size);
    }

    @Override
    public int queues() {
        return hw.queues();
    }

    private int index(int wq) throws IommuException {
        if (wq < 0 || wq >= hw.queues()) {
            throw new IommuException(Errno.EINVAL, name() + " has work queues 0 to " + (hw.queues() - 1) + ", not " + wq);
        }
        return wq;
    }

    @Override
    public synchronized void configure(int wq, WorkQueueConfig config) throws IommuException {
        if (config == null) {
            throw new IommuException(Errno.EINVAL, "no configuration");
        }
        if (driver.wqEnabled(index(wq))) {
            throw new IommuException(Errno.EBUSY, name() + " wq" + wq + " is enabled: disable it first");
        }
        if (hw.claimed(wq)) {
            throw new IommuException(Errno.EBUSY, name() + " wq" + wq + " backs an mdev: close it first");
        }
        driver.configure(wq, config);
    }

    @Override
    public void enable() throws IommuException {
        driver.enableDevice();
    }

    @Override
    public void disable() throws IommuException {
        driver.disableDevice();
    }

    @Override
    public void enableWq(int wq) throws IommuException {
        driver.enableWq(index(wq));
    }

    @Override
    public void disableWq(int wq) throws IommuException {
        driver.disableWq(index(wq));
    }

    @Override
    public WorkQueueConfig wqConfig(int wq) throws IommuException {
        return driver.read(index(wq));
    }

    @Override
    public boolean wqEnabled(int wq) throws IommuException {
        return driver.wqEnabled(index(wq));
    }

    @Override
    public SubmitStatus movdir64b(int wq, byte[] descriptor) {
        return hw.movdir64b(wq, descriptor);
    }

    @Override
    public SubmitStatus enqcmd(int wq, byte[] descriptor, int pasid, boolean supervisor) {
        return hw.enqcmd(wq, descriptor, pasid, supervisor);
    }

    @Override
    public boolean awaitIdle(long timeoutMillis) throws InterruptedException {
        return hw.awaitIdle(timeoutMillis);
    }

    @Override
    public Map<String, Long> statistics() {
        return hw.statistics();
    }

    @Override
    public synchronized UserWq openUserWq(int wq, PasidSet set, int pasid) throws IommuException {
        if (set == null) {
            throw new IommuException(Errno.EINVAL, "a user queue needs the PASID's set");
        }
        WorkQueueConfig config = driver.read(index(wq));
        if (config.dedicated() || !driver.wqEnabled(wq)) {
            throw new IommuException(Errno.EINVAL, name() + " wq" + wq + " is not an enabled shared queue");
        }
        if (hw.claimed(wq) && !userQueue(wq)) {
            throw new IommuException(Errno.EBUSY, name() + " wq" + wq + " backs an mdev");
        }
        PasidClaim claim = set.claim(pasid, PasidConsumers.USER_WQ);
        UserWqImpl open = new UserWqImpl(this, hw, wq, claim);
        try {
            hw.claim(wq, open); // a shared queue takes any number of users
        } catch (IommuException | RuntimeException e) {
            claim.release();
            throw e;
        }
        userWqs.add(open);
        return open;
    }

    private boolean userQueue(int wq) {
        return userWqs.stream().anyMatch(u -> u.wq() == wq);
    }

    synchronized void forget(UserWqImpl closed) {
        userWqs.remove(closed);
    }

    @Override
    public Mdev createMdev(String name, int wq, PasidSet vmPasids) throws IommuException {
        if (vmPasids == null) {
            throw new IommuException(Errno.EINVAL, "an mdev needs the VM's PASID set");
        }
        index(wq);
        synchronized (this) {
            if (userQueue(wq)) {
                throw new IommuException(Errno.EBUSY, name() + " wq" + wq + " is open as a user queue");
            }
        }
        Requester requester = service.bus().registerMediated(name, name());
        MdevImpl mdev = new MdevImpl(name, this, hw, wq, vmPasids, closed -> {
            service.forget(closed);
            synchronized (this) {
                mdevs.remove(closed);
            }
        }, requester, service.bus());
        try {
            service.register(mdev);
            try {
                mdev.attach();
            } catch (IommuException | RuntimeException e) {
                service.forget(mdev);
                throw e;
            }
        } catch (IommuException | RuntimeException e) {
            service.bus().unregister(name);
            throw e;
        }
        synchronized (this) {
            mdevs.add(mdev);
        }
        return mdev;
    }

    /** Unplug: the mdevs and user queues close, then the hardware. */
    void close() {
        List<MdevImpl> all;
        List<UserWqImpl> users;
        synchronized (this) {
            all = new ArrayList<>(mdevs);
            mdevs.clear();
            users = new ArrayList<>(userWqs);
        }
        all.forEach(MdevImpl::unplug);
        users.forEach(UserWqImpl::close);
        hw.close();
    }

    @Override
    public String toString() {
        return "idxd " + name();
    }
}
