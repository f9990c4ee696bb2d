package org.iommulab.pgtable.format;

import org.iommulab.api.errno.Errno;
import org.iommulab.api.errno.IommuException;
import org.iommulab.api.spi.IommuDomain;
import org.iommulab.api.translation.Stage;
import org.iommulab.pgtable.PageTableFormat;
import org.iommulab.pgtable.Perm;
import org.iommulab.pgtable.WalkFault;

/**
 * RISC-V page tables: Sv39, Sv48 and Sv57 as the first stage (RISC-V privileged ISA §4.4-4.6;
 * the RISC-V IOMMU's first-stage translation, IOMMU spec §2.3) and Sv39x4, Sv48x4 and Sv57x4 as
 * the G-stage (hypervisor extension §9.5, IOMMU spec §2.3 "second stage"): tables of 512 8-byte
 * PTEs, 4 KiB pages, and a leaf possible at every level (megapages, gigapages, terapages,
 * petapages). The G-stage widens the root by 2 bits: a 16 KiB root of 2048 entries.
 *
 * <p>PTE layout (privileged ISA §4.4.1, "Sv39 page table entry"): V bit 0, R 1, W 2, X 3, U 4,
 * G 5, A 6, D 7, RSW 9:8, PPN 53:10, reserved 60:54, PBMT 62:61 (Svpbmt), N 63 (Svnapot).
 * <ul>
 * <li>V = 0: not valid. R = W = X = 0: a pointer to the next table. Otherwise a leaf.</li>
 * <li>Reserved, hence a page fault (§4.3.2 step 3): W = 1 with R = 0; bits 63:54 (Svpbmt and
 * Svnapot are not implemented); D, A or U in a pointer; a pointer at the last level; a superpage
 * whose low PPN bits are not zero (step 6, misaligned superpage).</li>
 * <li>A and D (step 7): with hardware updating disabled (Svade; the IOMMU's DC.tc.SADE / GADE
 * clear) a leaf with A = 0 faults, and a write to a leaf with D = 0 faults; with it enabled the
 * walker sets them.</li>
 * <li>First stage: a U = 1 page is for user requests; a supervisor request may read or write it
 * only with SUM (§4.3.1, the IOMMU's PDT entry pc.ta.SUM) and never execute it; a U = 0 page is
 * for supervisor requests only.</li>
 * <li>G-stage: every access is a user access, so a leaf with U = 0 faults (§9.5.1).</li>
 * <li>Input addresses: the first stage sign-extends (bits 63 down to the width must equal the top
 * bit); the G-stage requires the bits above its width (41, 50 or 59) to be zero.</li>
 * </ul>
 */
public final class RiscvPaging implements PageTableFormat {
    /** The paging mode: Sv39, Sv48 or Sv57 (G-stage: Sv39x4, Sv48x4, Sv57x4). */
    public enum Mode {
        /** Three levels, 39-bit virtual addresses. */
        SV39(3),
        /** Four levels, 48-bit virtual addresses. */
        SV48(4),
        /** Five levels, 57-bit virtual addresses. */
        SV57(5);

        final int levels;

        Mode(int levels) {
            this.levels = levels;
        }
    }

    /** Valid. */
    public static final long V = 1L;
    /** Readable. */
    public static final long R = 1L << 1;
    /** Writable. */
    public static final long W = 1L << 2;
    /** Executable. */
    public static final long X = 1L << 3;
    /** User: accessible to user requests (first stage); must be set in every G-stage leaf. */
    public static final long U = 1L << 4;
    /** Global. */
    public static final long G = 1L << 5;
    /** Accessed. */
    public static final long A = 1L << 6;
    /** Dirty. */
    public static final long D = 1L << 7;
    /** Bits 63:54: reserved, PBMT and N. */
    static final long HIGH_RESERVED = 0xffc0_0000_0000_0000L;
    private static final long PPN_MASK = (1L << 44) - 1;
    private static final String[] NAMES = {"level-4 PTE", "level-3 PTE", "level-2 PTE", "level-1 PTE", "level-0 PTE"};

    private final Mode mode;
    private final boolean gStage;
    private final int outputBits;
    private final boolean hardwareAd;
    private final boolean sum;
    private final boolean userPages;

    private RiscvPaging(Mode mode, boolean gStage, int outputBits, boolean hardwareAd, boolean sum, boolean userPages) {
        this.mode = mode;
        this.gStage = gStage;
        this.outputBits = outputBits;
        this.hardwareAd = hardwareAd;
        this.sum = sum;
        this.userPages = userPages;
    }

    /**
     * A first-stage (S or VS-stage) table.
     *
     * @param mode Sv39, Sv48 or Sv57
     * @param outputBits physical (or, nested, guest-physical) address width, 32 to 56
     * @param hardwareAd the walker sets A and D (Svadu; IOMMU DC.tc.SADE); otherwise they fault
     * @param sum supervisor requests may read and write user pages (SUM)
     * @param userPages {@link #encodeLeaf} makes user pages (U = 1, as a process's table has) rather
     *     than supervisor pages (an IOVA table for a device's DMA, which a supervisor may execute)
     * @return the format
     * @throws IommuException {@code EINVAL} for an output width outside 32..56
     */
    public static RiscvPaging firstStage(Mode mode, int outputBits, boolean hardwareAd, boolean sum, boolean userPages)
            throws IommuException {
        return new RiscvPaging(mode, false, checkOutput(outputBits), hardwareAd, sum, userPages);
    }

    /**
     * A G-stage table (Sv39x4, Sv48x4, Sv57x4).
     *
     * @param mode the mode it widens by 2 bits
     * @param outputBits physical address width, 32 to 56
     * @param hardwareAd the walker sets A and D (IOMMU DC.tc.GADE); otherwise they fault
     * @return the format
     * @throws IommuException {@code EINVAL} for an output width outside 32..56
     */
    public static RiscvPaging gStage(Mode mode, int outputBits, boolean hardwareAd) throws IommuException {
        return new RiscvPaging(mode, true, checkOutput(outputBits), hardwareAd, false, true);
    }

    private static int checkOutput(int outputBits) throws IommuException {
        if (outputBits < 32 || outputBits > 56) {
            throw new IommuException(Errno.EINVAL, "RISC-V physical addresses are 32 to 56 bits, not " + outputBits);
        }
        return outputBits;
    }

    /** @return the mode */
    public Mode mode() {
        return mode;
    }

    /** @return {@code true} for a G-stage (x4) table */
    public boolean isGStage() {
        return gStage;
    }

    @Override
    public String name() {
        return "RISC-V " + (gStage ? mode.name().charAt(0) + mode.name().substring(1).toLowerCase() + "x4 G-stage"
                : mode.name().charAt(0) + mode.name().substring(1).toLowerCase() + " first stage");
    }

    @Override
    public Stage stage() {
        return gStage ? Stage.STAGE2 : Stage.STAGE1;
    }

    @Override
    public int levels() {
        return mode.levels;
    }

    @Override
    public int inputBits() {
        return 12 + 9 * mode.levels + (gStage ? 2 : 0);
    }

    @Override
    public int outputBits() {
        return outputBits;
    }

    @Override
    public int granuleShift() {
        return 12;
    }

    @Override
    public int indexShift(int depth) {
        return 12 + 9 * (mode.levels - 1 - depth);
    }

    @Override
    public int indexBits(int depth) {
        return depth == 0 && gStage ? 11 : 9;
    }

    @Override
    public String levelName(int depth) {
        return NAMES[NAMES.length - mode.levels + depth];
    }

    @Override
    public WalkFault checkInput(long address) {
        int width = inputBits();
        if (gStage) {
            return address >>> width == 0 ? null : WalkFault.INPUT_RANGE;
        }
        long high = address >> (width - 1);
        return high == 0 || high == -1 ? null : WalkFault.NON_CANONICAL;
    }

    @Override
    public EntryType classify(long entry, int depth) {
        if ((entry & V) == 0) {
            return EntryType.INVALID;
        }
        if ((entry & HIGH_RESERVED) != 0 || (entry & (R | W)) == W) {
            return EntryType.RESERVED;
        }
        if ((entry & (R | W | X)) == 0) {
            // A pointer: D, A and U are reserved in it, and the last level holds leaves only.
            return (entry & (D | A | U)) != 0 || depth == mode.levels - 1 ? EntryType.RESERVED : EntryType.TABLE;
        }
        long ppnBelowPage = ((1L << (indexShift(depth) - 12)) - 1) << 10;
        return (entry & ppnBelowPage) != 0 ? EntryType.RESERVED : EntryType.LEAF;
    }

    @Override
    public long tableAddress(long entry, int depth) {
        return ((entry >>> 10) & PPN_MASK) << 12;
    }

    @Override
    public long leafAddress(long entry, int depth) {
        return tableAddress(entry, depth) & -(1L << indexShift(depth));
    }

    @Override
    public int permissions(int inherited, long entry, int depth, boolean leaf) {
        if (!leaf) {
            return inherited; // pointers carry no permissions
        }
        int p = Perm.USER | Perm.PRIV_READ;
        if ((entry & R) != 0) {
            p |= Perm.READ;
        }
        if ((entry & W) != 0 && (hardwareAd || (entry & D) != 0)) {
            p |= Perm.WRITE | Perm.PRIV_WRITE; // Svade: a write to a clean page faults
        }
        if ((entry & X) != 0) {
            p |= Perm.EXEC | Perm.PRIV_EXEC;
        }
        if (gStage) {
            return (entry & U) != 0 ? p & inherited : 0; // G-stage accesses are user accesses
        }
        if ((entry & U) == 0) {
            p &= ~(Perm.USER | Perm.EXEC); // supervisor pages
        } else {
            p &= ~Perm.PRIV_EXEC; // a supervisor never executes user pages
            if (!sum) {
                p &= ~(Perm.PRIV_READ | Perm.PRIV_WRITE);
            }
        }
        return p & inherited;
    }

    @Override
    public boolean accessFlagFault(long entry, int depth) {
        return !hardwareAd && (entry & A) == 0;
    }

    @Override
    public long markUsed(long entry, int depth, boolean leaf, boolean write) {
        if (!leaf || !hardwareAd) {
            return entry;
        }
        return entry | A | (write ? D : 0);
    }

    @Override
    public boolean leafAllowed(int depth) {
        return true;
    }

    @Override
    public long encodeTable(long table, int depth) {
        return (table >>> 12) << 10 | V;
    }

    @Override
    public long encodeLeaf(long address, int depth, int prot) {
        long e = (address >>> 12) << 10 | V | A | (userPages ? U : 0);
        if ((prot & IommuDomain.PROT_READ) != 0) {
            e |= R;
        }
        if ((prot & IommuDomain.PROT_WRITE) != 0) {
            e |= W | D | R; // W without R is reserved; D preset so no write faults on a clean page
        }
        if ((prot & IommuDomain.PROT_EXEC) != 0) {
            e |= X;
        }
        return e;
    }

    @Override
    public String flags(long entry, int depth) {
        return ((entry & U) != 0 ? " U" : "") + ((entry & G) != 0 ? " G" : "") + ((entry & A) != 0 ? " A" : "")
                + ((entry & D) != 0 ? " D" : "");
    }
}
