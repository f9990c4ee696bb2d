/**
 * Errno-style errors: every rejected call in IOMMU Lab reports one of Linux's errno values with a message, and changes nothing.
 */
@Export
@Version("1.0.0")
package org.iommulab.api.errno;

import org.osgi.annotation.bundle.Export;
import org.osgi.annotation.versioning.Version;
