package dev.redlock.java;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.fail;

import dev.redlock.core.RedlockConfig;
import dev.redlock.testing.RedisFleet;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.function.BooleanSupplier;

/** Helpers shared by the facade's tests: configs over a fleet, cleanliness checks, bounded waits. */
final class Fleets {
  /** Bounds every wait on something that must happen: a hang guard only, never a speed assertion. */
  static final long HANG_GUARD_SECONDS = 10;

  private Fleets() {}

  /** A config over every master of the fleet, with test-friendly timing. */
  static RedlockConfig config(RedisFleet fleet) {
    return RedlockConfig.builder()
        .masters(fleet.uris())
        .leaseTime(Duration.ofSeconds(2))
        .waitTime(Duration.ofSeconds(10))
        .retryDelay(Duration.ofMillis(5))
        .build();
  }

  /**
   * An {@code AsyncRedlock} over the fleet whose connections to every master are open.
   *
   * <p>An acquire returns once a majority answered, and a master still opening its first
   * connection may set its key a little later; tests that check for leftover keys therefore lock
   * only once every connection is open.
   */
  static AsyncRedlock open(RedisFleet fleet) {
    return connected(AsyncRedlock.create(config(fleet)), fleet);
  }

  /** Waits until {@code redlock} has an open connection to every master of the fleet. */
  static AsyncRedlock connected(AsyncRedlock redlock, RedisFleet fleet) {
    try (LockLease lease = await(redlock.acquire("warm-up"))) {
      eventually("every master is connected", () -> holders(fleet, "warm-up").size() == fleet.size());
    }
    return redlock;
  }

  /** Waits until every master holds the key of {@code resource}: the quorum answers first. */
  static void heldEverywhere(RedisFleet fleet, String resource) {
    eventually(resource + " is held on every master", () -> holders(fleet, resource).size() == fleet.size());
  }

  /** Brings every master back (restarted ones are empty), then checks that the test left no key. */
  static void restoreAndCheckClean(RedisFleet fleet) {
    for (int i = 0; i < fleet.size(); i++) {
      if (!fleet.isRunning(i)) {
        fleet.restart(i);
      }
    }
    for (int i = 0; i < fleet.size(); i++) {
      fleet.resume(i);
    }
    Map<Integer, List<String>> left = new TreeMap<>();
    for (int i = 0; i < fleet.size(); i++) {
      List<String> keys = fleet.keys(i);
      if (!keys.isEmpty()) {
        left.put(i, keys);
      }
    }
    fleet.flushAll();
    assertEquals(Map.of(), left, "keys left on the masters by the test");
  }

  /** The masters (by index) that hold the key of {@code resource}. */
  static List<Integer> holders(RedisFleet fleet, String resource) {
    List<Integer> holding = new ArrayList<>();
    for (int i = 0; i < fleet.size(); i++) {
      if (fleet.isRunning(i) && fleet.keys(i, "redlock:" + resource).size() == 1) {
        holding.add(i);
      }
    }
    return holding;
  }

  /** Deletes the lock key of {@code resource} on the given masters. */
  static void deleteKey(RedisFleet fleet, String resource, int... masters) {
    for (int i : masters) {
      fleet.command(i, "DEL", "redlock:" + resource);
    }
  }

  /** The remaining time to live of the lock key on master {@code i}, in ms (negative if none). */
  static long pttl(RedisFleet fleet, int i, String resource) {
    return (Long) fleet.command(i, "PTTL", "redlock:" + resource);
  }

  /** Waits for a future that must succeed. */
  static <T> T await(Future<T> future) {
    try {
      return future.get(HANG_GUARD_SECONDS, TimeUnit.SECONDS);
    } catch (ExecutionException e) {
      throw new AssertionError("the future failed: " + e.getCause(), e.getCause());
    } catch (TimeoutException e) {
      throw new AssertionError("the future did not complete within " + HANG_GUARD_SECONDS + " s", e);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new AssertionError(e);
    }
  }

  /** Waits for a future that must fail with {@code type}, and returns the failure. */
  static <X extends Throwable> X failure(Future<?> future, Class<X> type) {
    try {
      Object value = future.get(HANG_GUARD_SECONDS, TimeUnit.SECONDS);
      return fail("expected " + type.getSimpleName() + ", but the future completed with " + value);
    } catch (ExecutionException e) {
      return assertInstanceOf(type, e.getCause());
    } catch (TimeoutException e) {
      return fail("the future did not complete within " + HANG_GUARD_SECONDS + " s", e);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new AssertionError(e);
    }
  }

  /** The failure a completed future holds, exactly as it was completed (no wrapping added). */
  static Throwable rawFailure(CompletableFuture<?> future) {
    await(future.handle((v, e) -> null));
    return future.handle((v, e) -> e).join();
  }

  /** Polls {@code condition} until it holds; fails after the hang guard. */
  static void eventually(String what, BooleanSupplier condition) {
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(HANG_GUARD_SECONDS);
    while (!condition.getAsBoolean()) {
      if (System.nanoTime() > deadline) {
        fail("not reached within " + HANG_GUARD_SECONDS + " s: " + what);
      }
      sleep(10);
    }
  }

  static void sleep(long millis) {
    try {
      Thread.sleep(millis);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new AssertionError(e);
    }
  }
}
