package org.iommulab.pgtable.unit;

import java.util.List;
import java.util.Map;

import org.iommulab.api.dto.WalkStepDTO;
import org.iommulab.api.errno.IommuException;
import org.iommulab.api.fault.PageResponse;
import org.iommulab.api.nesting.GuestIommuListener;
import org.iommulab.api.translation.Translation;
import org.osgi.annotation.versioning.ConsumerType;

/**
 * A backend's hardware model as its {@link ModeledInstance} uses it: the register window, the
 * device-side translation and page-request paths, and diagnostics. The methods mean what the
 * {@link org.iommulab.api.spi.IommuInstance} methods of the same names mean; an implementation must
 * be thread safe, and {@link #translate} must not block or allocate.
 */
@ConsumerType
public interface UnitModel {
    /** @return the size of the register window in bytes */
    long mmioSize();

    /**
     * @param offset byte offset in the register window
     * @param size 4 or 8
     * @return the register's value
     * @throws IommuException {@code EINVAL} for a bad size, alignment or offset
     */
    long read(long offset, int size) throws IommuException;

    /**
     * @param offset byte offset in the register window
     * @param value the value written
     * @param size 4 or 8
     * @throws IommuException {@code EINVAL} for a bad size, alignment or offset
     */
    void write(long offset, long value, int size) throws IommuException;

    /** As {@link org.iommulab.api.spi.IommuInstance#translate}. */
    boolean translate(int requesterId, int pasid, long address, int access, Translation out);

    /** As {@link org.iommulab.api.spi.IommuInstance#explain}; never null. */
    List<WalkStepDTO> explain(int requesterId, int pasid, long address, int access);

    /** As {@link org.iommulab.api.spi.IommuInstance#pageRequest}. */
    boolean pageRequest(int requesterId, int pasid, long address, int access, int groupIndex);

    /** As {@link org.iommulab.api.spi.IommuInstance#pageRequestStatus}; null while unanswered. */
    PageResponse pageRequestStatus(int requesterId, int pasid, int groupIndex);

    /** As {@link org.iommulab.api.spi.IommuInstance#setGuestListener}; null removes it. */
    void setGuestListener(GuestIommuListener listener);

    /** @return the configuration the model was built with, by key; never null */
    Map<String, String> configuration();

    /** @return counters by name; never null */
    Map<String, Long> statistics();
}
