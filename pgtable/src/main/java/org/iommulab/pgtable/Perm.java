package org.iommulab.pgtable;

/**
 * Effective permissions of a walked mapping, accumulated across levels by each format. Finer than
 * {@link org.iommulab.api.translation.Access} so that privilege rules (x86 U/S, ARM AP[1],
 * UXN/PXN) can be checked against a request.
 */
public final class Perm {
    /** Reads allowed. */
    public static final int READ = 1;
    /** Writes allowed. */
    public static final int WRITE = 2;
    /** Unprivileged instruction fetches allowed. */
    public static final int EXEC = 4;
    /** Unprivileged (user) requests allowed at all. */
    public static final int USER = 8;
    /** Privileged instruction fetches allowed. */
    public static final int PRIV_EXEC = 16;
    /**
     * Privileged writes allowed. Formats clear it with {@link #WRITE}, except where supervisor
     * writes ignore read-only pages (x86 with write protection off: CR0.WP = 0, VT-d WPE = 0).
     */
    public static final int PRIV_WRITE = 32;
    /**
     * Privileged reads allowed (besides {@link #READ}). Only formats where a supervisor may not read
     * some readable pages clear it: RISC-V user pages without SUM (privileged ISA §4.3.1).
     */
    public static final int PRIV_READ = 64;
    /** Everything: the starting value before the root table. */
    public static final int ALL = READ | WRITE | EXEC | USER | PRIV_EXEC | PRIV_WRITE | PRIV_READ;

    private Perm() {
    }

    /**
     * Checks a request against permissions.
     *
     * @param perms accumulated {@code Perm} bits
     * @param access {@link org.iommulab.api.translation.Access} bits of the request
     * @return the failing check, or {@code null} if the request is allowed
     */
    public static WalkFault check(int perms, int access) {
        boolean privileged = (access & org.iommulab.api.translation.Access.PRIV) != 0;
        if (!privileged && (perms & USER) == 0) {
            return WalkFault.PRIVILEGE;
        }
        if ((access & org.iommulab.api.translation.Access.READ) != 0
                && (perms & (privileged ? READ | PRIV_READ : READ)) != (privileged ? READ | PRIV_READ : READ)) {
            return WalkFault.READ;
        }
        if ((access & org.iommulab.api.translation.Access.WRITE) != 0 && (perms & (privileged ? PRIV_WRITE : WRITE)) == 0) {
            return WalkFault.WRITE;
        }
        if ((access & org.iommulab.api.translation.Access.EXEC) != 0 && (perms & (privileged ? PRIV_EXEC : EXEC)) == 0) {
            return WalkFault.EXEC;
        }
        return null;
    }

    /**
     * @param perms {@code Perm} bits
     * @return the {@link org.iommulab.api.translation.Access} bits a request may use (read, write, execute)
     */
    public static int toAccess(int perms) {
        int a = 0;
        if ((perms & READ) != 0) {
            a |= org.iommulab.api.translation.Access.READ;
        }
        if ((perms & WRITE) != 0) {
            a |= org.iommulab.api.translation.Access.WRITE;
        }
        if ((perms & (EXEC | PRIV_EXEC)) != 0) {
            a |= org.iommulab.api.translation.Access.EXEC;
        }
        return a;
    }
}
