package dev.redlock.core;

import java.util.List;

/**
 * An explicit {@code extend()} did not reach a quorum, but the lease is not lost (yet).
 *
 * <p>The lease stays valid until its current validity ends; a later extension may still
 * succeed. When the masters answer that the lease is gone, {@link LockLostException} is thrown
 * instead. The failures of the masters that did not answer are attached as in {@link
 * LockNotAcquiredException}.
 */
public final class LockNotExtendedException extends RedlockException {
  private static final long serialVersionUID = 1L;

  private final List<String> resources;
  private final List<MasterFailureException> masterFailures;

  /**
   * Creates the exception.
   *
   * @param message what happened
   * @param resources the resources of the lease
   * @param masterFailures the failures of the masters that did not confirm
   */
  public LockNotExtendedException(
      String message, List<String> resources, List<MasterFailureException> masterFailures) {
    super(message, masterFailures);
    this.resources = List.copyOf(resources);
    this.masterFailures = List.copyOf(masterFailures);
  }

  /**
   * The resources of the lease.
   *
   * @return an unmodifiable list
   */
  public List<String> resources() {
    return resources;
  }

  /**
   * The failures of the masters that did not confirm the extension.
   *
   * @return one entry per failing master
   */
  public List<MasterFailureException> masterFailures() {
    return masterFailures;
  }
}
