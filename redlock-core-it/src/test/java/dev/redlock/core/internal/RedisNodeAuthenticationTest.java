package dev.redlock.core.internal;

import static dev.redlock.core.internal.NodeCalls.await;
import static dev.redlock.core.internal.NodeCalls.failureOf;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.redlock.core.MasterFailureException;
import dev.redlock.core.MasterFailureException.Kind;
import dev.redlock.testing.RedisFleet;
import io.lettuce.core.RedisClient;
import io.lettuce.core.RedisURI;
import java.time.Duration;
import java.util.List;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/** {@link RedisNode} against a master that requires a password. */
@Tag("compat")
final class RedisNodeAuthenticationTest {
  private static final String PASSWORD = "fleet-pw-7f3a";
  private static final Duration TIMEOUT = Duration.ofSeconds(5);

  private static RedisFleet fleet;
  private static RedisClient client;

  @BeforeAll
  static void start() {
    fleet = RedisFleet.builder().masters(1).password(PASSWORD).start();
    client = NodeCalls.lockClient();
  }

  @AfterAll
  static void stop() {
    NodeCalls.shutDown(client);
    if (fleet != null) {
      fleet.close();
    }
  }

  @AfterEach
  void flush() {
    fleet.flushAll();
  }

  private static MasterFailureException acquireWith(String uri) {
    MasterFailureException e = null;
    // Under load, Lettuce sometimes loses the server's refusal in a race of its own as the server
    // drops the refused connection ("RedisHandshakeHandler not registered"); a new connection
    // then reports it. Three tries, never more.
    for (int i = 0; i < 3 && (e == null || e.getMessage().contains("RedisHandshakeHandler not registered")); i++) {
      RedisNode node = new RedisNode(client, RedisURI.create(uri), NodeCalls.TIMER);
      try {
        e = failureOf(MutexCalls.acquire(node, new String[] {"redlock:a"}, false, false, Tokens.next(), 10_000, TIMEOUT));
      } finally {
        node.closeAndWait(TIMEOUT);
      }
    }
    return e;
  }

  private static void assertNowhereIn(Throwable e, String secret) {
    for (Throwable t = e; t != null; t = t.getCause()) {
      assertFalse(String.valueOf(t.getMessage()).contains(secret), t.toString());
    }
  }

  @Test
  void acquire_rightPassword_works() {
    RedisNode node = new RedisNode(client, RedisURI.create(fleet.uri(0)), NodeCalls.TIMER);
    try {
      String token = Tokens.next();
      assertTrue(await(MutexCalls.acquire(node, new String[] {"redlock:a"}, false, false, token, 10_000, TIMEOUT)).acquired());
      assertEquals(token, fleet.command(0, "GET", "redlock:a"));
      assertEquals("127.0.0.1:" + fleet.port(0), node.name());
    } finally {
      node.closeAndWait(TIMEOUT);
    }
  }

  @Test
  void acquire_noPassword_failsWithAuthentication() {
    MasterFailureException e = acquireWith("redis://127.0.0.1:" + fleet.port(0));
    assertEquals(Kind.AUTHENTICATION, e.kind(), e.getMessage());
    assertTrue(e.kind().isPermanent());
    assertEquals("127.0.0.1:" + fleet.port(0), e.master());
    assertTrue(e.getMessage().contains("authentication failed"), e.getMessage());
    assertEquals(List.of(), fleet.keys(0));
  }

  @Test
  void acquire_wrongPassword_failsWithAuthentication() {
    String wrong = "not-the-pw-91c2";
    MasterFailureException e = acquireWith("redis://:" + wrong + "@127.0.0.1:" + fleet.port(0));
    assertEquals(Kind.AUTHENTICATION, e.kind(), e.getMessage());
    assertNowhereIn(e, wrong);
    assertEquals(List.of(), fleet.keys(0));
  }

  @Test
  void acquire_wrongUser_failsWithAuthentication() {
    MasterFailureException e =
        acquireWith("redis://nobody:" + PASSWORD + "@127.0.0.1:" + fleet.port(0));
    assertEquals(Kind.AUTHENTICATION, e.kind(), e.getMessage());
    assertNowhereIn(e, PASSWORD);
  }
}
