package org.iommulab.platform.internal.memory;

import java.lang.annotation.Annotation;

/** Host memory for unit tests: the DS component with a configuration given in code. */
public final class TestHostMemory {
    private TestHostMemory() {
    }

    /**
     * @param addressBits physical address width
     * @param poolBase first address of the frame pool
     * @param poolFrames frames in the pool
     * @return a started host memory component
     */
    public static HostMemoryComponent create(int addressBits, long poolBase, long poolFrames) {
        return new HostMemoryComponent(new HostMemoryComponent.Config() {
            @Override
            public Class<? extends Annotation> annotationType() {
                return HostMemoryComponent.Config.class;
            }

            @Override
            public int addressBits() {
                return addressBits;
            }

            @Override
            public long poolBase() {
                return poolBase;
            }

            @Override
            public long poolFrames() {
                return poolFrames;
            }
        });
    }
}
