package org.iommulab.vtd.internal.driver;

import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;

import org.iommulab.api.spi.DomainType;
import org.iommulab.pgtable.IoPageTable;
import org.iommulab.pgtable.TableDomain;

/**
 * A domain of the VT-d host driver: a domain id and, for {@link DomainType#UNMANAGED}, a
 * second-stage page table whose unmaps are flushed with page-selective IOTLB invalidations.
 * Thread safe (the page table serializes map and unmap).
 */
final class VtdDomain extends TableDomain {
    final int aw;
    /** A first-stage table (PGTT 1, FLPM from {@link #aw}: 0 4-level, 1 5-level) rather than second stage. */
    final boolean firstStage;
    /** Host PASIDs bound with this domain as nesting parent: a parent change must flush them too. */
    final Set<Integer> nestedPasids = ConcurrentHashMap.newKeySet();

    VtdDomain(int did, DomainType type, IoPageTable table, int aw, boolean firstStage) {
        super(did, type, table);
        this.aw = aw;
        this.firstStage = firstStage;
    }

    /** @return the domain id (DID) the hardware tags this domain's entries with */
    int did() {
        return id();
    }

    @Override
    public String toString() {
        return "vtd-domain[" + id() + " " + type() + "]";
    }
}
