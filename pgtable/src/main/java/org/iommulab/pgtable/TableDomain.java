package org.iommulab.pgtable;

import org.iommulab.api.errno.Errno;
import org.iommulab.api.errno.IommuException;
import org.iommulab.api.spi.DomainType;
import org.iommulab.api.spi.IommuDomain;

/**
 * The part of a host driver's domain every backend shares: an id, a type and, for domains that
 * translate, an {@link IoPageTable} that map, unmap and iova-to-phys go to. A backend extends it
 * with what its hardware needs (a VMID, an address width, nested streams) and keeps programming
 * the hardware in its driver.
 *
 * <p>Thread safe: the page table serializes map and unmap; {@link #free()} may race them, which
 * then fail with {@code ENODEV}.
 */
public abstract class TableDomain implements IommuDomain {
    private final int id;
    private final DomainType type;
    private final IoPageTable table;
    private volatile boolean freed;

    /**
     * @param id the driver's domain id (a DID, a VMID)
     * @param type the domain type, not {@code null}
     * @param table the page table, or {@code null} for domains without one (identity, blocked)
     */
    protected TableDomain(int id, DomainType type, IoPageTable table) {
        this.id = id;
        this.type = type;
        this.table = table;
    }

    @Override
    public final int id() {
        return id;
    }

    @Override
    public final DomainType type() {
        return type;
    }

    /** @return the page table, or {@code null} for a domain without one */
    public final IoPageTable table() {
        return table;
    }

    /** @return {@code true} once {@link #free()} ran */
    public final boolean isFreed() {
        return freed;
    }

    /** Marks the domain freed (later maps fail with {@code ENODEV}) and releases its table. Idempotent. */
    public final void free() {
        if (!freed) {
            freed = true;
            if (table != null) {
                table.destroy();
            }
        }
    }

    @Override
    public final long pageSizes() {
        return table == null ? 0 : table.pageSizes();
    }

    @Override
    public final int inputAddressBits() {
        return table == null ? 0 : table.format().inputBits();
    }

    @Override
    public final void map(long iova, long pa, long size, int prot) throws IommuException {
        checkMappable();
        table.map(iova, pa, size, prot);
    }

    @Override
    public final long unmap(long iova, long size) throws IommuException {
        checkMappable();
        return table.unmap(iova, size);
    }

    @Override
    public final long iovaToPhys(long iova) {
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
}
