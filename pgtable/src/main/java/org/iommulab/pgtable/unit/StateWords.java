package org.iommulab.pgtable.unit;

import java.util.Arrays;

import org.iommulab.api.errno.Errno;
import org.iommulab.api.errno.IommuException;

/**
 * Writes and reads the 64-bit words of one section of an
 * {@link org.iommulab.api.spi.InstanceState}: a backend lists its fields in order when it saves
 * and reads them back in the same order when it resumes. A reader that runs past the end fails
 * with {@code EINVAL}, so a truncated or foreign state is refused rather than misread.
 *
 * <p>Not thread safe: one per save or restore.
 */
public final class StateWords {
    private long[] words;
    private int size;
    private int next;

    private StateWords(long[] words, int size) {
        this.words = words;
        this.size = size;
    }

    /** @return an empty writer */
    public static StateWords writer() {
        return new StateWords(new long[16], 0);
    }

    /**
     * @param words a section's words
     * @return a reader over them
     */
    public static StateWords reader(long[] words) {
        return new StateWords(words, words.length);
    }

    /**
     * @param value a word to append
     * @return this
     */
    public StateWords put(long value) {
        if (size == words.length) {
            words = Arrays.copyOf(words, size * 2);
        }
        words[size++] = value;
        return this;
    }

    /**
     * @param value a flag to append, as 0 or 1
     * @return this
     */
    public StateWords put(boolean value) {
        return put(value ? 1 : 0);
    }

    /** @return the words written */
    public long[] toArray() {
        return Arrays.copyOf(words, size);
    }

    /**
     * @return the next word
     * @throws IommuException {@code EINVAL} past the end
     */
    public long next() throws IommuException {
        if (next >= size) {
            throw new IommuException(Errno.EINVAL, "the saved state ends early (word " + next + ")");
        }
        return words[next++];
    }

    /** @return the next word as an int */
    public int nextInt() throws IommuException {
        return (int) next();
    }

    /** @return the next word as a flag */
    public boolean nextBoolean() throws IommuException {
        return next() != 0;
    }

    /** @return {@code true} while words remain */
    public boolean hasNext() {
        return next < size;
    }

    /**
     * @param state a saved state
     * @return its sections by name, as a mutable map a backend's restore reads from
     */
    public static java.util.Map<String, long[]> sections(org.iommulab.api.spi.InstanceState state) {
        java.util.Map<String, long[]> sections = new java.util.HashMap<>();
        for (String name : state.sectionNames()) {
            sections.put(name, state.section(name));
        }
        return sections;
    }
}
