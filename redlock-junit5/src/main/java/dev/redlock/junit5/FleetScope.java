package dev.redlock.junit5;

import dev.redlock.core.RedlockConfig;
import dev.redlock.testing.RedisFleet;
import java.util.function.Consumer;

/** The fleet of one test class, its Redlock configuration, and what was handed out for the class. */
final class FleetScope implements AutoCloseable {
  private final String ownerId;
  private final RedisFleet fleet;
  private final RedlockConfig config;
  private final Handouts classHandouts = new Handouts();

  FleetScope(String ownerId, RedisFleet fleet, Consumer<RedlockConfig.Builder> configOptions) {
    this.ownerId = ownerId;
    this.fleet = fleet;
    RedlockConfig.Builder builder = RedlockConfig.builder().masters(fleet.uris());
    try {
      configOptions.accept(builder);
      this.config = builder.build();
    } catch (RuntimeException e) {
      try {
        fleet.close();
      } catch (RuntimeException suppressed) {
        e.addSuppressed(suppressed);
      }
      throw e;
    }
  }

  boolean ownedBy(String contextId) {
    return ownerId.equals(contextId);
  }

  RedisFleet fleet() {
    return fleet;
  }

  RedlockConfig config() {
    return config;
  }

  Handouts classHandouts() {
    return classHandouts;
  }

  /** Brings every master back (restarted ones empty), thaws paused ones, and deletes every key. */
  void reset() {
    for (int i = 0; i < fleet.size(); i++) {
      if (!fleet.isRunning(i)) {
        fleet.restart(i);
      } else if (fleet.isPaused(i)) {
        fleet.resume(i);
      }
    }
    fleet.flushAll();
  }

  /** Closes what was handed out for the class, then the fleet; idempotent. */
  @Override
  public void close() {
    try {
      classHandouts.close();
    } finally {
      fleet.close();
    }
  }
}
