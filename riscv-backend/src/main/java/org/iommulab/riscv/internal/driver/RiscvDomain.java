package org.iommulab.riscv.internal.driver;

import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;

import org.iommulab.api.errno.Errno;
import org.iommulab.api.errno.IommuException;
import org.iommulab.api.spi.DomainType;
import org.iommulab.pgtable.IoPageTable;
import org.iommulab.pgtable.TableDomain;

/**
 * A domain of the RISC-V IOMMU host driver. {@link DomainType#UNMANAGED} domains are G-stage
 * domains: a GSCID (the domain id) and an Sv39x4/Sv48x4/Sv57x4 table with its 16 KiB root, which a
 * device context names in {@code iohgatp} (spec §2.1.3.2), as a VM's address space is in Linux's
 * nesting mode. {@link DomainType#IDENTITY} domains make device contexts pass requests through
 * (iohgatp and fsc Bare); {@link DomainType#BLOCKED} domains leave them invalid.
 *
 * <p>Thread safe (the page table serializes map and unmap).
 */
final class RiscvDomain extends TableDomain {
    /** iohgatp.MODE of the G-stage table (DeviceContext.ATP_SV39 ... for Sv39x4 ...), or Bare. */
    final int iohgatpMode;
    /**
     * Devices whose first stage is a guest's process-directory table nested on this domain: an
     * unmap must then also flush the combined (first-stage over G-stage) entries of the GSCID,
     * which are tagged by the guest's virtual addresses.
     */
    final Set<Integer> nestedDevices = ConcurrentHashMap.newKeySet();

    RiscvDomain(int id, DomainType type, IoPageTable table, int iohgatpMode) {
        super(id, type, table);
        this.iohgatpMode = iohgatpMode;
    }

    /** @return the GSCID of a G-stage domain (its id) */
    int gscid() {
        return id();
    }

    /** @return the {@code ENOENT} a call gets that needs {@code requesterId} attached to this domain */
    IommuException notAttached(int requesterId) {
        return new IommuException(Errno.ENOENT, String.format("device 0x%x is not attached to domain %d", requesterId,
                id()));
    }

    @Override
    public String toString() {
        return "riscv-domain[" + id() + " " + type() + "]";
    }
}
