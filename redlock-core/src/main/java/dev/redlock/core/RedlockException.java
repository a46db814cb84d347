package dev.redlock.core;

import java.util.List;

/**
 * Root of every exception this library throws on purpose.
 *
 * <p>Unchecked. The Redis or Lettuce failure that caused it, if any, is always kept as the
 * cause (and, when several masters failed, the others as suppressed exceptions), never thrown
 * bare. Catch a subclass to tell contention ({@link LockNotAcquiredException}), loss ({@link
 * LockLostException}) and a master's failure ({@link MasterFailureException}) apart.
 */
public class RedlockException extends RuntimeException {
  private static final long serialVersionUID = 1L;

  /**
   * Creates an exception with a message and no cause.
   *
   * @param message what went wrong, for a person to read
   */
  public RedlockException(String message) {
    super(message);
  }

  /**
   * Creates an exception with a message and the failure that caused it.
   *
   * @param message what went wrong, for a person to read
   * @param cause the underlying failure, may be {@code null}
   */
  public RedlockException(String message, Throwable cause) {
    super(message, cause);
  }

  /**
   * Creates an exception caused by the failures of several masters: the first is the cause, the
   * others are attached as suppressed exceptions.
   *
   * @param message what went wrong, naming every failing master
   * @param failures the masters' failures, possibly empty
   */
  protected RedlockException(String message, List<? extends Throwable> failures) {
    super(message, failures.isEmpty() ? null : failures.get(0));
    for (int i = 1; i < failures.size(); i++) {
      addSuppressed(failures.get(i));
    }
  }
}
