package ${package}.internal.hw;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.util.Map;

import org.iommulab.api.errno.Errno;
import org.iommulab.api.errno.IommuException;
import org.iommulab.platform.internal.memory.SparseMemory;
import org.junit.jupiter.api.Test;

/** Register-level tests: program only registers and memory, as the driver will. Start here. */
class ${classPrefix}HardwareTest {
    final ${classPrefix}Hardware hw;

    ${classPrefix}HardwareTest() throws IommuException {
        hw = new ${classPrefix}Hardware(new SparseMemory(52), Map.of("pasid-bits", "20", "address-bits", "48"));
    }

    @Test
    void registersTake4And8ByteAlignedAccessesInTheWindowOnly() throws Exception {
        hw.write(0x10, 0x1122_3344_5566_7788L, 8);
        assertEquals(0x5566_7788L, hw.read(0x10, 4));
        assertEquals(0x1122_3344L, hw.read(0x14, 4));
        assertEquals(Errno.EINVAL, assertThrows(IommuException.class, () -> hw.read(0x11, 4)).errno());
        assertEquals(Errno.EINVAL, assertThrows(IommuException.class, () -> hw.read(0x10, 2)).errno());
        assertEquals(Errno.EINVAL, assertThrows(IommuException.class, () -> hw.write(0x1000, 0, 8)).errno());
    }

    @Test
    void aBadConfigurationIsRefused() {
        assertEquals(Errno.EINVAL, assertThrows(IommuException.class,
                () -> new ${classPrefix}Hardware(new SparseMemory(52), Map.of("pasid-bits", "21", "address-bits", "48"))).errno());
    }
}
