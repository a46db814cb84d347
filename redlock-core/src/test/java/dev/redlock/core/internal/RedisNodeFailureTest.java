package dev.redlock.core.internal;

import static dev.redlock.core.internal.NodeCalls.await;
import static dev.redlock.core.internal.NodeCalls.failureOf;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import dev.redlock.core.MasterFailureException;
import dev.redlock.core.MasterFailureException.Kind;
import dev.redlock.testing.RedisFleet;
import io.lettuce.core.RedisClient;
import io.lettuce.core.RedisURI;
import java.io.IOException;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/** {@link RedisNode} when its master is down, paused or restarted. */
@Tag("compat")
final class RedisNodeFailureTest {
  private static final Duration TIMEOUT = Duration.ofSeconds(5);
  private static final Duration SHORT = Duration.ofMillis(200);
  private static final long LEASE = 30_000;

  private static RedisFleet fleet;
  private static RedisClient client;

  private RedisNode node;

  @BeforeAll
  static void start() {
    fleet = RedisFleet.builder().masters(1).commandTimeout(Duration.ofSeconds(2)).start();
    client = NodeCalls.lockClient();
  }

  @AfterAll
  static void stop() {
    NodeCalls.shutDown(client);
    if (fleet != null) {
      fleet.close();
    }
  }

  @BeforeEach
  void openNode() {
    node = new RedisNode(client, RedisURI.create(fleet.uri(0)));
  }

  @AfterEach
  void closeNodeAndFlush() {
    node.closeAndWait(TIMEOUT);
    if (!fleet.isRunning(0)) {
      fleet.restart(0);
    }
    fleet.resume(0);
    fleet.flushAll();
  }

  private static String[] keys(String... keys) {
    return keys;
  }

  private static int freePort() throws IOException {
    try (ServerSocket socket = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
      return socket.getLocalPort();
    }
  }

  @Test
  void acquire_nothingListens_failsAsUnreachable() throws IOException {
    int port = freePort();
    RedisNode down = new RedisNode(client, RedisURI.create("redis://127.0.0.1:" + port));
    try {
      MasterFailureException e = failureOf(down.acquire(keys("redlock:a"), false, false, Tokens.next(), LEASE, TIMEOUT));
      assertEquals(Kind.UNREACHABLE, e.kind());
      assertFalse(e.kind().isPermanent());
      assertEquals("127.0.0.1:" + port, e.master());
      assertTrue(e.getMessage().startsWith("127.0.0.1:" + port + ": unreachable"), e.getMessage());
      assertNotNull(e.getCause());
      // Every operation fails the same way, and a later call tries to connect again.
      assertEquals(Kind.UNREACHABLE, failureOf(down.release(keys("redlock:a"), "t", "r1", TIMEOUT)).kind());
      assertEquals(
          Kind.UNREACHABLE,
          failureOf(down.extend(keys("redlock:a"), new String[] {"1", "t"}, LEASE, TIMEOUT)).kind());
      assertEquals(Kind.UNREACHABLE, failureOf(down.warmUp(TIMEOUT)).kind());
    } finally {
      down.closeAndWait(TIMEOUT);
    }
  }

  @Test
  void acquire_pausedMaster_failsWithTimeout() {
    await(node.warmUp(TIMEOUT));
    fleet.pause(0);
    MasterFailureException e;
    try {
      // Still paused while waiting: only the node's own bound can end the call.
      e = failureOf(node.acquire(keys("redlock:a"), false, false, Tokens.next(), LEASE, SHORT));
    } finally {
      fleet.resume(0);
    }
    assertEquals(Kind.TIMEOUT, e.kind());
    assertFalse(e.kind().isPermanent());
    assertEquals(node.name(), e.master());
    assertTrue(e.getMessage().contains("no reply within 200ms"), e.getMessage());
  }

  @Test
  void acquire_pausedMasterNeverConnected_failsWithTimeout() {
    fleet.pause(0);
    MasterFailureException e;
    try {
      e = failureOf(node.acquire(keys("redlock:a"), false, false, Tokens.next(), LEASE, SHORT));
    } finally {
      fleet.resume(0);
    }
    assertEquals(Kind.TIMEOUT, e.kind());
    // Opening the connection is bounded by the client's connect timeout, not the call's.
    assertTrue(e.getMessage().contains("could not open a connection within"), e.getMessage());
  }

  @Test
  void extendAndRelease_pausedMaster_failWithTimeout() {
    await(node.warmUp(TIMEOUT));
    fleet.pause(0);
    MasterFailureException extend;
    MasterFailureException release;
    try {
      extend = failureOf(node.extend(keys("redlock:a"), new String[] {"1", "t"}, LEASE, SHORT));
      release = failureOf(node.release(keys("redlock:a"), "t", "r1", SHORT));
    } finally {
      fleet.resume(0);
    }
    assertEquals(Kind.TIMEOUT, extend.kind());
    assertEquals(Kind.TIMEOUT, release.kind());
  }

  /**
   * A timed-out command may still run once the master answers again: this is why the engine sends
   * its releases to masters that timed out too.
   */
  @Test
  void acquire_timedOut_stillRunsAfterResume() {
    await(node.warmUp(TIMEOUT));
    String token = Tokens.next();
    fleet.pause(0);
    try {
      assertEquals(
          Kind.TIMEOUT, failureOf(node.acquire(keys("redlock:a"), false, false, token, LEASE, SHORT)).kind());
    } finally {
      fleet.resume(0);
    }
    // Issued after the timed-out acquire on the same connection, so it runs after it.
    AcquireReply second = await(node.acquire(keys("redlock:a"), false, false, Tokens.next(), LEASE, TIMEOUT));
    assertFalse(second.acquired(), "the timed-out acquire did not run after all");
    assertEquals(token, fleet.command(0, "GET", "redlock:a"));
    // And a release issued after it removes it.
    assertEquals(1L, await(node.release(keys("redlock:a"), token, "r1", TIMEOUT)));
  }

  @Test
  void acquire_killedMaster_failsAsUnreachable() {
    await(node.warmUp(TIMEOUT));
    fleet.kill(0);
    MasterFailureException e = failureOf(node.acquire(keys("redlock:a"), false, false, Tokens.next(), LEASE, TIMEOUT));
    assertEquals(Kind.UNREACHABLE, e.kind(), e.getMessage());
  }

  @Test
  void acquire_restartedMaster_worksAgain() {
    String token = Tokens.next();
    assertTrue(await(node.acquire(keys("redlock:a"), false, false, token, LEASE, TIMEOUT)).acquired());
    fleet.restart(0);
    // The connection comes back by itself; until then calls are rejected at once, not buffered.
    AcquireReply reply = retryWhileUnreachable(() -> node.acquire(keys("redlock:b"), false, false, token, LEASE, TIMEOUT));
    assertTrue(reply.acquired());
    // The restarted master lost its data and its scripts; both were handled.
    assertEquals(List.of("redlock:b"), fleet.keys(0));
    assertEquals(List.of(1L), fleet.command(0, "SCRIPT", "EXISTS", Script.ACQUIRE.sha()));
    assertEquals(1L, await(node.release(keys("redlock:b"), token, "r1", TIMEOUT)));
  }

  @Test
  void acquire_masterDownAtFirstCall_connectsOnceItIsUp() {
    fleet.kill(0);
    assertEquals(
        Kind.UNREACHABLE,
        failureOf(node.acquire(keys("redlock:a"), false, false, Tokens.next(), LEASE, TIMEOUT)).kind());
    fleet.restart(0);
    AcquireReply reply =
        retryWhileUnreachable(() -> node.acquire(keys("redlock:a"), false, false, Tokens.next(), LEASE, TIMEOUT));
    assertTrue(reply.acquired());
  }

  /** Repeats a call while it fails as UNREACHABLE (a reconnect in progress); a hang guard bounds it. */
  private static <T> T retryWhileUnreachable(java.util.function.Supplier<CompletableFuture<T>> call) {
    List<String> failures = new ArrayList<>();
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(NodeCalls.HANG_GUARD_SECONDS);
    while (System.nanoTime() < deadline) {
      try {
        return call.get().get(NodeCalls.HANG_GUARD_SECONDS, TimeUnit.SECONDS);
      } catch (ExecutionException e) {
        if (!(e.getCause() instanceof MasterFailureException m) || m.kind() != Kind.UNREACHABLE) {
          throw new AssertionError("unexpected failure after " + failures, e.getCause());
        }
        failures.add(m.getMessage());
      } catch (TimeoutException e) {
        throw new AssertionError("the call hung", e);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        throw new AssertionError(e);
      }
      try {
        Thread.sleep(20);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        throw new AssertionError(e);
      }
    }
    return fail("the node did not come back; failures: " + failures);
  }
}
