/**
 * Simulated physical memory: 64-bit little-endian accesses, bulk copies, and page-frame allocation for in-memory structures (tables, queues).
 */
@Export
@Version("1.0.0")
package org.iommulab.api.memory;

import org.osgi.annotation.bundle.Export;
import org.osgi.annotation.versioning.Version;
