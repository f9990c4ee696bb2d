package org.iommulab.riscv.internal.driver;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import java.util.Map;
import java.util.concurrent.CopyOnWriteArrayList;

import org.iommulab.api.errno.Errno;
import org.iommulab.api.errno.IommuException;
import org.iommulab.api.fault.FaultListener;
import org.iommulab.api.fault.IommuFault;
import org.iommulab.api.fault.PageRequest;
import org.iommulab.api.spi.IommuDomain;
import org.iommulab.api.spi.IommuDriver;
import org.iommulab.api.spi.IommuInstance;
import org.iommulab.api.translation.Translation;
import org.iommulab.pgtable.FlushOps;
import org.iommulab.pgtable.IoPageTable;
import org.iommulab.pgtable.format.RiscvPaging;
import org.iommulab.platform.internal.memory.FramePool;
import org.iommulab.platform.internal.memory.SparseMemory;
import org.iommulab.riscv.internal.RiscvBackend;

/**
 * One RISC-V instance (hardware model and driver, as the backend builds them) over a sparse
 * memory. The instance allocates from {@link #pool}; the test's own frames (process tables, data,
 * guest RAM) come from {@link #test}, a second pool, so that {@code pool.allocatedFrames()} counts
 * the driver's frames only.
 */
final class DriverRig implements AutoCloseable {
    static final int RW = IommuDomain.PROT_READ | IommuDomain.PROT_WRITE;
    static final int RID = 0x0110;

    final SparseMemory mem = new SparseMemory(52);
    final FramePool pool = new FramePool(mem, 1L << 40, 1 << 20);
    final FramePool test = new FramePool(mem, 1L << 36, 1 << 16);
    final IommuInstance inst;
    final IommuDriver drv;
    final List<IommuFault> faults = new CopyOnWriteArrayList<>();
    final List<PageRequest> requests = new CopyOnWriteArrayList<>();

    DriverRig() throws IommuException {
        this(Map.of());
    }

    DriverRig(Map<String, String> config) throws IommuException {
        inst = new RiscvBackend().create("rv-test", config, mem, pool);
        drv = inst.driver();
    }

    /** Records faults and page requests in {@link #faults} and {@link #requests}. */
    DriverRig listen() {
        drv.addFaultListener(new FaultListener() {
            @Override
            public void fault(IommuFault fault) {
                faults.add(fault);
            }

            @Override
            public void pageRequest(PageRequest request) {
                requests.add(request);
            }
        });
        return this;
    }

    Translation tr(int rid, int pasid, long address, int access) {
        Translation t = new Translation();
        inst.translate(rid, pasid, address, access, t);
        return t;
    }

    void expectAt(long pa, int rid, int pasid, long address, int access) {
        Translation t = tr(rid, pasid, address, access);
        assertTrue(t.isSuccess(), () -> String.format("0x%x should translate, got %s", address, t));
        assertEquals(pa, t.outputAddress(), () -> String.format("0x%x -> 0x%x, got %s", address, pa, t));
    }

    Translation expectFault(int code, int rid, int pasid, long address, int access) {
        Translation t = tr(rid, pasid, address, access);
        assertFalse(t.isSuccess(), () -> String.format("0x%x should fault with cause %d, got %s", address, code, t));
        assertEquals(code, t.faultCode(), t::toString);
        return t;
    }

    long reg(int offset, int size) throws IommuException {
        return inst.mmioRead(offset, size);
    }

    /** Zeroed test frames (not the driver's). */
    long frames(int count) throws IommuException {
        long a = test.allocateFrames(count);
        mem.fill(a, count * 4096L, (byte) 0);
        return a;
    }

    /** A host process's Sv48 table with user pages, in test frames. */
    IoPageTable process() throws IommuException {
        return IoPageTable.create(RiscvPaging.firstStage(RiscvPaging.Mode.SV48, 52, true, false, true), mem, test,
                FlushOps.NONE);
    }

    static void assertErrno(Errno expected, org.junit.jupiter.api.function.Executable e) {
        IommuException x = assertThrows(IommuException.class, e);
        assertEquals(expected, x.errno(), x::getMessage);
    }

    @Override
    public void close() {
        inst.close();
    }
}
