package org.iommulab.riscv.internal.hw;

import java.util.List;

import org.iommulab.api.dto.WalkStepDTO;
import org.iommulab.api.translation.FaultKind;
import org.iommulab.api.translation.Stage;
import org.iommulab.api.translation.Translation;
import org.iommulab.pgtable.WalkResult;
import org.iommulab.pgtable.tlb.TlbHit;
import org.iommulab.riscv.internal.spec.FaultRecord;

/**
 * Per-thread working state of one translation, so that translating allocates nothing: the DC and
 * PC words, the walk result, the IOTLB hit, and on a fault the fields of the fault record to
 * write. Not thread safe (one per thread).
 */
final class Scratch {
    final long[] dc = new long[4];
    final long[] pc = new long[2];
    final WalkResult walk = new WalkResult();
    final TlbHit hit = new TlbHit();

    /** The fault's CAUSE, 0 when the translation succeeded. */
    int cause;
    /** iotval2 of the fault record: the GPA of a guest-page fault (bits 63:2) and the implicit bits. */
    long iotval2;
    /** DC.tc.DTF of the located DC; 0 when no valid DC was located (§3.2: "the DTF value assumed ... is 0"). */
    boolean dtf;
    /** Whether the page-table walk of the last translation ran (its steps are in {@link #walk}). */
    boolean walked;
    /** Non-null while explaining: caches are bypassed and the structures read are recorded. */
    List<WalkStepDTO> explain;

    void reset() {
        cause = 0;
        iotval2 = 0;
        dtf = false;
        walked = false;
    }

    /**
     * Records a fault in {@code out} and this scratch.
     *
     * @return {@code false}, for {@code return fail(...)}
     */
    boolean fail(Translation out, FaultKind kind, Stage stage, int cause, int level, long address) {
        this.cause = cause;
        out.fault(kind, stage, cause, FaultRecord.causeName(cause), level, address);
        return false;
    }

    /** Adds a configuration step while explaining. */
    void note(String level, long address, long entry, String meaning) {
        if (explain != null) {
            WalkStepDTO d = new WalkStepDTO();
            d.stage = "CONFIG";
            d.level = level;
            d.address = address;
            d.entry = entry;
            d.meaning = meaning;
            explain.add(d);
        }
    }
}
