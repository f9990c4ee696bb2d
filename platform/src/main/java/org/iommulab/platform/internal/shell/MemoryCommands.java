package org.iommulab.platform.internal.shell;

import org.apache.felix.service.command.Descriptor;
import org.iommulab.api.errno.Errno;
import org.iommulab.api.errno.IommuException;
import org.iommulab.api.dto.MemoryStatsDTO;
import org.iommulab.api.memory.HostMemory;
import org.iommulab.api.memory.MemoryAccessException;
import org.osgi.service.component.annotations.Activate;
import org.osgi.service.component.annotations.Component;
import org.osgi.service.component.annotations.Reference;

/** {@code mem:} commands on host physical memory. A failing command throws, so scripts stop. */
@Component(service = MemoryCommands.class, property = {
        "osgi.command.scope=mem",
        "osgi.command.function=read",
        "osgi.command.function=write",
        "osgi.command.function=dump",
        "osgi.command.function=stats" })
public final class MemoryCommands {
    private final HostMemory memory;

    /** @param memory host memory */
    @Activate
    public MemoryCommands(@Reference HostMemory memory) {
        this.memory = memory;
    }

    /**
     * @param hpa host physical address
     * @param value the value
     * @throws IommuException EINVAL for a bad number, EFAULT beyond the address width
     */
    @Descriptor("write a 64-bit little-endian value to host physical memory")
    public void write(@Descriptor("host physical address (decimal or 0x hex)") String hpa,
            @Descriptor("unsigned 64-bit value (decimal or 0x hex)") String value) throws IommuException {
        long address = Numbers.u64("address", hpa);
        long v = Numbers.u64("value", value);
        access(() -> memory.write64(address, v));
    }

    /**
     * @param hpa host physical address
     * @throws IommuException EINVAL for a bad number, EFAULT for unbacked memory
     */
    @Descriptor("read a 64-bit little-endian value from host physical memory; prints 0x<16 hex digits>")
    public void read(@Descriptor("host physical address (decimal or 0x hex)") String hpa) throws IommuException {
        long address = Numbers.u64("address", hpa);
        long[] v = new long[1];
        access(() -> v[0] = memory.read64(address));
        System.out.println(Numbers.hex64(v[0]));
    }

    /**
     * @param hpa start address
     * @param bytes how many bytes, rounded up to 8
     * @throws IommuException EINVAL for a bad number, EFAULT for unbacked memory
     */
    @Descriptor("print 64-bit words of host physical memory, one '<address>: <value>' line each")
    public void dump(@Descriptor("host physical address") String hpa,
            @Descriptor("number of bytes (at most 4096)") String bytes) throws IommuException {
        long address = Numbers.u64("address", hpa);
        long length = Numbers.u64("bytes", bytes, 4096);
        StringBuilder out = new StringBuilder();
        access(() -> {
            for (long off = 0; off < length; off += 8) {
                out.append(String.format("0x%x: %s%n", address + off, Numbers.hex64(memory.read64(address + off))));
            }
        });
        System.out.print(out);
    }

    /**
     * @param hpa start address
     * @throws IommuException EINVAL for a bad number, EFAULT for unbacked memory
     */
    @Descriptor("print 64 bytes of host physical memory as 64-bit words")
    public void dump(@Descriptor("host physical address") String hpa) throws IommuException {
        dump(hpa, "64");
    }

    /** Prints memory usage. */
    @Descriptor("print host memory usage: address width, backed pages, allocated frames, frame pool")
    public void stats() {
        MemoryStatsDTO s = memory.stats();
        System.out.printf("address-bits %d%nbacked-pages %d%nallocated-frames %d%npool-base 0x%x%npool-frames %d%n",
                s.addressBits, s.backedPages, s.allocatedFrames, s.poolBase, s.poolFrames);
    }

    /** Runs memory accesses; a failed access becomes EFAULT, as a bad user pointer does on Linux. */
    private static void access(Runnable r) throws IommuException {
        try {
            r.run();
        } catch (MemoryAccessException e) {
            throw new IommuException(Errno.EFAULT, e.getMessage(), e);
        }
    }
}
