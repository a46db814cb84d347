package dev.redlock.core;

import java.time.Duration;
import java.util.List;
import java.util.Optional;

/**
 * A lock could not be acquired within the wait time.
 *
 * <p>Two reasons are told apart. Contention: another holder had the lock; {@link
 * #holderRemaining()} then says how long that holder's lease still had to run on the masters.
 * Infrastructure: too few masters answered; {@link #masterFailures()} then holds one {@link
 * MasterFailureException} per failing master (the first is also the cause, the others are
 * suppressed), and the message names every one of them. Both can apply at once.
 *
 * <p>Cancellation of a waiting acquirer is not reported with this type: it propagates as a
 * plain {@link java.util.concurrent.CancellationException}.
 */
public final class LockNotAcquiredException extends RedlockException {
  private static final long serialVersionUID = 1L;

  private final List<String> resources;
  private final boolean contended;
  private final transient Duration holderRemaining;
  private final List<MasterFailureException> masterFailures;

  /**
   * Creates the exception.
   *
   * @param message the full message, naming the resources and each reason
   * @param resources the resources that were not acquired
   * @param contended whether a master reported another holder in the last attempt
   * @param holderRemaining the longest remaining lease time of another holder seen in the last
   *     attempt, or {@code null} if no master reported one, or its key has no expiry
   * @param masterFailures the failures of the masters that did not answer in the last attempt
   */
  public LockNotAcquiredException(
      String message,
      List<String> resources,
      boolean contended,
      Duration holderRemaining,
      List<MasterFailureException> masterFailures) {
    super(message, masterFailures);
    this.resources = List.copyOf(resources);
    this.contended = contended;
    this.holderRemaining = holderRemaining;
    this.masterFailures = List.copyOf(masterFailures);
  }

  /**
   * The resources that were asked for.
   *
   * @return an unmodifiable list, in the order the caller gave them
   */
  public List<String> resources() {
    return resources;
  }

  /**
   * How long another holder's lease still had to run when the last attempt was refused.
   *
   * @return the remaining time, or empty when no master reported another holder (for example
   *     when every master failed), or when the holder's key has no expiry (it was not set by this
   *     library)
   */
  public Optional<Duration> holderRemaining() {
    return Optional.ofNullable(holderRemaining);
  }

  /**
   * The failures of masters that did not answer the last attempt.
   *
   * @return one entry per failing master; empty when every master answered
   */
  public List<MasterFailureException> masterFailures() {
    return masterFailures;
  }

  /**
   * Whether another holder had the lock (as opposed to masters failing).
   *
   * @return {@code true} when at least one master reported another holder
   */
  public boolean isContended() {
    return contended;
  }
}
