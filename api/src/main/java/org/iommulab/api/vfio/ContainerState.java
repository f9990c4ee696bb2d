package org.iommulab.api.vfio;

import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;

import org.iommulab.api.nesting.GuestPasidBind;
import org.iommulab.api.nesting.PasidTableConfig;

/**
 * What a VFIO container holds for its user, captured by {@link VfioContainer#saveState()} so that
 * a fresh container can take over with {@link VfioContainer#restoreState(ContainerState)}: the
 * IOMMU type, the DMA mappings (by the owner's virtual addresses), the PASIDs allocated through the
 * container, the guest page tables bound per host PASID and the guest PASID table (SMMUv3).
 *
 * <p>What the IOMMU made of them (I/O page tables, PASID entries, STEs, cached translations) is
 * not part of it: the fresh container has its driver build them anew. The PASID values are: a
 * guest that was handed host PASIDs keeps using them, so the fresh container allocates exactly
 * these (fixed-PASID allocation, the migration case of the 2020 /dev/ioasid discussion).
 *
 * <p>Immutable and thread safe.
 *
 * @param type the IOMMU type, not {@code null}
 * @param mappings the DMA mappings in IOVA order, not {@code null}
 * @param pasids the PASIDs allocated through the container, ascending, not {@code null}
 * @param bindings guest page tables by host PASID, not {@code null}
 * @param pasidTable the guest PASID table, or empty
 */
public record ContainerState(VfioIommuType type, List<DmaMapping> mappings, List<Integer> pasids,
        Map<Integer, GuestPasidBind> bindings, Optional<PasidTableConfig> pasidTable) {

    /** Copies the collections; rejects {@code null}s. */
    public ContainerState {
        Objects.requireNonNull(type, "type");
        mappings = List.copyOf(mappings);
        pasids = List.copyOf(pasids);
        bindings = Map.copyOf(bindings);
        Objects.requireNonNull(pasidTable, "pasidTable");
    }
}
