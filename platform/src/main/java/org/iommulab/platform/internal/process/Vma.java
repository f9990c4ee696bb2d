package org.iommulab.platform.internal.process;

/**
 * One anonymous mapping of a process: its page frames, allocated on first touch. Frames are kept in
 * 512-entry chunks created on demand, so a large mapping that is barely touched costs little heap.
 * Not thread safe: the owning process guards it.
 */
final class Vma {
    private static final int CHUNK_SHIFT = 9;
    private static final int CHUNK = 1 << CHUNK_SHIFT;
    /** Bit 0 of a slot marks it present: frames are page aligned, so the bit is otherwise clear. */
    private static final long PRESENT = 1;

    final long start;
    final long pages;
    private final long[][] chunks;

    Vma(long start, long pages) {
        this.start = start;
        this.pages = pages;
        this.chunks = new long[(int) ((pages + CHUNK - 1) >>> CHUNK_SHIFT)][];
    }

    long end() {
        return start + (pages << 12);
    }

    boolean contains(long vaddr) {
        return vaddr - start >= 0 && vaddr - start < (pages << 12);
    }

    /** @return the frame of page {@code index}, or -1 if it is not backed */
    long frame(long index) {
        long[] chunk = chunks[(int) (index >>> CHUNK_SHIFT)];
        if (chunk == null) {
            return -1;
        }
        long slot = chunk[(int) (index & (CHUNK - 1))];
        return (slot & PRESENT) != 0 ? slot & ~PRESENT : -1;
    }

    void setFrame(long index, long frame) {
        int c = (int) (index >>> CHUNK_SHIFT);
        if (chunks[c] == null) {
            chunks[c] = new long[CHUNK];
        }
        chunks[c][(int) (index & (CHUNK - 1))] = frame | PRESENT;
    }

    /** Makes page {@code index} unbacked again (swapped out); its frame is the caller's to free. */
    void clearFrame(long index) {
        long[] chunk = chunks[(int) (index >>> CHUNK_SHIFT)];
        if (chunk != null) {
            chunk[(int) (index & (CHUNK - 1))] = 0;
        }
    }

    /** Receives a backed page. */
    interface FrameVisitor {
        void visit(long index, long frame);
    }

    /** Visits the backed pages of {@code [from, to)} in order, skipping chunks never touched. */
    void forEachFrame(long from, long to, FrameVisitor visitor) {
        long index = from;
        while (index < to) {
            long[] chunk = chunks[(int) (index >>> CHUNK_SHIFT)];
            long chunkEnd = Math.min(to, ((index >>> CHUNK_SHIFT) + 1) << CHUNK_SHIFT);
            if (chunk != null) {
                for (long i = index; i < chunkEnd; i++) {
                    long slot = chunk[(int) (i & (CHUNK - 1))];
                    if ((slot & PRESENT) != 0) {
                        visitor.visit(i, slot & ~PRESENT);
                    }
                }
            }
            index = chunkEnd;
        }
    }
}
