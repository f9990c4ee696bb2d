package org.iommulab.pgtable.format;

import org.iommulab.api.errno.Errno;
import org.iommulab.api.errno.IommuException;
import org.iommulab.api.spi.IommuDomain;
import org.iommulab.api.translation.Stage;
import org.iommulab.pgtable.Perm;

/**
 * VMSAv8-64 stage 1 (as an SMMUv3 context descriptor's TTB0/TTB1 tables): input size 64 - TxSZ,
 * start level from the granule and input size, output size from IPS (CD.IPS).
 *
 * <p>Stage-1 attributes (Arm ARM D8.3.1, D8.4): leaf AttrIndx 4:2, NS 5, AP[2:1] 7:6 (AP[1] grants
 * EL0 access, AP[2] makes the page read-only), SH 9:8, AF 10, nG 11, DBM 51, Contiguous 52, PXN
 * 53, UXN 54; table PXNTable 59, UXNTable 60, APTable 62:61 (bit 61 removes EL0 access, bit 62
 * removes write permission below). Memory writable at EL0 (AP[2:1] = 0b01 and no APTable bit above)
 * is privileged execute never, as in the EL1&amp;0 translation regime.
 */
public final class ArmStage1 extends ArmVmsa {
    /** AP[1]: unprivileged (EL0) access. */
    public static final long AP_UNPRIV = 1L << 6;
    /** AP[2]: read-only. */
    public static final long AP_RDONLY = 1L << 7;
    /** Shareability: inner shareable. */
    public static final long SH_INNER = 3L << 8;
    /** Privileged execute never. */
    public static final long PXN = 1L << 53;
    /** Unprivileged execute never. */
    public static final long UXN = 1L << 54;
    /** Table: privileged execute never below. */
    public static final long PXN_TABLE = 1L << 59;
    /** Table: unprivileged execute never below. */
    public static final long UXN_TABLE = 1L << 60;
    /** Table: no EL0 access below (APTable[0]). */
    public static final long AP_TABLE_NO_EL0 = 1L << 61;
    /** Table: no write access below (APTable[1]). */
    public static final long AP_TABLE_RDONLY = 1L << 62;

    private ArmStage1(ArmGranule granule, int inputBits, int outputBits, int startLevel, boolean ha, boolean hd,
            boolean affd) {
        super(granule, inputBits, outputBits, startLevel, ha, hd, affd);
    }

    /**
     * @param granule the granule (from TG0/TG1)
     * @param txsz T0SZ or T1SZ: input size is 64 - txsz bits, 16 to 39 (4 KiB), 16 to 39 (16 KiB: 17 to 39
     *     if fewer than 4 levels), 16 to 39 (64 KiB)
     * @param outputBits output size from IPS, 32 to 48
     * @param ha hardware access flag update (CD.HA)
     * @param hd hardware dirty state update (CD.HD), meaningful with {@code ha}
     * @param affd access flag faults disabled (CD.AFFD): a clear AF is not a fault
     * @return the format
     * @throws IommuException {@code EINVAL} for sizes outside the architecture's range
     */
    public static ArmStage1 of(ArmGranule granule, int txsz, int outputBits, boolean ha, boolean hd, boolean affd)
            throws IommuException {
        if (txsz < 16 || txsz > 39) {
            throw new IommuException(Errno.EINVAL, "TxSZ must be 16 to 39 (48- to 25-bit input), not " + txsz);
        }
        checkOutputBits(outputBits);
        int inputBits = 64 - txsz;
        int levels = (inputBits - granule.shift() + granule.bitsPerLevel() - 1) / granule.bitsPerLevel();
        int startLevel = 4 - levels;
        if (startLevel < 0 || (granule == ArmGranule.G64K && startLevel < 1)) {
            throw new IommuException(Errno.EINVAL, "input size " + inputBits + " needs too many levels for " + granule);
        }
        return new ArmStage1(granule, inputBits, outputBits, startLevel, ha, hd && ha, affd);
    }

    @Override
    public String name() {
        return "VMSAv8-64 stage 1, " + granule + ", " + inputBits + "-bit input, start level " + startLevel;
    }

    @Override
    public Stage stage() {
        return Stage.STAGE1;
    }

    @Override
    public int permissions(int inherited, long entry, int depth, boolean leaf) {
        int p = inherited;
        if (!leaf) {
            if ((entry & AP_TABLE_NO_EL0) != 0) {
                p &= ~Perm.USER;
            }
            if ((entry & AP_TABLE_RDONLY) != 0) {
                p &= ~(Perm.WRITE | Perm.PRIV_WRITE);
            }
            if ((entry & UXN_TABLE) != 0) {
                p &= ~Perm.EXEC;
            }
            if ((entry & PXN_TABLE) != 0) {
                p &= ~Perm.PRIV_EXEC;
            }
            return p;
        }
        if ((entry & AP_UNPRIV) == 0) {
            p &= ~Perm.USER;
        }
        if ((entry & AP_RDONLY) != 0 && !dirtyByModifier(entry)) {
            p &= ~(Perm.WRITE | Perm.PRIV_WRITE);
        }
        if ((entry & AP_UNPRIV) != 0 && (entry & AP_RDONLY) == 0 && (inherited & Perm.USER) != 0
                && (inherited & Perm.WRITE) != 0) {
            // EL1&0 regime: memory writable at EL0 is never executable at EL1 (AP[2:1] = 0b01). Writable
            // at EL0 after the hierarchical permissions: APTable[0] (no EL0 access) or APTable[1] (read
            // only) above lift it (Arm ARM D8.4.1, AArch64.S1DirectBasePermissions:
            // px = NOT(pxn OR pxn_table OR uw), uw taken after APTable is applied).
            p &= ~Perm.PRIV_EXEC;
        }
        if ((entry & UXN) != 0) {
            p &= ~Perm.EXEC;
        }
        if ((entry & PXN) != 0) {
            p &= ~Perm.PRIV_EXEC;
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
        if (write && (e & AP_RDONLY) != 0 && dirtyByModifier(e)) {
            e &= ~AP_RDONLY; // writable-dirty
        }
        return e;
    }

    @Override
    public long encodeLeaf(long address, int depth, int prot) {
        long e = address | leafType(depth) | AF | SH_INNER | AP_UNPRIV;
        if ((prot & IommuDomain.PROT_WRITE) == 0) {
            e |= AP_RDONLY;
        }
        if ((prot & IommuDomain.PROT_EXEC) == 0) {
            e |= UXN | PXN;
        }
        return e;
    }
}
