package org.iommulab.platform.internal.memory;

import org.iommulab.api.dto.MemoryStatsDTO;
import org.iommulab.api.errno.IommuException;
import org.iommulab.api.memory.HostMemory;
import org.osgi.service.component.annotations.Activate;
import org.osgi.service.component.annotations.Component;
import org.osgi.service.metatype.annotations.AttributeDefinition;
import org.osgi.service.metatype.annotations.Designate;
import org.osgi.service.metatype.annotations.ObjectClassDefinition;

/**
 * The host physical memory service: a {@link SparseMemory} with a {@link FramePool} in its upper
 * part. Changing the configuration re-creates the memory (its contents are lost, as on a reboot).
 */
@Component(service = HostMemory.class, immediate = true, configurationPid = HostMemoryComponent.PID)
@Designate(ocd = HostMemoryComponent.Config.class)
public final class HostMemoryComponent implements HostMemory {
    /** Configuration PID. */
    public static final String PID = "org.iommulab.platform.memory";

    /** Host memory configuration. */
    @ObjectClassDefinition(name = "IOMMU Lab host memory", description = "Sparse host physical memory and its frame pool")
    public @interface Config {
        /** @return the physical address width */
        @AttributeDefinition(description = "Physical address width in bits (32-63); 52 as on current x86 and Arm servers")
        int addressBits() default 52;

        /** @return the pool base */
        @AttributeDefinition(description = "First address of the frame pool drivers allocate tables from; addresses below it are free for scripts")
        long poolBase() default 0x100_0000_0000L;

        /** @return the pool size in frames */
        @AttributeDefinition(description = "Most 4 KiB frames allocated at once (default 4 Mi frames = 16 GiB)")
        long poolFrames() default 1L << 22;
    }

    private final SparseMemory memory;
    private final FramePool pool;

    /**
     * @param config the configuration
     */
    @Activate
    public HostMemoryComponent(Config config) {
        int bits = Math.max(32, Math.min(63, config.addressBits()));
        this.memory = new SparseMemory(bits);
        long base = config.poolBase();
        if (base < 0 || base >>> bits != 0 || (base & (FRAME_SIZE - 1)) != 0) {
            // A pool outside the address space cannot work: use the upper half instead.
            base = 1L << (bits - 1);
        }
        this.pool = new FramePool(memory, base, Math.max(1, config.poolFrames()));
    }

    @Override
    public int addressBits() {
        return memory.addressBits();
    }

    @Override
    public long read64(long address) {
        return memory.read64(address);
    }

    @Override
    public void write64(long address, long value) {
        memory.write64(address, value);
    }

    @Override
    public int read32(long address) {
        return memory.read32(address);
    }

    @Override
    public void write32(long address, int value) {
        memory.write32(address, value);
    }

    @Override
    public boolean compareAndSet64(long address, long expected, long value) {
        return memory.compareAndSet64(address, expected, value);
    }

    @Override
    public void read(long address, byte[] dst, int offset, int length) {
        memory.read(address, dst, offset, length);
    }

    @Override
    public void write(long address, byte[] src, int offset, int length) {
        memory.write(address, src, offset, length);
    }

    @Override
    public void copy(long src, long dst, long length) {
        memory.copy(src, dst, length);
    }

    @Override
    public void fill(long address, long length, byte value) {
        memory.fill(address, length, value);
    }

    @Override
    public boolean isBacked(long address) {
        return memory.isBacked(address);
    }

    @Override
    public long allocateFrames(int frames) throws IommuException {
        return pool.allocateFrames(frames);
    }

    @Override
    public void freeFrames(long address, int frames) throws IommuException {
        pool.freeFrames(address, frames);
    }

    @Override
    public long allocatedFrames() {
        return pool.allocatedFrames();
    }

    @Override
    public long poolBase() {
        return pool.poolBase();
    }

    @Override
    public long poolFrames() {
        return pool.poolFrames();
    }

    @Override
    public MemoryStatsDTO stats() {
        MemoryStatsDTO dto = new MemoryStatsDTO();
        dto.addressBits = memory.addressBits();
        dto.backedPages = memory.backedPages();
        dto.allocatedFrames = pool.allocatedFrames();
        dto.poolBase = pool.poolBase();
        dto.poolFrames = pool.poolFrames();
        return dto;
    }
}
