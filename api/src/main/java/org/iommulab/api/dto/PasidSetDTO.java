package org.iommulab.api.dto;

/** A snapshot of a PASID set. */
public class PasidSetDTO {
    /** The set's id. */
    public int id;
    /** The owner token. */
    public String owner;
    /** How many PASIDs the set may hold. */
    public int quota;
    /** The PASIDs held, ascending. */
    public int[] pasids;
    /** {@code true} once the set is closed. */
    public boolean closed;
    /** The consumers authorised to share the set's PASIDs, sorted; {@code null} in a 1.0 snapshot. */
    public String[] authorized;
    /** The claims held now, by PASID then consumer; {@code null} in a 1.0 snapshot. */
    public PasidClaimDTO[] claims;
}
