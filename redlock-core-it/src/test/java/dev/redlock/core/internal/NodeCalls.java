package dev.redlock.core.internal;

import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.fail;

import dev.redlock.core.MasterFailureException;
import io.lettuce.core.RedisClient;
import java.time.Duration;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

/** Helpers shared by the tests of {@link RedisNode}: a lock client and bounded waits on calls. */
final class NodeCalls {
  /**
   * An upper bound on waiting for a call whose own timeout is shorter: a hang guard only, never a
   * speed assertion.
   */
  static final long HANG_GUARD_SECONDS = 15;

  /** Bounds the nodes' calls in these tests (a daemon thread, as the engine's timer is). */
  static final java.util.concurrent.ScheduledExecutorService TIMER =
      java.util.concurrent.Executors.newSingleThreadScheduledExecutor(
          r -> {
            Thread t = new Thread(r, "node-test-timer");
            t.setDaemon(true);
            return t;
          });

  private NodeCalls() {}

  /** A Lettuce client set up as every lock connection must be. */
  static RedisClient lockClient() {
    RedisClient client = RedisClient.create();
    client.setOptions(RedisNode.clientOptions(Duration.ofSeconds(2), null));
    return client;
  }

  static void shutDown(RedisClient client) {
    if (client != null) {
      client.shutdown(Duration.ZERO, Duration.ofSeconds(5));
    }
  }

  /** Waits for a call that must succeed. */
  static <T> T await(CompletableFuture<T> call) {
    try {
      return call.get(HANG_GUARD_SECONDS, TimeUnit.SECONDS);
    } catch (ExecutionException e) {
      throw new AssertionError("the call failed: " + e.getCause(), e.getCause());
    } catch (TimeoutException e) {
      throw new AssertionError("the call did not complete within " + HANG_GUARD_SECONDS + " s", e);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new AssertionError(e);
    }
  }

  /** Waits for a call that must fail, and returns its failure. */
  static MasterFailureException failureOf(CompletableFuture<?> call) {
    try {
      Object value = call.get(HANG_GUARD_SECONDS, TimeUnit.SECONDS);
      return fail("expected a MasterFailureException, but the call answered " + value);
    } catch (ExecutionException e) {
      return assertInstanceOf(MasterFailureException.class, e.getCause());
    } catch (TimeoutException e) {
      return fail("the call did not complete within " + HANG_GUARD_SECONDS + " s", e);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      return fail(e);
    }
  }
}
