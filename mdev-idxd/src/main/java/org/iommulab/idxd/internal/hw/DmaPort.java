package org.iommulab.idxd.internal.hw;

import org.iommulab.api.idxd.Dsa;

import org.iommulab.api.memory.PhysicalMemory;
import org.iommulab.api.spi.IommuInstance;
import org.iommulab.api.translation.Access;
import org.iommulab.api.translation.FaultKind;
import org.iommulab.api.translation.Translation;

/**
 * An engine's path to memory: every access is translated by the IOMMU with the descriptor's
 * requester id, PASID and privilege, once per translated page, and the bytes move in bulk between
 * host physical pages. A fault stops the access; with block-on-fault the port first asks for the
 * page and retries. Not thread safe: one per engine. Allocates nothing per access.
 */
final class DmaPort {
    /** Attempts of one access: the first translation plus page requests answered Success. */
    private static final int MAX_ATTEMPTS = 4;

    private final IommuInstance iommu;
    private final PhysicalMemory memory;
    private final int requesterId;
    private final Translation t = new Translation();
    private int pasid;
    private boolean priv;
    private PageRequester pager;

    /** Bytes from the last translated address to the end of its page. */
    private long spanAfter;
    /** Bytes from the start of the last translated address's page up to and including it. */
    private long spanBefore;

    /** The fault of the last failed access: its address, direction and completion status. */
    long faultAddress;
    boolean faultWrite;
    int faultStatus;

    DmaPort(IommuInstance iommu, PhysicalMemory memory, int requesterId) {
        this.iommu = iommu;
        this.memory = memory;
        this.requesterId = requesterId;
    }

    /**
     * @param pasid the descriptor's PASID or {@link org.iommulab.api.pasid.Pasids#NO_PASID}
     * @param priv privileged requests
     * @param pager the page requester when the descriptor blocks on faults, else {@code null}
     */
    void begin(int pasid, boolean priv, PageRequester pager) {
        this.pasid = pasid;
        this.priv = priv;
        this.pager = pager;
    }

    int pasid() {
        return pasid;
    }

    /** @param pager the page requester for what follows, or {@code null} not to block on faults */
    void pager(PageRequester pager) {
        this.pager = pager;
    }

    PhysicalMemory memory() {
        return memory;
    }

    /**
     * @return the host physical address of {@code address}, or -1 after a fault (see the fault fields)
     */
    long translate(long address, boolean write) {
        int access = (write ? Access.WRITE : Access.READ) | (priv ? Access.PRIV : 0);
        for (int attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
            if (iommu.translate(requesterId, pasid, address, access, t)) {
                long pageSize = 1L << t.pageShift();
                long offset = address & (pageSize - 1);
                spanAfter = pageSize - offset;
                spanBefore = offset + 1;
                return t.outputAddress();
            }
            FaultKind kind = t.faultKind();
            boolean pageFault = kind == FaultKind.TRANSLATION || kind == FaultKind.PERMISSION
                    || kind == FaultKind.ACCESS_FLAG || kind == FaultKind.ADDRESS_SIZE;
            faultAddress = address;
            faultWrite = write;
            if (!pageFault) {
                // The translation itself failed (no context, PASID entry or stream): not a page fault.
                faultStatus = Dsa.COMP_TRANSLATION_FAIL;
                return -1;
            }
            if (pager == null) {
                faultStatus = Dsa.COMP_PAGE_FAULT_NOBOF;
                return -1;
            }
            if (!pager.requestPage(pasid, address, access)) {
                faultStatus = Dsa.COMP_PAGE_FAULT_IR;
                return -1;
            }
        }
        faultStatus = Dsa.COMP_PAGE_FAULT_IR;
        return -1;
    }

    /**
     * Copies forward ({@code memcpy} order).
     *
     * @return bytes copied; less than {@code length} after a fault
     */
    long copyForward(long src, long dst, long length) {
        long done = 0;
        while (done < length) {
            long s = translate(src + done, false);
            if (s < 0) {
                return done;
            }
            long n = Math.min(length - done, spanAfter);
            long d = translate(dst + done, true);
            if (d < 0) {
                return done;
            }
            n = Math.min(n, spanAfter);
            memory.copy(s, d, n);
            done += n;
        }
        return done;
    }

    /**
     * Copies from the highest addresses down, as an overlapping move with the destination above the
     * source needs.
     *
     * @return bytes copied from the end; less than {@code length} after a fault
     */
    long copyBackward(long src, long dst, long length) {
        long done = 0;
        while (done < length) {
            long last = length - done - 1;
            long s = translate(src + last, false);
            if (s < 0) {
                return done;
            }
            long n = Math.min(length - done, spanBefore);
            long d = translate(dst + last, true);
            if (d < 0) {
                return done;
            }
            n = Math.min(n, spanBefore);
            memory.copy(s - n + 1, d - n + 1, n);
            done += n;
        }
        return done;
    }

    /**
     * Reads up to {@code max} bytes (stopping at a page end) into {@code buf}.
     *
     * @return bytes read (at least 1), or -1 after a fault
     */
    int readSome(long address, byte[] buf, int max) {
        long pa = translate(address, false);
        if (pa < 0) {
            return -1;
        }
        int n = (int) Math.min(max, spanAfter);
        memory.read(pa, buf, 0, n);
        return n;
    }

    /**
     * Writes {@code length} bytes of {@code buf} from {@code offset}.
     *
     * @return bytes written; less than {@code length} after a fault
     */
    int write(long address, byte[] buf, int offset, int length) {
        int done = 0;
        while (done < length) {
            long pa = translate(address + done, true);
            if (pa < 0) {
                return done;
            }
            int n = (int) Math.min(length - done, spanAfter);
            memory.write(pa, buf, offset + done, n);
            done += n;
        }
        return done;
    }

    /**
     * @return bytes available at the last translated address up to its page end
     */
    long spanAfter() {
        return spanAfter;
    }
}
