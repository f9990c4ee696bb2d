package org.iommulab.platform.internal.process;

import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.TreeMap;
import java.util.regex.Pattern;

import org.iommulab.api.errno.Errno;
import org.iommulab.api.errno.IommuException;
import org.iommulab.api.memory.HostMemory;
import org.iommulab.api.process.HostProcess;
import org.iommulab.api.process.ProcessTable;
import org.osgi.service.component.annotations.Activate;
import org.osgi.service.component.annotations.Component;
import org.osgi.service.component.annotations.Deactivate;
import org.osgi.service.component.annotations.Reference;

/**
 * The host's process table. One monitor guards the name map; each process guards itself. An exiting
 * process's {@link org.iommulab.api.process.MmuNotifier}s are released, with no lock held, before
 * its address space is torn down.
 */
@Component(service = ProcessTable.class, immediate = true)
public final class ProcessTableImpl implements ProcessTable {
    private static final Pattern NAME = Pattern.compile("[A-Za-z0-9][A-Za-z0-9._-]{0,63}");

    private final HostMemory memory;
    private final TreeMap<String, HostProcessImpl> processes = new TreeMap<>();

    /** @param memory host memory, whose frames back the processes' pages */
    @Activate
    public ProcessTableImpl(@Reference HostMemory memory) {
        this.memory = memory;
    }

    @Override
    public synchronized HostProcess create(String name, long lockedLimit) throws IommuException {
        if (name == null || !NAME.matcher(name).matches()) {
            throw new IommuException(Errno.EINVAL, "bad process name '" + name + "': letters, digits, '.', '_', '-'");
        }
        if (lockedLimit < 0) {
            throw new IommuException(Errno.EINVAL, "a locked-memory limit cannot be negative");
        }
        if (processes.containsKey(name)) {
            throw new IommuException(Errno.EEXIST, "process '" + name + "' exists");
        }
        HostProcessImpl process = new HostProcessImpl(name, memory, lockedLimit);
        processes.put(name, process);
        return process;
    }

    @Override
    public synchronized Optional<HostProcess> process(String name) {
        return Optional.ofNullable(processes.get(name));
    }

    @Override
    public synchronized List<HostProcess> processes() {
        return new ArrayList<>(processes.values());
    }

    @Override
    public void exit(String name) throws IommuException {
        HostProcessImpl process;
        synchronized (this) {
            process = processes.remove(name);
        }
        if (process == null) {
            throw new IommuException(Errno.ENOENT, "no process '" + name + "'");
        }
        process.tellRelease();
        process.exit();
    }

    /** Every process exits when the platform stops. */
    @Deactivate
    void deactivate() {
        List<HostProcessImpl> all;
        synchronized (this) {
            all = new ArrayList<>(processes.values());
            processes.clear();
        }
        for (HostProcessImpl process : all) {
            process.tellRelease();
            process.exit();
        }
    }
}
