package dev.redlock.junit5;

/* The README's JUnit 5 example, as a user writes it (imports included): keep the two in step. */
// region junit5
import static java.util.concurrent.TimeUnit.SECONDS;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.redlock.java.AsyncRedlock;
import dev.redlock.java.LockLease;
import dev.redlock.junit5.RedlockTest;
import dev.redlock.testing.RedisFleet;
import org.junit.jupiter.api.Test;

@RedlockTest(masters = 3)
final class OrderLockTest {

  @Test
  void lockSurvivesOneMasterCrash(AsyncRedlock redlock, RedisFleet fleet) throws Exception {
    fleet.kill(0); // one of three masters is down: a majority is still there

    try (LockLease lease = redlock.acquire("orders:42").get(10, SECONDS)) {
      assertTrue(lease.isValid());
      // Nobody else gets the lock while it is held.
      assertFalse(redlock.tryAcquire("orders:42").get(10, SECONDS).isPresent());
    }
  }

  @Test
  void everyTestStartsWithAllMastersUpAndEmpty(RedisFleet fleet) {
    for (int i = 0; i < fleet.size(); i++) {
      assertTrue(fleet.isRunning(i));
    }
    assertEquals(0, fleet.keyCount());
  }
}
// endregion
