package org.iommulab.riscv.internal.hw;

import java.util.LinkedHashMap;
import java.util.Map;

import org.iommulab.api.errno.Errno;
import org.iommulab.api.errno.IommuException;
import org.iommulab.pgtable.format.RiscvPaging;
import org.iommulab.riscv.internal.spec.Reg;

/**
 * The instance configuration of one RISC-V IOMMU model, parsed and validated, and the reset value
 * of the {@code capabilities} register it implies (spec §5.3 "IOMMU capabilities"). Immutable.
 *
 * <p>Keys: {@code pasid-bits} (0, 8, 17, 20: PD8 / PD17 / PD20 advertised as far as the width
 * allows), {@code pas} (capabilities.PAS, 32..56), {@code first-stage} (sv39 | sv48 | sv57, the
 * largest first-stage mode; the smaller ones are advertised too, as §5.3 requires "When Sv48 is
 * set, Sv39 must be set"), {@code g-stage} (sv39x4 | sv48x4 | sv57x4, likewise), {@code hardware-ad}
 * (capabilities.AMO_HWAD), {@code ats} (capabilities.ATS: ATS, PRI and the page-request queue),
 * {@code iotlb-size} (IOTLB entries, 1..2^24).
 */
final class RiscvConfig {
    /** The keys and their defaults, in a stable order. */
    static final Map<String, String> DEFAULTS;

    static {
        Map<String, String> d = new LinkedHashMap<>();
        d.put("pasid-bits", "20");
        d.put("pas", "52");
        d.put("first-stage", "sv57");
        d.put("g-stage", "sv48x4");
        d.put("hardware-ad", "true");
        d.put("ats", "true");
        d.put("iotlb-size", "4096");
        DEFAULTS = java.util.Collections.unmodifiableMap(d);
    }

    final Map<String, String> values;
    final int pasidBits;
    final int pas;
    /** Largest first-stage mode. */
    final RiscvPaging.Mode firstStage;
    /** Largest G-stage mode (the Sv*x4 widening of it). */
    final RiscvPaging.Mode gStage;
    final boolean hardwareAd;
    final boolean ats;
    final int iotlbSize;
    /** The capabilities register. */
    final long capabilities;

    private RiscvConfig(Map<String, String> values) throws IommuException {
        this.values = values;
        this.pasidBits = parseInt("pasid-bits", 0, 20);
        if (pasidBits != 0 && pasidBits != 8 && pasidBits != 17 && pasidBits != 20) {
            throw new IommuException(Errno.EINVAL, "pasid-bits must be 0, 8, 17 or 20 (the PDT modes), not " + pasidBits);
        }
        this.pas = parseInt("pas", 32, 56);
        this.firstStage = mode("first-stage", "");
        this.gStage = mode("g-stage", "x4");
        this.hardwareAd = parseBoolean("hardware-ad");
        this.ats = parseBoolean("ats");
        this.iotlbSize = parseInt("iotlb-size", 1, 1 << 24);
        long c = Reg.CAP_VERSION_1_0 | Reg.CAP_SV39 | Reg.CAP_SV39X4;
        if (firstStage.compareTo(RiscvPaging.Mode.SV48) >= 0) {
            c |= Reg.CAP_SV48;
        }
        if (firstStage == RiscvPaging.Mode.SV57) {
            c |= Reg.CAP_SV57;
        }
        if (gStage.compareTo(RiscvPaging.Mode.SV48) >= 0) {
            c |= Reg.CAP_SV48X4;
        }
        if (gStage == RiscvPaging.Mode.SV57) {
            c |= Reg.CAP_SV57X4;
        }
        if (hardwareAd) {
            c |= Reg.CAP_AMO_HWAD;
        }
        if (ats) {
            c |= Reg.CAP_ATS;
        }
        c |= Reg.CAP_IGS_WSI << Reg.CAP_IGS_SHIFT | Reg.CAP_DBG | (long) pas << Reg.CAP_PAS_SHIFT;
        if (pasidBits >= 8) {
            c |= Reg.CAP_PD8;
        }
        if (pasidBits >= 17) {
            c |= Reg.CAP_PD17;
        }
        if (pasidBits >= 20) {
            c |= Reg.CAP_PD20;
        }
        this.capabilities = c;
    }

    /**
     * @param configuration every key of {@link #DEFAULTS}; missing keys take their default
     * @return the parsed configuration
     * @throws IommuException {@code EINVAL} for an unknown key or a bad value
     */
    static RiscvConfig of(Map<String, String> configuration) throws IommuException {
        Map<String, String> v = new LinkedHashMap<>(DEFAULTS);
        for (Map.Entry<String, String> e : configuration.entrySet()) {
            if (!DEFAULTS.containsKey(e.getKey())) {
                throw new IommuException(Errno.EINVAL, "unknown key '" + e.getKey() + "' (have " + DEFAULTS.keySet() + ")");
            }
            if (e.getValue() == null) {
                throw new IommuException(Errno.EINVAL, e.getKey() + " has no value");
            }
            v.put(e.getKey(), e.getValue().trim());
        }
        return new RiscvConfig(java.util.Collections.unmodifiableMap(v));
    }

    private int parseInt(String key, int min, int max) throws IommuException {
        String s = values.get(key);
        try {
            int v = Integer.parseInt(s);
            if (v < min || v > max) {
                throw new IommuException(Errno.EINVAL, key + " must be " + min + " to " + max + ", not " + v);
            }
            return v;
        } catch (NumberFormatException e) {
            throw new IommuException(Errno.EINVAL, key + " is not a number: " + s);
        }
    }

    private boolean parseBoolean(String key) throws IommuException {
        String s = values.get(key);
        if ("true".equalsIgnoreCase(s)) {
            return true;
        }
        if ("false".equalsIgnoreCase(s)) {
            return false;
        }
        throw new IommuException(Errno.EINVAL, key + " must be true or false, not " + s);
    }

    private RiscvPaging.Mode mode(String key, String suffix) throws IommuException {
        String s = values.get(key).toLowerCase(java.util.Locale.ROOT);
        for (RiscvPaging.Mode m : RiscvPaging.Mode.values()) {
            if (s.equals(m.name().toLowerCase(java.util.Locale.ROOT) + suffix)) {
                return m;
            }
        }
        throw new IommuException(Errno.EINVAL, key + " must be sv39" + suffix + ", sv48" + suffix + " or sv57" + suffix
                + ", not " + s);
    }

    /** @return whether the first-stage (iosatp / PC.fsc) MODE encoding is supported (Bare included) */
    boolean firstStageSupported(int mode) {
        return switch (mode) {
            case 0, 8 -> true;
            case 9 -> (capabilities & Reg.CAP_SV48) != 0;
            case 10 -> (capabilities & Reg.CAP_SV57) != 0;
            default -> false;
        };
    }

    /** @return whether the iohgatp MODE encoding is supported with fctl.GXL = 0 (Bare included) */
    boolean gStageSupported(int mode) {
        return switch (mode) {
            case 0, 8 -> true;
            case 9 -> (capabilities & Reg.CAP_SV48X4) != 0;
            case 10 -> (capabilities & Reg.CAP_SV57X4) != 0;
            default -> false;
        };
    }

    /** @return whether the pdtp MODE encoding is supported (Bare included) */
    boolean pdtpSupported(int mode) {
        return switch (mode) {
            case 0 -> true;
            case 1 -> (capabilities & Reg.CAP_PD8) != 0;
            case 2 -> (capabilities & Reg.CAP_PD17) != 0;
            case 3 -> (capabilities & Reg.CAP_PD20) != 0;
            default -> false;
        };
    }

    /** @return the widest process_id the IOMMU supports (IODIR.INVAL_PDT PID check, §3.1.3) */
    int processIdBits() {
        return (capabilities & Reg.CAP_PD20) != 0 ? 20 : (capabilities & Reg.CAP_PD17) != 0 ? 17 : 8;
    }
}
