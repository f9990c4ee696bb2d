package org.iommulab.pgtable.unit;

import java.util.List;
import java.util.Map;
import java.util.Objects;

import org.iommulab.api.dto.WalkStepDTO;
import org.iommulab.api.errno.Errno;
import org.iommulab.api.errno.IommuException;
import org.iommulab.api.fault.PageResponse;
import org.iommulab.api.memory.PhysicalMemory;
import org.iommulab.api.nesting.GuestIommuListener;
import org.iommulab.api.spi.IommuDriver;
import org.iommulab.api.spi.IommuInstance;
import org.iommulab.api.translation.FaultKind;
import org.iommulab.api.translation.Stage;
import org.iommulab.api.translation.Translation;

/**
 * One IOMMU unit as a backend hands it out: a hardware model and the host driver that programs it.
 * After {@link #close()} the registers answer {@code ENODEV}, translations fault with
 * {@code IOMMU_CLOSED} and page requests are refused, while page-request status stays readable
 * (the driver answered the pending groups before it let the unit go).
 *
 * <p>Thread safe, as its model and driver are.
 */
public final class ModeledInstance implements IommuInstance {
    private final String name;
    private final String vendor;
    private final UnitModel unit;
    private final IommuDriver driver;
    private final PhysicalMemory memory;
    private final Runnable onClose;
    private volatile boolean closed;

    /**
     * @param name the instance name
     * @param vendor the backend's vendor id
     * @param unit the hardware model
     * @param driver the host driver programming {@code unit}
     * @param memory the memory the unit reads its structures from
     * @param onClose run once by the first {@link #close()}: shuts the driver down and forgets it
     */
    public ModeledInstance(String name, String vendor, UnitModel unit, IommuDriver driver, PhysicalMemory memory,
            Runnable onClose) {
        this.name = Objects.requireNonNull(name, "name");
        this.vendor = Objects.requireNonNull(vendor, "vendor");
        this.unit = Objects.requireNonNull(unit, "unit");
        this.driver = Objects.requireNonNull(driver, "driver");
        this.memory = Objects.requireNonNull(memory, "memory");
        this.onClose = Objects.requireNonNull(onClose, "onClose");
    }

    @Override
    public String name() {
        return name;
    }

    @Override
    public String vendor() {
        return vendor;
    }

    @Override
    public Map<String, String> configuration() {
        return unit.configuration();
    }

    @Override
    public PhysicalMemory memory() {
        return memory;
    }

    @Override
    public long mmioSize() {
        return unit.mmioSize();
    }

    @Override
    public long mmioRead(long offset, int size) throws IommuException {
        checkOpen();
        return unit.read(offset, size);
    }

    @Override
    public void mmioWrite(long offset, long value, int size) throws IommuException {
        checkOpen();
        unit.write(offset, value, size);
    }

    private void checkOpen() throws IommuException {
        if (closed) {
            throw new IommuException(Errno.ENODEV, "IOMMU " + name + " is closed");
        }
    }

    @Override
    public boolean translate(int requesterId, int pasid, long address, int access, Translation out) {
        if (closed) {
            return out.fault(FaultKind.BLOCKED, Stage.CONFIG, 0, "IOMMU_CLOSED", 0, address).isSuccess();
        }
        return unit.translate(requesterId, pasid, address, access, out);
    }

    @Override
    public List<WalkStepDTO> explain(int requesterId, int pasid, long address, int access) {
        return unit.explain(requesterId, pasid, address, access);
    }

    @Override
    public boolean pageRequest(int requesterId, int pasid, long address, int access, int groupIndex) {
        return !closed && unit.pageRequest(requesterId, pasid, address, access, groupIndex);
    }

    @Override
    public PageResponse pageRequestStatus(int requesterId, int pasid, int groupIndex) {
        return unit.pageRequestStatus(requesterId, pasid, groupIndex);
    }

    @Override
    public void setGuestListener(GuestIommuListener listener) {
        unit.setGuestListener(listener);
    }

    @Override
    public IommuDriver driver() {
        return driver;
    }

    @Override
    public Map<String, Long> statistics() {
        return unit.statistics();
    }

    @Override
    public void close() {
        if (!closed) {
            closed = true;
            onClose.run();
        }
    }
}
