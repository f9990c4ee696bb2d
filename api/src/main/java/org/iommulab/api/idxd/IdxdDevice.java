package org.iommulab.api.idxd;

import java.util.Map;

import org.iommulab.api.errno.IommuException;
import org.iommulab.api.pasid.PasidSet;
import org.osgi.annotation.versioning.ProviderType;

/**
 * A DSA-like device behind an IOMMU instance: programmed through its MMIO registers (BAR0: GENCAP,
 * WQCAP, GRPCFG, WQCFG, CMD/CMDSTS, SWERR, as Linux {@code drivers/dma/idxd/registers.h} lays
 * them out) and fed 64-byte descriptors through its work-queue portals. Every memory access it
 * makes (descriptor lists, sources, destinations, completion records) is a DMA translated by the
 * IOMMU with the descriptor's PASID.
 *
 * <p>Thread safe. Descriptors run on the device's engine threads; completion is visible in memory
 * (the completion record) and in {@link #statistics()}.
 */
@ProviderType
public interface IdxdDevice {

    /** @return the device name, never {@code null} */
    String name();

    /** @return the IOMMU instance the device sits behind */
    String iommu();

    /** @return its requester id (source id or stream id) */
    int requesterId();

    /** @return the size of the BAR0 register space in bytes */
    long mmioSize();

    /**
     * @param offset BAR0 offset
     * @param size 4 or 8
     * @return the register value; unimplemented offsets read 0
     * @throws IommuException {@code EINVAL} for a bad size, alignment or offset
     */
    long mmioRead(long offset, int size) throws IommuException;

    /**
     * @param offset BAR0 offset
     * @param value the value
     * @param size 4 or 8
     * @throws IommuException {@code EINVAL} for a bad size, alignment or offset
     */
    void mmioWrite(long offset, long value, int size) throws IommuException;

    /** @return the number of work queues (WQCAP.num_wqs) */
    int queues();

    /**
     * The host driver configures a queue (WQCFG) and puts it in group 0, which holds every engine.
     * Allowed while the queue is disabled; the device must be disabled for the group change to
     * take (GRPCFG is read-only while it is enabled).
     *
     * @param wq queue index
     * @param config the configuration, not {@code null}
     * @throws IommuException {@code EINVAL} for a bad index, {@code EBUSY} if the queue is enabled
     */
    void configure(int wq, WorkQueueConfig config) throws IommuException;

    /**
     * ENABLE_DEVICE.
     *
     * @throws IommuException {@code EIO} with the CMDSTS error if the device refuses (for example
     *     0x14 queue sizes beyond the total, 0x15 a sized queue without a group and engine)
     */
    void enable() throws IommuException;

    /**
     * DISABLE_DEVICE: waiting descriptors are discarded, running ones finish.
     *
     * @throws IommuException {@code EIO} with the CMDSTS error (0x31 if not enabled)
     */
    void disable() throws IommuException;

    /**
     * ENABLE_WQ.
     *
     * @param wq queue index
     * @throws IommuException {@code EIO} with the CMDSTS error (0x20 device not enabled, 0x21
     *     enabled already, 0x22 size 0, 0x23 priority 0, 0x26 a shared queue without PASID)
     */
    void enableWq(int wq) throws IommuException;

    /**
     * DISABLE_WQ: waits for the queue's descriptors to finish.
     *
     * @param wq queue index
     * @throws IommuException {@code EIO} with the CMDSTS error
     */
    void disableWq(int wq) throws IommuException;

    /**
     * @param wq queue index
     * @return the queue's configuration as WQCFG holds it now
     * @throws IommuException {@code EINVAL} for a bad index
     */
    WorkQueueConfig wqConfig(int wq) throws IommuException;

    /**
     * @param wq queue index
     * @return {@code true} if enabled (WQCFG.wq_state)
     * @throws IommuException {@code EINVAL} for a bad index
     */
    boolean wqEnabled(int wq) throws IommuException;

    /**
     * MOVDIR64B to a dedicated work queue's portal: the descriptor's PASID field is ignored and the
     * WQ's configured PASID used. A descriptor beyond the queue's capacity is dropped (software
     * must track a dedicated queue's occupancy) and counted.
     *
     * @param wq work-queue index
     * @param descriptor 64 bytes in the uAPI layout ({@code struct dsa_hw_desc})
     * @return {@link SubmitStatus#ACCEPTED}, or {@link SubmitStatus#REJECTED} for a WQ that is not
     *     an enabled dedicated queue
     */
    SubmitStatus movdir64b(int wq, byte[] descriptor);

    /**
     * ENQCMD (user) or ENQCMDS (supervisor) to a shared work queue's portal: the CPU puts the
     * submitter's PASID into the descriptor.
     *
     * @param wq work-queue index
     * @param descriptor 64 bytes
     * @param pasid the submitter's PASID (IA32_PASID for ENQCMD)
     * @param supervisor {@code true} for ENQCMDS with the privilege bit set
     * @return ACCEPTED, RETRY when the queue is full or disabled, REJECTED for a non-shared queue
     */
    SubmitStatus enqcmd(int wq, byte[] descriptor, int pasid, boolean supervisor);

    /**
     * Waits until every accepted descriptor has completed.
     *
     * @param timeoutMillis how long at most
     * @return {@code true} if idle in time
     * @throws InterruptedException if interrupted
     */
    boolean awaitIdle(long timeoutMillis) throws InterruptedException;

    /** @return counters (descriptors, completions by status, interrupts, page requests, retries, drops), a new map */
    Map<String, Long> statistics();

    /**
     * Opens a shared work queue for a host process, with a PASID handle passed to this driver (the
     * character-device path of Linux idxd). The PASID is claimed for
     * {@link org.iommulab.api.pasid.PasidConsumers#USER_WQ}: refused while another consumer (a guest's
     * mdev) uses it unless its set authorises both.
     *
     * @param wq an enabled shared work queue that backs no mdev
     * @param set the set the PASID belongs to
     * @param pasid the PASID the process's descriptors carry (its SVA PASID)
     * @return the open queue
     * @throws IommuException {@code EINVAL} for a bad index, a dedicated or disabled queue or no set,
     *     {@code EBUSY} if the queue backs an mdev, {@code EPERM} if the set does not hold the PASID
     *     or does not authorise sharing it, {@code ENODEV} if the set is closed
     * @since 1.1
     */
    UserWq openUserWq(int wq, org.iommulab.api.pasid.PasidSet set, int pasid) throws IommuException;

    /**
     * Creates a mediated device over one of this device's work queues, for a VM (Linux's idxd
     * {@code vdcm}): a virtual device with one virtual work queue the guest programs through
     * virtual registers.
     *
     * @param name a new mdev name
     * @param wq the backing work queue (its mode becomes the virtual queue's mode)
     * @param vmPasids the VM's PASID set: every PASID the mdev uses must be in it
     * @return the mdev
     * @throws IommuException {@code EEXIST} for a taken name (mdev or requester), {@code EINVAL} for
     *     an unknown or unconfigured queue, {@code EBUSY} if a dedicated queue backs another mdev
     *     already or the queue is open as a user queue
     */
    Mdev createMdev(String name, int wq, PasidSet vmPasids) throws IommuException;
}
