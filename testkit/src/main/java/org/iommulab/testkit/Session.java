package org.iommulab.testkit;

import java.util.ArrayList;
import java.util.List;
import java.util.Objects;

import org.iommulab.api.errno.Errno;
import org.iommulab.api.errno.IommuException;
import org.iommulab.api.memory.FrameAllocator;
import org.iommulab.api.spi.DomainType;
import org.iommulab.api.spi.IommuDomain;
import org.iommulab.api.spi.IommuInstance;
import org.iommulab.api.translation.Translation;

/**
 * One check's run against a {@link BackendUnderTest}: it creates what the check needs, releases it
 * afterwards, and words failures with the check's name, what was expected and what the backend did.
 *
 * <p>Not thread safe: one per check.
 */
public final class Session implements AutoCloseable {
    private final BackendUnderTest target;
    private final String check;
    private final List<IommuInstance> instances = new ArrayList<>();
    private final List<long[]> frames = new ArrayList<>();
    private int serial;

    Session(BackendUnderTest target, String check) {
        this.target = Objects.requireNonNull(target, "target");
        this.check = check;
    }

    /** @return the backend under test */
    public BackendUnderTest target() {
        return target;
    }

    /** @return a new instance, closed when the session ends */
    public IommuInstance instance() throws IommuException {
        IommuInstance i = target.create("kit-" + check + "-" + serial++);
        instances.add(i);
        return i;
    }

    /** @return a new UNMANAGED domain of {@code instance} */
    public IommuDomain domain(IommuInstance instance) throws IommuException {
        IommuDomain d = instance.driver().allocateDomain(DomainType.UNMANAGED);
        expect(d.type() == DomainType.UNMANAGED, "allocateDomain(UNMANAGED) returned a " + d.type() + " domain");
        return d;
    }

    /**
     * @param count frames
     * @return the address of {@code count} contiguous host frames, zeroed, freed when the session ends
     */
    public long frames(int count) throws IommuException {
        long address = target.frames().allocateFrames(count);
        frames.add(new long[] {address, count});
        target.memory().fill(address, (long) count * FrameAllocator.FRAME_SIZE, (byte) 0);
        return address;
    }

    /**
     * A guest's RAM at {@code gpa}, mapped read-write in {@code domain} at the same GPAs.
     *
     * @param domain an UNMANAGED (second-stage) domain
     * @param gpa the first GPA, frame aligned
     * @param frameCount frames of RAM
     */
    public GuestMemory guest(IommuDomain domain, long gpa, int frameCount) throws IommuException {
        long host = frames(frameCount);
        long bytes = (long) frameCount * FrameAllocator.FRAME_SIZE;
        domain.map(gpa, host, bytes, IommuDomain.PROT_READ | IommuDomain.PROT_WRITE);
        return new GuestMemory(target.memory(), gpa, host, bytes);
    }

    /** Translates and returns the result (a fresh object). */
    public Translation translate(IommuInstance instance, int requesterId, int pasid, long address, int access) {
        Translation t = new Translation();
        instance.translate(requesterId, pasid, address, access, t);
        return t;
    }

    /** Fails the check unless {@code condition} holds. */
    public void expect(boolean condition, String what) {
        if (!condition) {
            throw new AssertionError(check + ": " + what);
        }
    }

    /** Fails the check unless the translation succeeded at {@code expected}. */
    public void expectAt(Translation t, long expected, String what) {
        expect(t.isSuccess() && t.outputAddress() == expected,
                String.format("%s: expected 0x%x, got %s", what, expected, t));
    }

    /** Fails the check unless the translation faulted. */
    public void expectFault(Translation t, String what) {
        expect(!t.isSuccess(), what + ": expected a fault, got " + t);
    }

    /** A call that must be refused. */
    @FunctionalInterface
    public interface Call {
        void run() throws Exception;
    }

    /**
     * Fails the check unless {@code call} throws an {@link IommuException} with one of {@code allowed}.
     * Any other exception is a failure too: a rejection must be an errno.
     */
    public void expectErrno(String what, Call call, Errno... allowed) {
        try {
            call.run();
        } catch (IommuException e) {
            for (Errno a : allowed) {
                if (e.errno() == a) {
                    return;
                }
            }
            throw new AssertionError(check + ": " + what + ": expected " + List.of(allowed) + ", got " + e.errno()
                    + " (" + e.getMessage() + ")", e);
        } catch (Exception e) {
            throw new AssertionError(check + ": " + what + ": expected an errno " + List.of(allowed) + ", got " + e, e);
        }
        throw new AssertionError(check + ": " + what + ": expected " + List.of(allowed) + ", the call was accepted");
    }

    /** Releases the session's instances and frames; failures to release are ignored. */
    @Override
    public void close() {
        for (IommuInstance i : instances) {
            try {
                i.close();
            } catch (RuntimeException e) {
                // the check reported what matters
            }
        }
        for (long[] f : frames) {
            try {
                target.frames().freeFrames(f[0], (int) f[1]);
            } catch (IommuException e) {
                // freed already
            }
        }
    }
}
