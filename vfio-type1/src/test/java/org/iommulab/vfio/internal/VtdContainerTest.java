package org.iommulab.vfio.internal;

/** The VFIO type1 contract over the VT-d backend. */
class VtdContainerTest extends ContainerContract {
    @Override
    String vendor() {
        return "vtd";
    }

    @Override
    long reservedIova() {
        return 0xfee0_0000L;
    }

    @Override
    int iommuInputBits() {
        return 48;
    }
}
