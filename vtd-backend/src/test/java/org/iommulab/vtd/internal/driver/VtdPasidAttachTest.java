package org.iommulab.vtd.internal.driver;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Map;

import org.iommulab.api.errno.Errno;
import org.iommulab.api.errno.IommuException;
import org.iommulab.api.nesting.GuestPasidBind;
import org.iommulab.api.nesting.NestingInfo;
import org.iommulab.api.pasid.PasidSet;
import org.iommulab.api.pasid.Pasids;
import org.iommulab.api.spi.DomainType;
import org.iommulab.api.spi.IommuDomain;
import org.iommulab.api.translation.Access;
import org.iommulab.api.translation.Translation;
import org.iommulab.platform.internal.memory.FramePool;
import org.iommulab.platform.internal.memory.SparseMemory;
import org.iommulab.platform.internal.pasid.PasidSpaceImpl;
import org.iommulab.vtd.internal.hw.VtdConfig;
import org.iommulab.vtd.internal.hw.VtdHardware;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.function.Executable;

/**
 * Domains attached to single PASIDs of a requester (auxiliary domains, as VFIO gives mediated
 * devices their VM's domain): PGTT second-stage PASID entries, isolation between PASIDs of one
 * source id, nesting on such a domain, and teardown.
 */
class VtdPasidAttachTest {
    static final int RW = IommuDomain.PROT_READ | IommuDomain.PROT_WRITE;
    static final int SID = 0x0010;

    SparseMemory mem;
    FramePool pool;
    VtdHardware hw;
    VtdDriver driver;
    final Translation t = new Translation();

    @BeforeEach
    void setUp() throws Exception {
        mem = new SparseMemory(52);
        pool = new FramePool(mem, 1L << 40, 1 << 20);
        hw = new VtdHardware(mem, VtdConfig.of(Map.of()));
        driver = new VtdDriver("vtd-test", hw, mem, pool);
    }

    static void assertErrno(Errno errno, Executable call) {
        assertEquals(errno, assertThrows(IommuException.class, call).errno());
    }

    @Test
    void twoDomainsOnTwoPasidsOfOneDeviceStayApart() throws Exception {
        IommuDomain vm1 = driver.allocateDomain(DomainType.UNMANAGED);
        IommuDomain vm2 = driver.allocateDomain(DomainType.UNMANAGED);
        vm1.map(0, 0x4000_0000L, 0x10_0000, RW);
        vm2.map(0, 0x5000_0000L, 0x10_0000, RW);
        driver.attachPasid(vm1, SID, 7);
        driver.attachPasid(vm2, SID, 9);
        assertTrue(hw.translate(SID, 7, 0x1234, Access.WRITE, t), t.toString());
        assertEquals(0x4000_1234L, t.outputAddress());
        assertTrue(hw.translate(SID, 9, 0x1234, Access.WRITE, t));
        assertEquals(0x5000_1234L, t.outputAddress());
        assertFalse(hw.translate(SID, Pasids.NO_PASID, 0x1234, Access.READ, t), "requests without PASID stay blocked");
        assertFalse(hw.translate(SID, 8, 0x1234, Access.READ, t), "an unattached PASID faults");

        // The domain's unmap reaches the PASID's cached translations.
        vm1.unmap(0x1000, 0x1000);
        assertFalse(hw.translate(SID, 7, 0x1234, Access.READ, t), "no stale translation after unmap");
        assertTrue(hw.translate(SID, 9, 0x1234, Access.READ, t), "the other PASID is untouched");

        assertErrno(Errno.EBUSY, () -> driver.attachPasid(vm2, SID, 7));
        assertErrno(Errno.EBUSY, () -> driver.freeDomain(vm1));
        assertErrno(Errno.EINVAL, () -> driver.attachPasid(vm1, SID, 0));
        assertErrno(Errno.EINVAL, () -> driver.attachPasid(driver.allocateDomain(DomainType.IDENTITY), SID, 3));
        assertErrno(Errno.ENOENT, () -> driver.detachPasid(vm2, SID, 7));

        // The source id can still get a domain for its requests without PASID.
        IommuDomain host = driver.allocateDomain(DomainType.UNMANAGED);
        host.map(0, 0x6000_0000L, 0x1000, RW);
        driver.attach(host, SID);
        assertTrue(hw.translate(SID, Pasids.NO_PASID, 0x10, Access.READ, t));
        assertEquals(0x6000_0010L, t.outputAddress());
        assertTrue(hw.translate(SID, 9, 0x1234, Access.READ, t));
        driver.detach(host, SID);
        assertTrue(hw.translate(SID, 9, 0x1234, Access.READ, t), "detaching the RID domain keeps the PASIDs");

        driver.detachPasid(vm1, SID, 7);
        driver.detachPasid(vm2, SID, 9);
        assertFalse(hw.translate(SID, 9, 0x1234, Access.READ, t));
        driver.freeDomain(vm1);
        driver.freeDomain(vm2);
        driver.freeDomain(host);
        driver.close();
        assertEquals(0, pool.allocatedFrames(), "nothing leaks");
    }

    @Test
    void guestTablesNestOnAPasidAttachedDomainAndGoWithIt() throws Exception {
        PasidSet vm = new PasidSpaceImpl().createSet("vm1", 4);
        IommuDomain d = driver.allocateDomain(DomainType.UNMANAGED);
        long gpaBase = 0x4000_0000L;
        d.map(0, gpaBase, 0x20_0000, RW);
        int aux = vm.allocate();
        int hpasid = vm.allocate();
        driver.attachPasid(d, SID, aux);
        long gva = 0x7f00_0020_1000L;
        long[] tables = {0x1000, 0x2000, 0x3000, 0x4000};
        for (int level = 0; level < 4; level++) {
            long index = (gva >>> (39 - 9 * level)) & 511;
            mem.write64(gpaBase + tables[level] + 8 * index, (level < 3 ? tables[level + 1] : 0x5000) | 7);
        }
        GuestPasidBind bind = new GuestPasidBind(NestingInfo.FORMAT_INTEL_VTD, hpasid, 1, true, 0x1000, 48, 0, 0, 0);
        driver.bindGuestPasid(d, SID, bind, vm);
        assertTrue(hw.translate(SID, hpasid, gva | 0x12, Access.READ, t), t.toString());
        assertEquals(gpaBase + 0x5012, t.outputAddress());
        assertErrno(Errno.EBUSY, () -> driver.attachPasid(d, SID, hpasid));

        driver.detachPasid(d, SID, aux);
        assertFalse(hw.translate(SID, hpasid, gva, Access.READ, t), "the nested binding went with the attachment");
        assertErrno(Errno.ENOENT, () -> driver.unbindGuestPasid(d, SID, hpasid, vm));
        assertErrno(Errno.ENOENT, () -> driver.bindGuestPasid(d, SID, bind, vm));
    }
}
