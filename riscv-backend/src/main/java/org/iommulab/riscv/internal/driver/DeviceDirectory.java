package org.iommulab.riscv.internal.driver;

import java.util.HashMap;
import java.util.Map;

import org.iommulab.api.errno.Errno;
import org.iommulab.api.errno.IommuException;
import org.iommulab.api.memory.FrameAllocator;
import org.iommulab.api.memory.PhysicalMemory;
import org.iommulab.riscv.internal.spec.DeviceContext;
import org.iommulab.riscv.internal.spec.Reg;

/**
 * The driver's two-level device-directory table (spec §2.1 "Device-Directory-Table", ddtp.iommu_mode
 * 2LVL, base-format device contexts): a root page of 512 non-leaf entries indexed by DDI[1] =
 * device_id[15:7], each pointing at a leaf page of 128 32-byte device contexts indexed by DDI[0] =
 * device_id[6:0]. 16-bit device ids: PCIe requester ids. Leaf pages are allocated on first use
 * (their contexts all invalid) and kept until {@link #free()}. A new non-leaf entry needs no
 * invalidation: the unit never caches an entry whose V is clear (§"Caching invalid entries").
 *
 * <p>Not thread safe: the driver's monitor guards it.
 */
final class DeviceDirectory {
    /** Device ids are 16 bits in 2LVL mode with base-format contexts. */
    static final int DEVICE_ID_BITS = DeviceContext.deviceIdBits(2);

    private final PhysicalMemory memory;
    private final FrameAllocator frames;
    private final long root;
    /** Leaf pages by DDI[1]. */
    private final Map<Integer, Long> leaves = new HashMap<>();

    DeviceDirectory(PhysicalMemory memory, FrameAllocator frames, long root) {
        this.memory = memory;
        this.frames = frames;
        this.root = root;
    }

    /** @return the ddtp value selecting this table: 2LVL, PPN of the root */
    long ddtp() {
        return (root >>> 12) << Reg.PPN_SHIFT | Reg.MODE_2LVL;
    }

    /** @return {@code true} for a device id the table can index */
    static boolean fits(int deviceId) {
        return deviceId >= 0 && deviceId >>> DEVICE_ID_BITS == 0;
    }

    /** @throws IommuException {@code EINVAL} for a device id the table cannot index */
    static void checkFits(int deviceId) throws IommuException {
        if (!fits(deviceId)) {
            throw new IommuException(Errno.EINVAL, String.format(
                    "device id 0x%x is beyond the two-level DDT (16-bit requester ids)", deviceId));
        }
    }

    /**
     * @param deviceId a device id that {@link #fits}
     * @return the address of its device context, its leaf page allocated if needed
     * @throws IommuException {@code ENOMEM} if no frame is left for the leaf page
     */
    long dc(int deviceId) throws IommuException {
        int i1 = DeviceContext.ddi(deviceId, 1);
        Long leaf = leaves.get(i1);
        if (leaf == null) {
            leaf = frames.allocateFrames(1);
            memory.fill(leaf, FrameAllocator.FRAME_SIZE, (byte) 0);
            leaves.put(i1, leaf);
            // §2.1.1 non-leaf DDT entry: V 0, PPN 53:10.
            memory.write64(root + 8L * i1, (leaf >>> 12) << Reg.PPN_SHIFT | DeviceContext.DDTE_V);
        }
        return leaf + (long) DeviceContext.SIZE * DeviceContext.ddi(deviceId, 0);
    }

    /** Frees the leaf pages and the root; the unit must not walk the table any more. */
    void free() {
        for (long leaf : leaves.values()) {
            PasFrames.freeQuietly(frames, leaf, 1);
        }
        leaves.clear();
        PasFrames.freeQuietly(frames, root, 1);
    }
}
