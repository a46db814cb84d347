package dev.redlock.junit5;

import static java.util.concurrent.TimeUnit.SECONDS;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.redlock.core.LockNotAcquiredException;
import dev.redlock.core.RedlockConfig;
import dev.redlock.java.AsyncRedlock;
import dev.redlock.java.LockLease;
import dev.redlock.testing.RedisFleet;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.ExecutionException;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

/** The programmatic form: fleet and Redlock settings in code, the fleet reachable from tests. */
final class RegisteredExtensionTest {

  // region junit5-builder
  @RegisterExtension
  static final RedisFleetExtension REDIS =
      RedisFleetExtension.builder()
          .masters(3)
          .fleetOptions(fleet -> fleet.password("s3cret").commandTimeout(Duration.ofMillis(500)))
          .redlockConfig(config -> config.leaseTime(Duration.ofSeconds(2)).waitTime(Duration.ZERO))
          .build();

  @Test
  void aPausedMasterCountsAsDown(AsyncRedlock redlock) throws Exception {
    REDIS.fleet().pause(0);
    REDIS.fleet().pause(1); // two of three masters frozen: no majority

    ExecutionException failure =
        assertThrows(ExecutionException.class, () -> redlock.acquire("jobs:nightly").get(10, SECONDS));
    assertTrue(failure.getCause() instanceof LockNotAcquiredException);
  }
  // endregion

  @Test
  void fleetAndConfig_areTheOnesOfTheClass(RedisFleet fleet, RedlockConfig config) {
    assertSame(REDIS.fleet(), fleet);
    assertSame(REDIS.redlockConfig(), config);
    assertEquals(fleet.uris(), config.masters());
    assertTrue(fleet.uri(0).startsWith("redis://:s3cret@"));
    assertEquals(Duration.ofSeconds(2), config.leaseTime());
    assertEquals(Duration.ZERO, config.waitTime());
    assertFalse(fleet.isPaused(0), "the previous test's pauses were undone by the reset");
  }

  @Test
  void eachParameter_isAnInstanceOfItsOwn(AsyncRedlock first, AsyncRedlock second) throws Exception {
    try (LockLease lease = first.acquire("stock:7").get(10, SECONDS)) {
      assertTrue(lease.isValid());
      assertFalse(second.tryAcquire("stock:7").get(10, SECONDS).isPresent());
    }
    assertEquals(List.of(), REDIS.fleet().keys(0, "*stock*"));
  }
}
