package dev.redlock.spring;

import dev.redlock.java.AsyncRedlock;
import dev.redlock.java.LockLease;
import dev.redlock.spring.boot.RedlockAutoConfiguration;
import dev.redlock.spring.boot.RedlockHealthAutoConfiguration;
import dev.redlock.spring.boot.RedlockIntegrationAutoConfiguration;
import dev.redlock.spring.boot.RedlockShedLockAutoConfiguration;
import dev.redlock.testing.RedisFleet;
import java.time.Duration;
import java.util.concurrent.Callable;
import java.util.concurrent.TimeUnit;
import org.awaitility.Awaitility;
import org.springframework.boot.autoconfigure.AutoConfigurations;
import org.springframework.boot.autoconfigure.aop.AopAutoConfiguration;
import org.springframework.boot.test.context.runner.ApplicationContextRunner;

/** Helpers shared by the Spring tests: context runners over a fleet, bounded waits. */
public final class SpringFleets {
  /** Bounds every wait on something that must happen: a hang guard, never a speed assertion. */
  public static final Duration HANG_GUARD = Duration.ofSeconds(20);

  private SpringFleets() {}

  /** A context runner with every Redlock auto-configuration, its masters the fleet's, short leases. */
  public static ApplicationContextRunner runner(RedisFleet fleet) {
    return new ApplicationContextRunner()
        .withConfiguration(
            AutoConfigurations.of(
                AopAutoConfiguration.class,
                RedlockAutoConfiguration.class,
                RedlockHealthAutoConfiguration.class,
                RedlockIntegrationAutoConfiguration.class,
                RedlockShedLockAutoConfiguration.class))
        .withPropertyValues(
            "redlock.masters=" + String.join(",", fleet.uris()),
            "redlock.lease-time=1s",
            "redlock.retry-delay=5ms");
  }

  /**
   * Takes and releases a lock with {@code redlock}, which waits for its first connections: calls
   * that make one attempt ({@code waitTime} 0, {@code tryAcquire}) do not wait for them.
   */
  public static AsyncRedlock warm(AsyncRedlock redlock) {
    try (LockLease lease = redlock.acquire("warm-up").get(HANG_GUARD.toSeconds(), TimeUnit.SECONDS)) {
      return redlock;
    } catch (Exception e) {
      throw new IllegalStateException("could not warm the Redlock up", e);
    }
  }

  /** Waits (bounded by the hang guard) until {@code condition} holds. */
  public static void eventually(String what, Callable<Boolean> condition) {
    Awaitility.await(what).atMost(HANG_GUARD).pollInterval(Duration.ofMillis(10)).until(condition);
  }

  /** Deletes the keys of {@code resource} on every master: the next renewal finds the lease gone. */
  public static void steal(RedisFleet fleet, String resource) {
    for (int i = 0; i < fleet.size(); i++) {
      fleet.command(i, "DEL", "redlock:" + resource);
    }
  }
}
