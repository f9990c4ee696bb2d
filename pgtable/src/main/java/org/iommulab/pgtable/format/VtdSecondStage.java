package org.iommulab.pgtable.format;

import org.iommulab.api.errno.Errno;
import org.iommulab.api.errno.IommuException;
import org.iommulab.api.spi.IommuDomain;
import org.iommulab.api.translation.Stage;
import org.iommulab.pgtable.Perm;
import org.iommulab.pgtable.WalkFault;

/**
 * Intel VT-d second-stage tables: 3, 4 or 5 levels (39-, 48- or 57-bit guest addresses, from the
 * AW field: levels = 2 + AW) of 512 8-byte entries, 4 KiB pages and 2 MiB / 1 GiB super pages.
 *
 * <p>Entry layout (VT-d spec §9.8, "Second-Stage Paging Entries"): R bit 0, W 1, X 2 (honoured when
 * execute requests are enabled), EMT 5:3, IPAT 6, PS 7 (SL-PDPE: 1 GiB, SL-PDE: 2 MiB; reserved
 * above), A 8 and D 9 (when A/D tracking is enabled), SNP 11, address bits HAW-1:12, TM 62. An
 * entry is not present when R and W are both 0. R, W and X are ANDed across levels.
 */
public final class VtdSecondStage extends IntelPaging {
    /** Read. */
    public static final long R = 1L;
    /** Write. */
    public static final long W = 1L << 1;
    /** Execute. */
    public static final long X = 1L << 2;
    /** Page size: this SL-PDPE / SL-PDE maps a super page. */
    public static final long PS = 1L << 7;
    /** Accessed (with A/D tracking). */
    public static final long A = 1L << 8;
    /** Dirty (with A/D tracking). */
    public static final long D = 1L << 9;
    /** Snoop. */
    public static final long SNP = 1L << 11;
    /** Transient mapping. */
    public static final long TM = 1L << 62;

    private static final String[] NAMES = {"SL-PML5E", "SL-PML4E", "SL-PDPE", "SL-PDE", "SL-PTE"};

    private final boolean pages2m;
    private final boolean pages1g;
    private final boolean executeEnabled;
    private final boolean accessDirty;

    private VtdSecondStage(int levels, int hostBits, boolean pages2m, boolean pages1g, boolean executeEnabled,
            boolean accessDirty) {
        super(levels, hostBits);
        this.pages2m = pages2m;
        this.pages1g = pages1g;
        this.executeEnabled = executeEnabled;
        this.accessDirty = accessDirty;
    }

    /**
     * @param aw the AW field of the context or PASID entry: 1 (39-bit, 3-level), 2 (48-bit, 4-level)
     *     or 3 (57-bit, 5-level)
     * @param hostBits host address width (HAW, from CAP.MGAW), 32 to 52
     * @param pages2m 2 MiB super pages supported (CAP.SLLPS bit 0)
     * @param pages1g 1 GiB super pages supported (CAP.SLLPS bit 1)
     * @param executeEnabled the X bit is honoured (execute requests enabled)
     * @param accessDirty A/D flags are set by hardware (second-stage A/D enable)
     * @return the format
     * @throws IommuException {@code EINVAL} for an AW the hardware does not support
     */
    public static VtdSecondStage of(int aw, int hostBits, boolean pages2m, boolean pages1g, boolean executeEnabled,
            boolean accessDirty) throws IommuException {
        if (aw < 1 || aw > 3) {
            throw new IommuException(Errno.EINVAL, "second-stage AW must be 1 to 3 (3- to 5-level), not " + aw);
        }
        if (hostBits < 32 || hostBits > 52) {
            throw new IommuException(Errno.EINVAL, "host address width must be 32 to 52 bits, not " + hostBits);
        }
        return new VtdSecondStage(aw + 2, hostBits, pages2m, pages1g, executeEnabled, accessDirty);
    }

    @Override
    public String name() {
        return "VT-d second stage, " + levels + "-level";
    }

    @Override
    public Stage stage() {
        return Stage.STAGE2;
    }

    @Override
    public String levelName(int depth) {
        return NAMES[5 - levels + depth];
    }

    @Override
    public WalkFault checkInput(long address) {
        return address >>> inputBits() == 0 ? null : WalkFault.INPUT_RANGE;
    }

    @Override
    public EntryType classify(long entry, int depth) {
        if ((entry & (R | W)) == 0) {
            return EntryType.INVALID;
        }
        // Address bits 51:HAW and bit 63 are reserved; in a super page bit 12 is reserved too.
        long reserved = reservedAddressBits() | (1L << 63);
        int level = level(depth);
        if (level > 1 && (entry & PS) != 0) {
            reserved |= 1L << 12;
        }
        return classifyPresent(entry, depth, reserved, (level == 2 && pages2m) || (level == 3 && pages1g));
    }

    @Override
    public int permissions(int inherited, long entry, int depth, boolean leaf) {
        int p = inherited;
        if ((entry & R) == 0) {
            p &= ~Perm.READ;
        }
        if ((entry & W) == 0) {
            p &= ~(Perm.WRITE | Perm.PRIV_WRITE);
        }
        if (executeEnabled && (entry & X) == 0) {
            p &= ~(Perm.EXEC | Perm.PRIV_EXEC);
        }
        return p;
    }

    @Override
    public boolean accessFlagFault(long entry, int depth) {
        return false;
    }

    @Override
    public long markUsed(long entry, int depth, boolean leaf, boolean write) {
        if (!accessDirty) {
            return entry;
        }
        return entry | A | (leaf && write ? D : 0);
    }

    @Override
    public boolean leafAllowed(int depth) {
        int level = level(depth);
        return level == 1 || (level == 2 && pages2m) || (level == 3 && pages1g);
    }

    @Override
    public long encodeTable(long table, int depth) {
        return table | R | W | (executeEnabled ? X : 0);
    }

    @Override
    public long encodeLeaf(long address, int depth, int prot) {
        long e = address;
        if ((prot & IommuDomain.PROT_READ) != 0) {
            e |= R;
        }
        if ((prot & IommuDomain.PROT_WRITE) != 0) {
            e |= W;
        }
        if (executeEnabled && (prot & IommuDomain.PROT_EXEC) != 0) {
            e |= X;
        }
        if (level(depth) > 1) {
            e |= PS;
        }
        return e;
    }

    @Override
    public String flags(long entry, int depth) {
        return ((entry & A) != 0 ? " A" : "") + ((entry & D) != 0 ? " D" : "") + ((entry & SNP) != 0 ? " SNP" : "");
    }
}
