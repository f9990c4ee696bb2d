package org.iommulab.vtd.internal.hw;

import java.util.LinkedHashMap;
import java.util.Map;

import org.iommulab.api.errno.Errno;
import org.iommulab.api.errno.IommuException;

/**
 * The configuration of one VT-d unit: what CAP and ECAP advertise and how large the caches are.
 * The defaults are the most capable configuration the model implements. Immutable.
 */
public final class VtdConfig {
    /** Keys and defaults, in the order {@code iommu:info} prints them. */
    public static final Map<String, String> DEFAULTS;

    static {
        Map<String, String> d = new LinkedHashMap<>();
        d.put("mgaw", "57");
        d.put("haw", "52");
        d.put("caching-mode", "false");
        d.put("fs5lp", "true");
        d.put("fs1gp", "true");
        d.put("sllps", "3");
        d.put("sl-ad", "true");
        d.put("pasid-bits", "20");
        d.put("prs", "true");
        d.put("dma-domain", "second-stage");
        d.put("iotlb-size", "4096");
        d.put("pasid-cache-size", "1024");
        d.put("context-cache-size", "256");
        DEFAULTS = java.util.Collections.unmodifiableMap(d);
    }

    final int mgaw;
    final int haw;
    final boolean cachingMode;
    final boolean fs5lp;
    final boolean fs1gp;
    final int sllps;
    final boolean slAccessDirty;
    final int pasidBits;
    final boolean prs;
    final boolean firstStageDomains;
    final int iotlbSize;
    final int pasidCacheSize;
    final int contextCacheSize;
    private final Map<String, String> effective;

    private VtdConfig(Map<String, String> values) throws IommuException {
        this.effective = java.util.Collections.unmodifiableMap(new LinkedHashMap<>(values));
        this.mgaw = intIn(values, "mgaw", 39, 57);
        if (mgaw != 39 && mgaw != 48 && mgaw != 57) {
            throw new IommuException(Errno.EINVAL, "mgaw must be 39, 48 or 57 (3-, 4- or 5-level second stage)");
        }
        this.haw = intIn(values, "haw", 32, 52);
        this.cachingMode = bool(values, "caching-mode");
        this.fs5lp = bool(values, "fs5lp");
        this.fs1gp = bool(values, "fs1gp");
        this.sllps = intIn(values, "sllps", 0, 3);
        this.slAccessDirty = bool(values, "sl-ad");
        this.pasidBits = intIn(values, "pasid-bits", 1, 20);
        this.prs = bool(values, "prs");
        String dma = values.get("dma-domain").trim();
        if (!dma.equals("second-stage") && !dma.equals("first-stage")) {
            throw new IommuException(Errno.EINVAL, "dma-domain must be first-stage or second-stage, not '" + dma + "'");
        }
        this.firstStageDomains = dma.equals("first-stage");
        this.iotlbSize = intIn(values, "iotlb-size", 1, 1 << 20);
        this.pasidCacheSize = powerOfTwo(values, "pasid-cache-size");
        this.contextCacheSize = powerOfTwo(values, "context-cache-size");
    }

    /**
     * @param overrides keys to change from {@link #DEFAULTS}
     * @return the configuration
     * @throws IommuException {@code EINVAL} for an unknown key or a bad value
     */
    public static VtdConfig of(Map<String, String> overrides) throws IommuException {
        Map<String, String> values = new LinkedHashMap<>(DEFAULTS);
        for (Map.Entry<String, String> e : overrides.entrySet()) {
            if (!DEFAULTS.containsKey(e.getKey())) {
                throw new IommuException(Errno.EINVAL, "unknown vtd key '" + e.getKey() + "' (known: " + DEFAULTS.keySet() + ")");
            }
            values.put(e.getKey(), e.getValue());
        }
        return new VtdConfig(values);
    }

    /** @return {@code true} if the host driver builds DMA (UNMANAGED) domains from first-stage tables */
    public boolean firstStageDomains() {
        return firstStageDomains;
    }

    /** @return every key with its effective value */
    public Map<String, String> values() {
        return effective;
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

    private static int powerOfTwo(Map<String, String> v, String key) throws IommuException {
        int value = intIn(v, key, 1, 1 << 20);
        if (Integer.bitCount(value) != 1) {
            throw new IommuException(Errno.EINVAL, key + " must be a power of two, not " + value);
        }
        return value;
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

    /** @return the SAGAW field: bit 1 39-bit, bit 2 48-bit, bit 3 57-bit, up to MGAW (§11.4.2) */
    int sagaw() {
        return mgaw >= 57 ? 0xe : mgaw >= 48 ? 0x6 : 0x2;
    }

    /**
     * The Capability Register (§11.4.2): ND 2:0 (6 = 16-bit domain ids), CM 7, SAGAW 12:8, MGAW 21:16
     * (width - 1), FRO 33:24 (offset / 16), SLLPS 37:34, PSI 39, NFR 47:40 (count - 1), MAMV 53:48,
     * DWD 54, DRD 55, FS1GP 56, FS5LP 60.
     *
     * @return the value
     */
    long cap() {
        long cap = 6;
        if (cachingMode) {
            cap |= 1L << 7;
        }
        cap |= (long) sagaw() << 8;
        cap |= (long) (mgaw - 1) << 16;
        cap |= (long) (VtdReg.FRCD / 16) << 24;
        cap |= (long) sllps << 34;
        cap |= 1L << 39;
        cap |= (long) (VtdReg.NFR - 1) << 40;
        cap |= 18L << 48;
        cap |= 3L << 54;
        if (fs1gp) {
            cap |= 1L << 56;
        }
        if (fs5lp) {
            cap |= 1L << 60;
        }
        return cap;
    }

    /**
     * The Extended Capability Register (§11.4.3): QI 1, DT 2, PT 6, SC 7, IRO 17:8, NEST 26, PRS 29, SRS 31, EAFS 34,
     * PSS 39:35 (PASID bits - 1), PASID 40, SMTS 43, SLADS 45, SLTS 46, FLTS 47, SMPWCS 48.
     *
     * @return the value
     */
    long ecap() {
        long ecap = (1L << 1) | (1L << 2) | (1L << 6) | (1L << 7) | (1L << 26) | (1L << 31) | (1L << 34);
        ecap |= (long) (VtdHardware.IOTLB_REGS / 16) << 8; // IRO
        ecap |= (long) (pasidBits - 1) << 35;
        ecap |= (1L << 40) | (1L << 43) | (1L << 46) | (1L << 47) | (1L << 48);
        if (slAccessDirty) {
            ecap |= 1L << 45;
        }
        if (prs) {
            ecap |= 1L << 29; // PRS: page requests
        }
        return ecap;
    }
}
