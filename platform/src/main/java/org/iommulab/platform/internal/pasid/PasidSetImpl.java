package org.iommulab.platform.internal.pasid;

import java.util.BitSet;

import org.iommulab.api.dto.PasidSetDTO;
import org.iommulab.api.errno.IommuException;
import org.iommulab.api.pasid.PasidSet;
import org.iommulab.api.pasid.Pasids;

/**
 * A PASID set. Its membership and closed flag are guarded by the owning space's monitor; every
 * operation delegates to the space so that it is atomic with respect to every other set.
 */
final class PasidSetImpl implements PasidSet {
    private final PasidSpaceImpl space;
    private final int id;
    private final String owner;
    private final int quota;
    /** Guarded by {@code space}. */
    final BitSet members = new BitSet();
    /** Guarded by {@code space}: the cardinality of {@link #members}, kept so quota checks cost O(1). */
    int count;
    /** Guarded by {@code space}. */
    boolean closed;

    PasidSetImpl(PasidSpaceImpl space, int id, String owner, int quota) {
        this.space = space;
        this.id = id;
        this.owner = owner;
        this.quota = quota;
    }

    @Override
    public int id() {
        return id;
    }

    @Override
    public String owner() {
        return owner;
    }

    @Override
    public int quota() {
        return quota;
    }

    @Override
    public int size() {
        return space.size(this);
    }

    @Override
    public int allocate() throws IommuException {
        return space.allocate(this, 1, Pasids.MAX_PASID);
    }

    @Override
    public int allocate(int min, int max) throws IommuException {
        return space.allocate(this, min, max);
    }

    @Override
    public void free(int pasid) throws IommuException {
        space.free(this, pasid);
    }

    @Override
    public boolean contains(int pasid) {
        return space.contains(this, pasid);
    }

    @Override
    public void checkOwned(int pasid) throws IommuException {
        space.checkOwned(this, pasid);
    }

    @Override
    public int[] pasids() {
        return space.pasids(this);
    }

    @Override
    public void close() {
        space.close(this);
    }

    @Override
    public boolean isClosed() {
        return space.isClosed(this);
    }

    @Override
    public PasidSetDTO toDTO() {
        PasidSetDTO dto = new PasidSetDTO();
        dto.id = id;
        dto.owner = owner;
        dto.quota = quota;
        dto.pasids = pasids();
        dto.closed = isClosed();
        return dto;
    }

    @Override
    public String toString() {
        return "PasidSet[" + id + " owner=" + owner + " quota=" + quota + "]";
    }
}
