/**
 * The backend conformance kit: what every IOMMU backend must do through the SPI, as named checks a
 * backend's own tests run. {@link org.iommulab.testkit.ConformanceKit#checks()} lists them; a
 * JUnit 5 test turns them into dynamic tests, a Pax Exam test runs them against the backend's
 * service in the container. The kit depends on the API and the page-table engine only, and on no
 * test framework: a failed check throws {@link java.lang.AssertionError} with the check's name, the
 * expectation and what the backend did.
 */
@Export
@Version("1.0.0")
package org.iommulab.testkit;

import org.osgi.annotation.bundle.Export;
import org.osgi.annotation.versioning.Version;
