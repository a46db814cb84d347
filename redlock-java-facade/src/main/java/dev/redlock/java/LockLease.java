package dev.redlock.java;

import dev.redlock.core.LeaseState;
import dev.redlock.core.LockLostException;
import dev.redlock.core.LockNotExtendedException;
import java.time.Duration;
import java.util.List;
import java.util.OptionalLong;
import java.util.concurrent.CompletableFuture;
import java.util.function.Consumer;

/**
 * A lock held on one or several resources, valid until its validity runs out unless extended.
 *
 * <p>Where a lease comes from decides who renews and releases it:
 *
 * <ul>
 *   <li>the lease handed to the action of {@link AsyncRedlock#withLock(String,
 *       java.util.function.Function) withLock} is renewed while the action's stage is incomplete
 *       and released when it completes; the action may release it earlier;
 *   <li>a lease from {@link AsyncRedlock#acquire(String) acquire} or {@link
 *       AsyncRedlock#tryAcquire(String) tryAcquire} is renewed in the background (unless {@link
 *       LockOptions#autoRenew()} is off) until it is released, closed, or lost, or its {@link
 *       AsyncRedlock} is closed. Release it, preferably with try-with-resources:
 * </ul>
 *
 * <pre>{@code
 * try (LockLease lease = redlock.acquire("orders:42").join()) {
 *     process(order, lease.fencingToken());
 * } // released here, also when process throws
 * }</pre>
 *
 * <p>The futures this interface returns complete on the executor of the call that produced the
 * lease ({@link LockOptions#executor()}, else the {@link AsyncRedlock}'s), never on Redis client
 * threads. Their failures are the exception itself ({@code future.get()} throws an {@link
 * java.util.concurrent.ExecutionException} whose cause is, for example, the {@link
 * LockLostException}), never wrapped twice. All methods are thread-safe.
 */
public interface LockLease extends AutoCloseable {
  /**
   * The resources this lease holds, in the order they were asked for.
   *
   * @return an unmodifiable list
   */
  List<String> resources();

  /**
   * The fencing token of this lease: a number that grows with every acquisition of the lock, for
   * the protected resource to refuse writes from an older holder.
   *
   * @return the token, or empty when the lease was acquired without fencing ({@code
   *     LockOptions.Builder.fencing}, {@code RedlockConfig.Builder.fencing})
   */
  OptionalLong fencingToken();

  /**
   * Whether the lease is still held: not released, not lost, and its validity not run out. A
   * {@code true} is a statement about now only. Reading it after the validity ran out declares
   * the lease lost, completing {@link #lost()}.
   *
   * @return {@code true} while the lease is held
   */
  boolean isValid();

  /**
   * How much validity is left, as measured on this process's monotonic clock.
   *
   * @return the remaining validity; zero once released, lost or expired
   */
  Duration remaining();

  /**
   * Extends the lease to its full lease time, counted from the start of this call, on every master
   * that still holds it; succeeds when a majority confirms within the current validity. It never
   * re-creates a key that is gone and never extends a lease whose validity has run out.
   *
   * <p>Cancelling the returned future stops waiting for the masters and leaves the lease as it
   * was.
   *
   * @return a future that completes when the lease is extended, or fails with {@link
   *     LockLostException} if the lease is lost (already, or found lost by this call), with {@link
   *     LockNotExtendedException} if too few masters answered (the lease stays valid until its
   *     current validity ends, and a later call may succeed), or with {@link
   *     IllegalStateException} if the lease was released
   */
  CompletableFuture<Void> extend();

  /**
   * Releases the lease: stops its renewal, deletes its keys on every master (only where they still
   * hold this lease's token), and wakes the callers waiting for the lock.
   *
   * <p>Releasing a lease that is already released or lost does nothing more than waiting for the
   * first release to finish; a lost lease is still cleaned from the masters that kept it. Masters
   * that fail to answer keep the keys until they expire (within the lease time); this is logged,
   * not reported as a failure. Cancelling the returned future does not stop the release.
   *
   * @return a future that completes, never exceptionally, when the release is done
   */
  CompletableFuture<Void> release();

  /**
   * A future that completes <em>exceptionally, with the {@link LockLostException}</em> when the
   * lease is lost: a majority of masters no longer holds it, or its validity ran out before a
   * renewal got through. The exception's {@link LockLostException#reason() reason} tells which.
   *
   * <p>It never completes for a lease that is released before it is lost. Each call returns a new
   * future, so cancelling or completing one does not affect the others or the lease.
   *
   * <pre>{@code
   * lease.lost().whenComplete((ignored, loss) -> abortWork(loss));
   * }</pre>
   *
   * @return a future that fails with the loss, once the lease is lost
   */
  CompletableFuture<Void> lost();

  /**
   * Where the lease stands now: {@link LeaseState#HELD}, {@link LeaseState#AT_RISK} while
   * renewals fail but validity remains, then {@link LeaseState#LOST} or {@link
   * LeaseState#RELEASED} for good.
   *
   * @return the current state
   */
  LeaseState state();

  /**
   * Calls {@code listener} with every change of {@link #state()} from now on (on the executor of
   * the call that returned this lease), until the returned handle is closed or the lease ends.
   * States that change quickly may be delivered only in their latest form, never out of order.
   *
   * <pre>{@code
   * try (AutoCloseable watch = lease.onStateChange(s -> {
   *   if (s == LeaseState.AT_RISK) pauseIntake();
   * })) {
   *   work(lease);
   * }
   * }</pre>
   *
   * @param listener receives each new state
   * @return a handle whose {@code close()} stops the calls
   */
  AutoCloseable onStateChange(Consumer<LeaseState> listener);

  /**
   * Releases the lease and waits until the release is done, for try-with-resources. Does not
   * throw: a release never fails (see {@link #release()}). Waiting is not interruptible; it is
   * bounded by the per-master timeout.
   */
  @Override
  void close();
}
