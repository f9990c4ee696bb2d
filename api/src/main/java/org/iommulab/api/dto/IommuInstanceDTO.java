package org.iommulab.api.dto;

import java.util.Map;

/** A snapshot of an IOMMU instance. */
public class IommuInstanceDTO {
    /** Instance name. */
    public String name;
    /** Vendor id. */
    public String vendor;
    /** Effective configuration. */
    public Map<String, String> configuration;
    /** Counters by name. */
    public Map<String, Long> statistics;
}
