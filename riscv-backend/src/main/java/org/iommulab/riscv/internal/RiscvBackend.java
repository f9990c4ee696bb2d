package org.iommulab.riscv.internal;

import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Map;

import org.iommulab.riscv.internal.driver.RiscvDriver;
import org.iommulab.riscv.internal.hw.RiscvHardware;
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
 * The {@code riscv} backend service: creates riscv IOMMU instances, each a hardware model
 * and the host driver that programs it. When this bundle stops, the platform's registry closes
 * every instance it created.
 */
@Component(service = IommuBackend.class)
@Designate(ocd = RiscvBackend.Config.class)
public final class RiscvBackend implements IommuBackend {
    /** Vendor id, as {@code iommu:create} takes it. */
    public static final String VENDOR = "riscv";

    /** Defaults of new instances; each key can be overridden per instance with key=value. */
    @ObjectClassDefinition(name = "RISC-V IOMMU backend", description = "Defaults of new riscv instances")
    public @interface Config {
        /** @return process_id width: 0, 8, 17 or 20 (PD8, PD17, PD20 advertised as far as it allows) */
        @AttributeDefinition(description = "process_id (PASID) width in bits: 0, 8, 17 or 20")
        int pasid_bits() default 20;

        /** @return capabilities.PAS */
        @AttributeDefinition(description = "physical address size in bits, 32 to 56")
        int pas() default 52;

        /** @return the largest first-stage mode */
        @AttributeDefinition(description = "largest first-stage mode: sv39, sv48 or sv57")
        String first_stage() default "sv57";

        /** @return the largest G-stage mode */
        @AttributeDefinition(description = "largest G-stage mode: sv39x4, sv48x4 or sv57x4")
        String g_stage() default "sv48x4";

        /** @return capabilities.AMO_HWAD */
        @AttributeDefinition(description = "hardware updating of PTE A/D bits (DC.tc.SADE/GADE)")
        boolean hardware_ad() default true;

        /** @return capabilities.ATS */
        @AttributeDefinition(description = "PCIe ATS and PRI: page requests and the page-request queue")
        boolean ats() default true;

        /** @return IOTLB entries */
        @AttributeDefinition(description = "IOTLB entries, 1 to 16777216")
        int iotlb_size() default 4096;
    }

    private final Map<String, String> defaults;

    /** @param config from Config Admin, or the defaults above */
    @Activate
    public RiscvBackend(Config config) {
        Map<String, String> d = new LinkedHashMap<>();
        d.put("pasid-bits", Integer.toString(config.pasid_bits()));
        d.put("pas", Integer.toString(config.pas()));
        d.put("first-stage", config.first_stage());
        d.put("g-stage", config.g_stage());
        d.put("hardware-ad", Boolean.toString(config.hardware_ad()));
        d.put("ats", Boolean.toString(config.ats()));
        d.put("iotlb-size", Integer.toString(config.iotlb_size()));
        this.defaults = d.equals(RiscvHardware.DEFAULTS) ? RiscvHardware.DEFAULTS : Collections.unmodifiableMap(d);
    }

    /** The hardware's defaults ({@link RiscvHardware#DEFAULTS}), for unit tests. */
    public RiscvBackend() {
        this.defaults = RiscvHardware.DEFAULTS;
    }

    @Override
    public String vendor() {
        return VENDOR;
    }

    @Override
    public String description() {
        return "RISC-V IOMMU (device and process directory tables, Sv39/Sv48/Sv57 first stage, Sv39x4/Sv48x4/Sv57x4 G-stage, nested with a guest process directory table)";
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
        RiscvHardware hw = new RiscvHardware(memory, config);
        RiscvDriver driver = new RiscvDriver(name, hw, memory, frames);
        // No saver yet (null): live update answers EOPNOTSUPP until the model and driver can hand over.
        return new ModeledInstance(name, VENDOR, hw, driver, memory, frames, driver::close, null);
    }
}
