package org.iommulab.sva.internal;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;

import org.iommulab.api.errno.Errno;
import org.iommulab.api.errno.IommuException;
import org.iommulab.api.memory.HostMemory;
import org.iommulab.api.pasid.PasidListener;
import org.iommulab.api.pasid.PasidSet;
import org.iommulab.api.pasid.Pasids;
import org.iommulab.api.process.HostProcess;
import org.iommulab.api.process.ProcessTable;
import org.iommulab.api.spi.InstanceListener;
import org.iommulab.api.spi.IommuDriver;
import org.iommulab.api.spi.IommuInstance;
import org.iommulab.api.spi.IommuRegistry;
import org.iommulab.api.sva.SvaBond;
import org.iommulab.api.sva.SvaService;
import org.osgi.framework.BundleContext;
import org.osgi.framework.ServiceRegistration;
import org.osgi.service.component.annotations.Activate;
import org.osgi.service.component.annotations.Component;
import org.osgi.service.component.annotations.Deactivate;
import org.osgi.service.component.annotations.Reference;

/**
 * The SVA service: binds host processes to devices (Linux {@code iommu_sva_bind_device}) through a
 * PASID of a set, over one shared CPU page table per process and host format ({@link SvaMm},
 * {@link SharedTable}), resolves their page requests ({@link IopfQueue}) and unbinds them when the
 * process exits, the PASID leaves its set (the set closing) or the IOMMU leaves.
 *
 * <p>Thread safe. This object's monitor guards the bonds, the per-process state and the per-IOMMU
 * fault handlers; it is taken before an {@link SvaMm}'s, never after. Page requests are resolved on
 * one worker thread ({@code iopf_queue}) that never takes it.
 *
 * <p>The instance and PASID listeners are registered by hand once the service is up: as
 * DS-published services they would close a service cycle with the registry (see {@code VfioService}).
 */
@Component(service = SvaService.class, immediate = true)
public final class SvaServiceImpl implements SvaService {
    private final IommuRegistry registry;
    private final HostMemory memory;
    private final ProcessTable processes;
    private final ExecutorService iopf = Executors.newSingleThreadExecutor(r -> {
        Thread t = new Thread(r, "iommulab-sva-iopf");
        t.setDaemon(true);
        return t;
    });
    /** Live bonds in bind order. */
    private final List<SvaBondImpl> bonds = new ArrayList<>();
    /** Per bound process. */
    private final Map<HostProcess, SvaMm> mms = new IdentityHashMap<>();
    /** Fault handlers by instance name, while the instance has bonds. */
    private final Map<String, IopfQueue> queues = new HashMap<>();
    private final List<ServiceRegistration<?>> registrations = new ArrayList<>();
    private boolean stopped;

    /**
     * @param registry the IOMMU instances
     * @param memory host memory, where the page tables live
     * @param processes the host's processes (a bind needs a live one)
     * @param context where to register the listeners, or {@code null} (unit tests register
     *     {@link #instanceListener()} and {@link #pasidListener()} themselves)
     */
    @Activate
    public SvaServiceImpl(@Reference IommuRegistry registry, @Reference HostMemory memory,
            @Reference ProcessTable processes, BundleContext context) {
        this.registry = registry;
        this.memory = memory;
        this.processes = processes;
        if (context != null) {
            registrations.add(context.registerService(InstanceListener.class, instanceListener(), null));
            registrations.add(context.registerService(PasidListener.class, pasidListener(), null));
        }
    }

    @Override
    public SvaBond bind(HostProcess process, String iommu, int requesterId, PasidSet set) throws IommuException {
        if (process == null || set == null || iommu == null) {
            throw new IommuException(Errno.EINVAL, "bind needs a process, an IOMMU and a PASID set");
        }
        synchronized (this) {
            if (stopped) {
                throw new IommuException(Errno.ENODEV, "the SVA service is stopping");
            }
            if (processes.process(process.name()).orElse(null) != process) {
                throw new IommuException(Errno.ENODEV, process + " has exited");
            }
            IommuInstance instance = registry.instance(iommu)
                    .orElseThrow(() -> new IommuException(Errno.ENODEV, "no IOMMU instance '" + iommu + "'"));
            if (set.isClosed()) {
                throw new IommuException(Errno.EPERM, "PASID set " + set.id() + " of " + set.owner() + " is closed");
            }
            for (SvaBondImpl b : bonds) {
                if (b.process() == process && b.iommu().equals(iommu) && b.requesterId() == requesterId) {
                    throw new IommuException(Errno.EBUSY, b + " already");
                }
            }
            IommuDriver driver = instance.driver();
            HostFormat.Choice format = HostFormat.of(driver.nestingInfo());
            return bindLocked(process, instance, driver, format, requesterId, set);
        }
    }

    /** The all-or-nothing part of a bind: whatever it created is undone if a step fails. */
    private SvaBondImpl bindLocked(HostProcess process, IommuInstance instance, IommuDriver driver,
            HostFormat.Choice format, int requesterId, PasidSet set) throws IommuException {
        SvaMm mm = mms.get(process);
        boolean freshMm = mm == null;
        if (freshMm) {
            mm = new SvaMm(process, memory, this::released);
            process.addMmuNotifier(mm); // before the table is filled, so that no change is missed
        }
        Integer pasid = mm.pasids.get(set);
        boolean freshPasid = pasid == null;
        SharedTable table = null;
        boolean[] freshTable = {false};
        IopfQueue queue = queues.get(instance.name());
        boolean freshQueue = queue == null;
        SvaBondImpl bond = null;
        try {
            if (freshPasid) {
                int bits = driver.nestingInfo().pasidBits();
                int max = bits <= 0 || bits >= Pasids.PASID_BITS ? Pasids.MAX_PASID : (1 << bits) - 1;
                pasid = set.allocate(1, max);
            }
            table = mm.table(format.id(), format.format(), freshTable);
            if (freshQueue) {
                queue = new IopfQueue(iopf);
                driver.addFaultListener(queue);
            }
            bond = new SvaBondImpl(this, mm, table, instance.name(), driver, requesterId, pasid, set);
            table.bonds().add(bond); // before the PASID entry: unmaps from now on flush it
            queue.add(bond);
            driver.bindFirstStage(requesterId, pasid, table.root(), HostFormat.INPUT_BITS, 0);
        } catch (IommuException | RuntimeException e) {
            if (bond != null) {
                queue.remove(bond);
                table.bonds().remove(bond);
                bond.markUnbound();
            }
            if (freshQueue && queue != null) {
                driver.removeFaultListener(queue);
            }
            if (freshTable[0]) {
                mm.dropTable(table);
            }
            if (freshPasid && pasid != null) {
                freeQuietly(set, pasid);
            }
            if (freshMm) {
                process.removeMmuNotifier(mm);
            }
            throw e;
        }
        if (freshQueue) {
            queues.put(instance.name(), queue);
        }
        if (freshMm) {
            mms.put(process, mm);
        }
        mm.pasids.put(set, pasid);
        mm.bonds.add(bond);
        bonds.add(bond);
        return bond;
    }

    @Override
    public synchronized List<SvaBond> bonds() {
        return new ArrayList<>(bonds);
    }

    /**
     * Unbinds a bond: its PASID entry goes (with the IOMMU's caches), its waiting page requests are
     * answered Invalid Request, then whatever only it used: the process's PASID in the set, the
     * table, the process's notifier, the IOMMU's fault handler.
     *
     * @throws IommuException {@code ENOENT} if unbound already
     */
    synchronized void unbind(SvaBondImpl bond) throws IommuException {
        if (!bond.isBound()) {
            throw new IommuException(Errno.ENOENT, bond + " is unbound already");
        }
        teardown(bond, true);
    }

    /** Unbinds a live bond; {@code freePasid} is false when the PASID left its set already. */
    private void teardown(SvaBondImpl bond, boolean freePasid) {
        bond.markUnbound();
        bonds.remove(bond);
        SvaMm mm = bond.mm();
        mm.bonds.remove(bond);
        IopfQueue queue = queues.get(bond.iommu());
        if (queue != null) {
            queue.remove(bond);
        }
        try {
            bond.driver().unbindFirstStage(bond.requesterId(), bond.pasid());
        } catch (IommuException e) {
            // ENOENT: the driver dropped it already (detach, PASID freed); ENODEV: the IOMMU is gone
        }
        bond.denyPending();
        SharedTable table = bond.table();
        table.bonds().remove(bond);
        if (table.bonds().isEmpty()) {
            mm.dropTable(table);
        }
        if (mm.bonds.stream().noneMatch(b -> b.set() == bond.set())) {
            mm.pasids.remove(bond.set());
            if (freePasid) {
                freeQuietly(bond.set(), bond.pasid());
            }
        }
        if (mm.bonds.isEmpty()) {
            mm.process().removeMmuNotifier(mm);
            mms.remove(mm.process());
        }
        if (queue != null && queue.isEmpty()) {
            queues.remove(bond.iommu());
            bond.driver().removeFaultListener(queue);
        }
    }

    private static void freeQuietly(PasidSet set, int pasid) {
        try {
            set.free(pasid);
        } catch (IommuException e) {
            // the set closed meanwhile: the PASID is free already
        }
    }

    /** The process exits: every bond of it goes. */
    private synchronized void released(SvaMm mm) {
        for (SvaBondImpl b : new ArrayList<>(mm.bonds)) {
            teardown(b, true);
        }
    }

    /** @return the listener that unbinds the bonds of a departing IOMMU */
    InstanceListener instanceListener() {
        return new InstanceListener() {
            @Override
            public void instanceAdded(IommuInstance instance) {
                // bonds are made by bind
            }

            @Override
            public void instanceRemoved(IommuInstance instance) {
                unbindAll(b -> b.iommu().equals(instance.name()), true);
            }
        };
    }

    /** @return the listener that unbinds the bonds whose PASID left its set (freed, or the set closed) */
    PasidListener pasidListener() {
        return (owner, setId, pasid) -> unbindAll(b -> b.set().id() == setId && b.pasid() == pasid, false);
    }

    private synchronized void unbindAll(java.util.function.Predicate<SvaBondImpl> which, boolean freePasid) {
        for (SvaBondImpl b : new ArrayList<>(bonds)) {
            if (which.test(b)) {
                teardown(b, freePasid);
            }
        }
    }

    /** Every bond is unbound and the worker stopped, as when the module unloads. */
    @Deactivate
    void deactivate() {
        for (ServiceRegistration<?> r : registrations) {
            try {
                r.unregister();
            } catch (IllegalStateException e) {
                // unregistered with the bundle already
            }
        }
        synchronized (this) {
            stopped = true;
        }
        unbindAll(b -> true, true);
        iopf.shutdownNow();
    }
}
