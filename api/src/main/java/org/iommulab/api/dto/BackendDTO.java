package org.iommulab.api.dto;

import java.util.Map;

/** A snapshot of a registered backend. */
public class BackendDTO {
    /** Vendor id. */
    public String vendor;
    /** One-line description. */
    public String description;
    /** Default (most capable) configuration. */
    public Map<String, String> defaults;
    /** Bundle id of the bundle that registered it. */
    public long bundleId;
}
