package org.iommulab.api.idxd;

import java.util.Map;

import org.iommulab.api.errno.IommuException;
import org.osgi.annotation.versioning.ProviderType;

/**
 * A mediated IDXD device given to a VM. The guest sees a device with one virtual work queue whose
 * registers (the WQCFG and CMD/CMDSTS layout of the parent) it programs; the host side maps that
 * configuration onto the parent's real work queue. Guest PASIDs are translated to host PASIDs by
 * the mdev's PASID translation table (standing in for the CPU's ENQCMD PASID translation, filled by
 * the VMM), and only PASIDs in the VM's PASID set are ever used: the security point of the 2020
 * /dev/sva discussion.
 *
 * <p>Thread safe.
 */
@ProviderType
public interface Mdev {

    /** Size of the virtual register space in bytes. */
    long MMIO_SIZE = 0x1000;

    /** @return the mdev name */
    String name();

    /** @return the parent device */
    IdxdDevice parent();

    /**
     * @return the mdev's requester on the device bus: mediated, in an IOMMU group of its own, which
     *     a VFIO container takes to give the mdev the VM's domain
     */
    org.iommulab.api.device.Requester requester();

    /**
     * Reads a virtual register as the guest does.
     *
     * @param offset offset in the virtual BAR0
     * @param size 4 or 8
     * @return the value
     * @throws IommuException {@code EINVAL} for a bad size, alignment or offset
     */
    long mmioRead(long offset, int size) throws IommuException;

    /**
     * Writes a virtual register as the guest does; a virtual command (enable, disable, drain the
     * virtual WQ) takes effect before return and reports in the virtual CMDSTS.
     *
     * @param offset offset in the virtual BAR0
     * @param value the value
     * @param size 4 or 8
     * @throws IommuException {@code EINVAL} for a bad size, alignment or offset
     */
    void mmioWrite(long offset, long value, int size) throws IommuException;

    /**
     * The VMM installs a guest-to-host PASID translation.
     *
     * @param guestPasid the guest's PASID
     * @param hostPasid a PASID of the VM's set
     * @throws IommuException {@code EPERM} if the host PASID is not the VM's, or another consumer
     *     (a host user queue) uses it and the VM's set does not authorise sharing it with
     *     {@link org.iommulab.api.pasid.PasidConsumers#VFIO_MDEV}; {@code EINVAL} for out-of-range
     *     values; {@code EEXIST} if the guest PASID is translated already; {@code ENODEV} if the
     *     mdev is closed or the set is
     */
    void mapGuestPasid(int guestPasid, int hostPasid) throws IommuException;

    /**
     * @param guestPasid a translated guest PASID
     * @throws IommuException {@code ENOENT} if it is not translated
     */
    void unmapGuestPasid(int guestPasid) throws IommuException;

    /** @return guest PASID to host PASID, a new map */
    Map<Integer, Integer> pasidTranslations();

    /**
     * The guest's ENQCMD to its (shared) virtual work queue, with its guest PASID.
     *
     * @param descriptor 64 bytes
     * @param guestPasid the guest process's PASID
     * @return REJECTED for an untranslated guest PASID or a host PASID revoked since (freed, or the
     *     VM's set closed),
     *     RETRY when the queue is full or disabled, else ACCEPTED
     */
    SubmitStatus enqcmd(byte[] descriptor, int guestPasid);

    /**
     * The guest's MOVDIR64B to its (dedicated) virtual work queue: the PASID is the one the guest
     * configured in the virtual WQCFG, translated when the queue was enabled.
     *
     * @param descriptor 64 bytes
     * @return ACCEPTED, or REJECTED if the virtual queue is not an enabled dedicated queue
     */
    SubmitStatus movdir64b(byte[] descriptor);

    /**
     * Removes the mdev: its virtual queue is disabled, the backing queue released and its requester
     * leaves the bus. Idempotent.
     *
     * @throws IommuException {@code EBUSY} while a VFIO container holds its group (nothing changes then)
     */
    void close() throws IommuException;
}
