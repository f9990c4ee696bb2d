package org.iommulab.platform.internal.shell;

import static org.iommulab.platform.internal.shell.ShellOutput.assertErrno;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.List;

import org.iommulab.api.errno.Errno;
import org.iommulab.api.errno.IommuException;
import org.iommulab.api.pasid.PasidSet;
import org.iommulab.api.process.HostProcess;
import org.iommulab.api.sva.SvaBond;
import org.iommulab.api.sva.SvaService;
import org.iommulab.platform.internal.memory.HostMemoryComponent;
import org.iommulab.platform.internal.memory.TestHostMemory;
import org.iommulab.platform.internal.pasid.PasidSpaceImpl;
import org.iommulab.platform.internal.process.ProcessTableImpl;
import org.iommulab.platform.internal.registry.IommuRegistryImpl;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/** The {@code sva:} commands over the real process table and PASID space and a recording SVA service. */
class SvaCommandsTest {
    private final HostMemoryComponent memory = TestHostMemory.create(48, 1L << 40, 256);
    private final ProcessTableImpl processes = new ProcessTableImpl(memory);
    private final PasidSpaceImpl pasids = new PasidSpaceImpl();
    private final FakeSva sva = new FakeSva();
    private final SvaCommands commands = new SvaCommands(sva, processes, null, pasids, new IommuRegistryImpl(memory));
    private final ShellOutput shell = new ShellOutput();

    @AfterEach
    void restore() {
        shell.restore();
    }


    @Test
    void aProcessIsStartedMappedTouchedAndSwappedOut() throws Exception {
        commands.process("app");
        commands.mmap("app", "0x200000");
        List<String> out = shell.lines();
        assertEquals("app", out.get(0));
        long va = Long.decode(out.get(1));
        commands.write("app", "0x" + Long.toHexString(va + 8), "0xabc");
        commands.read("app", "0x" + Long.toHexString(va + 8));
        commands.swapout("app", "0x" + Long.toHexString(va), "0x200000");
        commands.read("app", "0x" + Long.toHexString(va + 8));
        assertEquals(List.of("0x0000000000000abc", "1", "0x0000000000000abc"), shell.lines());
        commands.info("app");
        assertEquals(List.of("process app resident=1 swapped=0 pinned=0"), shell.lines());
        commands.exit("app");
        assertErrno(Errno.ENOENT, () -> commands.read("app", "0x" + Long.toHexString(va)));
    }

    @Test
    void bindUsesASetOwnedByTheProcessByDefaultAndPrintsThePasid() throws Exception {
        commands.process("app");
        shell.lines();
        commands.bind("", "app", "io0", "0x18");
        PasidSet set = pasids.set("app").orElseThrow();
        assertEquals(SvaCommands.DEFAULT_QUOTA, set.quota());
        assertEquals(List.of(String.valueOf(sva.bonds.get(0).pasid)), shell.lines());
        assertSame(set, sva.bonds.get(0).set);
        PasidSet shared = pasids.createSet("shared", 2);
        commands.bind("shared", "app", "io0", "0x20");
        assertSame(shared, sva.bonds.get(1).set);
        shell.lines();
        commands.list();
        assertEquals(List.of("app iommu=io0 rid=0x18 pasid=1 set=app resolved=0 invalid=0",
                "app iommu=io0 rid=0x20 pasid=2 set=shared resolved=0 invalid=0"), shell.lines());
        commands.unbind("app", "io0", "0x18");
        assertEquals(1, sva.bonds.size());
        assertErrno(Errno.ENOENT, () -> commands.unbind("app", "io0", "0x18"));
    }

    @Test
    void aRefusedBindClosesTheSetItCreatedAndUnknownNamesAreEnoent() throws Exception {
        commands.process("app");
        sva.refuse = new IommuException(Errno.EOPNOTSUPP, "no first stage");
        assertErrno(Errno.EOPNOTSUPP, () -> commands.bind("", "app", "io0", "0x18"));
        assertTrue(pasids.set("app").isEmpty(), "the set the bind created is gone");
        assertErrno(Errno.ENOENT, () -> commands.bind("", "nobody", "io0", "0x18"));
        assertErrno(Errno.ENOENT, () -> commands.mmap("nobody", "0x200000"));
        assertErrno(Errno.EINVAL, () -> commands.bind("", "app", "io0", "not-a-number"));
    }

    /** Records binds; PASIDs come from the set as the real service allocates them. */
    private static final class FakeSva implements SvaService {
        final List<Bond> bonds = new ArrayList<>();
        IommuException refuse;

        @Override
        public SvaBond bind(HostProcess process, String iommu, int requesterId, PasidSet set) throws IommuException {
            if (refuse != null) {
                throw refuse;
            }
            Bond b = new Bond(this, process, iommu, requesterId, set, set.allocate());
            bonds.add(b);
            return b;
        }

        @Override
        public List<SvaBond> bonds() {
            return new ArrayList<>(bonds);
        }
    }

    private record Bond(FakeSva sva, HostProcess process, String iommu, int requesterId, PasidSet set, int pasid)
            implements SvaBond {
        @Override
        public boolean isBound() {
            return sva.bonds.contains(this);
        }

        @Override
        public long pageTableRoot() {
            return 0x1000;
        }

        @Override
        public long pageRequestsResolved() {
            return 0;
        }

        @Override
        public long pageRequestsInvalid() {
            return 0;
        }

        @Override
        public void unbind() throws IommuException {
            if (!sva.bonds.remove(this)) {
                throw new IommuException(Errno.ENOENT, "unbound already");
            }
        }
    }
}
