/**
 * Host processes: user address spaces whose anonymous memory is backed by host frames on first
 * touch, with the page pinning and locked-memory accounting that VFIO's DMA mappings rely on.
 */
@Export
@Version("1.1.0")
package org.iommulab.api.process;

import org.osgi.annotation.bundle.Export;
import org.osgi.annotation.versioning.Version;
