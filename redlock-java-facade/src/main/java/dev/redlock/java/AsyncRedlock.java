package dev.redlock.java;

import dev.redlock.core.LockLostException;
import dev.redlock.core.LockNotAcquiredException;
import dev.redlock.core.MasterStatus;
import dev.redlock.core.RedlockConfig;
import dev.redlock.coroutines.DistributedLocks;
import java.util.List;
import java.util.Objects;
import java.util.Optional;
import java.util.concurrent.CancellationException;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.Executor;
import java.util.function.Function;

/**
 * Redlock distributed locks for Java: {@link CompletableFuture}s over the library's one engine.
 *
 * <p>A lock on one or several resources is held when a majority of the configured Redis masters
 * hold all of its keys with this holder's token. While held it is renewed in the background; if
 * it is lost anyway (a majority of masters lost the keys, or a renewal did not get through in
 * time), the work it protects is told at once, never left running uninformed.
 *
 * <p>The same API runs over the library's other backends (lock files, PostgreSQL): {@link
 * #create(DistributedLocks)} takes their locks, and application code does not change.
 *
 * <pre>{@code
 * try (AsyncRedlock redlock = AsyncRedlock.create(config)) {
 *     CompletableFuture<Receipt> receipt =
 *         redlock.withLock("orders:42", lease -> payments.charge(order)); // charge returns a CompletionStage
 *     ...
 * }
 * }</pre>
 *
 * <p>Code that is not asynchronous uses {@link #withLockBlocking(String, CriticalSection)}: it
 * runs the section on the calling thread and returns its result.
 *
 * <h2>Sharing, threads and callbacks</h2>
 *
 * One {@code AsyncRedlock} is meant to be shared by the whole application: it owns one Redis
 * client with one connection per master, is thread-safe, and serves any number of concurrent
 * locks. {@link #close()} it when the application stops. Creating it does not fail when masters
 * are unreachable; a lock only needs a majority.
 *
 * <p>The lock work itself (acquiring, renewing, detecting loss, releasing) never runs user code.
 * User code (the actions of {@code withLock} and everything that depends on a returned future)
 * runs on an executor: the one set in {@link LockOptions.Builder#executor(Executor)}, else the
 * one set in {@link Builder#executor(Executor)}, else a pool owned by this {@code AsyncRedlock}
 * (daemon threads named {@code redlock-callbacks-*}, created as needed, idle ones retired, shut
 * down by {@link #close()}). A slow callback therefore never delays a renewal or another lock. A
 * dependent stage attached to a future that is already complete runs on the attaching thread, as
 * always with {@link CompletableFuture}; use the {@code *Async} variants to choose otherwise.
 *
 * <h2>Failures</h2>
 *
 * Futures fail with the exception itself, of the same types Kotlin callers of the engine see:
 * {@link LockNotAcquiredException}, {@link LockLostException}, {@link
 * dev.redlock.core.LockNotExtendedException}, or whatever the action threw, the very same object
 * (a {@link java.util.concurrent.CompletionException} around it is unwrapped once). {@code
 * future.get()} reports it as the cause of its {@link java.util.concurrent.ExecutionException};
 * a dependent stage sees it directly, or inside one {@code CompletionException}, as {@link
 * CompletableFuture} defines.
 *
 * <h2>Cancellation</h2>
 *
 * Cancelling a future returned by {@code withLock}, {@code acquire} or {@code tryAcquire} cancels
 * the work behind it: a call still waiting for the lock stops and removes whatever its attempt
 * set on the masters; a running {@code withLock} cancels its action's stage and releases the
 * lock. The cleanup finishes shortly after the future reports the cancellation. Completing the
 * future in any other way before the library does (for example through {@link
 * CompletableFuture#orTimeout}, or {@code complete}) stops the call in the same way; a lease
 * acquired for a future completed that way is released.
 *
 * <h2>Pitfalls</h2>
 *
 * <ul>
 *   <li>Loss cannot stop code that is running: it cancels the action's stage and fails the
 *       returned future, but Java code already executing carries on until it checks {@link
 *       LockLease#isValid()} or reacts to {@link LockLease#lost()}.
 *   <li>A process pause longer than the lease (a GC pause, a suspended VM) can outlast the lease
 *       before the library can notice. Only a fencing token checked by the protected resource
 *       stops such a late write.
 *   <li>Validity is measured on this process's monotonic clock and assumes the masters' clocks
 *       run at about the same rate; a crashed master must stay down at least one lease time
 *       before it rejoins (or persist with {@code appendfsync always}).
 * </ul>
 */
public interface AsyncRedlock extends AutoCloseable {

  /**
   * Creates an {@code AsyncRedlock} over the masters of {@code config}, with its own callback
   * pool.
   *
   * @param config the masters and timing; validated by {@link RedlockConfig.Builder#build()}
   * @return a new {@code AsyncRedlock}; close it when done
   * @throws NullPointerException if {@code config} is {@code null}
   */
  static AsyncRedlock create(RedlockConfig config) {
    return builder(config).build();
  }

  /**
   * Starts a builder, to set the executor before creating the {@code AsyncRedlock}.
   *
   * @param config the masters and timing; validated by {@link RedlockConfig.Builder#build()}
   * @return a new builder
   * @throws NullPointerException if {@code config} is {@code null}
   */
  static Builder builder(RedlockConfig config) {
    return new Builder(
        Objects.requireNonNull(config, "config must be a RedlockConfig, but was null"), null);
  }

  /**
   * Creates an {@code AsyncRedlock} over any backend's locks, with its own callback pool: the
   * same Java API over Redis, lock files or PostgreSQL. The {@code AsyncRedlock} takes ownership
   * of {@code locks}: its {@link #close()} closes them.
   *
   * <pre>{@code
   * DistributedLocks files = FileLocks.create(FileLockConfig.builder(Path.of("/var/lock/app")).build());
   * try (AsyncRedlock locks = AsyncRedlock.create(files)) {
   *     locks.withLockBlocking("orders:42", lease -> charge(order));
   * }
   * }</pre>
   *
   * <p>What "lost" means, and which options apply (fencing, writer priority), depends on the
   * backend: see its documentation. {@link #config()} is only available over a Redlock.
   *
   * @param locks the locks of a backend module of this library (a {@code Redlock} included)
   * @return a new {@code AsyncRedlock}; close it when done
   * @throws NullPointerException if {@code locks} is {@code null}
   * @throws IllegalArgumentException if {@code locks} is not an implementation of this library
   */
  static AsyncRedlock create(DistributedLocks locks) {
    return builder(locks).build();
  }

  /**
   * Starts a builder over any backend's locks (see {@link #create(DistributedLocks)}), to set the
   * executor before creating the {@code AsyncRedlock}.
   *
   * @param locks the locks of a backend module of this library; owned by the result
   * @return a new builder
   * @throws NullPointerException if {@code locks} is {@code null}
   */
  static Builder builder(DistributedLocks locks) {
    return new Builder(
        null, Objects.requireNonNull(locks, "locks must be a DistributedLocks, but was null"));
  }

  /**
   * The configuration this {@code AsyncRedlock} was created with.
   *
   * @return the configuration
   * @throws UnsupportedOperationException if it was created over another backend's locks, which
   *     have no {@code RedlockConfig}
   */
  RedlockConfig config();

  /**
   * Runs {@code action} while holding the lock on {@code resource}, with the default options. See
   * {@link #withLock(LockOptions, Function)}.
   *
   * @param <T> the action's result type
   * @param resource the resource to lock
   * @param action starts the work to do under the lock and returns its stage
   * @return a future of the action's result
   * @throws IllegalArgumentException if {@code resource} is empty or longer than 1024 characters
   * @throws NullPointerException if {@code action} is {@code null}
   */
  default <T> CompletableFuture<T> withLock(
      String resource, Function<? super LockLease, ? extends CompletionStage<T>> action) {
    return withLock(LockOptions.of(resource), action);
  }

  /**
   * Runs {@code action} while holding the lock described by {@code options}: waits for the lock,
   * calls the action with the lease, renews the lease while the stage the action returned is
   * incomplete, and releases the lock when that stage completes, normally or exceptionally.
   *
   * <p>The returned future completes with the stage's result, or fails with:
   *
   * <ul>
   *   <li>{@link LockNotAcquiredException} if the lock was not acquired within the wait time (the
   *       action is not called);
   *   <li>{@link LockLostException} as soon as the lease is lost while the stage is incomplete:
   *       the stage is then cancelled and {@link LockLease#lost()} completes. A result the stage
   *       produced after the lease ran out is not returned either;
   *   <li>the exception the action threw, or its stage failed with, unchanged (the same object;
   *       if the lease was lost meanwhile, the {@code LockLostException} is added to it as a
   *       suppressed exception);
   *   <li>{@link LockLostException} with reason {@link LockLostException.Reason#CLOSED} if this
   *       {@code AsyncRedlock} is closed while the action runs (the stage is cancelled, the lease
   *       released);
   *   <li>{@link dev.redlock.core.RedlockClosedException} if this {@code AsyncRedlock} is closed,
   *       or is closed while the call waits for the lock;
   *   <li>{@link CancellationException} if the action's stage was cancelled;
   *   <li>{@link IllegalArgumentException} if the lease time is shorter than three node timeouts,
   *       not longer than the clock drift allowance, or longer than the restart guard.
   * </ul>
   *
   * <p>The action runs on the call's executor; it should start the work and return its stage
   * rather than block. A {@code null} stage fails the call with {@link NullPointerException}.
   * Cancelling the returned future cancels the call: waiting stops, or the action's stage is
   * cancelled and the lock released.
   *
   * @param <T> the action's result type
   * @param options the resources and per-call settings
   * @param action starts the work to do under the lock and returns its stage
   * @return a future of the action's result
   * @throws NullPointerException if {@code options} or {@code action} is {@code null}
   */
  <T> CompletableFuture<T> withLock(
      LockOptions options, Function<? super LockLease, ? extends CompletionStage<T>> action);

  /**
   * Runs {@code action} while holding a read lock on {@code resource}, with the default options.
   * See {@link #withReadLock(LockOptions, Function)}.
   *
   * @param <T> the action's result type
   * @param resource the resource of the reader-writer lock
   * @param action starts the work to do under the read lock and returns its stage
   * @return a future of the action's result
   * @throws IllegalArgumentException if {@code resource} is empty or longer than 1024 characters
   * @throws NullPointerException if {@code action} is {@code null}
   */
  default <T> CompletableFuture<T> withReadLock(
      String resource, Function<? super LockLease, ? extends CompletionStage<T>> action) {
    return withReadLock(LockOptions.of(resource), action);
  }

  /**
   * Runs {@code action} while holding a read lock on the one resource of {@code options}: any
   * number of readers hold it together, never while a writer holds it or (with writer priority)
   * waits for it. Waiting, renewal, loss, release and cancellation work as in {@link
   * #withLock(LockOptions, Function)}; a reader that crashes frees its place after its lease time.
   * Read locks have no fencing token. The future fails with {@link IllegalArgumentException} when
   * {@code options} names more than one resource.
   *
   * @param <T> the action's result type
   * @param options the resource and per-call settings
   * @param action starts the work to do under the read lock and returns its stage
   * @return a future of the action's result
   * @throws NullPointerException if {@code options} or {@code action} is {@code null}
   */
  <T> CompletableFuture<T> withReadLock(
      LockOptions options, Function<? super LockLease, ? extends CompletionStage<T>> action);

  /**
   * Runs {@code action} while holding the write lock on {@code resource}, with the default
   * options. See {@link #withWriteLock(LockOptions, Function)}.
   *
   * @param <T> the action's result type
   * @param resource the resource of the reader-writer lock
   * @param action starts the work to do under the write lock and returns its stage
   * @return a future of the action's result
   * @throws IllegalArgumentException if {@code resource} is empty or longer than 1024 characters
   * @throws NullPointerException if {@code action} is {@code null}
   */
  default <T> CompletableFuture<T> withWriteLock(
      String resource, Function<? super LockLease, ? extends CompletionStage<T>> action) {
    return withWriteLock(LockOptions.of(resource), action);
  }

  /**
   * Runs {@code action} while holding the write lock on the one resource of {@code options}:
   * exclusive against every other writer and every reader of that reader-writer lock (a {@link
   * #withLock} on the same name is a different lock). A writer kept out only by readers stops new
   * readers from entering until it gets in or gives up, so a stream of readers cannot starve it.
   * Waiting, renewal, loss, release and cancellation work as in {@link #withLock(LockOptions,
   * Function)}. Write locks have no fencing token. The future fails with {@link
   * IllegalArgumentException} when {@code options} names more than one resource.
   *
   * @param <T> the action's result type
   * @param options the resource and per-call settings
   * @param action starts the work to do under the write lock and returns its stage
   * @return a future of the action's result
   * @throws NullPointerException if {@code options} or {@code action} is {@code null}
   */
  <T> CompletableFuture<T> withWriteLock(
      LockOptions options, Function<? super LockLease, ? extends CompletionStage<T>> action);

  /**
   * Runs {@code action} while holding one of the {@code permits} permits of the semaphore {@code
   * resource}, with the default options. See {@link #withPermit(LockOptions, int, Function)}.
   *
   * @param <T> the action's result type
   * @param resource the semaphore
   * @param permits how many holders the semaphore admits at once, at least 1
   * @param action starts the work to do while holding the permit and returns its stage
   * @return a future of the action's result
   * @throws IllegalArgumentException if {@code resource} is empty or longer than 1024 characters,
   *     or {@code permits} is below 1
   * @throws NullPointerException if {@code action} is {@code null}
   */
  default <T> CompletableFuture<T> withPermit(
      String resource,
      int permits,
      Function<? super LockLease, ? extends CompletionStage<T>> action) {
    return withPermit(LockOptions.of(resource), permits, action);
  }

  /**
   * Runs {@code action} while holding one of the {@code permits} permits of the semaphore named by
   * the one resource of {@code options}: at most {@code permits} holders at a time, each with its
   * own lease, renewed while the action's stage is incomplete and released when it completes; a
   * holder that crashes gives its permit back after its lease time. A holder must win {@code
   * floor(N * permits / (permits + 1)) + 1} of the N masters (see the README). Waiting, loss,
   * release and cancellation work as in {@link #withLock(LockOptions, Function)}.
   *
   * <p>Every caller of one semaphore must use the same {@code permits}: the future fails with
   * {@link IllegalArgumentException} naming both numbers when the current holders use another.
   *
   * @param <T> the action's result type
   * @param options the resource and per-call settings
   * @param permits how many holders the semaphore admits at once, at least 1
   * @param action starts the work to do while holding the permit and returns its stage
   * @return a future of the action's result
   * @throws IllegalArgumentException if {@code permits} is below 1
   * @throws NullPointerException if {@code options} or {@code action} is {@code null}
   */
  <T> CompletableFuture<T> withPermit(
      LockOptions options,
      int permits,
      Function<? super LockLease, ? extends CompletionStage<T>> action);

  /**
   * Runs {@code section} on the calling thread while holding the lock on {@code resource}, with
   * the default options. See {@link #withLockBlocking(LockOptions, CriticalSection)}.
   *
   * @param <T> the section's result type
   * @param <X> the checked exception the section may throw
   * @param resource the resource to lock
   * @param section the code to run under the lock
   * @return the section's result
   * @throws X the exception the section threw, unchanged
   * @throws InterruptedException if the thread is interrupted while waiting for the lock
   * @throws LockNotAcquiredException if the lock was not acquired within the wait time
   * @throws LockLostException if the lease was lost before the section returned
   * @throws IllegalArgumentException if {@code resource} is empty or longer than 1024 characters
   */
  default <T, X extends Exception> T withLockBlocking(
      String resource, CriticalSection<T, X> section) throws X, InterruptedException {
    return withLockBlocking(LockOptions.of(resource), section);
  }

  /**
   * Runs {@code section} on the calling thread while holding the lock described by {@code
   * options}: the simple way for code that is not asynchronous.
   *
   * <p>Blocks until the lock is acquired, runs the section on the calling thread (so thread-local
   * state such as a transaction is there), renews the lease in the background meanwhile, releases
   * the lock when the section returns or throws, and waits for the release. The section's result
   * is returned only if the lease was still held when the section returned.
   *
   * <p>Loss cannot stop a running section: if the lease is lost, {@link LockLease#lost()}
   * completes and {@link LockLease#isValid()} turns {@code false}, for the section to check at
   * safe points; when the section returns, this method throws {@link LockLostException} (or, if
   * the section threw, rethrows its exception with the loss as a suppressed exception).
   *
   * @param <T> the section's result type
   * @param <X> the checked exception the section may throw
   * @param options the resources and per-call settings
   * @param section the code to run under the lock
   * @return the section's result
   * @throws X the exception the section threw, unchanged
   * @throws InterruptedException if the thread is interrupted while waiting for the lock; the
   *     attempt's keys are removed before this is thrown
   * @throws LockNotAcquiredException if the lock was not acquired within the wait time
   * @throws LockLostException if the lease was lost before the section returned (reason {@code
   *     CLOSED} if this {@code AsyncRedlock} was closed meanwhile)
   * @throws dev.redlock.core.RedlockClosedException if this {@code AsyncRedlock} is closed
   * @throws IllegalStateException if the calling thread holds the lock already (in a blocking
   *     section or an owned {@link RedlockLock} of this {@code AsyncRedlock}): it would wait for
   *     itself; locks are not reentrant
   * @throws NullPointerException if {@code options} or {@code section} is {@code null}
   */
  <T, X extends Exception> T withLockBlocking(LockOptions options, CriticalSection<T, X> section)
      throws X, InterruptedException;

  /**
   * Acquires the lock on {@code resource} with the default options. See {@link
   * #acquire(LockOptions)}.
   *
   * @param resource the resource to lock
   * @return a future of the lease
   * @throws IllegalArgumentException if {@code resource} is empty or longer than 1024 characters
   */
  default CompletableFuture<LockLease> acquire(String resource) {
    return acquire(LockOptions.of(resource));
  }

  /**
   * Acquires the lock described by {@code options}, waiting up to the wait time, and hands out
   * the lease. The lease is renewed in the background (unless {@link LockOptions#autoRenew()} is
   * off) until it is released, closed or lost; release it when done, preferably with
   * try-with-resources. Prefer {@link #withLock(LockOptions, Function)}, which cannot forget to.
   *
   * <p>Cancelling the returned future while waiting stops the wait and removes whatever the
   * attempt set on the masters; a lease acquired just as the future was cancelled is released.
   *
   * @param options the resources and per-call settings
   * @return a future of the lease; it fails with {@link LockNotAcquiredException} if the lock was
   *     not acquired within the wait time (it tells contention from masters failing), with {@link
   *     IllegalArgumentException} if the lease time is out of range (see {@link
   *     #withLock(LockOptions, Function)}), and with {@link dev.redlock.core.RedlockClosedException}
   *     if this {@code AsyncRedlock} is closed, or is closed meanwhile
   * @throws NullPointerException if {@code options} is {@code null}
   */
  CompletableFuture<LockLease> acquire(LockOptions options);

  /**
   * Makes one attempt to acquire the lock on {@code resource} with the default options. See
   * {@link #tryAcquire(LockOptions)}.
   *
   * @param resource the resource to lock
   * @return a future of the lease, or of empty when another holder has the lock
   * @throws IllegalArgumentException if {@code resource} is empty or longer than 1024 characters
   */
  default CompletableFuture<Optional<LockLease>> tryAcquire(String resource) {
    return tryAcquire(LockOptions.of(resource));
  }

  /**
   * Makes one attempt to acquire the lock described by {@code options}, without waiting ({@link
   * LockOptions#waitTime()} is ignored). The lease behaves as one from {@link
   * #acquire(LockOptions)}.
   *
   * @param options the resources and per-call settings
   * @return a future of the lease, or of empty when another holder has the lock; it fails with
   *     {@link LockNotAcquiredException} when the attempt failed without contention (too few
   *     masters answered, each master's failure attached), and otherwise as {@link
   *     #acquire(LockOptions)}'s
   * @throws NullPointerException if {@code options} is {@code null}
   */
  CompletableFuture<Optional<LockLease>> tryAcquire(LockOptions options);

  /**
   * Acquires a read lock on {@code resource} with the default options. See {@link
   * #acquireReadLock(LockOptions)}.
   *
   * @param resource the resource of the reader-writer lock
   * @return a future of the lease
   * @throws IllegalArgumentException if {@code resource} is empty, blank or longer than 1024 characters
   */
  default CompletableFuture<LockLease> acquireReadLock(String resource) {
    return acquireReadLock(LockOptions.of(resource));
  }

  /**
   * Acquires a read lock on the one resource of {@code options} (see {@link #withReadLock(LockOptions,
   * Function)}), waiting up to the wait time; the lease behaves as one from {@link
   * #acquire(LockOptions)}.
   *
   * @param options the resource and per-call settings
   * @return a future of the lease, failing as {@link #acquire(LockOptions)}'s does
   * @throws NullPointerException if {@code options} is {@code null}
   */
  CompletableFuture<LockLease> acquireReadLock(LockOptions options);

  /**
   * Makes one attempt to acquire a read lock on {@code resource} with the default options. See
   * {@link #tryAcquireReadLock(LockOptions)}.
   *
   * @param resource the resource of the reader-writer lock
   * @return a future of the lease, or of empty while a writer holds or waits for the lock
   * @throws IllegalArgumentException if {@code resource} is empty, blank or longer than 1024 characters
   */
  default CompletableFuture<Optional<LockLease>> tryAcquireReadLock(String resource) {
    return tryAcquireReadLock(LockOptions.of(resource));
  }

  /**
   * Makes one attempt to acquire a read lock on the one resource of {@code options}.
   *
   * @param options the resource and per-call settings
   * @return a future of the lease, or of empty while a writer holds or waits for the lock; failing
   *     as {@link #tryAcquire(LockOptions)}'s does
   * @throws NullPointerException if {@code options} is {@code null}
   */
  CompletableFuture<Optional<LockLease>> tryAcquireReadLock(LockOptions options);

  /**
   * Acquires the write lock on {@code resource} with the default options. See {@link
   * #acquireWriteLock(LockOptions)}.
   *
   * @param resource the resource of the reader-writer lock
   * @return a future of the lease
   * @throws IllegalArgumentException if {@code resource} is empty, blank or longer than 1024 characters
   */
  default CompletableFuture<LockLease> acquireWriteLock(String resource) {
    return acquireWriteLock(LockOptions.of(resource));
  }

  /**
   * Acquires the write lock on the one resource of {@code options} (see {@link
   * #withWriteLock(LockOptions, Function)}; {@link LockOptions#writerPriority()} and {@link
   * LockOptions#fencing()} apply), waiting up to the wait time; the lease behaves as one from
   * {@link #acquire(LockOptions)}.
   *
   * @param options the resource and per-call settings
   * @return a future of the lease, failing as {@link #acquire(LockOptions)}'s does
   * @throws NullPointerException if {@code options} is {@code null}
   */
  CompletableFuture<LockLease> acquireWriteLock(LockOptions options);

  /**
   * Makes one attempt to acquire the write lock on {@code resource} with the default options. See
   * {@link #tryAcquireWriteLock(LockOptions)}.
   *
   * @param resource the resource of the reader-writer lock
   * @return a future of the lease, or of empty while another writer or a reader holds the lock
   * @throws IllegalArgumentException if {@code resource} is empty, blank or longer than 1024 characters
   */
  default CompletableFuture<Optional<LockLease>> tryAcquireWriteLock(String resource) {
    return tryAcquireWriteLock(LockOptions.of(resource));
  }

  /**
   * Makes one attempt to acquire the write lock on the one resource of {@code options}; a single
   * attempt leaves no writer's mark behind.
   *
   * @param options the resource and per-call settings
   * @return a future of the lease, or of empty while another writer or a reader holds the lock;
   *     failing as {@link #tryAcquire(LockOptions)}'s does
   * @throws NullPointerException if {@code options} is {@code null}
   */
  CompletableFuture<Optional<LockLease>> tryAcquireWriteLock(LockOptions options);

  /**
   * Acquires one of the {@code permits} permits of the semaphore {@code resource} with the default
   * options. See {@link #acquirePermit(LockOptions, int)}.
   *
   * @param resource the semaphore
   * @param permits how many holders the semaphore admits at once, at least 1
   * @return a future of the lease
   * @throws IllegalArgumentException if {@code resource} is empty, blank or longer than 1024
   *     characters, or {@code permits} is below 1
   */
  default CompletableFuture<LockLease> acquirePermit(String resource, int permits) {
    return acquirePermit(LockOptions.of(resource), permits);
  }

  /**
   * Acquires one of the {@code permits} permits of the semaphore named by the one resource of
   * {@code options} (see {@link #withPermit(LockOptions, int, Function)}), waiting up to the wait
   * time; the lease behaves as one from {@link #acquire(LockOptions)}.
   *
   * @param options the resource and per-call settings
   * @param permits how many holders the semaphore admits at once, at least 1
   * @return a future of the lease, failing as {@link #acquire(LockOptions)}'s does, and with
   *     {@link IllegalArgumentException} when the current holders use another number of permits
   * @throws IllegalArgumentException if {@code permits} is below 1
   * @throws NullPointerException if {@code options} is {@code null}
   */
  CompletableFuture<LockLease> acquirePermit(LockOptions options, int permits);

  /**
   * Makes one attempt to acquire one of the {@code permits} permits of the semaphore {@code
   * resource} with the default options. See {@link #tryAcquirePermit(LockOptions, int)}.
   *
   * @param resource the semaphore
   * @param permits how many holders the semaphore admits at once, at least 1
   * @return a future of the lease, or of empty while every permit is taken
   * @throws IllegalArgumentException if {@code resource} is empty, blank or longer than 1024
   *     characters, or {@code permits} is below 1
   */
  default CompletableFuture<Optional<LockLease>> tryAcquirePermit(String resource, int permits) {
    return tryAcquirePermit(LockOptions.of(resource), permits);
  }

  /**
   * Makes one attempt to acquire one of the {@code permits} permits of the semaphore named by the
   * one resource of {@code options}.
   *
   * @param options the resource and per-call settings
   * @param permits how many holders the semaphore admits at once, at least 1
   * @return a future of the lease, or of empty while every permit is taken; failing as {@link
   *     #acquirePermit(LockOptions, int)}'s does
   * @throws IllegalArgumentException if {@code permits} is below 1
   * @throws NullPointerException if {@code options} is {@code null}
   */
  CompletableFuture<Optional<LockLease>> tryAcquirePermit(LockOptions options, int permits);

  /**
   * Asks every master how it stands, for health checks: one light probe each, all at once, each
   * bounded by the node timeout. See {@link MasterStatus.State} for what each state means; locks
   * are possible while a quorum of masters counts ({@link MasterStatus#counts()}).
   *
   * @return a future of one status per master, in the configuration's order; it fails with {@link
   *     dev.redlock.core.RedlockClosedException} if this {@code AsyncRedlock} is closed
   */
  CompletableFuture<List<MasterStatus>> checkMasters();

  /**
   * This Redlock as a {@link java.util.concurrent.locks.Lock} on one resource, for code written
   * against that interface: {@code lock()}, {@code lockInterruptibly()}, {@code tryLock()},
   * {@code tryLock(time, unit)} and {@code unlock()} block the calling thread. Reentrant per
   * thread; see {@link RedlockLock} for ownership, renewal and what happens on loss.
   *
   * @param resource the resource to lock
   * @return a lock to share between the threads that use the resource
   * @throws IllegalArgumentException if the resource name is empty or invalid
   */
  default RedlockLock asLock(String resource) {
    return asLock(LockOptions.of(resource));
  }

  /**
   * This Redlock as a {@link java.util.concurrent.locks.Lock} acquired with {@code options}
   * (resources, lease time, wait time per round of {@code lock()}, renewal, fencing).
   *
   * @param options how the lock is acquired
   * @return a lock to share between the threads that use the resources
   */
  default RedlockLock asLock(LockOptions options) {
    return new RedlockLock(this, options);
  }

  /**
   * Closes this {@code AsyncRedlock} and waits until it is done: every running {@code withLock}
   * fails with {@link LockLostException} of reason {@link LockLostException.Reason#CLOSED} (its
   * action's stage is cancelled), every lease from {@code acquire} is lost the same way ({@link
   * LockLease#lost()} completes), every lease still held is released on every master, every call
   * still waiting for a lock fails at once with {@link dev.redlock.core.RedlockClosedException};
   * then the connections to the masters are closed and the threads and callback pool it owns shut
   * down. An executor given to the builder or in {@link LockOptions} is never shut down. Bounded
   * (about four node timeouts); safe from any thread.
   *
   * <p>Idempotent. Calls made after {@code close()} fail with {@link
   * dev.redlock.core.RedlockClosedException}.
   */
  @Override
  void close();

  /**
   * Builds an {@link AsyncRedlock}. Not thread-safe; each setter replaces the previous value.
   */
  final class Builder {
    private final RedlockConfig config;
    private final DistributedLocks locks;
    private Executor executor;

    private Builder(RedlockConfig config, DistributedLocks locks) {
      this.config = config;
      this.locks = locks;
    }

    /**
     * Sets the executor that runs the actions of {@code withLock} and completes every future, for
     * calls whose {@link LockOptions} name no executor of their own. Default: a pool owned by the
     * {@code AsyncRedlock} (daemon threads, created as needed, shut down by {@link
     * AsyncRedlock#close()}). An executor set here is never shut down by the library. {@code
     * Runnable::run} runs callbacks on the library's own threads; they must then be quick and
     * never block.
     *
     * @param executor the executor
     * @return this builder
     * @throws NullPointerException if {@code executor} is {@code null}
     */
    public Builder executor(Executor executor) {
      this.executor =
          Objects.requireNonNull(executor, "executor must be an Executor, but was null");
      return this;
    }

    /**
     * Creates the {@code AsyncRedlock}. It starts connecting to the masters in the background;
     * unreachable masters are logged, not thrown.
     *
     * @return a new {@code AsyncRedlock}; close it when done
     */
    public AsyncRedlock build() {
      return new DefaultAsyncRedlock(config, locks, executor);
    }
  }
}
