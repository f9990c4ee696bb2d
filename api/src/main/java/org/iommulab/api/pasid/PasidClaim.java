package org.iommulab.api.pasid;

import org.osgi.annotation.versioning.ProviderType;

/**
 * One consumer's use of a PASID, taken with {@link PasidSet#claim}: the handle a driver keeps for as
 * long as it submits DMA with the PASID (a mediated device translating a guest PASID to it, a host
 * user work queue). A claim ends when its holder releases it or when the PASID leaves its set
 * (freed, or the set closed): then it is revoked, and {@link #isValid()} turns {@code false} before
 * the {@link PasidListener}s are told.
 *
 * <p>Thread safe. {@link #isValid()} is one volatile read and allocates nothing, so submission paths
 * may call it on every descriptor.
 */
@ProviderType
public interface PasidClaim {

    /** @return the PASID claimed */
    int pasid();

    /** @return the consumer name the claim was taken with, never {@code null} */
    String consumer();

    /** @return the set that holds the PASID, never {@code null} */
    PasidSet set();

    /** @return {@code true} until the claim is released or revoked */
    boolean isValid();

    /** Ends the claim. Releasing a released or revoked claim does nothing. */
    void release();
}
