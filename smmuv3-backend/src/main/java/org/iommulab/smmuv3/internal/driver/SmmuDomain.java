package org.iommulab.smmuv3.internal.driver;

import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;

import org.iommulab.api.spi.DomainType;
import org.iommulab.pgtable.IoPageTable;
import org.iommulab.pgtable.TableDomain;

/**
 * A domain of the SMMUv3 host driver. {@link DomainType#UNMANAGED} domains are stage-2 domains
 * (a VMID and an AArch64 stage-2 table with the 4 KiB granule), as a VM's domain is in Linux's
 * nesting mode; {@link DomainType#IDENTITY} domains make STEs bypass and
 * {@link DomainType#BLOCKED} domains make them abort. Thread safe (the page table serializes map
 * and unmap).
 */
final class SmmuDomain extends TableDomain {
    /** STE word 5 fields: S2T0SZ, S2SL0 and S2PS. */
    final int s2t0sz;
    final int s2sl0;
    final int s2ps;
    /** Streams whose STE is nested on this domain (a guest PASID table is attached). */
    final Set<Integer> nestedSids = ConcurrentHashMap.newKeySet();

    SmmuDomain(int id, DomainType type, IoPageTable table, int s2t0sz, int s2sl0, int s2ps) {
        super(id, type, table);
        this.s2t0sz = s2t0sz;
        this.s2sl0 = s2sl0;
        this.s2ps = s2ps;
    }

    /** @return the VMID (the domain id of a stage-2 domain) */
    int vmid() {
        return id();
    }

    /** @return the number of IPA bits of the stage-2 table */
    int ipaBits() {
        return 64 - s2t0sz;
    }

    @Override
    public String toString() {
        return "smmuv3-domain[" + id() + " " + type() + "]";
    }
}
