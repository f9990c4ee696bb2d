package org.iommulab.riscv.internal.hw;

import org.iommulab.api.memory.MemoryAccessException;
import org.iommulab.api.memory.PhysicalMemory;
import org.iommulab.riscv.internal.spec.FaultRecord;
import org.iommulab.riscv.internal.spec.Reg;

/**
 * Writes fault records to the fault queue (spec §3.2 "Fault/Event-Queue"): 32 bytes at fqt,
 * doubleword 0 CAUSE 11:0, PID 31:12, PV 32, PRIV 33, TTYP 39:34, DID 63:40; doubleword 1 0
 * (custom and reserved); doubleword 2 iotval; doubleword 3 iotval2. While the queue is off or
 * fqof / fqmf is set, records are discarded; a full queue (fqt == fqh - 1) sets fqof and discards
 * the record; a record that cannot be stored (memory beyond capabilities.PAS or missing) sets
 * fqmf. fip is raised (fqcsr.fie) for a new record and for each error bit set ("Interrupt pending status register").
 *
 * <p>Not thread safe: the owner calls it under its register lock.
 */
final class FaultWriter {
    private final PhysicalMemory memory;
    private final QueueRegisters fq;
    private final Interrupts interrupts;
    long recorded;
    long discarded;

    FaultWriter(PhysicalMemory memory, QueueRegisters fq, Interrupts interrupts) {
        this.memory = memory;
        this.fq = fq;
        this.interrupts = interrupts;
    }

    /**
     * @param processId the process_id, or -1 when the request had none (PV 0, PID and PRIV 0)
     * @param privileged the request asked for supervisor privilege (reported only with PV)
     */
    void record(int cause, int deviceId, int processId, boolean privileged, int ttyp, long iotval, long iotval2) {
        if (!fq.on() || fq.inError()) {
            discarded++;
            return;
        }
        if (fq.full(fq.unitIndex, fq.softwareIndex)) {
            fq.setError(Reg.CSR_OF);
            discarded++;
            raise();
            return;
        }
        if (!store(fq.entryAddress(fq.unitIndex), FaultRecord.header(cause, deviceId, processId, privileged, ttyp),
                iotval, iotval2)) {
            fq.setError(Reg.CSR_MF);
            discarded++;
            raise();
            return;
        }
        fq.unitIndex = (fq.unitIndex + 1) & fq.indexMask();
        recorded++;
        raise();
    }

    /** @return {@code false} if the record's memory is beyond capabilities.PAS or cannot be written */
    private boolean store(long a, long header, long iotval, long iotval2) {
        if (a < 0) {
            return false;
        }
        try {
            memory.write64(a, header);
            memory.write64(a + 8, 0);
            memory.write64(a + 16, iotval);
            memory.write64(a + 24, iotval2);
            return true;
        } catch (MemoryAccessException e) {
            return false;
        }
    }

    private void raise() {
        if (fq.interruptEnabled()) {
            interrupts.raise(Reg.IPSR_FIP);
        }
    }
}
