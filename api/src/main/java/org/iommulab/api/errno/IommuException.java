package org.iommulab.api.errno;

import java.util.Objects;

/**
 * A rejected call: carries an {@link Errno} and a message a person can act on. Every API method that
 * can reject its input declares this exception; a method that throws it has changed no state.
 *
 * <p>Instances are immutable and safe to share between threads.
 */
public class IommuException extends Exception {
    private static final long serialVersionUID = 1L;

    private final Errno errno;

    /**
     * @param errno the error class, never {@code null}
     * @param message what was wrong, never {@code null}
     */
    public IommuException(Errno errno, String message) {
        super(message);
        this.errno = Objects.requireNonNull(errno, "errno");
    }

    /**
     * @param errno the error class, never {@code null}
     * @param message what was wrong, never {@code null}
     * @param cause the underlying failure, may be {@code null}
     */
    public IommuException(Errno errno, String message, Throwable cause) {
        super(message, cause);
        this.errno = Objects.requireNonNull(errno, "errno");
    }

    /** @return the errno of this rejection, never {@code null} */
    public Errno errno() {
        return errno;
    }

    /** @return {@code "<ERRNO>: <message>"}, the form the shell prints */
    @Override
    public String toString() {
        return errno.name() + ": " + getMessage();
    }
}
