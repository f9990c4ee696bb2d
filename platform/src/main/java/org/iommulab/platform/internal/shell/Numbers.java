package org.iommulab.platform.internal.shell;

import org.iommulab.api.errno.Errno;
import org.iommulab.api.errno.IommuException;

/**
 * Parses shell numbers: decimal or {@code 0x} hexadecimal, up to the full unsigned 64-bit range,
 * with an {@code EINVAL} error whose message names the argument.
 */
public final class Numbers {
    private Numbers() {
    }

    /**
     * @param what the argument's name, for the error message
     * @param text decimal or {@code 0x}/{@code 0X} hexadecimal, optionally with {@code _} separators
     * @return the value as an unsigned 64-bit number
     * @throws IommuException {@code EINVAL} if the text is not such a number or exceeds 64 bits
     */
    public static long u64(String what, String text) throws IommuException {
        if (text == null || text.isBlank()) {
            throw new IommuException(Errno.EINVAL, what + ": missing number");
        }
        String t = text.trim().replace("_", "");
        boolean hex = t.startsWith("0x") || t.startsWith("0X");
        String digits = hex ? t.substring(2) : t;
        try {
            // parseUnsignedLong accepts a leading '+'; a shell number is digits only.
            if (digits.isEmpty() || !Character.isLetterOrDigit(digits.charAt(0))) {
                throw new NumberFormatException();
            }
            return Long.parseUnsignedLong(digits, hex ? 16 : 10);
        } catch (NumberFormatException e) {
            throw new IommuException(Errno.EINVAL, what + ": '" + text
                    + "' is not a decimal or 0x-hex number within unsigned 64 bits");
        }
    }

    /**
     * @param what the argument's name
     * @param text as for {@link #u64}
     * @param max the largest allowed value (unsigned compare)
     * @return the value
     * @throws IommuException {@code EINVAL} if not a number or above {@code max}
     */
    public static long u64(String what, String text, long max) throws IommuException {
        long value = u64(what, text);
        if (Long.compareUnsigned(value, max) > 0) {
            throw new IommuException(Errno.EINVAL, String.format("%s: %s exceeds the maximum 0x%x", what, text, max));
        }
        return value;
    }

    /**
     * @param what the argument's name
     * @param text as for {@link #u64}, at most 2^32 - 1
     * @return the value as an (unsigned) int
     * @throws IommuException {@code EINVAL} if not a number or above 2^32 - 1
     */
    public static int u32(String what, String text) throws IommuException {
        return (int) u64(what, text, 0xffff_ffffL);
    }

    /**
     * @param what the argument's name
     * @param text as for {@link #u64}, at most {@link Integer#MAX_VALUE}
     * @return the value
     * @throws IommuException {@code EINVAL} if not a number or above {@link Integer#MAX_VALUE}
     */
    public static int nonNegativeInt(String what, String text) throws IommuException {
        return (int) u64(what, text, Integer.MAX_VALUE);
    }

    /**
     * @param value a 64-bit value
     * @return {@code 0x} and 16 hex digits
     */
    public static String hex64(long value) {
        return String.format("0x%016x", value);
    }
}
