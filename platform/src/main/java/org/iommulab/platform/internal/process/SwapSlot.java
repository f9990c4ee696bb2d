package org.iommulab.platform.internal.process;

/**
 * One swapped-out page, after Linux's swap cache and swap entry in one: while it is written back it
 * still holds its frame (a fault then takes the frame back as it is); once written back it holds
 * the page's contents and no frame. Guarded by the owning process's monitor.
 */
final class SwapSlot {
    /** The frame being written back, or -1 once the contents are in {@link #contents}. */
    long frame;
    /** The page's 4 KiB once written back, else {@code null}. */
    byte[] contents;

    SwapSlot(long frame) {
        this.frame = frame;
    }

    boolean writtenBack() {
        return frame < 0;
    }
}
