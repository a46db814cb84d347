package dev.redlock.junit5;

import static java.util.concurrent.TimeUnit.SECONDS;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotSame;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.redlock.coroutines.Redlock;
import dev.redlock.java.AsyncRedlock;
import dev.redlock.java.LockLease;
import dev.redlock.testing.RedisFleet;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.stream.Collectors;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.MethodOrderer;
import org.junit.jupiter.api.Nested;
import org.junit.jupiter.api.Order;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestMethodOrder;
import org.junit.jupiter.api.extension.ExtendWith;

/**
 * Test classes as users write them, run one at a time by {@link ExtensionLifecycleTest}, which
 * then checks what the extension did. They record what they were handed in static fields.
 */
final class LifecycleCases {
  private LifecycleCases() {}

  static final List<RedisFleet> fleets = new CopyOnWriteArrayList<>();
  static final List<Long> pids = new CopyOnWriteArrayList<>();
  static final List<AsyncRedlock> asyncRedlocks = new CopyOnWriteArrayList<>();
  static final List<Redlock> redlocks = new CopyOnWriteArrayList<>();

  static void clear() {
    fleets.clear();
    pids.clear();
    asyncRedlocks.clear();
    redlocks.clear();
  }

  static void record(RedisFleet fleet) {
    fleets.add(fleet);
    pids.addAll(fleet.pids());
  }

  /** The ids of the clients connected to master 0, but for the connection that asks. */
  static Set<String> clientIds(RedisFleet fleet) {
    String list = (String) fleet.command(0, "CLIENT", "LIST");
    return list.lines()
        .filter(line -> !line.contains(" cmd=client"))
        .map(line -> line.substring(0, line.indexOf(' ')))
        .collect(Collectors.toSet());
  }

  /** Waits until at least [count] clients not in [known] are connected, and returns them. */
  static Set<String> awaitNewClients(RedisFleet fleet, Set<String> known, int count)
      throws InterruptedException {
    for (int i = 0; i < 1000; i++) {
      Set<String> fresh = new HashSet<>(clientIds(fleet));
      fresh.removeAll(known);
      if (fresh.size() >= count) {
        return fresh;
      }
      Thread.sleep(10);
    }
    throw new AssertionError("fewer than " + count + " new clients connected within 10 s");
  }

  /** Whether every client in [ids] is gone within 10 s. */
  static boolean awaitGone(RedisFleet fleet, Set<String> ids) throws InterruptedException {
    for (int i = 0; i < 1000; i++) {
      Set<String> left = new HashSet<>(clientIds(fleet));
      left.retainAll(ids);
      if (left.isEmpty()) {
        return true;
      }
      Thread.sleep(10);
    }
    return false;
  }

  @ExtendWith(HarnessOnly.class)
  @RedlockTest(masters = 2)
  @TestMethodOrder(MethodOrderer.OrderAnnotation.class)
  static final class ResetCase {
    static Set<String> classClients;
    static Set<String> firstTestClients;

    @BeforeAll
    static void beforeAll(RedisFleet fleet, AsyncRedlock forTheClass) throws Exception {
      record(fleet);
      asyncRedlocks.add(forTheClass);
      forTheClass.acquire("warm:up").get(10, SECONDS).close(); // it is connected now
      classClients = clientIds(fleet); // nobody else is
      assertFalse(classClients.isEmpty());
    }

    @Test
    @Order(1)
    void first_breaksTheFleet(RedisFleet fleet, Redlock redlock, AsyncRedlock asyncRedlock)
        throws Exception {
      redlocks.add(redlock);
      asyncRedlocks.add(asyncRedlock);
      LockLease leftBehind = asyncRedlock.acquire("left:behind").get(10, SECONDS);
      assertTrue(leftBehind.isValid());
      fleet.command(0, "SET", "user:key", "v");
      firstTestClients = awaitNewClients(fleet, classClients, 2); // one Redlock, one AsyncRedlock
      fleet.kill(1);
      fleet.pause(0);
    }

    @Test
    @Order(2)
    void second_findsItReset(RedisFleet fleet) throws Exception {
      assertSame(fleets.get(0), fleet);
      assertTrue(fleet.isRunning(1), "killed master restarted");
      assertFalse(fleet.isPaused(0), "paused master resumed");
      assertEquals(0, fleet.keyCount(), "keys flushed");
      assertTrue(awaitGone(fleet, firstTestClients), "the first test's instances were closed");
      assertTrue(clientIds(fleet).containsAll(classClients), "the class's instance stays open");
    }
  }

  @ExtendWith(HarnessOnly.class)
  @RedlockTest(masters = 1, resetAfterEach = false)
  @TestMethodOrder(MethodOrderer.OrderAnnotation.class)
  static final class NoResetCase {
    @Test
    @Order(1)
    void first_setsAKey(RedisFleet fleet) {
      record(fleet);
      fleet.command(0, "SET", "kept", "v");
    }

    @Test
    @Order(2)
    void second_seesIt(RedisFleet fleet) {
      assertEquals("v", fleet.command(0, "GET", "kept"));
    }
  }

  @ExtendWith(HarnessOnly.class)
  @RedlockTest(masters = 1)
  static final class FailingCase {
    @Test
    void fails(RedisFleet fleet, AsyncRedlock redlock) {
      record(fleet);
      asyncRedlocks.add(redlock);
      fleet.pause(0);
      throw new AssertionError("this test fails on purpose");
    }
  }

  @ExtendWith(HarnessOnly.class)
  @RedlockTest(masters = 1)
  static final class FailingBeforeAllCase {
    @BeforeAll
    static void beforeAll(RedisFleet fleet) {
      record(fleet);
      throw new IllegalStateException("setup fails on purpose");
    }

    @Test
    void neverRuns() {}
  }

  @ExtendWith(HarnessOnly.class)
  @RedlockTest(masters = 0)
  static final class BadSettingsCase {
    @Test
    void neverRuns() {}
  }

  @ExtendWith(HarnessOnly.class)
  @RedlockTest(masters = 1)
  static final class OuterCase {
    @Test
    void outer(RedisFleet fleet) {
      record(fleet);
    }

    @Nested
    final class Inner {
      @Test
      void inner(RedisFleet fleet) {
        record(fleet);
      }
    }
  }

  @ExtendWith(HarnessOnly.class)
  @RedlockTest(masters = 1)
  @TestMethodOrder(MethodOrderer.OrderAnnotation.class)
  static final class ConstructorCase {
    static Set<String> none;
    static Set<String> firstClients;
    private final Redlock redlock;

    ConstructorCase(Redlock redlock) {
      this.redlock = redlock;
    }

    @BeforeAll
    static void beforeAll(RedisFleet fleet) {
      record(fleet);
      none = clientIds(fleet);
    }

    @Test
    @Order(1)
    void first(RedisFleet fleet) throws Exception {
      redlocks.add(redlock);
      firstClients = awaitNewClients(fleet, none, 1);
    }

    @Test
    @Order(2)
    void second(RedisFleet fleet) throws Exception {
      assertNotSame(redlocks.get(0), redlock, "a new test instance, a new Redlock");
      assertTrue(awaitGone(fleet, firstClients), "the first test's Redlock was closed after it");
    }
  }
}
