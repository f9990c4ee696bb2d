package org.iommulab.vfio.internal;

import java.util.ArrayList;
import java.util.Collection;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

import org.iommulab.api.errno.Errno;
import org.iommulab.api.errno.IommuException;
import org.iommulab.api.process.HostProcess;
import org.iommulab.api.spi.IommuDomain;
import org.iommulab.api.vfio.VfioContainer;

/**
 * A container's DMA mappings ({@code iommu->dma_list}): pinning the owner's pages, charging them
 * to its locked-memory limit, and mirroring each mapping into domains. Every method either completes
 * or undoes what it did. Not thread safe: the container's lock guards it.
 */
final class DmaMappings {
    private static final long PAGE = HostProcess.PAGE_SIZE;
    /** Slots of a new mapping's frame array before it first grows. */
    private static final int FIRST_SLOTS = 512;

    private final HostProcess owner;
    private final TreeMap<Long, DmaEntry> entries = new TreeMap<>(Long::compareUnsigned);

    DmaMappings(HostProcess owner) {
        this.owner = owner;
    }

    int count() {
        return entries.size();
    }

    Collection<DmaEntry> all() {
        return entries.values();
    }

    /** @return a mapping that overlaps {@code [first, last]}, or {@code null} */
    DmaEntry overlapping(long first, long last) {
        DmaEntry e = containing(first);
        if (e != null) {
            return e;
        }
        Map.Entry<Long, DmaEntry> next = entries.higherEntry(first);
        return next != null && Long.compareUnsigned(next.getKey(), last) <= 0 ? next.getValue() : null;
    }

    /** @return the mapping that holds {@code address}, or {@code null} */
    DmaEntry containing(long address) {
        Map.Entry<Long, DmaEntry> e = entries.floorEntry(address);
        return e != null && Long.compareUnsigned(e.getValue().last(), address) >= 0 ? e.getValue() : null;
    }

    /** @return the mappings lying wholly inside {@code [first, last]}, ascending */
    List<DmaEntry> within(long first, long last) {
        List<DmaEntry> inside = new ArrayList<>();
        for (DmaEntry e : entries.tailMap(first, true).values()) {
            if (Long.compareUnsigned(e.iova, last) > 0) {
                break;
            }
            if (Long.compareUnsigned(e.last(), last) <= 0) {
                inside.add(e);
            }
        }
        return inside;
    }

    /**
     * Pins and charges the pages of a new mapping, maps it into every domain and records it.
     *
     * @throws IommuException ENOMEM (locked-memory limit, frames), EFAULT (unmapped vaddr), or a
     *     domain's map error; nothing stays pinned, charged or mapped then
     */
    DmaEntry map(long vaddr, long iova, long size, int flags, Collection<IommuDomain> domains) throws IommuException {
        long pages = size / PAGE;
        if (pages > Integer.MAX_VALUE) {
            throw new IommuException(Errno.ENOMEM, "a mapping of " + size + " bytes is too large to pin");
        }
        // The frame slots grow with the pins, as Linux pins batch by batch: a size far beyond the
        // owner's memory fails at its first unmapped page (EFAULT) or when frames run out (ENOMEM),
        // never by reserving room for pages it cannot reach (an OutOfMemoryError is no errno).
        // The first slots are allocated before anything is charged.
        long[] frames = new long[(int) Math.min(pages, FIRST_SLOTS)];
        owner.accountLocked(pages);
        int pinned = 0;
        try {
            for (; pinned < pages; pinned++) {
                if (pinned == frames.length) {
                    frames = grow(frames, pages);
                }
                frames[pinned] = owner.pin(vaddr + pinned * PAGE);
            }
            DmaEntry entry = new DmaEntry(iova, size, vaddr, flags, frames);
            List<IommuDomain> done = new ArrayList<>();
            try {
                for (IommuDomain domain : domains) {
                    mapInto(domain, entry);
                    done.add(domain);
                }
            } catch (IommuException | RuntimeException | Error e) {
                for (IommuDomain domain : done) {
                    unmapQuietly(domain, entry);
                }
                throw e;
            }
            entries.put(iova, entry);
            return entry;
        } catch (IommuException | RuntimeException | Error e) {
            unpin(frames, pinned);
            owner.accountLocked(-pages);
            throw e;
        }
    }

    /** @return {@code frames} with room for twice as many pages, at most {@code pages} */
    private static long[] grow(long[] frames, long pages) throws IommuException {
        try {
            return java.util.Arrays.copyOf(frames, (int) Math.min(pages, 2L * frames.length));
        } catch (OutOfMemoryError e) {
            throw new IommuException(Errno.ENOMEM, "no room to track " + pages + " pinned pages");
        }
    }

    /**
     * Maps an entry into one domain as physically contiguous runs, so that aligned runs get large
     * pages (Linux maps each contiguous run of pinned pages with one {@code iommu_map}).
     */
    static void mapInto(IommuDomain domain, DmaEntry entry) throws IommuException {
        int prot = (entry.flags & VfioContainer.DMA_MAP_FLAG_READ) != 0 ? IommuDomain.PROT_READ : 0;
        if ((entry.flags & VfioContainer.DMA_MAP_FLAG_WRITE) != 0) {
            prot |= IommuDomain.PROT_WRITE;
        }
        long[] f = entry.frames;
        int runStart = 0;
        try {
            for (int i = 1; i <= f.length; i++) {
                if (i == f.length || f[i] != f[i - 1] + PAGE) {
                    domain.map(entry.iova + runStart * PAGE, f[runStart], (i - runStart) * PAGE, prot);
                    runStart = i;
                }
            }
        } catch (IommuException e) {
            if (runStart > 0) {
                unmapQuietly(domain, entry.iova, runStart * PAGE);
            }
            throw e;
        }
    }

    /** Unmaps a range being rolled back; the range was mapped by us a moment ago, so this cannot split a page. */
    private static void unmapQuietly(IommuDomain domain, long iova, long size) {
        try {
            domain.unmap(iova, size);
        } catch (IommuException ignored) {
            // The domain's instance is gone (ENODEV): nothing translates through it any more.
        }
    }

    static void unmapQuietly(IommuDomain domain, DmaEntry entry) {
        unmapQuietly(domain, entry.iova, entry.size);
    }

    /**
     * Unmaps an entry from every domain (each invalidates its IOTLB before returning), then unpins
     * and uncharges its pages and forgets it. A domain whose instance is gone is skipped.
     *
     * @throws IommuException {@code EIO} if a live domain refused: the entry then stays recorded and
     *     pinned, so no page a device may still reach is freed
     */
    void unmap(DmaEntry entry, Collection<IommuDomain> domains) throws IommuException {
        IommuException failure = null;
        for (IommuDomain domain : domains) {
            try {
                domain.unmap(entry.iova, entry.size);
            } catch (IommuException e) {
                if (e.errno() != Errno.ENODEV && failure == null) {
                    failure = e;
                }
            }
        }
        if (failure != null) {
            throw new IommuException(Errno.EIO, String.format("unmapping 0x%x+0x%x failed: %s",
                    entry.iova, entry.size, failure.getMessage()));
        }
        release(entry);
    }

    /** Forgets an entry whose domains are gone: unpins and uncharges its pages. */
    void release(DmaEntry entry) {
        entries.remove(entry.iova);
        unpin(entry.frames, entry.frames.length);
        try {
            owner.accountLocked(-entry.frames.length);
        } catch (IommuException e) {
            throw new IllegalStateException("locked-memory accounting of " + owner.name() + " lost pages", e);
        }
    }

    private void unpin(long[] frames, int count) {
        for (int i = 0; i < count; i++) {
            try {
                owner.unpin(frames[i]);
            } catch (IommuException e) {
                throw new IllegalStateException("page 0x" + Long.toHexString(frames[i]) + " was not pinned", e);
            }
        }
    }
}
