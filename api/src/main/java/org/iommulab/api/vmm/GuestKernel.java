package org.iommulab.api.vmm;

import java.util.List;

import org.iommulab.api.errno.IommuException;
import org.osgi.annotation.versioning.ProviderType;

/**
 * The guest software the demo and the {@code vm:} commands drive: a guest kernel with an IOMMU
 * driver for its virtual IOMMU and processes that share their address spaces with devices (SVA).
 * What it does is what a guest OS does; only the VMM's traps make it reach the host.
 */
@ProviderType
public interface GuestKernel {

    /**
     * Starts a guest process: a PASID allocated through the paravirtual PASID call (the VMM turns it
     * into VFIO PASID_REQUEST; the guest gets the host PASID) and an empty 4-level page table in
     * guest memory.
     *
     * @param name process name
     * @return the process
     * @throws IommuException {@code ENOSPC} past the VM's PASID quota, {@code ENOMEM} without guest memory
     */
    GuestProcess startProcess(String name) throws IommuException;

    /** @return the guest's processes */
    List<GuestProcess> processes();

    /**
     * Brings the guest driver up on a device: the virtual IOMMU enabled (root table, queued
     * invalidation, page request queue), the device attached to a blocking domain, and its virtual
     * work queue configured (shared, block on fault, PASID enabled).
     *
     * @param virtualRid the device's guest requester id
     * @throws IommuException driver errors, {@code ENOENT} for an unknown device
     */
    void probeDevice(int virtualRid) throws IommuException;

    /** @return how many page requests the guest answered */
    long pageRequestsHandled();
}
