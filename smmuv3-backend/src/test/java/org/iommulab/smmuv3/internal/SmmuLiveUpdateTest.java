package org.iommulab.smmuv3.internal;

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
import org.iommulab.api.pasid.Pasids;
import org.iommulab.api.spi.DomainType;
import org.iommulab.api.spi.IommuDomain;
import org.iommulab.api.spi.IommuDriver;
import org.iommulab.api.spi.InstanceState;
import org.iommulab.api.translation.Access;
import org.iommulab.api.translation.Translation;
import org.iommulab.pgtable.FlushOps;
import org.iommulab.pgtable.IoPageTable;
import org.iommulab.pgtable.format.ArmGranule;
import org.iommulab.pgtable.format.ArmStage1;
import org.iommulab.pgtable.unit.ModeledInstance;
import org.iommulab.platform.internal.memory.FramePool;
import org.iommulab.platform.internal.memory.SparseMemory;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * Live update of an SMMUv3 instance: {@code handOver} on one backend object, {@code resume} on a
 * fresh one, with a stage-2 domain, a bypass stream, an SVA binding through the driver's own CD
 * table and a blocked stream in place. The unit translates from the same stream table, CD table
 * and page tables (no frame allocated or freed by the update), the handles keep working, events
 * still reach the fault listener, and a state nobody resumes is freed on close.
 */
class SmmuLiveUpdateTest {
    static final int S2_SID = 0x10;
    static final int SVA_SID = 0x18;
    static final int BYPASS_SID = 0x20;
    static final int BLOCKED_SID = 0x28;
    static final long IPA = 0x4000_0000L;
    static final long PA = 0x8000_0000L;
    static final long VA = 0x40_0000_0000L;

    SparseMemory mem;
    FramePool pool;
    ModeledInstance instance;
    IommuDriver driver;
    IommuDomain s2;
    final List<IommuFault> faults = new CopyOnWriteArrayList<>();
    final Translation t = new Translation();
    final List<long[]> probes = new ArrayList<>();

    @BeforeEach
    void setUp() throws Exception {
        mem = new SparseMemory(52);
        pool = new FramePool(mem, 1L << 40, 1 << 20);
        instance = (ModeledInstance) new SmmuBackend().create("smmu0", Map.of(), mem, pool);
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
        s2 = driver.allocateDomain(DomainType.UNMANAGED);
        s2.map(IPA, PA, 0x20_0000 + 0x3000, IommuDomain.PROT_READ | IommuDomain.PROT_WRITE);
        driver.attach(s2, S2_SID);
        IommuDomain identity = driver.allocateDomain(DomainType.IDENTITY);
        driver.attach(identity, SVA_SID);
        IoPageTable process = IoPageTable.create(ArmStage1.of(ArmGranule.G4K, 16, 48, false, false, false), mem, pool,
                FlushOps.NONE);
        process.map(VA, PA + 0x200_0000, 0x2000, IommuDomain.PROT_READ | IommuDomain.PROT_WRITE);
        driver.bindFirstStage(SVA_SID, 1, process.root(), 48, 0);
        driver.attach(driver.allocateDomain(DomainType.IDENTITY), BYPASS_SID);
        driver.attach(driver.allocateDomain(DomainType.BLOCKED), BLOCKED_SID);

        probes.add(new long[] {S2_SID, Pasids.NO_PASID, IPA + 0x10, Access.READ});
        probes.add(new long[] {S2_SID, Pasids.NO_PASID, IPA + 0x20_2008, Access.WRITE});
        probes.add(new long[] {S2_SID, Pasids.NO_PASID, IPA + 0x40_0000, Access.READ}); // unmapped
        probes.add(new long[] {SVA_SID, 1, VA + 0x1004, Access.WRITE});
        probes.add(new long[] {SVA_SID, 2, VA + 0x1004, Access.READ}); // no CD
        probes.add(new long[] {SVA_SID, Pasids.NO_PASID, 0x1234, Access.READ}); // S1DSS bypass
        probes.add(new long[] {BYPASS_SID, Pasids.NO_PASID, 0x5000, Access.WRITE});
        probes.add(new long[] {BLOCKED_SID, Pasids.NO_PASID, 0x5000, Access.READ});
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
        assertTrue(instance.translate(SVA_SID, 1, VA + 0x1004, Access.READ, t), t.toString());
        assertEquals(PA + 0x200_1004, t.outputAddress());
        long frames = pool.allocatedFrames();
        int faultsBefore = faults.size();

        InstanceState state = instance.handOver();
        AtomicBoolean done = new AtomicBoolean();
        Translation late = new Translation();
        Thread dma = new Thread(() -> {
            instance.translate(S2_SID, Pasids.NO_PASID, IPA + 0x10, Access.READ, late);
            done.set(true);
        });
        dma.start();
        Thread.sleep(100);
        assertFalse(done.get(), "a transaction during the hand-over waits");
        new SmmuBackend().resume(instance, state);
        dma.join(5000);
        assertTrue(done.get());
        assertEquals(PA + 0x10, late.outputAddress(), late.toString());
        assertEquals(before, translateAll(), "every kind of STE translates as before");
        assertEquals(frames, pool.allocatedFrames(), "the update neither allocated nor freed a frame");
        assertTrue(faults.size() > faultsBefore, "events still reach the fault listener");

        assertSame(driver, instance.driver());
        s2.map(IPA + 0x100_0000, PA + 0x300_0000, 0x1000, IommuDomain.PROT_READ);
        assertTrue(instance.translate(S2_SID, Pasids.NO_PASID, IPA + 0x100_0008, Access.READ, t), t.toString());
        assertEquals(PA + 0x300_0008, t.outputAddress());
        assertEquals(0x1000, s2.unmap(IPA + 0x20_2000, 0x1000));
        assertFalse(instance.translate(S2_SID, Pasids.NO_PASID, IPA + 0x20_2008, Access.READ, t),
                "unmapped and invalidated by the new build");
        driver.unbindFirstStage(SVA_SID, 1);
        assertFalse(instance.translate(SVA_SID, 1, VA + 0x1004, Access.READ, t));
        driver.detach(s2, S2_SID);
        driver.freeDomain(s2);
        instance.close();
        assertTrue(pool.allocatedFrames() < frames);
    }

    @Test
    void aSecondHandOverRecordsTheSameState() throws Exception {
        InstanceState first = instance.handOver();
        new SmmuBackend().resume(instance, first);
        assertEquals(first, instance.handOver(), "save and restore are inverse");
    }

    @Test
    void aStateNobodyResumesIsFreedOnClose() throws Exception {
        long before = pool.allocatedFrames();
        ModeledInstance other = (ModeledInstance) new SmmuBackend().create("smmu1", Map.of(), mem, pool);
        IommuDomain d = other.driver().allocateDomain(DomainType.UNMANAGED);
        d.map(IPA, PA, 0x40_0000, IommuDomain.PROT_READ);
        other.driver().attach(d, S2_SID);
        other.handOver();
        other.close();
        assertEquals(before, pool.allocatedFrames(), "every frame the state listed went back");
    }

    @Test
    void refusalsLeaveTheInstanceHandedOver() throws Exception {
        InstanceState state = instance.handOver();
        assertEquals(Errno.EBUSY, assertThrows(IommuException.class, instance::handOver).errno());
        InstanceState vtd = new InstanceState("vtd", "smmu0", state.format(), Map.of());
        assertEquals(Errno.EINVAL, assertThrows(IommuException.class, () -> new SmmuBackend().resume(instance, vtd)).errno());
        new SmmuBackend().resume(instance, state);
        assertTrue(instance.translate(S2_SID, Pasids.NO_PASID, IPA + 0x10, Access.READ, t), t.toString());
    }
}
