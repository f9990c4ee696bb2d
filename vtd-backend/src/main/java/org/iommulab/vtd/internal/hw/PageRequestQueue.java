package org.iommulab.vtd.internal.hw;

import java.util.HashMap;
import java.util.Map;

import org.iommulab.api.errno.IommuException;
import org.iommulab.api.fault.PageResponse;
import org.iommulab.api.memory.MemoryAccessException;
import org.iommulab.api.memory.PhysicalMemory;
import org.iommulab.api.pasid.Pasids;
import org.iommulab.api.translation.Access;
import org.iommulab.pgtable.unit.StateWords;

/**
 * The page request queue (VT-d spec §7.5): page requests from devices are written as 256-bit page
 * request descriptors at PQT in the queue PQA describes; software consumes them by moving PQH and
 * answers each page request group with a page group response descriptor on the invalidation queue.
 *
 * <p>Registers: PQA base 63:12, PQS 2:0 (2^PQS 4 KiB pages); PQH/PQT byte offsets, bits 18:5;
 * PRS PPR bit 0 (pending page request) and PRO bit 1 (overflow), write-1-to-clear; PECTL IM bit 31
 * and IP bit 30.
 *
 * <p>Page request descriptor (§7.5.1.1; Linux {@code struct page_req_dsc}): type 7:0 (1), PASID
 * present 8, RID 31:16, PASID 51:32, EXE 52, PM (privileged) 53; RDR 64, WRR 65, LPIG 66, PRGI 75:67,
 * address 127:76.
 *
 * <p>When the queue is full the unit sets PRO and answers the request itself with a successful
 * response, so the device retries. Thread safe (one monitor).
 */
final class PageRequestQueue {
    static final int PRS_PPR = 1;
    static final int PRS_PRO = 2;

    private final PhysicalMemory memory;
    private long pqh;
    private long pqt;
    private long pqa;
    private int prs;
    private int pectl = VtdReg.CTL_IM;
    private long requests;
    private long overflows;
    /** Page request groups the device waits on: -1 pending, else the response code. */
    private final Map<Long, Integer> groups = new HashMap<>();

    PageRequestQueue(PhysicalMemory memory) {
        this.memory = memory;
    }

    private static long key(int sid, int pasid, int group) {
        return ((long) (sid & 0xffff) << 32) | ((long) (pasid + 1) << 9) | (group & 0x1ff);
    }

    private long bytes() {
        return 4096L << (pqa & 7);
    }

    /**
     * Queues a page request.
     *
     * @return {@code true} if an event should be delivered (interrupt)
     */
    synchronized boolean request(int sid, int pasid, long address, int access, int group) {
        requests++;
        long k = key(sid, pasid, group);
        long next = (pqt + 32) % bytes();
        if (next == pqh) {
            prs |= PRS_PRO;
            overflows++;
            groups.put(k, PageResponse.SUCCESS.code());
            return false;
        }
        long q0 = 1L | ((long) (sid & 0xffff) << 16) | ((access & Access.EXEC) != 0 ? 1L << 52 : 0)
                | ((access & Access.PRIV) != 0 ? 1L << 53 : 0);
        if (pasid != Pasids.NO_PASID) {
            q0 |= (1L << 8) | ((long) (pasid & 0xfffff) << 32);
        }
        long q1 = ((access & Access.READ) != 0 ? 1 : 0) | ((access & Access.WRITE) != 0 ? 2 : 0) | 4L
                | ((long) (group & 0x1ff) << 3) | (address & ~0xfffL);
        long slot = (pqa & ~0xfffL) + pqt;
        try {
            memory.write64(slot, q0);
            memory.write64(slot + 8, q1);
            memory.write64(slot + 16, 0);
            memory.write64(slot + 24, 0);
        } catch (MemoryAccessException e) {
            // the queue is not in backed memory: the unit answers as on overflow
            prs |= PRS_PRO;
            groups.put(k, PageResponse.FAILURE.code());
            return false;
        }
        pqt = next;
        groups.put(k, -1);
        boolean wasPending = (prs & PRS_PPR) != 0;
        prs |= PRS_PPR;
        if (wasPending) {
            return false;
        }
        if ((pectl & VtdReg.CTL_IM) != 0) {
            pectl |= VtdReg.CTL_IP;
            return false;
        }
        return true;
    }

    /** A page group response descriptor reached the unit: the device learns the answer. */
    synchronized void respond(int sid, int pasid, int group, int code) {
        long k = key(sid, pasid, group);
        if (groups.containsKey(k)) {
            groups.put(k, code);
        }
    }

    /** @return the device-visible answer, consumed; {@code null} while pending or unknown */
    synchronized PageResponse status(int sid, int pasid, int group) {
        long k = key(sid, pasid, group);
        Integer code = groups.get(k);
        if (code == null || code < 0) {
            return null;
        }
        groups.remove(k);
        return code == PageResponse.SUCCESS.code() ? PageResponse.SUCCESS
                : code == PageResponse.INVALID.code() ? PageResponse.INVALID : PageResponse.FAILURE;
    }

    synchronized boolean enabled() {
        return (pqa & ~0xfffL) != 0;
    }

    synchronized long read(int off) {
        switch (off) {
            case VtdReg.PQH:
                return pqh;
            case VtdReg.PQT:
                return pqt;
            case VtdReg.PQA:
                return pqa;
            case 0xd8:
                return (long) prs << 32;
            case VtdReg.PECTL:
                return pectl & 0xffff_ffffL;
            default:
                return 0;
        }
    }

    synchronized void write(int off, long value, long mask) {
        switch (off) {
            case VtdReg.PQH:
                pqh = (((pqh & ~mask) | (value & mask)) & 0x7ffe0L) % bytes();
                break;
            case VtdReg.PQA:
                pqa = ((pqa & ~mask) | (value & mask)) & (~0xfffL | 7);
                pqh = 0;
                pqt = 0;
                break;
            case 0xd8:
                if ((mask >>> 32) != 0) {
                    prs &= ~((int) (value >>> 32) & (PRS_PPR | PRS_PRO));
                    if (prs == 0) {
                        pectl &= ~VtdReg.CTL_IP;
                    }
                }
                break;
            case VtdReg.PECTL:
                if ((mask & 0xffff_ffffL) != 0) {
                    pectl = (pectl & VtdReg.CTL_IP) | ((int) value & VtdReg.CTL_IM);
                }
                break;
            default:
                break;
        }
    }

    synchronized long requests() {
        return requests;
    }

    synchronized long overflows() {
        return overflows;
    }

    /** @return the queue registers, counters and the groups devices wait on, for a live update */
    synchronized long[] save() {
        StateWords w = StateWords.writer().put(pqh).put(pqt).put(pqa).put(prs).put(pectl).put(requests).put(overflows);
        groups.forEach((k, v) -> w.put(k).put(v));
        return w.toArray();
    }

    /** Takes over what {@link #save} recorded. */
    synchronized void restore(StateWords r) throws IommuException {
        pqh = r.next();
        pqt = r.next();
        pqa = r.next();
        prs = r.nextInt();
        pectl = r.nextInt();
        requests = r.next();
        overflows = r.next();
        groups.clear();
        while (r.hasNext()) {
            groups.put(r.next(), r.nextInt());
        }
    }
}
