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
    node = new RedisNode(client, RedisURI.create(fleet.uri(0)), NodeCalls.TIMER);
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
    RedisNode down = new RedisNode(client, RedisURI.create("redis://127.0.0.1:" + port), NodeCalls.TIMER);
    try {
      MasterFailureException e = failureOf(MutexCalls.acquire(down, keys("redlock:a"), false, false, Tokens.next(), LEASE, TIMEOUT));
      assertEquals(Kind.UNREACHABLE, e.kind());
      assertFalse(e.kind().isPermanent());
      assertEquals("127.0.0.1:" + port, e.master());
      assertTrue(e.getMessage().startsWith("127.0.0.1:" + port + ": unreachable"), e.getMessage());
      assertNotNull(e.getCause());
      // Every operation fails the same way, and a later call tries to connect again.
      assertEquals(Kind.UNREACHABLE, failureOf(MutexCalls.release(down, keys("redlock:a"), "t", "r1", TIMEOUT)).kind());
      assertEquals(
          Kind.UNREACHABLE,
          failureOf(MutexCalls.extend(down, keys("redlock:a"), new String[] {"1", "t"}, LEASE, TIMEOUT)).kind());
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
      e = failureOf(MutexCalls.acquire(node, keys("redlock:a"), false, false, Tokens.next(), LEASE, SHORT));
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
      e = failureOf(MutexCalls.acquire(node, keys("redlock:a"), false, false, Tokens.next(), LEASE, SHORT));
    } finally {
      fleet.resume(0);
    }
    assertEquals(Kind.TIMEOUT, e.kind());
    // The call is bounded by its own timeout from the moment it is made, connecting included
    // (the connection goes on opening in the background, bounded by the connect timeout).
    assertTrue(e.getMessage().contains("not connected within " + Checks.show(SHORT)), e.getMessage());
  }

  @Test
  void extendAndRelease_pausedMaster_failWithTimeout() {
    await(node.warmUp(TIMEOUT));
    fleet.pause(0);
    MasterFailureException extend;
    MasterFailureException release;
    try {
      extend = failureOf(MutexCalls.extend(node, keys("redlock:a"), new String[] {"1", "t"}, LEASE, SHORT));
      release = failureOf(MutexCalls.release(node, keys("redlock:a"), "t", "r1", SHORT));
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
          Kind.TIMEOUT, failureOf(MutexCalls.acquire(node, keys("redlock:a"), false, false, token, LEASE, SHORT)).kind());
    } finally {
      fleet.resume(0);
    }
    // Issued after the timed-out acquire on the same connection, so it runs after it.
    AcquireReply second = await(MutexCalls.acquire(node, keys("redlock:a"), false, false, Tokens.next(), LEASE, TIMEOUT));
    assertFalse(second.acquired(), "the timed-out acquire did not run after all");
    assertEquals(token, fleet.command(0, "GET", "redlock:a"));
    // And a release issued after it removes it.
    assertEquals(1L, await(MutexCalls.release(node, keys("redlock:a"), token, "r1", TIMEOUT)));
  }

  @Test
  void acquire_killedMaster_failsAsUnreachable() {
    await(node.warmUp(TIMEOUT));
    fleet.kill(0);
    MasterFailureException e = failureOf(MutexCalls.acquire(node, keys("redlock:a"), false, false, Tokens.next(), LEASE, TIMEOUT));
    assertEquals(Kind.UNREACHABLE, e.kind(), e.getMessage());
  }

  @Test
  void acquire_restartedMaster_worksAgain() {
    String token = Tokens.next();
    assertTrue(await(MutexCalls.acquire(node, keys("redlock:a"), false, false, token, LEASE, TIMEOUT)).acquired());
    fleet.restart(0);
    // The connection comes back by itself; until then calls are rejected at once, not buffered.
    AcquireReply reply = retryWhileUnreachable(() -> MutexCalls.acquire(node, keys("redlock:b"), false, false, token, LEASE, TIMEOUT));
    assertTrue(reply.acquired());
    // The restarted master lost its data and its scripts; both were handled.
    assertEquals(List.of("redlock:b"), fleet.keys(0));
    assertEquals(List.of(1L), fleet.command(0, "SCRIPT", "EXISTS", Script.ACQUIRE.sha()));
    assertEquals(1L, await(MutexCalls.release(node, keys("redlock:b"), token, "r1", TIMEOUT)));
  }

  @Test
  void acquire_masterDownAtFirstCall_connectsOnceItIsUp() {
    fleet.kill(0);
    assertEquals(
        Kind.UNREACHABLE,
        failureOf(MutexCalls.acquire(node, keys("redlock:a"), false, false, Tokens.next(), LEASE, TIMEOUT)).kind());
    fleet.restart(0);
    AcquireReply reply =
        retryWhileUnreachable(() -> MutexCalls.acquire(node, keys("redlock:a"), false, false, Tokens.next(), LEASE, TIMEOUT));
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

  @Test
  void commandsToAPausedMaster_areBoundedInNumber_andTheRestFailAtOnceAsOverloaded() {
    await(node.warmUp(TIMEOUT));
    int calls = RedisNode.REQUEST_QUEUE_SIZE + 4_000;
    fleet.pause(0);
    List<CompletableFuture<boolean[]>> sent = new ArrayList<>(calls);
    try {
      for (int i = 0; i < calls; i++) {
        sent.add(MutexCalls.extend(node, keys("redlock:q"), new String[] {"1", "t"}, LEASE, Duration.ofSeconds(3)));
      }
      int overloaded = 0;
      for (CompletableFuture<boolean[]> call : sent) {
        MasterFailureException e = failureOf(call);
        if (e.getMessage().contains("too many commands are waiting for this master's reply")) {
          assertEquals(Kind.UNREACHABLE, e.kind());
          overloaded++;
        } else {
          assertEquals(Kind.TIMEOUT, e.kind(), e.getMessage());
        }
      }
      // Without a bound every command would stay queued for the paused master (and its memory
      // with it) until it answered: here the connection keeps at most REQUEST_QUEUE_SIZE.
      assertTrue(overloaded >= calls - RedisNode.REQUEST_QUEUE_SIZE, overloaded + " refused of " + calls);
    } finally {
      fleet.resume(0);
    }
  }

  @Test
  void release_supersedesAnAcquireWhoseScriptIsStillBeingReloaded() throws Exception {
    try (dev.redlock.testing.TcpProxy proxy = dev.redlock.testing.TcpProxy.start("127.0.0.1", fleet.port(0))) {
      RedisNode viaProxy = new RedisNode(client, RedisURI.create(proxy.uri()), NodeCalls.TIMER);
      try {
        await(viaProxy.warmUp(TIMEOUT));
        // The master forgets the scripts (a restart, SCRIPT FLUSH); the release script is known
        // again at once (another client reloaded it), the acquire script is not.
        fleet.command(0, "SCRIPT", "FLUSH");
        fleet.command(0, "SCRIPT", "LOAD", Script.RELEASE.text());
        assertEquals(List.of(0L, 1L), fleet.command(0, "SCRIPT", "EXISTS", Script.ACQUIRE.sha(), Script.RELEASE.sha()));
        // From the moment the acquire script's reload leaves, everything to the master is held
        // back 400 ms: the acquire times out meanwhile, and its cleanup release goes out behind.
        dev.redlock.testing.ArmedFault held =
            proxy.latencyFromNextCommand(
                java.time.Duration.ofMillis(400),
                // (The proxy keeps the first 4 KiB of each part: the script's opening lines tell it apart.)
                command -> command.contains(Script.ACQUIRE.text().substring(0, 200)));
        String token = Tokens.next();
        MasterFailureException timedOut =
            failureOf(MutexCalls.acquire(viaProxy, keys("redlock:reloaded"), false, false, token, LEASE, Duration.ofMillis(100)));
        assertEquals(Kind.TIMEOUT, timedOut.kind());
        assertTrue(held.isFired(), "the acquire script was reloaded through the proxy");
        await(MutexCalls.release(viaProxy, keys("redlock:reloaded"), token, "", TIMEOUT));
        // The reload's answer comes back after the release ran; the acquire must not be sent
        // again then, or it would set a key that nobody holds, for a whole lease.
        Thread.sleep(300);
        assertEquals(List.of(), fleet.keys(0));
      } finally {
        viaProxy.closeAndWait(TIMEOUT);
      }
    }
  }
}
