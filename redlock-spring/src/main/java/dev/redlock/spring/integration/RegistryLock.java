package dev.redlock.spring.integration;

import dev.redlock.core.LockLostException;
import dev.redlock.core.LockNotAcquiredException;
import dev.redlock.java.AsyncRedlock;
import dev.redlock.java.LockLease;
import dev.redlock.java.LockOptions;
import java.time.Duration;
import java.util.Optional;
import java.util.concurrent.CancellationException;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.Condition;
import org.springframework.integration.support.locks.DistributedLock;

/** One lock of a {@link RedlockLockRegistry}: reentrant per thread, over one lease per hold. */
final class RegistryLock implements DistributedLock {
  private final AsyncRedlock redlock;
  private final String resource;
  private final Duration leaseTime;
  private final Object monitor = new Object();

  // Guarded by monitor.
  private Thread owner;
  private int holds;
  private LockLease lease;
  private Duration heldWith;
  private long lastUsed = System.nanoTime();

  RegistryLock(AsyncRedlock redlock, String resource, Duration leaseTime) {
    this.redlock = redlock;
    this.resource = resource;
    this.leaseTime = leaseTime;
  }

  @Override
  public void lock() {
    lock(leaseTime);
  }

  @Override
  public void lock(Duration ttl) {
    boolean interrupted = false;
    try {
      while (true) {
        try {
          acquire(null, ttl, true);
          return;
        } catch (InterruptedException e) {
          interrupted = true;
        }
      }
    } finally {
      if (interrupted) {
        Thread.currentThread().interrupt();
      }
    }
  }

  @Override
  public void lockInterruptibly() throws InterruptedException {
    if (Thread.interrupted()) {
      throw new InterruptedException();
    }
    acquire(null, leaseTime, true);
  }

  @Override
  public boolean tryLock() {
    Boolean reentered = reenter(false);
    if (reentered != null) {
      return reentered;
    }
    Optional<LockLease> got = join(redlock.tryAcquire(options(null, leaseTime)));
    got.ifPresent(acquired -> own(acquired, leaseTime));
    return got.isPresent();
  }

  @Override
  public boolean tryLock(long time, TimeUnit unit) throws InterruptedException {
    return tryLock(Duration.ofNanos(unit.toNanos(time)), leaseTime);
  }

  @Override
  public boolean tryLock(Duration waitTime, Duration ttl) throws InterruptedException {
    if (Thread.interrupted()) {
      throw new InterruptedException();
    }
    if (waitTime.isNegative() || waitTime.isZero()) {
      Boolean reentered = reenter(false);
      if (reentered != null) {
        return reentered;
      }
      Optional<LockLease> got = join(redlock.tryAcquire(options(null, ttl)));
      got.ifPresent(acquired -> own(acquired, ttl));
      return got.isPresent();
    }
    return acquire(waitTime, ttl, false);
  }

  @Override
  public void unlock() {
    LockLease released;
    synchronized (monitor) {
      if (owner != Thread.currentThread()) {
        throw new IllegalMonitorStateException(
            "the lock " + resource + " is not held by this thread ("
                + Thread.currentThread().getName() + "): only its owner unlocks it");
      }
      lastUsed = System.nanoTime();
      if (--holds > 0) {
        return;
      }
      released = lease;
      owner = null;
      lease = null;
      heldWith = null;
    }
    boolean wasValid = released.isValid();
    CompletableFuture<Void> lost = released.lost();
    join(released.release());
    if (!wasValid) {
      LockLostException loss = lossOf(lost);
      if (loss != null) {
        throw loss;
      }
    }
  }

  @Override
  public Condition newCondition() {
    throw new UnsupportedOperationException(
        "Redlock locks have no conditions: a condition needs a wait set shared by every process");
  }

  Optional<LockLease> lease() {
    synchronized (monitor) {
      return owner == Thread.currentThread() ? Optional.of(lease) : Optional.empty();
    }
  }

  void touch() {
    synchronized (monitor) {
      lastUsed = System.nanoTime();
    }
  }

  /** Whether no thread holds this lock, nor held or asked for it in the last {@code limit} nanoseconds. */
  boolean unusedLongerThan(long now, long limit) {
    synchronized (monitor) {
      return owner == null && now - lastUsed > limit;
    }
  }

  void renew(Duration ttl) {
    LockLease held;
    synchronized (monitor) {
      Duration with = heldWith != null ? heldWith : redlock.config().leaseTime();
      if (ttl != null && !ttl.equals(with)) {
        throw new UnsupportedOperationException(
            "a Redlock lease renews to its own lease time (" + with + " for " + resource
                + "), not to another ttl (" + ttl + ")");
      }
      held = lease;
    }
    join(held.extend());
  }

  /**
   * Re-entry by the owning thread: {@code true} while its lease holds; when the lease was lost,
   * the thread's broken hold is dropped and {@code false} returned (or the loss thrown, when the
   * caller cannot answer {@code false}). {@code null}: not the owner.
   */
  private Boolean reenter(boolean throwOnLoss) {
    LockLease broken;
    synchronized (monitor) {
      if (owner != Thread.currentThread()) {
        return null;
      }
      if (lease.isValid()) {
        holds++;
        return Boolean.TRUE;
      }
      broken = lease;
      owner = null;
      holds = 0;
      lease = null;
      heldWith = null;
    }
    broken.release(); // cleans the masters that kept it; not awaited
    LockLostException loss = lossOf(broken.lost());
    if (throwOnLoss && loss != null) {
      throw loss;
    }
    return Boolean.FALSE;
  }

  private boolean acquire(Duration wait, Duration ttl, boolean forever) throws InterruptedException {
    Boolean reentered = reenter(forever);
    if (reentered != null) {
      return reentered;
    }
    LockOptions options = options(wait, ttl);
    while (true) {
      CompletableFuture<LockLease> future = redlock.acquire(options);
      try {
        own(future.get(), ttl);
        return true;
      } catch (InterruptedException e) {
        future.cancel(true);
        throw e;
      } catch (ExecutionException e) {
        Throwable cause = e.getCause();
        if (cause instanceof LockNotAcquiredException refused && refused.isContended()) {
          if (forever) {
            continue;
          }
          return false;
        }
        throw rethrow(cause);
      }
    }
  }

  private LockOptions options(Duration wait, Duration ttl) {
    LockOptions.Builder options = LockOptions.builder(resource);
    if (wait != null) {
      options.waitTime(wait);
    }
    if (ttl != null) {
      options.leaseTime(ttl);
    }
    return options.build();
  }

  private void own(LockLease acquired, Duration ttl) {
    synchronized (monitor) {
      owner = Thread.currentThread();
      holds = 1;
      lease = acquired;
      heldWith = ttl;
      lastUsed = System.nanoTime();
    }
  }

  private static LockLostException lossOf(CompletableFuture<Void> lost) {
    if (!lost.isDone() || lost.isCancelled()) {
      return null;
    }
    try {
      lost.join();
      return null;
    } catch (CompletionException e) {
      return e.getCause() instanceof LockLostException loss ? loss : null;
    } catch (CancellationException e) {
      return null;
    }
  }

  private static <T> T join(CompletableFuture<T> future) {
    try {
      return future.join();
    } catch (CompletionException e) {
      throw rethrow(e.getCause());
    }
  }

  private static RuntimeException rethrow(Throwable cause) {
    if (cause instanceof RuntimeException r) {
      throw r;
    }
    if (cause instanceof Error err) {
      throw err;
    }
    throw new CompletionException(cause);
  }

  @Override
  public String toString() {
    synchronized (monitor) {
      return "RedlockLockRegistry lock(" + resource
          + (owner != null ? ", held by " + owner.getName() : ", free in this process") + ")";
    }
  }
}
