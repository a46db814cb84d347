package dev.redlock.java;

import static dev.redlock.java.Fleets.await;
import static dev.redlock.java.Fleets.heldEverywhere;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.redlock.core.LeaseState;
import dev.redlock.core.LockLostException;
import dev.redlock.core.RedlockConfig;
import dev.redlock.testing.RedisFleet;
import java.time.Duration;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/** {@link LockLease#state()}, {@link LockLease#onStateChange}, fencing tokens and the maximum hold, from Java. */
final class LeaseStateTest {
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

  @AfterEach
  void clean() {
    Fleets.restoreAndCheckClean(fleet);
  }

  private static RedlockConfig.Builder base() {
    return RedlockConfig.builder()
        .masters(fleet.uris())
        .leaseTime(Duration.ofSeconds(3))
        .retryDelay(Duration.ofMillis(5))
        .nodeTimeout(Duration.ofMillis(100));
  }

  @Test
  void onStateChange_reportsAtRiskWhileAMajorityIsPausedAndHeldWhenItIsBack()
      throws Exception {
    try (AsyncRedlock redlock = AsyncRedlock.create(base().build())) {
      BlockingQueue<LeaseState> changes = new LinkedBlockingQueue<>();
      try (LockLease lease = await(redlock.acquire("watched"))) {
        assertEquals(LeaseState.HELD, lease.state());
        heldEverywhere(fleet, "watched");
        try (AutoCloseable watch = lease.onStateChange(changes::add)) {
          fleet.pause(1);
          fleet.pause(2);
          try {
            assertEquals(LeaseState.AT_RISK, changes.poll(Fleets.HANG_GUARD_SECONDS, TimeUnit.SECONDS));
            assertTrue(lease.isValid());
          } finally {
            fleet.resume(1);
            fleet.resume(2);
          }
          assertEquals(LeaseState.HELD, changes.poll(Fleets.HANG_GUARD_SECONDS, TimeUnit.SECONDS));
        }
      }
    }
  }

  @Test
  void fencing_givesEachLaterHolderALargerToken() throws Exception {
    try (AsyncRedlock redlock = AsyncRedlock.create(base().build())) {
      LockOptions fenced = LockOptions.builder("fenced-java").fencing(true).build();
      long first;
      try (LockLease lease = await(redlock.acquire(fenced))) {
        first = lease.fencingToken().orElseThrow();
      }
      try (LockLease lease = await(redlock.acquire(fenced))) {
        assertTrue(lease.fencingToken().orElseThrow() > first);
      }
      try (LockLease plain = await(redlock.acquire("fenced-java"))) {
        assertTrue(plain.fencingToken().isEmpty());
      }
    } finally {
      for (int m = 0; m < fleet.size(); m++) {
        fleet.command(m, "DEL", "redlock:fenced-java\u0000fence");
      }
    }
  }

  @Test
  void maxHoldTime_failsWithLockWithMaxHoldAndReleases() throws Exception {
    try (AsyncRedlock redlock =
        AsyncRedlock.create(base().leaseTime(Duration.ofMillis(600)).maxHoldTime(Duration.ofMillis(1500)).build())) {
      ExecutionException e =
          org.junit.jupiter.api.Assertions.assertThrows(
              ExecutionException.class,
              () -> redlock.withLock("capped", lease -> new java.util.concurrent.CompletableFuture<Void>())
                  .get(Fleets.HANG_GUARD_SECONDS, TimeUnit.SECONDS));
      LockLostException loss = (LockLostException) e.getCause();
      assertNotNull(loss);
      assertEquals(LockLostException.Reason.MAX_HOLD, loss.reason());
    }
  }
}
