package org.iommulab.pgtable.format;

import org.iommulab.api.errno.Errno;
import org.iommulab.api.errno.IommuException;
import org.iommulab.api.spi.IommuDomain;
import org.iommulab.api.translation.Stage;
import org.iommulab.pgtable.Perm;

/**
 * VMSAv8-64 stage 2 (as an SMMUv3 STE's S2TTB tables): input (IPA) size 64 - S2T0SZ, the start
 * level from S2SL0 and the granule (Arm ARM D8.2.4 / VTCR_EL2.SL0), and up to 16 concatenated
 * tables at the start level when the IPA size needs more index bits than one table resolves.
 *
 * <p>Stage-2 leaf attributes (Arm ARM D8.3.2): MemAttr 5:2, S2AP 7:6 (bit 6 read, bit 7 write), SH
 * 9:8, AF 10, DBM 51, XN 54. Stage 2 has no privilege distinction.
 */
public final class ArmStage2 extends ArmVmsa {
    /** S2AP[0]: read. */
    public static final long S2AP_READ = 1L << 6;
    /** S2AP[1]: write. */
    public static final long S2AP_WRITE = 1L << 7;
    /** MemAttr: normal memory, write-back cacheable. */
    public static final long MEMATTR_NORMAL_WB = 0xfL << 2;
    /** Shareability: inner shareable. */
    public static final long SH_INNER = 3L << 8;
    /** Execute never. */
    public static final long XN = 1L << 54;

    private ArmStage2(ArmGranule granule, int inputBits, int outputBits, int startLevel, boolean ha, boolean hd,
            boolean affd) {
        super(granule, inputBits, outputBits, startLevel, ha, hd, affd);
    }

    /**
     * @param granule the granule (from S2TG)
     * @param s2t0sz IPA size is 64 - s2t0sz bits
     * @param sl0 S2SL0, the encoded start level (4 KiB: 0 = L2, 1 = L1, 2 = L0; 16 KiB and 64 KiB:
     *     0 = L3, 1 = L2, 2 = L1, and for 16 KiB 3 = L0)
     * @param outputBits output size from S2PS, 32 to 48
     * @param ha hardware access flag update (S2HA)
     * @param hd hardware dirty state update (S2HD), meaningful with {@code ha}
     * @param affd access flag faults disabled (S2AFFD)
     * @return the format
     * @throws IommuException {@code EINVAL} when S2SL0 is reserved or inconsistent with the IPA
     *     size (the start level would need fewer than 1 or more than 16 concatenated tables)
     */
    public static ArmStage2 of(ArmGranule granule, int s2t0sz, int sl0, int outputBits, boolean ha, boolean hd,
            boolean affd) throws IommuException {
        checkOutputBits(outputBits);
        if (s2t0sz < 16 || s2t0sz > 39) {
            throw new IommuException(Errno.EINVAL, "S2T0SZ must be 16 to 39 (48- to 25-bit IPA), not " + s2t0sz);
        }
        int startLevel;
        if (granule == ArmGranule.G4K) {
            startLevel = sl0 >= 0 && sl0 <= 2 ? 2 - sl0 : -1;
        } else {
            int max = granule == ArmGranule.G16K ? 3 : 2;
            startLevel = sl0 >= 0 && sl0 <= max ? 3 - sl0 : -1;
        }
        if (startLevel < 0) {
            throw new IommuException(Errno.EINVAL, "S2SL0 " + sl0 + " is reserved for " + granule);
        }
        int inputBits = 64 - s2t0sz;
        int levels = 4 - startLevel;
        int rootBits = inputBits - (granule.shift() + granule.bitsPerLevel() * (levels - 1));
        if (rootBits < 1 || rootBits > granule.bitsPerLevel() + 4) {
            throw new IommuException(Errno.EINVAL, "S2SL0 " + sl0 + " (start level " + startLevel + ") does not fit a "
                    + inputBits + "-bit IPA with " + granule + " (" + rootBits + " root index bits)");
        }
        return new ArmStage2(granule, inputBits, outputBits, startLevel, ha, hd && ha, affd);
    }

    /** @return the number of concatenated tables at the start level (1 when none) */
    public int concatenatedTables() {
        return 1 << Math.max(0, rootBits - granule.bitsPerLevel());
    }

    @Override
    public String name() {
        return "VMSAv8-64 stage 2, " + granule + ", " + inputBits + "-bit IPA, start level " + startLevel
                + (concatenatedTables() > 1 ? ", " + concatenatedTables() + " concatenated tables" : "");
    }

    @Override
    public Stage stage() {
        return Stage.STAGE2;
    }

    @Override
    public int permissions(int inherited, long entry, int depth, boolean leaf) {
        if (!leaf) {
            return inherited;
        }
        int p = inherited;
        if ((entry & S2AP_READ) == 0) {
            p &= ~Perm.READ;
        }
        if ((entry & S2AP_WRITE) == 0 && !dirtyByModifier(entry)) {
            p &= ~(Perm.WRITE | Perm.PRIV_WRITE);
        }
        if ((entry & XN) != 0) {
            p &= ~(Perm.EXEC | Perm.PRIV_EXEC);
        }
        return p;
    }

    @Override
    public long markUsed(long entry, int depth, boolean leaf, boolean write) {
        if (!leaf) {
            return entry;
        }
        long e = entry;
        if (hardwareAccess) {
            e |= AF;
        }
        if (write && (e & S2AP_WRITE) == 0 && dirtyByModifier(e)) {
            e |= S2AP_WRITE; // writable-dirty
        }
        return e;
    }

    @Override
    public long encodeLeaf(long address, int depth, int prot) {
        long e = address | leafType(depth) | AF | SH_INNER | MEMATTR_NORMAL_WB;
        if ((prot & IommuDomain.PROT_READ) != 0) {
            e |= S2AP_READ;
        }
        if ((prot & IommuDomain.PROT_WRITE) != 0) {
            e |= S2AP_WRITE;
        }
        if ((prot & IommuDomain.PROT_EXEC) == 0) {
            e |= XN;
        }
        return e;
    }
}
