package org.iommulab.idxd.internal.hw;

import org.iommulab.api.idxd.Dsa;

/**
 * The BAR0 register map (Linux {@code drivers/dma/idxd/registers.h}; DSA spec chapter 9) and the
 * capability values this model reports.
 */
public final class DsaRegisters {
    private DsaRegisters() {
    }

    public static final long MMIO_SIZE = 0x1000;

    public static final int VERSION = 0x00;
    public static final int GENCAP = 0x10;
    public static final int WQCAP = 0x20;
    public static final int GRPCAP = 0x30;
    public static final int ENGCAP = 0x38;
    public static final int OPCAP = 0x40;
    public static final int TABLE_OFFSET = 0x60;
    public static final int GENCFG = 0x80;
    public static final int GENCTRL = 0x88;
    public static final int GENSTS = 0x90;
    public static final int INTCAUSE = 0x98;
    public static final int CMD = 0xa0;
    public static final int CMDSTS = 0xa8;
    public static final int CMDCAP = 0xb0;
    public static final int SWERR = 0xc0;

    /** GRPCFG table at 0x400 (TABLE_OFFSET.grpcfg = 4, in units of 0x100), 64 bytes per group. */
    public static final int GRPCFG_BASE = 0x400;
    public static final int GRPCFG_SIZE = 64;
    /** WQCFG table at 0x500 (TABLE_OFFSET.wqcfg = 5), 32 bytes per queue (WQCAP.wqcfg_size 0). */
    public static final int WQCFG_BASE = 0x500;

    public static final int NUM_WQS = 8;
    public static final int NUM_GROUPS = 4;
    public static final int NUM_ENGINES = 4;
    public static final int TOTAL_WQ_SIZE = 128;
    public static final int MAX_XFER_SHIFT = 31;
    public static final int MAX_BATCH_SHIFT = 10;

    /** VERSION: 1.0. */
    public static final long VERSION_VALUE = 0x100;
    /**
     * GENCAP: block_on_fault (0), overlap_copy (1), cmd_cap (4), max_xfer_shift (20:16),
     * max_batch_shift (24:21).
     */
    public static final long GENCAP_VALUE = 1 | 1 << 1 | 1 << 4 | (long) MAX_XFER_SHIFT << 16 | (long) MAX_BATCH_SHIFT << 21;
    /**
     * WQCAP: total_wq_size (15:0), num_wqs (23:16), wqcfg_size 0 (27:24: 32 bytes), shared_mode (48),
     * dedicated_mode (49), wq_ats_support (50), priority (51), wq_prs_support (55).
     */
    public static final long WQCAP_VALUE = TOTAL_WQ_SIZE | (long) NUM_WQS << 16 | 1L << 48 | 1L << 49 | 1L << 50 | 1L << 51
            | 1L << 55;
    /** GRPCAP: num_groups (7:0). */
    public static final long GRPCAP_VALUE = NUM_GROUPS;
    /** ENGCAP: num_engines (7:0). */
    public static final long ENGCAP_VALUE = NUM_ENGINES;
    /** OPCAP bits 0-63: the opcodes implemented. */
    public static final long OPCAP_VALUE = 1L << Dsa.OP_NOOP | 1L << Dsa.OP_BATCH | 1L << Dsa.OP_DRAIN | 1L << Dsa.OP_MEMMOVE
            | 1L << Dsa.OP_MEMFILL | 1L << Dsa.OP_COMPARE | 1L << Dsa.OP_COMPVAL | 1L << Dsa.OP_CR_DELTA
            | 1L << Dsa.OP_AP_DELTA | 1L << Dsa.OP_DUALCAST | 1L << Dsa.OP_CRCGEN | 1L << Dsa.OP_COPY_CRC;
    /** TABLE_OFFSET: grpcfg (15:0) = 4, wqcfg (31:16) = 5, in units of 0x100. */
    public static final long TABLE_OFFSET_VALUE = 4 | 5L << 16;

    // Commands (CMD.cmd, bits 24:20) and CMDSTS errors (enum idxd_cmd, idxd_cmdsts_err).
    public static final int CMD_ENABLE_DEVICE = 1;
    public static final int CMD_DISABLE_DEVICE = 2;
    public static final int CMD_DRAIN_ALL = 3;
    public static final int CMD_ABORT_ALL = 4;
    public static final int CMD_RESET_DEVICE = 5;
    public static final int CMD_ENABLE_WQ = 6;
    public static final int CMD_DISABLE_WQ = 7;
    public static final int CMD_DRAIN_WQ = 8;
    public static final int CMD_ABORT_WQ = 9;
    public static final int CMD_RESET_WQ = 10;
    public static final int CMD_DRAIN_PASID = 11;
    public static final int CMD_ABORT_PASID = 12;
    /** CMDCAP: the commands above. */
    public static final long CMDCAP_VALUE = 0x1ffe;

    public static final int CMDSTS_SUCCESS = 0;
    public static final int CMDSTS_INVAL_CMD = 1;
    public static final int CMDSTS_INVAL_WQIDX = 2;
    public static final int CMDSTS_ERR_DEV_ENABLED = 0x10;
    public static final int CMDSTS_ERR_WQ_SIZE_ERANGE = 0x14;
    public static final int CMDSTS_ERR_GRP_CONFIG = 0x15;
    public static final int CMDSTS_ERR_GRP_CONFIG2 = 0x16;
    public static final int CMDSTS_ERR_DEV_NOTEN = 0x20;
    public static final int CMDSTS_ERR_WQ_ENABLED = 0x21;
    public static final int CMDSTS_ERR_WQ_SIZE = 0x22;
    public static final int CMDSTS_ERR_WQ_PRIOR = 0x23;
    public static final int CMDSTS_ERR_WQ_MODE = 0x24;
    public static final int CMDSTS_ERR_BOF_EN = 0x25;
    public static final int CMDSTS_ERR_PASID_EN = 0x26;
    public static final int CMDSTS_ERR_MAX_BATCH_SIZE = 0x27;
    public static final int CMDSTS_ERR_MAX_XFER_SIZE = 0x28;
    public static final int CMDSTS_ERR_DIS_DEV_EN = 0x31;
    public static final int CMDSTS_ERR_DEV_NOT_EN = 0x32;

    /** INTCAUSE bits. */
    public static final int INTC_ERR = 0x01;
    public static final int INTC_CMD = 0x02;
}
