package org.iommulab.smmuv3.internal;

import java.util.List;
import java.util.Map;

import org.iommulab.api.dto.WalkStepDTO;
import org.iommulab.api.errno.Errno;
import org.iommulab.api.errno.IommuException;
import org.iommulab.api.fault.PageResponse;
import org.iommulab.api.memory.PhysicalMemory;
import org.iommulab.api.spi.IommuDriver;
import org.iommulab.api.spi.IommuInstance;
import org.iommulab.api.translation.FaultKind;
import org.iommulab.api.translation.Stage;
import org.iommulab.api.translation.Translation;
import org.iommulab.smmuv3.internal.driver.SmmuDriver;
import org.iommulab.smmuv3.internal.hw.SmmuHardware;

/** One SMMUv3 unit: the hardware model and the host driver that programs it. Thread safe. */
final class SmmuInstance implements IommuInstance {
    private final String name;
    private final SmmuHardware hw;
    private final SmmuDriver driver;
    private final PhysicalMemory memory;
    private volatile boolean closed;

    SmmuInstance(String name, SmmuHardware hw, SmmuDriver driver, PhysicalMemory memory) {
        this.name = name;
        this.hw = hw;
        this.driver = driver;
        this.memory = memory;
    }

    @Override
    public String name() {
        return name;
    }

    @Override
    public String vendor() {
        return SmmuBackend.VENDOR;
    }

    @Override
    public Map<String, String> configuration() {
        return hw.config().values();
    }

    @Override
    public PhysicalMemory memory() {
        return memory;
    }

    @Override
    public long mmioSize() {
        return SmmuHardware.SIZE;
    }

    @Override
    public long mmioRead(long offset, int size) throws IommuException {
        checkOpen();
        return hw.read(offset, size);
    }

    @Override
    public void mmioWrite(long offset, long value, int size) throws IommuException {
        checkOpen();
        hw.write(offset, value, size);
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
        return hw.translate(requesterId, pasid, address, access, out);
    }

    @Override
    public List<WalkStepDTO> explain(int requesterId, int pasid, long address, int access) {
        return hw.explain(requesterId, pasid, address, access);
    }

    @Override
    public boolean pageRequest(int requesterId, int pasid, long address, int access, int groupIndex) {
        return !closed && hw.pageRequest(requesterId, pasid, address, access, groupIndex);
    }

    @Override
    public PageResponse pageRequestStatus(int requesterId, int pasid, int groupIndex) {
        // After close too: the driver answered the pending groups INVALID before it let the unit go.
        return hw.pageRequestStatus(requesterId, pasid, groupIndex);
    }

    @Override
    public void setGuestListener(org.iommulab.api.nesting.GuestIommuListener listener) {
        hw.setGuestListener(listener);
    }

    @Override
    public IommuDriver driver() {
        return driver;
    }

    @Override
    public Map<String, Long> statistics() {
        return hw.statistics();
    }

    @Override
    public void close() {
        if (!closed) {
            closed = true;
            driver.close();
        }
    }
}
