package dev.redlock.java;

import static dev.redlock.java.Fleets.await;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.redlock.core.LeaseState;
import dev.redlock.core.MasterStatus;
import dev.redlock.core.RedlockConfig;
import dev.redlock.testing.RedisFleet;
import java.lang.ref.WeakReference;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.locks.Lock;
import java.util.function.Consumer;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * The Java side of what a newcomer runs into: a nested blocking lock on the same resource, a burst
 * of blocking callers on a cold AsyncRedlock, and watching a lease that already ended.
 */
@Timeout(value = 120, unit = TimeUnit.SECONDS)
final class NewcomerJavaTest {
  private static RedisFleet fleet;

  @BeforeAll
  static void start() {
    fleet = RedisFleet.start(3);
  }

  @AfterAll
  static void stop() {
    if (fleet != null) {
      fleet.close();
    }
  }

  @Test
  void withLockBlocking_nestedOnTheSameResource_failsAtOnceInsteadOfWaitingForItself() throws Exception {
    LockOptions patient = LockOptions.builder("nested").waitTime(Duration.ofMinutes(5)).build();
    try (AsyncRedlock redlock = Fleets.open(fleet)) {
      String outer =
          redlock.withLockBlocking(
              patient,
              lease -> {
                IllegalStateException e =
                    assertThrows(IllegalStateException.class, () -> redlock.withLockBlocking(patient, inner -> 1));
                assertTrue(e.getMessage().contains("withLockBlocking on [nested] was called on a thread that already holds"), e.getMessage());
                assertTrue(e.getMessage().contains("not reentrant"), e.getMessage());
                // A Lock over the same resource, on the same thread, would wait for it too.
                Lock lock = redlock.asLock(patient);
                assertThrows(IllegalStateException.class, lock::lock);
                // Another resource is fine.
                assertEquals(Integer.valueOf(2), redlock.withLockBlocking("elsewhere", inner -> 2));
                return "outer";
              });
      assertEquals("outer", outer);
      // And the other way round: a thread that owns the Lock cannot take a blocking section on it.
      Lock lock = redlock.asLock(patient);
      lock.lock();
      try {
        assertThrows(IllegalStateException.class, () -> redlock.withLockBlocking(patient, inner -> 1));
      } finally {
        lock.unlock();
      }
      assertEquals(Integer.valueOf(3), redlock.withLockBlocking(patient, lease -> 3));
    }
  }

  @Test
  void blockingCallers_aBurstOfFiveHundredOnAColdAsyncRedlock_allComplete() throws Exception {
    ExecutorService threads = Executors.newFixedThreadPool(500);
    try (AsyncRedlock redlock =
        AsyncRedlock.create(
            RedlockConfig.builder().masters(fleet.uris()).waitTime(Duration.ofSeconds(30)).build())) {
      AtomicInteger done = new AtomicInteger();
      List<Future<?>> calls = new ArrayList<>();
      for (int i = 0; i < 500; i++) {
        String resource = "burst:" + i;
        calls.add(
            threads.submit(
                () -> {
                  if (resource.hashCode() % 2 == 0) {
                    redlock.withLockBlocking(resource, lease -> done.incrementAndGet());
                  } else {
                    Lock lock = redlock.asLock(resource);
                    lock.lock();
                    try {
                      done.incrementAndGet();
                    } finally {
                      lock.unlock();
                    }
                  }
                  return null;
                }));
      }
      for (Future<?> call : calls) {
        call.get(60, TimeUnit.SECONDS); // a hang guard: 30 s wait plus the releases
      }
      assertEquals(500, done.get());
    } finally {
      threads.shutdownNow();
    }
  }

  @Test
  void onStateChange_ofALeaseThatEnded_keepsNothingAlive() throws Exception {
    try (AsyncRedlock redlock = Fleets.open(fleet)) {
      LockLease lease = await(redlock.acquire("ended"));
      lease.close();
      assertEquals(LeaseState.RELEASED, lease.state());
      List<WeakReference<Consumer<LeaseState>>> listeners = new ArrayList<>();
      for (int i = 0; i < 100; i++) {
        int n = i; // captured, so that each listener is an object of its own (not a cached lambda)
        Consumer<LeaseState> listener = s -> assertTrue(n >= 0);
        listeners.add(new WeakReference<>(listener));
        // Not closed: the lease ended, the watch should end with it (a collector waiting for a
        // change that never comes would hold the listener as long as the AsyncRedlock lives).
        AutoCloseable watch = lease.onStateChange(listener);
        assertTrue(watch != null);
      }
      for (int i = 0; i < 50 && listeners.stream().anyMatch(r -> r.get() != null); i++) {
        System.gc();
        Thread.sleep(20);
      }
      for (WeakReference<Consumer<LeaseState>> r : listeners) {
        assertNull(r.get());
      }
    }
  }

  @Test
  void asyncCallsFromAClosedRedlock_neverHang() throws Exception {
    AsyncRedlock redlock = Fleets.open(fleet);
    LockLease lease = await(redlock.acquire("after-close"));
    redlock.close();
    CompletableFuture<Void> released = lease.release();
    released.get(10, TimeUnit.SECONDS); // a hang guard
    lease.close();
  }

  @Test
  void checkMasters_reportsEachMaster_forAHealthCheck() throws Exception {
    try (AsyncRedlock redlock = Fleets.open(fleet)) {
      List<MasterStatus> statuses = redlock.checkMasters().get(10, TimeUnit.SECONDS);
      assertEquals(fleet.size(), statuses.size());
      for (MasterStatus status : statuses) {
        assertEquals(MasterStatus.State.UP, status.state(), status.toString());
        assertTrue(status.counts());
      }
    }
  }

  @Test
  void writeLock_withFencing_carriesAGrowingToken_andAReaderAskingForOneIsRefused() throws Exception {
    try (AsyncRedlock redlock = Fleets.open(fleet)) {
      LockOptions fenced = LockOptions.builder("java-rw").fencing(true).build();
      long first = await(redlock.withWriteLock(fenced, lease -> CompletableFuture.completedFuture(lease.fencingToken().getAsLong())));
      long second = await(redlock.withWriteLock(fenced, lease -> CompletableFuture.completedFuture(lease.fencingToken().getAsLong())));
      assertTrue(second > first, first + " then " + second);
      IllegalArgumentException e =
          Fleets.failure(redlock.withReadLock(fenced, lease -> CompletableFuture.completedFuture(1)), IllegalArgumentException.class);
      assertEquals(
          "fencing is for locks with one holder at a time (locks and write locks), but was asked for a read lock", e.getMessage());
      for (int i = 0; i < fleet.size(); i++) {
        fleet.command(i, "DEL", "redlock:java-rw\u0000write\u0000fence");
      }
    }
  }
}
