/**
 * The backend SPI a vendor implements (IommuBackend, IommuInstance, IommuDriver, IommuDomain) and the registry the platform provides.
 */
@Export
@Version("1.1.0")
package org.iommulab.api.spi;

import org.osgi.annotation.bundle.Export;
import org.osgi.annotation.versioning.Version;
