package dev.redlock.core.internal;

import static org.junit.jupiter.api.Assertions.assertThrows;

import java.util.concurrent.ExecutionException;

import static dev.redlock.core.internal.NodeCalls.await;
import static dev.redlock.core.internal.NodeCalls.failureOf;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.redlock.core.MasterFailureException;
import dev.redlock.core.MasterFailureException.Kind;
import dev.redlock.testing.RedisFleet;
import io.lettuce.core.RedisClient;
import io.lettuce.core.RedisURI;
import io.lettuce.core.pubsub.RedisPubSubAdapter;
import io.lettuce.core.pubsub.StatefulRedisPubSubConnection;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/**
 * {@link RedisNode} and the three Lua scripts behind it, against a real master from {@link
 * RedisFleet}. Failures of the master itself (down, paused, restarted) are in {@code
 * RedisNodeFailureTest}, bad credentials in {@code RedisNodeAuthenticationTest}.
 */
@Tag("compat")
final class RedisNodeTest {
  private static final Duration TIMEOUT = Duration.ofSeconds(5);
  private static final long LEASE = 10_000;

  private static RedisFleet fleet;
  private static RedisClient client;

  private RedisNode node;

  @BeforeAll
  static void start() {
    fleet = RedisFleet.start(1);
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
    fleet.flushAll();
  }

  private static String[] keys(String... keys) {
    return keys;
  }

  private static long pttl(String key) {
    return (Long) fleet.command(0, "PTTL", key);
  }

  private static Object get(String key) {
    return fleet.command(0, "GET", key);
  }

  private static boolean exists(String key) {
    return (Long) fleet.command(0, "EXISTS", key) == 1L;
  }

  private AcquireReply acquire(String token, long leaseMillis, String... keys) {
    return await(MutexCalls.acquire(node, keys, false, false, token, leaseMillis, TIMEOUT));
  }

  @Test
  void acquire_withFencing_drawsServerTimeWithoutACounterThenIncrementsTheConfirmedOne() {
    String[] keys = keys("redlock:f", "fence:f");
    String token = Tokens.next();
    AcquireReply first = await(MutexCalls.acquire(node, keys, true, false, token, LEASE, TIMEOUT));
    assertTrue(first.acquired());
    // No counter yet: the server's time in microseconds stands in, and nothing is created.
    assertTrue(first.fence() > 1_600_000_000_000_000L, "fence " + first.fence());
    assertFalse(exists("fence:f"));
    assertTrue(await(node.confirmFence(keys, token, first.fence(), TIMEOUT)));
    assertEquals(Long.toString(first.fence()), fleet.command(0, "GET", "fence:f"));
    assertEquals(-1L, pttl("fence:f"));
    await(MutexCalls.release(node, keys("redlock:f"), token, "r1", TIMEOUT));

    String next = Tokens.next();
    AcquireReply second = await(MutexCalls.acquire(node, keys, true, false, next, LEASE, TIMEOUT));
    assertEquals(first.fence() + 1, second.fence());
    // A smaller number never lowers a counter.
    assertTrue(await(node.confirmFence(keys, next, 5, TIMEOUT)));
    assertEquals(Long.toString(first.fence() + 1), fleet.command(0, "GET", "fence:f"));
  }

  @Test
  void confirmFence_whereTheLeaseIsNoLongerHeld_writesNothing() {
    String[] keys = keys("redlock:g", "fence:g");
    assertFalse(await(node.confirmFence(keys, Tokens.next(), 7, TIMEOUT)));
    assertFalse(exists("fence:g"));
    assertEquals(-1L, acquire(Tokens.next(), LEASE, "redlock:g").fence());
  }

  @Test
  void name_isHostAndPortWithoutCredentials() {
    assertEquals("127.0.0.1:" + fleet.port(0), node.name());
    RedisNode withPassword =
        new RedisNode(client, RedisURI.create("redis://:hunter2@127.0.0.1:" + fleet.port(0)), NodeCalls.TIMER);
    assertEquals("127.0.0.1:" + fleet.port(0), withPassword.name());
    withPassword.close();
  }

  @Test
  void acquire_freeKey_grantsAndSetsExpiry() {
    String token = Tokens.next();
    AcquireReply reply = acquire(token, LEASE, "redlock:a");
    assertSame(AcquireReply.GRANTED, reply);
    assertTrue(reply.acquired());
    assertEquals(token, get("redlock:a"));
    long pttl = pttl("redlock:a");
    assertTrue(pttl > 0 && pttl <= LEASE, "PTTL " + pttl);
    assertTrue(pttl > LEASE - 5_000, "PTTL " + pttl + " is far from the lease");
  }

  @Test
  void acquire_heldByAnotherToken_isRefusedWithHolderPttl() {
    String holder = Tokens.next();
    acquire(holder, LEASE, "redlock:a");
    AcquireReply refused = acquire(Tokens.next(), 60_000, "redlock:a");
    assertFalse(refused.acquired());
    assertTrue(
        refused.holderPttlMillis() > 0 && refused.holderPttlMillis() <= LEASE,
        "holder PTTL " + refused.holderPttlMillis());
    assertEquals(holder, get("redlock:a"));
    assertTrue(pttl("redlock:a") <= LEASE, "the refused attempt changed the holder's expiry");
  }

  @Test
  void acquire_sameToken_reacquiresAndResetsExpiry() {
    String token = Tokens.next();
    acquire(token, 1_000, "redlock:a");
    // A retry of the same acquisition is never blocked by its own earlier attempt's key.
    AcquireReply again = acquire(token, 120_000, "redlock:a");
    assertTrue(again.acquired());
    assertTrue(pttl("redlock:a") > 1_000, "PTTL " + pttl("redlock:a") + " was not reset");
    assertEquals(token, get("redlock:a"));
  }

  @Test
  void acquire_severalKeys_allSet() {
    String token = Tokens.next();
    assertTrue(acquire(token, LEASE, "redlock:a", "redlock:b", "redlock:c").acquired());
    for (String key : List.of("redlock:a", "redlock:b", "redlock:c")) {
      assertEquals(token, get(key), key);
      assertTrue(pttl(key) > 0, key);
    }
  }

  @Test
  void acquire_severalKeysOneHeld_setsNone() {
    String other = Tokens.next();
    acquire(other, LEASE, "redlock:b");
    AcquireReply refused = acquire(Tokens.next(), LEASE, "redlock:a", "redlock:b", "redlock:c");
    assertFalse(refused.acquired());
    assertTrue(refused.holderPttlMillis() > 0);
    assertFalse(exists("redlock:a"), "all or nothing: redlock:a was set");
    assertFalse(exists("redlock:c"), "all or nothing: redlock:c was set");
    assertEquals(other, get("redlock:b"));
    assertEquals(List.of("redlock:b"), fleet.keys(0));
  }

  @Test
  void acquire_severalHolders_reportsTheLongestPttl() {
    acquire(Tokens.next(), 5_000, "redlock:a");
    acquire(Tokens.next(), 100_000, "redlock:b");
    acquire(Tokens.next(), 20_000, "redlock:c");
    AcquireReply refused = acquire(Tokens.next(), LEASE, "redlock:a", "redlock:b", "redlock:c");
    assertFalse(refused.acquired());
    assertTrue(refused.holderPttlMillis() > 20_000, "holder PTTL " + refused.holderPttlMillis());
  }

  @Test
  void acquire_keyWithoutExpiry_reportsMinusOne() {
    fleet.command(0, "SET", "redlock:a", "someone-else");
    AcquireReply refused = acquire(Tokens.next(), LEASE, "redlock:a");
    assertFalse(refused.acquired());
    assertEquals(-1, refused.holderPttlMillis());
    assertEquals(-1L, pttl("redlock:a"));
  }

  @Test
  void acquire_keyWithoutExpiryAmongOthers_reportsMinusOneInAnyOrder() {
    fleet.command(0, "SET", "redlock:forever", "someone-else");
    acquire(Tokens.next(), 100_000, "redlock:ttl");
    assertEquals(
        -1, acquire(Tokens.next(), LEASE, "redlock:forever", "redlock:ttl").holderPttlMillis());
    assertEquals(
        -1, acquire(Tokens.next(), LEASE, "redlock:ttl", "redlock:forever").holderPttlMillis());
  }

  @Test
  void acquire_wrongTypeKey_failsWithWrongType() {
    fleet.command(0, "HSET", "redlock:a", "field", "value");
    MasterFailureException e =
        failureOf(MutexCalls.acquire(node, keys("redlock:a"), false, false, Tokens.next(), LEASE, TIMEOUT));
    assertEquals(Kind.WRONG_TYPE, e.kind());
    assertTrue(e.kind().isPermanent());
    assertEquals(node.name(), e.master());
    assertTrue(e.getMessage().contains("redlock:a"), e.getMessage());
    assertTrue(e.getMessage().contains("hash"), e.getMessage());
    assertTrue(e.getMessage().startsWith(node.name() + ": "), e.getMessage());
    assertNotNull(e.getCause(), "the Lettuce exception is kept as the cause");
    assertEquals("hash", fleet.command(0, "TYPE", "redlock:a"));
  }

  @Test
  void acquire_wrongTypeKeyAfterFreeKeys_setsNone() {
    fleet.command(0, "RPUSH", "redlock:b", "x");
    MasterFailureException e =
        failureOf(MutexCalls.acquire(node, keys("redlock:a", "redlock:b"), false, false, Tokens.next(), LEASE, TIMEOUT));
    assertEquals(Kind.WRONG_TYPE, e.kind());
    assertTrue(e.getMessage().contains("list"), e.getMessage());
    assertFalse(exists("redlock:a"));
  }

  // The hand-off script reads the keys as the acquire script does (the shared holders.lua), with its
  // own rule: a key may be taken only where it holds the old holder's token, or already ours.

  @Test
  void handOff_keysOfTheOldHolder_moveToTheNewTokenWithTheLease() {
    String old = Tokens.next();
    acquire(old, 100_000, "redlock:h1", "redlock:h2");
    String next = Tokens.next();
    AcquireReply reply = await(MutexCalls.handOff(node, keys("redlock:h1", "redlock:h2"), next, old, LEASE, TIMEOUT));
    assertTrue(reply.acquired());
    for (String key : List.of("redlock:h1", "redlock:h2")) {
      assertEquals(next, get(key));
      assertTrue(pttl(key) > 0 && pttl(key) <= LEASE, key + " " + pttl(key));
    }
    // Called again for the same acquisition (the keys hold our token already): granted again.
    assertTrue(await(MutexCalls.handOff(node, keys("redlock:h1", "redlock:h2"), next, old, LEASE, TIMEOUT)).acquired());
  }

  @Test
  void handOff_aKeyOfAThirdHolder_refusesWithItsTimeAndChangesNothing() {
    String old = Tokens.next();
    acquire(old, 100_000, "redlock:h1");
    fleet.command(0, "SET", "redlock:h2", "third", "PX", "50000");
    String next = Tokens.next();
    AcquireReply reply = await(MutexCalls.handOff(node, keys("redlock:h1", "redlock:h2"), next, old, LEASE, TIMEOUT));
    assertFalse(reply.acquired());
    assertTrue(reply.holderPttlMillis() > 40_000 && reply.holderPttlMillis() <= 50_000, "" + reply.holderPttlMillis());
    assertEquals(old, get("redlock:h1"));
    assertEquals("third", get("redlock:h2"));
  }

  @Test
  void handOff_aKeyThatIsGone_refusesWithoutATimeAndCreatesNothing() {
    // The old holder's keys expired (or were released): nothing to move; a waiter must acquire.
    String next = Tokens.next();
    AcquireReply reply = await(MutexCalls.handOff(node, keys("redlock:h1"), next, Tokens.next(), LEASE, TIMEOUT));
    assertFalse(reply.acquired());
    assertEquals(-2, reply.holderPttlMillis());
    assertFalse(exists("redlock:h1"));
  }

  @Test
  void handOff_aKeyOfTheWrongType_failsWithWrongTypeAndSetsNone() {
    String old = Tokens.next();
    acquire(old, 100_000, "redlock:h1");
    fleet.command(0, "HSET", "redlock:h2", "field", "value");
    MasterFailureException e =
        failureOf(MutexCalls.handOff(node, keys("redlock:h1", "redlock:h2"), Tokens.next(), old, LEASE, TIMEOUT));
    assertEquals(Kind.WRONG_TYPE, e.kind());
    assertTrue(e.getMessage().contains("redlock:h2") && e.getMessage().contains("hash"), e.getMessage());
    assertEquals(old, get("redlock:h1"));
  }

  @Test
  void acquire_afterScriptFlush_reloadsTransparently() {
    String token = Tokens.next();
    acquire(token, LEASE, "redlock:a");
    fleet.command(0, "SCRIPT", "FLUSH");
    assertEquals(List.of(0L), fleet.command(0, "SCRIPT", "EXISTS", Script.ACQUIRE.sha()));
    assertTrue(acquire(Tokens.next(), LEASE, "redlock:b").acquired());
    assertEquals(List.of(1L), fleet.command(0, "SCRIPT", "EXISTS", Script.ACQUIRE.sha()));
    // The other scripts reload the same way.
    fleet.command(0, "SCRIPT", "FLUSH");
    assertArrayEquals(
        new boolean[] {true},
        await(MutexCalls.extend(node, keys("redlock:a"), new String[] {"1", token}, LEASE, TIMEOUT)));
    fleet.command(0, "SCRIPT", "FLUSH");
    assertEquals(1L, await(MutexCalls.release(node, keys("redlock:a"), token, "r1", TIMEOUT)));
  }

  /**
   * The node's contract: commands run on the server in the order they were issued, so a release
   * issued after an acquire (the engine's cleanup of a timed-out attempt) always runs after it.
   * When the acquire script is unknown to the server but the release script is known (another
   * client reloaded only that one after a restart or SCRIPT FLUSH), the acquire's NOSCRIPT retry
   * would run after the release: it is abandoned instead, so no key is left behind.
   */
  @Test
  void release_issuedAfterAcquire_runsAfterItEvenWhenTheAcquireScriptMustBeReloaded() {
    await(node.warmUp(TIMEOUT));
    fleet.command(0, "SCRIPT", "FLUSH");
    fleet.command(0, "SCRIPT", "LOAD", Script.RELEASE.text());
    String token = Tokens.next();
    CompletableFuture<AcquireReply> acquired =
        MutexCalls.acquire(node, keys("redlock:a"), false, false, token, 60_000, TIMEOUT);
    CompletableFuture<Long> released = MutexCalls.release(node, keys("redlock:a"), token, "r1", TIMEOUT);
    long deleted = await(released);
    // Either the acquire's retry went out before the release (and the release deleted its key),
    // or it was abandoned; never does it run after the release.
    try {
      assertTrue(acquired.get(15, TimeUnit.SECONDS).acquired());
      assertEquals(1L, deleted, "the release ran before the acquire");
    } catch (ExecutionException abandoned) {
      assertTrue(abandoned.getCause() instanceof MasterFailureException, abandoned.toString());
      assertEquals(0L, deleted, "nothing was set before the release ran");
    } catch (InterruptedException | java.util.concurrent.TimeoutException e) {
      throw new AssertionError(e);
    }
    assertFalse(exists("redlock:a"), "the acquire left its key behind after the release");
  }

  @Test
  void release_issuedRightAfterAcquire_runsAfterIt() {
    await(node.warmUp(TIMEOUT));
    String token = Tokens.next();
    CompletableFuture<AcquireReply> acquired =
        MutexCalls.acquire(node, keys("redlock:a", "redlock:b"), false, false, token, 60_000, TIMEOUT);
    CompletableFuture<Long> released = MutexCalls.release(node, keys("redlock:a", "redlock:b"), token, "r1", TIMEOUT);
    assertTrue(await(acquired).acquired());
    assertEquals(2L, await(released));
    assertEquals(0, fleet.keyCount());
  }

  /**
   * The same contract on a node whose connection is still opening, as for the engine's first lock
   * on a slow master: an acquire that timed out while connecting and the cleanup release issued
   * after it both wait for the connection, and must still be sent in issue order.
   */
  @Test
  void release_issuedRightAfterAcquire_runsAfterItBeforeTheConnectionIsOpen() {
    String token = Tokens.next();
    CompletableFuture<AcquireReply> acquired =
        MutexCalls.acquire(node, keys("redlock:a", "redlock:b"), false, false, token, 60_000, TIMEOUT);
    CompletableFuture<Long> released = MutexCalls.release(node, keys("redlock:a", "redlock:b"), token, "r1", TIMEOUT);
    assertTrue(await(acquired).acquired());
    assertEquals(2L, await(released), "the release ran before the acquire");
    assertEquals(0, fleet.keyCount(), "the acquire left its keys behind after the release");
  }

  @Test
  void warmUp_loadsEveryScript() {
    fleet.command(0, "SCRIPT", "FLUSH");
    await(node.warmUp(TIMEOUT));
    assertEquals(
        List.of(1L, 1L, 1L),
        fleet.command(
            0, "SCRIPT", "EXISTS", Script.ACQUIRE.sha(), Script.EXTEND.sha(), Script.RELEASE.sha()));
  }

  @Test
  void extend_rightToken_resetsExpiryToTheNewLease() {
    String token = Tokens.next();
    acquire(token, LEASE, "redlock:a");
    boolean[] held = await(MutexCalls.extend(node, keys("redlock:a"), new String[] {"1", token}, 120_000, TIMEOUT));
    assertArrayEquals(new boolean[] {true}, held);
    assertTrue(pttl("redlock:a") > LEASE, "PTTL " + pttl("redlock:a"));
    assertEquals(token, get("redlock:a"));
  }

  @Test
  void extend_resetsRatherThanAdds() {
    String token = Tokens.next();
    acquire(token, 60_000, "redlock:a");
    assertArrayEquals(
        new boolean[] {true},
        await(MutexCalls.extend(node, keys("redlock:a"), new String[] {"1", token}, 5_000, TIMEOUT)));
    long pttl = pttl("redlock:a");
    assertTrue(pttl > 0 && pttl <= 5_000, "PTTL " + pttl + ": the extension was added, not set");
  }

  @Test
  void extend_wrongToken_answersFalseAndChangesNothing() {
    String holder = Tokens.next();
    acquire(holder, LEASE, "redlock:a");
    boolean[] held =
        await(MutexCalls.extend(node, keys("redlock:a"), new String[] {"1", Tokens.next()}, 120_000, TIMEOUT));
    assertArrayEquals(new boolean[] {false}, held);
    assertEquals(holder, get("redlock:a"));
    assertTrue(pttl("redlock:a") <= LEASE, "PTTL " + pttl("redlock:a") + " was extended");
  }

  @Test
  void extend_deletedKey_isNeverRecreated() {
    String token = Tokens.next();
    acquire(token, LEASE, "redlock:a");
    fleet.command(0, "DEL", "redlock:a");
    boolean[] held = await(MutexCalls.extend(node, keys("redlock:a"), new String[] {"1", token}, LEASE, TIMEOUT));
    assertArrayEquals(new boolean[] {false}, held);
    assertFalse(exists("redlock:a"), "extend re-created a key that was gone");
  }

  @Test
  void extend_oneKeyOfALeaseGone_extendsNoneOfItsKeys() {
    String token = Tokens.next();
    acquire(token, LEASE, "redlock:a", "redlock:b");
    fleet.command(0, "DEL", "redlock:b");
    boolean[] held =
        await(MutexCalls.extend(node, keys("redlock:a", "redlock:b"), new String[] {"2", token}, 120_000, TIMEOUT));
    assertArrayEquals(new boolean[] {false}, held);
    assertTrue(pttl("redlock:a") <= LEASE, "the remaining key of a broken lease was extended");
    assertFalse(exists("redlock:b"));
  }

  @Test
  void extend_severalLeases_answersPerLease() {
    String first = Tokens.next();
    String second = Tokens.next();
    String third = Tokens.next();
    acquire(first, LEASE, "redlock:a", "redlock:b");
    acquire(Tokens.next(), LEASE, "redlock:c"); // someone else holds the second lease's key
    acquire(third, LEASE, "redlock:d");
    boolean[] held =
        await(
            MutexCalls.extend(node, 
                keys("redlock:a", "redlock:b", "redlock:c", "redlock:d"),
                new String[] {"2", first, "1", second, "1", third},
                120_000,
                TIMEOUT));
    assertArrayEquals(new boolean[] {true, false, true}, held);
    assertTrue(pttl("redlock:a") > LEASE);
    assertTrue(pttl("redlock:b") > LEASE);
    assertTrue(pttl("redlock:c") <= LEASE, "another holder's key was extended");
    assertTrue(pttl("redlock:d") > LEASE);
  }

  @Test
  void extend_moreKeysThanOneRead_answersEveryLeaseOnBothSidesOfTheSlices() {
    // extend.lua reads the keys with MGET in slices of 1000: leases whose keys are broken at the
    // ends of a slice (1-based 1000 and 1001, 2000 and 2001) and the last one must still answer false.
    int count = 2500;
    String[] keys = new String[count];
    String[] args = new String[2 * count];
    for (int i = 0; i < count; i++) {
      keys[i] = "redlock:many-" + i;
      String token = Tokens.next();
      fleet.command(0, "SET", keys[i], token, "PX", String.valueOf(LEASE));
      args[2 * i] = "1";
      args[2 * i + 1] = token;
    }
    java.util.Set<Integer> broken = java.util.Set.of(999, 1000, 1999, 2000, count - 1);
    for (int i : broken) {
      if (i % 2 == 0) fleet.command(0, "DEL", keys[i]);
      else fleet.command(0, "SET", keys[i], Tokens.next(), "PX", String.valueOf(LEASE));
    }
    boolean[] held = await(MutexCalls.extend(node, keys, args, 120_000, TIMEOUT));
    assertEquals(count, held.length);
    for (int i = 0; i < count; i++) {
      assertEquals(!broken.contains(i), held[i], "lease " + i);
      if (broken.contains(i)) {
        assertTrue(i % 2 == 0 ? !exists(keys[i]) : pttl(keys[i]) <= LEASE, "broken lease " + i + " was extended or re-created");
      } else {
        assertTrue(pttl(keys[i]) > LEASE, "lease " + i + " was not extended");
      }
    }
  }

  @Test
  void extend_noLeases_answersEmpty() {
    assertArrayEquals(new boolean[0], await(MutexCalls.extend(node, keys(), new String[0], LEASE, TIMEOUT)));
  }

  @Test
  void extend_wrongTypeKey_answersFalse() {
    fleet.command(0, "HSET", "redlock:a", "f", "v");
    assertArrayEquals(
        new boolean[] {false},
        await(MutexCalls.extend(node, keys("redlock:a"), new String[] {"1", Tokens.next()}, LEASE, TIMEOUT)));
    assertEquals("hash", fleet.command(0, "TYPE", "redlock:a"));
  }

  @Test
  void release_deletesOnlyOwnKeysAndCountsThem() {
    String token = Tokens.next();
    String other = Tokens.next();
    acquire(token, LEASE, "redlock:a", "redlock:b");
    acquire(other, LEASE, "redlock:c");
    long deleted = await(MutexCalls.release(node, keys("redlock:a", "redlock:b", "redlock:c", "redlock:d"), token, "r1", TIMEOUT));
    assertEquals(2L, deleted);
    assertFalse(exists("redlock:a"));
    assertFalse(exists("redlock:b"));
    assertEquals(other, get("redlock:c"));
  }

  @Test
  void release_wrongToken_deletesNothing() {
    String holder = Tokens.next();
    acquire(holder, LEASE, "redlock:a");
    assertEquals(0L, await(MutexCalls.release(node, keys("redlock:a"), Tokens.next(), "r1", TIMEOUT)));
    assertEquals(holder, get("redlock:a"));
  }

  @Test
  void release_twice_isANoOp() {
    String token = Tokens.next();
    acquire(token, LEASE, "redlock:a");
    assertEquals(1L, await(MutexCalls.release(node, keys("redlock:a"), token, "r1", TIMEOUT)));
    assertEquals(0L, await(MutexCalls.release(node, keys("redlock:a"), token, "r1", TIMEOUT)));
  }

  @Test
  void release_wrongTypeKey_deletesNothing() {
    fleet.command(0, "HSET", "redlock:a", "f", "v");
    assertEquals(0L, await(MutexCalls.release(node, keys("redlock:a"), Tokens.next(), "r1", TIMEOUT)));
    assertEquals("hash", fleet.command(0, "TYPE", "redlock:a"));
  }

  @Test
  void release_publishesOnTheChannelOfEachDeletedKey() throws InterruptedException {
    String token = Tokens.next();
    acquire(token, LEASE, "redlock:a", "redlock:b");
    acquire(Tokens.next(), LEASE, "redlock:c");
    String end = "test-end-of-messages";
    BlockingQueue<String> received = new LinkedBlockingQueue<>();
    StatefulRedisPubSubConnection<String, String> subscriber =
        client.connectPubSub(RedisURI.create(fleet.uri(0)));
    try {
      subscriber.addListener(
          new RedisPubSubAdapter<>() {
            @Override
            public void message(String channel, String message) {
              received.add(channel + "=" + message);
            }
          });
      subscriber
          .sync()
          .subscribe(
              Keys.RELEASE_CHANNEL_PREFIX + "redlock:a",
              Keys.RELEASE_CHANNEL_PREFIX + "redlock:b",
              Keys.RELEASE_CHANNEL_PREFIX + "redlock:c",
              end);

      assertEquals(2L, await(MutexCalls.release(node, keys("redlock:a", "redlock:b", "redlock:c"), token, "r1", TIMEOUT)));
      // A subscriber gets messages in publishing order: once the marker arrives, every release
      // notice published before it has arrived too.
      fleet.command(0, "PUBLISH", end, "done");

      List<String> messages = new ArrayList<>();
      while (true) {
        String m = received.poll(NodeCalls.HANG_GUARD_SECONDS, TimeUnit.SECONDS);
        assertNotNull(m, "no message arrived; so far: " + messages);
        if (m.startsWith(end + "=")) {
          break;
        }
        messages.add(m);
      }
      assertEquals(
          List.of(
              Keys.RELEASE_CHANNEL_PREFIX + "redlock:a=r1",
              Keys.RELEASE_CHANNEL_PREFIX + "redlock:b=r1"),
          messages);
    } finally {
      subscriber.close();
    }
  }

  @Test
  void close_laterCallsFailAsUnreachable() {
    await(node.warmUp(TIMEOUT));
    node.close();
    node.close(); // idempotent
    MasterFailureException e = failureOf(MutexCalls.acquire(node, keys("redlock:a"), false, false, Tokens.next(), LEASE, TIMEOUT));
    assertEquals(Kind.UNREACHABLE, e.kind());
    assertTrue(e.getMessage().contains("closed"), e.getMessage());
    assertFalse(exists("redlock:a"));
  }
}
