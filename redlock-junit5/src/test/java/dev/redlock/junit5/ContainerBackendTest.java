package dev.redlock.junit5;

import static java.util.concurrent.TimeUnit.SECONDS;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import dev.redlock.core.LockLostException;
import dev.redlock.core.LockNotExtendedException;
import dev.redlock.java.AsyncRedlock;
import dev.redlock.java.LockLease;
import dev.redlock.testing.RedisFleet;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.ExecutionException;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.condition.EnabledIf;
import org.junit.jupiter.api.extension.RegisterExtension;

/**
 * The extension on the container backend, with a lock through kill, pause and restart. Runs where
 * a Docker engine is reachable through Testcontainers; reported as skipped, with why, elsewhere.
 */
@EnabledIf(
    value = "dockerAvailable",
    disabledReason = "needs a Docker engine reachable through Testcontainers (RedisFleet.dockerAvailable() is false)")
final class ContainerBackendTest {

  @RegisterExtension
  static final RedisFleetExtension REDIS =
      RedisFleetExtension.builder()
          .masters(3)
          .backend(RedisFleet.Backend.CONTAINERS)
          // Built on the engine from the bundled redis-server: no registry needed.
          .fleetOptions(
              fleet ->
                  fleet.image(RedisFleet.LOCAL_BINARY_IMAGE).commandTimeout(Duration.ofMillis(500)))
          .redlockConfig(
              config ->
                  config
                      .leaseTime(Duration.ofSeconds(5))
                      .waitTime(Duration.ofSeconds(2))
                      .nodeTimeout(Duration.ofMillis(200)))
          .build();

  static boolean dockerAvailable() {
    return RedisFleet.dockerAvailable();
  }

  @Test
  void aLock_holdsThroughAKilledMaster_andAnotherClientGetsItOnlyAfterRelease(
      AsyncRedlock redlock, AsyncRedlock other, RedisFleet fleet) throws Exception {
    assertEquals(RedisFleet.Backend.CONTAINERS, fleet.backend());

    LockLease lease = redlock.acquire("orders:42").get(30, SECONDS);
    // Granted once a majority answered; the third master may set its key a moment later.
    awaitKeyOnEveryMaster(fleet, "*orders:42*");

    fleet.kill(0); // a crash: two of three masters still hold the key
    lease.extend().get(10, SECONDS);
    assertTrue(lease.isValid());
    assertFalse(other.tryAcquire("orders:42").get(10, SECONDS).isPresent());

    fleet.restart(0); // back empty, on the same port
    assertEquals(List.of(), fleet.keys(0));
    lease.release().get(10, SECONDS);
    try (LockLease next = other.acquire("orders:42").get(30, SECONDS)) {
      assertTrue(next.isValid());
    }
  }

  private static void awaitKeyOnEveryMaster(RedisFleet fleet, String pattern)
      throws InterruptedException {
    long deadline = System.nanoTime() + SECONDS.toNanos(10);
    while (true) {
      int holding = 0;
      for (int i = 0; i < fleet.size(); i++) {
        holding += fleet.keys(i, pattern).size();
      }
      if (holding == fleet.size()) {
        return;
      }
      if (System.nanoTime() - deadline > 0) {
        fail("the lock's key is on " + holding + " of " + fleet.size() + " masters after 10 s");
      }
      Thread.sleep(10);
    }
  }

  @Test
  void aPausedMajority_failsTheExtension_andResumeBringsTheMastersBack(
      AsyncRedlock redlock, RedisFleet fleet) throws Exception {
    LockLease lease = redlock.acquire("jobs:nightly").get(30, SECONDS);
    awaitKeyOnEveryMaster(fleet, "*jobs:nightly*");
    fleet.pause(1);
    fleet.pause(2); // frozen containers: connections stay open, nothing answers

    ExecutionException failure =
        assertThrows(ExecutionException.class, () -> lease.extend().get(30, SECONDS));
    // Too few masters answer; if a background renewal already failed past validity, it is lost.
    assertTrue(
        failure.getCause() instanceof LockNotExtendedException
            || failure.getCause() instanceof LockLostException,
        failure.getCause().toString());

    fleet.resume(1);
    fleet.resume(2);
    assertEquals(1, fleet.keys(1, "*jobs:nightly*").size(), "a pause keeps the data");
    lease.release().get(10, SECONDS);
  }

  @Test
  void theResetAfterEach_restartedAndResumedEveryContainer(RedisFleet fleet) {
    for (int i = 0; i < fleet.size(); i++) {
      assertTrue(fleet.isRunning(i));
      assertFalse(fleet.isPaused(i));
    }
    assertEquals(0, fleet.keyCount());
  }
}
