package dev.redlock.java;

import static dev.redlock.java.Fleets.await;
import static dev.redlock.java.Fleets.config;
import static dev.redlock.java.Fleets.deleteKey;
import static dev.redlock.java.Fleets.eventually;
import static dev.redlock.java.Fleets.holders;
import static dev.redlock.java.Fleets.open;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.redlock.core.LockLostException;
import dev.redlock.core.LockNotAcquiredException;
import dev.redlock.core.RedlockConfig;
import dev.redlock.testing.RedisFleet;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.locks.Lock;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/** The {@link java.util.concurrent.locks.Lock} adapter, on three real masters. */
@Timeout(value = 60, unit = TimeUnit.SECONDS)
final class RedlockLockTest {
  private static RedisFleet fleet;
  private static AsyncRedlock redlock;
  private static AsyncRedlock otherProcess;
  private final ExecutorService threads = Executors.newCachedThreadPool();

  @BeforeAll
  static void start() {
    fleet = RedisFleet.start(3);
    redlock = open(fleet);
    otherProcess = open(fleet);
  }

  @AfterAll
  static void stop() {
    if (otherProcess != null) {
      otherProcess.close();
    }
    if (redlock != null) {
      redlock.close();
    }
    if (fleet != null) {
      fleet.close();
    }
  }

  @AfterEach
  void clean() {
    threads.shutdownNow();
    Fleets.restoreAndCheckClean(fleet);
  }

  @Test
  void lock_excludesOtherThreadsAndProcesses() throws Exception {
    Lock here = redlock.asLock("counter");
    Lock there = otherProcess.asLock("counter");
    AtomicInteger inside = new AtomicInteger();
    AtomicInteger overlaps = new AtomicInteger();
    AtomicInteger sections = new AtomicInteger();
    List<Future<?>> workers = new java.util.ArrayList<>();
    for (int t = 0; t < 4; t++) {
      Lock lock = t % 2 == 0 ? here : there;
      workers.add(threads.submit(() -> {
        for (int i = 0; i < 10; i++) {
          lock.lock();
          try {
            if (inside.incrementAndGet() != 1) {
              overlaps.incrementAndGet();
            }
            Thread.sleep(1);
            inside.decrementAndGet();
            sections.incrementAndGet();
          } finally {
            lock.unlock();
          }
        }
        return null;
      }));
    }
    for (Future<?> w : workers) {
      w.get(30, TimeUnit.SECONDS);
    }
    assertEquals(40, sections.get());
    assertEquals(0, overlaps.get());
  }

  @Test
  void tryLock_isOneAttempt_andTimedTryLockWaitsForTheRelease() throws Exception {
    RedlockLock lock = redlock.asLock("try");
    LockLease held = await(otherProcess.acquire("try"));
    assertFalse(lock.tryLock());
    assertFalse(lock.tryLock(50, TimeUnit.MILLISECONDS));
    assertFalse(lock.isHeldByCurrentThread());
    CompletableFuture.delayedExecutor(200, TimeUnit.MILLISECONDS).execute(held::release);
    assertTrue(lock.tryLock(20, TimeUnit.SECONDS));
    assertTrue(lock.isHeldByCurrentThread());
    assertTrue(holders(fleet, "try").size() >= 2, "held on a quorum");
    lock.unlock();
    assertTrue(lock.tryLock());
    lock.unlock();
  }

  @Test
  void lock_isReentrantPerThread_andOnlyTheOwnerUnlocks() throws Exception {
    RedlockLock lock = redlock.asLock("reentrant");
    lock.lock();
    lock.lock();
    assertTrue(lock.tryLock());
    assertEquals(3, lock.getHoldCount());
    IllegalMonitorStateException e =
        assertThrows(IllegalMonitorStateException.class, () -> {
          try {
            threads.submit(lock::unlock).get();
          } catch (java.util.concurrent.ExecutionException ex) {
            throw ex.getCause();
          }
        });
    assertTrue(e.getMessage().contains("is not held by this thread"), e.getMessage());
    assertEquals(0, (int) threads.submit(lock::getHoldCount).get());
    lock.unlock();
    lock.unlock();
    assertTrue(holders(fleet, "reentrant").size() >= 2, "still held after two of three unlocks");
    lock.unlock();
    assertEquals(List.of(), holders(fleet, "reentrant"));
    assertThrows(IllegalMonitorStateException.class, lock::unlock);
  }

  @Test
  void lockInterruptibly_givesUpOnInterrupt_lockKeepsWaiting() throws Exception {
    RedlockLock lock = redlock.asLock("interrupt");
    LockLease held = await(otherProcess.acquire("interrupt"));
    AtomicBoolean interruptedThrown = new AtomicBoolean();
    Thread waiter = new Thread(() -> {
      try {
        lock.lockInterruptibly();
        lock.unlock();
      } catch (InterruptedException e) {
        interruptedThrown.set(true);
      }
    });
    waiter.start();
    eventually("the waiter waits", () -> waiter.getState() == Thread.State.WAITING);
    waiter.interrupt();
    waiter.join(20_000);
    assertTrue(interruptedThrown.get());

    AtomicBoolean stillInterrupted = new AtomicBoolean();
    AtomicBoolean acquired = new AtomicBoolean();
    Thread patient = new Thread(() -> {
      lock.lock();
      acquired.set(true);
      stillInterrupted.set(Thread.currentThread().isInterrupted());
      lock.unlock();
    });
    patient.start();
    eventually("the second waiter waits", () -> patient.getState() == Thread.State.WAITING);
    patient.interrupt();
    Thread.sleep(100);
    assertFalse(acquired.get(), "lock() must not give up on interrupt");
    await(held.release());
    patient.join(20_000);
    assertTrue(acquired.get());
    assertTrue(stillInterrupted.get(), "the interrupt status is kept");
  }

  @Test
  void unlock_throwsLockLost_whenTheLeaseWasLostWhileHeld() {
    RedlockLock lock = redlock.asLock("lost");
    lock.lock();
    LockLease lease = lock.lease().orElseThrow();
    deleteKey(fleet, "lost", 0, 1, 2);
    eventually("the loss is noticed", () -> lease.lost().isDone());
    assertFalse(lease.isValid());
    LockLostException e = assertThrows(LockLostException.class, lock::unlock);
    assertEquals(List.of("lost"), e.resources());
    assertFalse(lock.isHeldByCurrentThread());
  }

  @Test
  void aHeldLockIsRenewed_beyondItsLeaseTime() throws Exception {
    RedlockConfig shortLease =
        RedlockConfig.builder().masters(fleet.uris()).leaseTime(Duration.ofMillis(300)).build();
    try (AsyncRedlock renewing = AsyncRedlock.create(shortLease)) {
      RedlockLock lock = renewing.asLock("renewed");
      lock.lock();
      Thread.sleep(1_000);
      assertTrue(lock.lease().orElseThrow().isValid());
      lock.unlock();
    }
  }

  @Test
  void failures_areErrors_notFalse_andConditionsAreRefused() {
    for (int i = 0; i < 3; i++) {
      fleet.command(i, "HSET", "redlock:wrong-type", "a", "b");
    }
    RedlockLock lock = redlock.asLock("wrong-type");
    LockNotAcquiredException e = assertThrows(LockNotAcquiredException.class, lock::lock);
    assertTrue(e.getMessage().contains("WRONGTYPE"), e.getMessage());
    assertThrows(LockNotAcquiredException.class, lock::tryLock);
    assertThrows(LockNotAcquiredException.class, () -> lock.tryLock(1, TimeUnit.SECONDS));
    deleteKey(fleet, "wrong-type", 0, 1, 2);
    UnsupportedOperationException u = assertThrows(UnsupportedOperationException.class, lock::newCondition);
    assertTrue(u.getMessage().contains("no conditions"));
  }
}
