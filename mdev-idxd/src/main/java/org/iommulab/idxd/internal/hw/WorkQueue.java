package org.iommulab.idxd.internal.hw;

import java.util.ArrayDeque;
import java.util.TreeSet;

/**
 * A work queue: its WQCFG registers, its state, the descriptors waiting for an engine and those
 * an engine is running. The device's lock guards it.
 */
final class WorkQueue {
    final int index;
    final WqConfig config = new WqConfig();
    final ArrayDeque<Work> pending = new ArrayDeque<>();
    /** Sequence numbers of descriptors an engine is running. */
    final TreeSet<Long> running = new TreeSet<>();
    boolean enabled;
    /** Being disabled: enabled still (WQCFG read-only) but the portals refuse new descriptors. */
    boolean stopping;
    long nextSeq;
    /** The mdevs this queue backs (a dedicated queue backs at most one). */
    final java.util.Set<Object> owners = new java.util.HashSet<>();

    WorkQueue(int index) {
        this.index = index;
    }

    /** WQCFG word 6: occupancy (descriptors waiting) and wq_state in bits 31:30. */
    int word6() {
        return Math.min(pending.size(), 0xffff) | (enabled ? 1 << 30 : 0);
    }

    /** @return {@code true} if no descriptor that arrived before {@code seq} is waiting or running */
    boolean drainedBefore(long seq) {
        Work head = pending.peekFirst();
        boolean waiting = head != null && head.seq < seq;
        Long first = running.isEmpty() ? null : running.first();
        return !waiting && (first == null || first >= seq);
    }
}
