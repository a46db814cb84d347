package dev.redlock.spring.shedlock;

import dev.redlock.java.AsyncRedlock;
import dev.redlock.java.LockLease;
import dev.redlock.java.LockOptions;
import java.time.Duration;
import java.time.Instant;
import java.util.Objects;
import java.util.Optional;
import java.util.concurrent.CompletionException;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import net.javacrumbs.shedlock.core.ClockProvider;
import net.javacrumbs.shedlock.core.ExtensibleLockProvider;
import net.javacrumbs.shedlock.core.LockConfiguration;
import net.javacrumbs.shedlock.core.SimpleLock;

/**
 * A ShedLock {@code LockProvider} whose locks are Redlocks, so {@code @SchedulerLock} jobs run once
 * across instances on a quorum of independent masters.
 *
 * <pre>{@code
 * @Bean
 * LockProvider lockProvider(AsyncRedlock redlock) {
 *   return new RedlockLockProvider(redlock);
 * }
 * }</pre>
 *
 * <p>As ShedLock documents for its providers:
 *
 * <ul>
 *   <li>the lock named {@code n} (resource {@code prefix + n}) is taken with one attempt, no
 *       waiting: a job whose lock is held is skipped;
 *   <li>it is held at most {@code lockAtMostFor}: that is the lease time, and the lease is not
 *       renewed, so the lock ends by then even if the job runs on (wrap this provider in {@code
 *       KeepAliveLockProvider} to extend it while the job runs: it is an {@link
 *       ExtensibleLockProvider});
 *   <li>it is held at least {@code lockAtLeastFor}: a job that ends sooner leaves the lock in place
 *       and it is released when {@code lockAtLeastFor} is over (from a timer of this provider; if
 *       the process stops first, the lock ends with its lease, at {@code lockAtMostFor}).
 * </ul>
 *
 * <p>{@code lockAtMostFor} is a lease time, so it must not exceed the configuration's {@code
 * restartGuard} (raise {@code redlock.restart-guard} to your longest {@code lockAtMostFor}). An
 * extension must keep the lock's {@code lockAtMostFor} (a Redlock lease renews to its own lease
 * time), as {@code KeepAliveLockProvider} does. ShedLock does not stop a job whose lock ended: for
 * work that must stop on loss, use {@code @Redlocked}. {@link #close()} (the bean's destroy
 * method) stops the timer and releases the locks it still keeps. Thread-safe.
 */
public final class RedlockLockProvider implements ExtensibleLockProvider, AutoCloseable {
  private static final AtomicInteger TIMERS = new AtomicInteger();

  private final AsyncRedlock redlock;
  private final String prefix;
  private final ScheduledExecutorService timer;

  /** Leases unlocked before their lockAtLeastFor was over, kept until it is. */
  private final java.util.Set<LockLease> kept = java.util.concurrent.ConcurrentHashMap.newKeySet();

  /**
   * Creates a provider whose lock {@code n} is the resource {@code shedlock:n}.
   *
   * @param redlock the Redlock that takes the locks
   */
  public RedlockLockProvider(AsyncRedlock redlock) {
    this(redlock, "shedlock:");
  }

  /**
   * Creates a provider whose lock {@code n} is the resource {@code prefix + n}.
   *
   * @param redlock the Redlock that takes the locks
   * @param prefix the prefix of every lock's resource
   */
  public RedlockLockProvider(AsyncRedlock redlock, String prefix) {
    this.redlock = Objects.requireNonNull(redlock, "redlock");
    this.prefix = Objects.requireNonNull(prefix, "prefix");
    int id = TIMERS.incrementAndGet();
    this.timer =
        Executors.newSingleThreadScheduledExecutor(
            task -> {
              Thread t = new Thread(task, "redlock-shedlock-" + id);
              t.setDaemon(true);
              return t;
            });
  }

  /**
   * Takes the lock of {@code lockConfiguration} with one attempt.
   *
   * @param lockConfiguration the lock's name and durations
   * @return the lock, or empty when another holder has it
   * @throws dev.redlock.core.LockNotAcquiredException when too few masters answered
   * @throws IllegalArgumentException when {@code lockAtMostFor} is out of the lease time's range
   *     (longer than the restart guard, or shorter than three node timeouts)
   */
  @Override
  public Optional<SimpleLock> lock(LockConfiguration lockConfiguration) {
    LockOptions options =
        LockOptions.builder(prefix + lockConfiguration.getName())
            .leaseTime(lockConfiguration.getLockAtMostFor())
            .autoRenew(false)
            .build();
    return join(redlock.tryAcquire(options))
        .map(lease -> new Held(lease, lockConfiguration, lockConfiguration.getLockAtLeastUntil()));
  }

  /** Stops the timer, releasing at once the locks it kept for their {@code lockAtLeastFor}. */
  @Override
  public void close() {
    timer.shutdownNow();
    for (LockLease lease : kept) {
      if (kept.remove(lease)) {
        join(lease.release());
      }
    }
  }

  private static <T> T join(java.util.concurrent.CompletableFuture<T> future) {
    try {
      return future.join();
    } catch (CompletionException e) {
      if (e.getCause() instanceof RuntimeException r) {
        throw r;
      }
      throw e;
    }
  }

  /** A held lock: valid until unlocked or extended (then its successor takes over). */
  private final class Held implements SimpleLock {
    private final LockLease lease;
    private final LockConfiguration configuration;
    private final Instant lockAtLeastUntil;
    private boolean valid = true;

    Held(LockLease lease, LockConfiguration configuration, Instant lockAtLeastUntil) {
      this.lease = lease;
      this.configuration = configuration;
      this.lockAtLeastUntil = lockAtLeastUntil;
    }

    @Override
    public synchronized void unlock() {
      checkValid();
      valid = false;
      long keep = Duration.between(ClockProvider.now(), lockAtLeastUntil).toMillis();
      if (keep <= 0) {
        join(lease.release());
        return;
      }
      kept.add(lease);
      try {
        timer.schedule(
            () -> {
              if (kept.remove(lease)) {
                join(lease.release());
              }
            },
            keep,
            TimeUnit.MILLISECONDS);
      } catch (java.util.concurrent.RejectedExecutionException closed) {
        if (kept.remove(lease)) {
          join(lease.release());
        }
      }
    }

    @Override
    public synchronized Optional<SimpleLock> extend(Duration lockAtMostFor, Duration lockAtLeastFor) {
      checkValid();
      if (!lockAtMostFor.equals(configuration.getLockAtMostFor())) {
        throw new UnsupportedOperationException(
            "a Redlock lease renews to its own lease time: lock " + configuration.getName()
                + " was taken for lockAtMostFor " + configuration.getLockAtMostFor()
                + " and cannot be extended for " + lockAtMostFor);
      }
      valid = false;
      try {
        join(lease.extend());
      } catch (RuntimeException notExtended) {
        // Lost, or too few masters confirmed: ShedLock's answer is "not extended".
        return Optional.empty();
      }
      Instant now = ClockProvider.now();
      return Optional.of(new Held(lease, configuration, now.plus(lockAtLeastFor)));
    }

    private void checkValid() {
      if (!valid) {
        throw new IllegalStateException(
            "the lock " + configuration.getName() + " is not valid: it was already unlocked or extended");
      }
    }
  }
}
