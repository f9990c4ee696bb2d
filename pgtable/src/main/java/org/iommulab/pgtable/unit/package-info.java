/**
 * What every backend's IOMMU instance shares: a hardware model behind the {@link
 * org.iommulab.pgtable.unit.UnitModel} interface, and {@link org.iommulab.pgtable.unit.ModeledInstance},
 * the {@code IommuInstance} that pairs it with its host driver and handles closing.
 */
@Export
@Version("1.2.0")
package org.iommulab.pgtable.unit;

import org.osgi.annotation.bundle.Export;
import org.osgi.annotation.versioning.Version;
