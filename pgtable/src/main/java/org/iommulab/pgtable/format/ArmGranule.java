package org.iommulab.pgtable.format;

/**
 * VMSAv8-64 translation granules (Arm ARM D8.2): the page size and the index bits each level
 * resolves. The register encodings differ between TG0, TG1 and S2TG, so backends decode those and
 * pass the granule.
 */
public enum ArmGranule {
    /** 4 KiB pages, 9 bits per level, levels 0 to 3, blocks at levels 1 and 2. */
    G4K(12, 9),
    /** 16 KiB pages, 11 bits per level, levels 0 (1 bit at 48-bit) to 3, blocks at level 2. */
    G16K(14, 11),
    /** 64 KiB pages, 13 bits per level, levels 1 to 3, blocks at level 2. */
    G64K(16, 13);

    private final int shift;
    private final int bitsPerLevel;

    ArmGranule(int shift, int bitsPerLevel) {
        this.shift = shift;
        this.bitsPerLevel = bitsPerLevel;
    }

    /** @return log2 of the page size */
    public int shift() {
        return shift;
    }

    /** @return index bits resolved per level */
    public int bitsPerLevel() {
        return bitsPerLevel;
    }

    /**
     * @param level an Arm lookup level, 0 to 3
     * @return {@code true} if a block descriptor is allowed there (without 52-bit addressing)
     */
    boolean blockAllowed(int level) {
        return level == 2 || (this == G4K && level == 1);
    }
}
