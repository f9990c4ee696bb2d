/**
 * DMA access types and the result of translating one DMA request: an output address or a neutral fault with the vendor's architectural code.
 */
@Export
@Version("1.0.0")
package org.iommulab.api.translation;

import org.osgi.annotation.bundle.Export;
import org.osgi.annotation.versioning.Version;
