/**
 * The platform's event log: a bounded record of what happened (faults, page requests, traps,
 * bindings), in order, for people and tests to read back.
 */
@Export
@Version("1.0.0")
package org.iommulab.api.events;

import org.osgi.annotation.bundle.Export;
import org.osgi.annotation.versioning.Version;
