package org.iommulab.pgtable;

import java.util.ArrayList;
import java.util.List;

import org.iommulab.api.errno.IommuException;
import org.iommulab.pgtable.format.ArmGranule;
import org.iommulab.pgtable.format.ArmStage1;
import org.iommulab.pgtable.format.ArmStage2;
import org.iommulab.pgtable.format.VtdSecondStage;
import org.iommulab.pgtable.format.RiscvPaging;
import org.iommulab.pgtable.format.X86FirstStage;

/**
 * Every format and geometry the engine supports, for the parameterised conformance tests and the
 * walker fuzz.
 */
final class FormatCatalog {
    private FormatCatalog() {
    }

    /**
     * One configured format.
     *
     * @param label what the test report shows
     * @param format the format
     * @param execControl {@code true} if a mapping without PROT_EXEC denies instruction fetches
     * @param userAccess {@code true} if mappings made by IoPageTable allow unprivileged requests
     */
    record Case(String label, PageTableFormat format, boolean execControl, boolean userAccess) {
        @Override
        public String toString() {
            return label;
        }

        long granule() {
            return 1L << format.granuleShift();
        }

        /**
         * @return the end of the (lower, for x86) input space: the first address above the last
         *     mappable page
         */
        long top() {
            long half = 1L << (format.inputBits() - 1);
            return format.checkInput(half) != null ? half : 1L << format.inputBits();
        }

        /** @return frames held by the root table */
        long rootFrames() {
            return Math.max(1, (format.tableBytes(0) + 4095) / 4096);
        }

        /** @return page sizes, smallest first */
        List<Long> pageSizes() {
            List<Long> sizes = new ArrayList<>();
            long bitmap = format.pageSizes();
            for (int b = 0; b < 64; b++) {
                if ((bitmap & (1L << b)) != 0) {
                    sizes.add(1L << b);
                }
            }
            return sizes;
        }

        /** @return a physical base address aligned to every page size, well inside the output range */
        long paBase() {
            return 1L << (format.outputBits() - 1);
        }
    }

    interface FormatFactory {
        PageTableFormat make() throws IommuException;
    }

    private static PageTableFormat make(FormatFactory f) {
        try {
            return f.make();
        } catch (IommuException e) {
            throw new AssertionError("a supported geometry was refused: " + e, e);
        }
    }

    static List<Case> all() {
        List<Case> list = new ArrayList<>();
        list.addAll(x86());
        list.addAll(vtd());
        list.addAll(armStage1());
        list.addAll(armStage2());
        list.addAll(riscv());
        return list;
    }

    /** Sv39/48/57 first stage (with and without hardware A/D) and Sv39x4/48x4/57x4 G-stage. */
    static List<Case> riscv() {
        List<Case> list = new ArrayList<>();
        for (RiscvPaging.Mode mode : RiscvPaging.Mode.values()) {
            for (boolean ad : new boolean[] {true, false}) {
                // Supervisor pages, as an IOVA table is: a supervisor never executes user pages (§4.3.1).
                list.add(new Case(String.format("RISC-V %s first stage%s", mode, ad ? " HW A/D" : ""),
                        make(() -> RiscvPaging.firstStage(mode, 56, ad, true, false)), true, false));
            }
            list.add(new Case(String.format("RISC-V %sx4 G-stage", mode), make(() -> RiscvPaging.gStage(mode, 56, false)),
                    true, true));
        }
        return list;
    }

    static List<Case> x86() {
        List<Case> list = new ArrayList<>();
        for (int levels : new int[] {4, 5}) {
            for (int physBits : new int[] {52, 46}) {
                for (boolean pages1g : new boolean[] {true, false}) {
                    list.add(x86(levels, physBits, pages1g, true, true));
                }
            }
        }
        list.add(x86(4, 46, false, false, false));
        list.add(x86(5, 52, true, false, false));
        list.add(x86(4, 52, true, true, false));
        return list;
    }

    static Case x86(int levels, int physBits, boolean pages1g, boolean executeDisable, boolean userPages) {
        return new Case(String.format("x86 %d-level phys%d%s%s%s", levels, physBits, pages1g ? " 1G" : "",
                executeDisable ? " XD" : " noXD", userPages ? " user" : " supervisor"),
                make(() -> X86FirstStage.of(levels, physBits, pages1g, executeDisable, userPages)), executeDisable,
                userPages);
    }

    static List<Case> vtd() {
        List<Case> list = new ArrayList<>();
        boolean[][] sps = {{false, false}, {true, false}, {true, true}};
        for (int aw = 1; aw <= 3; aw++) {
            for (boolean[] sp : sps) {
                int hostBits = aw == 1 ? 39 : 48;
                boolean exec = aw == 2;
                int a = aw;
                list.add(new Case(String.format("VT-d SL AW%d haw%d%s%s%s", aw, hostBits, sp[0] ? " 2M" : "",
                        sp[1] ? " 1G" : "", exec ? " X" : ""),
                        make(() -> VtdSecondStage.of(a, hostBits, sp[0], sp[1], exec, false)), exec, true));
            }
        }
        return list;
    }

    static List<Case> armStage1() {
        List<Case> list = new ArrayList<>();
        for (ArmGranule g : ArmGranule.values()) {
            for (int txsz : new int[] {16, 25, 33, 39}) {
                for (int ob : new int[] {40, 48}) {
                    PageTableFormat f = make(() -> ArmStage1.of(g, txsz, ob, false, false, false));
                    list.add(new Case(String.format("Arm S1 %s T0SZ%d (L%d) oa%d", g, txsz,
                            ((ArmStage1) f).startLevel(), ob), f, true, true));
                }
            }
        }
        return list;
    }

    /** {granule, S2T0SZ, SL0, output bits} */
    private static final Object[][] STAGE2 = {
        {ArmGranule.G4K, 24, 1, 48}, // L1, 2 concatenated tables
        {ArmGranule.G4K, 21, 1, 48}, // L1, 16 concatenated tables
        {ArmGranule.G4K, 25, 1, 40}, // L1, one table
        {ArmGranule.G4K, 16, 2, 48}, // L0
        {ArmGranule.G4K, 20, 2, 48}, // L0, 5 index bits (qos-smmuv3)
        {ArmGranule.G4K, 30, 0, 40}, // L2, 16 concatenated tables
        {ArmGranule.G4K, 39, 0, 48}, // L2, 4 index bits
        {ArmGranule.G16K, 24, 1, 48}, // L2, 16 concatenated tables
        {ArmGranule.G16K, 16, 3, 48}, // L0, 1 index bit
        {ArmGranule.G16K, 17, 2, 40}, // L1, one table
        {ArmGranule.G16K, 28, 1, 48}, // L2, one table
        {ArmGranule.G16K, 35, 0, 48}, // L3, 16 concatenated tables
        {ArmGranule.G16K, 39, 0, 40}, // L3, one table
        {ArmGranule.G64K, 16, 2, 48}, // L1, 6 index bits
        {ArmGranule.G64K, 22, 1, 40}, // L2, one table
        {ArmGranule.G64K, 18, 1, 48}, // L2, 16 concatenated tables
        {ArmGranule.G64K, 34, 0, 48}, // L3, 2 concatenated tables
        {ArmGranule.G64K, 39, 0, 48}, // L3, 9 index bits
    };

    static List<Case> armStage2() {
        List<Case> list = new ArrayList<>();
        for (Object[] row : STAGE2) {
            ArmGranule g = (ArmGranule) row[0];
            int t0sz = (Integer) row[1];
            int sl0 = (Integer) row[2];
            int ob = (Integer) row[3];
            ArmStage2 f = (ArmStage2) make(() -> ArmStage2.of(g, t0sz, sl0, ob, false, false, false));
            int extra = f.indexBits(0) - g.bitsPerLevel();
            list.add(new Case(String.format("Arm S2 %s S2T0SZ%d SL0=%d (L%d x%d) oa%d", g, t0sz, sl0, f.startLevel(),
                    extra > 0 ? 1 << extra : 1, ob), f, true, true));
        }
        return list;
    }
}
