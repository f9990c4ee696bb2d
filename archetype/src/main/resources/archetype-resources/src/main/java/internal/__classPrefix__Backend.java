package ${package}.internal;

import java.util.LinkedHashMap;
import java.util.Map;

import ${package}.internal.driver.${classPrefix}Driver;
import ${package}.internal.hw.${classPrefix}Hardware;
import org.iommulab.api.errno.Errno;
import org.iommulab.api.errno.IommuException;
import org.iommulab.api.memory.FrameAllocator;
import org.iommulab.api.memory.PhysicalMemory;
import org.iommulab.api.spi.IommuBackend;
import org.iommulab.api.spi.IommuInstance;
import org.iommulab.pgtable.unit.ModeledInstance;
import org.osgi.service.component.annotations.Activate;
import org.osgi.service.component.annotations.Component;
import org.osgi.service.metatype.annotations.AttributeDefinition;
import org.osgi.service.metatype.annotations.Designate;
import org.osgi.service.metatype.annotations.ObjectClassDefinition;

/**
 * The {@code ${vendor}} backend service: creates ${vendor} IOMMU instances, each a hardware model
 * and the host driver that programs it. When this bundle stops, the platform's registry closes
 * every instance it created.
 */
@Component(service = IommuBackend.class)
@Designate(ocd = ${classPrefix}Backend.Config.class)
public final class ${classPrefix}Backend implements IommuBackend {
    /** Vendor id, as {@code iommu:create} takes it. */
    public static final String VENDOR = "${vendor}";

    /** Defaults of new instances; each key can be overridden per instance with key=value. */
    @ObjectClassDefinition(name = "${classPrefix} IOMMU backend", description = "Defaults of new ${vendor} instances")
    public @interface Config {
        /** @return PASID width of new units, in bits */
        @AttributeDefinition(description = "PASID width in bits, 0 to 20")
        int pasid_bits() default 20;

        /** @return input address width of new units, in bits */
        @AttributeDefinition(description = "input (IOVA) width in bits, 32 to 64")
        int address_bits() default 48;
    }

    private final Map<String, String> defaults;

    /** @param config from Config Admin, or the defaults above */
    @Activate
    public ${classPrefix}Backend(Config config) {
        this(config.pasid_bits(), config.address_bits());
    }

    /** The defaults of {@link Config}, for unit tests. */
    public ${classPrefix}Backend() {
        this(20, 48);
    }

    private ${classPrefix}Backend(int pasidBits, int addressBits) {
        Map<String, String> d = new LinkedHashMap<>();
        d.put("pasid-bits", Integer.toString(pasidBits));
        d.put("address-bits", Integer.toString(addressBits));
        this.defaults = Map.copyOf(d);
    }

    @Override
    public String vendor() {
        return VENDOR;
    }

    @Override
    public String description() {
        return "${classPrefix} IOMMU (generated skeleton: see docs/backend-guide.md)";
    }

    @Override
    public Map<String, String> defaultConfiguration() {
        return defaults;
    }

    @Override
    public IommuInstance create(String name, Map<String, String> configuration, PhysicalMemory memory,
            FrameAllocator frames) throws IommuException {
        Map<String, String> config = new LinkedHashMap<>(defaults);
        for (Map.Entry<String, String> e : configuration.entrySet()) {
            if (!defaults.containsKey(e.getKey())) {
                throw new IommuException(Errno.EINVAL, "unknown key '" + e.getKey() + "' (have " + defaults.keySet() + ")");
            }
            config.put(e.getKey(), e.getValue());
        }
        ${classPrefix}Hardware hw = new ${classPrefix}Hardware(memory, config);
        ${classPrefix}Driver driver = new ${classPrefix}Driver(name, hw, memory, frames);
        // No saver yet (null): live update answers EOPNOTSUPP until the model and driver can hand over.
        return new ModeledInstance(name, VENDOR, hw, driver, memory, frames, driver::close, null);
    }
}
