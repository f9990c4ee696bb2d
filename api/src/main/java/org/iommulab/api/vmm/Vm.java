package org.iommulab.api.vmm;

import java.util.List;

import org.iommulab.api.errno.IommuException;
import org.iommulab.api.idxd.Mdev;
import org.iommulab.api.memory.PhysicalMemory;
import org.iommulab.api.spi.IommuInstance;
import org.iommulab.api.vfio.VfioContainer;
import org.osgi.annotation.versioning.ProviderType;

/**
 * A virtual machine. Its RAM is a mapping of the VMM process, mapped at GPA 0 for DMA through a
 * VFIO nesting container (the VM's GPA -> HPA second stage). Its virtual IOMMU is an instance of
 * the host backend's hardware model over guest memory, in caching mode: every guest change to a
 * PASID entry and every guest invalidation is trapped and replayed on the host through VFIO (bind
 * guest page table, cache invalidate), and host page requests for the VM's PASIDs are injected into
 * the virtual IOMMU and answered by the guest. Thread safe.
 */
@ProviderType
public interface Vm {

    /** @return the VM name */
    String name();

    /** @return the host IOMMU instance its devices sit behind */
    String hostIommu();

    /** @return guest RAM in bytes */
    long ramSize();

    /** @return the guest's physical memory as its CPU sees it (GPA 0 to {@link #ramSize()}) */
    PhysicalMemory guestMemory();

    /** @return the guest's virtual IOMMU (registers, tables in guest memory) */
    IommuInstance viommu();

    /** @return the VFIO container that holds the VM's DMA mappings and nesting state */
    VfioContainer container();

    /**
     * Assigns a mediated device of an IDXD device to the VM, visible to the guest at a virtual
     * requester id behind its virtual IOMMU.
     *
     * @param idxdDevice the parent device's name
     * @param wq the backing (shared) work queue
     * @param virtualRid the requester id the guest sees
     * @return the mdev
     * @throws IommuException {@code EBUSY} if the VM has a device already (one per VM: a nesting
     *     container holds one group), driver and VFIO errors
     */
    Mdev assignMdev(String idxdDevice, int wq, int virtualRid) throws IommuException;

    /**
     * Assigns a whole IDXD device to the VM (passthrough): its IOMMU group joins the VM's container,
     * and on SMMUv3 the guest's context-descriptor table is handed to it whole (the guest's PASIDs
     * are its own substream ids). The device's work queues are used as the host configured them.
     *
     * @param idxdDevice the device's name
     * @param virtualRid the requester (stream) id the guest sees
     * @throws IommuException {@code EBUSY} if the VM has a device already, VFIO errors
     */
    void assignDevice(String idxdDevice, int virtualRid) throws IommuException;

    /** @return the assigned mdevs */
    List<Mdev> devices();

    /** @return the guest's kernel: PASIDs, process address spaces, devices through the vIOMMU */
    GuestKernel guest();

    /**
     * Moves the VM to a fresh VFIO container, as a VMM does when its container must be rebuilt
     * (VFIO updated, the VMM restarted, live migration to a new container): guest submissions are
     * held and in-flight work drained, the container's state saved, the old container closed, and
     * the devices' groups, DMA mappings, PASIDs and guest page-table bindings restored in a new one.
     * The PASIDs keep their values (fixed-PASID allocation): the guest, which was handed host
     * PASIDs, notices nothing.
     *
     * <p>The PASIDs are free between the close and the restore; if another owner takes one in
     * that window the call fails with {@code EBUSY} and the VM is left with its devices in a fresh
     * container that maps its RAM but holds none of its PASIDs.
     *
     * @throws IommuException {@code EBUSY} if a device does not go idle in 10 s (nothing changed)
     *     or a PASID was taken meanwhile; what {@code VfioContainer.restoreState} answers
     */
    void moveToFreshContainer() throws IommuException;

    /**
     * @return what the VMM did (traps taken, page requests injected, VFIO calls made) since the
     *     last call, oldest first, one line each
     */
    List<String> takeJournal();
}
