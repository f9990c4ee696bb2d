package org.iommulab.platform.internal.shell;

import java.util.List;
import java.util.Optional;
import java.util.concurrent.CopyOnWriteArrayList;

import org.apache.felix.service.command.Descriptor;
import org.iommulab.api.dto.PasidClaimDTO;
import org.iommulab.api.dto.PasidOwnerDTO;
import org.iommulab.api.dto.PasidSetDTO;
import org.iommulab.api.errno.Errno;
import org.iommulab.api.errno.IommuException;
import org.iommulab.api.pasid.PasidClaim;
import org.iommulab.api.pasid.PasidSet;
import org.iommulab.api.pasid.PasidSpace;
import org.osgi.service.component.annotations.Activate;
import org.osgi.service.component.annotations.Component;
import org.osgi.service.component.annotations.Reference;

/**
 * {@code pasid:} commands on the system PASID space. A set is named by its owner token (the owner's
 * oldest open set) or by {@code owner/id} (any open set, as {@code pasid:open} prints it).
 */
@Component(service = PasidCommands.class, property = {
        "osgi.command.scope=pasid",
        "osgi.command.function=create",
        "osgi.command.function=open",
        "osgi.command.function=quota",
        "osgi.command.function=authorize",
        "osgi.command.function=claim",
        "osgi.command.function=release",
        "osgi.command.function=info",
        "osgi.command.function=alloc",
        "osgi.command.function=free",
        "osgi.command.function=check",
        "osgi.command.function=close",
        "osgi.command.function=list" })
public final class PasidCommands {
    private final PasidSpace space;
    /** Claims taken from the shell, so that {@code pasid:release} can end them. */
    private final List<PasidClaim> shellClaims = new CopyOnWriteArrayList<>();

    /** @param space the PASID space */
    @Activate
    public PasidCommands(@Reference PasidSpace space) {
        this.space = space;
    }

    /**
     * @param owner owner token
     * @param quota quota
     * @throws IommuException EEXIST, ENOSPC, EINVAL
     */
    @Descriptor("create a PASID set for an owner with a quota; prints the owner")
    public void create(@Descriptor("owner token (VM or process name)") String owner,
            @Descriptor("most PASIDs the set may hold") String quota) throws IommuException {
        PasidSet set = space.createSet(owner, Numbers.nonNegativeInt("quota", quota));
        System.out.println(set.owner());
    }

    /**
     * @param owner owner token
     * @param quota quota
     * @throws IommuException ENOSPC, EINVAL
     */
    @Descriptor("open one more PASID set for an owner (an open of /dev/sva); prints owner/id")
    public void open(@Descriptor("owner token") String owner, @Descriptor("most PASIDs the set may hold") String quota)
            throws IommuException {
        PasidSet set = space.openSet(owner, Numbers.nonNegativeInt("quota", quota));
        System.out.println(set.owner() + "/" + set.id());
    }

    /**
     * @param owner owner token
     */
    @Descriptor("show an owner's limit on the PASIDs its sets hold together, with its usage and sets")
    public void quota(@Descriptor("owner token") String owner) {
        System.out.println(ownerLine(owner));
    }

    /**
     * @param owner owner token
     * @param limit the limit, or none
     * @throws IommuException EINVAL
     */
    @Descriptor("set an owner's limit on the PASIDs its sets hold together ('none' lifts it); prints the owner line")
    public void quota(@Descriptor("owner token") String owner, @Descriptor("the limit, or none") String limit)
            throws IommuException {
        if ("none".equals(limit)) {
            space.clearOwnerQuota(owner);
        } else {
            space.setOwnerQuota(owner, Numbers.nonNegativeInt("limit", limit));
        }
        System.out.println(ownerLine(owner));
    }

    /**
     * @param set set name
     * @param consumers consumer names
     * @throws IommuException ENOENT, ENODEV, EINVAL
     */
    @Descriptor("authorise consumers (vfio-mdev, user-wq, ...) to share a set's PASIDs")
    public void authorize(@Descriptor("owner or owner/id") String set,
            @Descriptor("consumer names") String... consumers) throws IommuException {
        PasidSet s = set(set);
        if (consumers.length == 0) {
            throw new IommuException(Errno.EINVAL, "name at least one consumer");
        }
        for (String consumer : consumers) {
            if (consumer == null || consumer.isBlank()) {
                throw new IommuException(Errno.EINVAL, "a consumer name must not be blank");
            }
        }
        for (String consumer : consumers) {
            s.authorize(consumer);
        }
    }

    /**
     * @param set set name
     * @param pasid the PASID
     * @param consumer consumer name
     * @throws IommuException EPERM, ENODEV, EINVAL
     */
    @Descriptor("claim a PASID for a consumer, as a driver does before using it; prints the PASID's consumers")
    public void claim(@Descriptor("owner or owner/id") String set, @Descriptor("the PASID") String pasid,
            @Descriptor("consumer name") String consumer) throws IommuException {
        PasidSet s = set(set);
        int p = pasid("pasid", pasid);
        shellClaims.removeIf(c -> !c.isValid());
        shellClaims.add(s.claim(p, consumer));
        System.out.println(String.join(",", s.consumers(p)));
    }

    /**
     * @param set set name
     * @param pasid the PASID
     * @param consumer consumer name
     * @throws IommuException ENOENT if the consumer holds no claim on it
     */
    @Descriptor("release one claim of a consumer on a PASID, as pasid:claim took it")
    public void release(@Descriptor("owner or owner/id") String set, @Descriptor("the PASID") String pasid,
            @Descriptor("consumer name") String consumer) throws IommuException {
        PasidSet s = set(set);
        int p = pasid("pasid", pasid);
        PasidClaim claim = shellClaims.stream().filter(c -> c.set() == s && c.pasid() == p
                && c.consumer().equals(consumer) && c.isValid()).findFirst().orElseThrow(
                        () -> new IommuException(Errno.ENOENT, "no shell claim of " + consumer + " on PASID " + p));
        claim.release();
        shellClaims.remove(claim);
    }

    /**
     * @param set set name
     * @throws IommuException ENOENT
     */
    @Descriptor("show a set: quota, authorised consumers, and each PASID with its consumers")
    public void info(@Descriptor("owner or owner/id") String set) throws IommuException {
        PasidSetDTO dto = set(set).toDTO();
        System.out.printf("set %s/%d quota=%d used=%d authorized=%s%n", dto.owner, dto.id, dto.quota, dto.pasids.length,
                dto.authorized.length == 0 ? "-" : String.join(",", dto.authorized));
        for (int pasid : dto.pasids) {
            StringBuilder users = new StringBuilder();
            for (PasidClaimDTO c : dto.claims) {
                if (c.pasid == pasid) {
                    users.append(users.length() == 0 ? "" : ",").append(c.consumer).append(c.count > 1 ? "x" + c.count : "");
                }
            }
            System.out.printf("pasid %d consumers=%s%n", pasid, users.length() == 0 ? "-" : users);
        }
    }

    /**
     * @param owner owner token
     * @throws IommuException ENOENT, ENOSPC
     */
    @Descriptor("allocate the lowest free PASID for an owner; prints the PASID")
    public void alloc(@Descriptor("owner token") String owner) throws IommuException {
        System.out.println(set(owner).allocate());
    }

    /**
     * @param owner owner token
     * @param pasid the PASID wanted
     * @throws IommuException EBUSY, ENOSPC, EINVAL
     */
    @Descriptor("allocate a specific PASID (the migration case); prints the PASID")
    public void alloc(@Descriptor("owner token") String owner, @Descriptor("the PASID") String pasid)
            throws IommuException {
        int p = pasid("pasid", pasid);
        System.out.println(set(owner).allocate(p, p));
    }

    /**
     * @param owner owner token
     * @param min lowest PASID
     * @param max highest PASID
     * @throws IommuException ENOSPC, EINVAL
     */
    @Descriptor("allocate the lowest free PASID in [min, max]; prints the PASID")
    public void alloc(@Descriptor("owner token") String owner, @Descriptor("lowest PASID") String min,
            @Descriptor("highest PASID") String max) throws IommuException {
        System.out.println(set(owner).allocate(pasid("min", min), pasid("max", max)));
    }

    /**
     * @param owner owner token
     * @param pasid the PASID
     * @throws IommuException ENOENT, EPERM
     */
    @Descriptor("free a PASID of an owner's set")
    public void free(@Descriptor("owner token") String owner, @Descriptor("the PASID") String pasid)
            throws IommuException {
        set(owner).free(pasid("pasid", pasid));
    }

    /**
     * @param owner owner token
     * @param pasid the PASID
     * @throws IommuException EPERM if not owned
     */
    @Descriptor("check that an owner's set holds a PASID; prints 'owned' or fails with EPERM")
    public void check(@Descriptor("owner token") String owner, @Descriptor("the PASID") String pasid)
            throws IommuException {
        set(owner).checkOwned(pasid("pasid", pasid));
        System.out.println("owned");
    }

    /**
     * @param owner owner token
     * @throws IommuException ENOENT
     */
    @Descriptor("close an owner's set, freeing all its PASIDs")
    public void close(@Descriptor("owner token") String owner) throws IommuException {
        set(owner).close();
    }

    /** Lists the space and its sets. */
    @Descriptor("list the PASID space and each set: owner, id, quota, PASIDs")
    public void list() {
        System.out.printf("space capacity=%d reserved=%d allocated=%d%n", space.capacity(), space.reserved(),
                space.allocated());
        for (PasidOwnerDTO owner : space.owners()) {
            System.out.println(ownerLine(owner));
        }
        for (PasidSet set : space.sets()) {
            PasidSetDTO dto = set.toDTO();
            System.out.printf("set %s id=%d quota=%d used=%d pasids=%s authorized=%s%n", dto.owner, dto.id, dto.quota,
                    dto.pasids.length, ranges(dto.pasids), dto.authorized.length == 0 ? "-" : String.join(",", dto.authorized));
        }
    }

    private String ownerLine(String owner) {
        return space.owners().stream().filter(o -> o.owner.equals(owner)).findFirst().map(PasidCommands::ownerLine)
                .orElse("owner " + owner + " quota=none used=0 sets=-");
    }

    private static String ownerLine(PasidOwnerDTO o) {
        return String.format("owner %s quota=%s used=%d sets=%s", o.owner, o.quota < 0 ? "none" : Integer.toString(o.quota),
                o.used, ranges(o.sets));
    }

    /** A set by owner token (its oldest open set) or by {@code owner/id}. */
    private PasidSet set(String name) throws IommuException {
        Optional<PasidSet> byOwner = space.set(name);
        if (byOwner.isPresent()) {
            return byOwner.get();
        }
        int slash = name.lastIndexOf('/');
        if (slash > 0) {
            String owner = name.substring(0, slash);
            int id = pasid("set id", name.substring(slash + 1));
            Optional<PasidSet> byId = space.setById(id).filter(s -> s.owner().equals(owner));
            if (byId.isPresent()) {
                return byId.get();
            }
        }
        throw new IommuException(Errno.ENOENT, slash > 0 ? "no open PASID set '" + name + "'"
                : "no PASID set for owner '" + name + "'");
    }

    private static int pasid(String what, String text) throws IommuException {
        return (int) Numbers.u64(what, text, Integer.MAX_VALUE);
    }

    /** Formats ascending PASIDs as {@code 1-4,7}. */
    static String ranges(int[] sorted) {
        if (sorted.length == 0) {
            return "-";
        }
        StringBuilder b = new StringBuilder();
        int start = sorted[0];
        int prev = start;
        for (int i = 1; i <= sorted.length; i++) {
            if (i < sorted.length && sorted[i] == prev + 1) {
                prev = sorted[i];
                continue;
            }
            if (b.length() > 0) {
                b.append(',');
            }
            b.append(start);
            if (prev != start) {
                b.append('-').append(prev);
            }
            if (i < sorted.length) {
                start = prev = sorted[i];
            }
        }
        return b.toString();
    }
}
