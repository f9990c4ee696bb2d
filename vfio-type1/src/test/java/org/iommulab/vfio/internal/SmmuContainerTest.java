package org.iommulab.vfio.internal;

/** The VFIO type1 contract over the SMMUv3 backend. */
class SmmuContainerTest extends ContainerContract {
    @Override
    String vendor() {
        return "smmuv3";
    }

    @Override
    long reservedIova() {
        return 0x800_0000L;
    }

    @Override
    int iommuInputBits() {
        return 48;
    }
}
