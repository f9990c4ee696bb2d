package org.iommulab.pgtable.unit;

import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;

import org.iommulab.api.errno.Errno;
import org.iommulab.api.errno.IommuException;
import org.iommulab.api.fault.PageResponse;

/**
 * A driver's page request groups that were reported to its listeners and are not answered yet
 * (Linux keeps them in {@code iopf_group} lists). Each group is answered at most once: the answer
 * claims it atomically and puts it back if the response could not be sent.
 *
 * <p>Thread safe. Requester ids are 32-bit, PASIDs 20-bit or {@code Pasids.NO_PASID}, group indexes
 * 9-bit (PRGI).
 */
public final class PendingPageRequests {
    /** Sends one page group response to the hardware. */
    @FunctionalInterface
    public interface Responder {
        void respond(int requesterId, int pasid, int groupIndex, PageResponse response) throws IommuException;
    }

    private final Set<Long> groups = ConcurrentHashMap.newKeySet();

    /** Requester id 61:30, PASID + 1 29:9, group index 8:0. */
    private static long key(int requesterId, int pasid, int groupIndex) {
        return ((requesterId & 0xffff_ffffL) << 30) | ((long) (pasid + 1) << 9) | (groupIndex & 0x1ff);
    }

    /** Records a group as reported and waiting for its answer. */
    public void add(int requesterId, int pasid, int groupIndex) {
        groups.add(key(requesterId, pasid, groupIndex));
    }

    /**
     * Answers a pending group through {@code responder}.
     *
     * @throws IommuException {@code ENOENT} unless the group is pending; the responder's error, the
     *     group then staying pending
     */
    public void answer(int requesterId, int pasid, int groupIndex, PageResponse response, Responder responder)
            throws IommuException {
        long key = key(requesterId, pasid, groupIndex);
        if (!groups.remove(key)) {
            throw new IommuException(Errno.ENOENT, String.format(
                    "no page request group %d pending for requester 0x%x PASID %d", groupIndex, requesterId, pasid));
        }
        try {
            responder.respond(requesterId, pasid, groupIndex, response);
        } catch (IommuException e) {
            groups.add(key);
            throw e;
        }
    }

    /**
     * Answers INVALID every group still pending for {@code requesterId} (detach), or for every
     * requester when it is negative (close), so that no device waits forever. A response that cannot
     * be sent is dropped: the unit is going away.
     */
    public void denyAll(int requesterId, Responder responder) {
        for (long key : groups) {
            int rid = (int) (key >>> 30);
            if ((requesterId < 0 || rid == requesterId) && groups.remove(key)) {
                try {
                    responder.respond(rid, (int) ((key >>> 9) & 0x1f_ffff) - 1, (int) key & 0x1ff, PageResponse.INVALID);
                } catch (IommuException e) {
                    // the unit refuses commands: nothing more can be answered
                }
            }
        }
    }

    /** Forgets every group. */
    public void clear() {
        groups.clear();
    }

    /** @return the pending groups as keys, for a live update */
    public long[] save() {
        return groups.stream().mapToLong(Long::longValue).toArray();
    }

    /** @param keys what {@link #save} returned: those groups are pending again */
    public void restore(long[] keys) {
        for (long key : keys) {
            groups.add(key);
        }
    }
}
