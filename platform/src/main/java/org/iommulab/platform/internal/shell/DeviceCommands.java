package org.iommulab.platform.internal.shell;

import org.apache.felix.service.command.Descriptor;
import org.apache.felix.service.command.Parameter;
import org.iommulab.api.device.DeviceBus;
import org.iommulab.api.device.Requester;
import org.iommulab.api.errno.IommuException;
import org.iommulab.api.pasid.Pasids;
import org.osgi.service.component.annotations.Activate;
import org.osgi.service.component.annotations.Component;
import org.osgi.service.component.annotations.Reference;

/** {@code device:} commands on the device bus: requesters, their IOMMU and their group. */
@Component(service = DeviceCommands.class, property = {
        "osgi.command.scope=device",
        "osgi.command.function=add",
        "osgi.command.function=remove",
        "osgi.command.function=list" })
public final class DeviceCommands {
    private final DeviceBus bus;

    /** @param bus the device bus */
    @Activate
    public DeviceCommands(@Reference DeviceBus bus) {
        this.bus = bus;
    }

    /**
     * @param pasidBits PASID width
     * @param group group to join, or absent for a new one
     * @param name requester name
     * @param iommu instance name
     * @param requesterId requester id
     * @throws IommuException EEXIST, ENOENT, EINVAL
     */
    @Descriptor("add a requester behind an IOMMU instance; prints '<name> group <n>'")
    public void add(
            @Descriptor("PASID width, 0 to 20 (default 0: no PASID capability)") @Parameter(names = "--pasid-bits", absentValue = "0") String pasidBits,
            @Descriptor("join this IOMMU group (default: a new group)") @Parameter(names = "--group", absentValue = "") String group,
            @Descriptor("requester name") String name,
            @Descriptor("IOMMU instance name") String iommu,
            @Descriptor("requester id: VT-d source id (bus<<8|devfn) or SMMUv3 stream id") String requesterId)
            throws IommuException {
        int bits = (int) Numbers.u64("pasid bits", pasidBits, Pasids.PASID_BITS);
        int groupId = group.isEmpty() ? DeviceBus.NEW_GROUP : Numbers.nonNegativeInt("group", group);
        Requester r = bus.register(name, iommu, Numbers.u32("requester id", requesterId), bits, groupId);
        System.out.println(r.name() + " group " + r.groupId());
    }

    /**
     * @param name requester name
     * @throws IommuException ENOENT
     */
    @Descriptor("remove a requester")
    public void remove(@Descriptor("requester name") String name) throws IommuException {
        bus.unregister(name);
    }

    /** Prints one line per requester. */
    @Descriptor("list requesters: name, IOMMU, requester id, PASID width, group")
    public void list() {
        for (Requester r : bus.requesters()) {
            System.out.printf("%s iommu=%s rid=0x%x pasid-bits=%d group=%d%n", r.name(), r.iommu(), r.requesterId(),
                    r.pasidBits(), r.groupId());
        }
    }
}
