package org.iommulab.api.process;

import java.util.List;
import java.util.Optional;

import org.iommulab.api.errno.IommuException;
import org.osgi.annotation.versioning.ProviderType;

/**
 * The host's processes. Provided by the platform as an OSGi service. Thread safe.
 */
@ProviderType
public interface ProcessTable {

    /**
     * Starts a process with an empty address space.
     *
     * @param name a new name: letters, digits, '-', '_' and '.'
     * @param lockedLimit the locked-memory limit in bytes, {@link Long#MAX_VALUE} for unlimited
     * @return the process
     * @throws IommuException {@code EINVAL} for a bad name or a negative limit, {@code EEXIST} if
     *     the name is taken
     */
    HostProcess create(String name, long lockedLimit) throws IommuException;

    /**
     * @param name process name
     * @return the live process, or empty
     */
    Optional<HostProcess> process(String name);

    /** @return the live processes, by name, in a new list */
    List<HostProcess> processes();

    /**
     * Ends a process: its mappings are removed and their frames freed, except pages still pinned,
     * which are freed at their last unpin. Users of the process (VFIO containers) must have
     * released it first; the call does not wait for them.
     *
     * @param name process name
     * @throws IommuException {@code ENOENT} if there is no such process
     */
    void exit(String name) throws IommuException;
}
