package dev.redlock.java;

import static dev.redlock.java.Fleets.await;
import static dev.redlock.java.Fleets.config;
import static dev.redlock.java.Fleets.deleteKey;
import static dev.redlock.java.Fleets.failure;
import static dev.redlock.java.Fleets.holders;
import static dev.redlock.java.Fleets.rawFailure;
import static dev.redlock.java.Fleets.sleep;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNotSame;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.redlock.core.LockLostException;
import dev.redlock.testing.RedisFleet;
import java.time.Duration;
import java.util.List;
import java.util.OptionalLong;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

@Timeout(value = 60, unit = TimeUnit.SECONDS)
final class LockLeaseTest {
  private static RedisFleet fleet;
  private static AsyncRedlock redlock;

  @BeforeAll
  static void start() {
    fleet = RedisFleet.start(3);
    redlock = Fleets.open(fleet);
  }

  @AfterAll
  static void stop() {
    try {
      if (redlock != null) {
        redlock.close();
      }
    } finally {
      if (fleet != null) {
        fleet.close();
      }
    }
  }

  @AfterEach
  void checkClean() {
    Fleets.restoreAndCheckClean(fleet);
  }

  private static LockOptions unrenewed(String resource, Duration leaseTime) {
    return LockOptions.builder(resource).leaseTime(leaseTime).autoRenew(false).build();
  }

  @Test
  void close_releasesAtTheEndOfTryWithResources() {
    try (LockLease lease = await(redlock.acquire("invoice:1"))) {
      Fleets.heldEverywhere(fleet, "invoice:1");
      assertTrue(lease.isValid());
    }
    assertEquals(0, fleet.keyCount(), "close() waited for the release");
  }

  @Test
  void close_releasesAlsoWhenTheBlockThrows() {
    IllegalStateException thrown = new IllegalStateException("failed inside");
    try (LockLease lease = await(redlock.acquire("invoice:2"))) {
      assertTrue(lease.isValid());
      throw thrown;
    } catch (IllegalStateException e) {
      assertSame(thrown, e);
    }
    assertEquals(0, fleet.keyCount());
  }

  @Test
  void release_deletesTheKeysAndIsIdempotent() {
    LockLease lease = await(redlock.acquire("invoice:3"));
    assertEquals(null, await(lease.release()));
    assertEquals(0, fleet.keyCount());
    assertFalse(lease.isValid());
    assertEquals(Duration.ZERO, lease.remaining());
    assertEquals(null, await(lease.release()));
    lease.close();
  }

  @Test
  void release_letsAWaiterIn() {
    LockLease first = await(redlock.acquire("invoice:4"));
    CompletableFuture<LockLease> second = redlock.acquire("invoice:4");
    sleep(50);
    assertFalse(second.isDone());
    await(first.release());
    try (LockLease lease = await(second)) {
      assertTrue(lease.isValid());
    }
  }

  @Test
  void release_fromInsideWithLock_releasesEarly() {
    CompletableFuture<Integer> result =
        redlock.withLock(
            "invoice:5",
            lease ->
                lease.release().thenApply(ignored -> fleet.keyCount()));
    assertEquals(Integer.valueOf(0), await(result), "released before the stage completed");
  }

  @Test
  void extend_renewsTheLeaseToItsFullLeaseTime() {
    try (LockLease lease = await(redlock.acquire(unrenewed("invoice:6", Duration.ofSeconds(2))))) {
      sleep(100);
      Duration before = lease.remaining();
      await(lease.extend());
      assertTrue(lease.remaining().compareTo(before) > 0, lease.remaining() + " after, " + before + " before");
      assertTrue(lease.remaining().compareTo(Duration.ofSeconds(2)) <= 0);
    }
  }

  @Test
  void extend_onALostLease_failsWithLockLostException() {
    try (LockLease lease = await(redlock.acquire(unrenewed("invoice:7", Duration.ofSeconds(2))))) {
      deleteKey(fleet, "invoice:7", 0, 1, 2);
      LockLostException loss = failure(lease.extend(), LockLostException.class);
      assertEquals(LockLostException.Reason.NOT_HELD, loss.reason());
      assertSame(loss, rawFailure(lease.lost()), "the same loss completes lost()");
      assertSame(loss, failure(lease.extend(), LockLostException.class), "and stays the answer");
    }
  }

  @Test
  void extend_onAReleasedLease_failsWithIllegalStateException() {
    LockLease lease = await(redlock.acquire("invoice:8"));
    lease.close();
    failure(lease.extend(), IllegalStateException.class);
  }

  @Test
  void lost_returnsANewFutureEachTimeThatCompletesWithTheLoss() {
    try (LockLease lease = await(redlock.acquire(unrenewed("invoice:9", Duration.ofMillis(300))))) {
      CompletableFuture<Void> first = lease.lost();
      CompletableFuture<Void> second = lease.lost();
      assertNotSame(first, second);
      first.cancel(true); // does not affect the others
      LockLostException loss = assertInstanceOf(LockLostException.class, rawFailure(second));
      assertEquals(LockLostException.Reason.EXPIRED, loss.reason());
      assertSame(loss, rawFailure(lease.lost()), "a lost lease answers at once");
    }
  }

  @Test
  void lost_neverCompletesForAReleasedLease() {
    LockLease lease = await(redlock.acquire(unrenewed("invoice:10", Duration.ofMillis(200))));
    CompletableFuture<Void> lost = lease.lost();
    lease.close();
    sleep(300); // past the lease time: a released lease is not lost
    assertFalse(lost.isDone());
  }

  @Test
  void lost_completesOnTheCallsExecutor() {
    ExecutorService named = Executors.newSingleThreadExecutor(task -> new Thread(task, "lease-executor"));
    try {
      LockOptions options =
          LockOptions.builder("invoice:11")
              .leaseTime(Duration.ofMillis(600))
              .executor(named)
              .build();
      try (LockLease lease = await(redlock.acquire(options))) {
        CompletableFuture<String> thread =
            lease.lost().handle((v, loss) -> Thread.currentThread().getName());
        deleteKey(fleet, "invoice:11", 0, 1, 2);
        assertEquals("lease-executor", await(thread));
      }
    } finally {
      named.shutdown();
    }
  }

  @Test
  void resources_listsEveryResourceOfTheLock() {
    try (LockLease lease = await(redlock.acquire(LockOptions.of("from:1", "to:2")))) {
      assertEquals(List.of("from:1", "to:2"), lease.resources());
      Fleets.heldEverywhere(fleet, "from:1");
      Fleets.heldEverywhere(fleet, "to:2");
    }
  }

  @Test
  void fencingToken_isEmptyUntilTheEngineProvidesOne() {
    try (LockLease lease = await(redlock.acquire("invoice:12"))) {
      assertEquals(OptionalLong.empty(), lease.fencingToken());
    }
  }

  @Test
  void remaining_isAtMostTheLeaseTimeWhileHeld() {
    try (LockLease lease = await(redlock.acquire(unrenewed("invoice:13", Duration.ofSeconds(2))))) {
      Duration remaining = lease.remaining();
      assertTrue(remaining.compareTo(Duration.ZERO) > 0);
      assertTrue(remaining.compareTo(Duration.ofSeconds(2)) < 0, "minus the drift allowance");
    }
  }

  @Test
  void isValid_turnsFalseWhenTheValidityRunsOutAndReportsTheLoss() {
    try (LockLease lease = await(redlock.acquire(unrenewed("invoice:14", Duration.ofMillis(100))))) {
      CompletableFuture<Void> lost = lease.lost();
      Fleets.eventually("the validity runs out", () -> !lease.isValid());
      LockLostException loss = assertInstanceOf(LockLostException.class, rawFailure(lost));
      assertEquals(LockLostException.Reason.EXPIRED, loss.reason());
    }
  }

  @Test
  void toString_showsTheResourcesButNotTheToken() {
    try (LockLease lease = await(redlock.acquire("invoice:15"))) {
      String shown = lease.toString();
      assertTrue(shown.startsWith("LockLease(resources=[invoice:15]"), shown);
    }
  }
}
