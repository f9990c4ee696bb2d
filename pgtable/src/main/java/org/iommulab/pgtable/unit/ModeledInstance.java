package org.iommulab.pgtable.unit;

import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.LongAdder;

import org.iommulab.api.dto.WalkStepDTO;
import org.iommulab.api.errno.Errno;
import org.iommulab.api.errno.IommuException;
import org.iommulab.api.fault.PageResponse;
import org.iommulab.api.memory.FrameAllocator;
import org.iommulab.api.memory.PhysicalMemory;
import org.iommulab.api.nesting.GuestIommuListener;
import org.iommulab.api.spi.IommuDomain;
import org.iommulab.api.spi.IommuDriver;
import org.iommulab.api.spi.IommuInstance;
import org.iommulab.api.spi.InstanceState;
import org.iommulab.api.translation.FaultKind;
import org.iommulab.api.translation.Stage;
import org.iommulab.api.translation.Translation;

/**
 * One IOMMU unit as a backend hands it out: a hardware model and the host driver that programs it.
 * After {@link #close()} the registers answer {@code ENODEV}, translations fault with
 * {@code IOMMU_CLOSED} and page requests are refused, while page-request status stays readable
 * (the driver answered the pending groups before it let the unit go).
 *
 * <p><b>Live update.</b> The object callers hold stays the same across a backend update: its
 * {@link #driver()} and the domains that driver hands out are stable handles over the current
 * build's driver and domains. {@link #handOver()} quiesces the instance (new calls wait, calls in
 * flight finish), has the backend's {@link Saver} record the model and driver into an
 * {@link InstanceState} and let them go without freeing what they built; the next build's
 * {@code IommuBackend.resume} rebuilds them from the state (setting {@link #guestListener()} on
 * its new unit) and calls {@link #resume}, which wakes the waiting callers and re-registers the
 * fault listeners. A translation that arrives
 * meanwhile waits, as a DMA stalls on a busy bus. If no build resumes the instance, {@link #close()}
 * frees the frames the state lists in its {@value #FRAMES} section.
 *
 * <p>Thread safe, as its model and driver are.
 */
public final class ModeledInstance implements IommuInstance {
    /** The state section a {@link Saver} lists every frame of the driver in: address, count pairs. */
    public static final String FRAMES = "frames";
    /** How long a call waits for a handed-over instance to be resumed. */
    static final long RESUME_WAIT_MS = 30_000;
    /** How long {@link #handOver()} waits for calls in flight to finish. */
    static final long DRAIN_WAIT_MS = 5_000;

    /**
     * Records a quiesced unit and its driver for the next build, then lets both go without
     * releasing the memory they built (the driver stops its own activity only).
     */
    @FunctionalInterface
    public interface Saver {
        /**
         * @return the state, listing every frame the driver owns in section {@value ModeledInstance#FRAMES}
         * @throws IommuException if the state cannot be taken; the unit and driver stay in service then
         */
        InstanceState save() throws IommuException;
    }

    /** What one build of the backend contributes: the model, its driver and how to end or save them. */
    record Parts(UnitModel unit, IommuDriver driver, Runnable onClose, Saver saver) {
    }

    private final String name;
    private final String vendor;
    private final PhysicalMemory memory;
    private final FrameAllocator frames;
    private final StableDriver driver;
    /** The current build's parts; {@code null} while handed over. */
    private volatile Parts parts;
    /** The latest build's parts, handed over or not: for fixed properties and queries. */
    private volatile Parts latest;
    /** Set while {@link #handOver()} drains calls; new calls wait. */
    private volatile boolean quiescing;
    private volatile boolean closed;
    /** State of a handed-over instance, for {@link #close()} to free its frames. Guarded by this. */
    private InstanceState handedOver;
    private final LongAdder inFlight = new LongAdder();
    private volatile GuestIommuListener guestListener;

    /**
     * An instance whose backend cannot hand it over.
     *
     * @param name the instance name
     * @param vendor the backend's vendor id
     * @param unit the hardware model
     * @param driver the host driver programming {@code unit}
     * @param memory the memory the unit reads its structures from
     * @param onClose run once by the first {@link #close()}: shuts the driver down and forgets it
     */
    public ModeledInstance(String name, String vendor, UnitModel unit, IommuDriver driver, PhysicalMemory memory,
            Runnable onClose) {
        this(name, vendor, unit, driver, memory, null, onClose, null);
    }

    /**
     * An instance that can be handed over to the next build of its backend.
     *
     * @param name the instance name
     * @param vendor the backend's vendor id
     * @param unit the hardware model
     * @param driver the host driver programming {@code unit}
     * @param memory the memory the unit reads its structures from
     * @param frames where the driver allocates frames: a new build's driver allocates there too
     * @param onClose run once by the first {@link #close()}: shuts the driver down and forgets it
     * @param saver records the unit and driver for {@link #handOver()}; {@code null}: not supported
     */
    public ModeledInstance(String name, String vendor, UnitModel unit, IommuDriver driver, PhysicalMemory memory,
            FrameAllocator frames, Runnable onClose, Saver saver) {
        this.name = Objects.requireNonNull(name, "name");
        this.vendor = Objects.requireNonNull(vendor, "vendor");
        this.memory = Objects.requireNonNull(memory, "memory");
        this.frames = frames;
        this.parts = new Parts(Objects.requireNonNull(unit, "unit"), Objects.requireNonNull(driver, "driver"),
                Objects.requireNonNull(onClose, "onClose"), saver);
        this.latest = parts;
        this.driver = new StableDriver(this);
    }

    // ---- the gate --------------------------------------------------------------------------------

    /**
     * Enters a call: returns the current parts with the call counted in flight, waiting while the
     * instance is handed over; {@code null} if it is closed (or not resumed in time).
     */
    Parts enter() {
        inFlight.increment();
        Parts p = parts;
        if (p != null && !quiescing && !closed) {
            return p;
        }
        inFlight.decrement();
        return closed ? null : awaitParts();
    }

    /**
     * A read-only query of the unit: through the gate while open; after close straight to the last
     * build's unit, which still answers queries (statistics, configuration, page-request status).
     */
    private <T> T query(java.util.function.Function<UnitModel, T> q, T otherwise) {
        if (closed) {
            return q.apply(latest.unit());
        }
        Parts p = enter();
        if (p == null) {
            return otherwise;
        }
        try {
            return q.apply(p.unit());
        } finally {
            exit();
        }
    }

    /** Leaves a call entered with {@link #enter()} that got parts. */
    void exit() {
        inFlight.decrement();
    }

    private Parts awaitParts() {
        long deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(RESUME_WAIT_MS);
        synchronized (this) {
            while (true) {
                if (closed) {
                    return null;
                }
                if (parts != null && !quiescing) {
                    inFlight.increment();
                    return parts;
                }
                long left = deadline - System.nanoTime();
                if (left <= 0) {
                    return null;
                }
                try {
                    TimeUnit.NANOSECONDS.timedWait(this, left);
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                    return null;
                }
            }
        }
    }

    Parts enterOrFail() throws IommuException {
        Parts p = enter();
        if (p == null) {
            throw new IommuException(Errno.ENODEV, "IOMMU " + name + " is closed");
        }
        return p;
    }

    // ---- live update -------------------------------------------------------------------------------

    @Override
    public InstanceState handOver() throws IommuException {
        synchronized (this) {
            if (closed) {
                throw new IommuException(Errno.ENODEV, "IOMMU " + name + " is closed");
            }
            if (parts == null || quiescing) {
                throw new IommuException(Errno.EBUSY, "IOMMU " + name + " is being handed over already");
            }
            if (parts.saver() == null) {
                throw new IommuException(Errno.EOPNOTSUPP, vendor + " cannot hand its state over");
            }
            quiescing = true;
        }
        try {
            long deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(DRAIN_WAIT_MS);
            while (inFlight.sum() != 0) {
                if (System.nanoTime() > deadline) {
                    throw new IommuException(Errno.EBUSY, "IOMMU " + name + ": calls in flight did not finish");
                }
                Thread.onSpinWait();
                Thread.yield();
            }
            InstanceState state = parts.saver().save();
            synchronized (this) {
                handedOver = state;
                parts = null;
            }
            return state;
        } finally {
            synchronized (this) {
                quiescing = false;
                notifyAll();
            }
        }
    }

    /**
     * Gives a handed-over instance the next build's model and driver, and wakes its callers.
     *
     * @param unit the new hardware model, restored from the state
     * @param newDriver the new driver, restored from the state
     * @param domains the new driver's domains by id: every domain handed out before keeps its id
     * @param onClose as for the constructor
     * @param saver as for the constructor
     * @throws IommuException {@code EINVAL} if the instance is not handed over, {@code ENODEV} if closed
     */
    public void resume(UnitModel unit, IommuDriver newDriver, Map<Integer, IommuDomain> domains, Runnable onClose,
            Saver saver) throws IommuException {
        Parts next = new Parts(Objects.requireNonNull(unit, "unit"), Objects.requireNonNull(newDriver, "driver"),
                Objects.requireNonNull(onClose, "onClose"), saver);
        synchronized (this) {
            if (closed) {
                throw new IommuException(Errno.ENODEV, "IOMMU " + name + " is closed");
            }
            if (parts != null) {
                throw new IommuException(Errno.EINVAL, "IOMMU " + name + " is not handed over");
            }
            driver.rebind(newDriver, domains);
            handedOver = null;
            parts = next;
            latest = next;
            notifyAll();
        }
    }

    /**
     * @return the guest listener set on this instance, or {@code null}: a resuming backend sets it
     *     on its new unit before restoring the unit's state (which includes what was reported to it)
     */
    public GuestIommuListener guestListener() {
        return guestListener;
    }

    /** @return the latest build's parts, never {@code null} */
    Parts latest() {
        return latest;
    }

    /** @return the state this instance was handed over with, while it waits for a build to resume it */
    public synchronized InstanceState handedOverState() {
        return handedOver;
    }

    /** @return where the driver allocates frames, or {@code null} if the backend did not say */
    public FrameAllocator frames() {
        return frames;
    }

    // ---- IommuInstance -------------------------------------------------------------------------------

    @Override
    public String name() {
        return name;
    }

    @Override
    public String vendor() {
        return vendor;
    }

    @Override
    public Map<String, String> configuration() {
        return latest.unit().configuration(); // fixed for the instance's life, across builds too
    }

    @Override
    public PhysicalMemory memory() {
        return memory;
    }

    @Override
    public long mmioSize() {
        return latest.unit().mmioSize(); // fixed, as the configuration
    }

    @Override
    public long mmioRead(long offset, int size) throws IommuException {
        Parts p = enterOrFail();
        try {
            return p.unit().read(offset, size);
        } finally {
            exit();
        }
    }

    @Override
    public void mmioWrite(long offset, long value, int size) throws IommuException {
        Parts p = enterOrFail();
        try {
            p.unit().write(offset, value, size);
        } finally {
            exit();
        }
    }

    @Override
    public boolean translate(int requesterId, int pasid, long address, int access, Translation out) {
        Parts p = enter();
        if (p == null) {
            return out.fault(FaultKind.BLOCKED, Stage.CONFIG, 0, "IOMMU_CLOSED", 0, address).isSuccess();
        }
        try {
            return p.unit().translate(requesterId, pasid, address, access, out);
        } finally {
            exit();
        }
    }

    @Override
    public List<WalkStepDTO> explain(int requesterId, int pasid, long address, int access) {
        return query(u -> u.explain(requesterId, pasid, address, access), List.of());
    }

    @Override
    public boolean pageRequest(int requesterId, int pasid, long address, int access, int groupIndex) {
        Parts p = enter();
        if (p == null) {
            return false;
        }
        try {
            return p.unit().pageRequest(requesterId, pasid, address, access, groupIndex);
        } finally {
            exit();
        }
    }

    @Override
    public PageResponse pageRequestStatus(int requesterId, int pasid, int groupIndex) {
        return latest.unit().pageRequestStatus(requesterId, pasid, groupIndex);
    }

    @Override
    public void setGuestListener(GuestIommuListener listener) throws IommuException {
        Parts p = enterOrFail();
        try {
            guestListener = listener;
            p.unit().setGuestListener(listener);
        } finally {
            exit();
        }
    }

    @Override
    public IommuDriver driver() {
        return driver;
    }

    @Override
    public Map<String, Long> statistics() {
        return query(UnitModel::statistics, Map.of());
    }

    @Override
    public void close() {
        Parts p;
        InstanceState abandoned;
        synchronized (this) {
            if (closed) {
                return;
            }
            closed = true;
            p = parts;
            abandoned = handedOver;
            handedOver = null;
            notifyAll();
        }
        if (p != null) {
            p.onClose().run();
        } else if (abandoned != null && frames != null) {
            // Handed over and never resumed: nothing runs the structures any more; give their frames back.
            long[] owned = abandoned.section(FRAMES);
            for (int i = 0; i + 1 < owned.length; i += 2) {
                try {
                    frames.freeFrames(owned[i], (int) owned[i + 1]);
                } catch (IommuException e) {
                    // not allocated there: nothing to give back
                }
            }
        }
    }

    /** @return {@code true} once closed */
    public boolean isClosed() {
        return closed;
    }
}
