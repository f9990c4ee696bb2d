/**
 * Data transfer objects: snapshots with public fields for introspection and shell output. A DTO is never live and never shared.
 */
@Export
@Version("1.1.0")
package org.iommulab.api.dto;

import org.osgi.annotation.bundle.Export;
import org.osgi.annotation.versioning.Version;
