package org.iommulab.bench;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collection;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Random;

import org.iommulab.api.vfio.VfioContainer;
import org.iommulab.api.vfio.VfioIommuType;
import org.iommulab.pgtable.tlb.Tlb;
import org.iommulab.pgtable.tlb.TlbHit;
import org.iommulab.vfio.internal.VfioStack;
import org.openjdk.jmh.results.RunResult;
import org.openjdk.jmh.runner.Runner;
import org.openjdk.jmh.runner.options.ChainedOptionsBuilder;
import org.openjdk.jmh.runner.options.OptionsBuilder;
import org.openjdk.jmh.runner.options.TimeValue;

/**
 * Runs the benchmarks (JMH, one fork, short iterations) and the two measurements that are not
 * timings (B6 hit rates, B8 heap), then prints every figure as a ratio to its baseline from the same
 * run and writes the table as JSON and Markdown. Arguments: {@code --no-gc} drops JMH's GC profiler
 * (bytes allocated per operation), {@code --out DIR} sets where the files go, {@code --no-jmh} runs only
 * B6 and B8.
 */
public final class BenchMain {
    private BenchMain() {
    }

    /** One row of the report. */
    record Row(String id, String what, String figure, String baseline, double ratio, String target, boolean met,
            String note) {
    }

    public static void main(String[] args) throws Exception {
        boolean gc = !List.of(args).contains("--no-gc");
        Path out = Path.of("bench/target");
        for (int i = 0; i < args.length - 1; i++) {
            if (args[i].equals("--out")) {
                out = Path.of(args[i + 1]);
            }
        }
        ChainedOptionsBuilder options = new OptionsBuilder()
                .include(BenchMain.class.getPackageName() + "\\..*Bench\\..*")
                .forks(1)
                .warmupIterations(2).warmupTime(TimeValue.seconds(1))
                .measurementIterations(3).measurementTime(TimeValue.seconds(1))
                .jvmArgsAppend("-Xmx6g");
        if (gc) {
            options.addProfiler("gc");
        }
        Collection<RunResult> results = List.of(args).contains("--no-jmh") ? List.of() : new Runner(options.build()).run();
        Map<String, Double> score = new LinkedHashMap<>();
        Map<String, Double> alloc = new LinkedHashMap<>();
        for (RunResult r : results) {
            // "TranslateBench.translateHit[vtd]": class, method and parameter values.
            String key = r.getParams().getBenchmark().substring(BenchMain.class.getPackageName().length() + 1) + paramsOf(r);
            score.put(key, r.getPrimaryResult().getScore());
            var sec = r.getSecondaryResults().get("gc.alloc.rate.norm");
            if (sec != null) {
                alloc.put(key, sec.getScore());
            }
        }
        List<Row> rows = new ArrayList<>();
        for (String vendor : new String[] {"vtd", "smmuv3"}) {
            double hit = score.getOrDefault("TranslateBench.translateHit[" + vendor + "]", Double.NaN);
            double base = score.getOrDefault("TranslateBench.baselineTableLookup[]", Double.NaN);
            rows.add(new Row("B1", "translate, IOTLB hit, " + vendor + " nested", fmt(1 / hit * 1000, "ns"),
                    fmt(1 / base * 1000, "ns"), base / hit, "<= 3x", base / hit <= 3, allocNote(alloc,
                            "TranslateBench.translateHit[" + vendor + "]")));
            double walk = score.getOrDefault("WalkBench.nestedWalk[" + vendor + "]", Double.NaN);
            double reads = score.getOrDefault("WalkBench.baselineDependentReads[" + vendor + "]", Double.NaN);
            rows.add(new Row("B2", "translate, IOTLB off, " + vendor + " 2-D walk", fmt(walk, "ns"), fmt(reads, "ns"),
                    walk / reads, "<= 2x", walk / reads <= 2, allocNote(alloc, "WalkBench.nestedWalk[" + vendor + "]")));
            double one = score.getOrDefault("TranslateBench.translateHit[" + vendor + "]", Double.NaN);
            double two = score.getOrDefault("TranslateBench.translateHit2Threads[" + vendor + "]", Double.NaN);
            rows.add(new Row("B7", "translate throughput, 2 threads vs 1, " + vendor, fmt(two, "ops/us"), fmt(one, "ops/us"),
                    two / one, ">= 1.7x", two / one >= 1.7,
                    allocNote(alloc, "TranslateBench.translateHit2Threads[" + vendor + "]")));
        }
        double dsa = score.getOrDefault("DsaBench.memmove[]", Double.NaN);
        double copy = score.getOrDefault("DsaBench.baselineBulkCopy[]", Double.NaN);
        rows.add(new Row("B3", "DSA MEMMOVE 64 MiB, VT-d nested PASID, 4 KiB pages", fmt(64 / (dsa / 1000), "MiB/s"),
                fmt(64 / (copy / 1000), "MiB/s"), copy / dsa, ">= 0.7x throughput", copy / dsa >= 0.7,
                allocNote(alloc, "DsaBench.memmove[]")));
        for (String size : new String[] {"4096", "2097152", "1073741824"}) {
            double map = score.getOrDefault("MapBench.mapUnmap1GiB[" + size + "]", Double.NaN);
            double writes = score.getOrDefault("MapBench.baselineEntryWrites[" + size + "]", Double.NaN);
            String leaf = switch (size) {
                case "4096" -> "4 KiB";
                case "2097152" -> "2 MiB";
                default -> "1 GiB";
            };
            rows.add(new Row("B4", "map + unmap 1 GiB as " + leaf + " leaves",
                    fmt(map, "ms"), fmt(writes, "ms"), map / writes, "<= 5x", map / writes <= 5,
                    allocNote(alloc, "MapBench.mapUnmap1GiB[" + size + "]")));
        }
        double vfio = score.getOrDefault("MapBench.vfioMapUnmap1GiB[]", Double.NaN);
        double writes4k = score.getOrDefault("MapBench.baselineEntryWrites[4096]", Double.NaN);
        rows.add(new Row("B4", "VFIO MAP_DMA + UNMAP_DMA 1 GiB (pinning included)", fmt(vfio, "ms"), fmt(writes4k, "ms"),
                vfio / writes4k, "<= 5x", vfio / writes4k <= 5,
                "baseline: 262144 entries written and cleared; " + allocNote(alloc, "MapBench.vfioMapUnmap1GiB[]")));
        double big = score.getOrDefault("TlbBench.invalidateOnePage[4096]", Double.NaN);
        double small = score.getOrDefault("TlbBench.invalidateOnePage[256]", Double.NaN);
        rows.add(new Row("B5", "IOTLB range invalidation of one page (and its refill), 4096 entries", fmt(big, "ns"), fmt(small, "ns") + " (256)",
                big / small, "<= 1.5x", big / small <= 1.5, allocNote(alloc, "TlbBench.invalidateOnePage[4096]")));
        rows.add(hitRates(4096));
        rows.add(hitRates(1024));
        rows.add(heap(false));
        rows.add(heap(true));
        report(rows, score, alloc, out);
    }

    private static String paramsOf(RunResult r) {
        List<String> values = new ArrayList<>();
        for (String k : r.getParams().getParamsKeys()) {
            values.add(r.getParams().getParam(k));
        }
        return "[" + String.join(",", values) + "]";
    }

    private static String allocNote(Map<String, Double> alloc, String key) {
        Double bytes = alloc.get(key);
        return bytes == null ? "" : String.format(Locale.ROOT, "%.0f bytes/op allocated", bytes);
    }

    /** One decimal, or three significant digits below 10 (a 2 MiB-leaf map takes microseconds). */
    private static String fmt(double value, String unit) {
        return String.format(Locale.ROOT, Math.abs(value) < 10 ? "%.3g %s" : "%.1f %s", value, unit);
    }

    /**
     * B6: a random 4 KiB-page trace over a 16 MiB working set (4096 pages) through the model's IOTLB
     * ({@code entries} entries; 4096 is the VT-d default) and through a 1024-entry cache that flushes
     * everything when full (QEMU's VT-d IOTLB policy).
     */
    static Row hitRates(int entries) {
        Random random = new Random(6);
        Tlb tlb = new Tlb("b6", entries);
        TlbHit hit = new TlbHit();
        java.util.HashSet<Long> flushAll = new java.util.HashSet<>();
        long ours = 0;
        long theirs = 0;
        int accesses = 1_000_000;
        for (int i = 0; i < accesses; i++) {
            long page = random.nextInt(4096) * 4096L;
            if (tlb.lookup(1, 1, page, true, hit)) {
                ours++;
            } else {
                tlb.insert(1, 1, page, 12, page, 3, 0, true);
            }
            if (flushAll.contains(page)) {
                theirs++;
            } else {
                if (flushAll.size() == 1024) {
                    flushAll.clear();
                }
                flushAll.add(page);
            }
        }
        double o = 100.0 * ours / accesses;
        double q = 100.0 * theirs / accesses;
        return new Row("B6", "IOTLB hit rate, random 4 KiB trace over 16 MiB, " + entries + " entries", String.format(Locale.ROOT, "%.1f %%", o),
                String.format(Locale.ROOT, "%.1f %% (1024, flush when full)", q), o / q, "report both; no cliff", o >= q, "");
    }

    /**
     * B8: heap used by a 4 GiB guest with 64 MiB touched, as the RAM of a process alone and as the
     * RAM of a VM whose VFIO container pins and maps all of it (what {@code vm:create} does).
     */
    static Row heap(boolean pinned) throws Exception {
        long before = usedHeap();
        VfioStack stack = new VfioStack(65535, 1000, 2L << 20); // 8 GiB of host frames: the guest plus its tables
        var vm = stack.process("vm");
        long size = 4L << 30;
        long ram = vm.mmap(size);
        VfioContainer c = null;
        if (pinned) {
            var dev = stack.device("dev0", stack.instance("vtd", "vtd0"), 0x10, 0);
            c = stack.container(vm, dev.groupId(), VfioIommuType.TYPE1V2);
            // IOVA 4 GiB up: the low 4 GiB hold VT-d's MSI window, which VFIO reserves.
            c.mapDma(ram, 1L << 32, size, 3);
        }
        byte[] page = new byte[4096];
        new Random(8).nextBytes(page);
        for (long off = 0; off < (64L << 20); off += 4096) {
            vm.write(ram + off, page, 0, page.length);
        }
        long used = usedHeap() - before;
        double ratio = used / (double) (64L << 20);
        Row row = new Row("B8", "heap of a 4 GiB guest with 64 MiB touched, "
                + (pinned ? "all of it pinned and mapped by VFIO" : "process memory only"),
                fmt(used / (1024.0 * 1024), "MiB"), "64.0 MiB", ratio, "<= 1.25x", ratio <= 1.25,
                pinned ? String.format(Locale.ROOT, "%.0f bytes per pinned 4 KiB page", (used - (64L << 20)) / (size / 4096.0))
                        : "");
        if (c != null) {
            c.close();
        }
        vm.munmap(ram, size); // keeps the stack reachable until measured
        return row;
    }

    private static long usedHeap() throws InterruptedException {
        Runtime rt = Runtime.getRuntime();
        for (int i = 0; i < 4; i++) {
            System.gc();
            Thread.sleep(100);
        }
        return rt.totalMemory() - rt.freeMemory();
    }

    private static void report(List<Row> rows, Map<String, Double> score, Map<String, Double> alloc, Path out)
            throws IOException {
        StringBuilder md = new StringBuilder("| id | what | figure | baseline (same run) | ratio | target | met | note |\n"
                + "|---|---|---|---|---|---|---|---|\n");
        StringBuilder json = new StringBuilder("{\n\"rows\": [\n");
        for (int i = 0; i < rows.size(); i++) {
            Row r = rows.get(i);
            md.append(String.format(Locale.ROOT, "| %s | %s | %s | %s | %.2fx | %s | %s | %s |%n", r.id(), r.what(), r.figure(),
                    r.baseline(), r.ratio(), r.target(), r.met() ? "yes" : "no", r.note()));
            json.append(String.format(Locale.ROOT,
                    "  {\"id\": \"%s\", \"what\": \"%s\", \"figure\": \"%s\", \"baseline\": \"%s\", \"ratio\": %s, "
                            + "\"target\": \"%s\", \"met\": %s, \"note\": \"%s\"}%s%n",
                    r.id(), r.what(), r.figure(), r.baseline(),
                    Double.isNaN(r.ratio()) ? "null" : String.format(Locale.ROOT, "%.3f", r.ratio()), r.target(), r.met(), r.note(),
                    i + 1 < rows.size() ? "," : ""));
        }
        json.append("],\n\"jmh\": {");
        String sep = "\n";
        for (Map.Entry<String, Double> e : score.entrySet()) {
            Double bytes = alloc.get(e.getKey());
            json.append(String.format(Locale.ROOT, "%s  \"%s\": {\"score\": %.4f%s}", sep, e.getKey(), e.getValue(),
                    bytes == null ? "" : String.format(Locale.ROOT, ", \"bytesPerOp\": %.1f", bytes)));
            sep = ",\n";
        }
        json.append("\n}\n}\n");
        Files.createDirectories(out);
        Files.writeString(out.resolve("bench-results.md"), md);
        Files.writeString(out.resolve("bench-results.json"), json);
        System.out.println();
        System.out.print(md);
        System.out.println("written: " + out.resolve("bench-results.md") + ", " + out.resolve("bench-results.json"));
    }
}
