package dev.redlock.java;

/**
 * Synchronous code that runs while a lock is held, for {@link
 * AsyncRedlock#withLockBlocking(String, CriticalSection)}.
 *
 * <p>It may throw a checked exception of type {@code X}; {@code withLockBlocking} rethrows it
 * unchanged. A lambda that throws no checked exception makes {@code X} a {@link RuntimeException},
 * so the caller needs no {@code catch}:
 *
 * <pre>{@code
 * long balance = redlock.withLockBlocking("account:7", lease -> ledger.balance(7));
 * }</pre>
 *
 * @param <T> the result type
 * @param <X> the checked exception the section may throw
 */
@FunctionalInterface
public interface CriticalSection<T, X extends Exception> {
  /**
   * Runs the section while the lock is held.
   *
   * @param lease the lease held for the section; renewed in the background and released when
   *     this method returns
   * @return the result, handed back by {@code withLockBlocking}
   * @throws X a failure of the section, rethrown unchanged by {@code withLockBlocking}
   */
  T run(LockLease lease) throws X;
}
