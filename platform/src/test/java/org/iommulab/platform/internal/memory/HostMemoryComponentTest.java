package org.iommulab.platform.internal.memory;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.annotation.Annotation;

import org.iommulab.api.dto.MemoryStatsDTO;
import org.iommulab.api.errno.IommuException;
import org.iommulab.api.memory.MemoryAccessException;
import org.iommulab.api.memory.MemoryAccessException.Reason;
import org.junit.jupiter.api.Test;

class HostMemoryComponentTest {

    static HostMemoryComponent.Config config(int addressBits, long poolBase, long poolFrames) {
        return new HostMemoryComponent.Config() {
            @Override
            public Class<? extends Annotation> annotationType() {
                return HostMemoryComponent.Config.class;
            }

            @Override
            public int addressBits() {
                return addressBits;
            }

            @Override
            public long poolBase() {
                return poolBase;
            }

            @Override
            public long poolFrames() {
                return poolFrames;
            }
        };
    }

    @Test
    void usesTheConfiguration() {
        HostMemoryComponent memory = new HostMemoryComponent(config(48, 0x10_0000_0000L, 64));
        assertEquals(48, memory.addressBits());
        assertEquals(0x10_0000_0000L, memory.poolBase());
        assertEquals(64, memory.poolFrames());
    }

    @Test
    void clampsTheAddressWidthAndMovesAPoolOutsideMemory() {
        HostMemoryComponent narrow = new HostMemoryComponent(config(16, 1L << 40, 8));
        assertEquals(32, narrow.addressBits());
        assertEquals(1L << 31, narrow.poolBase(), "a pool beyond the width moves to the upper half");
        HostMemoryComponent wide = new HostMemoryComponent(config(70, 0x1001, 8));
        assertEquals(63, wide.addressBits());
        assertEquals(1L << 62, wide.poolBase(), "an unaligned pool base moves to the upper half");
        HostMemoryComponent none = new HostMemoryComponent(config(52, 1L << 40, 0));
        assertEquals(1, none.poolFrames());
    }

    @Test
    void memoryAndPoolWorkTogetherAndStatsReflectThem() throws IommuException {
        HostMemoryComponent memory = new HostMemoryComponent(config(52, 1L << 40, 16));
        memory.write64(0x1000, 0x1122334455667788L);
        memory.write32(0x1008, 7);
        assertEquals(0x1122334455667788L, memory.read64(0x1000));
        assertEquals(7, memory.read32(0x1008));
        assertTrue(memory.compareAndSet64(0x1000, 0x1122334455667788L, 1));
        memory.fill(0x2000, 8, (byte) 1);
        memory.copy(0x2000, 0x3000, 8);
        byte[] b = new byte[8];
        memory.read(0x3000, b, 0, 8);
        assertEquals(1, b[7]);
        memory.write(0x4000, b, 0, 8);
        assertTrue(memory.isBacked(0x4000));

        long frames = memory.allocateFrames(2);
        assertTrue(frames >= memory.poolBase());
        assertEquals(0, memory.read64(frames + 4096));
        MemoryStatsDTO stats = memory.stats();
        assertEquals(52, stats.addressBits);
        assertEquals(6, stats.backedPages); // 0x1000, 0x2000, 0x3000, 0x4000 and two frames
        assertEquals(2, stats.allocatedFrames);
        assertEquals(1L << 40, stats.poolBase);
        assertEquals(16, stats.poolFrames);

        memory.freeFrames(frames, 2);
        assertEquals(0, memory.allocatedFrames());
        assertEquals(4, memory.stats().backedPages);
        MemoryAccessException e = assertThrows(MemoryAccessException.class, () -> memory.read64(frames));
        assertEquals(Reason.UNBACKED, e.reason());
        assertFalse(memory.isBacked(frames));
    }
}
