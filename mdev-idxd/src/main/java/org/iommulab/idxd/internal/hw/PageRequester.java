package org.iommulab.idxd.internal.hw;

/**
 * How a device blocked on a fault asks for the page (PCIe PRS): sends a page request to the IOMMU
 * and waits for the response to its page request group.
 */
interface PageRequester {

    /**
     * @param pasid the request's PASID
     * @param address the faulting address
     * @param access the access bits
     * @return {@code true} if the response was Success (retry the access), {@code false} for
     *     Invalid Request, Response Failure, a request the IOMMU would not take, or a timeout
     */
    boolean requestPage(int pasid, long address, int access);
}
