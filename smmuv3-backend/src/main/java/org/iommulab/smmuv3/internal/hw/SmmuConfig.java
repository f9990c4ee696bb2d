package org.iommulab.smmuv3.internal.hw;

import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Map;

import org.iommulab.api.errno.Errno;
import org.iommulab.api.errno.IommuException;

/**
 * The configuration of one SMMUv3 model: key=value pairs whose defaults describe the most capable
 * unit, and the ID registers (SMMU_IDR0-5) they produce (Arm IHI 0070, §6.3.1-§6.3.6).
 *
 * <p>Keys: {@code sidsize} (1-32 StreamID bits), {@code ssidsize} (0-20 SubstreamID bits),
 * {@code oas} (32, 36, 40, 42, 44 or 48 output bits), {@code granules} ({@code all} or a comma list
 * of {@code 4k}, {@code 16k}, {@code 64k}), {@code stage1}, {@code stage2},
 * {@code two-level-stream-table}, {@code two-level-cd-table}, {@code ats} (IDR0.ATS), {@code pri} (IDR0.PRI, needs ats),
 * {@code range-invalidation} (IDR3.RIL), {@code asid16}, {@code vmid16},
 * {@code cmdq-log2size} and {@code eventq-log2size} (0-19), {@code tlb-size},
 * {@code config-cache-size} (a power of two).
 */
public final class SmmuConfig {
    /** Keys and defaults. */
    public static final Map<String, String> DEFAULTS;

    static {
        Map<String, String> d = new LinkedHashMap<>();
        d.put("sidsize", "16");
        d.put("ssidsize", "20");
        d.put("oas", "48");
        d.put("granules", "all");
        d.put("stage1", "true");
        d.put("stage2", "true");
        d.put("two-level-stream-table", "true");
        d.put("two-level-cd-table", "true");
        d.put("ats", "true");
        d.put("pri", "true");
        d.put("range-invalidation", "true");
        d.put("asid16", "true");
        d.put("vmid16", "true");
        d.put("cmdq-log2size", "8");
        d.put("eventq-log2size", "8");
        d.put("tlb-size", "4096");
        d.put("config-cache-size", "256");
        DEFAULTS = Collections.unmodifiableMap(d);
    }

    final int sidSize;
    final int ssidSize;
    final int oas;
    final boolean gran4k;
    final boolean gran16k;
    final boolean gran64k;
    final boolean stage1;
    final boolean stage2;
    final boolean twoLevelStreamTable;
    final boolean twoLevelCd;
    final boolean ats;
    final boolean pri;
    final boolean rangeInvalidation;
    final boolean asid16;
    final boolean vmid16;
    final int cmdqLog2;
    final int eventqLog2;
    final int tlbSize;
    final int configCacheSize;
    private final Map<String, String> effective;

    private SmmuConfig(Map<String, String> v) throws IommuException {
        effective = Collections.unmodifiableMap(new LinkedHashMap<>(v));
        sidSize = intIn(v, "sidsize", 1, 32);
        ssidSize = intIn(v, "ssidsize", 0, 20);
        oas = intIn(v, "oas", 32, 48);
        if (oasEncoding(oas) < 0) {
            throw new IommuException(Errno.EINVAL, "oas must be 32, 36, 40, 42, 44 or 48, not " + oas);
        }
        String g = v.get("granules").trim().toLowerCase(java.util.Locale.ROOT);
        boolean g4 = false;
        boolean g16 = false;
        boolean g64 = false;
        if (g.equals("all")) {
            g4 = g16 = g64 = true;
        } else {
            for (String part : g.split(",")) {
                switch (part.trim()) {
                    case "4k":
                        g4 = true;
                        break;
                    case "16k":
                        g16 = true;
                        break;
                    case "64k":
                        g64 = true;
                        break;
                    default:
                        throw new IommuException(Errno.EINVAL, "granules must be 'all' or a list of 4k, 16k, 64k, not '" + g + "'");
                }
            }
        }
        gran4k = g4;
        gran16k = g16;
        gran64k = g64;
        stage1 = bool(v, "stage1");
        stage2 = bool(v, "stage2");
        if (!stage1 && !stage2) {
            throw new IommuException(Errno.EINVAL, "at least one of stage1 and stage2 must be supported");
        }
        twoLevelStreamTable = bool(v, "two-level-stream-table");
        twoLevelCd = bool(v, "two-level-cd-table");
        ats = bool(v, "ats");
        pri = bool(v, "pri");
        if (pri && !ats) {
            throw new IommuException(Errno.EINVAL, "pri needs ats: IDR0.PRI is RES0 without IDR0.ATS (§6.3.1)");
        }
        rangeInvalidation = bool(v, "range-invalidation");
        asid16 = bool(v, "asid16");
        vmid16 = bool(v, "vmid16");
        cmdqLog2 = intIn(v, "cmdq-log2size", 0, 19);
        eventqLog2 = intIn(v, "eventq-log2size", 0, 19);
        tlbSize = intIn(v, "tlb-size", 1, 1 << 20);
        configCacheSize = intIn(v, "config-cache-size", 1, 1 << 20);
        if (Integer.bitCount(configCacheSize) != 1) {
            throw new IommuException(Errno.EINVAL, "config-cache-size must be a power of two, not " + configCacheSize);
        }
    }

    /**
     * @param overrides keys to change from {@link #DEFAULTS}
     * @return the configuration
     * @throws IommuException {@code EINVAL} for an unknown key or a bad value
     */
    public static SmmuConfig of(Map<String, String> overrides) throws IommuException {
        Map<String, String> values = new LinkedHashMap<>(DEFAULTS);
        for (Map.Entry<String, String> e : overrides.entrySet()) {
            if (!DEFAULTS.containsKey(e.getKey())) {
                throw new IommuException(Errno.EINVAL, "unknown smmuv3 key '" + e.getKey() + "' (known: " + DEFAULTS.keySet() + ")");
            }
            if (e.getValue() == null) {
                throw new IommuException(Errno.EINVAL, "no value for smmuv3 key '" + e.getKey() + "'");
            }
            values.put(e.getKey(), e.getValue());
        }
        return new SmmuConfig(values);
    }

    /** @return every key with its effective value */
    public Map<String, String> values() {
        return effective;
    }

    /** @return the IDR5.OAS / CD.IPS / STE.S2PS encoding of an address size, or -1 */
    static int oasEncoding(int bits) {
        switch (bits) {
            case 32:
                return 0;
            case 36:
                return 1;
            case 40:
                return 2;
            case 42:
                return 3;
            case 44:
                return 4;
            case 48:
                return 5;
            default:
                return -1;
        }
    }

    /** @return the address size an IPS/PS encoding selects, capped at the OAS (6 = 52 bits is capped too) */
    int addressBits(int encoding) {
        return Math.min(ADDRESS_SIZES[encoding & 7], oas);
    }

    /** IPS/PS encodings 0-7 to bits (§6.3.1 IDR5.OAS); a constant, so the translation path allocates nothing. */
    private static final int[] ADDRESS_SIZES = {32, 36, 40, 42, 44, 48, 52, 52};

    int idr0() {
        int v = 0;
        v |= stage2 ? 1 : 0; // S2P
        v |= (stage1 ? 1 : 0) << 1; // S1P
        v |= 2 << 2; // TTF: AArch64 tables
        v |= 1 << 4; // COHACC
        v |= 2 << 6; // HTTU: access flag and dirty state
        v |= (asid16 ? 1 : 0) << 12;
        v |= 1 << 13; // MSI: CMD_SYNC can signal completion with an MSI write
        v |= (ats ? 1 : 0) << 10; // ATS: translation requests accepted, ATC invalidation commands legal
        v |= (pri ? 1 : 0) << 16; // PRI: page requests (the PRI queue)
        v |= (vmid16 ? 1 : 0) << 18;
        v |= (twoLevelCd ? 1 : 0) << 19; // CD2L
        v |= 2 << 21; // TTENDIAN: little endian only
        v |= 1 << 24; // STALL_MODEL: stall not supported
        v |= 1 << 26; // TERM_MODEL: terminated transactions abort (CD.A must be 1)
        v |= (twoLevelStreamTable ? 1 : 0) << 27; // ST_LEVEL
        return v;
    }

    int idr1() {
        return sidSize | ssidSize << 6 | eventqLog2 << 11 /* PRIQS */ | eventqLog2 << 16 | cmdqLog2 << 21;
    }

    int idr3() {
        return rangeInvalidation ? 1 << 10 : 0; // RIL: range invalidation (TG, NUM, SCALE in TLBI commands)
    }

    int idr5() {
        return oasEncoding(oas) | (gran4k ? 1 << 4 : 0) | (gran16k ? 1 << 5 : 0) | (gran64k ? 1 << 6 : 0);
    }

    private static int intIn(Map<String, String> v, String key, int min, int max) throws IommuException {
        try {
            int value = Integer.decode(v.get(key).trim());
            if (value < min || value > max) {
                throw new NumberFormatException();
            }
            return value;
        } catch (NumberFormatException e) {
            throw new IommuException(Errno.EINVAL, key + " must be a number from " + min + " to " + max + ", not '" + v.get(key) + "'");
        }
    }

    private static boolean bool(Map<String, String> v, String key) throws IommuException {
        String s = v.get(key).trim();
        if (s.equals("true") || s.equals("on") || s.equals("1")) {
            return true;
        }
        if (s.equals("false") || s.equals("off") || s.equals("0")) {
            return false;
        }
        throw new IommuException(Errno.EINVAL, key + " must be true or false, not '" + s + "'");
    }
}
