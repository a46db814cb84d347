package dev.redlock.core.internal;

/**
 * The quorum and validity arithmetic of the Redlock algorithm, on nanoseconds.
 *
 * <p>Internal to the library: not a public API, may change without notice.
 */
public final class LockMath {
  private LockMath() {}

  /**
   * The number of masters that must agree: a strict majority, {@code floor(n / 2) + 1}.
   *
   * @param masters the number of masters, at least 1
   * @return the quorum
   * @throws IllegalArgumentException if {@code masters < 1}
   */
  public static int quorum(int masters) {
    if (masters < 1) {
      throw new IllegalArgumentException("masters must be at least 1, but was " + masters);
    }
    return masters / 2 + 1;
  }

  /**
   * The number of masters a holder of one permit of a semaphore with {@code permits} permits must
   * win: {@code floor(masters * permits / (permits + 1)) + 1}. Each master admits at most {@code
   * permits} holders, so all masters together give at most {@code masters * permits} admissions;
   * {@code permits + 1} holders each winning this many masters would need more than that. With
   * one permit it is the majority.
   *
   * @param masters the number of masters, at least 1
   * @param permits the number of permits, at least 1
   * @return the quorum, between the majority and {@code masters}
   * @throws IllegalArgumentException if either is below 1
   */
  public static int semaphoreQuorum(int masters, int permits) {
    if (masters < 1) {
      throw new IllegalArgumentException("masters must be at least 1, but was " + masters);
    }
    if (permits < 1) {
      throw new IllegalArgumentException("permits must be at least 1, but was " + permits);
    }
    return (int) ((long) masters * permits / (permits + 1L)) + 1;
  }

  /**
   * Whether a quorum can no longer be reached once this many masters have definitely said no.
   *
   * @param masters the number of masters
   * @param quorum the quorum needed
   * @param definiteNo the masters whose answer is final and negative
   * @return {@code true} when fewer than {@code quorum} masters are left to say yes
   */
  public static boolean quorumImpossible(int masters, int quorum, int definiteNo) {
    return masters - definiteNo < quorum;
  }

  /**
   * The clock drift allowance: {@code lease * factor + constant}.
   *
   * @param leaseNanos the lease time
   * @param factor the drift factor
   * @param constantNanos the constant part
   * @return the allowance in nanoseconds
   */
  public static long driftNanos(long leaseNanos, double factor, long constantNanos) {
    return (long) (leaseNanos * factor) + constantNanos;
  }
}
