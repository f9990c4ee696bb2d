package org.iommulab.vtd.internal.driver;

import org.iommulab.api.errno.Errno;
import org.iommulab.api.errno.IommuException;
import org.iommulab.api.spi.DomainType;
import org.iommulab.api.spi.IommuDomain;
import org.iommulab.pgtable.IoPageTable;

/**
 * A domain of the VT-d host driver: a domain id and, for {@link DomainType#UNMANAGED}, a
 * second-stage page table whose unmaps are flushed with page-selective IOTLB invalidations.
 * Thread safe (the page table serializes map and unmap).
 */
final class VtdDomain implements IommuDomain {
    final int did;
    final DomainType type;
    final IoPageTable table;
    final int aw;
    /** A first-stage table (PGTT 1, FLPM from {@link #aw}: 0 4-level, 1 5-level) rather than second stage. */
    final boolean firstStage;
    volatile boolean freed;
    /** Host PASIDs bound with this domain as nesting parent: a parent change must flush them too. */
    final java.util.Set<Integer> nestedPasids = java.util.concurrent.ConcurrentHashMap.newKeySet();

    VtdDomain(int did, DomainType type, IoPageTable table, int aw, boolean firstStage) {
        this.did = did;
        this.type = type;
        this.table = table;
        this.aw = aw;
        this.firstStage = firstStage;
    }

    @Override
    public int id() {
        return did;
    }

    @Override
    public DomainType type() {
        return type;
    }

    @Override
    public long pageSizes() {
        return table == null ? 0 : table.pageSizes();
    }

    @Override
    public int inputAddressBits() {
        return table == null ? 0 : table.format().inputBits();
    }

    @Override
    public void map(long iova, long pa, long size, int prot) throws IommuException {
        checkMappable();
        table.map(iova, pa, size, prot);
    }

    @Override
    public long unmap(long iova, long size) throws IommuException {
        checkMappable();
        return table.unmap(iova, size);
    }

    @Override
    public long iovaToPhys(long iova) {
        if (table == null || freed) {
            return type == DomainType.IDENTITY ? iova : -1;
        }
        return table.iovaToPhys(iova);
    }

    private void checkMappable() throws IommuException {
        if (freed) {
            throw new IommuException(Errno.ENODEV, "domain " + did + " was freed");
        }
        if (table == null) {
            throw new IommuException(Errno.EINVAL, type + " domains have no page table to map into");
        }
    }

    @Override
    public String toString() {
        return "vtd-domain[" + did + " " + type + "]";
    }
}
