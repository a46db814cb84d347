package dev.redlock.core.internal;

/**
 * One master's answer to an acquire attempt.
 *
 * <p>Internal to the library: not a public API, may change without notice.
 *
 * @param acquired whether the master set every key to our token
 * @param holderPttlMillis when refused: the longest remaining time of another holder's key in
 *     milliseconds ({@code -1} for a key without expiry); 0 when acquired
 */
public record AcquireReply(boolean acquired, long holderPttlMillis) {
  /** The reply of a master that granted the keys. */
  public static final AcquireReply GRANTED = new AcquireReply(true, 0);
}
