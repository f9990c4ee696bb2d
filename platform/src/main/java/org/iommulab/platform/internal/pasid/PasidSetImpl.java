package org.iommulab.platform.internal.pasid;

import java.util.ArrayList;
import java.util.BitSet;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeSet;

import org.iommulab.api.dto.PasidSetDTO;
import org.iommulab.api.errno.IommuException;
import org.iommulab.api.pasid.PasidClaim;
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
    /** Guarded by {@code space}: the consumers authorised to share PASIDs. */
    final TreeSet<String> authorized = new TreeSet<>();
    /** Guarded by {@code space}: the live claims on each PASID that has any. */
    final Map<Integer, List<PasidClaimImpl>> claims = new HashMap<>();

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
    public void authorize(String consumer) throws IommuException {
        space.authorize(this, consumer);
    }

    @Override
    public String[] authorized() {
        return space.authorized(this);
    }

    @Override
    public PasidClaim claim(int pasid, String consumer) throws IommuException {
        return space.claim(this, pasid, consumer);
    }

    @Override
    public String[] consumers(int pasid) {
        return space.consumers(this, pasid);
    }

    @Override
    public PasidSetDTO toDTO() {
        return space.snapshot(this);
    }

    /** Guarded by {@code space}: the distinct consumers claiming {@code pasid}, sorted. */
    TreeSet<String> consumersOf(int pasid) {
        TreeSet<String> names = new TreeSet<>();
        for (PasidClaimImpl c : claims.getOrDefault(pasid, List.of())) {
            names.add(c.consumer());
        }
        return names;
    }

    /** Guarded by {@code space}: ends every claim on {@code pasid}. */
    void revokeClaims(int pasid) {
        List<PasidClaimImpl> ended = claims.remove(pasid);
        if (ended != null) {
            ended.forEach(c -> c.valid = false);
        }
    }

    /** Guarded by {@code space}. */
    void addClaim(PasidClaimImpl claim) {
        claims.computeIfAbsent(claim.pasid(), p -> new ArrayList<>(2)).add(claim);
    }

    @Override
    public String toString() {
        return "PasidSet[" + id + " owner=" + owner + " quota=" + quota + "]";
    }
}
