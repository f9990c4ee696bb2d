package org.iommulab.platform.internal.shell;

import static org.iommulab.platform.internal.shell.ShellOutput.assertErrno;
import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.List;

import org.iommulab.api.errno.Errno;
import org.iommulab.api.errno.IommuException;
import org.iommulab.platform.internal.pasid.PasidSpaceImpl;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

class PasidCommandsTest {
    private final PasidSpaceImpl space = new PasidSpaceImpl();
    private final PasidCommands commands = new PasidCommands(space);
    private final ShellOutput out = new ShellOutput();

    @AfterEach
    void restore() {
        out.restore();
    }


    @Test
    void setsOpenedByOneOwnerAreNamedOwnerSlashIdAndShareItsLimit() throws IommuException {
        commands.quota("alice", "3");
        commands.open("alice", "2");
        commands.open("alice", "2");
        assertEquals(List.of("owner alice quota=3 used=0 sets=-", "alice/1", "alice/2"), out.lines());
        commands.alloc("alice/1");
        commands.alloc("alice/1");
        commands.alloc("alice/2");
        assertEquals(List.of("1", "2", "3"), out.lines());
        assertErrno(Errno.ENOSPC, () -> commands.alloc("alice/2"));
        commands.quota("alice");
        commands.list();
        assertEquals(List.of("owner alice quota=3 used=3 sets=1-2",
                "space capacity=1048575 reserved=4 allocated=3",
                "owner alice quota=3 used=3 sets=1-2",
                "set alice id=1 quota=2 used=2 pasids=1-2 authorized=-",
                "set alice id=2 quota=2 used=1 pasids=3 authorized=-"), out.lines());
        commands.quota("alice", "none");
        assertEquals(List.of("owner alice quota=none used=3 sets=1-2"), out.lines());
        assertErrno(Errno.ENOENT, () -> commands.alloc("alice/9"));
        assertErrno(Errno.ENOENT, () -> commands.alloc("bob/1"));
        assertErrno(Errno.EINVAL, () -> commands.quota("alice", "-1"));
    }

    @Test
    void claimsFollowTheSetsAuthorisation() throws IommuException {
        commands.create("vm1", "4");
        commands.alloc("vm1");
        out.lines();
        commands.claim("vm1", "1", "user-wq");
        assertErrno(Errno.EPERM, () -> commands.claim("vm1", "1", "vfio-mdev"));
        assertErrno(Errno.EINVAL, () -> commands.authorize("vm1"));
        commands.authorize("vm1", "vfio-mdev", "user-wq");
        commands.claim("vm1", "1", "vfio-mdev");
        commands.info("vm1");
        assertEquals(List.of("user-wq", "user-wq,vfio-mdev", "set vm1/1 quota=4 used=1 authorized=user-wq,vfio-mdev",
                "pasid 1 consumers=user-wq,vfio-mdev"), out.lines());
        commands.release("vm1", "1", "user-wq");
        assertErrno(Errno.ENOENT, () -> commands.release("vm1", "1", "user-wq"));
        commands.info("vm1");
        assertEquals(List.of("set vm1/1 quota=4 used=1 authorized=user-wq,vfio-mdev", "pasid 1 consumers=vfio-mdev"),
                out.lines());
        commands.close("vm1");
        assertErrno(Errno.ENOENT, () -> commands.info("vm1"));
    }

    @Test
    void rangesCollapsesRuns() {
        assertEquals("1-3,5,7-8", PasidCommands.ranges(new int[] {1, 2, 3, 5, 7, 8}));
    }

    @Test
    void rangesOfNothingIsADash() {
        assertEquals("-", PasidCommands.ranges(new int[0]));
    }

    @Test
    void rangesSingleValuesAndLongRuns() {
        assertEquals("7", PasidCommands.ranges(new int[] {7}));
        assertEquals("1-2", PasidCommands.ranges(new int[] {1, 2}));
        assertEquals("1,3,5", PasidCommands.ranges(new int[] {1, 3, 5}));
        assertEquals("1,1048574-1048575", PasidCommands.ranges(new int[] {1, 1048574, 1048575}));
        int[] run = new int[1000];
        for (int i = 0; i < run.length; i++) {
            run[i] = i + 10;
        }
        assertEquals("10-1009", PasidCommands.ranges(run));
    }
}
