package org.iommulab.api.spi;

import java.util.Arrays;
import java.util.Collections;
import java.util.Map;
import java.util.Objects;
import java.util.Set;
import java.util.TreeMap;

/**
 * The state of an IOMMU instance handed from one build of its backend to the next (a live
 * update): what the hardware model holds in registers and internal queues, and what the host
 * driver knows about the structures it built (domains, their page-table roots, attachments, PASID
 * bindings, queue positions, the frames it owns). The structures themselves stay where they are,
 * in the instance's physical memory, and are not copied.
 *
 * <p>Only JDK types cross the hand-over, so the old and the new build need not share a class. A
 * backend names its sections and versions them with {@link #format()}; a build that does not
 * understand a state refuses it ({@code EINVAL}).
 *
 * <p>Immutable and thread safe.
 */
public final class InstanceState {
    private final String vendor;
    private final String name;
    private final int format;
    private final Map<String, long[]> sections;

    /**
     * @param vendor the backend's vendor id, not {@code null}
     * @param name the instance name, not {@code null}
     * @param format the backend's version of the section layout
     * @param sections named sections of 64-bit words, copied; not {@code null}
     */
    public InstanceState(String vendor, String name, int format, Map<String, long[]> sections) {
        this.vendor = Objects.requireNonNull(vendor, "vendor");
        this.name = Objects.requireNonNull(name, "name");
        this.format = format;
        TreeMap<String, long[]> copy = new TreeMap<>();
        sections.forEach((k, v) -> copy.put(Objects.requireNonNull(k), v.clone()));
        this.sections = Collections.unmodifiableMap(copy);
    }

    /** @return the vendor id of the backend that saved it */
    public String vendor() {
        return vendor;
    }

    /** @return the instance name */
    public String name() {
        return name;
    }

    /** @return the backend's version of the section layout */
    public int format() {
        return format;
    }

    /** @return the section names, sorted */
    public Set<String> sectionNames() {
        return sections.keySet();
    }

    /**
     * @param section a section name
     * @return a copy of its words, or an empty array if there is no such section
     */
    public long[] section(String section) {
        long[] words = sections.get(section);
        return words == null ? new long[0] : words.clone();
    }

    /** @return the number of words in all sections */
    public long words() {
        long n = 0;
        for (long[] w : sections.values()) {
            n += w.length;
        }
        return n;
    }

    @Override
    public String toString() {
        StringBuilder b = new StringBuilder(vendor).append(' ').append(name).append(" format ").append(format);
        sections.forEach((k, v) -> b.append(' ').append(k).append('[').append(v.length).append(']'));
        return b.toString();
    }

    @Override
    public boolean equals(Object o) {
        if (!(o instanceof InstanceState s) || !vendor.equals(s.vendor) || !name.equals(s.name) || format != s.format
                || !sections.keySet().equals(s.sections.keySet())) {
            return false;
        }
        for (Map.Entry<String, long[]> e : sections.entrySet()) {
            if (!Arrays.equals(e.getValue(), s.sections.get(e.getKey()))) {
                return false;
            }
        }
        return true;
    }

    @Override
    public int hashCode() {
        return Objects.hash(vendor, name, format, sections.keySet());
    }
}
