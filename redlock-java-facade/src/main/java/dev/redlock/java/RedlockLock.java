package dev.redlock.java;

import dev.redlock.core.LockLostException;
import dev.redlock.core.LockNotAcquiredException;
import dev.redlock.coroutines.LockType;
import java.time.Duration;
import java.util.Objects;
import java.util.Optional;
import java.util.concurrent.CancellationException;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.Condition;
import java.util.concurrent.locks.Lock;

/**
 * A Redlock seen as a {@link java.util.concurrent.locks.Lock}, for code written against that
 * interface. Obtain one with {@link AsyncRedlock#asLock(String)} and share it between threads, as
 * one would share a {@code ReentrantLock}.
 *
 * <pre>{@code
 * Lock lock = redlock.asLock("orders:42");
 * lock.lock();
 * try {
 *   // critical section
 * } finally {
 *   lock.unlock();
 * }
 * }</pre>
 *
 * <p>Semantics:
 *
 * <ul>
 *   <li><b>Ownership.</b> The thread that acquired the lock owns it; only that thread may unlock
 *       it (others get {@link IllegalMonitorStateException}). The lock is reentrant: the owner may
 *       lock it again, and it is released when it has been unlocked as many times.
 *   <li><b>Renewal.</b> While held, the lease is renewed in the background (unless the options
 *       turned {@code autoRenew} off), until {@link #unlock()} releases it.
 *   <li><b>Loss.</b> A thread cannot be stopped from outside, so a lost lease does not interrupt
 *       the owner: {@link #unlock()} releases what is left and then throws {@link
 *       LockLostException}, so the owner learns that its critical section was not protected.
 *       To bound the work itself, check {@link #lease()} ({@link LockLease#isValid()}, {@link
 *       LockLease#remaining()}, {@link LockLease#lost()}), or use {@link AsyncRedlock#withLock},
 *       which cancels the action on loss.
 *   <li><b>Failures.</b> Methods that acquire wait for other holders; they throw {@link
 *       LockNotAcquiredException} (unchecked) when the lock cannot be had for another reason: the
 *       masters fail or refuse permanently (wrong password, a key of the wrong type). They never
 *       return as if the lock were held when it is not.
 *   <li>{@link #newCondition()} is not supported: a condition would need a distributed wait set.
 * </ul>
 *
 * <p>Thread-safe.
 */
public final class RedlockLock implements Lock {
  private static final LockType MUTEX = LockType.Companion.getMUTEX();

  private final AsyncRedlock redlock;
  private final LockOptions options;
  private final Object monitor = new Object();

  // Guarded by monitor.
  private Thread owner;
  private int holds;
  private LockLease lease;
  private AutoCloseable heldByThread;

  RedlockLock(AsyncRedlock redlock, LockOptions options) {
    this.redlock = Objects.requireNonNull(redlock, "redlock");
    this.options = Objects.requireNonNull(options, "options");
  }

  /**
   * Acquires the lock, waiting as long as it takes while another holder has it. Not interruptible:
   * an interrupt while waiting is kept (the thread's interrupt status is set again on return).
   *
   * @throws LockNotAcquiredException if the masters fail or refuse the lock permanently
   */
  @Override
  public void lock() {
    boolean interrupted = false;
    try {
      while (true) {
        try {
          acquire(true, null);
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

  /**
   * Acquires the lock, waiting as long as it takes while another holder has it, unless the thread
   * is interrupted.
   *
   * @throws InterruptedException if the thread is interrupted before or while waiting; the
   *     acquisition is then cancelled and whatever it had set on the masters is released
   * @throws LockNotAcquiredException if the masters fail or refuse the lock permanently
   */
  @Override
  public void lockInterruptibly() throws InterruptedException {
    if (Thread.interrupted()) {
      throw new InterruptedException();
    }
    acquire(true, null);
  }

  /**
   * Acquires the lock if it is free now: one attempt on the masters, no waiting.
   *
   * @return whether the lock was acquired (or is already held by this thread)
   * @throws LockNotAcquiredException if the attempt failed for a reason other than another holder
   */
  @Override
  public boolean tryLock() {
    if (reenter()) {
      return true;
    }
    Optional<LockLease> got = uninterruptibly(redlock.tryAcquire(options));
    got.ifPresent(this::own);
    return got.isPresent();
  }

  /**
   * Acquires the lock, waiting up to {@code time} while another holder has it.
   *
   * @param time the longest wait; zero or less makes one attempt
   * @param unit the unit of {@code time}
   * @return whether the lock was acquired (or is already held by this thread); {@code false} when
   *     another holder kept it for the whole wait
   * @throws InterruptedException if the thread is interrupted before or while waiting
   * @throws LockNotAcquiredException if the masters fail or refuse the lock permanently
   */
  @Override
  public boolean tryLock(long time, TimeUnit unit) throws InterruptedException {
    Objects.requireNonNull(unit, "unit");
    if (Thread.interrupted()) {
      throw new InterruptedException();
    }
    if (time <= 0) {
      return tryLock();
    }
    return acquire(false, Duration.ofNanos(unit.toNanos(time)));
  }

  /**
   * Unlocks: releases the lease on the masters once the owner has unlocked as many times as it
   * locked, waiting until the release is done.
   *
   * @throws IllegalMonitorStateException if the current thread does not hold the lock
   * @throws LockLostException if the lease was lost while held (it is released all the same)
   */
  @Override
  public void unlock() {
    LockLease released;
    synchronized (monitor) {
      if (owner != Thread.currentThread()) {
        throw new IllegalMonitorStateException(
            "the Redlock lock on " + options.resources() + " is not held by this thread ("
                + Thread.currentThread().getName() + ")");
      }
      if (--holds > 0) {
        return;
      }
      released = lease;
      owner = null;
      lease = null;
      closeQuietly(heldByThread);
      heldByThread = null;
    }
    boolean wasValid = released.isValid();
    CompletableFuture<Void> lost = released.lost();
    uninterruptibly(released.release());
    if (!wasValid && lost.isDone() && !lost.isCancelled()) {
      Throwable cause = causeOf(lost);
      if (cause instanceof LockLostException loss) {
        throw loss;
      }
    }
  }

  /**
   * Not supported.
   *
   * @throws UnsupportedOperationException always
   */
  @Override
  public Condition newCondition() {
    throw new UnsupportedOperationException(
        "Redlock locks have no conditions: a condition needs a wait set shared by every process");
  }

  /**
   * The lease while the current thread holds the lock: its fencing token, validity and loss.
   *
   * @return the lease, or empty when the current thread does not hold the lock
   */
  public Optional<LockLease> lease() {
    synchronized (monitor) {
      return owner == Thread.currentThread() ? Optional.of(lease) : Optional.empty();
    }
  }

  /**
   * Whether the current thread holds the lock (its lease may have been lost since; see {@link
   * #lease()}).
   *
   * @return whether the current thread is the owner
   */
  public boolean isHeldByCurrentThread() {
    synchronized (monitor) {
      return owner == Thread.currentThread();
    }
  }

  /**
   * How many times the current thread has locked without unlocking.
   *
   * @return the hold count; zero when the current thread does not hold the lock
   */
  public int getHoldCount() {
    synchronized (monitor) {
      return owner == Thread.currentThread() ? holds : 0;
    }
  }

  /**
   * The options this lock acquires with.
   *
   * @return the resources, lease time and other options
   */
  public LockOptions options() {
    return options;
  }

  private boolean reenter() {
    synchronized (monitor) {
      if (owner == Thread.currentThread()) {
        holds++;
        return true;
      }
      return false;
    }
  }

  private void own(LockLease acquired) {
    synchronized (monitor) {
      owner = Thread.currentThread();
      holds = 1;
      lease = acquired;
      if (redlock instanceof DefaultAsyncRedlock own) {
        heldByThread = own.enterHeld(MUTEX, acquired);
      }
    }
  }

  private static void closeQuietly(AutoCloseable frame) {
    if (frame != null) {
      try {
        frame.close();
      } catch (Exception e) {
        throw new IllegalStateException(e);
      }
    }
  }

  /**
   * Acquires, waiting up to {@code wait} (null: forever, in rounds of the configured wait time).
   * Returns false when the wait ran out with the lock held by another holder.
   */
  private boolean acquire(boolean forever, Duration wait) throws InterruptedException {
    if (reenter()) {
      return true;
    }
    if (redlock instanceof DefaultAsyncRedlock own) {
      // Another lock of this thread (another RedlockLock, a withLockBlocking section) on the same
      // resource would make this wait for the thread itself.
      own.refuseHeld(MUTEX, options.resources(), "lock");
    }
    LockOptions round = wait == null ? options : options.toBuilder().waitTime(wait).build();
    while (true) {
      CompletableFuture<LockLease> future = redlock.acquire(round);
      try {
        own(future.get());
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

  private static <T> T uninterruptibly(CompletableFuture<T> future) {
    try {
      return future.join();
    } catch (CompletionException e) {
      throw rethrow(e.getCause());
    }
  }

  private static Throwable causeOf(CompletableFuture<?> done) {
    try {
      done.join();
      return null;
    } catch (CompletionException e) {
      return e.getCause();
    } catch (CancellationException e) {
      return null;
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

  /**
   * Names the resources and, when a thread of this process holds the lock, that thread.
   *
   * @return a short description
   */
  @Override
  public String toString() {
    synchronized (monitor) {
      return "RedlockLock(" + options.resources()
          + (owner != null ? ", held by " + owner.getName() : ", free in this process") + ")";
    }
  }
}
