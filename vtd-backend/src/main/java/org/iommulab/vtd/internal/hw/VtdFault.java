package org.iommulab.vtd.internal.hw;

import org.iommulab.api.translation.FaultKind;

/**
 * DMA remapping fault reasons the model records, numbered as the VT-d specification numbers them
 * (§7.1.3, Table 9 "Scalable-Mode Fault Conditions"; names after the spec's descriptions, as Linux
 * {@code dmar.c dma_remap_sm_fault_reasons} prints them).
 */
enum VtdFault {
    SM_RTADDR_INV(0x30, "SM_RTADDR_INV", FaultKind.CONFIGURATION, false),
    SM_TTM0_PASID(0x31, "SM_TTM0_PASID", FaultKind.CONFIGURATION, false),
    SM_ROOT_ACCESS(0x38, "SM_ROOT_ENTRY_ACCESS", FaultKind.WALK_EXTERNAL_ABORT, false),
    SM_ROOT_P(0x39, "SM_ROOT_ENTRY_P", FaultKind.CONFIGURATION, false),
    SM_ROOT_RSVD(0x3a, "SM_ROOT_ENTRY_RSVD", FaultKind.CONFIGURATION, false),
    SM_CTX_ACCESS(0x40, "SM_CONTEXT_ENTRY_ACCESS", FaultKind.WALK_EXTERNAL_ABORT, false),
    SM_CTX_P(0x41, "SM_CONTEXT_ENTRY_P", FaultKind.CONFIGURATION, true),
    SM_CTX_RSVD(0x42, "SM_CONTEXT_ENTRY_RSVD", FaultKind.CONFIGURATION, true),
    SM_CTX_PASIDE(0x45, "SM_CONTEXT_PASIDE_CLEAR", FaultKind.CONFIGURATION, true),
    SM_CTX_PDTS(0x46, "SM_PASID_BEYOND_PDTS", FaultKind.CONFIGURATION, true),
    PASID_DIR_ACCESS(0x50, "PASID_DIR_ACCESS_ERR", FaultKind.WALK_EXTERNAL_ABORT, false),
    PASID_DIR_P(0x51, "PASID_DIR_ENTRY_P", FaultKind.CONFIGURATION, true),
    PASID_DIR_RSVD(0x52, "PASID_DIR_ENTRY_RSVD", FaultKind.CONFIGURATION, true),
    PASID_TABLE_ACCESS(0x58, "PASID_TABLE_ACCESS_ERR", FaultKind.WALK_EXTERNAL_ABORT, false),
    PASID_ENTRY_P(0x59, "PASID_ENTRY_P", FaultKind.CONFIGURATION, true),
    PASID_ENTRY_RSVD(0x5a, "PASID_ENTRY_RSVD", FaultKind.CONFIGURATION, true),
    PASID_ENTRY_INV(0x5b, "PASID_TABLE_ENTRY_INV", FaultKind.CONFIGURATION, true),
    PASID_ERE_CLEAR(0x5c, "PASID_ENTRY_ERE_CLEAR", FaultKind.PERMISSION, true),
    PASID_SRE_CLEAR(0x5d, "PASID_ENTRY_SRE_CLEAR", FaultKind.PERMISSION, true),
    FS_ACCESS(0x70, "FS_PAGING_ENTRY_INV", FaultKind.WALK_EXTERNAL_ABORT, true),
    FS_P(0x71, "FS_PAGING_ENTRY_P", FaultKind.TRANSLATION, true),
    FS_RSVD(0x72, "FS_PAGING_ENTRY_RSVD", FaultKind.TRANSLATION, true),
    FS_ROOT_ACCESS(0x73, "FS_PML4_ACCESS_ERR", FaultKind.WALK_EXTERNAL_ABORT, true),
    NESTED_FS_ADDR_BEYOND(0x74, "NESTED_FS_ENTRY_BEYOND_MGAW", FaultKind.ADDRESS_SIZE, true),
    NESTED_FS_ROOT_READ(0x75, "NESTED_FS_PML4_READ", FaultKind.TRANSLATION, true),
    NESTED_FS_READ(0x76, "NESTED_FS_ENTRY_READ", FaultKind.TRANSLATION, true),
    NESTED_FS_WRITE(0x77, "NESTED_FS_ENTRY_WRITE", FaultKind.PERMISSION, true),
    SS_ACCESS(0x78, "SS_PAGING_ENTRY_ACCESS", FaultKind.WALK_EXTERNAL_ABORT, true),
    SS_RW(0x79, "SS_PAGING_ENTRY_RW", FaultKind.TRANSLATION, true),
    SS_RSVD(0x7a, "SS_PAGING_ENTRY_RSVD", FaultKind.TRANSLATION, true),
    SS_PTR_INV(0x7b, "SS_PTPTR_INV", FaultKind.CONFIGURATION, true),
    SS_AD_UPDATE(0x7c, "SS_AD_UPDATE", FaultKind.WALK_EXTERNAL_ABORT, true),
    FS_NON_CANONICAL(0x80, "FS_NON_CANONICAL", FaultKind.TRANSLATION, true),
    FS_US(0x81, "FS_PAGING_ENTRY_US", FaultKind.PERMISSION, true),
    SM_EXECUTE(0x82, "SM_EXECUTE", FaultKind.PERMISSION, true),
    SM_ADDR_BEYOND(0x83, "SM_ADDR_BEYOND_MGAW", FaultKind.ADDRESS_SIZE, true),
    SS_ADDR_BEYOND(0x84, "SS_ENTRY_BEYOND_HAW", FaultKind.ADDRESS_SIZE, true),
    SM_WRITE(0x85, "SM_WRITE", FaultKind.PERMISSION, true),
    SM_READ(0x86, "SM_READ", FaultKind.PERMISSION, true),
    SM_INTERRUPT_ADDR(0x87, "SM_INTERRUPT_ADDR", FaultKind.PERMISSION, true),
    FS_AD_UPDATE(0x91, "FS_BIT_UPDATE_FAILED", FaultKind.WALK_EXTERNAL_ABORT, true);

    final int code;
    final String spec;
    final FaultKind kind;
    /** Qualified faults are not recorded when the context or PASID entry sets FPD. */
    final boolean qualified;

    VtdFault(int code, String spec, FaultKind kind, boolean qualified) {
        this.code = code;
        this.spec = spec;
        this.kind = kind;
        this.qualified = qualified;
    }
}
