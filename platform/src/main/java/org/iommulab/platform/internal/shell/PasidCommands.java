package org.iommulab.platform.internal.shell;

import org.apache.felix.service.command.Descriptor;
import org.iommulab.api.errno.Errno;
import org.iommulab.api.errno.IommuException;
import org.iommulab.api.pasid.PasidSet;
import org.iommulab.api.pasid.PasidSpace;
import org.osgi.service.component.annotations.Activate;
import org.osgi.service.component.annotations.Component;
import org.osgi.service.component.annotations.Reference;

/** {@code pasid:} commands on the system PASID space. Sets are named by their owner token. */
@Component(service = PasidCommands.class, property = {
        "osgi.command.scope=pasid",
        "osgi.command.function=create",
        "osgi.command.function=alloc",
        "osgi.command.function=free",
        "osgi.command.function=check",
        "osgi.command.function=close",
        "osgi.command.function=list" })
public final class PasidCommands {
    private final PasidSpace space;

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
        for (PasidSet set : space.sets()) {
            int[] pasids = set.pasids();
            System.out.printf("set %s id=%d quota=%d used=%d pasids=%s%n", set.owner(), set.id(), set.quota(),
                    pasids.length, ranges(pasids));
        }
    }

    private PasidSet set(String owner) throws IommuException {
        return space.set(owner).orElseThrow(() -> new IommuException(Errno.ENOENT, "no PASID set for owner '" + owner + "'"));
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
