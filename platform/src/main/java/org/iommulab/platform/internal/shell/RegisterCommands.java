package org.iommulab.platform.internal.shell;

import org.apache.felix.service.command.Descriptor;
import org.apache.felix.service.command.Parameter;
import org.iommulab.api.errno.Errno;
import org.iommulab.api.errno.IommuException;
import org.iommulab.api.spi.IommuInstance;
import org.iommulab.api.spi.IommuRegistry;
import org.iommulab.api.translation.Access;
import org.iommulab.api.translation.Translation;
import org.osgi.service.component.annotations.Activate;
import org.osgi.service.component.annotations.Component;
import org.osgi.service.component.annotations.Reference;

/** {@code mmio:} register accesses and {@code dma:translate}, for any backend's instance. */
@Component(service = RegisterCommands.class, property = {
        "osgi.command.scope=mmio",
        "osgi.command.function=read",
        "osgi.command.function=write" })
public final class RegisterCommands {
    private final IommuRegistry registry;

    /** @param registry the IOMMU registry */
    @Activate
    public RegisterCommands(@Reference IommuRegistry registry) {
        this.registry = registry;
    }

    /**
     * @param name instance
     * @param offset register offset
     * @throws IommuException ENOENT, EINVAL
     */
    @Descriptor("read a 32-bit register; prints 0x<hex>")
    public void read(@Descriptor("instance name") String name, @Descriptor("register offset") String offset)
            throws IommuException {
        read(name, offset, "4");
    }

    /**
     * @param name instance
     * @param offset register offset
     * @param size 4 or 8
     * @throws IommuException ENOENT, EINVAL
     */
    @Descriptor("read a register of 4 or 8 bytes; prints 0x<hex>")
    public void read(@Descriptor("instance name") String name, @Descriptor("register offset") String offset,
            @Descriptor("access size in bytes: 4 or 8") String size) throws IommuException {
        IommuInstance instance = IommuCommands.instance(registry, name);
        int s = (int) Numbers.u64("size", size, 8);
        System.out.printf("0x%0" + (2 * Math.max(1, Math.min(s, 8))) + "x%n",
                instance.mmioRead(Numbers.u64("offset", offset), s));
    }

    /**
     * @param name instance
     * @param offset register offset
     * @param value value
     * @throws IommuException ENOENT, EINVAL
     */
    @Descriptor("write a 32-bit register")
    public void write(@Descriptor("instance name") String name, @Descriptor("register offset") String offset,
            @Descriptor("value") String value) throws IommuException {
        write(name, offset, value, "4");
    }

    /**
     * @param name instance
     * @param offset register offset
     * @param value value
     * @param size 4 or 8
     * @throws IommuException ENOENT, EINVAL
     */
    @Descriptor("write a register of 4 or 8 bytes")
    public void write(@Descriptor("instance name") String name, @Descriptor("register offset") String offset,
            @Descriptor("value") String value, @Descriptor("access size in bytes: 4 or 8") String size)
            throws IommuException {
        IommuInstance instance = IommuCommands.instance(registry, name);
        int s = (int) Numbers.u64("size", size, 8);
        long v = Numbers.u64("value", value);
        if (s == 4 && Long.compareUnsigned(v, 0xffff_ffffL) > 0) {
            throw new IommuException(Errno.EINVAL, String.format("value 0x%x does not fit a 4-byte register", v));
        }
        instance.mmioWrite(Numbers.u64("offset", offset), v, s);
    }

    /** {@code dma:translate}, registered as its own scope. */
    @Component(service = DmaCommands.class, property = {
            "osgi.command.scope=dma",
            "osgi.command.function=translate" })
    public static final class DmaCommands {
        private final IommuRegistry registry;
        private final Translation result = new Translation();

        /** @param registry the IOMMU registry */
        @Activate
        public DmaCommands(@Reference IommuRegistry registry) {
            this.registry = registry;
        }

        /**
         * @param pasid PASID or empty
         * @param write write access
         * @param exec instruction fetch
         * @param priv privileged
         * @param name instance
         * @param requesterId requester id
         * @param iova input address
         * @throws IommuException ENOENT
         */
        @Descriptor("translate one DMA request; prints 0x<pa> or 'fault 0x<code> <NAME>' with the vendor's architectural code")
        public synchronized void translate(
                @Descriptor("PASID of the request") @Parameter(names = "--pasid", absentValue = "") String pasid,
                @Descriptor("write access (default read)") @Parameter(names = "--write", presentValue = "true", absentValue = "false") boolean write,
                @Descriptor("instruction fetch") @Parameter(names = "--exec", presentValue = "true", absentValue = "false") boolean exec,
                @Descriptor("privileged (supervisor) request") @Parameter(names = "--priv", presentValue = "true", absentValue = "false") boolean priv,
                @Descriptor("instance name") String name,
                @Descriptor("requester id: VT-d source id (bus<<8|devfn) or SMMUv3 stream id") String requesterId,
                @Descriptor("input address") String iova) throws IommuException {
            IommuInstance instance = IommuCommands.instance(registry, name);
            int access = (write ? Access.WRITE : Access.READ) | (exec ? Access.EXEC : 0) | (priv ? Access.PRIV : 0);
            instance.translate(Numbers.u32("requester id", requesterId), IommuCommands.pasid(pasid),
                    Numbers.u64("iova", iova), access, result);
            System.out.println(IommuCommands.format(result));
        }
    }
}
