package org.iommulab.api.fault;

/**
 * The answer to a page request group, coded as the PCIe page group response (and VT-d page group
 * response descriptor) codes.
 */
public enum PageResponse {
    /** The pages are present now: the device retries the access. */
    SUCCESS(0x0),
    /** The request is invalid (no mapping will come): the device fails the access. */
    INVALID(0x1),
    /** A catastrophic failure: the device disables page requests. */
    FAILURE(0xf);

    private final int code;

    PageResponse(int code) {
        this.code = code;
    }

    /** @return the response code as the PCIe specification encodes it */
    public int code() {
        return code;
    }
}
