package org.iommulab.platform.internal.shell;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.iommulab.api.errno.Errno;
import org.iommulab.api.errno.IommuException;
import org.junit.jupiter.api.Test;

class NumbersTest {

    private static void rejected(String text) {
        IommuException e = assertThrows(IommuException.class, () -> Numbers.u64("addr", text),
                () -> "'" + text + "' was accepted");
        assertEquals(Errno.EINVAL, e.errno());
        assertTrue(e.getMessage().startsWith("addr: "), "message must name the argument: " + e.getMessage());
    }

    @Test
    void decimal() throws IommuException {
        assertEquals(0, Numbers.u64("n", "0"));
        assertEquals(42, Numbers.u64("n", "42"));
        assertEquals(4096, Numbers.u64("n", "4_096"));
        assertEquals(1_000_000, Numbers.u64("n", "1_000_000"));
        assertEquals(7, Numbers.u64("n", " 7 "));
        assertEquals(7, Numbers.u64("n", "007"));
    }

    @Test
    void hexadecimal() throws IommuException {
        assertEquals(0x1000, Numbers.u64("n", "0x1000"));
        assertEquals(0xabcdef, Numbers.u64("n", "0XABCDEF"));
        assertEquals(0xabcdef, Numbers.u64("n", "0xAbCdEf"));
        assertEquals(0xfee0_0000L, Numbers.u64("n", "0xfee0_0000"));
        assertEquals(0, Numbers.u64("n", "0x0"));
    }

    @Test
    void fullUnsigned64BitRange() throws IommuException {
        assertEquals(-1L, Numbers.u64("n", "0xffffffffffffffff"));
        assertEquals(-1L, Numbers.u64("n", "0xffff_ffff_ffff_ffff"));
        assertEquals(-1L, Numbers.u64("n", "18446744073709551615"));
        assertEquals(Long.MIN_VALUE, Numbers.u64("n", "0x8000000000000000"));
        assertEquals(Long.MIN_VALUE, Numbers.u64("n", "9223372036854775808"));
    }

    @Test
    void rejectsValuesBeyond64Bits() throws IommuException {
        rejected("0x10000000000000000");
        rejected("18446744073709551616");
        rejected("99999999999999999999999");
    }

    @Test
    void rejectsMalformedText() throws IommuException {
        rejected("-1");
        rejected("");
        rejected("   ");
        rejected(null);
        rejected("0x");
        rejected("0X");
        rejected("0x_");
        rejected("_");
        rejected("abc");
        rejected("0xg");
        rejected("12abc");
        rejected("1.5");
        rejected("0x-1");
        rejected("0b101");
        rejected("+5");
    }

    /**
     * "0x+1" is not a hex number, but {@link Long#parseUnsignedLong(String, int)} accepts a leading
     * '+', and {@link Numbers#u64(String, String)} passes the digits after "0x" to it unchecked.
     */
    @Test
    void rejectsASignAfterTheHexPrefix() throws IommuException {
        rejected("0x+1");
        rejected("0x+ff");
    }

    /**
     * Leading zeros are accepted in decimal ("007") but a hex number with more than 16 digits is
     * rejected even when its value fits in 64 bits, because of a digit-count check.
     */
    @Test
    void acceptsHexWithLeadingZerosWithin64Bits() throws IommuException {
        assertEquals(1, Numbers.u64("n", "0x00000000000000001"));
        assertEquals(-1L, Numbers.u64("n", "0x0ffffffffffffffff"));
    }

    @Test
    void maximumIsEnforcedUnsigned() throws IommuException {
        assertEquals(255, Numbers.u64("n", "0xff", 255));
        IommuException e = assertThrows(IommuException.class, () -> Numbers.u64("size", "256", 255));
        assertTrue(e.getMessage().startsWith("size: "), e.getMessage());
        assertEquals(-1L, Numbers.u64("n", "0xffffffffffffffff", -1L));
        assertThrows(IommuException.class, () -> Numbers.u64("n", "0x8000000000000000", Long.MAX_VALUE));
    }

    @Test
    void u32Bound() throws IommuException {
        assertEquals(0, Numbers.u32("v", "0"));
        assertEquals(-1, Numbers.u32("v", "0xffffffff"));
        assertEquals(-1, Numbers.u32("v", "4294967295"));
        assertEquals(0x8000_0000, Numbers.u32("v", "0x80000000"));
        IommuException e = assertThrows(IommuException.class, () -> Numbers.u32("value", "0x100000000"));
        assertTrue(e.getMessage().startsWith("value: "), e.getMessage());
        assertThrows(IommuException.class, () -> Numbers.u32("value", "4294967296"));
        assertThrows(IommuException.class, () -> Numbers.u32("value", "0xffffffffffffffff"));
    }

    @Test
    void nonNegativeIntBound() throws IommuException {
        assertEquals(Integer.MAX_VALUE, Numbers.nonNegativeInt("n", "0x7fffffff"));
        assertThrows(IommuException.class, () -> Numbers.nonNegativeInt("n", "0x80000000"));
        assertThrows(IommuException.class, () -> Numbers.nonNegativeInt("n", "-1"));
    }

    @Test
    void hex64() throws IommuException {
        assertEquals("0x0000000000001000", Numbers.hex64(0x1000));
        assertEquals("0xffffffffffffffff", Numbers.hex64(-1));
    }
}
