/**
 * An IDXD/DSA-like data-streaming device whose work queues run descriptors as DMA tagged with
 * PASIDs, and its mediated devices for guests.
 */
@Export
@Version("1.1.0")
package org.iommulab.api.idxd;

import org.osgi.annotation.bundle.Export;
import org.osgi.annotation.versioning.Version;
