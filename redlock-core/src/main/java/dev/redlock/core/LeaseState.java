package dev.redlock.core;

/**
 * Where a lease stands, as its holder sees it.
 *
 * <p>A lease starts {@link #HELD}. A renewal that fails without losing it (too few masters
 * answered, but its validity remains) makes it {@link #AT_RISK}; the next successful renewal makes
 * it {@link #HELD} again. It ends {@link #LOST} (a quorum no longer holds it, its validity ran out,
 * or its maximum hold time was reached) or {@link #RELEASED}; both are final.
 */
public enum LeaseState {
  /** Held, and the last renewal (if any) reached a quorum. */
  HELD,
  /**
   * Still held, but the last renewal did not reach a quorum: the lease is lost when its validity
   * runs out unless a renewal gets through before. Work that must not outlive the lease should
   * bound itself by the remaining validity.
   */
  AT_RISK,
  /** Lost; the critical section was (or is being) cancelled. Final. */
  LOST,
  /** Released by its holder. Final. */
  RELEASED;

  /**
   * Whether the lease is still held in this state.
   *
   * @return {@code true} for {@link #HELD} and {@link #AT_RISK}
   */
  public boolean isHeld() {
    return this == HELD || this == AT_RISK;
  }
}
