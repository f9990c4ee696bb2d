package org.iommulab.riscv.internal.driver;

import java.util.BitSet;

import org.iommulab.api.errno.Errno;
import org.iommulab.api.errno.IommuException;

/**
 * Hands out small integer ids from 1 to a maximum: GSCIDs (16 bits, iohgatp.GSCID) and PSCIDs
 * (20 bits, PC.ta.PSCID). 0 is never handed out. Not thread safe: the driver's monitor guards it.
 */
final class IdAllocator {
    private final String what;
    private final int max;
    private final BitSet used = new BitSet();

    /**
     * @param what the id's name, for messages
     * @param max the largest id
     */
    IdAllocator(String what, int max) {
        this.what = what;
        this.max = max;
    }

    /** @return the lowest free id, now taken; {@code ENOSPC} when every id is in use */
    int allocate() throws IommuException {
        int id = used.nextClearBit(1);
        if (id > max) {
            throw new IommuException(Errno.ENOSPC, "all " + max + " " + what + "s are in use");
        }
        used.set(id);
        return id;
    }

    /** @param id an id handed out before; it may be handed out again */
    void free(int id) {
        used.clear(id);
    }

    /** Forgets every id. */
    void clear() {
        used.clear();
    }
}
