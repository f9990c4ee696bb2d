package org.iommulab.vmm.internal;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.TreeMap;

import org.iommulab.api.device.DeviceBus;
import org.iommulab.api.errno.Errno;
import org.iommulab.api.errno.IommuException;
import org.iommulab.api.memory.PhysicalMemory;
import org.iommulab.api.events.EventLog;
import org.iommulab.api.idxd.IdxdService;
import org.iommulab.api.pasid.PasidSet;
import org.iommulab.api.pasid.PasidSpace;
import org.iommulab.api.process.HostProcess;
import org.iommulab.api.process.ProcessTable;
import org.iommulab.api.spi.IommuInstance;
import org.iommulab.api.spi.IommuRegistry;
import org.iommulab.api.vfio.Vfio;
import org.iommulab.api.vfio.VfioContainer;
import org.iommulab.api.vmm.Vm;
import org.iommulab.api.vmm.VmManager;
import org.osgi.service.component.annotations.Activate;
import org.osgi.service.component.annotations.Component;
import org.osgi.service.component.annotations.Deactivate;
import org.osgi.service.component.annotations.Reference;

/**
 * Boots VMs: a VMM process with the guest's RAM, the VM's PASID set, a VFIO container, and a
 * virtual IOMMU of the host IOMMU's vendor over guest memory in caching mode. Immediate: VMs live
 * as long as the bundle. One monitor guards the name map.
 */
@Component(service = VmManager.class, immediate = true)
public final class VmManagerImpl implements VmManager {
    private static final long MIN_RAM = 16L << 20;
    private static final long MAX_RAM = 4L << 30;
    /** The VM's PASID quota (the series' default per-VM quota). */
    private static final int PASID_QUOTA = 1000;

    private final IommuRegistry registry;
    private final ProcessTable processes;
    private final PasidSpace pasids;
    private final Vfio vfio;
    private final IdxdService idxd;
    private final EventLog events;
    private final DeviceBus bus;
    private final TreeMap<String, VmImpl> vms = new TreeMap<>();

    /**
     * @param registry IOMMU registry
     * @param processes process table
     * @param pasids PASID space
     * @param vfio VFIO
     * @param idxd IDXD devices
     * @param events event log
     * @param bus the device bus
     */
    @Activate
    public VmManagerImpl(@Reference IommuRegistry registry, @Reference ProcessTable processes, @Reference PasidSpace pasids,
            @Reference Vfio vfio, @Reference IdxdService idxd, @Reference EventLog events, @Reference DeviceBus bus) {
        this.registry = registry;
        this.processes = processes;
        this.pasids = pasids;
        this.vfio = vfio;
        this.idxd = idxd;
        this.events = events;
        this.bus = bus;
    }

    @Override
    public synchronized Vm create(String name, String hostIommu, long ramBytes) throws IommuException {
        if (vms.containsKey(name)) {
            throw new IommuException(Errno.EEXIST, "VM '" + name + "' exists");
        }
        if (ramBytes < MIN_RAM || ramBytes > MAX_RAM || (ramBytes & ((2 << 20) - 1)) != 0) {
            throw new IommuException(Errno.EINVAL, "guest RAM must be a multiple of 2 MiB from 16 MiB to 4 GiB");
        }
        IommuInstance host = registry.instance(hostIommu)
                .orElseThrow(() -> new IommuException(Errno.ENODEV, "no IOMMU instance '" + hostIommu + "'"));
        HostProcess process = processes.create(name, Long.MAX_VALUE);
        PasidSet set = null;
        VfioContainer container = null;
        IommuInstance viommu = null;
        try {
            long ram = process.mmap(ramBytes);
            PhysicalMemory memory = process.physicalView(ram, ramBytes);
            // The guest kernel's memory: the top quarter for page tables and IOMMU structures, the
            // quarter below for process pages; the rest is free guest RAM.
            GuestPool tables = new GuestPool(memory, ramBytes / 4 * 3, ramBytes);
            GuestPool pages = new GuestPool(memory, ramBytes / 2, ramBytes / 4 * 3);
            set = pasids.createSet(name, PASID_QUOTA);
            container = vfio.open(process);
            // VT-d in caching mode, as QEMU's intel-iommu for vfio; SMMUv3 stage 1 only, as QEMU's smmuv3.
            // The guest's VT-d driver builds its DMA (IOVA) domains from first-stage tables, the only
            // kind the host can nest (the 2020 "first level for DMA remapping in guest" proposal).
            Map<String, String> config = "smmuv3".equals(host.vendor()) ? Map.of("stage2", "false")
                    : Map.of("caching-mode", "true", "dma-domain", "first-stage");
            viommu = registry.createGuest(host.vendor(), name + "-viommu", config, memory, tables);
            VmImpl vm = new VmImpl(name, host, process, ram, ramBytes, set, vfio, container, viommu, memory, tables, pages,
                    events, idxd, bus);
            vm.start();
            vms.put(name, vm);
            vm.log("booted: %d MiB of RAM in process %s, virtual %s IOMMU (%s) over guest memory", ramBytes >> 20, name,
                    host.vendor(), "smmuv3".equals(host.vendor()) ? "stage 1 only" : "caching mode");
            return vm;
        } catch (IommuException | RuntimeException e) {
            if (viommu != null) {
                viommu.close();
            }
            if (container != null) {
                container.close();
            }
            if (set != null) {
                set.close();
            }
            processes.exit(name);
            throw e;
        }
    }

    @Override
    public synchronized Optional<Vm> vm(String name) {
        return Optional.ofNullable(vms.get(name));
    }

    @Override
    public synchronized List<Vm> vms() {
        return new ArrayList<>(vms.values());
    }

    @Override
    public void destroy(String name) throws IommuException {
        VmImpl vm;
        synchronized (this) {
            vm = vms.remove(name);
        }
        if (vm == null) {
            throw new IommuException(Errno.ENOENT, "no VM '" + name + "'");
        }
        vm.close();
        processes.exit(name);
    }

    /** Every VM shuts down with the bundle. */
    @Deactivate
    void deactivate() {
        for (Vm vm : vms()) {
            try {
                destroy(vm.name());
            } catch (IommuException e) {
                // gone already
            }
        }
    }
}
