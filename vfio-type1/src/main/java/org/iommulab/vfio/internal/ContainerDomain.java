package org.iommulab.vfio.internal;

import java.util.ArrayList;
import java.util.List;

import org.iommulab.api.device.Requester;
import org.iommulab.api.spi.IommuDomain;
import org.iommulab.api.spi.IommuDriver;
import org.iommulab.api.spi.IommuInstance;

/**
 * The container's domain on one IOMMU instance ({@code struct vfio_domain}) and the requesters
 * attached to it. The container's lock guards it.
 */
final class ContainerDomain {
    final IommuInstance instance;
    final IommuDomain domain;
    final List<Requester> requesters = new ArrayList<>();

    ContainerDomain(IommuInstance instance, IommuDomain domain) {
        this.instance = instance;
        this.domain = domain;
    }

    IommuDriver driver() {
        return instance.driver();
    }

    /** @return the attached requesters that can emit PASID-tagged requests */
    List<Requester> pasidCapable() {
        List<Requester> capable = new ArrayList<>();
        for (Requester r : requesters) {
            if (r.pasidCapable()) {
                capable.add(r);
            }
        }
        return capable;
    }
}
