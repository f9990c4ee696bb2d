package org.iommulab.vtd.internal.hw;

import org.iommulab.api.errno.IommuException;
import org.iommulab.api.pasid.Pasids;
import org.iommulab.api.translation.Access;
import org.iommulab.pgtable.unit.StateWords;

/**
 * The primary fault log (VT-d spec §7.2.1): {@link VtdReg#NFR} fault recording registers used as a
 * ring, FSTS.PPF while any record is pending, FSTS.FRI the index of the first pending record, and
 * FSTS.PFO when a fault arrives while the next record is still pending (the fault is dropped).
 *
 * <p>Fault recording register (§11.4.9.3), 128 bits: FI 63:12 (faulting page address); SID 79:64,
 * PRIV 93, EXE 94, PP 95 (PASID present), FR 103:96 (reason), PV 123:104 (PASID), T1 126 (1 = read),
 * F 127 (fault, RW1C).
 *
 * <p>Thread safe: every method is synchronized.
 */
final class FaultRecorder {
    private final long[] low = new long[VtdReg.NFR];
    private final long[] high = new long[VtdReg.NFR];
    private int next;
    private boolean overflow;
    private int fectl = VtdReg.CTL_IM;
    private long recorded;
    private long dropped;
    private long interrupts;

    /** {@link #record} dropped the fault (overflow). */
    static final int DROPPED = 0;
    /** {@link #record} recorded the fault without a new fault event (one was pending already or it is masked). */
    static final int RECORDED = 1;
    /** {@link #record} recorded the fault and delivered a fault event (interrupt) now. */
    static final int INTERRUPT = 2;

    /**
     * Records a fault (§7.2.1): while PFO is set, or when the next record is still pending, the
     * fault is dropped (and PFO set). A fault event is raised only when no record was pending.
     *
     * @return {@link #DROPPED}, {@link #RECORDED} or {@link #INTERRUPT}
     */
    synchronized int record(int sid, int pasid, long address, int access, int reason) {
        if (overflow || (high[next] & VtdReg.FRCD_F) != 0) {
            overflow = true;
            dropped++;
            return DROPPED;
        }
        boolean wasPending = pending();
        low[next] = address & ~0xfffL;
        long h = (sid & 0xffffL) | ((long) (reason & 0xff) << VtdReg.FRCD_FR_SHIFT) | VtdReg.FRCD_F;
        if (pasid != Pasids.NO_PASID) {
            h |= VtdReg.FRCD_PP | ((long) (pasid & 0xfffff) << VtdReg.FRCD_PV_SHIFT);
        }
        if ((access & Access.WRITE) == 0) {
            h |= VtdReg.FRCD_T1;
        }
        if ((access & Access.PRIV) != 0) {
            h |= VtdReg.FRCD_PRIV;
        }
        if ((access & Access.EXEC) != 0) {
            h |= VtdReg.FRCD_EXE;
        }
        high[next] = h;
        next = (next + 1) % VtdReg.NFR;
        recorded++;
        if (wasPending) {
            return RECORDED; // PPF was set already: not a new interrupt condition (§7.2.2)
        }
        return raiseEvent() ? INTERRUPT : RECORDED;
    }

    /**
     * Raises a fault event (a new fault or an invalidation queue error): pending while masked,
     * delivered otherwise.
     *
     * @return {@code true} if delivered now
     */
    synchronized boolean raiseEvent() {
        if ((fectl & VtdReg.CTL_IM) != 0) {
            fectl |= VtdReg.CTL_IP;
            return false;
        }
        interrupts++;
        return true;
    }

    /** Software serviced every status: a pending (masked) event is withdrawn (§11.4.9.2). */
    synchronized void clearPendingIfIdle(int otherStatus) {
        if (!pending() && !overflow && otherStatus == 0) {
            fectl &= ~VtdReg.CTL_IP;
        }
    }

    private boolean pending() {
        for (long h : high) {
            if ((h & VtdReg.FRCD_F) != 0) {
                return true;
            }
        }
        return false;
    }

    /** @return FSTS bits 15:0 derived from the records: FRI, PPF, PFO */
    synchronized int status() {
        int fsts = overflow ? VtdReg.FSTS_PFO : 0;
        for (int i = 0; i < VtdReg.NFR; i++) {
            int idx = (next + i) % VtdReg.NFR;
            if ((high[idx] & VtdReg.FRCD_F) != 0) {
                fsts |= VtdReg.FSTS_PPF | (idx << VtdReg.FSTS_FRI_SHIFT);
                break;
            }
        }
        return fsts;
    }

    /** FSTS.PFO is write-1-to-clear. */
    synchronized void clearOverflow() {
        overflow = false;
    }

    synchronized long read(int offsetInRecords) {
        int idx = offsetInRecords / 16;
        return (offsetInRecords & 8) == 0 ? low[idx] : high[idx];
    }

    /** Writing 1 to F clears the record (RW1C); other bits are read-only. */
    synchronized void writeHigh(int idx, long value) {
        if ((value & VtdReg.FRCD_F) != 0) {
            high[idx] &= ~VtdReg.FRCD_F;
        }
    }

    synchronized int fectl() {
        return fectl;
    }

    /** FECTL: IM is read-write; clearing IM delivers a pending event. */
    synchronized void writeFectl(int value) {
        boolean unmask = (value & VtdReg.CTL_IM) == 0;
        fectl = (fectl & VtdReg.CTL_IP) | (value & VtdReg.CTL_IM);
        if (unmask && (fectl & VtdReg.CTL_IP) != 0) {
            fectl &= ~VtdReg.CTL_IP;
            interrupts++;
        }
    }

    synchronized long recorded() {
        return recorded;
    }

    synchronized long dropped() {
        return dropped;
    }

    synchronized long interrupts() {
        return interrupts;
    }

    /** @return the records and counters, for a live update */
    synchronized long[] save() {
        StateWords w = StateWords.writer().put(next).put(overflow).put(fectl).put(recorded).put(dropped).put(interrupts);
        for (int i = 0; i < VtdReg.NFR; i++) {
            w.put(low[i]).put(high[i]);
        }
        return w.toArray();
    }

    /** Takes over what {@link #save} recorded. */
    synchronized void restore(StateWords r) throws IommuException {
        next = r.nextInt();
        overflow = r.nextBoolean();
        fectl = r.nextInt();
        recorded = r.next();
        dropped = r.next();
        interrupts = r.next();
        for (int i = 0; i < VtdReg.NFR; i++) {
            low[i] = r.next();
            high[i] = r.next();
        }
    }
}
