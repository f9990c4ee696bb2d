package org.iommulab.riscv.internal.hw;

import org.iommulab.api.translation.Access;
import org.iommulab.riscv.internal.spec.FaultRecord;

/**
 * Cause and transaction-type codes chosen by the original access type (spec §3.2, tables "Fault
 * record CAUSE field encodings" and "Fault record TTYP field encodings"): an instruction fetch
 * first, then a write (an AMO is a write), else a read. Stateless.
 */
final class Causes {
    private Causes() {
    }

    /** @return 12, 15 or 13: instruction, write/AMO or read page fault */
    static int pageFault(int access) {
        return (access & Access.EXEC) != 0 ? FaultRecord.INSTRUCTION_PAGE_FAULT
                : (access & Access.WRITE) != 0 ? FaultRecord.WRITE_PAGE_FAULT : FaultRecord.READ_PAGE_FAULT;
    }

    /** @return 20, 23 or 21: instruction, write/AMO or read guest-page fault */
    static int guestPageFault(int access) {
        return (access & Access.EXEC) != 0 ? FaultRecord.INSTRUCTION_GUEST_PAGE_FAULT
                : (access & Access.WRITE) != 0 ? FaultRecord.WRITE_GUEST_PAGE_FAULT : FaultRecord.READ_GUEST_PAGE_FAULT;
    }

    /** @return 1, 7 or 5: instruction, write/AMO or read access fault */
    static int accessFault(int access) {
        return (access & Access.EXEC) != 0 ? FaultRecord.INSTRUCTION_ACCESS_FAULT
                : (access & Access.WRITE) != 0 ? FaultRecord.WRITE_ACCESS_FAULT : FaultRecord.READ_ACCESS_FAULT;
    }

    /** @return TTYP 1, 3 or 2: untranslated read-for-execute, write/AMO or read */
    static int ttyp(int access) {
        return (access & Access.EXEC) != 0 ? FaultRecord.TTYP_UNTRANSLATED_EXEC
                : (access & Access.WRITE) != 0 ? FaultRecord.TTYP_UNTRANSLATED_WRITE : FaultRecord.TTYP_UNTRANSLATED_READ;
    }
}
