package dev.redlock.core;

/**
 * A call was made on a {@code Redlock} (or {@code AsyncRedlock}) that is closed, or was still
 * waiting for a lock when it was closed.
 *
 * <p>Thrown at once: a closed Redlock has no connections left, so waiting or retrying cannot help.
 * A critical section that was running when its Redlock was closed ends with {@link
 * LockLostException} of reason {@link LockLostException.Reason#CLOSED} instead (it held the lock,
 * and no longer does).
 */
public final class RedlockClosedException extends RedlockException {
  private static final long serialVersionUID = 1L;

  /**
   * Creates the exception.
   *
   * @param message what was refused, and why
   */
  public RedlockClosedException(String message) {
    super(message);
  }
}
