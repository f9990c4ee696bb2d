package org.iommulab.api.translation;

/**
 * Vendor-neutral fault classes. The page-table walker reports the first five; backends map each to
 * their architectural code (a VT-d fault reason, an SMMUv3 event type) and report that code beside
 * the neutral kind.
 */
public enum FaultKind {
    /** A table or leaf entry is not present / invalid (VT-d "not present", SMMUv3 F_TRANSLATION). */
    TRANSLATION,
    /** The entry does not allow the access (write to read-only, user access to supervisor page). */
    PERMISSION,
    /** An input or output address exceeds the configured size. */
    ADDRESS_SIZE,
    /** The access flag is clear and hardware update is off (SMMUv3 F_ACCESS). */
    ACCESS_FLAG,
    /** A table fetch or A/D update hit memory that could not be accessed. */
    WALK_EXTERNAL_ABORT,
    /** A configuration structure (context or PASID entry, STE, CD) is absent or malformed. */
    CONFIGURATION,
    /** Translation is disabled or the requester is blocked (abort mode, stream disabled). */
    BLOCKED,
    /** The request became a page request: it can be retried once the response arrives. */
    PAGE_REQUEST
}
