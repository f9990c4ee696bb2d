package ${package}.internal.driver;

import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.CopyOnWriteArrayList;

import ${package}.internal.hw.${classPrefix}Hardware;
import org.iommulab.api.errno.Errno;
import org.iommulab.api.errno.IommuException;
import org.iommulab.api.fault.FaultListener;
import org.iommulab.api.fault.PageResponse;
import org.iommulab.api.invalidation.CacheInvalidation;
import org.iommulab.api.memory.FrameAllocator;
import org.iommulab.api.memory.PhysicalMemory;
import org.iommulab.api.nesting.GuestPasidBind;
import org.iommulab.api.nesting.NestingInfo;
import org.iommulab.api.nesting.PasidTableConfig;
import org.iommulab.api.pasid.PasidSet;
import org.iommulab.api.spi.DomainType;
import org.iommulab.api.spi.IommuDomain;
import org.iommulab.api.spi.IommuDriver;

/**
 * The ${vendor} host driver: programs the hardware model through its registers and the structures
 * it allocates in physical memory, as the operating system's driver would. Every operation not
 * written yet answers EOPNOTSUPP with its name, which is what the conformance kit reports.
 *
 * <p>Thread safe: operations are serialized on this object.
 */
public final class ${classPrefix}Driver implements IommuDriver {
    private final String name;
    private final ${classPrefix}Hardware hw;
    private final PhysicalMemory memory;
    private final FrameAllocator frames;
    private final List<FaultListener> listeners = new CopyOnWriteArrayList<>();
    private boolean closed;

    /**
     * @param name the instance name
     * @param hw the hardware model
     * @param memory where the structures live
     * @param frames where structure frames come from (all of them go back at close)
     */
    public ${classPrefix}Driver(String name, ${classPrefix}Hardware hw, PhysicalMemory memory, FrameAllocator frames) {
        this.name = name;
        this.hw = hw;
        this.memory = memory;
        this.frames = frames;
    }

    private static IommuException notYet(String operation) {
        return new IommuException(Errno.EOPNOTSUPP, "${vendor}: " + operation
                + " is not implemented yet (see docs/backend-guide.md, 'The SPI contract')");
    }

    @Override
    public NestingInfo nestingInfo() {
        Map<String, String> c = hw.configuration();
        // TODO declare BIND_PGTBL or PASID_TABLE, CACHE_INVLD, PAGE_RESP once they work.
        return new NestingInfo("${vendor}", Set.of(), Integer.parseInt(c.get("address-bits")),
                Integer.parseInt(c.get("pasid-bits")), 0x1000, Map.of());
    }

    @Override
    public synchronized IommuDomain allocateDomain(DomainType type) throws IommuException {
        throw notYet("allocateDomain");
    }

    @Override
    public synchronized void freeDomain(IommuDomain domain) throws IommuException {
        throw notYet("freeDomain");
    }

    @Override
    public synchronized void attach(IommuDomain domain, int requesterId) throws IommuException {
        throw notYet("attach");
    }

    @Override
    public synchronized void detach(IommuDomain domain, int requesterId) throws IommuException {
        throw notYet("detach");
    }

    @Override
    public synchronized void bindGuestPasid(IommuDomain parent, int requesterId, GuestPasidBind bind, PasidSet owner)
            throws IommuException {
        throw notYet("bindGuestPasid");
    }

    @Override
    public synchronized void unbindGuestPasid(IommuDomain parent, int requesterId, int hostPasid, PasidSet owner)
            throws IommuException {
        throw notYet("unbindGuestPasid");
    }

    @Override
    public synchronized void attachPasidTable(IommuDomain parent, int requesterId, PasidTableConfig config)
            throws IommuException {
        throw notYet("attachPasidTable");
    }

    @Override
    public synchronized void detachPasidTable(IommuDomain parent, int requesterId) throws IommuException {
        throw notYet("detachPasidTable");
    }

    @Override
    public synchronized void cacheInvalidate(IommuDomain domain, int requesterId, CacheInvalidation invalidation,
            PasidSet owner) throws IommuException {
        throw notYet("cacheInvalidate");
    }

    @Override
    public synchronized void pageResponse(int requesterId, int pasid, int groupIndex, PageResponse response)
            throws IommuException {
        throw notYet("pageResponse");
    }

    @Override
    public void addFaultListener(FaultListener listener) {
        listeners.add(listener);
    }

    @Override
    public void removeFaultListener(FaultListener listener) {
        listeners.remove(listener);
    }

    /** Stops the unit and frees every frame the driver allocated; idempotent. */
    public synchronized void close() {
        closed = true;
        // TODO turn translation off, then free every structure frame.
    }

    @Override
    public String toString() {
        return "${vendor} driver of " + name + (closed ? " (closed)" : "");
    }
}
