package org.iommulab.pgtable.format;

import org.iommulab.api.errno.Errno;
import org.iommulab.api.errno.IommuException;
import org.iommulab.api.spi.IommuDomain;
import org.iommulab.api.translation.Stage;
import org.iommulab.pgtable.Perm;
import org.iommulab.pgtable.WalkFault;

/**
 * x86-64 IA-32e paging as the VT-d first stage uses it: 4-level (48-bit) or 5-level (57-bit)
 * tables of 512 8-byte entries, 4 KiB pages, 2 MiB pages in a PD, optionally 1 GiB pages in a PDPT.
 *
 * <p>Entry layout (Intel SDM Vol. 3A §4.5, Tables 4-15 to 4-20; VT-d spec §3.6 "First-Stage
 * Translation"): P bit 0, R/W 1, U/S 2, PWT 3, PCD 4, A 5, D 6 (leaf), PS 7 (PDPT/PD: page; PML5/PML4:
 * reserved; PT: PAT), G 8, address bits M-1:12 (M = MAXPHYADDR), XD 63 (reserved unless
 * execute-disable is enabled). R/W and U/S are ANDed and XD ORed across levels. Input addresses must
 * be canonical: bits 63 to 47 (57-bit: 63 to 56) equal.
 */
public final class X86FirstStage extends IntelPaging {
    /** Present. */
    public static final long P = 1L;
    /** Read/write: writes allowed when set at every level. */
    public static final long RW = 1L << 1;
    /** User/supervisor: user requests allowed when set at every level. */
    public static final long US = 1L << 2;
    /** Page-level write through. */
    public static final long PWT = 1L << 3;
    /** Page-level cache disable. */
    public static final long PCD = 1L << 4;
    /** Accessed. */
    public static final long A = 1L << 5;
    /** Dirty (leaf only). */
    public static final long D = 1L << 6;
    /** Page size: this PDPT/PD entry maps a 1 GiB / 2 MiB page. */
    public static final long PS = 1L << 7;
    /** Global. */
    public static final long G = 1L << 8;
    /** Execute disable. */
    public static final long XD = 1L << 63;

    private static final String[] NAMES_5 = {"PML5E", "PML4E", "PDPTE", "PDE", "PTE"};
    private static final String[] NAMES_4 = {"PML4E", "PDPTE", "PDE", "PTE"};

    private final boolean pages1g;
    private final boolean executeDisable;
    private final boolean userPages;
    private final boolean writeProtect;

    private X86FirstStage(int levels, int physBits, boolean pages1g, boolean executeDisable, boolean userPages,
            boolean writeProtect) {
        super(levels, physBits);
        this.pages1g = pages1g;
        this.executeDisable = executeDisable;
        this.userPages = userPages;
        this.writeProtect = writeProtect;
    }

    /**
     * @param levels 4 (48-bit input) or 5 (57-bit input)
     * @param physBits MAXPHYADDR: output address width, 32 to 52
     * @param pages1g {@code true} if 1 GiB pages are supported (VT-d CAP.FS1GP)
     * @param executeDisable {@code true} if XD is honoured (otherwise bit 63 is reserved)
     * @param userPages {@code true} if {@link #encodeLeaf} marks pages user-accessible (U/S), as Linux
     *     does for first-stage IOVA tables
     * @return the format
     * @throws IommuException {@code EINVAL} for an unsupported geometry
     */
    public static X86FirstStage of(int levels, int physBits, boolean pages1g, boolean executeDisable, boolean userPages)
            throws IommuException {
        if (levels != 4 && levels != 5) {
            throw new IommuException(Errno.EINVAL, "first-stage paging has 4 or 5 levels, not " + levels);
        }
        if (physBits < 32 || physBits > 52) {
            throw new IommuException(Errno.EINVAL, "MAXPHYADDR must be 32 to 52 bits, not " + physBits);
        }
        return of(levels, physBits, pages1g, executeDisable, userPages, true);
    }

    /**
     * @param levels 4 or 5
     * @param physBits MAXPHYADDR, 32 to 52
     * @param pages1g 1 GiB pages supported
     * @param executeDisable XD honoured
     * @param userPages {@link #encodeLeaf} sets U/S
     * @param writeProtect supervisor writes honour R/W (CR0.WP = 1; VT-d PASID entry WPE = 1); when
     *     {@code false}, privileged writes may write read-only pages
     * @return the format
     * @throws IommuException {@code EINVAL} for an unsupported geometry
     */
    public static X86FirstStage of(int levels, int physBits, boolean pages1g, boolean executeDisable, boolean userPages,
            boolean writeProtect) throws IommuException {
        if (levels != 4 && levels != 5) {
            throw new IommuException(Errno.EINVAL, "first-stage paging has 4 or 5 levels, not " + levels);
        }
        if (physBits < 32 || physBits > 52) {
            throw new IommuException(Errno.EINVAL, "MAXPHYADDR must be 32 to 52 bits, not " + physBits);
        }
        return new X86FirstStage(levels, physBits, pages1g, executeDisable, userPages, writeProtect);
    }

    @Override
    public String name() {
        return "x86-64 first stage, " + levels + "-level";
    }

    @Override
    public Stage stage() {
        return Stage.STAGE1;
    }

    @Override
    public String levelName(int depth) {
        return (levels == 5 ? NAMES_5 : NAMES_4)[depth];
    }

    @Override
    public WalkFault checkInput(long address) {
        // Canonical: bits 63..(width-1) are copies of bit width-1.
        int width = inputBits();
        long high = address >> (width - 1);
        return high == 0 || high == -1 ? null : WalkFault.NON_CANONICAL;
    }

    @Override
    public EntryType classify(long entry, int depth) {
        if ((entry & P) == 0) {
            return EntryType.INVALID;
        }
        // Address bits 51:M are reserved; bits 62:52 are ignored; bit 63 is XD or reserved.
        long reserved = reservedAddressBits() | (executeDisable ? 0 : XD);
        int level = level(depth);
        return classifyPresent(entry, depth, reserved, level == 2 || (level == 3 && pages1g));
    }

    @Override
    public int permissions(int inherited, long entry, int depth, boolean leaf) {
        int p = inherited;
        if ((entry & RW) == 0) {
            p &= ~(Perm.WRITE | (writeProtect ? Perm.PRIV_WRITE : 0));
        }
        if ((entry & US) == 0) {
            p &= ~Perm.USER;
        }
        if (executeDisable && (entry & XD) != 0) {
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
        return entry | A | (leaf && write ? D : 0);
    }

    @Override
    public boolean leafAllowed(int depth) {
        int level = level(depth);
        return level == 1 || level == 2 || (level == 3 && pages1g);
    }

    @Override
    public long encodeTable(long table, int depth) {
        // Tables grant everything; the leaf decides.
        return table | P | RW | US;
    }

    @Override
    public long encodeLeaf(long address, int depth, int prot) {
        long e = address | P | A;
        if ((prot & IommuDomain.PROT_WRITE) != 0) {
            e |= RW | D; // preset A/D as Linux does, so DMA need not update them
        }
        if (userPages) {
            e |= US;
        }
        if (level(depth) > 1) {
            e |= PS;
        }
        if (executeDisable && (prot & IommuDomain.PROT_EXEC) == 0) {
            e |= XD;
        }
        return e;
    }

    @Override
    public String flags(long entry, int depth) {
        return ((entry & A) != 0 ? " A" : "") + ((entry & D) != 0 ? " D" : "") + ((entry & G) != 0 ? " G" : "");
    }

    /** @return whether 1 GiB pages are supported */
    public boolean pages1g() {
        return pages1g;
    }
}
