/**
 * The VMM: virtual machines whose RAM is mapped for DMA through VFIO, with a virtual IOMMU the
 * guest programs and whose invalidations the VMM turns into VFIO nesting operations (vSVA), and
 * the guest software steps (PASID allocation, process page tables, binding, submitting work).
 */
@Export
@Version("1.1.0")
package org.iommulab.api.vmm;

import org.osgi.annotation.bundle.Export;
import org.osgi.annotation.versioning.Version;
