package org.iommulab.api.errno;

/**
 * The errno values IOMMU Lab reports, numbered as on Linux (asm-generic/errno-base.h, errno.h) so
 * that a VMM developer sees the value the kernel would have returned.
 */
public enum Errno {
    /** Operation not permitted: the caller does not own the PASID, set or resource. */
    EPERM(1),
    /** No such entry: unknown PASID, set, mapping, domain or instance. */
    ENOENT(2),
    /** I/O error: the hardware model reported an error the caller cannot fix. */
    EIO(5),
    /** Try again: a queue is full for now (shared work queue "retry"). */
    EAGAIN(11),
    /** Out of memory: frame pool or locked-memory limit exhausted. */
    ENOMEM(12),
    /** Bad address: an access touched memory that is not backed. */
    EFAULT(14),
    /** Resource busy: in use (attached, bound, already allocated to someone else). */
    EBUSY(16),
    /** Already exists: overlapping mapping, duplicate name. */
    EEXIST(17),
    /** No such device: no backend for a vendor, instance gone. */
    ENODEV(19),
    /** Invalid argument: malformed, misaligned, out of range or an invalid combination. */
    EINVAL(22),
    /** No space left: quota, PASID space, entry limit or table exhausted. */
    ENOSPC(28),
    /** Result out of range. */
    ERANGE(34),
    /** Operation not supported by this backend or configuration. */
    EOPNOTSUPP(95),
    /** Timed out waiting for the hardware model (a queue that never completes). */
    ETIMEDOUT(110);

    private final int value;

    Errno(int value) {
        this.value = value;
    }

    /** @return the positive Linux errno value, for example 22 for {@link #EINVAL} */
    public int value() {
        return value;
    }
}
