package org.iommulab.pgtable.unit;

import org.iommulab.api.errno.Errno;
import org.iommulab.api.errno.IommuException;
import org.iommulab.api.spi.DomainType;
import org.iommulab.api.spi.IommuDomain;

/**
 * A domain handle of a {@link ModeledInstance}: its id, type and geometry are fixed; map, unmap and
 * lookups go through the instance's gate to the current build's domain of the same id.
 *
 * <p>Thread safe.
 */
final class StableDomain implements IommuDomain {
    private final ModeledInstance owner;
    private final int id;
    private final DomainType type;
    private final long pageSizes;
    private final int inputAddressBits;
    /** The current build's domain; {@code null} once freed or lost in a hand-over. */
    private volatile IommuDomain target;

    StableDomain(ModeledInstance owner, IommuDomain target) {
        this.owner = owner;
        this.id = target.id();
        this.type = target.type();
        this.pageSizes = target.pageSizes();
        this.inputAddressBits = target.inputAddressBits();
        this.target = target;
    }

    ModeledInstance owner() {
        return owner;
    }

    IommuDomain target() {
        return target;
    }

    void retarget(IommuDomain next) {
        target = next;
    }

    @Override
    public int id() {
        return id;
    }

    @Override
    public DomainType type() {
        return type;
    }

    @Override
    public long pageSizes() {
        return pageSizes;
    }

    @Override
    public int inputAddressBits() {
        return inputAddressBits;
    }

    private IommuDomain live() throws IommuException {
        IommuDomain t = target;
        if (t == null) {
            throw new IommuException(Errno.ENODEV, "domain " + id + " of " + owner.name() + " is gone");
        }
        return t;
    }

    @Override
    public void map(long iova, long pa, long size, int prot) throws IommuException {
        owner.enterOrFail();
        try {
            live().map(iova, pa, size, prot);
        } finally {
            owner.exit();
        }
    }

    @Override
    public long unmap(long iova, long size) throws IommuException {
        owner.enterOrFail();
        try {
            return live().unmap(iova, size);
        } finally {
            owner.exit();
        }
    }

    @Override
    public long iovaToPhys(long iova) {
        if (owner.enter() == null) {
            return -1;
        }
        try {
            IommuDomain t = target;
            return t == null ? -1 : t.iovaToPhys(iova);
        } finally {
            owner.exit();
        }
    }

    @Override
    public String toString() {
        return "domain " + id + " (" + type + ") of " + owner.name();
    }
}
