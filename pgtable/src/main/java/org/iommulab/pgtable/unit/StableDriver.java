package org.iommulab.pgtable.unit;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CopyOnWriteArrayList;

import org.iommulab.api.errno.Errno;
import org.iommulab.api.errno.IommuException;
import org.iommulab.api.fault.FaultListener;
import org.iommulab.api.fault.PageResponse;
import org.iommulab.api.invalidation.CacheInvalidation;
import org.iommulab.api.nesting.GuestPasidBind;
import org.iommulab.api.nesting.NestingInfo;
import org.iommulab.api.nesting.PasidTableConfig;
import org.iommulab.api.pasid.PasidSet;
import org.iommulab.api.spi.DomainType;
import org.iommulab.api.spi.IommuDomain;
import org.iommulab.api.spi.IommuDriver;
import org.iommulab.api.spi.ReservedRegion;

/**
 * The driver a {@link ModeledInstance} hands out: every call goes through the instance's gate to
 * the current build's driver, and the domains it hands out are {@link StableDomain}s that follow
 * their id to the next build's driver. Fault listeners are remembered so a resumed driver gets
 * them too.
 *
 * <p>Thread safe.
 */
final class StableDriver implements IommuDriver {
    private final ModeledInstance instance;
    private final List<FaultListener> listeners = new CopyOnWriteArrayList<>();
    /** Live handles by domain id. Guarded by this. */
    private final Map<Integer, StableDomain> domains = new HashMap<>();

    StableDriver(ModeledInstance instance) {
        this.instance = instance;
    }

    /** Points every handle at the next build's driver and domains; re-registers the listeners. */
    synchronized void rebind(IommuDriver next, Map<Integer, IommuDomain> nextDomains) {
        for (StableDomain d : new ArrayList<>(domains.values())) {
            IommuDomain target = nextDomains.get(d.id());
            if (target == null) {
                domains.remove(d.id());
            }
            d.retarget(target);
        }
        for (FaultListener l : listeners) {
            next.addFaultListener(l);
        }
    }

    /** @return the current driver's domain behind a handle of this instance; others pass as they are */
    private IommuDomain unwrap(IommuDomain domain) throws IommuException {
        if (domain instanceof StableDomain s && s.owner() == instance) {
            IommuDomain target = s.target();
            if (target == null) {
                throw new IommuException(Errno.ENOENT, "domain " + s.id() + " is gone");
            }
            return target;
        }
        return domain;
    }

    private interface Call<T> {
        T run(IommuDriver driver) throws IommuException;
    }

    private <T> T call(Call<T> call) throws IommuException {
        ModeledInstance.Parts p = instance.enterOrFail();
        try {
            return call.run(p.driver());
        } finally {
            instance.exit();
        }
    }

    /** A fixed property of the unit: answered by the latest build's driver, open, closed or handed over. */
    @Override
    public NestingInfo nestingInfo() {
        return instance.latest().driver().nestingInfo();
    }

    @Override
    public IommuDomain allocateDomain(DomainType type) throws IommuException {
        return call(d -> {
            IommuDomain domain = d.allocateDomain(type);
            StableDomain handle = new StableDomain(instance, domain);
            synchronized (this) {
                domains.put(domain.id(), handle);
            }
            return handle;
        });
    }

    @Override
    public void freeDomain(IommuDomain domain) throws IommuException {
        call(d -> {
            d.freeDomain(unwrap(domain));
            if (domain instanceof StableDomain s) {
                synchronized (this) {
                    domains.remove(s.id(), s);
                }
                s.retarget(null);
            }
            return null;
        });
    }

    @Override
    public void attach(IommuDomain domain, int requesterId) throws IommuException {
        call(d -> {
            d.attach(unwrap(domain), requesterId);
            return null;
        });
    }

    @Override
    public void detach(IommuDomain domain, int requesterId) throws IommuException {
        call(d -> {
            d.detach(unwrap(domain), requesterId);
            return null;
        });
    }

    @Override
    public void attachPasid(IommuDomain domain, int requesterId, int pasid) throws IommuException {
        call(d -> {
            d.attachPasid(unwrap(domain), requesterId, pasid);
            return null;
        });
    }

    @Override
    public void detachPasid(IommuDomain domain, int requesterId, int pasid) throws IommuException {
        call(d -> {
            d.detachPasid(unwrap(domain), requesterId, pasid);
            return null;
        });
    }

    @Override
    public void bindFirstStage(int requesterId, int pasid, long pgd, int addressWidth, int flags) throws IommuException {
        call(d -> {
            d.bindFirstStage(requesterId, pasid, pgd, addressWidth, flags);
            return null;
        });
    }

    @Override
    public void unbindFirstStage(int requesterId, int pasid) throws IommuException {
        call(d -> {
            d.unbindFirstStage(requesterId, pasid);
            return null;
        });
    }

    @Override
    public void invalidateFirstStage(int requesterId, int pasid, long address, long size) throws IommuException {
        call(d -> {
            d.invalidateFirstStage(requesterId, pasid, address, size);
            return null;
        });
    }

    @Override
    public void bindGuestPasid(IommuDomain parent, int requesterId, GuestPasidBind bind, PasidSet owner)
            throws IommuException {
        call(d -> {
            d.bindGuestPasid(unwrap(parent), requesterId, bind, owner);
            return null;
        });
    }

    @Override
    public void unbindGuestPasid(IommuDomain parent, int requesterId, int hostPasid, PasidSet owner)
            throws IommuException {
        call(d -> {
            d.unbindGuestPasid(unwrap(parent), requesterId, hostPasid, owner);
            return null;
        });
    }

    @Override
    public void attachPasidTable(IommuDomain parent, int requesterId, PasidTableConfig config) throws IommuException {
        call(d -> {
            d.attachPasidTable(unwrap(parent), requesterId, config);
            return null;
        });
    }

    @Override
    public void detachPasidTable(IommuDomain parent, int requesterId) throws IommuException {
        call(d -> {
            d.detachPasidTable(unwrap(parent), requesterId);
            return null;
        });
    }

    @Override
    public void cacheInvalidate(IommuDomain domain, int requesterId, CacheInvalidation invalidation, PasidSet owner)
            throws IommuException {
        call(d -> {
            d.cacheInvalidate(domain == null ? null : unwrap(domain), requesterId, invalidation, owner);
            return null;
        });
    }

    @Override
    public void pageResponse(int requesterId, int pasid, int groupIndex, PageResponse response) throws IommuException {
        call(d -> {
            d.pageResponse(requesterId, pasid, groupIndex, response);
            return null;
        });
    }

    /** A fixed property of the platform: answered by the latest build's driver. */
    @Override
    public List<ReservedRegion> reservedRegions(int requesterId) {
        return instance.latest().driver().reservedRegions(requesterId);
    }

    @Override
    public void addFaultListener(FaultListener listener) {
        listeners.add(listener);
        ModeledInstance.Parts p = instance.enter();
        if (p != null) {
            try {
                p.driver().addFaultListener(listener);
            } finally {
                instance.exit();
            }
        }
    }

    @Override
    public void removeFaultListener(FaultListener listener) {
        listeners.remove(listener);
        ModeledInstance.Parts p = instance.enter();
        if (p != null) {
            try {
                p.driver().removeFaultListener(listener);
            } finally {
                instance.exit();
            }
        }
    }

    @Override
    public String toString() {
        return "driver of " + instance.name();
    }
}
