package org.iommulab.smmuv3.internal.driver;

import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;

import org.iommulab.api.errno.Errno;
import org.iommulab.api.errno.IommuException;
import org.iommulab.api.spi.DomainType;
import org.iommulab.api.spi.IommuDomain;
import org.iommulab.pgtable.IoPageTable;

/**
 * A domain of the SMMUv3 host driver. {@link DomainType#UNMANAGED} domains are stage-2 domains
 * (a VMID and an AArch64 stage-2 table with the 4 KiB granule), as a VM's domain is in Linux's
 * nesting mode; {@link DomainType#IDENTITY} domains make STEs bypass and
 * {@link DomainType#BLOCKED} domains make them abort. Thread safe (the page table serializes map
 * and unmap).
 */
final class SmmuDomain implements IommuDomain {
    final int id;
    final DomainType type;
    final IoPageTable table;
    /** STE word 5 fields: S2T0SZ, S2SL0 and S2PS. */
    final int s2t0sz;
    final int s2sl0;
    final int s2ps;
    /** Streams whose STE is nested on this domain (a guest PASID table is attached). */
    final Set<Integer> nestedSids = ConcurrentHashMap.newKeySet();
    volatile boolean freed;

    SmmuDomain(int id, DomainType type, IoPageTable table, int s2t0sz, int s2sl0, int s2ps) {
        this.id = id;
        this.type = type;
        this.table = table;
        this.s2t0sz = s2t0sz;
        this.s2sl0 = s2sl0;
        this.s2ps = s2ps;
    }

    /** @return the VMID (the domain id of a stage-2 domain) */
    int vmid() {
        return id;
    }

    /** @return the number of IPA bits of the stage-2 table */
    int ipaBits() {
        return 64 - s2t0sz;
    }

    @Override
    public int id() {
        return id;
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
            throw new IommuException(Errno.ENODEV, "domain " + id + " was freed");
        }
        if (table == null) {
            throw new IommuException(Errno.EINVAL, type + " domains have no page table to map into");
        }
    }

    @Override
    public String toString() {
        return "smmuv3-domain[" + id + " " + type + "]";
    }
}
