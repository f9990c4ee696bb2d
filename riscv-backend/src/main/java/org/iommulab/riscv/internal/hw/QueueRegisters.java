package org.iommulab.riscv.internal.hw;

import org.iommulab.riscv.internal.spec.Reg;

/**
 * The registers of one in-memory queue (spec §3 "In-memory queue interface", and the cqb ... pqcsr register sections): the
 * base ({@code cqb}/{@code fqb}/{@code pqb}: LOG2SZ-1 4:0, PPN 53:10, the rest WPRI and read 0),
 * the head and tail indexes and the control and status register ({@code cqcsr}/{@code fqcsr}/
 * {@code pqcsr}: enable 0, interrupt enable 1, RW1C error bits, on 16, busy 17).
 *
 * <p>Software owns one index (cqt, fqh, pqh: only bits LOG2SZ-1:0 are writable, WARL) and the unit
 * the other (cqh, fqt, pqt: read-only). Enabling (en 0 to 1) zeroes the unit's index and the error
 * bits and turns the queue on at once: busy always reads 0, since the model completes the
 * handshake synchronously. Writing the base while the queue is on is ignored ("Command-queue base": UNSPECIFIED).
 *
 * <p>Not thread safe: the owner guards it with its register lock.
 */
final class QueueRegisters {
    /** Bits of a base register that hold state: PPN 53:10 and LOG2SZ-1 4:0. */
    static final long BASE_MASK = Reg.PPN_MASK | Reg.QUEUE_LOG2SZ_MASK;

    final String name;
    final int entrySize;
    /** The csr's RW1C error bits. */
    private final int errorBits;
    private final int pas;

    long base;
    /** The index software writes: cqt, fqh or pqh. */
    int softwareIndex;
    /** The index the unit writes: cqh, fqt or pqt. */
    int unitIndex;
    int csr;

    /**
     * @param name "command", "fault" or "page-request", for messages
     * @param entrySize bytes per entry (16, 32, 16)
     * @param errorBits the csr's RW1C bits
     * @param pas capabilities.PAS: queue memory beyond it faults
     */
    QueueRegisters(String name, int entrySize, int errorBits, int pas) {
        this.name = name;
        this.entrySize = entrySize;
        this.errorBits = errorBits;
        this.pas = pas;
    }

    /** @return the number of entries, 2^(LOG2SZ-1 + 1) */
    long entries() {
        return 1L << ((base & Reg.QUEUE_LOG2SZ_MASK) + 1);
    }

    /** @return the mask of valid index bits */
    int indexMask() {
        return (int) (entries() - 1);
    }

    boolean enabled() {
        return (csr & Reg.CSR_EN) != 0;
    }

    boolean on() {
        return (csr & Reg.CSR_ON) != 0;
    }

    boolean interruptEnabled() {
        return (csr & Reg.CSR_IE) != 0;
    }

    /** @return whether an error bit is set */
    boolean inError() {
        return (csr & errorBits) != 0;
    }

    /** @return the csr's error bits that are set */
    int errors() {
        return csr & errorBits;
    }

    /**
     * @param index an entry index
     * @return the entry's physical address, or -1 if it lies beyond capabilities.PAS (an access
     *     fault, as the reference model's {@code a & ~pa_mask} check)
     */
    long entryAddress(long index) {
        long a = Reg.ppnAddress(base) + index * entrySize;
        return (a + entrySize - 1) >>> pas != 0 ? -1 : a;
    }

    /** @return whether the queue is full: the producer's index is the consumer's minus one (§3) */
    boolean full(int producer, int consumer) {
        return ((producer + 1) & indexMask()) == consumer;
    }

    /** Writes the base register (ignored while the queue is on); the software index loses the bits above LOG2SZ. */
    void writeBase(long value) {
        if (on()) {
            return;
        }
        base = value & BASE_MASK;
        softwareIndex &= indexMask();
    }

    /** Writes the software-owned index: only bits LOG2SZ-1:0 are writable. */
    void writeSoftwareIndex(long value) {
        softwareIndex = (int) value & indexMask();
    }

    /**
     * Writes the csr: en and ie are RW, the error bits RW1C, on and busy RO. en 0 to 1 clears the
     * unit's index and the error bits and turns the queue on; en 1 to 0 turns it off.
     *
     * @return {@code true} if the queue was just enabled
     */
    boolean writeCsr(long value) {
        int v = (int) value;
        boolean wasEnabled = enabled();
        csr &= ~(v & errorBits); // RW1C
        csr = (csr & ~(Reg.CSR_EN | Reg.CSR_IE)) | (v & (Reg.CSR_EN | Reg.CSR_IE));
        if (!wasEnabled && enabled()) {
            unitIndex = 0;
            csr &= ~errorBits;
            csr |= Reg.CSR_ON;
            return true;
        }
        if (wasEnabled && !enabled()) {
            csr &= ~Reg.CSR_ON;
        }
        return false;
    }

    /** Sets error bits (the unit reports a queue error). */
    void setError(int bits) {
        csr |= bits & errorBits;
    }

    /** Back to reset: everything 0. */
    void reset() {
        base = 0;
        softwareIndex = 0;
        unitIndex = 0;
        csr = 0;
    }
}
