package dev.redlock.core;

import java.time.Duration;

/**
 * Receives what a Redlock measures: acquisitions and their outcome, waiting, holding, renewals,
 * losses and master failures. Set one with {@link RedlockConfig.Builder#metrics(RedlockMetrics)};
 * the default, {@link #NONE}, records nothing.
 *
 * <p>{@link dev.redlock.core.micrometer.MicrometerRedlockMetrics} records into a Micrometer {@code
 * MeterRegistry}; implement this interface to feed another metrics system. Every method has an
 * empty default, so an implementation overrides only what it needs.
 *
 * <p>Methods are called on the library's threads, often on a Redis I/O thread, while a lock call is
 * in progress: they must be fast, must not block, and must be thread-safe. An exception thrown by
 * a method is caught and logged; it never affects the lock.
 *
 * <p>The {@code type} argument names the kind of lock: {@code "lock"} (the mutex), {@code "read"},
 * {@code "write"} (the two sides of a reader-writer lock) or {@code "permit"} (a semaphore). Resource
 * names are never passed: they are unbounded in number, unfit as metric tags.
 */
public interface RedlockMetrics {

  /** Records nothing: the default. */
  RedlockMetrics NONE = new RedlockMetrics() {};

  /** How an acquisition ended. */
  enum Outcome {
    /** The lease was granted. */
    ACQUIRED,
    /** Another holder had the lock until the wait ran out (or, for a single attempt, at once). */
    CONTENDED,
    /** Masters failed, refused permanently, or answered too slowly for a valid lease. */
    FAILED,
    /** The caller was cancelled while acquiring. */
    CANCELLED;

    /**
     * The lower-case name used as a tag value.
     *
     * @return {@code acquired}, {@code contended}, {@code failed} or {@code cancelled}
     */
    public String tag() {
      return name().toLowerCase(java.util.Locale.ROOT);
    }
  }

  /**
   * An acquisition ended.
   *
   * @param type the kind of lock (see the class description)
   * @param outcome how it ended
   * @param latency from the call to its end, waiting included
   * @param waited the part of {@code latency} spent waiting for another holder between attempts;
   *     zero when the first attempt decided
   */
  default void acquisition(String type, Outcome outcome, Duration latency, Duration waited) {}

  /**
   * A lease ended: released by its holder, or lost.
   *
   * @param type the kind of lock
   * @param held how long the lease was held, from its grant to its end
   * @param lost whether it ended by a loss rather than a release
   */
  default void leaseEnded(String type, Duration held, boolean lost) {}

  /**
   * A renewal (an automatic or explicit extend) of one lease ended.
   *
   * @param type the kind of lock
   * @param extended whether a quorum extended it
   */
  default void renewal(String type, boolean extended) {}

  /**
   * A lease was lost; {@link #leaseEnded} follows when its holder lets go of it.
   *
   * @param type the kind of lock
   * @param reason why
   */
  default void loss(String type, LockLostException.Reason reason) {}

  /**
   * One master failed one call: an error, a timeout or no connection.
   *
   * @param master the master as {@code host:port} (never with credentials)
   * @param operation {@code acquire}, {@code extend} or {@code release}
   * @param kind what went wrong
   */
  default void masterFailure(String master, String operation, MasterFailureException.Kind kind) {}

  /**
   * A master was found to have started empty or lost its data: its votes are not counted for the
   * restart guard period ({@link RedlockConfig#restartGuard()}).
   *
   * @param master the master as {@code host:port}
   */
  default void masterRestart(String master) {}
}
