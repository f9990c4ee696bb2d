package org.iommulab.api.errno;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;

import org.junit.jupiter.api.Test;

class IommuExceptionTest {

    @Test
    void errnoValuesAreLinuxs() {
        assertEquals(1, Errno.EPERM.value());
        assertEquals(2, Errno.ENOENT.value());
        assertEquals(5, Errno.EIO.value());
        assertEquals(11, Errno.EAGAIN.value());
        assertEquals(12, Errno.ENOMEM.value());
        assertEquals(14, Errno.EFAULT.value());
        assertEquals(16, Errno.EBUSY.value());
        assertEquals(17, Errno.EEXIST.value());
        assertEquals(19, Errno.ENODEV.value());
        assertEquals(22, Errno.EINVAL.value());
        assertEquals(28, Errno.ENOSPC.value());
        assertEquals(34, Errno.ERANGE.value());
        assertEquals(95, Errno.EOPNOTSUPP.value());
        assertEquals(110, Errno.ETIMEDOUT.value());
    }

    @Test
    void carriesErrnoMessageAndCause() {
        RuntimeException cause = new RuntimeException("x");
        IommuException e = new IommuException(Errno.EBUSY, "PASID 5 is in use", cause);
        assertEquals(Errno.EBUSY, e.errno());
        assertEquals("PASID 5 is in use", e.getMessage());
        assertSame(cause, e.getCause());
        assertEquals("EBUSY: PASID 5 is in use", e.toString());
        assertEquals("EINVAL: bad", new IommuException(Errno.EINVAL, "bad").toString());
    }

    @Test
    void errnoIsRequired() {
        assertThrows(NullPointerException.class, () -> new IommuException(null, "m"));
        assertThrows(NullPointerException.class, () -> new IommuException(null, "m", null));
    }
}
