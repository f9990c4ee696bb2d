package org.iommulab.api.spi;

import java.util.List;
import java.util.Map;

import org.iommulab.api.dto.WalkStepDTO;
import org.iommulab.api.errno.IommuException;
import org.iommulab.api.memory.PhysicalMemory;
import org.iommulab.api.translation.Translation;
import org.osgi.annotation.versioning.ConsumerType;

/**
 * One IOMMU: a hardware model driven only by MMIO register accesses, the structures it reads from
 * {@link #memory()} and DMA requests, plus the host driver that programs it. The same hardware model
 * serves as a physical IOMMU over host memory and as a guest's virtual IOMMU over guest memory.
 *
 * <p>Implemented by backends. Thread safe: translations run concurrently from many threads with
 * each other and with register accesses; {@link #translate} allocates nothing.
 */
@ConsumerType
public interface IommuInstance {

    /** @return the instance name, unique in its registry, never {@code null} */
    String name();

    /** @return the backend's vendor id ({@code vtd}, {@code smmuv3}, ...), never {@code null} */
    String vendor();

    /** @return the effective configuration (every key with its value), unmodifiable */
    Map<String, String> configuration();

    /** @return the physical memory the hardware model reads its structures from */
    PhysicalMemory memory();

    /** @return the size of the MMIO register space in bytes */
    long mmioSize();

    /**
     * Reads a register as the CPU would.
     *
     * @param offset byte offset in the register space
     * @param size 4 or 8 bytes
     * @return the value, zero-extended; reserved and unimplemented offsets read as 0
     * @throws IommuException {@code EINVAL} for a size other than 4 or 8, an offset not aligned to
     *     the size, or an offset beyond {@link #mmioSize()}
     */
    long mmioRead(long offset, int size) throws IommuException;

    /**
     * Writes a register as the CPU would; writes to read-only and reserved bits are ignored, as the
     * specifications require, and any effect (command, queue processing) happens before return.
     *
     * @param offset byte offset in the register space
     * @param value the value; only the low {@code size} bytes are used
     * @param size 4 or 8 bytes
     * @throws IommuException {@code EINVAL} for a bad size, alignment or offset
     */
    void mmioWrite(long offset, long value, int size) throws IommuException;

    /**
     * Translates one DMA request as the hardware does: caches first, else a table walk; a fault is
     * recorded (fault log, event queue, page request) as the architecture says and returned.
     *
     * @param requesterId source id or stream id (unsigned)
     * @param pasid the PASID, or {@link org.iommulab.api.pasid.Pasids#NO_PASID}
     * @param address input address in bytes (unsigned)
     * @param access {@link org.iommulab.api.translation.Access} bits
     * @param out receives the result; not {@code null}
     * @return {@code out.isSuccess()}
     */
    boolean translate(int requesterId, int pasid, long address, int access, Translation out);

    /**
     * Walks the tables for a request without caching, recording or side effects (no A/D updates),
     * for people: one step per entry read, nested sub-walks one level deeper.
     *
     * @param requesterId source id or stream id
     * @param pasid the PASID, or {@link org.iommulab.api.pasid.Pasids#NO_PASID}
     * @param address input address
     * @param access {@link org.iommulab.api.translation.Access} bits
     * @return the steps, ending with the result line; never {@code null}
     */
    List<WalkStepDTO> explain(int requesterId, int pasid, long address, int access);

    /**
     * A device's page request (PCIe PRI; VT-d page request descriptor; SMMUv3 PRI queue entry):
     * after a translation failed, a device that supports page requests asks for the page and waits
     * for the response to its page request group. The IOMMU queues the request for software (its
     * page request queue) or answers it itself when it cannot queue it.
     *
     * @param requesterId source id or stream id
     * @param pasid the PASID, or {@link org.iommulab.api.pasid.Pasids#NO_PASID}
     * @param address the address that faulted
     * @param access {@link org.iommulab.api.translation.Access} bits requested
     * @param groupIndex the page request group index the device chose (PCIe: 9 bits)
     * @return {@code true} if the request was accepted (queued or answered), {@code false} if page
     *     requests are not enabled for this requester (the device must treat the access as failed)
     */
    default boolean pageRequest(int requesterId, int pasid, long address, int access, int groupIndex) {
        return false;
    }

    /**
     * The device side of a page response: polled by a device waiting for its page request group.
     *
     * @param requesterId source id or stream id
     * @param pasid the PASID, or {@link org.iommulab.api.pasid.Pasids#NO_PASID}
     * @param groupIndex the group index of the request
     * @return {@code null} while the request is pending (or unknown), else the response, which is
     *     then consumed
     */
    default org.iommulab.api.fault.PageResponse pageRequestStatus(int requesterId, int pasid, int groupIndex) {
        return null;
    }

    /**
     * Makes this instance a guest's virtual IOMMU whose cache invalidations the VMM traps.
     *
     * @param listener the VMM's listener, or {@code null} to stop
     * @throws IommuException {@code EOPNOTSUPP} if the backend reports no guest changes (the default)
     */
    default void setGuestListener(org.iommulab.api.nesting.GuestIommuListener listener) throws IommuException {
        throw new IommuException(org.iommulab.api.errno.Errno.EOPNOTSUPP, vendor() + " reports no guest changes");
    }

    /**
     * Live update, first half: quiesces the instance (new calls wait, calls in flight finish) and
     * gives up its hardware model and driver without releasing anything they built, returning what
     * the next build of the backend needs to take over. The instance object stays valid: callers
     * holding it, its driver or its domains wait until {@link IommuBackend#resume} gives it a new
     * model and driver, or until it is closed (then they fail as on a closed instance).
     *
     * @return the state, never {@code null}
     * @throws IommuException {@code EOPNOTSUPP} if the backend cannot hand over (the default),
     *     {@code EBUSY} if it is handed over already, {@code ENODEV} if closed
     */
    default InstanceState handOver() throws IommuException {
        throw new IommuException(org.iommulab.api.errno.Errno.EOPNOTSUPP, vendor() + " cannot hand its state over");
    }

    /** @return the host driver of this instance, never {@code null} */
    IommuDriver driver();

    /** @return counters (cache hits, misses, faults, ...) by name, a new map */
    Map<String, Long> statistics();

    /**
     * Stops the instance: domains are torn down, frames freed, pending page requests answered
     * {@code INVALID}; later calls fail with {@code ENODEV} and translations fault. Idempotent.
     */
    void close();
}
