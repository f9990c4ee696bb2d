package org.iommulab.api.vmm;

import java.util.List;
import java.util.Optional;

import org.iommulab.api.errno.IommuException;
import org.osgi.annotation.versioning.ProviderType;

/** Creates and tracks VMs. Provided by the {@code vmm} bundle as an OSGi service. Thread safe. */
@ProviderType
public interface VmManager {

    /**
     * Boots a VM: a VMM process with its RAM, a virtual IOMMU of the host IOMMU's vendor over guest
     * memory (caching mode), and no devices yet.
     *
     * @param name a new VM name (also the VMM process's and the PASID set's owner token)
     * @param hostIommu the host IOMMU instance its devices sit behind
     * @param ramBytes guest RAM, a multiple of 2 MiB, 16 MiB to 4 GiB
     * @return the VM
     * @throws IommuException {@code EEXIST} for a taken name, {@code ENODEV} for an unknown IOMMU,
     *     {@code EINVAL} for a bad size
     */
    Vm create(String name, String hostIommu, long ramBytes) throws IommuException;

    /**
     * @param name VM name
     * @return the VM, or empty
     */
    Optional<Vm> vm(String name);

    /** @return the VMs, by name, in a new list */
    List<Vm> vms();

    /**
     * Shuts a VM down: its devices are released, its container closed, its process ends.
     *
     * @param name VM name
     * @throws IommuException {@code ENOENT} if there is no such VM
     */
    void destroy(String name) throws IommuException;
}
