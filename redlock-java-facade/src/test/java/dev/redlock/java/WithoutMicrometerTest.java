package dev.redlock.java;

import static dev.redlock.java.Fleets.await;
import static dev.redlock.java.Fleets.config;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;

import dev.redlock.core.RedlockConfig;
import dev.redlock.core.RedlockMetrics;
import dev.redlock.testing.RedisFleet;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * Micrometer is optional: this module's test class path, like an application that does not use
 * it, does not have it, and locks work, recording nothing.
 */
@Timeout(value = 60, unit = TimeUnit.SECONDS)
final class WithoutMicrometerTest {

  @Test
  void locks_work_when_micrometer_is_absent() {
    assertThrows(
        ClassNotFoundException.class,
        () -> Class.forName("io.micrometer.core.instrument.MeterRegistry"));
    try (RedisFleet fleet = RedisFleet.start(1)) {
      RedlockConfig config = config(fleet);
      assertSame(RedlockMetrics.NONE, config.metrics());
      try (AsyncRedlock redlock = AsyncRedlock.create(config)) {
        String result =
            await(redlock.withLock("no-micrometer", lease -> CompletableFuture.completedFuture("done")));
        assertEquals("done", result);
      }
    }
  }

  @Test
  void build_rejects_null_metrics() {
    IllegalArgumentException e =
        assertThrows(
            IllegalArgumentException.class,
            () -> RedlockConfig.builder().master("redis://localhost:6379").metrics(null).build());
    assertEquals(
        "metrics must not be null; use RedlockMetrics.NONE to record nothing", e.getMessage());
  }
}
