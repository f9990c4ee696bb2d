package org.iommulab.vtd.internal;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.atomic.AtomicBoolean;

import org.iommulab.api.errno.Errno;
import org.iommulab.api.errno.IommuException;
import org.iommulab.api.fault.FaultListener;
import org.iommulab.api.fault.IommuFault;
import org.iommulab.api.fault.PageRequest;
import org.iommulab.api.nesting.GuestPasidBind;
import org.iommulab.api.nesting.NestingInfo;
import org.iommulab.api.pasid.PasidSet;
import org.iommulab.api.spi.DomainType;
import org.iommulab.api.spi.IommuDomain;
import org.iommulab.api.spi.IommuDriver;
import org.iommulab.api.spi.InstanceState;
import org.iommulab.api.translation.Access;
import org.iommulab.api.translation.Translation;
import org.iommulab.pgtable.FlushOps;
import org.iommulab.pgtable.IoPageTable;
import org.iommulab.pgtable.format.X86FirstStage;
import org.iommulab.pgtable.unit.ModeledInstance;
import org.iommulab.platform.internal.memory.FramePool;
import org.iommulab.platform.internal.memory.SparseMemory;
import org.iommulab.platform.internal.pasid.PasidSpaceImpl;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * Live update of a VT-d instance: {@code handOver} on one backend object, {@code resume} on a
 * fresh one (as the next build of the bundle would), with domains, mappings, a PASID-granular
 * attach, an SVA binding and a nested binding in place. The unit goes on translating from the very
 * same tables (no frame allocated or freed by the update), handles held by consumers keep working,
 * listeners stay registered, and a state that nobody resumes is freed on close.
 */
class VtdLiveUpdateTest {
    static final int SID = 0x0010;
    static final int SVA_SID = 0x0018;
    static final long IOVA = 0x4000_0000L;
    static final long PA = 0x8000_0000L;
    static final long VA = 0x7f00_0000_0000L;

    SparseMemory mem;
    FramePool pool;
    PasidSet owner;
    ModeledInstance instance;
    IommuDriver driver;
    IommuDomain dma;
    IommuDomain aux;
    final List<IommuFault> faults = new CopyOnWriteArrayList<>();
    final Translation t = new Translation();

    /** (sid, pasid, address, access) probes covering every kind of entry set up below. */
    final List<long[]> probes = new ArrayList<>();

    @BeforeEach
    void setUp() throws Exception {
        mem = new SparseMemory(52);
        pool = new FramePool(mem, 1L << 40, 1 << 20);
        owner = new PasidSpaceImpl().createSet("vm", 100);
        instance = (ModeledInstance) new VtdBackend().create("vtd0", Map.of(), mem, pool);
        driver = instance.driver();
        driver.addFaultListener(new FaultListener() {
            @Override
            public void fault(IommuFault fault) {
                faults.add(fault);
            }

            @Override
            public void pageRequest(PageRequest request) {
            }
        });
        dma = driver.allocateDomain(DomainType.UNMANAGED);
        dma.map(IOVA, PA, 0x20_0000 + 0x3000, IommuDomain.PROT_READ | IommuDomain.PROT_WRITE);
        driver.attach(dma, SID);
        aux = driver.allocateDomain(DomainType.UNMANAGED);
        aux.map(IOVA, PA + 0x100_0000, 0x1000, IommuDomain.PROT_READ);
        driver.attachPasid(aux, SID, 7);
        IommuDomain identity = driver.allocateDomain(DomainType.IDENTITY);
        driver.attach(identity, SVA_SID);
        IoPageTable process = IoPageTable.create(X86FirstStage.of(4, 48, false, true, true), mem, pool, FlushOps.NONE);
        process.map(VA, PA + 0x200_0000, 0x2000, IommuDomain.PROT_READ | IommuDomain.PROT_WRITE);
        driver.bindFirstStage(SVA_SID, 3, process.root(), 48, 0);
        // A guest table at GPA 0x1000 (the dma domain maps GPA IOVA.. to PA..): nested on dma.
        int hostPasid = owner.allocate(9, 9);
        IoPageTable guest = IoPageTable.create(X86FirstStage.of(4, 48, false, true, true), mem, pool, FlushOps.NONE);
        guest.map(VA, IOVA + 0x1000, 0x1000, IommuDomain.PROT_READ | IommuDomain.PROT_WRITE);
        // The guest table's own frames must be reachable through the parent: map them at their GPA = HPA.
        for (int i = 0; i + 1 < guest.ownedFrames().length; i += 2) {
            long frame = guest.ownedFrames()[i];
            dma.map(frame, frame, 0x1000, IommuDomain.PROT_READ | IommuDomain.PROT_WRITE);
        }
        driver.bindGuestPasid(dma, SID, new GuestPasidBind(NestingInfo.FORMAT_INTEL_VTD, hostPasid, 1, true,
                guest.root(), 48, 0, 0, 0), owner);

        probes.add(new long[] {SID, -1, IOVA + 0x10, Access.READ});
        probes.add(new long[] {SID, -1, IOVA + 0x1f_f008, Access.WRITE});
        probes.add(new long[] {SID, -1, IOVA + 0x20_2000, Access.WRITE});
        probes.add(new long[] {SID, -1, IOVA + 0x40_0000, Access.READ}); // unmapped
        probes.add(new long[] {SID, 7, IOVA + 0x18, Access.READ});
        probes.add(new long[] {SID, 7, IOVA + 0x18, Access.WRITE}); // read-only
        probes.add(new long[] {SVA_SID, 3, VA + 0x1004, Access.WRITE});
        probes.add(new long[] {SVA_SID, 3, VA + 0x1004, Access.WRITE | Access.PRIV}); // no SRE
        probes.add(new long[] {SID, hostPasid, VA + 0x20, Access.READ}); // GVA -> GPA -> HPA
        probes.add(new long[] {0x0020, -1, IOVA, Access.READ}); // no context entry
    }

    private int hostPasidOf() {
        return owner.pasids()[0];
    }

    private List<String> translateAll() {
        List<String> out = new ArrayList<>();
        for (long[] p : probes) {
            instance.translate((int) p[0], (int) p[1], p[2], (int) p[3], t);
            out.add(t.toString());
        }
        return out;
    }

    @Test
    void aResumedInstanceTranslatesFromTheSameTablesAndKeepsItsHandles() throws Exception {
        List<String> before = translateAll();
        assertTrue(instance.translate(SID, hostPasidOf(), VA + 0x20, Access.READ, t), t.toString());
        assertEquals(PA + 0x1020, t.outputAddress(), "the nested binding works before the update");
        long frames = pool.allocatedFrames();
        int faultsBefore = faults.size();

        InstanceState state = instance.handOver();
        assertEquals("vtd", state.vendor());
        assertTrue(state.sectionNames().containsAll(List.of("hw.regs", "drv.domains", "drv.devices", "frames")), state.toString());

        // A DMA arriving now waits for the next build, as on a stalled bus.
        AtomicBoolean done = new AtomicBoolean();
        Translation late = new Translation();
        Thread dmaThread = new Thread(() -> {
            instance.translate(SID, -1, IOVA + 0x10, Access.READ, late);
            done.set(true);
        });
        dmaThread.start();
        Thread.sleep(100);
        assertFalse(done.get(), "a translation during the hand-over waits");

        new VtdBackend().resume(instance, state);
        dmaThread.join(5000);
        assertTrue(done.get());
        assertEquals(PA + 0x10, late.outputAddress(), late.toString());
        assertEquals(before, translateAll(), "every kind of entry translates as before");
        assertEquals(frames, pool.allocatedFrames(), "the update neither allocated nor freed a frame");
        assertTrue(faults.size() > faultsBefore, "the fault listener still hears faults");

        // The handles consumers hold work on the new driver.
        assertSame(driver, instance.driver());
        dma.map(IOVA + 0x100_0000, PA + 0x300_0000, 0x1000, IommuDomain.PROT_READ);
        assertTrue(instance.translate(SID, -1, IOVA + 0x100_0008, Access.READ, t), t.toString());
        assertEquals(PA + 0x300_0008, t.outputAddress());
        assertTrue(instance.translate(SID, -1, IOVA + 0x20_2010, Access.READ, t), "cached in the new build's IOTLB");
        assertEquals(0x1000, dma.unmap(IOVA + 0x20_2000, 0x1000));
        assertFalse(instance.translate(SID, -1, IOVA + 0x20_2010, Access.READ, t), "unmapped and invalidated after the update");
        assertEquals(0x20_0000, dma.unmap(IOVA, 0x20_0000), "the 2 MiB leaf the first build wrote");
        driver.detachPasid(aux, SID, 7);
        assertFalse(instance.translate(SID, 7, IOVA + 0x18, Access.READ, t));
        driver.freeDomain(aux);
        driver.unbindFirstStage(SVA_SID, 3);
        assertFalse(instance.translate(SVA_SID, 3, VA + 0x1004, Access.READ, t));

        instance.close();
        assertTrue(pool.allocatedFrames() < frames, "close after an update frees what the first build allocated");
    }

    @Test
    void aSecondHandOverRecordsTheSameState() throws Exception {
        InstanceState first = instance.handOver();
        new VtdBackend().resume(instance, first);
        assertEquals(first, instance.handOver(), "save and restore are inverse: nothing is lost or invented");
    }

    @Test
    void aStateNobodyResumesIsFreedOnClose() throws Exception {
        long unrelated = pool.allocatedFrames();
        ModeledInstance other = (ModeledInstance) new VtdBackend().create("vtd1", Map.of(), mem, pool);
        IommuDomain d = other.driver().allocateDomain(DomainType.UNMANAGED);
        d.map(IOVA, PA, 0x40_0000, IommuDomain.PROT_READ);
        other.driver().attach(d, SID);
        assertTrue(pool.allocatedFrames() > unrelated);
        other.handOver();
        other.close();
        assertEquals(unrelated, pool.allocatedFrames(), "every frame the state listed went back");
        assertFalse(other.translate(SID, -1, IOVA, Access.READ, t));
        assertEquals("IOMMU_CLOSED", t.faultName());
    }

    @Test
    void refusalsLeaveTheInstanceAsItWas() throws Exception {
        InstanceState state = instance.handOver();
        assertEquals(Errno.EBUSY, assertThrows(IommuException.class, instance::handOver).errno());
        InstanceState foreign = new InstanceState("smmuv3", "vtd0", state.format(), Map.of());
        assertEquals(Errno.EINVAL, assertThrows(IommuException.class, () -> new VtdBackend().resume(instance, foreign)).errno());
        InstanceState truncated = new InstanceState("vtd", "vtd0", state.format(), Map.of("drv.main", new long[] {1}));
        assertEquals(Errno.EINVAL, assertThrows(IommuException.class, () -> new VtdBackend().resume(instance, truncated)).errno());
        // Still handed over: the real state resumes it.
        new VtdBackend().resume(instance, state);
        assertTrue(instance.translate(SID, -1, IOVA + 0x10, Access.READ, t), t.toString());
        InstanceState again = instance.handOver();
        new VtdBackend().resume(instance, again);
        assertEquals(Errno.EINVAL, assertThrows(IommuException.class, () -> new VtdBackend().resume(instance, again)).errno(),
                "an instance in service cannot be resumed");
    }
}
