package org.iommulab.api.process;

import org.iommulab.api.dto.ProcessDTO;
import org.iommulab.api.errno.IommuException;
import org.osgi.annotation.versioning.ProviderType;

/**
 * A user process on the host: a virtual address space made of anonymous mappings whose pages are
 * backed by host frames when first touched (by the CPU or by pinning), after Linux's {@code mm}.
 * A VMM keeps its guest's RAM in such a mapping; VFIO pins its pages for DMA
 * ({@code pin_user_pages}) and charges them to the process's locked-memory limit
 * ({@code RLIMIT_MEMLOCK}, {@code mm->locked_vm}).
 *
 * <p><b>Pinning.</b> A pinned page keeps its host frame until its last pin is dropped, even if it is
 * unmapped from the process in between (as a page pinned by {@code get_user_pages} outlives
 * {@code munmap}); the frame is freed at the last {@link #unpin}.
 *
 * <p>Addresses and lengths are in bytes; pages are 4 KiB. Thread safe. A rejected call changes
 * nothing.
 */
@ProviderType
public interface HostProcess {

    /** Page size of the process's mappings in bytes. */
    long PAGE_SIZE = 4096;

    /** @return the process name, unique among live processes, never {@code null} */
    String name();

    /**
     * Creates an anonymous private mapping ({@code mmap(MAP_ANONYMOUS | MAP_PRIVATE)}). No page is
     * backed until touched. Regions are 2 MiB aligned so that huge mappings stay possible.
     *
     * @param length bytes, rounded up to whole pages, at least 1
     * @return the virtual address of the mapping
     * @throws IommuException {@code EINVAL} for a length below 1, {@code ENOMEM} when the virtual
     *     address space has no room
     */
    long mmap(long length) throws IommuException;

    /**
     * Removes the pages of {@code [vaddr, vaddr + length)} from the address space and frees their
     * frames, except pinned ones, which are freed at their last unpin. Unmapped holes in the range
     * are ignored, as {@code munmap} does.
     *
     * @param vaddr page aligned
     * @param length bytes, rounded up to whole pages, at least 1
     * @throws IommuException {@code EINVAL} for a misaligned address, a length below 1 or a wrap
     */
    void munmap(long vaddr, long length) throws IommuException;

    /**
     * Pins the page holding {@code vaddr}, faulting it in first if it is not backed yet.
     *
     * @param vaddr any address inside a mapping
     * @return the host physical address of the page (page aligned)
     * @throws IommuException {@code EFAULT} if no mapping covers {@code vaddr}, {@code ENOMEM} if
     *     no host frame is left
     */
    long pin(long vaddr) throws IommuException;

    /**
     * Drops one pin of a page pinned by {@link #pin}.
     *
     * @param hostPhysical the address {@link #pin} returned
     * @throws IommuException {@code ENOENT} if the page is not pinned
     */
    void unpin(long hostPhysical) throws IommuException;

    /**
     * Charges (positive) or releases (negative) locked memory, as VFIO does for the pages it pins
     * ({@code account_locked_vm}).
     *
     * @param pages the change in pages
     * @throws IommuException {@code ENOMEM} if the charge would exceed the locked-memory limit
     *     (nothing is charged then), {@code EINVAL} if a release exceeds what is charged
     */
    void accountLocked(long pages) throws IommuException;

    /** @return the pages charged as locked now */
    long lockedPages();

    /** @return the locked-memory limit in bytes ({@code RLIMIT_MEMLOCK}); {@link Long#MAX_VALUE} is unlimited */
    long lockedLimit();

    /**
     * @param bytes the new locked-memory limit, at least 0; lowering it below what is charged only
     *     refuses further charges, as {@code setrlimit} does
     * @throws IommuException {@code EINVAL} for a negative limit
     */
    void setLockedLimit(long bytes) throws IommuException;

    /**
     * The CPU reads 8 bytes (little endian), faulting the page in if needed.
     *
     * @param vaddr virtual address, need not be aligned
     * @return the value
     * @throws IommuException {@code EFAULT} outside the process's mappings, {@code ENOMEM} if no frame is left
     */
    long read64(long vaddr) throws IommuException;

    /**
     * The CPU writes 8 bytes (little endian), faulting the page in if needed.
     *
     * @param vaddr virtual address, need not be aligned
     * @param value the value
     * @throws IommuException {@code EFAULT} outside the process's mappings, {@code ENOMEM} if no frame is left
     */
    void write64(long vaddr, long value) throws IommuException;

    /**
     * The CPU copies bytes out of its memory.
     *
     * @param vaddr first virtual address
     * @param dst destination, not {@code null}
     * @param offset first index written
     * @param length bytes
     * @throws IommuException {@code EFAULT} if a byte is outside the mappings (checked before any
     *     byte is copied), {@code ENOMEM} if no frame is left
     */
    void read(long vaddr, byte[] dst, int offset, int length) throws IommuException;

    /**
     * The CPU copies bytes into its memory.
     *
     * @param vaddr first virtual address
     * @param src source, not {@code null}
     * @param offset first index read
     * @param length bytes
     * @throws IommuException {@code EFAULT} if a byte is outside the mappings (checked before any
     *     byte is written), {@code ENOMEM} if no frame is left
     */
    void write(long vaddr, byte[] src, int offset, int length) throws IommuException;

    /**
     * @param vaddr any value
     * @return the host physical address backing {@code vaddr} now, or -1 if it is not backed (not
     *     mapped, or never touched); does not fault anything in
     */
    long residentAddress(long vaddr);

    /**
     * The pages resident now, for a user that starts mirroring the address space (the present
     * entries of the CPU page table an SVA bind starts from). Pinned pages already unmapped from
     * the process are not listed. Pages may change as soon as this returns: a user that mirrors
     * them registers its {@link MmuNotifier} first.
     *
     * @return a new array of (virtual address, host physical address) pairs, both page aligned,
     *     ascending by virtual address: {@code [va0, pa0, va1, pa1, ...]}; empty after exit
     * @since 1.1
     */
    long[] residentMappings();

    /**
     * Resolves a fault on the page holding {@code vaddr} ({@code handle_mm_fault}): backs it with a
     * frame if it is not resident (zero-filled, or its contents read back from swap) and tells
     * every {@link MmuNotifier}; a resident page is left as it is.
     *
     * @param vaddr any address
     * @param write whether the faulting access writes (every mapping is writable)
     * @return the host physical address of the page (page aligned)
     * @throws IommuException {@code EFAULT} if no mapping covers {@code vaddr}, {@code ENOMEM} if
     *     no frame is left
     * @since 1.1
     */
    long faultIn(long vaddr, boolean write) throws IommuException;

    /**
     * Writes the resident, unpinned pages of a range out to swap and frees their frames, after the
     * {@link MmuNotifier}s invalidated them; the next touch (CPU or device fault) reads them back.
     * Pinned pages stay resident.
     *
     * @param vaddr page aligned
     * @param length bytes, rounded up to whole pages, at least 1
     * @return the number of pages swapped out
     * @throws IommuException {@code EINVAL} for a misaligned address, a length below 1 or a wrap
     * @since 1.1
     */
    long swapOut(long vaddr, long length) throws IommuException;

    /** @return the pages of this process held in swap now @since 1.1 */
    long swappedPages();

    /**
     * @param notifier told of page changes until removed; added once however often it is passed
     * @since 1.1
     */
    void addMmuNotifier(MmuNotifier notifier);

    /** @param notifier a notifier added before; others are ignored @since 1.1 */
    void removeMmuNotifier(MmuNotifier notifier);

    /**
     * A window of the address space seen as a physical address space starting at 0: a VM's RAM as
     * its CPU and its virtual IOMMU see it (GPA {@code g} is {@code vaddr + g}). Pages are faulted in
     * on access; an access beyond {@code size} is an address-size error, one outside the process's
     * mappings an unbacked one.
     *
     * @param vaddr first virtual address of the window
     * @param size bytes, at least 1
     * @return the view, never {@code null}
     */
    org.iommulab.api.memory.PhysicalMemory physicalView(long vaddr, long size);

    /** @return the number of pages pinned now (a page pinned twice counts once) */
    long pinnedPages();

    /** @return a snapshot, never {@code null} */
    ProcessDTO toDTO();
}
