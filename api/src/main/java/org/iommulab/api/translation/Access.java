package org.iommulab.api.translation;

/**
 * Bit flags of a DMA request's access type and of a translation's permissions. A request sets
 * {@link #READ} or {@link #WRITE} (an atomic sets both) and may add {@link #EXEC} (instruction
 * fetch) and {@link #PRIV} (privileged / supervisor request, VT-d PR, SMMUv3 PnU).
 */
public final class Access {
    /** Read access, or read permission. */
    public static final int READ = 1;
    /** Write access, or write permission. */
    public static final int WRITE = 2;
    /** Instruction fetch, or execute permission. */
    public static final int EXEC = 4;
    /** Privileged (supervisor) request. */
    public static final int PRIV = 8;
    /** Every defined bit. */
    public static final int ALL = READ | WRITE | EXEC | PRIV;

    private Access() {
    }

    /**
     * @param access a combination of the flags
     * @return a short form such as {@code "rw"}, {@code "r-x"} or {@code "rwxp"}, never {@code null}
     */
    public static String toString(int access) {
        StringBuilder b = new StringBuilder(4);
        b.append((access & READ) != 0 ? 'r' : '-');
        b.append((access & WRITE) != 0 ? 'w' : '-');
        b.append((access & EXEC) != 0 ? 'x' : '-');
        if ((access & PRIV) != 0) {
            b.append('p');
        }
        return b.toString();
    }
}
