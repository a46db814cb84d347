package dev.redlock.core;

import java.util.List;

/**
 * A lease stopped being held before it was released.
 *
 * <p>Thrown at the boundary of a critical section ({@code withRedlock} in Kotlin, the future of
 * {@code withLock} in Java) after the section was cancelled because its lock was lost, by
 * {@code extend()} on a lost lease, and handed out by {@code awaitLost()} / {@code lost()}. It is
 * deliberately not a {@link java.util.concurrent.CancellationException}: a parent coroutine or
 * future must see it as a failure, not swallow it as a cancellation.
 */
public final class LockLostException extends RedlockException {
  private static final long serialVersionUID = 1L;

  /** Why the lease was lost. */
  public enum Reason {
    /**
     * A quorum of masters can no longer confirm the lease: enough of them answered that our
     * token is gone (deleted, expired, evicted, or overwritten) that a majority is impossible.
     * Keys found gone after the lease's validity or maximum hold time had already run out give
     * {@link #EXPIRED} or {@link #MAX_HOLD}: the reason is the first cause.
     */
    NOT_HELD,
    /** The lease's validity ran out before a renewal reached a quorum. */
    EXPIRED,
    /**
     * The lease reached the configured maximum hold time ({@code RedlockConfig.maxHoldTime}):
     * renewal stopped and the critical section was cancelled, by the holder's own rule.
     */
    MAX_HOLD,
    /**
     * The {@code Redlock} (or {@code AsyncRedlock}) that holds the lease was closed while the lease
     * was held: the critical section was cancelled and the lease released by {@code close()}.
     */
    CLOSED
  }

  private final List<String> resources;
  private final Reason reason;

  /**
   * Creates the exception.
   *
   * @param message what happened, naming the resources
   * @param resources the resources of the lost lease
   * @param reason why it was lost
   * @param cause the last renewal failure, may be {@code null}
   */
  public LockLostException(String message, List<String> resources, Reason reason, Throwable cause) {
    super(message, cause);
    this.resources = List.copyOf(resources);
    this.reason = reason;
  }

  /**
   * The resources of the lost lease.
   *
   * @return an unmodifiable list
   */
  public List<String> resources() {
    return resources;
  }

  /**
   * Why the lease was lost.
   *
   * @return the reason, never {@code null}
   */
  public Reason reason() {
    return reason;
  }
}
