package org.iommulab.platform.internal.pasid;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.CopyOnWriteArrayList;

import org.iommulab.api.dto.PasidSetDTO;
import org.iommulab.api.errno.Errno;
import org.iommulab.api.errno.IommuException;
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
 * The system-wide PASID space. One monitor guards the allocation bitmap, the owner map and every
 * set's membership, so an allocation, a free and an ownership check are each atomic; listeners are
 * called after the monitor is released.
 */
@Component(service = PasidSpace.class, immediate = true)
public final class PasidSpaceImpl implements PasidSpace {
    private static final Logger LOG = LoggerFactory.getLogger(PasidSpaceImpl.class);

    private final PasidBitmap used = new PasidBitmap(Pasids.MAX_PASID + 1);
    private final Map<Integer, PasidSetImpl> owners = new HashMap<>();
    private final Map<String, PasidSetImpl> setsByOwner = new LinkedHashMap<>();
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
        if (owner == null || owner.isBlank()) {
            throw new IommuException(Errno.EINVAL, "owner token must not be blank");
        }
        if (quota < 1) {
            throw new IommuException(Errno.EINVAL, "quota must be at least 1, not " + quota);
        }
        synchronized (this) {
            if (setsByOwner.containsKey(owner)) {
                throw new IommuException(Errno.EEXIST, "owner '" + owner + "' already has a PASID set");
            }
            if (quota > capacity() - reserved) {
                throw new IommuException(Errno.ENOSPC, "quota " + quota + " exceeds the unreserved PASID capacity "
                        + (capacity() - reserved));
            }
            PasidSetImpl set = new PasidSetImpl(this, nextSetId++, owner, quota);
            setsByOwner.put(owner, set);
            reserved += quota;
            return set;
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
        synchronized (this) {
            for (int pasid : pasids) {
                PasidSetImpl holder = owners.get(pasid);
                if (holder != null) {
                    throw new IommuException(Errno.EBUSY, "PASID " + pasid + " is held by the set of '" + holder.owner() + "'");
                }
            }
            PasidSetImpl set = (PasidSetImpl) createSet(snapshot.owner, snapshot.quota);
            for (int pasid : pasids) {
                allocate(set, pasid, pasid); // free, checked above under the same lock: cannot fail
            }
            return set;
        }
    }

    @Override
    public synchronized Optional<PasidSet> set(String owner) {
        return Optional.ofNullable(setsByOwner.get(owner));
    }

    @Override
    public synchronized List<PasidSet> sets() {
        return new ArrayList<>(setsByOwner.values());
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
            setsByOwner.remove(set.owner());
            reserved -= set.quota();
        }
        for (int pasid : freed) {
            notifyFreed(set, pasid);
        }
    }

    private void checkOpen(PasidSetImpl set) throws IommuException {
        if (set.closed) {
            throw new IommuException(Errno.ENODEV, "PASID set of '" + set.owner() + "' is closed");
        }
    }

    private void release(PasidSetImpl set, int pasid) {
        used.clear(pasid);
        owners.remove(pasid);
        set.members.clear(pasid);
        set.count--;
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
