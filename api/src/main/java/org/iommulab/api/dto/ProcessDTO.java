package org.iommulab.api.dto;

/** A snapshot of a host process. Sizes in bytes, counts in 4 KiB pages. */
public class ProcessDTO {
    /** The process name. */
    public String name;
    /** Bytes of virtual address space mapped. */
    public long mappedBytes;
    /** Pages backed by a host frame now (pinned pages unmapped from the process included). */
    public long residentPages;
    /** Pages pinned now. */
    public long pinnedPages;
    /** Pages charged as locked memory. */
    public long lockedPages;
    /** The locked-memory limit in bytes; {@link Long#MAX_VALUE} is unlimited. */
    public long lockedLimit;
}
