package org.iommulab.itest;

import java.util.List;
import java.util.Map;
import java.util.concurrent.atomic.AtomicBoolean;

import org.iommulab.api.dto.WalkStepDTO;
import org.iommulab.api.errno.Errno;
import org.iommulab.api.errno.IommuException;
import org.iommulab.api.memory.FrameAllocator;
import org.iommulab.api.memory.PhysicalMemory;
import org.iommulab.api.spi.IommuBackend;
import org.iommulab.api.spi.IommuDriver;
import org.iommulab.api.spi.IommuInstance;
import org.iommulab.api.translation.FaultKind;
import org.iommulab.api.translation.Stage;
import org.iommulab.api.translation.Translation;

/**
 * A test double backend: 4 read/write registers and an identity translation below 4 GiB (above it,
 * an address-size fault), enough to exercise the registry and the generic shell commands.
 */
final class FakeBackend implements IommuBackend {
    static final String VENDOR = "it-fake";

    @Override
    public String vendor() {
        return VENDOR;
    }

    @Override
    public String description() {
        return "integration-test double";
    }

    @Override
    public Map<String, String> defaultConfiguration() {
        return Map.of("regs", "4");
    }

    @Override
    public IommuInstance create(String name, Map<String, String> configuration, PhysicalMemory memory,
            FrameAllocator frames) throws IommuException {
        for (String key : configuration.keySet()) {
            if (!key.equals("regs")) {
                throw new IommuException(Errno.EINVAL, "unknown key " + key);
            }
        }
        return new Instance(name, memory);
    }

    static final class Instance implements IommuInstance {
        private final String name;
        private final PhysicalMemory memory;
        private final long[] regs = new long[4];
        final AtomicBoolean closed = new AtomicBoolean();

        Instance(String name, PhysicalMemory memory) {
            this.name = name;
            this.memory = memory;
        }

        @Override
        public String name() {
            return name;
        }

        @Override
        public String vendor() {
            return VENDOR;
        }

        @Override
        public Map<String, String> configuration() {
            return Map.of("regs", "4");
        }

        @Override
        public PhysicalMemory memory() {
            return memory;
        }

        @Override
        public long mmioSize() {
            return 32;
        }

        @Override
        public long mmioRead(long offset, int size) throws IommuException {
            check(offset, size);
            return regs[(int) offset / 8];
        }

        @Override
        public void mmioWrite(long offset, long value, int size) throws IommuException {
            check(offset, size);
            regs[(int) offset / 8] = value;
        }

        private void check(long offset, int size) throws IommuException {
            if (closed.get()) {
                throw new IommuException(Errno.ENODEV, "closed");
            }
            if (size != 8 || offset < 0 || offset >= 32 || offset % 8 != 0) {
                throw new IommuException(Errno.EINVAL, "bad register access");
            }
        }

        @Override
        public boolean translate(int requesterId, int pasid, long address, int access, Translation out) {
            if (closed.get()) {
                return out.fault(FaultKind.BLOCKED, Stage.CONFIG, 1, "CLOSED", 0, address).isSuccess();
            }
            if (address >>> 32 != 0) {
                return out.fault(FaultKind.ADDRESS_SIZE, Stage.STAGE1, 0x11, "F_ADDR_SIZE", 0, address).isSuccess();
            }
            return out.success(address, 12, 3).isSuccess();
        }

        @Override
        public List<WalkStepDTO> explain(int requesterId, int pasid, long address, int access) {
            return List.of();
        }

        @Override
        public IommuDriver driver() {
            throw new UnsupportedOperationException("the test double has no driver");
        }

        @Override
        public Map<String, Long> statistics() {
            return Map.of("translations", 0L);
        }

        @Override
        public void close() {
            closed.set(true);
        }
    }
}
