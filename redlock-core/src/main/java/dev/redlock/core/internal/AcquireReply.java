package dev.redlock.core.internal;

/**
 * One master's answer to an acquire attempt.
 *
 * <p>Internal to the library: not a public API, may change without notice.
 *
 * @param acquired whether the master set every key to our token
 * @param holderPttlMillis when refused: the longest remaining time of another holder's key in
 *     milliseconds ({@code -1} for a key without expiry); 0 when acquired
 * @param fence when acquired with fencing: the master's candidate fencing number (its largest
 *     incremented counter, or its time in microseconds where it has no counter); else -1
 * @param bootAgeMillis with the restart guard: how long ago the master's boot marker was created
 *     (when it started empty or lost its data); else -1
 * @param otherPermits for a semaphore refused because its current holders use another number of
 *     permits: that number; else -1
 */
public record AcquireReply(
    boolean acquired, long holderPttlMillis, long fence, long bootAgeMillis, long otherPermits) {
  /**
   * A reply without a disagreement on permits.
   *
   * @param acquired whether the master set every key to our token
   * @param holderPttlMillis the longest remaining time of another holder's key when refused
   * @param fence the candidate fencing number, or -1
   * @param bootAgeMillis the age of the boot marker, or -1
   */
  public AcquireReply(boolean acquired, long holderPttlMillis, long fence, long bootAgeMillis) {
    this(acquired, holderPttlMillis, fence, bootAgeMillis, -1);
  }

  /** The reply of a master that granted the keys, without fencing or guard. */
  public static final AcquireReply GRANTED = new AcquireReply(true, 0, -1, -1);

  /**
   * Parses an acquire script's reply, {@code {granted, pttl, fence, bootAge[, otherPermits]}}: the
   * shape every kind's acquire script answers with.
   *
   * @param reply the script's reply, a list of integers
   * @return the answer; the shared {@link #GRANTED} for a plain grant
   */
  public static AcquireReply of(java.util.List<Object> reply) {
    boolean granted = ((Long) reply.get(0)) == 1L;
    long pttl = (Long) reply.get(1);
    long fence = (Long) reply.get(2);
    long age = (Long) reply.get(3);
    long permits = reply.size() > 4 ? (Long) reply.get(4) : -1;
    if (fence < 0 && age < 0 && permits < 0) {
      return granted ? GRANTED : refused(pttl);
    }
    return new AcquireReply(granted, pttl, fence, age, permits);
  }

  /**
   * A refusal, without guard.
   *
   * @param holderPttlMillis the longest remaining time of another holder's key
   * @return the reply
   */
  public static AcquireReply refused(long holderPttlMillis) {
    return new AcquireReply(false, holderPttlMillis, -1, -1);
  }
}
