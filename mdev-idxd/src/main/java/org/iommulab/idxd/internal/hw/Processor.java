package org.iommulab.idxd.internal.hw;

import org.iommulab.api.idxd.Dsa;

import org.iommulab.api.memory.MemoryAccessException;

/**
 * Runs descriptors for one engine: checks a descriptor as the spec orders its checks, executes it
 * (a batch member by member), writes its completion record through the IOMMU and raises its
 * completion interrupt. An error the device cannot put in a completion record goes to SWERR.
 * Not thread safe: one per engine.
 */
final class Processor {
    private final DsaDevice device;
    private final DmaPort port;
    private final Operations ops;
    private final Completion completion = new Completion();
    private final Completion memberCompletion = new Completion();
    private final byte[] record = new byte[Dsa.COMP_SIZE];
    private final byte[] member = new byte[Dsa.DESC_SIZE];
    /** The descriptor being run (a batch's, while its members run). */
    private Work current;

    Processor(DsaDevice device, DmaPort port) {
        this.device = device;
        this.port = port;
        this.ops = new Operations(port);
    }

    /** Runs one accepted descriptor to completion. */
    void run(Work work) {
        current = work;
        Descriptor d = Descriptor.decode(work.descriptor);
        WqConfig cfg = work.wq.config;
        // A privileged descriptor the queue does not allow fails PRIV_BAD; its record is written as a user request.
        port.begin(work.pasid, work.priv && cfg.priv(), blocks(d, cfg) ? device.pager(work.wq) : null);
        Completion c = completion.reset();
        try {
            if (work.priv && !cfg.priv()) {
                c.status = Dsa.COMP_PRIV_BAD; // a supervisor descriptor on a queue that does not allow them
            } else if (d.opcode == Dsa.OP_BATCH && check(d, cfg, false, c)) {
                batch(d, cfg, c);
            } else if (d.opcode == Dsa.OP_DRAIN && check(d, cfg, false, c)) {
                if (!device.awaitDrained(work)) {
                    c.status = Dsa.COMP_HW_ERR1; // the descriptors before it never finished
                }
            } else if (d.opcode != Dsa.OP_BATCH && d.opcode != Dsa.OP_DRAIN) {
                execute(d, cfg, false, c);
            }
        } catch (MemoryAccessException e) {
            // Host memory behind a valid translation failed: a hardware error, not a software one.
            c.status = Dsa.COMP_HW_ERR1;
        }
        complete(d, c, false, 0);
    }

    /** @return {@code true} if a fault of this descriptor turns into a page request */
    private static boolean blocks(Descriptor d, WqConfig cfg) {
        return cfg.blockOnFault() && !cfg.prsDisabled() && (d.flags & Dsa.FLAG_BOF) != 0;
    }

    /** Checks and executes a non-batch descriptor (also a batch member). */
    private void execute(Descriptor d, WqConfig cfg, boolean inBatch, Completion c) {
        if (!check(d, cfg, inBatch, c)) {
            return;
        }
        switch (d.opcode) {
            case Dsa.OP_NOOP -> { }
            case Dsa.OP_MEMMOVE -> ops.memmove(d, c);
            case Dsa.OP_MEMFILL -> ops.fill(d, c);
            case Dsa.OP_COMPARE -> ops.compare(d, c);
            case Dsa.OP_COMPVAL -> ops.compareValue(d, c);
            case Dsa.OP_CR_DELTA -> ops.createDelta(d, c);
            case Dsa.OP_AP_DELTA -> ops.applyDelta(d, c);
            case Dsa.OP_DUALCAST -> ops.dualcast(d, c);
            case Dsa.OP_CRCGEN -> ops.crc(d, c);
            case Dsa.OP_COPY_CRC -> ops.copyCrc(d, c);
            default -> c.status = Dsa.COMP_BAD_OPCODE;
        }
    }

    /**
     * The descriptor checks (DSA spec §8.1, §8.3): opcode, flags, reserved fields, privilege, then
     * each operation's operands.
     *
     * @return {@code true} if the descriptor may execute; else {@code c} holds the error
     */
    private boolean check(Descriptor d, WqConfig cfg, boolean inBatch, Completion c) {
        boolean known = switch (d.opcode) {
            case Dsa.OP_NOOP, Dsa.OP_MEMMOVE, Dsa.OP_MEMFILL, Dsa.OP_COMPARE, Dsa.OP_COMPVAL, Dsa.OP_CR_DELTA,
                    Dsa.OP_AP_DELTA, Dsa.OP_DUALCAST, Dsa.OP_CRCGEN, Dsa.OP_COPY_CRC -> true;
            case Dsa.OP_BATCH, Dsa.OP_DRAIN -> !inBatch; // neither may be a batch member
            default -> false;
        };
        if (!known) {
            c.status = Dsa.COMP_BAD_OPCODE;
            return false;
        }
        int invalid = d.flags & ~Dsa.FLAGS_SUPPORTED;
        if (!inBatch) {
            invalid |= d.flags & Dsa.FLAG_FENCE; // fences order batch members only
        }
        if (!cfg.blockOnFault()) {
            invalid |= d.flags & Dsa.FLAG_BOF; // BOF needs WQCFG.bof
        }
        if ((d.flags & Dsa.FLAG_RCR) != 0 && (d.flags & Dsa.FLAG_CRAV) == 0) {
            invalid |= Dsa.FLAG_RCR;
        }
        if (invalid != 0) {
            c.status = Dsa.COMP_INVALID_FLAGS;
            c.opSpecific = invalid;
            return false;
        }
        if (d.reserved0 != 0 || d.reserved1 != 0) {
            c.status = Dsa.COMP_NOZERO_RESERVE;
            return false;
        }
        long size = d.sizeBytes();
        long maxXfer = 1L << cfg.maxTransferShift();
        switch (d.opcode) {
            case Dsa.OP_NOOP:
            case Dsa.OP_DRAIN:
                return zeroFrom(d, 16, c);
            case Dsa.OP_BATCH:
                if ((d.addr1 & 63) != 0) {
                    return fail(c, Dsa.COMP_DESCLIST_ALIGN);
                }
                if (size < 2 || size > (1L << cfg.maxBatchShift())) {
                    return fail(c, Dsa.COMP_DESC_CNT_ERANGE);
                }
                return zeroFrom(d, 40, c);
            case Dsa.OP_MEMMOVE:
            case Dsa.OP_MEMFILL:
                return xfer(size, maxXfer, c) && zeroFrom(d, 40, c);
            case Dsa.OP_COMPARE:
            case Dsa.OP_COMPVAL:
                return xfer(size, maxXfer, c);
            case Dsa.OP_DUALCAST:
                if (!xfer(size, maxXfer, c)) {
                    return false;
                }
                if ((d.addr2 & 0xfff) != (d.op64(40) & 0xfff)) {
                    return fail(c, Dsa.COMP_DCAST_ERR); // both destinations share bits 11:0
                }
                if (Operations.overlaps(d.addr1, d.addr2, size) || Operations.overlaps(d.addr1, d.op64(40), size)
                        || Operations.overlaps(d.addr2, d.op64(40), size)) {
                    return fail(c, Dsa.COMP_OVERLAP_BUFFERS);
                }
                return true;
            case Dsa.OP_COPY_CRC:
                if (Operations.overlaps(d.addr1, d.addr2, size)) {
                    return fail(c, Dsa.COMP_OVERLAP_BUFFERS);
                }
                return xfer(size, maxXfer, c);
            case Dsa.OP_CRCGEN:
                return xfer(size, maxXfer, c);
            case Dsa.OP_CR_DELTA:
                if (size == 0 || size > Math.min(maxXfer, Operations.MAX_DELTA_XFER) || (size & 7) != 0) {
                    return fail(c, Dsa.COMP_XFER_ERANGE);
                }
                if (((d.addr1 | d.addr2 | d.op64(40)) & 7) != 0) {
                    return fail(c, Dsa.COMP_ADDR_ALIGN);
                }
                long maxDelta = d.op32(48) & 0xffff_ffffL;
                if (maxDelta == 0 || maxDelta % Operations.DELTA_ENTRY != 0) {
                    return fail(c, Dsa.COMP_DR_ERANGE);
                }
                if (!d.zero(52, 56) || !d.zero(57, Dsa.DESC_SIZE)) {
                    return fail(c, Dsa.COMP_NOZERO_RESERVE); // delt_rsvd and the bytes after expected_res_mask
                }
                return true;
            case Dsa.OP_AP_DELTA:
                if (size == 0 || size > Math.min(maxXfer, Operations.MAX_DELTA_XFER) || (size & 7) != 0) {
                    return fail(c, Dsa.COMP_XFER_ERANGE);
                }
                if ((d.addr2 & 7) != 0) {
                    return fail(c, Dsa.COMP_ADDR_ALIGN);
                }
                long rec = d.op32(40) & 0xffff_ffffL;
                if (rec == 0 || rec % Operations.DELTA_ENTRY != 0) {
                    return fail(c, Dsa.COMP_DR_ERANGE);
                }
                return true;
            default:
                return true;
        }
    }

    private static boolean xfer(long size, long max, Completion c) {
        return size != 0 && size <= max || fail(c, Dsa.COMP_XFER_ERANGE);
    }

    /**
     * Fields an operation does not use are reserved: bytes {@code [from, 36)} (when below 36) and
     * the operation-specific bytes 40-63 must be zero. The interrupt handle (36) is always usable.
     */
    private static boolean zeroFrom(Descriptor d, int from, Completion c) {
        if ((from < 36 && !d.zero(from, 36)) || !d.zero(40, Dsa.DESC_SIZE)) {
            return fail(c, Dsa.COMP_NOZERO_RESERVE);
        }
        return true;
    }

    private static boolean fail(Completion c, int status) {
        c.status = status;
        return false;
    }

    /**
     * BATCH: reads the descriptor list through the IOMMU and runs each member with the batch's PASID.
     * A member with FENCE waits for those before it and, if one did not succeed, the rest are
     * abandoned. The batch's bytes-completed field counts the members processed.
     */
    private void batch(Descriptor d, WqConfig cfg, Completion c) {
        long count = d.sizeBytes();
        boolean allOk = true;
        long processed = 0;
        for (long i = 0; i < count; i++) {
            int got = 0;
            while (got < Dsa.DESC_SIZE) {
                long pa = port.translate(d.addr1 + i * Dsa.DESC_SIZE + got, false);
                if (pa < 0) {
                    c.status = Dsa.COMP_BATCH_PAGE_FAULT;
                    c.faultAddr = port.faultAddress;
                    c.bytesCompleted = processed;
                    return;
                }
                int n = (int) Math.min(Dsa.DESC_SIZE - got, port.spanAfter());
                port.memory().read(pa, member, got, n);
                got += n;
            }
            Descriptor m = Descriptor.decode(member);
            if ((m.flags & Dsa.FLAG_FENCE) != 0 && !allOk) {
                break; // fenced: earlier members failed, the rest are abandoned
            }
            Completion mc = memberCompletion.reset();
            // Each member blocks on faults by its own BOF flag.
            port.pager(blocks(m, cfg) ? device.pager(current.wq) : null);
            execute(m, cfg, true, mc);
            complete(m, mc, true, i);
            processed++;
            allOk &= (mc.status & 0x7f) == Dsa.COMP_SUCCESS;
        }
        c.bytesCompleted = processed;
        if (!allOk) {
            c.status = Dsa.COMP_BATCH_FAIL;
        }
    }

    /**
     * Writes the completion record (always with RCR, on failure whenever the address is valid),
     * raises the completion interrupt (RCI), and reports what no record can hold in SWERR.
     */
    private void complete(Descriptor d, Completion c, boolean inBatch, long batchIndex) {
        Work work = current;
        device.counted(c.status);
        boolean crav = (d.flags & Dsa.FLAG_CRAV) != 0;
        boolean wanted = (d.flags & Dsa.FLAG_RCR) != 0 || !c.success();
        if (crav && wanted) {
            if ((d.completionAddr & (Dsa.COMP_SIZE - 1)) != 0) {
                device.softwareError(Dsa.COMP_CRA_ALIGN, d, work, inBatch, batchIndex, 0, false);
            } else {
                c.encode(record);
                // The status byte lands last: software polls it.
                int written = port.write(d.completionAddr + 1, record, 1, Dsa.COMP_SIZE - 1);
                if (written == Dsa.COMP_SIZE - 1) {
                    written += port.write(d.completionAddr, record, 0, 1);
                }
                if (written < Dsa.COMP_SIZE) {
                    device.softwareError(Dsa.COMP_CRA_XLAT, d, work, inBatch, batchIndex, port.faultAddress, true);
                }
            }
        } else if (!c.success()) {
            device.softwareError(c.status & 0x7f, d, work, inBatch, batchIndex, c.faultAddr,
                    (c.status & Dsa.COMP_STATUS_WRITE) != 0);
        }
        if ((d.flags & Dsa.FLAG_RCI) != 0) {
            device.interrupt(d.intHandle);
        }
    }
}
