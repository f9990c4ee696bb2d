package org.iommulab.platform.internal.shell;

import java.util.LinkedHashMap;
import java.util.Map;

import org.apache.felix.service.command.Descriptor;
import org.apache.felix.service.command.Parameter;
import org.iommulab.api.dto.BackendDTO;
import org.iommulab.api.dto.IommuInstanceDTO;
import org.iommulab.api.dto.WalkStepDTO;
import org.iommulab.api.errno.Errno;
import org.iommulab.api.errno.IommuException;
import org.iommulab.api.pasid.Pasids;
import org.iommulab.api.spi.IommuInstance;
import org.iommulab.api.spi.IommuRegistry;
import org.iommulab.api.translation.Access;
import org.iommulab.api.translation.Translation;
import org.osgi.service.component.annotations.Activate;
import org.osgi.service.component.annotations.Component;
import org.osgi.service.component.annotations.Reference;

/**
 * The register-level surface of DESIGN.md, generic over every backend: {@code iommu:}, {@code mmio:}
 * and {@code dma:} commands dispatch to the instance through the SPI.
 */
@Component(service = IommuCommands.class, property = {
        "osgi.command.scope=iommu",
        "osgi.command.function=create",
        "osgi.command.function=destroy",
        "osgi.command.function=list",
        "osgi.command.function=info",
        "osgi.command.function=explain",
        "osgi.command.function=update" })
public final class IommuCommands {
    private final IommuRegistry registry;

    /** @param registry the IOMMU registry */
    @Activate
    public IommuCommands(@Reference IommuRegistry registry) {
        this.registry = registry;
    }

    /**
     * @param vendor vendor id
     * @param name instance name
     * @param settings key=value overrides
     * @throws IommuException ENODEV, EEXIST, EINVAL
     */
    @Descriptor("create an IOMMU instance over host memory; prints its name. With no key=value it has every capability the model implements")
    public void create(@Descriptor("vendor id, see iommu:list") String vendor,
            @Descriptor("instance name") String name,
            @Descriptor("configuration overrides, key=value") String... settings) throws IommuException {
        Map<String, String> config = new LinkedHashMap<>();
        for (String s : settings) {
            int eq = s.indexOf('=');
            if (eq <= 0) {
                throw new IommuException(Errno.EINVAL, "'" + s + "' is not key=value");
            }
            config.put(s.substring(0, eq), s.substring(eq + 1));
        }
        System.out.println(registry.create(vendor, name, config).name());
    }

    /**
     * @param name instance name
     * @throws IommuException ENOENT
     */
    @Descriptor("close and remove an IOMMU instance")
    public void destroy(@Descriptor("instance name") String name) throws IommuException {
        registry.destroy(name);
    }

    /**
     * @param from the new build's URL, or empty for the bundle's own location
     * @param vendor the backend's vendor id
     * @throws IommuException ENODEV, EOPNOTSUPP, EIO, ETIMEDOUT as {@link IommuRegistry#liveUpdate}
     */
    @Descriptor("live update: replace a backend's bundle by a new build while its instances keep running; "
            + "prints 'carried <instance>' for each instance handed over and resumed")
    public void update(
            @Descriptor("URL of the new build (default: the bundle's own location)") @Parameter(names = "--from", absentValue = "") String from,
            @Descriptor("vendor id, see iommu:list") String vendor) throws IommuException {
        for (String name : registry.liveUpdate(vendor, from.isEmpty() ? null : from)) {
            System.out.println("carried " + name);
        }
    }

    /** Lists backends and instances. */
    @Descriptor("list backends ('backend <vendor> <description>') and instances ('instance <name> <vendor>')")
    public void list() {
        for (BackendDTO b : registry.backends()) {
            System.out.printf("backend %s %s%n", b.vendor, b.description);
        }
        for (IommuInstanceDTO i : registry.instanceDTOs()) {
            System.out.printf("instance %s %s%n", i.name, i.vendor);
        }
    }

    /**
     * @param name instance name
     * @throws IommuException ENOENT
     */
    @Descriptor("print an instance's configuration ('config key=value') and counters ('stat name value')")
    public void info(@Descriptor("instance name") String name) throws IommuException {
        IommuInstance instance = instance(registry, name);
        instance.configuration().entrySet().stream().sorted(Map.Entry.comparingByKey())
                .forEach(e -> System.out.printf("config %s=%s%n", e.getKey(), e.getValue()));
        instance.statistics().entrySet().stream().sorted(Map.Entry.comparingByKey())
                .forEach(e -> System.out.printf("stat %s %d%n", e.getKey(), e.getValue()));
    }

    /**
     * @param pasid PASID or absent
     * @param name instance name
     * @param requesterId requester id
     * @param iova input address
     * @throws IommuException ENOENT
     */
    @Descriptor("show the table walk for a request, one line per entry read, nested walks indented")
    public void explain(
            @Descriptor("PASID of the request") @Parameter(names = "--pasid", absentValue = "") String pasid,
            @Descriptor("instance name") String name,
            @Descriptor("requester id: VT-d source id (bus<<8|devfn) or SMMUv3 stream id") String requesterId,
            @Descriptor("input address") String iova) throws IommuException {
        IommuInstance instance = instance(registry, name);
        for (WalkStepDTO step : instance.explain(Numbers.u32("requester id", requesterId), pasid(pasid),
                Numbers.u64("iova", iova), Access.READ)) {
            System.out.println(step);
        }
    }

    static IommuInstance instance(IommuRegistry registry, String name) throws IommuException {
        return registry.instance(name).orElseThrow(() -> new IommuException(Errno.ENOENT, "no IOMMU instance '" + name + "'"));
    }

    static int pasid(String text) throws IommuException {
        if (text == null || text.isEmpty()) {
            return Pasids.NO_PASID;
        }
        return (int) Numbers.u64("pasid", text, Pasids.MAX_PASID);
    }

    /**
     * Formats a translation as DESIGN.md fixes it.
     *
     * @param t a result
     * @return {@code 0x<pa>} or {@code fault 0x<code> <NAME>}
     */
    static String format(Translation t) {
        return t.toString();
    }
}
