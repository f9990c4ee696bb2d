package org.iommulab.platform.internal.device;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.TreeMap;

import org.iommulab.api.device.DeviceBus;
import org.iommulab.api.device.Requester;
import org.iommulab.api.errno.Errno;
import org.iommulab.api.errno.IommuException;
import org.iommulab.api.pasid.Pasids;
import org.osgi.service.component.annotations.Component;

/** The device bus: requesters by name, with their IOMMU and group. One monitor guards it. */
@Component(service = DeviceBus.class, immediate = true)
public final class DeviceBusImpl implements DeviceBus {
    private final Map<String, Requester> byName = new TreeMap<>();
    private final Map<Integer, Integer> groupSizes = new TreeMap<>();
    private final Map<Integer, Object> dmaOwners = new java.util.HashMap<>();
    private int nextGroup = 1;

    @Override
    public synchronized Requester register(String name, String iommu, int requesterId, int pasidBits, int groupId)
            throws IommuException {
        if (name == null || name.isBlank() || iommu == null || iommu.isBlank()) {
            throw new IommuException(Errno.EINVAL, "requester and IOMMU names must not be blank");
        }
        if (pasidBits < 0 || pasidBits > Pasids.PASID_BITS) {
            throw new IommuException(Errno.EINVAL, "PASID width must be 0 to " + Pasids.PASID_BITS + ", not " + pasidBits);
        }
        if (byName.containsKey(name)) {
            throw new IommuException(Errno.EEXIST, "requester '" + name + "' exists");
        }
        if (requester(iommu, requesterId).isPresent()) {
            throw new IommuException(Errno.EEXIST, String.format("requester id 0x%x behind %s is taken", requesterId, iommu));
        }
        int group = groupId;
        if (groupId == NEW_GROUP) {
            group = nextGroup++;
        } else if (!groupSizes.containsKey(groupId)) {
            throw new IommuException(Errno.ENOENT, "no IOMMU group " + groupId);
        } else if (dmaOwners.containsKey(groupId)) {
            throw new IommuException(Errno.EBUSY, "group " + groupId + " has a DMA owner: no requester may join it");
        } else if (!group(groupId).get(0).iommu().equals(iommu)) {
            // An IOMMU group is a set of requesters one IOMMU cannot isolate: it never spans two.
            throw new IommuException(Errno.EINVAL, "group " + groupId + " sits behind " + group(groupId).get(0).iommu()
                    + ", not " + iommu);
        }
        Requester requester = new Requester(name, iommu, requesterId, pasidBits, group);
        byName.put(name, requester);
        groupSizes.merge(group, 1, Integer::sum);
        return requester;
    }

    @Override
    public synchronized Requester registerMediated(String name, String parent) throws IommuException {
        if (name == null || name.isBlank()) {
            throw new IommuException(Errno.EINVAL, "requester name must not be blank");
        }
        if (byName.containsKey(name)) {
            throw new IommuException(Errno.EEXIST, "requester '" + name + "' exists");
        }
        Requester p = byName.get(parent);
        if (p == null) {
            throw new IommuException(Errno.ENOENT, "no requester '" + parent + "'");
        }
        if (p.mediated() || !p.pasidCapable()) {
            throw new IommuException(Errno.EINVAL, "a mediated device needs a physical, PASID-capable parent; '"
                    + parent + "' is not");
        }
        int group = nextGroup++;
        Requester requester = new Requester(name, p.iommu(), p.requesterId(), p.pasidBits(), group, p.name());
        byName.put(name, requester);
        groupSizes.merge(group, 1, Integer::sum);
        return requester;
    }

    @Override
    public synchronized void unregister(String name) throws IommuException {
        Requester requester = byName.get(name);
        if (requester == null) {
            throw new IommuException(Errno.ENOENT, "no requester '" + name + "'");
        }
        if (dmaOwners.containsKey(requester.groupId())) {
            throw new IommuException(Errno.EBUSY, "group " + requester.groupId() + " of '" + name
                    + "' has a DMA owner: release it first");
        }
        if (byName.values().stream().anyMatch(r -> name.equals(r.parent()))) {
            throw new IommuException(Errno.EBUSY, "'" + name + "' has mediated devices: remove them first");
        }
        byName.remove(name);
        groupSizes.computeIfPresent(requester.groupId(), (g, n) -> n == 1 ? null : n - 1);
    }

    @Override
    public synchronized void claimDmaOwner(int groupId, Object owner) throws IommuException {
        if (owner == null) {
            throw new IommuException(Errno.EINVAL, "no owner");
        }
        if (!groupSizes.containsKey(groupId)) {
            throw new IommuException(Errno.ENOENT, "no IOMMU group " + groupId);
        }
        Object holder = dmaOwners.get(groupId);
        if (holder != null && holder != owner) {
            throw new IommuException(Errno.EBUSY, "group " + groupId + " is owned by " + holder);
        }
        dmaOwners.put(groupId, owner);
    }

    @Override
    public synchronized void releaseDmaOwner(int groupId, Object owner) {
        dmaOwners.remove(groupId, owner);
    }

    @Override
    public synchronized Optional<Requester> requester(String name) {
        return Optional.ofNullable(byName.get(name));
    }

    @Override
    public synchronized Optional<Requester> requester(String iommu, int requesterId) {
        return byName.values().stream()
                .filter(r -> !r.mediated() && r.iommu().equals(iommu) && r.requesterId() == requesterId)
                .findFirst();
    }

    @Override
    public synchronized List<Requester> group(int groupId) {
        List<Requester> members = new ArrayList<>();
        for (Requester r : byName.values()) {
            if (r.groupId() == groupId) {
                members.add(r);
            }
        }
        return members;
    }

    @Override
    public synchronized List<Requester> requesters() {
        return new ArrayList<>(byName.values());
    }
}
