package org.iommulab.idxd.internal.hw;

import org.iommulab.api.errno.Errno;
import org.iommulab.api.errno.IommuException;
import org.iommulab.api.idxd.WorkQueueConfig;

/**
 * Programs a device through its registers as Linux's idxd driver does ({@code idxd_device_config},
 * {@code idxd_wq_enable}): group and WQ configuration while disabled, then ENABLE_DEVICE and
 * ENABLE_WQ, checking CMDSTS. Used by the service, the shell and tests; it never reaches into the
 * model's state.
 */
public final class DsaDriver {
    private final DsaDevice device;

    public DsaDriver(DsaDevice device) {
        this.device = device;
    }

    /**
     * Writes a queue's WQCFG and puts it in group 0 (which gets every engine), with the device and
     * the queue disabled. Nothing is enabled.
     */
    public void configure(int wq, WorkQueueConfig s) throws IommuException {
        long base = DsaRegisters.WQCFG_BASE + (long) wq * WqConfig.BYTES;
        device.mmioWrite(base, s.size(), 4);
        device.mmioWrite(base + 4, 0, 4);
        device.mmioWrite(base + 8, WqConfig.word2(s.dedicated(), s.blockOnFault(), false, s.prsDisabled(), s.priority(),
                s.pasid(), s.pasidEnabled(), s.priv()) & 0xffff_ffffL, 4);
        device.mmioWrite(base + 12, s.maxTransferShift() | s.maxBatchShift() << 5, 4);
        long wqs = device.mmioRead(DsaRegisters.GRPCFG_BASE, 8);
        device.mmioWrite(DsaRegisters.GRPCFG_BASE, wqs | 1L << wq, 8);
        device.mmioWrite(DsaRegisters.GRPCFG_BASE + 32, (1L << DsaRegisters.NUM_ENGINES) - 1, 8);
    }

    /** ENABLE_DEVICE. */
    public void enableDevice() throws IommuException {
        command(DsaRegisters.CMD_ENABLE_DEVICE, 0);
    }

    /** DISABLE_DEVICE. */
    public void disableDevice() throws IommuException {
        command(DsaRegisters.CMD_DISABLE_DEVICE, 0);
    }

    public void enableWq(int wq) throws IommuException {
        command(DsaRegisters.CMD_ENABLE_WQ, wq);
    }

    public void disableWq(int wq) throws IommuException {
        command(DsaRegisters.CMD_DISABLE_WQ, DsaDevice.queueMask(wq));
    }

    /** DRAIN_WQ: waits for the queue's descriptors. */
    public void drainWq(int wq) throws IommuException {
        command(DsaRegisters.CMD_DRAIN_WQ, DsaDevice.queueMask(wq));
    }

    /** DRAIN_PASID: waits for every descriptor of the PASID (Linux drains before unbinding). */
    public void drainPasid(int pasid) throws IommuException {
        command(DsaRegisters.CMD_DRAIN_PASID, pasid);
    }

    /**
     * @return the configuration WQCFG holds for a queue
     */
    public WorkQueueConfig read(int wq) throws IommuException {
        long base = DsaRegisters.WQCFG_BASE + (long) wq * WqConfig.BYTES;
        int size = (int) device.mmioRead(base, 4) & 0xffff;
        int w2 = (int) device.mmioRead(base + 8, 4);
        int w3 = (int) device.mmioRead(base + 12, 4);
        return new WorkQueueConfig(size, (w2 & 1) != 0, (w2 >>> 4) & 0xf, (w2 & 2) != 0, (w2 & (1 << 28)) != 0,
                (w2 >>> 8) & 0xfffff, (w2 & (1 << 29)) != 0, (w2 & 8) != 0, w3 & 0x1f, (w3 >>> 5) & 0xf);
    }

    /** @return {@code true} if the queue is enabled (WQCFG word 6, wq_state) */
    public boolean wqEnabled(int wq) throws IommuException {
        return ((device.mmioRead(DsaRegisters.WQCFG_BASE + (long) wq * WqConfig.BYTES + 24, 4) >>> 30) & 3) == 1;
    }

    /** @return {@code true} if the device is enabled (GENSTS.state) */
    public boolean enabled() throws IommuException {
        return (device.mmioRead(DsaRegisters.GENSTS, 4) & 3) == 1;
    }

    /**
     * Writes CMD and checks CMDSTS.
     *
     * @throws IommuException {@code EIO} with the CMDSTS error code if the command failed
     */
    public void command(int cmd, int operand) throws IommuException {
        long sts = device.runCommand((cmd & 0x1f) << 20 | (operand & 0xfffff));
        if ((sts & 0xff) != 0) {
            throw new IommuException(Errno.EIO, String.format("%s: command %d (operand %d) failed, CMDSTS error 0x%02x",
                    device.name(), cmd, operand, sts & 0xff));
        }
    }
}
