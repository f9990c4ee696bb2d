package org.iommulab.platform.internal.pasid;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.OptionalInt;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.concurrent.CopyOnWriteArrayList;

import org.iommulab.api.dto.PasidClaimDTO;
import org.iommulab.api.dto.PasidOwnerDTO;
import org.iommulab.api.dto.PasidSetDTO;
import org.iommulab.api.errno.Errno;
import org.iommulab.api.errno.IommuException;
import org.iommulab.api.pasid.PasidClaim;
import org.iommulab.api.pasid.PasidListener;
import org.iommulab.api.pasid.PasidSet;
import org.iommulab.api.pasid.PasidSpace;
import org.iommulab.api.pasid.Pasids;
import org.osgi.service.component.annotations.Component;
import org.osgi.service.component.annotations.Reference;
import org.osgi.service.component.annotations.ReferenceCardinality;
import org.osgi.service.component.annotations.ReferencePolicy;
import org.osgi.service.component.annotations.ReferencePolicyOption;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The system-wide PASID space. One monitor guards the allocation bitmap, the owner map, every
 * set's membership and claims, and the owners' limits and usage, so an allocation, a free, a claim
 * and an ownership check are each atomic; listeners are called after the monitor is released.
 */
@Component(service = PasidSpace.class, immediate = true)
public final class PasidSpaceImpl implements PasidSpace {
    private static final Logger LOG = LoggerFactory.getLogger(PasidSpaceImpl.class);

    private final PasidBitmap used = new PasidBitmap(Pasids.MAX_PASID + 1);
    private final Map<Integer, PasidSetImpl> owners = new HashMap<>();
    /** The open sets by id, in creation order. */
    private final Map<Integer, PasidSetImpl> openSets = new LinkedHashMap<>();
    /** Owner limits (the cgroup-like per-owner quota). */
    private final Map<String, Integer> ownerQuotas = new HashMap<>();
    /** PASIDs held by each owner's open sets together; owners holding none are absent. */
    private final Map<String, Integer> ownerUsed = new HashMap<>();
    private final List<PasidListener> listeners = new CopyOnWriteArrayList<>();
    private int nextSetId = 1;
    private int reserved;
    /** Every PASID below this is allocated: searches for the lowest free PASID start here. */
    private int lowestMaybeFree = 1;

    /** Creates an empty space (PASID 0 is reserved and never allocated). */
    public PasidSpaceImpl() {
        used.set(Pasids.RESERVED_PASID);
    }

    /** @param listener a whiteboard listener */
    @Reference(cardinality = ReferenceCardinality.MULTIPLE, policy = ReferencePolicy.DYNAMIC,
            policyOption = ReferencePolicyOption.GREEDY)
    public void addListener(PasidListener listener) {
        listeners.add(listener);
    }

    /** @param listener a whiteboard listener that went away */
    public void removeListener(PasidListener listener) {
        listeners.remove(listener);
    }

    @Override
    public PasidSet createSet(String owner, int quota) throws IommuException {
        return newSet(owner, quota, true);
    }

    @Override
    public PasidSet openSet(String owner, int quota) throws IommuException {
        return newSet(owner, quota, false);
    }

    private PasidSetImpl newSet(String owner, int quota, boolean onlyOne) throws IommuException {
        checkOwner(owner);
        if (quota < 1) {
            throw new IommuException(Errno.EINVAL, "quota must be at least 1, not " + quota);
        }
        synchronized (this) {
            if (onlyOne && !ownerSets(owner).isEmpty()) {
                throw new IommuException(Errno.EEXIST, "owner '" + owner + "' already has a PASID set");
            }
            if (quota > capacity() - reserved) {
                throw new IommuException(Errno.ENOSPC, "quota " + quota + " exceeds the unreserved PASID capacity "
                        + (capacity() - reserved));
            }
            PasidSetImpl set = new PasidSetImpl(this, nextSetId++, owner, quota);
            openSets.put(set.id(), set);
            reserved += quota;
            return set;
        }
    }

    private static void checkOwner(String owner) throws IommuException {
        if (owner == null || owner.isBlank()) {
            throw new IommuException(Errno.EINVAL, "owner token must not be blank");
        }
    }

    @Override
    public PasidSet restoreSet(PasidSetDTO snapshot) throws IommuException {
        if (snapshot == null || snapshot.pasids == null) {
            throw new IommuException(Errno.EINVAL, "a snapshot with its PASIDs is needed");
        }
        int[] pasids = snapshot.pasids.clone();
        if (pasids.length > snapshot.quota) {
            throw new IommuException(Errno.EINVAL, pasids.length + " PASIDs exceed the quota of " + snapshot.quota);
        }
        for (int pasid : pasids) {
            if (!Pasids.isAllocatable(pasid)) {
                throw new IommuException(Errno.EINVAL, "PASID " + pasid + " is not inside 1.." + Pasids.MAX_PASID);
            }
        }
        String[] authorized = snapshot.authorized == null ? new String[0] : snapshot.authorized.clone();
        for (String consumer : authorized) {
            checkConsumer(consumer);
        }
        synchronized (this) {
            for (int pasid : pasids) {
                PasidSetImpl holder = owners.get(pasid);
                if (holder != null) {
                    throw new IommuException(Errno.EBUSY, "PASID " + pasid + " is held by the set of '" + holder.owner() + "'");
                }
            }
            if (snapshot.owner != null && pasids.length > headroom(snapshot.owner)) {
                throw new IommuException(Errno.ENOSPC, pasids.length + " PASIDs exceed the limit of owner '" + snapshot.owner
                        + "' (" + headroom(snapshot.owner) + " left)");
            }
            PasidSetImpl set = newSet(snapshot.owner, snapshot.quota, true);
            for (int pasid : pasids) {
                allocate(set, pasid, pasid); // free and within the limits, checked above under the same lock
            }
            set.authorized.addAll(java.util.Arrays.asList(authorized));
            return set;
        }
    }

    @Override
    public synchronized Optional<PasidSet> set(String owner) {
        return ownerSets(owner).stream().findFirst();
    }

    @Override
    public synchronized List<PasidSet> sets() {
        return new ArrayList<>(openSets.values());
    }

    @Override
    public synchronized Optional<PasidSet> setById(int id) {
        return Optional.ofNullable(openSets.get(id));
    }

    @Override
    public synchronized List<PasidSet> sets(String owner) {
        return ownerSets(owner);
    }

    /** Guarded by this. */
    private List<PasidSet> ownerSets(String owner) {
        List<PasidSet> list = new ArrayList<>();
        for (PasidSetImpl set : openSets.values()) {
            if (set.owner().equals(owner)) {
                list.add(set);
            }
        }
        return list;
    }

    @Override
    public void setOwnerQuota(String owner, int quota) throws IommuException {
        checkOwner(owner);
        if (quota < 0) {
            throw new IommuException(Errno.EINVAL, "an owner's limit must be at least 0, not " + quota);
        }
        synchronized (this) {
            ownerQuotas.put(owner, quota);
        }
    }

    @Override
    public synchronized void clearOwnerQuota(String owner) {
        ownerQuotas.remove(owner);
    }

    @Override
    public synchronized OptionalInt ownerQuota(String owner) {
        Integer quota = ownerQuotas.get(owner);
        return quota == null ? OptionalInt.empty() : OptionalInt.of(quota);
    }

    @Override
    public synchronized int ownerUsage(String owner) {
        return ownerUsed.getOrDefault(owner, 0);
    }

    @Override
    public synchronized List<PasidOwnerDTO> owners() {
        Map<String, List<Integer>> setIds = new TreeMap<>();
        openSets.values().forEach(set -> setIds.computeIfAbsent(set.owner(), o -> new ArrayList<>()).add(set.id()));
        ownerQuotas.keySet().forEach(owner -> setIds.computeIfAbsent(owner, o -> new ArrayList<>()));
        List<PasidOwnerDTO> owners = new ArrayList<>();
        setIds.forEach((owner, ids) -> {
            PasidOwnerDTO dto = new PasidOwnerDTO();
            dto.owner = owner;
            dto.quota = ownerQuotas.getOrDefault(owner, -1);
            dto.used = ownerUsed.getOrDefault(owner, 0);
            dto.sets = ids.stream().mapToInt(Integer::intValue).toArray();
            owners.add(dto);
        });
        return owners;
    }

    /** Guarded by this: how many more PASIDs the owner may hold. */
    private int headroom(String owner) {
        Integer quota = ownerQuotas.get(owner);
        return quota == null ? Integer.MAX_VALUE : Math.max(0, quota - ownerUsed.getOrDefault(owner, 0));
    }

    @Override
    public synchronized Optional<PasidSet> ownerOf(int pasid) {
        return Optional.ofNullable(owners.get(pasid));
    }

    @Override
    public int capacity() {
        return Pasids.MAX_PASID;
    }

    @Override
    public synchronized int reserved() {
        return reserved;
    }

    @Override
    public synchronized int allocated() {
        return owners.size();
    }

    // ---- called by PasidSetImpl with no lock held -----------------------------------------

    int allocate(PasidSetImpl set, int min, int max) throws IommuException {
        if (min < 1 || max > Pasids.MAX_PASID || min > max) {
            throw new IommuException(Errno.EINVAL, "PASID range " + min + ".." + max + " is not inside 1.." + Pasids.MAX_PASID);
        }
        synchronized (this) {
            checkOpen(set);
            if (set.count >= set.quota()) {
                throw new IommuException(Errno.ENOSPC, "PASID set of '" + set.owner() + "' is at its quota of " + set.quota());
            }
            if (headroom(set.owner()) == 0) {
                throw new IommuException(Errno.ENOSPC, "owner '" + set.owner() + "' is at its limit of "
                        + ownerQuotas.get(set.owner()) + " PASIDs");
            }
            int pasid = used.nextClear(Math.max(min, lowestMaybeFree), max);
            if (pasid < 0) {
                if (min == max) {
                    throw new IommuException(Errno.EBUSY, "PASID " + min + " is in use");
                }
                throw new IommuException(Errno.ENOSPC, "no free PASID in " + min + ".." + max);
            }
            used.set(pasid);
            owners.put(pasid, set);
            set.members.set(pasid);
            set.count++;
            ownerUsed.merge(set.owner(), 1, Integer::sum);
            if (pasid == lowestMaybeFree) {
                lowestMaybeFree = pasid + 1;
            }
            return pasid;
        }
    }

    void free(PasidSetImpl set, int pasid) throws IommuException {
        if (!Pasids.isAllocatable(pasid)) {
            throw new IommuException(Errno.EINVAL, "PASID " + pasid + " is not inside 1.." + Pasids.MAX_PASID);
        }
        synchronized (this) {
            PasidSetImpl holder = owners.get(pasid);
            if (holder == null) {
                throw new IommuException(Errno.ENOENT, "PASID " + pasid + " is not allocated");
            }
            if (holder != set) {
                throw new IommuException(Errno.EPERM, "PASID " + pasid + " belongs to another set");
            }
            release(set, pasid);
        }
        notifyFreed(set, pasid);
    }

    /** Checks ownership under the monitor, so it cannot interleave with a free. */
    synchronized void checkOwned(PasidSetImpl set, int pasid) throws IommuException {
        if (pasid < 0 || pasid > Pasids.MAX_PASID) {
            throw new IommuException(Errno.EINVAL, "PASID " + pasid + " is outside 0.." + Pasids.MAX_PASID);
        }
        checkOpen(set);
        if (owners.get(pasid) != set) {
            throw new IommuException(Errno.EPERM, "PASID " + pasid + " does not belong to the set of '" + set.owner() + "'");
        }
    }

    synchronized boolean contains(PasidSetImpl set, int pasid) {
        return pasid >= 0 && pasid <= Pasids.MAX_PASID && owners.get(pasid) == set;
    }

    synchronized int size(PasidSetImpl set) {
        return set.count;
    }

    synchronized int[] pasids(PasidSetImpl set) {
        return set.members.stream().toArray();
    }

    synchronized boolean isClosed(PasidSetImpl set) {
        return set.closed;
    }

    void close(PasidSetImpl set) {
        int[] freed;
        synchronized (this) {
            if (set.closed) {
                return;
            }
            freed = set.members.stream().toArray();
            for (int pasid : freed) {
                release(set, pasid);
            }
            set.closed = true;
            openSets.remove(set.id());
            reserved -= set.quota();
        }
        for (int pasid : freed) {
            notifyFreed(set, pasid);
        }
    }

    void authorize(PasidSetImpl set, String consumer) throws IommuException {
        checkConsumer(consumer);
        synchronized (this) {
            checkOpen(set);
            set.authorized.add(consumer);
        }
    }

    synchronized String[] authorized(PasidSetImpl set) {
        return set.authorized.toArray(new String[0]);
    }

    PasidClaim claim(PasidSetImpl set, int pasid, String consumer) throws IommuException {
        checkConsumer(consumer);
        synchronized (this) {
            checkOwned(set, pasid);
            TreeSet<String> others = set.consumersOf(pasid);
            others.remove(consumer);
            if (!others.isEmpty() && !(set.authorized.contains(consumer) && set.authorized.containsAll(others))) {
                throw new IommuException(Errno.EPERM, "PASID " + pasid + " is used by " + String.join(", ", others)
                        + "; the set of '" + set.owner() + "' does not authorise sharing it with " + consumer);
            }
            PasidClaimImpl claim = new PasidClaimImpl(this, set, pasid, consumer);
            set.addClaim(claim);
            return claim;
        }
    }

    synchronized void release(PasidClaimImpl claim) {
        if (!claim.valid) {
            return;
        }
        claim.valid = false;
        List<PasidClaimImpl> list = claim.owningSet().claims.get(claim.pasid());
        if (list != null) {
            list.remove(claim);
            if (list.isEmpty()) {
                claim.owningSet().claims.remove(claim.pasid());
            }
        }
    }

    synchronized String[] consumers(PasidSetImpl set, int pasid) {
        return set.consumersOf(pasid).toArray(new String[0]);
    }

    synchronized PasidSetDTO snapshot(PasidSetImpl set) {
        PasidSetDTO dto = new PasidSetDTO();
        dto.id = set.id();
        dto.owner = set.owner();
        dto.quota = set.quota();
        dto.pasids = set.members.stream().toArray();
        dto.closed = set.closed;
        dto.authorized = set.authorized.toArray(new String[0]);
        List<PasidClaimDTO> claims = new ArrayList<>();
        for (int pasid : new TreeSet<>(set.claims.keySet())) {
            Map<String, Integer> counts = new TreeMap<>();
            set.claims.get(pasid).forEach(c -> counts.merge(c.consumer(), 1, Integer::sum));
            counts.forEach((consumer, count) -> {
                PasidClaimDTO c = new PasidClaimDTO();
                c.pasid = pasid;
                c.consumer = consumer;
                c.count = count;
                claims.add(c);
            });
        }
        dto.claims = claims.toArray(new PasidClaimDTO[0]);
        return dto;
    }

    private static void checkConsumer(String consumer) throws IommuException {
        if (consumer == null || consumer.isBlank()) {
            throw new IommuException(Errno.EINVAL, "a consumer name must not be blank");
        }
    }

    private void checkOpen(PasidSetImpl set) throws IommuException {
        if (set.closed) {
            throw new IommuException(Errno.ENODEV, "PASID set of '" + set.owner() + "' is closed");
        }
    }

    /** Guarded by this: the PASID leaves its set, and every claim on it is revoked. */
    private void release(PasidSetImpl set, int pasid) {
        used.clear(pasid);
        owners.remove(pasid);
        set.members.clear(pasid);
        set.count--;
        set.revokeClaims(pasid);
        ownerUsed.computeIfPresent(set.owner(), (o, n) -> n == 1 ? null : n - 1);
        lowestMaybeFree = Math.min(lowestMaybeFree, pasid);
    }

    private void notifyFreed(PasidSetImpl set, int pasid) {
        for (PasidListener listener : listeners) {
            try {
                listener.pasidFreed(set.owner(), set.id(), pasid);
            } catch (RuntimeException e) {
                LOG.warn("PASID listener {} failed on PASID {}", listener, pasid, e);
            }
        }
    }
}
