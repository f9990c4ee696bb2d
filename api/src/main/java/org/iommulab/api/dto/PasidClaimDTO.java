package org.iommulab.api.dto;

/** A snapshot of the claims one consumer holds on one PASID. */
public class PasidClaimDTO {
    /** The PASID. */
    public int pasid;
    /** The consumer's name. */
    public String consumer;
    /** How many claims that consumer holds on it (one per device or queue using it). */
    public int count;
}
