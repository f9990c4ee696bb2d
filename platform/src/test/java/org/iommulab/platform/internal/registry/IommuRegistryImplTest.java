package org.iommulab.platform.internal.registry;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.TreeMap;

import org.iommulab.api.dto.BackendDTO;
import org.iommulab.api.dto.IommuInstanceDTO;
import org.iommulab.api.dto.WalkStepDTO;
import org.iommulab.api.errno.Errno;
import org.iommulab.api.errno.IommuException;
import org.iommulab.api.memory.FrameAllocator;
import org.iommulab.api.memory.HostMemory;
import org.iommulab.api.memory.PhysicalMemory;
import org.iommulab.api.spi.InstanceListener;
import org.iommulab.api.spi.IommuBackend;
import org.iommulab.api.spi.IommuDriver;
import org.iommulab.api.spi.IommuInstance;
import org.iommulab.api.translation.Translation;
import org.iommulab.platform.internal.memory.HostMemoryComponent;
import org.iommulab.platform.internal.memory.TestHostMemory;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.function.Executable;
import org.osgi.framework.Constants;

class IommuRegistryImplTest {

    /** Everything that happened, in order, across backends, instances and listeners. */
    private final List<String> journal = Collections.synchronizedList(new ArrayList<>());
    private final HostMemory memory = TestHostMemory.create(48, 1L << 40, 64);
    private final IommuRegistryImpl registry = new IommuRegistryImpl(memory);

    private final class FakeInstance implements IommuInstance {
        final String name;
        final String vendor;
        final Map<String, String> configuration;
        final PhysicalMemory memory;
        final FrameAllocator frames;
        final FakeBackend backend;
        int closed;

        FakeInstance(String name, FakeBackend backend, Map<String, String> configuration, PhysicalMemory memory,
                FrameAllocator frames) {
            this.name = name;
            this.vendor = backend.vendor;
            this.backend = backend;
            this.configuration = Collections.unmodifiableMap(configuration);
            this.memory = memory;
            this.frames = frames;
        }

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
            return configuration;
        }

        @Override
        public PhysicalMemory memory() {
            return memory;
        }

        @Override
        public long mmioSize() {
            return 0x1000;
        }

        @Override
        public long mmioRead(long offset, int size) {
            return 0;
        }

        @Override
        public void mmioWrite(long offset, long value, int size) {
        }

        @Override
        public boolean translate(int requesterId, int pasid, long address, int access, Translation out) {
            return out.success(address, 12, access).isSuccess();
        }

        @Override
        public List<WalkStepDTO> explain(int requesterId, int pasid, long address, int access) {
            return List.of();
        }

        @Override
        public IommuDriver driver() {
            throw new UnsupportedOperationException("not needed by the registry");
        }

        @Override
        public Map<String, Long> statistics() {
            return new TreeMap<>(Map.of("translations", 3L));
        }

        @Override
        public void close() {
            closed++;
            journal.add("close " + name);
        }
    }

    private final class FakeBackend implements IommuBackend {
        final String vendor;
        final String description;
        final Map<String, String> defaults;
        final List<FakeInstance> created = new ArrayList<>();

        FakeBackend(String vendor, String description, Map<String, String> defaults) {
            this.vendor = vendor;
            this.description = description;
            this.defaults = Collections.unmodifiableMap(new TreeMap<>(defaults));
        }

        @Override
        public String vendor() {
            return vendor;
        }

        @Override
        public String description() {
            return description;
        }

        @Override
        public Map<String, String> defaultConfiguration() {
            return defaults;
        }

        @Override
        public IommuInstance create(String name, Map<String, String> configuration, PhysicalMemory memory,
                FrameAllocator frames) throws IommuException {
            Map<String, String> effective = new TreeMap<>(defaults);
            for (Map.Entry<String, String> e : configuration.entrySet()) {
                if (!defaults.containsKey(e.getKey())) {
                    throw new IommuException(Errno.EINVAL, "unknown key '" + e.getKey() + "'");
                }
                effective.put(e.getKey(), e.getValue());
            }
            FakeInstance instance = new FakeInstance(name, this, effective, memory, frames);
            created.add(instance);
            journal.add("create " + vendor + " " + name);
            return instance;
        }
    }

    private final class Listener implements InstanceListener {
        @Override
        public void instanceAdded(IommuInstance instance) {
            journal.add("added " + instance.name());
        }

        @Override
        public void instanceRemoved(IommuInstance instance) {
            journal.add("removed " + instance.name());
        }
    }

    private static IommuException expect(Errno errno, Executable call) {
        IommuException e = assertThrows(IommuException.class, call);
        assertEquals(errno, e.errno(), e.toString());
        return e;
    }

    private FakeBackend backend(String vendor, String description, long bundleId) {
        FakeBackend b = new FakeBackend(vendor, description, Map.of("caching", "on", "levels", "4"));
        registry.addBackend(b, Map.of(Constants.SERVICE_BUNDLEID, bundleId));
        return b;
    }

    // ---- create ------------------------------------------------------------------------------

    @Test
    void createMakesAnInstanceOverHostMemory() throws IommuException {
        FakeBackend vtd = backend("vtd", "Intel VT-d", 7);
        IommuInstance instance = registry.create("vtd", "vtd0", Map.of("levels", "5"));
        FakeInstance fake = (FakeInstance) instance;
        assertSame(vtd, fake.backend);
        assertEquals("vtd0", instance.name());
        assertEquals("vtd", instance.vendor());
        assertEquals(Map.of("caching", "on", "levels", "5"), instance.configuration());
        assertSame(memory, fake.memory);
        assertSame(memory, fake.frames);
        assertEquals(Optional.of(instance), registry.instance("vtd0"));
        assertEquals(List.of(instance), registry.instances());
        assertEquals(Optional.empty(), registry.instance("vtd1"));
    }

    @Test
    void createPassesACopyOfTheConfiguration() throws IommuException {
        FakeBackend delegate = new FakeBackend("cap", "x", Map.of("k", "v"));
        IommuBackend capturing = new IommuBackend() {
            @Override
            public String vendor() {
                return "cap";
            }

            @Override
            public String description() {
                return "captures";
            }

            @Override
            public Map<String, String> defaultConfiguration() {
                return Map.of("k", "v");
            }

            @Override
            public IommuInstance create(String name, Map<String, String> configuration, PhysicalMemory m,
                    FrameAllocator f) throws IommuException {
                configuration.put("k", "mutated by backend");
                return delegate.create(name, Map.of(), m, f);
            }
        };
        registry.addBackend(capturing, Map.of());
        Map<String, String> mine = new LinkedHashMap<>(Map.of("k", "mine"));
        registry.create("cap", "c0", Map.of()); // an immutable map must be fine too
        registry.create("cap", "c1", mine);
        assertEquals(Map.of("k", "mine"), mine, "the caller's map must not be handed to the backend");
    }

    @Test
    void unknownVendorIsEnodev() {
        backend("vtd", "Intel VT-d", 1);
        expect(Errno.ENODEV, () -> registry.create("smmuv3", "smmu0", Map.of()));
        assertTrue(registry.instances().isEmpty());
        IommuRegistryImpl empty = new IommuRegistryImpl(memory);
        expect(Errno.ENODEV, () -> empty.create("vtd", "x", Map.of()));
    }

    @Test
    void duplicateNameIsEexist() throws IommuException {
        FakeBackend vtd = backend("vtd", "Intel VT-d", 1);
        backend("smmuv3", "Arm SMMUv3", 2);
        IommuInstance first = registry.create("vtd", "io0", Map.of());
        expect(Errno.EEXIST, () -> registry.create("vtd", "io0", Map.of()));
        expect(Errno.EEXIST, () -> registry.create("smmuv3", "io0", Map.of()));
        assertEquals(1, vtd.created.size(), "the backend must not be asked for a duplicate");
        assertEquals(List.of(first), registry.instances());
    }

    @Test
    void badNamesAreEinval() {
        FakeBackend vtd = backend("vtd", "Intel VT-d", 1);
        String ok64 = "a".repeat(64);
        for (String bad : new String[] {null, "", "a b", "a".repeat(65), "-lead", ".lead", "_lead", "a/b", "vtd0\n",
                "ä"}) {
            expect(Errno.EINVAL, () -> registry.create("vtd", bad, Map.of()));
        }
        assertTrue(vtd.created.isEmpty());
        assertTrue(registry.instances().isEmpty());
        for (String good : new String[] {"a", "0", ok64, "vtd0.pf-1_x", "A.B"}) {
            try {
                registry.create("vtd", good, Map.of());
            } catch (IommuException e) {
                throw new AssertionError("'" + good + "' was rejected: " + e, e);
            }
        }
        assertEquals(5, registry.instances().size());
    }

    @Test
    void backendEinvalPropagatesAndNothingIsRegistered() {
        Listener listener = new Listener();
        registry.addListener(listener);
        backend("vtd", "Intel VT-d", 1);
        expect(Errno.EINVAL, () -> registry.create("vtd", "vtd0", Map.of("nonsense", "1")));
        assertEquals(Optional.empty(), registry.instance("vtd0"));
        assertTrue(registry.instances().isEmpty());
        assertFalse(journal.contains("added vtd0"));
    }

    @Test
    void aNameRejectedByTheBackendIsStillFree() throws IommuException {
        backend("vtd", "Intel VT-d", 1);
        expect(Errno.EINVAL, () -> registry.create("vtd", "vtd0", Map.of("nonsense", "1")));
        IommuInstance instance = registry.create("vtd", "vtd0", Map.of());
        assertEquals(Optional.of(instance), registry.instance("vtd0"));
    }

    @Test
    void listenersHearOfNewInstances() throws IommuException {
        registry.addListener(new Listener());
        backend("vtd", "Intel VT-d", 1);
        registry.create("vtd", "vtd0", Map.of());
        assertEquals(List.of("create vtd vtd0", "added vtd0"), journal);
    }

    // ---- destroy -----------------------------------------------------------------------------

    @Test
    void destroyClosesAfterTellingListeners() throws IommuException {
        registry.addListener(new Listener());
        backend("vtd", "Intel VT-d", 1);
        FakeInstance a = (FakeInstance) registry.create("vtd", "a", Map.of());
        FakeInstance b = (FakeInstance) registry.create("vtd", "b", Map.of());
        journal.clear();
        registry.destroy("a");
        assertEquals(List.of("removed a", "close a"), journal);
        assertEquals(1, a.closed);
        assertEquals(0, b.closed);
        assertEquals(Optional.empty(), registry.instance("a"));
        assertEquals(List.of(b), registry.instances());
        expect(Errno.ENOENT, () -> registry.destroy("a"));
        expect(Errno.ENOENT, () -> registry.destroy("never"));
        assertEquals(1, a.closed);
        // the name can be used again
        registry.create("vtd", "a", Map.of());
    }

    @Test
    void aThrowingListenerDoesNotStopCloseOrOtherListeners() throws IommuException {
        registry.addListener(new InstanceListener() {
            @Override
            public void instanceAdded(IommuInstance instance) {
                throw new IllegalStateException("listener failure (expected by the test)");
            }

            @Override
            public void instanceRemoved(IommuInstance instance) {
                throw new IllegalStateException("listener failure (expected by the test)");
            }
        });
        registry.addListener(new Listener());
        backend("vtd", "Intel VT-d", 1);
        FakeInstance a = (FakeInstance) registry.create("vtd", "a", Map.of());
        assertTrue(journal.contains("added a"));
        registry.destroy("a");
        assertEquals(1, a.closed);
        assertTrue(journal.contains("removed a"));
    }

    // ---- backends coming and going -----------------------------------------------------------

    @Test
    void removeBackendClosesItsInstancesAfterTellingListeners() throws IommuException {
        registry.addListener(new Listener());
        FakeBackend vtd = backend("vtd", "Intel VT-d", 1);
        FakeBackend smmu = backend("smmuv3", "Arm SMMUv3", 2);
        FakeInstance v0 = (FakeInstance) registry.create("vtd", "v0", Map.of());
        FakeInstance v1 = (FakeInstance) registry.create("vtd", "v1", Map.of());
        FakeInstance s0 = (FakeInstance) registry.create("smmuv3", "s0", Map.of());
        journal.clear();

        registry.removeBackend(vtd);

        assertEquals(1, v0.closed);
        assertEquals(1, v1.closed);
        assertEquals(0, s0.closed, "another backend's instance must live on");
        assertTrue(journal.indexOf("removed v0") >= 0 && journal.indexOf("removed v0") < journal.indexOf("close v0"),
                journal.toString());
        assertTrue(journal.indexOf("removed v1") >= 0 && journal.indexOf("removed v1") < journal.indexOf("close v1"),
                journal.toString());
        assertEquals(4, journal.size(), journal.toString());
        assertEquals(List.of(s0), registry.instances());
        assertEquals(List.of("smmuv3"), registry.backends().stream().map(d -> d.vendor).toList());
        expect(Errno.ENODEV, () -> registry.create("vtd", "v2", Map.of()));
        expect(Errno.ENOENT, () -> registry.destroy("v0"));
        assertSame(smmu, ((FakeInstance) registry.create("smmuv3", "s1", Map.of())).backend);
    }

    @Test
    void backendsListsVendorDescriptionDefaultsAndBundle() {
        backend("vtd", "Intel VT-d", 11);
        backend("smmuv3", "Arm SMMUv3", 12);
        registry.addBackend(new FakeBackend("amd", "AMD-Vi", Map.of()), Map.of());
        List<BackendDTO> dtos = registry.backends();
        assertEquals(List.of("amd", "smmuv3", "vtd"), dtos.stream().map(d -> d.vendor).toList());
        BackendDTO vtd = dtos.get(2);
        assertEquals("Intel VT-d", vtd.description);
        assertEquals(Map.of("caching", "on", "levels", "4"), vtd.defaults);
        assertEquals(11, vtd.bundleId);
        assertEquals(-1, dtos.get(0).bundleId, "no bundle id property");
        vtd.defaults.put("changed", "x");
        assertEquals(Map.of("caching", "on", "levels", "4"), registry.backends().get(2).defaults);
    }

    @Test
    void aSecondBackendForTheSameVendorIsUsedOnlyAfterTheFirstLeaves() throws IommuException {
        FakeBackend first = backend("vtd", "first", 1);
        FakeBackend second = backend("vtd", "second", 2);
        assertEquals(1, registry.backends().size());
        assertEquals("first", registry.backends().get(0).description);
        IommuInstance a = registry.create("vtd", "a", Map.of());
        assertSame(first, ((FakeInstance) a).backend);
        assertTrue(second.created.isEmpty());

        registry.removeBackend(first);
        assertEquals(1, ((FakeInstance) a).closed);
        assertEquals("second", registry.backends().get(0).description);
        IommuInstance b = registry.create("vtd", "b", Map.of());
        assertSame(second, ((FakeInstance) b).backend);

        registry.removeBackend(second);
        assertTrue(registry.backends().isEmpty());
        assertEquals(1, ((FakeInstance) b).closed);
        expect(Errno.ENODEV, () -> registry.create("vtd", "c", Map.of()));
    }

    @Test
    void removingAnUnknownBackendIsHarmless() throws IommuException {
        backend("vtd", "Intel VT-d", 1);
        FakeInstance a = (FakeInstance) registry.create("vtd", "a", Map.of());
        registry.removeBackend(new FakeBackend("vtd", "stranger", Map.of()));
        assertEquals(0, a.closed);
        assertEquals(1, registry.backends().size());
        assertEquals(List.of(a), registry.instances());
    }

    @Test
    void removedListenersHearNothing() throws IommuException {
        Listener listener = new Listener();
        registry.addListener(listener);
        registry.removeListener(listener);
        backend("vtd", "Intel VT-d", 1);
        registry.create("vtd", "a", Map.of());
        registry.destroy("a");
        assertEquals(List.of("create vtd a", "close a"), journal);
    }

    @Test
    void instanceDtosSnapshotTheInstances() throws IommuException {
        backend("vtd", "Intel VT-d", 1);
        registry.create("vtd", "b", Map.of("caching", "off"));
        registry.create("vtd", "a", Map.of());
        List<IommuInstanceDTO> dtos = registry.instanceDTOs();
        assertEquals(List.of("a", "b"), dtos.stream().map(d -> d.name).toList());
        IommuInstanceDTO b = dtos.get(1);
        assertEquals("vtd", b.vendor);
        assertEquals(Map.of("caching", "off", "levels", "4"), b.configuration);
        assertEquals(Map.of("translations", 3L), b.statistics);
    }

    @Test
    void deactivateClosesEveryInstance() throws IommuException {
        registry.addListener(new Listener());
        backend("vtd", "Intel VT-d", 1);
        FakeInstance a = (FakeInstance) registry.create("vtd", "a", Map.of());
        FakeInstance b = (FakeInstance) registry.create("vtd", "b", Map.of());
        journal.clear();
        registry.deactivate();
        assertEquals(1, a.closed);
        assertEquals(1, b.closed);
        assertEquals(List.of("removed a", "close a", "removed b", "close b"), journal);
        assertTrue(registry.instances().isEmpty());
    }
}
