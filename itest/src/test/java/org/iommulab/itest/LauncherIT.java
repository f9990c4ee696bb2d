package org.iommulab.itest;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The built distribution as a user runs it: a separate JVM per test, with its exit status and
 * output checked. Every process is bounded in time and killed if it hangs.
 */
class LauncherIT {
    private static final long TIMEOUT_S = 60;

    record Run(int status, String out, String err) {
    }

    private static Path distribution() {
        Path dist = Path.of(System.getProperty("iommulab.distribution", "../launcher/target/iommulab"));
        assertTrue(Files.isRegularFile(dist.resolve("iommulab.jar")), "distribution built at " + dist);
        return dist;
    }

    private static Process start(Path dir, String... args) throws IOException {
        List<String> command = new ArrayList<>();
        command.add(Path.of(System.getProperty("java.home"), "bin", "java").toString());
        command.add("-jar");
        command.add(distribution().resolve("iommulab.jar").toAbsolutePath().toString());
        command.addAll(List.of(args));
        ProcessBuilder pb = new ProcessBuilder(command);
        pb.redirectOutput(dir.resolve("out.txt").toFile());
        pb.redirectError(dir.resolve("err.txt").toFile());
        return pb.start();
    }

    private static Run run(Path dir, String stdin, String... args) throws Exception {
        Process p = start(dir, args);
        p.getOutputStream().write(stdin.getBytes(StandardCharsets.UTF_8));
        p.getOutputStream().close();
        if (!p.waitFor(TIMEOUT_S, TimeUnit.SECONDS)) {
            p.destroyForcibly();
            throw new AssertionError("launcher hung: " + List.of(args));
        }
        return new Run(p.exitValue(), Files.readString(dir.resolve("out.txt")), Files.readString(dir.resolve("err.txt")));
    }

    @Test
    void commandModeWritesAndReadsMemory(@TempDir Path dir) throws Exception {
        Run r = run(dir, "", "-c", "mem:write 0x1000 0x1122334455667788; mem:read 0x1000");
        assertEquals(0, r.status(), r.err());
        assertEquals("0x1122334455667788", r.out().trim());
    }

    /** iommu:update in the distribution: the mapping and the walk survive the new bundle revision. */
    @Test
    void liveUpdateFromTheShell(@TempDir Path dir) throws Exception {
        Run r = run(dir, "", "-c", "iommu:create vtd v0; device:add d v0 8; vfio:create p; vfio:attach 1 1; "
                + "vfio:map 1 0x100000 0x1000; iommu:update vtd; dma:translate v0 8 0x100000");
        assertEquals(0, r.status(), r.err());
        assertTrue(r.out().contains("carried v0"), r.out());
        String[] lines = r.out().trim().split("\\R");
        assertTrue(lines[lines.length - 1].matches("0x[0-9a-f]+"), "the mapping translates after the update: " + r.out());
        Run refused = run(dir, "", "-c", "iommu:update nosuch");
        assertEquals(1, refused.status());
        assertTrue(refused.err().contains("ENODEV"), refused.err());
    }

    @Test
    void failingCommandsExitNonZeroWithAMessage(@TempDir Path dir) throws Exception {
        Run unbacked = run(dir, "", "-c", "mem:read 0x5000");
        assertEquals(1, unbacked.status());
        assertTrue(unbacked.err().contains("error: EFAULT: 0x5000: unbacked physical address"), unbacked.err());

        Run badNumber = run(dir, "", "-c", "mem:write 0x1000 12abc");
        assertEquals(1, badNumber.status());
        assertTrue(badNumber.err().contains("error: EINVAL: value: '12abc' is not a decimal or 0x-hex number"), badNumber.err());

        Run unknown = run(dir, "", "-c", "no:such-command");
        assertEquals(1, unknown.status());
        assertTrue(unknown.err().contains("Command not found"), unknown.err());

        Run badOption = run(dir, "", "--bogus");
        assertEquals(2, badOption.status());
        assertTrue(badOption.err().contains("usage:"), badOption.err());
    }

    @Test
    void scriptModeRunsEveryLineAndStopsAtTheFirstFailure(@TempDir Path dir) throws Exception {
        Path script = dir.resolve("session.gosh");
        Files.writeString(script, String.join("\n",
                "mem:write 0x2000 $1",
                "mem:read 0x2000",
                "pasid:create vm1 2",
                "pasid:alloc vm1",
                "pasid:alloc vm1 42",
                "pasid:alloc vm1",
                "mem:read 0x2000",
                ""));
        Run r = run(dir, "", script.toString(), "0xabc");
        assertEquals(1, r.status(), "the third allocation exceeds the quota");
        assertEquals(List.of("0x0000000000000abc", "vm1", "1", "42"), r.out().lines().toList());
        assertTrue(r.err().contains("ENOSPC"), r.err());
    }

    @Test
    void standardInputIsRunAsAScript(@TempDir Path dir) throws Exception {
        Run r = run(dir, "mem:write 16 5\nmem:read 16\n");
        assertEquals(0, r.status(), r.err());
        assertEquals("0x0000000000000005", r.out().trim());
    }

    @Test
    void demoRunsToCompletion(@TempDir Path dir) throws Exception {
        Run r = run(dir, "", "-c", "demo");
        assertEquals(0, r.status(), r.err());
        assertTrue(r.out().contains("[pasid] a fourth allocation exceeds the quota -> ENOSPC"), r.out());
        assertTrue(r.out().contains("== vSVA on vtd"), r.out());
        assertTrue(r.out().contains("-> VFIO BIND_PGTBL"), r.out());
        assertTrue(r.out().contains("PGTT 3"), "the host PASID entry the VMM caused is nested: " + r.out());
        assertTrue(r.out().contains("after 1 page request; the destination matches"), r.out());
        assertTrue(r.out().contains("== vSVA on smmuv3"), r.out());
        assertTrue(r.out().contains("CD table at GPA"), r.out());
        assertTrue(r.out().contains("nested, S1Fmt 0"), "the host STE the VMM caused is nested: " + r.out());
        assertTrue(r.out().contains("faults on the host (no valid CD)"), r.out());
        assertEquals(2, r.out().lines().filter(l -> l.contains("after 1 page request; the destination matches")).count());
        assertTrue(r.out().contains("== demo complete =="), r.out());
    }

    @Test
    void svaDemoRunsToCompletion(@TempDir Path dir) throws Exception {
        Run r = run(dir, "", "-c", "demo sva");
        assertEquals(0, r.status(), r.err());
        for (String vendor : List.of("vtd", "smmuv3")) {
            assertTrue(r.out().contains("== host SVA on " + vendor), r.out());
            assertTrue(r.out().contains("[sva] bind sva-" + vendor + "-app to sva-" + vendor + "-iommu:0x0010 -> PASID"), r.out());
            assertTrue(r.out().contains("[sva-" + vendor + "-app] MEMMOVE of 16384 bytes by ENQCMD with PASID"), r.out());
            assertTrue(r.out().contains("into sva-" + vendor + "-app"), r.out());
        }
        assertTrue(r.out().contains("PGTT 1"), "a first-stage-only PASID entry on VT-d: " + r.out());
        assertTrue(r.out().contains("CONFIG CD 1"), "a CD on SMMUv3: " + r.out());
        assertEquals(2, r.out().lines().filter(l -> l.startsWith("[iommu] page request: rid 0x0010")).count(), r.out());
        assertEquals(2, r.out().lines().filter(l -> l.contains("answered Success (resolved 1, invalid 0)")).count(), r.out());
        assertEquals(2, r.out().lines().filter(l -> l.contains("the copy completed after the fault: status=SUCCESS")).count(),
                r.out());
        assertEquals(2, r.out().lines().filter(l -> l.startsWith("[sva] unbind:")).count(), r.out());
        assertEquals(2, r.out().lines().filter(l -> l.startsWith("[idxd] sva-") && l.endsWith("(claimed by user-wq)")).count(),
                r.out());
        assertEquals(2, r.out().lines().filter(l -> l.startsWith("[pasid] a guest mdev asking for PASID")
                && l.contains("EPERM")).count(), r.out());
        assertEquals(2, r.out().lines().filter(l -> l.contains("revoked with it: ENQCMD rejected")).count(), r.out());
        assertTrue(r.out().contains("== host SVA demo complete =="), r.out());
    }

    @Test
    void pasidSetsAreHandlesSharedOnlyWhenAuthorisedWithinTheOwnersLimit(@TempDir Path dir) throws Exception {
        Run r = run(dir, "", "-c", String.join("; ", "pasid:quota alice 2", "pasid:open alice 4", "pasid:open alice 4",
                "pasid:alloc alice/1", "pasid:alloc alice/2", "pasid:claim alice/1 1 user-wq",
                "pasid:authorize alice/1 user-wq vfio-mdev", "pasid:claim alice/1 1 vfio-mdev", "pasid:info alice/1",
                "pasid:list", "pasid:alloc alice/2"));
        assertEquals(1, r.status(), "the third allocation passes the owner's limit");
        assertEquals(List.of("owner alice quota=2 used=0 sets=-", "alice/1", "alice/2", "1", "2", "user-wq",
                "user-wq,vfio-mdev", "set alice/1 quota=4 used=1 authorized=user-wq,vfio-mdev",
                "pasid 1 consumers=user-wq,vfio-mdev", "space capacity=1048575 reserved=8 allocated=2",
                "owner alice quota=2 used=2 sets=1-2", "set alice id=1 quota=4 used=1 pasids=1 authorized=user-wq,vfio-mdev",
                "set alice id=2 quota=4 used=1 pasids=2 authorized=-"), r.out().lines().toList());
        assertTrue(r.err().contains("ENOSPC: owner 'alice' is at its limit of 2 PASIDs"), r.err());
    }

    @Test
    void svaCommandsShareAProcessWithTheDevice(@TempDir Path dir) throws Exception {
        Run r = run(dir, "", "-c", String.join("; ", "iommu:create smmuv3 smmu0", "idxd:create dsa0 smmu0 0x10",
                "idxd:wq dsa0 0", "idxd:enable dsa0", "idxd:enable dsa0 0", "sva:process app", "sva:mmap app 0x200000",
                "sva:write app 0x1000000000 0x1122334455667788", "sva:bind app smmu0 0x10",
                "sva:memmove app dsa0 0 0x1000000000 0x1000100000 0x1000", "sva:read app 0x1000100000",
                "sva:memmove app dsa0 0 0x1000000000 0x1000800000 0x1000", "sva:list", "sva:unbind app smmu0 0x10",
                "sva:unbind app smmu0 0x10"));
        assertEquals(1, r.status(), "the second unbind fails");
        assertEquals(List.of("smmu0", "dsa0 group 1", "app", "0x1000000000", "1", "SUCCESS",
                "bytes=0 fault=0x0 page-requests resolved=+1 invalid=+0", "0x1122334455667788", "PAGE_FAULT_IR",
                "bytes=0 fault=0x1000800000 page-requests resolved=+0 invalid=+1",
                "app iommu=smmu0 rid=0x10 pasid=1 set=app resolved=1 invalid=1"), r.out().lines().toList());
        assertTrue(r.err().contains("error: ENOENT: app is not bound to smmu0:0x10"), r.err());
    }

    @Test
    void sigtermStopsGracefullyWithStatusZero(@TempDir Path dir) throws Exception {
        Process p = start(dir, "-c", "echo started; sleep 120000");
        // Wait until the command runs (the framework is up), then ask the process to stop.
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(TIMEOUT_S);
        while (!Files.readString(dir.resolve("out.txt")).contains("started")) {
            assertTrue(p.isAlive() && System.nanoTime() < deadline, "launcher did not start the command");
            Thread.sleep(20);
        }
        p.destroy(); // SIGTERM on Unix
        if (!p.waitFor(TIMEOUT_S, TimeUnit.SECONDS)) {
            p.destroyForcibly();
            throw new AssertionError("did not stop on SIGTERM");
        }
        assertEquals(0, p.exitValue(), Files.readString(dir.resolve("err.txt")));
    }

    /** The README's VT-d example: a hand-programmed nested PASID entry translates a GVA to the right HPA. */
    @Test
    void vtdRegisterLevelNestedExample(@TempDir Path dir) throws Exception {
        Path script = Path.of(System.getProperty("iommulab.examples", "../docs/examples"), "vtd-nested.gosh");
        Run r = run(dir, "", script.toString());
        assertEquals(0, r.status(), r.err());
        List<String> lines = r.out().lines().toList();
        assertEquals("0xc0000000", lines.get(1), "GSTS: TES and RTPS");
        assertEquals("0x40005123", lines.get(2), "GVA 0x7f0000201123 -> GPA 0x5123 -> HPA 0x40005123");
        assertTrue(r.out().contains("CONFIG PASID entry 5 @0x103140 = 0x00000000002000c9  PGTT 3"), r.out());
        assertTrue(r.out().contains("  STAGE2 SL-PDE @0x202000 = 0x0000000040000083  2 MiB page -> 0x40000000"), r.out());
        assertTrue(r.out().contains("fault 0x71 FS_PAGING_ENTRY_P"), r.out());
        assertEquals("0xc000057180000010", lines.get(lines.size() - 1), "FRCD 0: F, read, PASID 5, reason 0x71, SID 0x10");
    }

    /** The README's SMMUv3 example: QEMU's qos-smmuv3 nested worked example, programmed by hand. */
    @Test
    void smmuv3RegisterLevelNestedExample(@TempDir Path dir) throws Exception {
        Path script = Path.of(System.getProperty("iommulab.examples", "../docs/examples"), "smmuv3-nested.gosh");
        Run r = run(dir, "", script.toString());
        assertEquals(0, r.status(), r.err());
        List<String> lines = r.out().lines().toList();
        assertEquals("0x00000005", lines.get(1), "CR0ACK: SMMUEN and EVTQEN");
        assertEquals("0x40008567", lines.get(2), "IOVA 0x8080604567 -> IPA 0x8567 -> PA 0x40008567");
        assertTrue(r.out().contains("fault 0x10 F_TRANSLATION"), r.out());
        assertEquals("0x0000000100000010", lines.get(lines.size() - 1), "event record: F_TRANSLATION, SID 1");
    }

    /** The README's RISC-V IOMMU example: a guest PDT and Sv39 tables nested on an Sv39x4 G-stage, by hand. */
    @Test
    void riscvRegisterLevelNestedExample(@TempDir Path dir) throws Exception {
        Path script = Path.of(System.getProperty("iommulab.examples", "../docs/examples"), "riscv-nested.gosh");
        Run r = run(dir, "", script.toString());
        assertEquals(0, r.status(), r.err());
        List<String> lines = r.out().lines().toList();
        assertEquals("0x00010001", lines.get(1), "fqcsr: fqen and fqon");
        assertEquals("0x40008567", lines.get(2), "IOVA 0x80604567 -> GPA 0x8567 -> SPA 0x40008567");
        assertTrue(r.out().contains("CONFIG PC 1 @0x40003010"), r.out());
        assertTrue(r.out().contains("fault 0xd Read page fault"), r.out());
        assertEquals("0x00000001", lines.get(lines.size() - 3), "fqt advanced by one record");
        assertEquals("0x000001090000100d", lines.get(lines.size() - 2), "CAUSE 13, PID 1, PV, TTYP 2, DID 1");
        assertEquals("0x0000000080605000", lines.get(lines.size() - 1), "iotval: the IOVA");
    }

    /** The README's VFIO example: vfio: commands map process memory for devices behind VT-d and SMMUv3. */
    @Test
    void vfioMapExample(@TempDir Path dir) throws Exception {
        Path script = Path.of(System.getProperty("iommulab.examples", "../docs/examples"), "vfio-map.gosh");
        Run r = run(dir, "", script.toString());
        assertEquals(0, r.status(), r.err());
        List<String> lines = r.out().lines().toList();
        assertEquals(List.of("dsa0 group 1", "nic0 group 2", "1"), lines.subList(2, 5));
        assertTrue(lines.contains("iova 0xfef00000-0xffffffffffff"), "the MSI window is not usable: " + r.out());
        int vtdHit = lines.indexOf("dma-avail 65534") + 1;
        assertTrue(lines.get(vtdHit).matches("0x[0-9a-f]+008"), "DMA reaches a pinned page: " + lines.get(vtdHit));
        assertTrue(r.out().contains("fault 0x85 SM_WRITE"), "read-only mapping: " + r.out());
        assertTrue(r.out().contains("0x10000\nfault 0x79 SS_PAGING_ENTRY_RW"), "unmapped: " + r.out());
        assertTrue(r.out().contains("0x10000\nfault 0x10 F_TRANSLATION"), "SMMUv3 unmapped: " + r.out());
        assertEquals("2 owner=vm2 type=type1v2 groups=[2] mappings=0 bound=[]", lines.get(lines.size() - 1));

        Run missing = run(dir, "", "-c", "vfio:unmap 7 0 0x1000");
        assertEquals(1, missing.status());
        assertTrue(missing.err().contains("error: ENOENT: no container 7"), missing.err());
        Run overlap = run(dir, "", "-c", "iommu:create vtd v; device:add d v 8; vfio:create p; vfio:attach 1 1; "
                + "vfio:map 1 0 0x2000; vfio:map 1 0x1000 0x1000");
        assertEquals(1, overlap.status());
        assertTrue(overlap.err().contains("error: EEXIST: iova 0x1000+0x1000 overlaps the mapping 0x0+0x2000"), overlap.err());
    }

    /** The README's IDXD example: descriptors as DMA through VT-d, and a fault mid-transfer. */
    @Test
    void idxdDmaExample(@TempDir Path dir) throws Exception {
        Path script = Path.of(System.getProperty("iommulab.examples", "../docs/examples"), "idxd-dma.gosh");
        Run r = run(dir, "", script.toString());
        assertEquals(0, r.status(), r.err());
        List<String> lines = r.out().lines().toList();
        assertEquals("dsa0 group 1", lines.get(1));
        assertEquals(3, lines.stream().filter(l -> l.equals("completion status=SUCCESS result=0 bytes=0 fault=0x0 op=0x0")).count(),
                "fill, memmove, compare (equal)");
        assertTrue(lines.contains("completion status=PAGE_FAULT_NOBOF|WRITE result=0 bytes=2048 fault=0x200000 op=0x0"),
                "2 KiB copied before IOVA 0x200000 faulted: " + r.out());
        assertTrue(lines.contains("completed.SUCCESS 3"), r.out());
    }

    /** The README's vSVA session by hand: every trap of the VMM is printed and the copies land. */
    @Test
    void vmVsvaExample(@TempDir Path dir) throws Exception {
        Path script = Path.of(System.getProperty("iommulab.examples", "../docs/examples"), "vm-vsva.gosh");
        Run r = run(dir, "", script.toString());
        assertEquals(0, r.status(), r.err());
        String out = r.out();
        assertTrue(out.contains("-> VFIO BIND_PGTBL"), out);
        assertTrue(out.contains("0x1122334455667788"), "the copy reached the destination: " + out);
        assertTrue(out.contains("injected into the guest's virtual IOMMU"), out);
        assertTrue(out.contains("trap: guest page response SUCCESS"), out);
        assertTrue(out.contains("page requests answered by the guest: 1"), out);
        assertEquals(3, out.lines().filter(l -> l.equals("completion status=SUCCESS result=0 bytes=0 fault=0x0 op=0x0")).count(),
                "two copies on VT-d, one on SMMUv3");
        assertTrue(out.contains("CD table at GPA"), out);
        assertTrue(out.contains("0x5566778899aabbcc"), "the SMMUv3 copy reached the destination: " + out);
    }
}
