/**
 * The page-table formats: one small immutable class per format, named and laid out as its
 * specification does, each created through a factory that rejects configurations the hardware
 * would reject.
 */
@Export
@Version("1.1.0")
package org.iommulab.pgtable.format;

import org.osgi.annotation.bundle.Export;
import org.osgi.annotation.versioning.Version;
