package org.iommulab.launcher.internal.demo;

import java.io.PrintStream;

import org.iommulab.api.dto.BackendDTO;
import org.iommulab.api.errno.Errno;
import org.iommulab.api.errno.IommuException;
import org.iommulab.api.memory.HostMemory;
import org.iommulab.api.memory.MemoryAccessException;
import org.iommulab.api.pasid.PasidSet;
import org.iommulab.api.pasid.PasidSpace;
import org.iommulab.api.spi.IommuRegistry;

/**
 * The platform part of the demo: host memory, the frame pool and PASID sets with quotas and
 * ownership. Every step checks its result, so a broken platform makes the demo fail.
 */
final class PlatformDemo {
    private static final long DEMO_ADDRESS = 0x1000;
    private static final long DEMO_VALUE = 0x1122334455667788L;

    private final HostMemory memory;
    private final PasidSpace pasids;
    private final IommuRegistry registry;
    private final PrintStream out;

    PlatformDemo(HostMemory memory, PasidSpace pasids, IommuRegistry registry, PrintStream out) {
        this.memory = memory;
        this.pasids = pasids;
        this.registry = registry;
        this.out = out;
    }

    void run() throws IommuException {
        out.println("== IOMMU Lab demo: the platform ==");
        memoryStep();
        framesStep();
        pasidStep();
        backendsStep();
    }

    private void memoryStep() {
        out.printf("[memory] %d-bit sparse host physical memory, %d pages backed%n", memory.addressBits(),
                memory.stats().backedPages);
        memory.write64(DEMO_ADDRESS, DEMO_VALUE);
        long read = memory.read64(DEMO_ADDRESS);
        out.printf("[memory] write 0x%016x at 0x%x, read back 0x%016x%n", DEMO_VALUE, DEMO_ADDRESS, read);
        expect(read == DEMO_VALUE, "read-back mismatch");
        long unbacked = 0x7_0000_0000L;
        try {
            memory.read64(unbacked);
            expect(false, "reading unbacked memory succeeded");
        } catch (MemoryAccessException e) {
            out.printf("[memory] read at 0x%x is reported, not a crash: %s%n", unbacked, e.getMessage());
        }
    }

    private void framesStep() throws IommuException {
        long before = memory.allocatedFrames();
        long frame = memory.allocateFrames(1);
        out.printf("[frames] allocated a zeroed 4 KiB table frame at 0x%x (pool base 0x%x)%n", frame, memory.poolBase());
        expect(memory.read64(frame) == 0, "new frame is not zeroed");
        memory.freeFrames(frame, 1);
        expect(memory.allocatedFrames() == before, "frame count did not return");
        try {
            memory.freeFrames(frame, 1);
            expect(false, "double free accepted");
        } catch (IommuException e) {
            out.printf("[frames] freed it; a second free is refused: %s%n", e);
        }
    }

    private void pasidStep() throws IommuException {
        String vm = "demo-vm";
        String other = "demo-other";
        PasidSet set = pasids.createSet(vm, 3);
        PasidSet otherSet = pasids.createSet(other, 1);
        try {
            out.printf("[pasid] system space: %d PASIDs (20 bits, PASID 0 reserved)%n", pasids.capacity());
            out.printf("[pasid] set '%s' with quota %d%n", vm, set.quota());
            int a = set.allocate();
            int b = set.allocate();
            out.printf("[pasid] allocated PASIDs %d and %d%n", a, b);
            int wanted = 0x4242;
            int c = set.allocate(wanted, wanted);
            out.printf("[pasid] allocated specific PASID %d (as a migrating VM keeps its PASIDs)%n", c);
            expect(c == wanted, "specific PASID not honoured");
            expectErrno(set::allocate, Errno.ENOSPC, "[pasid] a fourth allocation exceeds the quota");
            int foreign = otherSet.allocate();
            expectErrno(() -> set.free(foreign), Errno.EPERM, "[pasid] freeing '" + other + "' PASID " + foreign + " from '" + vm + "'");
            expectErrno(() -> set.checkOwned(foreign), Errno.EPERM, "[pasid] using PASID " + foreign + " on behalf of '" + vm + "'");
            set.free(b);
            expectErrno(() -> set.free(b), Errno.ENOENT, "[pasid] freeing PASID " + b + " twice");
            out.printf("[pasid] '%s' now holds %s%n", vm, java.util.Arrays.toString(set.pasids()));
        } finally {
            set.close();
            otherSet.close();
        }
        out.printf("[pasid] sets closed; %d PASIDs allocated system-wide%n", pasids.allocated());
    }

    private void backendsStep() {
        if (registry.backends().isEmpty()) {
            out.println("[iommu] no IOMMU backend bundles are installed yet");
        }
        for (BackendDTO b : registry.backends()) {
            out.printf("[iommu] backend %s: %s%n", b.vendor, b.description);
        }
    }

    private interface Step {
        void run() throws IommuException;
    }

    private void expectErrno(Step step, Errno errno, String what) {
        try {
            step.run();
        } catch (IommuException e) {
            expect(e.errno() == errno, what + ": expected " + errno + " but got " + e);
            out.printf("%s -> %s%n", what, e);
            return;
        }
        expect(false, what + ": expected " + errno + " but it succeeded");
    }

    static void expect(boolean condition, String failure) {
        if (!condition) {
            throw new IllegalStateException("demo step failed: " + failure);
        }
    }
}
