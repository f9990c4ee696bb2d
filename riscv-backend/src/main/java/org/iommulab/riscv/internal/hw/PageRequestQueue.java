package org.iommulab.riscv.internal.hw;

import java.util.HashMap;
import java.util.Iterator;
import java.util.Map;

import org.iommulab.api.fault.PageResponse;
import org.iommulab.api.memory.MemoryAccessException;
import org.iommulab.api.memory.PhysicalMemory;
import org.iommulab.api.pasid.Pasids;
import org.iommulab.api.translation.Access;
import org.iommulab.api.translation.Translation;
import org.iommulab.riscv.internal.spec.Command;
import org.iommulab.riscv.internal.spec.DeviceContext;
import org.iommulab.riscv.internal.spec.PageRequestRecord;
import org.iommulab.riscv.internal.spec.Reg;

/**
 * PCIe page requests (spec "PCIe ATS Page Request handling", §3.3 "Page-Request-Queue") and
 * the device side of their answers. A request (always "Last Request in PRG" = 1 here; R = W = 0 is
 * a Stop Marker) locates the DC (§2.3 steps 1-5); with EN_PRI (which needs EN_ATS) it is written as
 * a 16-byte record at pqt (doubleword 0: PID 31:12, PV 32, PRIV 33, EXEC 34, DID 63:40 - PRIV and
 * EXEC only with a PASID; doubleword 1: the message payload, R 0, W 1, L 2, PRGI 11:3, page address
 * 63:12) and pip is raised (pqcsr.pie). Otherwise the unit answers the group itself:
 * <ul>
 * <li>Response Failure: ddtp Off, DDT entry load access fault / not valid / misconfigured, the
 * queue off, pqmf set or set now;</li>
 * <li>Invalid Request: ddtp Bare, device_id too wide, EN_PRI 0;</li>
 * <li>Success: the queue full (pqof set now) or pqof already set.</li>
 * </ul>
 * A Stop Marker needs no response and is discarded silently on these errors. No fault records are
 * written for page requests. ATS.PRGR delivers software's answer; the device reads it (once)
 * through {@link #status}.
 *
 * <p>Simplification: a response is matched to the group by (requester, PASID, group index) as the
 * request named them; an IOMMU-generated response with PRPR = 0 would carry no PASID on the wire,
 * but the waiting device here still receives it. An ATS.PRGR without PV answers a group of that
 * index waiting with any PASID (a function that does not require the PASID matches the index).
 *
 * <p>Not thread safe: the owner calls it under its register lock.
 */
final class PageRequestQueue {
    /** Group state: waiting for software's ATS.PRGR. */
    private static final int WAITING = -1;

    private final PhysicalMemory memory;
    private final QueueRegisters pq;
    private final Interrupts interrupts;
    /** (rid, pasid, group) to {@link #WAITING} or a PRGR response code, until the device reads it. */
    private final Map<Long, Integer> groups = new HashMap<>();
    long queued;
    long autoResponses;
    long overflows;

    PageRequestQueue(PhysicalMemory memory, QueueRegisters pq, Interrupts interrupts) {
        this.memory = memory;
        this.pq = pq;
        this.interrupts = interrupts;
    }

    static long key(int requesterId, int pasid, int groupIndex) {
        return ((requesterId & 0xffff_ffffL) << 30) | ((long) (pasid + 1) << 9) | (groupIndex & 0x1ff);
    }

    /**
     * One page request with L = 1.
     *
     * @param ddtp the ddtp register
     * @param directory locates the DC
     * @param s scratch for GET_DC
     */
    void request(long ddtp, DirectoryWalker directory, Scratch s, int requesterId, int pasid, long address, int access,
            int groupIndex) {
        boolean stopMarker = (access & (Access.READ | Access.WRITE)) == 0;
        long key = key(requesterId, pasid, groupIndex & 0x1ff);
        int mode = (int) (ddtp & Reg.DDTP_MODE_MASK);
        if (mode == Reg.MODE_OFF) {
            autoRespond(key, Command.PRGR_RESPONSE_FAILURE, stopMarker);
            return;
        }
        if (mode == Reg.MODE_BARE || (requesterId >>> DeviceContext.deviceIdBits(DeviceContext.levels(mode))) != 0) {
            autoRespond(key, Command.PRGR_INVALID_REQUEST, stopMarker);
            return;
        }
        s.reset();
        if (!directory.deviceContext(ddtp, requesterId, s, new Translation())) {
            autoRespond(key, Command.PRGR_RESPONSE_FAILURE, stopMarker);
            return;
        }
        if ((s.dc[0] & DeviceContext.TC_EN_PRI) == 0) {
            autoRespond(key, Command.PRGR_INVALID_REQUEST, stopMarker);
            return;
        }
        if (!pq.on() || (pq.errors() & Reg.CSR_MF) != 0) {
            autoRespond(key, Command.PRGR_RESPONSE_FAILURE, stopMarker);
            return;
        }
        if ((pq.errors() & Reg.CSR_OF) != 0) {
            overflows++;
            autoRespond(key, Command.PRGR_SUCCESS, stopMarker);
            return;
        }
        if (pq.full(pq.unitIndex, pq.softwareIndex)) {
            pq.setError(Reg.CSR_OF);
            overflows++;
            raise();
            autoRespond(key, Command.PRGR_SUCCESS, stopMarker);
            return;
        }
        boolean pv = pasid != Pasids.NO_PASID;
        long header = PageRequestRecord.header(requesterId, pv ? pasid & 0xfffff : -1, (access & Access.PRIV) != 0,
                (access & Access.EXEC) != 0);
        long payload = PageRequestRecord.payload(address, (access & Access.READ) != 0, (access & Access.WRITE) != 0, true,
                groupIndex);
        if (!store(pq.entryAddress(pq.unitIndex), header, payload)) {
            pq.setError(Reg.CSR_MF);
            raise();
            autoRespond(key, Command.PRGR_RESPONSE_FAILURE, stopMarker);
            return;
        }
        pq.unitIndex = (pq.unitIndex + 1) & pq.indexMask();
        queued++;
        if (!stopMarker) {
            groups.put(key, WAITING);
        }
        raise();
    }

    private boolean store(long a, long header, long payload) {
        if (a < 0) {
            return false; // beyond capabilities.PAS
        }
        try {
            memory.write64(a, header);
            memory.write64(a + 8, payload);
            return true;
        } catch (MemoryAccessException e) {
            return false;
        }
    }

    private void autoRespond(long key, int code, boolean stopMarker) {
        if (!stopMarker) {
            autoResponses++;
            groups.put(key, code);
        }
    }

    private void raise() {
        if (pq.interruptEnabled()) {
            interrupts.raise(Reg.IPSR_PIP);
        }
    }

    /**
     * ATS.PRGR: the Page Request Group Response reaches the device; one for a group that is not
     * waiting is ignored (as the device would).
     *
     * @param pasid the PID operand with PV, else {@link Pasids#NO_PASID}
     */
    void respond(int deviceId, int pasid, int groupIndex, int code) {
        long key = key(deviceId, pasid, groupIndex);
        if (groups.get(key) != null && groups.get(key) == WAITING) {
            groups.put(key, code);
            return;
        }
        if (pasid != Pasids.NO_PASID) {
            return; // no such group waits: the device ignores the response
        }
        // Without a PASID: the device matches the group index alone.
        for (Iterator<Map.Entry<Long, Integer>> it = groups.entrySet().iterator(); it.hasNext();) {
            Map.Entry<Long, Integer> e = it.next();
            long k = e.getKey();
            if ((k >>> 30) == (deviceId & 0xffff_ffffL) && (k & 0x1ff) == groupIndex && e.getValue() == WAITING) {
                e.setValue(code);
                return;
            }
        }
    }

    /** @return the answer to a group, consumed; {@code null} while waiting or unknown */
    PageResponse status(int requesterId, int pasid, int groupIndex) {
        long key = key(requesterId, pasid, groupIndex);
        Integer code = groups.get(key);
        if (code == null || code == WAITING) {
            return null;
        }
        groups.remove(key);
        return response(code);
    }

    /** @return the neutral form of a PCIe response code (reserved codes are taken as Response Failure) */
    static PageResponse response(int code) {
        return code == Command.PRGR_SUCCESS ? PageResponse.SUCCESS
                : code == Command.PRGR_INVALID_REQUEST ? PageResponse.INVALID : PageResponse.FAILURE;
    }

    void reset() {
        groups.clear();
    }
}
