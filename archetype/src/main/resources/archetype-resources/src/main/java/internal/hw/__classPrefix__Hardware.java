package ${package}.internal.hw;

import java.util.List;
import java.util.Map;
import java.util.concurrent.atomic.LongAdder;

import org.iommulab.api.dto.WalkStepDTO;
import org.iommulab.api.errno.Errno;
import org.iommulab.api.errno.IommuException;
import org.iommulab.api.fault.PageResponse;
import org.iommulab.api.memory.PhysicalMemory;
import org.iommulab.api.nesting.GuestIommuListener;
import org.iommulab.api.translation.FaultKind;
import org.iommulab.api.translation.Stage;
import org.iommulab.api.translation.Translation;
import org.iommulab.pgtable.unit.Registers;
import org.iommulab.pgtable.unit.UnitModel;

/**
 * The ${vendor} hardware model: its register window and, to come, the structures it reads from
 * physical memory in the specification's bit layout. Put the spec section next to every encoded
 * field. Until translation is written, every request faults with CONFIGURATION / NOT_IMPLEMENTED.
 *
 * <p>Thread safe: registers under this object's lock; translation reads memory without it.
 */
public final class ${classPrefix}Hardware implements UnitModel {
    /** The register window: one 4 KiB page. */
    public static final long MMIO_SIZE = 0x1000;
    private static final String VENDOR_NAME = "${vendor}";

    private final PhysicalMemory memory;
    private final Map<String, String> configuration;
    /** 64-bit registers by offset / 8. */
    private final long[] registers = new long[(int) (MMIO_SIZE / 8)];
    private final LongAdder translations = new LongAdder();
    private volatile GuestIommuListener guestListener;

    /**
     * @param memory the physical memory the unit reads its structures from
     * @param configuration the instance's configuration, every key present
     * @throws IommuException {@code EINVAL} for a bad value
     */
    public ${classPrefix}Hardware(PhysicalMemory memory, Map<String, String> configuration) throws IommuException {
        this.memory = memory;
        this.configuration = Map.copyOf(configuration);
        int pasidBits = parse("pasid-bits", 0, 20);
        int addressBits = parse("address-bits", 32, 64);
        // TODO reset values of the capability registers, from pasidBits and addressBits.
        registers[0] = (long) addressBits << 8 | pasidBits;
    }

    private int parse(String key, int min, int max) throws IommuException {
        try {
            int v = Integer.parseInt(configuration.get(key));
            if (v < min || v > max) {
                throw new IommuException(Errno.EINVAL, key + " must be " + min + " to " + max + ", not " + v);
            }
            return v;
        } catch (NumberFormatException e) {
            throw new IommuException(Errno.EINVAL, key + " is not a number: " + configuration.get(key));
        }
    }

    /** @return the memory the unit reads */
    public PhysicalMemory memory() {
        return memory;
    }

    @Override
    public long mmioSize() {
        return MMIO_SIZE;
    }

    @Override
    public synchronized long read(long offset, int size) throws IommuException {
        Registers.checkAccess(VENDOR_NAME, offset, size, MMIO_SIZE);
        return Registers.readLane(registers[(int) (offset >>> 3)], offset, size);
    }

    @Override
    public synchronized void write(long offset, long value, int size) throws IommuException {
        Registers.checkAccess(VENDOR_NAME, offset, size, MMIO_SIZE);
        int index = (int) (offset >>> 3);
        long mask = Registers.laneMask(offset, size);
        // TODO the specification's register semantics: read-only fields, write-1-to-clear, commands.
        registers[index] = registers[index] & ~mask | Registers.laneValue(offset, value, size);
    }

    @Override
    public boolean translate(int requesterId, int pasid, long address, int access, Translation out) {
        translations.increment();
        // TODO find the device's context in memory, walk its tables (pgtable Walker), fill the caches.
        return out.fault(FaultKind.CONFIGURATION, Stage.CONFIG, 0, "NOT_IMPLEMENTED", 0, address).isSuccess();
    }

    @Override
    public List<WalkStepDTO> explain(int requesterId, int pasid, long address, int access) {
        return List.of();
    }

    @Override
    public boolean pageRequest(int requesterId, int pasid, long address, int access, int groupIndex) {
        return false; // no page request interface yet
    }

    @Override
    public PageResponse pageRequestStatus(int requesterId, int pasid, int groupIndex) {
        return null;
    }

    @Override
    public void setGuestListener(GuestIommuListener listener) {
        this.guestListener = listener;
    }

    @Override
    public Map<String, String> configuration() {
        return configuration;
    }

    @Override
    public Map<String, Long> statistics() {
        return Map.of("translations", translations.sum());
    }
}
