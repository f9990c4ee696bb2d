/**
 * The shared page-table engine, after Linux's io-pgtable and generic_pt: small immutable format
 * classes that read and write entries as the specifications lay them out (x86/VT-d first stage,
 * VT-d second stage, Arm VMSAv8-64 stage 1 and stage 2), one {@link org.iommulab.pgtable.Walker}
 * for the hardware side (single-stage and nested 2-D walks, neutral faults, no allocation per
 * walk), and {@link org.iommulab.pgtable.IoPageTable} for the driver side (map, unmap,
 * iova-to-phys, with flush callbacks).
 */
@Export
@Version("1.1.0")
package org.iommulab.pgtable;

import org.osgi.annotation.bundle.Export;
import org.osgi.annotation.versioning.Version;
