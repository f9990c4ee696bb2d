package org.iommulab.api.translation;

/** Which part of a translation a fault or walk step belongs to. */
public enum Stage {
    /** Configuration lookup: root, context, PASID tables; stream table, context descriptors. */
    CONFIG,
    /** First stage (VT-d) / stage 1 (SMMUv3): guest or process virtual address to (intermediate) physical. */
    STAGE1,
    /** Second stage (VT-d) / stage 2 (SMMUv3): guest physical or IPA to host physical. */
    STAGE2
}
