package org.iommulab.platform.internal.process;

import java.util.Arrays;

/**
 * A growable list of (virtual address, frame) pairs: the pages one call made resident or took out
 * of the address space, collected under the process's monitor and handed to the
 * {@link org.iommulab.api.process.MmuNotifier}s or freed after it is released. Not thread safe:
 * owned by one call.
 */
final class PageList {
    private long[] pairs = new long[8];
    private int size;

    void add(long vaddr, long frame) {
        if (2 * size == pairs.length) {
            pairs = Arrays.copyOf(pairs, pairs.length * 2);
        }
        pairs[2 * size] = vaddr;
        pairs[2 * size + 1] = frame;
        size++;
    }

    int size() {
        return size;
    }

    boolean isEmpty() {
        return size == 0;
    }

    long vaddr(int i) {
        return pairs[2 * i];
    }

    long frame(int i) {
        return pairs[2 * i + 1];
    }

    /** @return the pairs as {@code [va0, pa0, va1, pa1, ...]}, a new array */
    long[] toArray() {
        return Arrays.copyOf(pairs, 2 * size);
    }
}
