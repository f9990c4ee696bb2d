package org.iommulab.idxd.internal;

import static org.iommulab.idxd.internal.hw.GuestSpace.gva;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.iommulab.api.errno.Errno;
import org.iommulab.api.errno.IommuException;
import org.iommulab.api.idxd.Dsa;
import org.iommulab.api.idxd.Dsa.CompletionRecord;
import org.iommulab.api.idxd.IdxdDevice;
import org.iommulab.api.idxd.Mdev;
import org.iommulab.api.idxd.SubmitStatus;
import org.iommulab.api.idxd.WorkQueueConfig;
import org.iommulab.api.pasid.PasidSet;
import org.iommulab.idxd.internal.hw.DsaDevice;
import org.iommulab.idxd.internal.hw.DsaRegisters;
import org.iommulab.idxd.internal.hw.GuestSpace;
import org.iommulab.vfio.internal.VfioStack;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * Mediated devices: two VMs share one DSA through mdevs on one shared queue, each with its own
 * VFIO container (the mdev's domain attached to a default PASID of the parent) and its own guest
 * PASID translation; neither can reach the other's memory or use a PASID the host did not give it.
 */
class MdevTest {
    static final long MB = 1 << 20;

    final VfioStack stack = new VfioStack();
    IdxdServiceImpl service;
    IdxdDevice dsa;

    /** One VM: its PASID set, its mdev, its container and guest address space. */
    final class Vm {
        final PasidSet pasids;
        final Mdev mdev;
        final GuestSpace space;

        Vm(String name, int wq) throws Exception {
            pasids = stack.pasids.createSet(name, 16);
            mdev = dsa.createMdev(name + "-dsa", wq, pasids);
            space = new GuestSpace(stack, mdev.requester(), name, 32 * MB, 4 * MB).map(0, 16 * MB, true);
        }

        /** The guest programs its virtual queue through the virtual registers. */
        void programQueue(boolean dedicated, int guestPasid) throws Exception {
            MdevTest.programQueue(mdev, dedicated, guestPasid);
        }

        int command(int cmd, int operand) throws Exception {
            mdev.mmioWrite(DsaRegisters.CMD, (long) cmd << 20 | operand, 4);
            return (int) mdev.mmioRead(DsaRegisters.CMDSTS, 4) & 0xff;
        }

        CompletionRecord completion() throws Exception {
            return CompletionRecord.decode(space.read(12 * MB, 32));
        }
    }

    /** What a guest driver writes: WQCFG of its virtual queue 0 (size 8, priority 5), then ENABLE_DEVICE. */
    static void programQueue(Mdev mdev, boolean dedicated, int guestPasid) throws Exception {
        mdev.mmioWrite(DsaRegisters.WQCFG_BASE, 8, 4);
        mdev.mmioWrite(DsaRegisters.WQCFG_BASE + 8, (dedicated ? 1 : 0) | 5 << 4 | (guestPasid & 0xfffff) << 8 | 1 << 28, 4);
        mdev.mmioWrite(DsaRegisters.WQCFG_BASE + 12, 20 | 5 << 5, 4);
        mdev.mmioWrite(DsaRegisters.CMD, (long) DsaRegisters.CMD_ENABLE_DEVICE << 20, 4);
    }

    @BeforeEach
    void setUp() throws Exception {
        service = new IdxdServiceImpl(stack.registry, stack.bus);
        stack.instance("vtd", "vtd0");
        dsa = service.create("dsa0", "vtd0", 0x10);
        dsa.configure(0, WorkQueueConfig.shared(32));
        dsa.configure(1, WorkQueueConfig.dedicated(8, -1));
        dsa.enable();
        dsa.enableWq(0);
    }

    @AfterEach
    void tearDown() {
        service.deactivate();
    }

    @Test
    void twoVmsShareADeviceAndNeitherReachesTheOthersMemory() throws Exception {
        Vm a = new Vm("vm1", 0);
        Vm b = new Vm("vm2", 0);
        a.mdev.mapGuestPasid(1, a.space.pasid);
        b.mdev.mapGuestPasid(1, b.space.pasid); // the same guest PASID in both guests
        a.programQueue(false, 0);
        b.programQueue(false, 0);
        assertEquals(0, a.command(DsaRegisters.CMD_ENABLE_WQ, 0));
        assertEquals(0, b.command(DsaRegisters.CMD_ENABLE_WQ, 0));
        byte[] dataA = new byte[8192];
        byte[] dataB = new byte[8192];
        java.util.Arrays.fill(dataA, (byte) 0xaa);
        java.util.Arrays.fill(dataB, (byte) 0xbb);
        a.space.write(MB, dataA);
        b.space.write(MB, dataB);
        // Both guests copy GVA(1 MiB) -> GVA(4 MiB) with guest PASID 1.
        byte[] copy = Dsa.descriptor(Dsa.OP_MEMMOVE).addr1(gva(MB)).addr2(gva(4 * MB)).size(8192)
                .completion(gva(12 * MB)).build();
        assertEquals(SubmitStatus.ACCEPTED, a.mdev.enqcmd(copy, 1));
        assertEquals(SubmitStatus.ACCEPTED, b.mdev.enqcmd(copy, 1));
        assertTrue(dsa.awaitIdle(10_000));
        assertEquals(Dsa.COMP_SUCCESS, a.completion().status(), a.completion().toString());
        assertEquals(Dsa.COMP_SUCCESS, b.completion().status());
        assertArrayEquals(dataA, a.space.read(4 * MB, 8192), "each VM's copy stays in its memory");
        assertArrayEquals(dataB, b.space.read(4 * MB, 8192));

        // The host cannot reconfigure a queue that backs mdevs (another VM's mdev could take it over).
        dsa.disableWq(0);
        assertEquals(Errno.EBUSY, assertThrows(IommuException.class,
                () -> dsa.configure(0, WorkQueueConfig.dedicated(8, 1))).errno());
        dsa.enableWq(0);
        // The security point: only PASIDs the host gave the VM.
        assertEquals(Errno.EPERM, assertThrows(IommuException.class, () -> a.mdev.mapGuestPasid(2, b.space.pasid)).errno());
        assertEquals(SubmitStatus.REJECTED, a.mdev.enqcmd(copy, 2), "an untranslated guest PASID never reaches the device");
        // A host PASID the VM freed stops working at once.
        a.space.container.pasidFree(a.space.pasid, a.space.pasid);
        assertEquals(SubmitStatus.REJECTED, a.mdev.enqcmd(copy, 1));
    }

    @Test
    void aDedicatedVirtualQueueRunsWithTheTranslatedPasidOnly() throws Exception {
        Vm vm = new Vm("vm3", 1);
        vm.programQueue(true, 4);
        assertEquals(DsaRegisters.CMDSTS_ERR_PASID_EN, vm.command(DsaRegisters.CMD_ENABLE_WQ, 0),
                "guest PASID 4 is not translated: refused");
        assertEquals(SubmitStatus.REJECTED, vm.mdev.movdir64b(Dsa.descriptor(Dsa.OP_NOOP).build()));
        vm.mdev.mapGuestPasid(4, vm.space.pasid);
        assertEquals(0, vm.command(DsaRegisters.CMD_ENABLE_WQ, 0));
        assertEquals(vm.space.pasid, dsa.wqConfig(1).pasid(), "the real queue runs with the host PASID");
        assertTrue(dsa.wqEnabled(1));
        byte[] data = new byte[4096];
        new java.util.Random(9).nextBytes(data);
        vm.space.write(MB, data);
        assertEquals(SubmitStatus.ACCEPTED, vm.mdev.movdir64b(Dsa.descriptor(Dsa.OP_MEMMOVE).addr1(gva(MB))
                .addr2(gva(2 * MB)).size(4096).completion(gva(12 * MB)).build()));
        assertTrue(dsa.awaitIdle(10_000));
        assertEquals(Dsa.COMP_SUCCESS, vm.completion().status(), vm.completion().toString());
        assertArrayEquals(data, vm.space.read(2 * MB, 4096));

        assertEquals(Errno.EBUSY, assertThrows(IommuException.class,
                () -> dsa.createMdev("other", 1, vm.pasids)).errno(), "a dedicated queue backs one mdev");
        assertEquals(DsaRegisters.CMDSTS_INVAL_WQIDX, vm.command(DsaRegisters.CMD_DISABLE_WQ, 0), "a queue mask, as on the parent");
        assertEquals(0, vm.command(DsaRegisters.CMD_DISABLE_WQ, DsaDevice.queueMask(0)));
        assertTrue(!dsa.wqEnabled(1));
        assertEquals(Errno.EBUSY, assertThrows(IommuException.class, vm.mdev::close).errno(),
                "its group is in the VM's container");
        vm.space.container.close();
        vm.mdev.close();
        assertTrue(stack.bus.requester("vm3-dsa").isEmpty());
        dsa.createMdev("other", 1, vm.pasids).close();
    }
}
