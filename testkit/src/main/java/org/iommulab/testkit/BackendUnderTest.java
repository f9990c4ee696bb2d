package org.iommulab.testkit;

import org.iommulab.api.errno.Errno;
import org.iommulab.api.errno.IommuException;
import org.iommulab.api.memory.FrameAllocator;
import org.iommulab.api.memory.PhysicalMemory;
import org.iommulab.api.pasid.PasidSet;
import org.iommulab.api.spi.IommuInstance;
import org.iommulab.pgtable.PageTableFormat;
import org.osgi.annotation.versioning.ConsumerType;

/**
 * The backend under test and the world it runs in, as a backend's conformance test supplies them:
 * a unit test creates instances with {@code IommuBackend.create} over a sparse memory, a container
 * test through the {@code IommuRegistry} over host memory.
 *
 * <p>Implemented by backend authors. Called from the thread running the checks.
 */
@ConsumerType
public interface BackendUnderTest {
    /**
     * Creates a fresh instance with the backend's default configuration.
     *
     * @param name an instance name no other live instance has
     * @return the instance, never {@code null}
     * @throws IommuException as the backend or the registry answers
     */
    IommuInstance create(String name) throws IommuException;

    /** @return the physical memory instances translate into; the kit writes tables and data there */
    PhysicalMemory memory();

    /** @return where instances allocate their frames, and where the kit allocates its own */
    FrameAllocator frames();

    /**
     * @param owner a name for the set's owner
     * @return a new PASID set, for nested bindings ({@code BIND_PGTBL}) whose owner the driver checks
     * @throws IommuException as the PASID space answers
     */
    PasidSet pasidSet(String owner) throws IommuException;

    /**
     * @return the format of a first-stage table the backend walks: a host process's table bound
     *     with {@code bindFirstStage}, and a guest's table bound with {@code bindGuestPasid}
     *     (x86 4-level for VT-d, AArch64 stage 1 for SMMUv3); {@code null} if the backend has
     *     neither (the checks that need it are skipped, and say so)
     */
    default PageTableFormat firstStageFormat() throws IommuException {
        return null;
    }

    /**
     * For a backend whose nesting hands over a whole guest PASID table ({@code PASID_TABLE}, as
     * SMMUv3's CD table): writes such a table into guest memory with one valid entry.
     *
     * @param guest guest memory (GPA space), where the table and its frames go
     * @param pasid the entry to fill (SubstreamID on SMMUv3)
     * @param firstStageRoot GPA of the guest's first-stage table that entry points at
     * @return the configuration to attach and the architecture id (ASID) the entry carries
     * @throws IommuException {@code EOPNOTSUPP} by default
     */
    default GuestPasidTable writeGuestPasidTable(GuestMemory guest, int pasid, long firstStageRoot) throws IommuException {
        throw new IommuException(Errno.EOPNOTSUPP, "the backend under test writes no guest PASID table");
    }

    /** @return the requester id the checks attach; a second device uses this plus 8 */
    default int requesterId() {
        return 0x10;
    }
}
