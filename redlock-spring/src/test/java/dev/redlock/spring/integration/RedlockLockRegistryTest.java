package dev.redlock.spring.integration;

import static dev.redlock.spring.SpringFleets.HANG_GUARD;
import static dev.redlock.spring.SpringFleets.eventually;
import static dev.redlock.spring.SpringFleets.steal;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotSame;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.redlock.core.LockLostException;
import dev.redlock.core.RedlockConfig;
import dev.redlock.java.AsyncRedlock;
import dev.redlock.java.LockLease;
import dev.redlock.spring.SpringFleets;
import dev.redlock.testing.RedisFleet;
import java.time.Duration;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.locks.Lock;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.springframework.integration.leader.Context;
import org.springframework.integration.leader.DefaultCandidate;
import org.springframework.integration.support.leader.LockRegistryLeaderInitiator;
import org.springframework.integration.support.locks.DistributedLock;
import org.springframework.integration.support.locks.LockRegistry;

/**
 * The lock registry behaves as Spring Integration's registries are expected to, over real masters:
 * two registries over two Redlocks stand for two processes.
 */
final class RedlockLockRegistryTest {
  private static RedisFleet fleet;
  private static ExecutorService threads;
  private AsyncRedlock redlockA;
  private AsyncRedlock redlockB;
  private RedlockLockRegistry a;
  private RedlockLockRegistry b;

  @BeforeAll
  static void start() {
    fleet = RedisFleet.start(3);
    threads = Executors.newCachedThreadPool();
  }

  @AfterAll
  static void stop() {
    threads.shutdownNow();
    fleet.close();
  }

  @BeforeEach
  void registries() {
    RedlockConfig config =
        RedlockConfig.builder()
            .masters(fleet.uris())
            .leaseTime(Duration.ofSeconds(1))
            .restartGuard(Duration.ofMinutes(10))
            .retryDelay(Duration.ofMillis(5))
            .build();
    redlockA = SpringFleets.warm(AsyncRedlock.create(config));
    redlockB = SpringFleets.warm(AsyncRedlock.create(config));
    a = new RedlockLockRegistry(redlockA, "registry");
    b = new RedlockLockRegistry(redlockB, "registry");
  }

  @AfterEach
  void close() {
    redlockA.close();
    redlockB.close();
    eventually("no keys left on the masters", () -> fleet.keyCount() == 0);
  }

  @Test
  void lock_excludesAnotherProcess_untilUnlocked() throws Exception {
    Lock mine = a.obtain("orders");
    mine.lock();
    assertEquals(1, fleet.keys(0, "redlock:registry:orders").size());
    assertFalse(b.obtain("orders").tryLock());
    assertFalse(b.obtain("orders").tryLock(50, TimeUnit.MILLISECONDS));
    mine.unlock();
    Lock theirs = b.obtain("orders");
    assertTrue(theirs.tryLock(HANG_GUARD.toMillis(), TimeUnit.MILLISECONDS));
    theirs.unlock();
  }

  @Test
  void tryLockWithTime_waitsForTheRelease() throws Exception {
    Lock mine = a.obtain("queue");
    mine.lock();
    CompletableFuture<Boolean> waiting =
        CompletableFuture.supplyAsync(
            () -> {
              Lock theirs = b.obtain("queue");
              try {
                boolean got = theirs.tryLock(HANG_GUARD.toMillis(), TimeUnit.MILLISECONDS);
                if (got) {
                  theirs.unlock();
                }
                return got;
              } catch (InterruptedException e) {
                throw new IllegalStateException(e);
              }
            },
            threads);
    mine.unlock();
    assertTrue(waiting.get(HANG_GUARD.toSeconds(), TimeUnit.SECONDS));
  }

  @Test
  void locks_areReentrantPerThread() throws Exception {
    Lock mine = a.obtain("reentrant");
    assertSame(mine, a.obtain("reentrant"));
    mine.lock();
    assertTrue(mine.tryLock());
    mine.unlock();
    assertFalse(b.obtain("reentrant").tryLock(), "still held once");
    mine.unlock();
    Lock theirs = b.obtain("reentrant");
    assertTrue(theirs.tryLock(HANG_GUARD.toMillis(), TimeUnit.MILLISECONDS));
    theirs.unlock();
  }

  @Test
  void unlock_byAnotherThread_isRefused_andOtherThreadsWait() throws Exception {
    Lock shared = a.obtain("owned");
    CountDownLatch locked = new CountDownLatch(1);
    CountDownLatch release = new CountDownLatch(1);
    CompletableFuture<Void> owner =
        CompletableFuture.runAsync(
            () -> {
              shared.lock();
              locked.countDown();
              try {
                assertTrue(release.await(HANG_GUARD.toSeconds(), TimeUnit.SECONDS));
              } catch (InterruptedException e) {
                throw new IllegalStateException(e);
              } finally {
                shared.unlock();
              }
            },
            threads);
    assertTrue(locked.await(HANG_GUARD.toSeconds(), TimeUnit.SECONDS));
    assertThrows(IllegalMonitorStateException.class, shared::unlock);
    assertFalse(shared.tryLock(), "another thread of the same process holds it");
    release.countDown();
    owner.get(HANG_GUARD.toSeconds(), TimeUnit.SECONDS);
    assertTrue(shared.tryLock(HANG_GUARD.toMillis(), TimeUnit.MILLISECONDS));
    shared.unlock();
  }

  @Test
  void executeLocked_runsUnderTheLock_andTimesOutWhileAnotherHoldsIt() throws Exception {
    AtomicBoolean ran = new AtomicBoolean();
    LockRegistry<?> registry = a;
    registry.executeLocked("batch", () -> {
      assertFalse(b.obtain("batch").tryLock(), "held while the task runs");
      ran.set(true);
    });
    assertTrue(ran.get());
    Lock theirs = b.obtain("batch");
    theirs.lock();
    try {
      assertThrows(TimeoutException.class, () -> registry.executeLocked("batch", Duration.ofMillis(50), () -> ran.set(false)));
      assertTrue(ran.get(), "the task did not run");
    } finally {
      theirs.unlock();
    }
  }

  @Test
  void loss_isReported_atReentry_andAtUnlock() throws Exception {
    Lock mine = a.obtain("lost");
    mine.lock();
    LockLease lease = a.lease("lost").orElseThrow();
    steal(fleet, "registry:lost");
    assertThrows(Exception.class, () -> lease.lost().get(HANG_GUARD.toSeconds(), TimeUnit.SECONDS));
    // A reentrant tryLock (a leader's heartbeat) learns of it, and the broken hold is dropped.
    assertFalse(mine.tryLock());
    assertTrue(a.lease("lost").isEmpty());
    assertThrows(IllegalMonitorStateException.class, mine::unlock);

    mine.lock();
    steal(fleet, "registry:lost");
    LockLease second = a.lease("lost").orElseThrow();
    assertThrows(Exception.class, () -> second.lost().get(HANG_GUARD.toSeconds(), TimeUnit.SECONDS));
    LockLostException loss = assertThrows(LockLostException.class, mine::unlock);
    assertEquals(LockLostException.Reason.NOT_HELD, loss.reason());
  }

  @Test
  void distributedLock_ttl_isTheLeaseTime_andRenewLockExtends() throws Exception {
    DistributedLock mine = a.obtain("ttl");
    mine.lock(Duration.ofMinutes(5));
    try {
      long pttl = (Long) fleet.command(0, "PTTL", "redlock:registry:ttl");
      assertTrue(pttl > 60_000, "the key lives for the ttl, not the registry's 1 s: " + pttl);
      a.renewLock("ttl");
      a.renewLock("ttl", Duration.ofMinutes(5));
      assertThrows(UnsupportedOperationException.class, () -> a.renewLock("ttl", Duration.ofMinutes(1)));
      assertThrows(IllegalStateException.class, () -> b.renewLock("ttl"));
    } finally {
      mine.unlock();
    }
    DistributedLock theirs = b.obtain("ttl");
    assertTrue(theirs.tryLock(Duration.ZERO, Duration.ofSeconds(1)), "released by unlock");
    theirs.unlock();
  }

  @Test
  void expireUnusedOlderThan_forgetsFreeLocksOnly() {
    Lock held = a.obtain("held");
    Lock free = a.obtain("free");
    held.lock();
    try {
      a.expireUnusedOlderThan(-1);
      assertSame(held, a.obtain("held"));
      assertNotSame(free, a.obtain("free"));
    } finally {
      held.unlock();
    }
    assertThrows(IllegalArgumentException.class, () -> a.obtain(42));
  }

  @Test
  void leaderInitiator_handsLeadershipOverWhenTheLeadersLockIsLost() throws Exception {
    Candidate first = new Candidate("first");
    Candidate second = new Candidate("second");
    LockRegistryLeaderInitiator leaderA = new LockRegistryLeaderInitiator(a, first);
    LockRegistryLeaderInitiator leaderB = new LockRegistryLeaderInitiator(b, second);
    leaderA.setHeartBeatMillis(200);
    leaderB.setHeartBeatMillis(200);
    leaderA.setBusyWaitMillis(HANG_GUARD.toMillis()); // the deposed leader stays out a while
    leaderB.setBusyWaitMillis(20);
    try {
      leaderA.start();
      assertTrue(first.granted.await(HANG_GUARD.toSeconds(), TimeUnit.SECONDS));
      leaderB.start();
      assertTrue(leaderA.getContext().isLeader());
      assertFalse(leaderB.getContext().isLeader());

      // The leader's lock is lost (its keys vanish from the masters).
      steal(fleet, "registry:" + first.getRole());
      assertTrue(first.revoked.await(HANG_GUARD.toSeconds(), TimeUnit.SECONDS), "the old leader is told");
      assertTrue(second.granted.await(HANG_GUARD.toSeconds(), TimeUnit.SECONDS), "the other one takes over");
      assertTrue(leaderB.getContext().isLeader());
      assertFalse(leaderA.getContext().isLeader());
    } finally {
      leaderB.stop();
      leaderA.stop();
    }
    eventually("leadership released", () -> fleet.keyCount() == 0);
  }

  /** Records grants and revocations. */
  private static final class Candidate extends DefaultCandidate {
    final CountDownLatch granted = new CountDownLatch(1);
    final CountDownLatch revoked = new CountDownLatch(1);

    Candidate(String id) {
      super(id, "leader");
    }

    @Override
    public void onGranted(Context ctx) {
      super.onGranted(ctx);
      granted.countDown();
    }

    @Override
    public void onRevoked(Context ctx) {
      super.onRevoked(ctx);
      revoked.countDown();
    }
  }

  @Test
  void autoConfiguration_providesTheRegistry() {
    SpringFleets.runner(fleet)
        .withPropertyValues("redlock.integration.registry-key=app")
        .run(
            context -> {
              RedlockLockRegistry registry = context.getBean(RedlockLockRegistry.class);
              registry.executeLocked("k", () -> assertEquals(1, fleet.keys(0, "redlock:app:k").size()));
            });
  }
}
