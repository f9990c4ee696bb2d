package org.iommulab.idxd.internal.mdev;

import java.util.Map;
import java.util.TreeMap;
import java.util.function.Consumer;

import org.iommulab.api.device.DeviceBus;
import org.iommulab.api.device.Requester;
import org.iommulab.api.errno.Errno;
import org.iommulab.api.errno.IommuException;
import org.iommulab.api.idxd.IdxdDevice;
import org.iommulab.api.idxd.Mdev;
import org.iommulab.api.idxd.SubmitStatus;
import org.iommulab.api.idxd.WorkQueueConfig;
import org.iommulab.api.pasid.PasidClaim;
import org.iommulab.api.pasid.PasidConsumers;
import org.iommulab.api.pasid.PasidSet;
import org.iommulab.api.pasid.Pasids;
import org.iommulab.idxd.internal.hw.DsaDevice;
import org.iommulab.idxd.internal.hw.DsaDriver;
import org.iommulab.idxd.internal.hw.DsaRegisters;

/**
 * A mediated device (after Linux idxd's {@code vdcm}): a virtual BAR0 with one virtual work queue,
 * emulated by the host. The guest's WQCFG and commands land in virtual registers; enabling the
 * virtual queue maps its configuration onto the backing real queue, translating the guest PASID to
 * the host PASID the VMM installed and refusing any PASID outside the VM's set. One monitor guards
 * the virtual state.
 */
public final class MdevImpl implements Mdev {
    private static final int VWQ = 0;

    private final String name;
    private final IdxdDevice parent;
    private final DsaDevice hw;
    private final DsaDriver driver;
    private final int wq;
    private final PasidSet vmPasids;
    private final Consumer<MdevImpl> onClose;
    private final Requester requester;
    private final DeviceBus bus;
    /** Guest PASID to the claim on the host PASID it is translated to (consumer {@code vfio-mdev}). */
    private final Map<Integer, PasidClaim> guestToHost = new TreeMap<>();
    private final int[] vwqcfg = new int[8];
    private boolean deviceEnabled;
    private boolean wqEnabled;
    /** The claim on the host PASID the enabled dedicated virtual queue runs with, or null. */
    private PasidClaim dedicatedClaim;
    private long cmd;
    private long cmdsts;
    private boolean closed;

    /**
     * @param name mdev name
     * @param parent the parent as the API shows it
     * @param hw the parent's hardware model
     * @param wq the backing queue
     * @param vmPasids the VM's PASID set
     * @param onClose told once the mdev closes
     * @param requester its mediated requester on the bus
     * @param bus the device bus it leaves when it closes
     */
    public MdevImpl(String name, IdxdDevice parent, DsaDevice hw, int wq, PasidSet vmPasids, Consumer<MdevImpl> onClose,
            Requester requester, DeviceBus bus) {
        this.name = name;
        this.parent = parent;
        this.hw = hw;
        this.driver = new DsaDriver(hw);
        this.wq = wq;
        this.vmPasids = vmPasids;
        this.onClose = onClose;
        this.requester = requester;
        this.bus = bus;
    }

    @Override
    public Requester requester() {
        return requester;
    }

    /**
     * Claims the backing queue.
     *
     * @throws IommuException {@code EINVAL} for an unconfigured queue, {@code EBUSY} if a dedicated
     *     queue backs another mdev
     */
    public void attach() throws IommuException {
        if (driver.read(wq).size() == 0) {
            throw new IommuException(Errno.EINVAL, hw.name() + " wq" + wq + " is not configured");
        }
        hw.claim(wq, this);
    }

    @Override
    public String name() {
        return name;
    }

    @Override
    public IdxdDevice parent() {
        return parent;
    }

    // ---- virtual registers -----------------------------------------------------------------------

    @Override
    public synchronized long mmioRead(long offset, int size) throws IommuException {
        check(offset, size);
        long v = read64((int) (offset & ~7L));
        return size == 8 ? v : (offset & 4) != 0 ? v >>> 32 : v & 0xffff_ffffL;
    }

    private long read64(int off) throws IommuException {
        WorkQueueConfig backing = driver.read(wq);
        if (off >= DsaRegisters.WQCFG_BASE && off < DsaRegisters.WQCFG_BASE + 32) {
            int word = (off - DsaRegisters.WQCFG_BASE) / 4;
            return (vword(word) & 0xffff_ffffL) | (long) vword(word + 1) << 32;
        }
        return switch (off) {
            case DsaRegisters.VERSION -> DsaRegisters.VERSION_VALUE;
            case DsaRegisters.GENCAP -> DsaRegisters.GENCAP_VALUE;
            // One queue of the backing queue's size and mode.
            case DsaRegisters.WQCAP -> backing.size() | 1L << 16 | (backing.dedicated() ? 1L << 49 : 1L << 48) | 1L << 51
                    | 1L << 55;
            case DsaRegisters.GRPCAP -> 1;
            case DsaRegisters.ENGCAP -> 1;
            case DsaRegisters.OPCAP -> DsaRegisters.OPCAP_VALUE;
            case DsaRegisters.TABLE_OFFSET -> DsaRegisters.TABLE_OFFSET_VALUE;
            case DsaRegisters.GENSTS -> deviceEnabled ? 1 : 0;
            case DsaRegisters.CMD -> cmd;
            case DsaRegisters.CMDSTS -> cmdsts;
            default -> 0;
        };
    }

    private int vword(int word) {
        return word == 6 ? (wqEnabled ? 1 << 30 : 0) : word < 8 ? vwqcfg[word] : 0;
    }

    @Override
    public synchronized void mmioWrite(long offset, long value, int size) throws IommuException {
        check(offset, size);
        if (offset >= DsaRegisters.WQCFG_BASE && offset < DsaRegisters.WQCFG_BASE + 32) {
            if (wqEnabled) {
                return; // read-only while enabled, as on the parent
            }
            int word = (int) (offset - DsaRegisters.WQCFG_BASE) / 4;
            int[] masks = {0xffff, 0xffff, 0x3fff_ffff, 0x1ff, 0, 0, 0, 0};
            vwqcfg[word] = (int) value & masks[word];
            if (size == 8 && word + 1 < 8) {
                vwqcfg[word + 1] = (int) (value >>> 32) & masks[word + 1];
            }
            return;
        }
        if (offset == DsaRegisters.CMD) {
            cmd = value & 0xffff_ffffL;
            cmdsts = command((int) cmd);
        }
    }

    private static void check(long offset, int size) throws IommuException {
        if ((size != 4 && size != 8) || offset < 0 || offset + size > MMIO_SIZE || (offset & (size - 1)) != 0) {
            throw new IommuException(Errno.EINVAL, String.format("bad virtual register access 0x%x/%d", offset, size));
        }
    }

    /** A virtual command: the host emulates it on the backing queue. @return the CMDSTS error */
    private int command(int value) {
        int operand = value & 0xfffff;
        int code = (value >>> 20) & 0x1f;
        if (closed) {
            return 3; // IDXD_CMDSTS_HW_ERR: the mdev is gone
        }
        switch (code) {
            case DsaRegisters.CMD_ENABLE_DEVICE:
                if (deviceEnabled) {
                    return DsaRegisters.CMDSTS_ERR_DEV_ENABLED;
                }
                deviceEnabled = true;
                return DsaRegisters.CMDSTS_SUCCESS;
            case DsaRegisters.CMD_DISABLE_DEVICE:
                if (!deviceEnabled) {
                    return DsaRegisters.CMDSTS_ERR_DIS_DEV_EN;
                }
                disableQueue();
                deviceEnabled = false;
                return DsaRegisters.CMDSTS_SUCCESS;
            case DsaRegisters.CMD_RESET_DEVICE:
                disableQueue();
                deviceEnabled = false;
                java.util.Arrays.fill(vwqcfg, 0);
                return DsaRegisters.CMDSTS_SUCCESS;
            case DsaRegisters.CMD_ENABLE_WQ:
                return operand != VWQ ? DsaRegisters.CMDSTS_INVAL_WQIDX : enableQueue();
            case DsaRegisters.CMD_DISABLE_WQ:
            case DsaRegisters.CMD_DRAIN_WQ:
                if (operand != DsaDevice.queueMask(VWQ)) { // these take a queue mask, as on the parent
                    return DsaRegisters.CMDSTS_INVAL_WQIDX;
                }
                if (!deviceEnabled) {
                    return DsaRegisters.CMDSTS_ERR_DEV_NOT_EN;
                }
                if (code == DsaRegisters.CMD_DISABLE_WQ) {
                    disableQueue();
                } else {
                    drain();
                }
                return DsaRegisters.CMDSTS_SUCCESS;
            default:
                return DsaRegisters.CMDSTS_INVAL_CMD;
        }
    }

    /** ENABLE_WQ on the virtual queue: checks the guest's WQCFG, then maps it onto the real queue. */
    private int enableQueue() {
        if (!deviceEnabled) {
            return DsaRegisters.CMDSTS_ERR_DEV_NOTEN;
        }
        if (wqEnabled) {
            return DsaRegisters.CMDSTS_ERR_WQ_ENABLED;
        }
        try {
            WorkQueueConfig backing = driver.read(wq);
            boolean dedicated = (vwqcfg[2] & 1) != 0;
            int size = vwqcfg[0] & 0xffff;
            int priority = (vwqcfg[2] >>> 4) & 0xf;
            boolean pasidEnabled = (vwqcfg[2] & (1 << 28)) != 0;
            if (size == 0 || size > backing.size()) {
                return DsaRegisters.CMDSTS_ERR_WQ_SIZE;
            }
            if (priority == 0) {
                return DsaRegisters.CMDSTS_ERR_WQ_PRIOR;
            }
            if (dedicated != backing.dedicated()) {
                return DsaRegisters.CMDSTS_ERR_WQ_MODE; // the virtual queue has the backing queue's mode
            }
            if (!pasidEnabled) {
                // Without a PASID the mdev's DMA would use the parent's own translation: refused.
                return DsaRegisters.CMDSTS_ERR_PASID_EN;
            }
            if (!dedicated) {
                if (!driver.wqEnabled(wq)) {
                    return DsaRegisters.CMDSTS_ERR_WQ_MODE;
                }
                wqEnabled = true;
                return DsaRegisters.CMDSTS_SUCCESS;
            }
            PasidClaim claim = guestToHost.get((vwqcfg[2] >>> 8) & 0xfffff);
            if (claim == null || !claim.isValid()) {
                return DsaRegisters.CMDSTS_ERR_PASID_EN; // only PASIDs the host authorised for this VM
            }
            int host = claim.pasid();
            if (!hw.ownedBy(wq, this)) {
                return DsaRegisters.CMDSTS_ERR_WQ_MODE; // the real queue is not this mdev's alone
            }
            boolean wasEnabled = driver.wqEnabled(wq);
            if (wasEnabled) {
                driver.disableWq(wq);
            }
            boolean bof = (vwqcfg[2] & 2) != 0;
            try {
                driver.configure(wq, new WorkQueueConfig(backing.size(), true, priority, bof, true, host, false,
                        backing.prsDisabled(), Math.min(vwqcfg[3] & 0x1f, backing.maxTransferShift()),
                        Math.min((vwqcfg[3] >>> 5) & 0xf, backing.maxBatchShift())));
                driver.enableWq(wq);
            } catch (IommuException e) {
                // Put the real queue back as it was.
                driver.configure(wq, backing);
                if (wasEnabled) {
                    driver.enableWq(wq);
                }
                throw e;
            }
            dedicatedClaim = claim;
            wqEnabled = true;
            return DsaRegisters.CMDSTS_SUCCESS;
        } catch (IommuException e) {
            return 3; // IDXD_CMDSTS_HW_ERR: the host could not program the backing queue
        }
    }

    private void disableQueue() {
        if (!wqEnabled) {
            return;
        }
        wqEnabled = false;
        try {
            if ((vwqcfg[2] & 1) != 0) {
                driver.disableWq(wq);
                dedicatedClaim = null;
            } else {
                drain();
            }
        } catch (IommuException e) {
            // the parent is disabled or gone: nothing of ours runs there any more
        }
    }

    /** Waits for the VM's descriptors: the dedicated queue, or each of its host PASIDs on a shared one. */
    private void drain() {
        try {
            if ((vwqcfg[2] & 1) != 0) {
                driver.drainWq(wq);
            } else {
                for (PasidClaim host : guestToHost.values()) {
                    driver.drainPasid(host.pasid());
                }
            }
        } catch (IommuException e) {
            // the parent is disabled: nothing runs
        }
    }

    // ---- PASID translation -----------------------------------------------------------------------

    @Override
    public synchronized void mapGuestPasid(int guestPasid, int hostPasid) throws IommuException {
        if (guestPasid < 0 || guestPasid > Pasids.MAX_PASID || hostPasid < 1 || hostPasid > Pasids.MAX_PASID) {
            throw new IommuException(Errno.EINVAL, "PASIDs must be within 20 bits (host PASID from 1)");
        }
        if (closed) {
            throw new IommuException(Errno.ENODEV, name + " is closed");
        }
        if (guestToHost.containsKey(guestPasid)) {
            throw new IommuException(Errno.EEXIST, "guest PASID " + guestPasid + " is translated already");
        }
        // The claim checks ownership and that no other consumer uses the PASID unless the set allows it.
        guestToHost.put(guestPasid, vmPasids.claim(hostPasid, PasidConsumers.VFIO_MDEV));
    }

    @Override
    public synchronized void unmapGuestPasid(int guestPasid) throws IommuException {
        PasidClaim host = guestToHost.remove(guestPasid);
        if (host == null) {
            throw new IommuException(Errno.ENOENT, "guest PASID " + guestPasid + " is not translated");
        }
        // Descriptors already queued with it finish before the translation is gone (Linux drains a PASID before freeing it).
        try {
            driver.drainPasid(host.pasid());
        } catch (IommuException e) {
            // the parent is disabled: nothing of it runs
        }
        host.release();
    }

    @Override
    public synchronized Map<Integer, Integer> pasidTranslations() {
        Map<Integer, Integer> map = new TreeMap<>();
        guestToHost.forEach((guest, host) -> map.put(guest, host.pasid()));
        return map;
    }

    // ---- portals ---------------------------------------------------------------------------------

    @Override
    public SubmitStatus enqcmd(byte[] descriptor, int guestPasid) {
        int host;
        synchronized (this) {
            if (closed || (vwqcfg[2] & 1) != 0) {
                return SubmitStatus.REJECTED;
            }
            if (!wqEnabled) {
                return SubmitStatus.RETRY;
            }
            PasidClaim h = guestToHost.get(guestPasid);
            if (h == null || !h.isValid()) {
                return SubmitStatus.REJECTED; // the CPU's PASID translation faults: #GP in the guest
            }
            host = h.pasid();
        }
        return hw.enqcmd(wq, descriptor, host, false);
    }

    @Override
    public SubmitStatus movdir64b(byte[] descriptor) {
        synchronized (this) {
            if (closed || !wqEnabled || (vwqcfg[2] & 1) == 0) {
                return SubmitStatus.REJECTED;
            }
            if (dedicatedClaim == null || !dedicatedClaim.isValid() || !hw.ownedBy(wq, this)) {
                return SubmitStatus.REJECTED; // the VM's PASID was freed since, or the queue is not ours alone
            }
        }
        return hw.movdir64b(wq, descriptor);
    }

    @Override
    public void close() throws IommuException {
        synchronized (this) {
            if (closed) {
                return;
            }
            bus.unregister(requester.name()); // EBUSY while a container holds the mdev's group
            disableQueue();
            closed = true;
            releaseClaims();
        }
        hw.release(wq, this);
        onClose.accept(this);
    }

    /** The mdev is gone: its PASIDs are free for other consumers. Called with the monitor held. */
    private void releaseClaims() {
        guestToHost.values().forEach(PasidClaim::release);
        guestToHost.clear();
    }

    /** Unplug of the parent: closes whatever holds the group; the requester goes when it is free. */
    public void unplug() {
        try {
            close();
        } catch (IommuException e) {
            synchronized (this) {
                disableQueue();
                closed = true;
                releaseClaims();
            }
            hw.release(wq, this);
            onClose.accept(this);
        }
    }

    @Override
    public String toString() {
        return "mdev " + name + " on " + hw.name() + " wq" + wq;
    }
}
