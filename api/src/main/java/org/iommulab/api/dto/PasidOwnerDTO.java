package org.iommulab.api.dto;

/** A snapshot of one owner of PASID sets: its limit and what its open sets hold. */
public class PasidOwnerDTO {
    /** The owner token. */
    public String owner;
    /** The owner's limit on the PASIDs its open sets hold together; -1 when it has none. */
    public int quota;
    /** The PASIDs its open sets hold now, together. */
    public int used;
    /** The ids of its open sets, in creation order. */
    public int[] sets;
}
