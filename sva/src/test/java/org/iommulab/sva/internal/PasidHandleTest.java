package org.iommulab.sva.internal;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Map;
import java.util.Random;

import org.iommulab.api.errno.Errno;
import org.iommulab.api.errno.IommuException;
import org.iommulab.api.idxd.Dsa;
import org.iommulab.api.idxd.Dsa.CompletionRecord;
import org.iommulab.api.idxd.IdxdDevice;
import org.iommulab.api.idxd.Mdev;
import org.iommulab.api.idxd.SubmitStatus;
import org.iommulab.api.idxd.UserWq;
import org.iommulab.api.idxd.WorkQueueConfig;
import org.iommulab.api.pasid.PasidConsumers;
import org.iommulab.api.pasid.PasidSet;
import org.iommulab.api.process.HostProcess;
import org.iommulab.api.sva.SvaBond;
import org.iommulab.api.translation.Access;
import org.iommulab.idxd.internal.IdxdServiceImpl;
import org.iommulab.idxd.internal.hw.DsaRegisters;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.function.Executable;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * PASIDs as handles passed between drivers (the 2020 /dev/sva proposal): a process opens a PASID
 * set, binds its address space, and passes the PASID to two consumers, a host user work queue on
 * one device and a guest's mdev on another. The second consumer is refused unless the set
 * authorises both; then one page table serves both devices through one PASID; closing the set
 * revokes the PASID everywhere.
 */
class PasidHandleTest {
    static final int RID0 = 0x18;
    static final int RID1 = 0x20;
    static final int GUEST_PASID = 7;
    static final long PAGE = 4096;
    static final int SIZE = 2 * (int) PAGE;
    static final int FLAGS = Dsa.FLAG_CRAV | Dsa.FLAG_RCR;

    final SvaStack stack = new SvaStack();
    final IdxdServiceImpl idxd = new IdxdServiceImpl(stack.registry, stack.bus);
    IdxdDevice host;
    IdxdDevice guestParent;
    HostProcess process;
    long buffer;

    @AfterEach
    void tearDown() {
        idxd.deactivate();
        stack.close();
    }

    private static void assertErrno(Errno errno, Executable call) {
        assertEquals(errno, assertThrows(IommuException.class, call).errno());
    }

    /** Two DSAs behind one IOMMU, each with shared queues 0 and 1 enabled, and a process with a buffer. */
    private void devices(String vendor) throws Exception {
        stack.instance(vendor, "io0", RID0, RID1);
        host = dsa("dsa0", RID0);
        guestParent = dsa("dsa1", RID1);
        process = stack.processes.create("app", Long.MAX_VALUE);
        buffer = process.mmap(1 << 20);
        process.write(buffer, new byte[64 * (int) PAGE], 0, 64 * (int) PAGE); // resident: no page requests here
    }

    private IdxdDevice dsa(String name, int rid) throws Exception {
        IdxdDevice d = idxd.create(name, "io0", rid);
        d.configure(0, WorkQueueConfig.shared(16));
        d.configure(1, WorkQueueConfig.shared(16));
        d.configure(2, WorkQueueConfig.dedicated(4, 1));
        d.enable();
        d.enableWq(0);
        d.enableWq(1);
        return d;
    }

    /** The guest's driver programs its mdev's virtual shared queue and enables it. */
    private static void enableVirtualQueue(Mdev mdev) throws IommuException {
        mdev.mmioWrite(DsaRegisters.WQCFG_BASE, 8, 4);
        mdev.mmioWrite(DsaRegisters.WQCFG_BASE + 8, 5 << 4 | 1 << 28, 4); // shared, priority 5, pasid_en
        mdev.mmioWrite(DsaRegisters.WQCFG_BASE + 12, 20 | 5 << 5, 4);
        mdev.mmioWrite(DsaRegisters.CMD, (long) DsaRegisters.CMD_ENABLE_DEVICE << 20, 4);
        mdev.mmioWrite(DsaRegisters.CMD, (long) DsaRegisters.CMD_ENABLE_WQ << 20, 4);
        assertEquals(0, mdev.mmioRead(DsaRegisters.CMDSTS, 4) & 0xff);
    }

    /** A MEMMOVE between two of the process's pages; every address is a process virtual address. */
    private byte[] descriptor(long seed, int slot) throws Exception {
        byte[] data = new byte[SIZE];
        new Random(seed).nextBytes(data);
        long src = buffer + slot * 3L * SIZE;
        process.write(src, data, 0, SIZE);
        process.write(src + 2 * SIZE, new byte[Dsa.COMP_SIZE], 0, Dsa.COMP_SIZE);
        return Dsa.descriptor(Dsa.OP_MEMMOVE).flags(FLAGS).addr1(src).addr2(src + SIZE).size(SIZE)
                .completion(src + 2 * SIZE).build();
    }

    private void assertCopied(IdxdDevice d, long seed, int slot) throws Exception {
        assertTrue(d.awaitIdle(20_000), "no hang");
        long src = buffer + slot * 3L * SIZE;
        byte[] raw = new byte[Dsa.COMP_SIZE];
        process.read(src + 2 * SIZE, raw, 0, raw.length);
        CompletionRecord c = CompletionRecord.decode(raw);
        assertEquals(Dsa.COMP_SUCCESS, c.status(), c::toString);
        byte[] expected = new byte[SIZE];
        new Random(seed).nextBytes(expected);
        byte[] got = new byte[SIZE];
        process.read(src + SIZE, got, 0, SIZE);
        assertArrayEquals(expected, got, "the copy landed in the process's own memory");
    }

    @ParameterizedTest
    @ValueSource(strings = {"vtd", "smmuv3", "riscv"})
    void aPasidUsedByAHostUserQueueIsRefusedToAGuestMdevUntilTheSetAuthorisesBoth(String vendor) throws Exception {
        devices(vendor);
        PasidSet set = stack.pasids.openSet("alice", 4);
        SvaBond bond0 = stack.sva.bind(process, "io0", RID0, set);
        SvaBond bond1 = stack.sva.bind(process, "io0", RID1, set);
        int pasid = bond0.pasid();
        assertEquals(pasid, bond1.pasid(), "one address space, one PASID, two devices");

        UserWq wq = host.openUserWq(0, set, pasid);
        assertEquals(SubmitStatus.ACCEPTED, wq.enqcmd(descriptor(1, 0)));
        assertCopied(host, 1, 0);

        Mdev mdev = guestParent.createMdev("guest-dsa", 0, set);
        enableVirtualQueue(mdev);
        assertErrno(Errno.EPERM, () -> mdev.mapGuestPasid(GUEST_PASID, pasid));
        assertEquals(Map.of(), mdev.pasidTranslations(), "a refused translation leaves nothing behind");
        assertEquals(SubmitStatus.REJECTED, mdev.enqcmd(descriptor(2, 1), GUEST_PASID));
        set.authorize(PasidConsumers.VFIO_MDEV);
        assertErrno(Errno.EPERM, () -> mdev.mapGuestPasid(GUEST_PASID, pasid));
        assertArrayEquals(new String[] {PasidConsumers.USER_WQ}, set.consumers(pasid));

        set.authorize(PasidConsumers.USER_WQ);
        mdev.mapGuestPasid(GUEST_PASID, pasid);
        assertArrayEquals(new String[] {PasidConsumers.USER_WQ, PasidConsumers.VFIO_MDEV}, set.consumers(pasid));
        // The guest's descriptor through the mdev on the other device walks the same page table.
        assertEquals(SubmitStatus.ACCEPTED, mdev.enqcmd(descriptor(3, 2), GUEST_PASID));
        assertCopied(guestParent, 3, 2);
        assertEquals(SubmitStatus.ACCEPTED, wq.enqcmd(descriptor(4, 3)));
        assertCopied(host, 4, 3);
    }

    @ParameterizedTest
    @ValueSource(strings = {"vtd", "smmuv3"})
    void aPasidAGuestMdevUsesIsRefusedToAHostUserQueueAndTheRefusalsChangeNothing(String vendor) throws Exception {
        devices(vendor);
        PasidSet set = stack.pasids.openSet("alice", 4);
        int pasid = stack.sva.bind(process, "io0", RID1, set).pasid();
        Mdev mdev = guestParent.createMdev("guest-dsa", 1, set);
        mdev.mapGuestPasid(GUEST_PASID, pasid);
        assertErrno(Errno.EPERM, () -> guestParent.openUserWq(0, set, pasid));
        assertErrno(Errno.EBUSY, () -> guestParent.openUserWq(1, set, pasid));
        assertErrno(Errno.EINVAL, () -> guestParent.openUserWq(2, set, pasid));
        assertErrno(Errno.EINVAL, () -> guestParent.openUserWq(3, set, pasid));
        assertErrno(Errno.EINVAL, () -> guestParent.openUserWq(0, null, pasid));
        PasidSet other = stack.pasids.openSet("bob", 2);
        assertErrno(Errno.EPERM, () -> guestParent.openUserWq(0, other, pasid));
        assertArrayEquals(new String[] {PasidConsumers.VFIO_MDEV}, set.consumers(pasid));

        // The mdev lets go of the PASID: now the host queue may use it, without any authorisation.
        mdev.unmapGuestPasid(GUEST_PASID);
        UserWq wq = guestParent.openUserWq(0, set, pasid);
        assertErrno(Errno.EBUSY, () -> guestParent.createMdev("second", 0, set));
        assertErrno(Errno.EPERM, () -> mdev.mapGuestPasid(GUEST_PASID, pasid));
        assertEquals(SubmitStatus.ACCEPTED, wq.enqcmd(descriptor(5, 0)));
        assertCopied(guestParent, 5, 0);
        wq.close();
        wq.close();
        assertFalse(wq.isOpen());
        assertEquals(SubmitStatus.REJECTED, wq.enqcmd(descriptor(6, 1)));
        assertArrayEquals(new String[0], set.consumers(pasid), "closing the queue released its claim");
        mdev.mapGuestPasid(GUEST_PASID, pasid);
    }

    @ParameterizedTest
    @ValueSource(strings = {"vtd", "smmuv3", "riscv"})
    void closingTheSetRevokesThePasidEverywhere(String vendor) throws Exception {
        devices(vendor);
        PasidSet set = stack.pasids.openSet("alice", 4);
        set.authorize(PasidConsumers.VFIO_MDEV);
        set.authorize(PasidConsumers.USER_WQ);
        SvaBond bond0 = stack.sva.bind(process, "io0", RID0, set);
        SvaBond bond1 = stack.sva.bind(process, "io0", RID1, set);
        int pasid = bond0.pasid();
        UserWq wq = host.openUserWq(0, set, pasid);
        Mdev mdev = guestParent.createMdev("guest-dsa", 0, set);
        enableVirtualQueue(mdev);
        mdev.mapGuestPasid(GUEST_PASID, pasid);
        var io = stack.registry.instance("io0").orElseThrow();
        assertTrue(SvaStack.dma(io, RID0, pasid, buffer, Access.READ) >= 0);

        set.close();

        assertFalse(wq.isOpen(), "the user queue's claim is revoked");
        assertFalse(bond0.isBound() || bond1.isBound(), "the SVA bonds are gone");
        assertEquals(-1, SvaStack.dma(io, RID0, pasid, buffer, Access.READ), "no PASID entry left on dsa0");
        assertEquals(-1, SvaStack.dma(io, RID1, pasid, buffer, Access.READ), "no PASID entry left on dsa1");
        long ran0 = host.statistics().getOrDefault("descriptors", 0L);
        long ran1 = guestParent.statistics().getOrDefault("descriptors", 0L);
        assertEquals(SubmitStatus.REJECTED, wq.enqcmd(descriptor(7, 0)));
        assertEquals(SubmitStatus.REJECTED, mdev.enqcmd(descriptor(8, 1), GUEST_PASID));
        assertEquals(ran0, host.statistics().getOrDefault("descriptors", 0L));
        assertEquals(ran1, guestParent.statistics().getOrDefault("descriptors", 0L));
        assertEquals(0, stack.pasids.allocated());

        // The value comes back in a new set: the old handles stay dead.
        PasidSet next = stack.pasids.openSet("alice", 4);
        assertEquals(pasid, next.allocate(pasid, pasid));
        assertFalse(wq.isOpen());
        assertEquals(SubmitStatus.REJECTED, mdev.enqcmd(descriptor(9, 2), GUEST_PASID));
        assertArrayEquals(new String[0], next.consumers(pasid));
    }

    @ParameterizedTest
    @ValueSource(strings = {"vtd"})
    void theOwnerLimitSpansAllTheOwnersSets(String vendor) throws Exception {
        devices(vendor);
        stack.pasids.setOwnerQuota("alice", 1);
        PasidSet first = stack.pasids.openSet("alice", 2);
        PasidSet second = stack.pasids.openSet("alice", 2);
        stack.sva.bind(process, "io0", RID0, first);
        HostProcess other = stack.processes.create("other", Long.MAX_VALUE);
        assertErrno(Errno.ENOSPC, () -> stack.sva.bind(other, "io0", RID0, second));
        assertErrno(Errno.ENOSPC, () -> stack.sva.bind(other, "io0", RID0, first));
        assertEquals(0, second.size());
        assertEquals(1, stack.pasids.ownerUsage("alice"));
        first.close();
        assertEquals(0, stack.pasids.ownerUsage("alice"));
        assertTrue(stack.sva.bind(other, "io0", RID0, second).isBound());
    }
}
