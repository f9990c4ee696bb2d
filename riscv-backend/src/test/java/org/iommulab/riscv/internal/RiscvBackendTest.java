package org.iommulab.riscv.internal;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Map;

import org.iommulab.api.errno.Errno;
import org.iommulab.api.errno.IommuException;
import org.iommulab.platform.internal.memory.FramePool;
import org.iommulab.platform.internal.memory.SparseMemory;
import org.iommulab.riscv.internal.hw.RiscvHardware;
import org.junit.jupiter.api.Test;

/** The backend service: its defaults are the hardware's, and it refuses what the hardware refuses. */
class RiscvBackendTest {
    final SparseMemory memory = new SparseMemory(52);
    final FramePool pool = new FramePool(memory, 1L << 40, 1 << 16);
    final RiscvBackend backend = new RiscvBackend();

    @Test
    void describesItselfAndOffersTheHardwareDefaults() {
        assertEquals("riscv", backend.vendor());
        assertSame(RiscvHardware.DEFAULTS, backend.defaultConfiguration());
        assertTrue(backend.description().startsWith("RISC-V IOMMU (device and process directory tables"));
    }

    @Test
    void unknownKeysAndBadValuesAreEinval() {
        assertEquals(Errno.EINVAL, assertThrows(IommuException.class,
                () -> backend.create("x", Map.of("address-bits", "48"), memory, pool)).errno());
        assertEquals(Errno.EINVAL, assertThrows(IommuException.class,
                () -> backend.create("x", Map.of("g-stage", "sv32x4"), memory, pool)).errno());
        assertEquals(Errno.EINVAL, assertThrows(IommuException.class,
                () -> backend.create("x", Map.of("pasid-bits", "16"), memory, pool)).errno());
    }
}
