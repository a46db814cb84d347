package dev.redlock.java;

import dev.redlock.core.LockLostException;
import dev.redlock.core.MasterStatus;
import dev.redlock.core.RedlockConfig;
import dev.redlock.coroutines.DistributedLocks;
import dev.redlock.coroutines.LockType;
import dev.redlock.java.internal.EngineBridge;
import dev.redlock.java.internal.Nesting;
import java.util.List;
import java.util.Objects;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.Executor;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.SynchronousQueue;
import java.util.concurrent.ThreadFactory;
import java.util.concurrent.ThreadPoolExecutor;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.Function;

/** The one implementation of {@link AsyncRedlock}: options and executors here, the engine behind {@link EngineBridge}. */
final class DefaultAsyncRedlock implements AsyncRedlock {
  private static final AtomicInteger POOLS = new AtomicInteger();

  /** Runs plumbing of the blocking call on the engine's thread: it only completes futures. */
  private static final Executor DIRECT = Runnable::run;

  private final EngineBridge bridge;
  private final Executor executor;
  private final ExecutorService ownedPool;

  DefaultAsyncRedlock(RedlockConfig config, DistributedLocks locks, Executor executor) {
    this.ownedPool = executor == null ? newCallbackPool() : null;
    this.executor = executor == null ? ownedPool : executor;
    try {
      this.bridge = locks != null ? new EngineBridge(locks) : new EngineBridge(config);
    } catch (RuntimeException | Error e) {
      if (ownedPool != null) {
        ownedPool.shutdown();
      }
      throw e;
    }
  }

  /**
   * Threads created as needed and retired after 30 s idle: a slow callback gets a thread of its
   * own instead of holding up the others.
   */
  private static ExecutorService newCallbackPool() {
    int pool = POOLS.incrementAndGet();
    AtomicInteger count = new AtomicInteger();
    ThreadFactory threads =
        task -> {
          Thread t = new Thread(task, "redlock-callbacks-" + pool + "-" + count.incrementAndGet());
          t.setDaemon(true);
          return t;
        };
    return new ThreadPoolExecutor(
        0, Integer.MAX_VALUE, 30, TimeUnit.SECONDS, new SynchronousQueue<>(), threads);
  }

  @Override
  public RedlockConfig config() {
    return bridge.getConfig();
  }

  @Override
  public <T> CompletableFuture<T> withLock(
      LockOptions options, Function<? super LockLease, ? extends CompletionStage<T>> action) {
    return with(LockType.Companion.getMUTEX(), options, action, "withLock");
  }

  @Override
  public <T> CompletableFuture<T> withReadLock(
      LockOptions options, Function<? super LockLease, ? extends CompletionStage<T>> action) {
    return with(LockType.Companion.getREAD(), options, action, "withReadLock");
  }

  @Override
  public <T> CompletableFuture<T> withWriteLock(
      LockOptions options, Function<? super LockLease, ? extends CompletionStage<T>> action) {
    return with(writeType(options), options, action, "withWriteLock");
  }

  @Override
  public <T> CompletableFuture<T> withPermit(
      LockOptions options,
      int permits,
      Function<? super LockLease, ? extends CompletionStage<T>> action) {
    return with(LockType.Companion.permit(permits), options, action, "withPermit");
  }

  /** Every {@code with*} form: one call of the bridge with the kind of lock. */
  private <T> CompletableFuture<T> with(
      LockType type,
      LockOptions options,
      Function<? super LockLease, ? extends CompletionStage<T>> action,
      String call) {
    Objects.requireNonNull(options, "options must be LockOptions, but was null");
    Objects.requireNonNull(action, "action must be a Function, but was null");
    Executor callbacks = executorFor(options);
    return bridge.withLease(type, options, callbacks, callbacks, call, action).getResult();
  }

  @Override
  public <T, X extends Exception> T withLockBlocking(
      LockOptions options, CriticalSection<T, X> section) throws X, InterruptedException {
    Objects.requireNonNull(options, "options must be LockOptions, but was null");
    Objects.requireNonNull(section, "section must be a CriticalSection, but was null");
    LockType type = LockType.Companion.getMUTEX();
    refuseHeld(type, options.resources(), "withLockBlocking");
    CompletableFuture<LockLease> entered = new CompletableFuture<>();
    CompletableFuture<T> exited = new CompletableFuture<>();
    // The section runs on this thread: the "action" only hands the lease over and returns a stage
    // that this thread completes when the section is done.
    EngineBridge.Call<T> call =
        bridge.withLease(
            type,
            options,
            DIRECT,
            executorFor(options),
            "withLockBlocking",
            lease -> {
              entered.complete(lease);
              return exited;
            });
    CompletableFuture<T> result = call.getResult();
    try {
      CompletableFuture.anyOf(entered, result).get();
    } catch (ExecutionException e) {
      // The call failed before the section could start: reported below.
    } catch (InterruptedException e) {
      result.cancel(false);
      awaitUninterruptibly(call.getSettled());
      throw e;
    }
    if (!entered.isDone()) {
      throw unchecked(failureOf(result));
    }
    LockLease lease = entered.join();
    T value;
    Nesting.Frame held = Nesting.INSTANCE.enter(bridge, type, lease);
    try {
      value = section.run(lease);
    } catch (Throwable t) {
      exited.completeExceptionally(t);
      awaitUninterruptibly(call.getSettled());
      Throwable outcome = failureOf(result);
      if (outcome instanceof LockLostException && outcome != t) {
        boolean known = false;
        for (Throwable s : t.getSuppressed()) {
          known |= s == outcome;
        }
        if (!known) {
          t.addSuppressed(outcome);
        }
      }
      throw t;
    } finally {
      held.close();
    }
    exited.complete(value);
    awaitUninterruptibly(call.getSettled());
    Throwable failure = failureOf(result);
    if (failure != null) {
      throw unchecked(failure);
    }
    return value;
  }

  @Override
  public CompletableFuture<LockLease> acquire(LockOptions options) {
    return acquire(LockType.Companion.getMUTEX(), options, "acquire");
  }

  @Override
  public CompletableFuture<Optional<LockLease>> tryAcquire(LockOptions options) {
    return tryAcquire(LockType.Companion.getMUTEX(), options, "tryAcquire");
  }

  @Override
  public CompletableFuture<LockLease> acquireReadLock(LockOptions options) {
    return acquire(LockType.Companion.getREAD(), options, "acquireReadLock");
  }

  @Override
  public CompletableFuture<Optional<LockLease>> tryAcquireReadLock(LockOptions options) {
    return tryAcquire(LockType.Companion.getREAD(), options, "tryAcquireReadLock");
  }

  @Override
  public CompletableFuture<LockLease> acquireWriteLock(LockOptions options) {
    return acquire(writeType(options), options, "acquireWriteLock");
  }

  @Override
  public CompletableFuture<Optional<LockLease>> tryAcquireWriteLock(LockOptions options) {
    // A single attempt leaves no writer's mark behind (as in Kotlin).
    return tryAcquire(LockType.Companion.write(false), options, "tryAcquireWriteLock");
  }

  @Override
  public CompletableFuture<LockLease> acquirePermit(LockOptions options, int permits) {
    return acquire(LockType.Companion.permit(permits), options, "acquirePermit");
  }

  @Override
  public CompletableFuture<Optional<LockLease>> tryAcquirePermit(LockOptions options, int permits) {
    return tryAcquire(LockType.Companion.permit(permits), options, "tryAcquirePermit");
  }

  /** Every {@code acquire*} form: waits for the lease. */
  private CompletableFuture<LockLease> acquire(LockType type, LockOptions options, String call) {
    Objects.requireNonNull(options, "options must be LockOptions, but was null");
    return bridge.acquire(type, options, executorFor(options), false, call).getResult();
  }

  /** Every {@code tryAcquire*} form: one attempt; empty on contention. */
  private CompletableFuture<Optional<LockLease>> tryAcquire(LockType type, LockOptions options, String call) {
    Objects.requireNonNull(options, "options must be LockOptions, but was null");
    return bridge.acquire(type, options, executorFor(options), true, call).getResult().thenApply(Optional::ofNullable);
  }

  private static LockType writeType(LockOptions options) {
    return LockType.Companion.write(options.writerPriority());
  }

  /**
   * Throws {@link IllegalStateException} when the calling thread holds one of {@code resources}
   * through this AsyncRedlock: a blocking call would wait for its own thread.
   */
  void refuseHeld(LockType type, List<String> resources, String call) {
    Nesting.INSTANCE.refuse(bridge, type, resources, call);
  }

  /** Records that the calling thread holds {@code lease} (until the frame is closed on this thread). */
  Nesting.Frame enterHeld(LockType type, LockLease lease) {
    return Nesting.INSTANCE.enter(bridge, type, lease);
  }

  @Override
  public CompletableFuture<List<MasterStatus>> checkMasters() {
    return bridge.checkMasters(executor);
  }

  @Override
  public void close() {
    try {
      bridge.close();
    } finally {
      if (ownedPool != null) {
        // Graceful: completions already handed to the pool still run, then its threads end.
        ownedPool.shutdown();
      }
    }
  }

  @Override
  public String toString() {
    return bridge.toString();
  }

  private Executor executorFor(LockOptions options) {
    return options.executor().orElse(executor);
  }

  /** The failure a completed future holds, exactly as it was completed, or {@code null}. */
  private static Throwable failureOf(CompletableFuture<?> future) {
    return future.handle((value, failure) -> failure).join();
  }

  private static RuntimeException unchecked(Throwable failure) {
    if (failure instanceof RuntimeException) {
      return (RuntimeException) failure;
    }
    if (failure instanceof Error) {
      throw (Error) failure;
    }
    return new CompletionException(failure);
  }

  /** Waits for cleanup that is bounded by the per-master timeout; keeps the interrupt for later. */
  private static void awaitUninterruptibly(CompletableFuture<?> future) {
    boolean interrupted = false;
    while (true) {
      try {
        future.get();
        break;
      } catch (InterruptedException e) {
        interrupted = true;
      } catch (ExecutionException e) {
        break;
      }
    }
    if (interrupted) {
      Thread.currentThread().interrupt();
    }
  }
}
