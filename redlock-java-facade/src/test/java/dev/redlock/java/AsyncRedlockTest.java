package dev.redlock.java;

import static dev.redlock.java.Fleets.await;
import static dev.redlock.java.Fleets.config;
import static dev.redlock.java.Fleets.deleteKey;
import static dev.redlock.java.Fleets.eventually;
import static dev.redlock.java.Fleets.failure;
import static dev.redlock.java.Fleets.holders;
import static dev.redlock.java.Fleets.rawFailure;
import static dev.redlock.java.Fleets.sleep;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.redlock.core.LockLostException;
import dev.redlock.core.RedlockClosedException;
import dev.redlock.core.LockNotAcquiredException;
import dev.redlock.core.RedlockConfig;
import dev.redlock.testing.RedisFleet;
import java.io.IOException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.CancellationException;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;
import java.util.stream.Collectors;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

@Timeout(value = 60, unit = TimeUnit.SECONDS)
final class AsyncRedlockTest {
  private static RedisFleet fleet;

  @BeforeAll
  static void startFleet() {
    fleet = RedisFleet.start(3);
  }

  @AfterAll
  static void stopFleet() {
    if (fleet != null) {
      fleet.close();
    }
  }

  @AfterEach
  void checkClean() {
    Fleets.restoreAndCheckClean(fleet);
  }

  @Test
  void withLock_completesWithTheActionsResultAndReleases() {
    try (AsyncRedlock redlock = Fleets.open(fleet)) {
      AtomicReference<List<Integer>> heldBy = new AtomicReference<>();
      CompletableFuture<String> result =
          redlock.withLock(
              "orders:1",
              lease -> {
                Fleets.heldEverywhere(fleet, "orders:1");
                heldBy.set(holders(fleet, "orders:1"));
                return CompletableFuture.completedFuture("done " + lease.resources());
              });
      assertEquals("done [orders:1]", await(result));
      assertEquals(List.of(0, 1, 2), heldBy.get());
      assertEquals(0, fleet.keyCount(), "released when the stage completed");
    }
  }

  @Test
  void withLock_locksSeveralResourcesAsOne() {
    try (AsyncRedlock redlock = Fleets.open(fleet)) {
      LockOptions both = LockOptions.of("account:1", "account:2");
      CompletableFuture<Optional<LockLease>> second =
          redlock.withLock(
              both,
              lease -> {
                Fleets.heldEverywhere(fleet, "account:1");
                Fleets.heldEverywhere(fleet, "account:2");
                return redlock.tryAcquire("account:2");
              });
      assertEquals(Optional.empty(), await(second), "account:2 is held as part of the lock");
    }
  }

  @Test
  void withLock_excludesEachOtherAcrossThreadsFuturesAndInstances() throws Exception {
    RedlockConfig config = config(fleet);
    try (AsyncRedlock first = AsyncRedlock.create(config);
        AsyncRedlock second = AsyncRedlock.create(config)) {
      AtomicInteger inside = new AtomicInteger();
      AtomicInteger overlaps = new AtomicInteger();
      AtomicInteger sections = new AtomicInteger();
      int[] counter = {0}; // deliberately unsynchronised: lost updates reveal overlaps too
      Runnable section =
          () -> {
            if (inside.incrementAndGet() != 1) {
              overlaps.incrementAndGet();
            }
            int seen = counter[0];
            Thread.yield();
            counter[0] = seen + 1;
            inside.decrementAndGet();
            sections.incrementAndGet();
          };
      List<CompletableFuture<Void>> futures = new ArrayList<>();
      for (int i = 0; i < 30; i++) {
        AsyncRedlock redlock = i % 2 == 0 ? first : second;
        futures.add(
            redlock.withLock("shared", lease -> CompletableFuture.runAsync(section)));
      }
      ExecutorService threads = Executors.newFixedThreadPool(6);
      try {
        List<java.util.concurrent.Future<?>> blocking = new ArrayList<>();
        for (int t = 0; t < 6; t++) {
          AsyncRedlock redlock = t % 2 == 0 ? first : second;
          blocking.add(
              threads.submit(
                  () -> {
                    for (int i = 0; i < 5; i++) {
                      redlock.withLockBlocking(
                          "shared",
                          lease -> {
                            section.run();
                            return null;
                          });
                    }
                    return null;
                  }));
        }
        for (java.util.concurrent.Future<?> f : blocking) {
          f.get(30, TimeUnit.SECONDS);
        }
      } finally {
        threads.shutdownNow();
      }
      for (CompletableFuture<Void> f : futures) {
        await(f);
      }
      assertEquals(0, overlaps.get());
      assertEquals(30 + 6 * 5, sections.get());
      assertEquals(30 + 6 * 5, counter[0]);
    }
  }

  @Test
  void withLock_propagatesAnExceptionThrownByTheActionUnchanged() {
    try (AsyncRedlock redlock = Fleets.open(fleet)) {
      IllegalStateException thrown = new IllegalStateException("boom");
      CompletableFuture<String> result =
          redlock.withLock(
              "orders:2",
              lease -> {
                throw thrown;
              });
      assertSame(thrown, failure(result, IllegalStateException.class));
      assertSame(thrown, rawFailure(result), "the future holds the exception itself");
      CompletionException joined = assertThrows(CompletionException.class, result::join);
      assertSame(thrown, joined.getCause(), "wrapped once by join(), as CompletableFuture does");
      assertEquals(0, thrown.getSuppressed().length);
      assertEquals(0, fleet.keyCount(), "released after the failure");
    }
  }

  @Test
  void withLock_propagatesTheFailureOfTheActionsStageUnchanged() {
    try (AsyncRedlock redlock = Fleets.open(fleet)) {
      IOException checked = new IOException("disk full");
      CompletableFuture<String> failed =
          redlock.withLock("orders:3", lease -> CompletableFuture.failedFuture(checked));
      assertSame(checked, rawFailure(failed));

      IllegalArgumentException inner = new IllegalArgumentException("bad order");
      CompletableFuture<String> dependent =
          redlock.withLock(
              "orders:3",
              lease ->
                  CompletableFuture.supplyAsync(
                      () -> {
                        throw inner; // the stage fails with CompletionException(inner)
                      }));
      assertSame(inner, rawFailure(dependent), "one CompletionException taken off, not two added");
    }
  }

  @Test
  void withLock_failsWhenTheActionReturnsNull() {
    try (AsyncRedlock redlock = Fleets.open(fleet)) {
      CompletableFuture<String> result = redlock.withLock("orders:4", lease -> null);
      assertInstanceOf(NullPointerException.class, rawFailure(result));
    }
  }

  @Test
  void withLock_rejectsBadArgumentsAtOnce() {
    try (AsyncRedlock redlock = Fleets.open(fleet)) {
      IllegalArgumentException empty =
          assertThrows(
              IllegalArgumentException.class,
              () -> redlock.withLock("", lease -> CompletableFuture.completedFuture(1)));
      assertTrue(empty.getMessage().startsWith("resource must be"), empty.getMessage());
      assertThrows(NullPointerException.class, () -> redlock.withLock("r", null));
    }
  }

  @Test
  void withLock_leaseTimeShorterThanThreeNodeTimeouts_failsTheFuture() {
    RedlockConfig config =
        RedlockConfig.builder().masters(fleet.uris()).nodeTimeout(Duration.ofMillis(50)).build();
    try (AsyncRedlock redlock = AsyncRedlock.create(config)) {
      LockOptions tooShort = LockOptions.builder("orders:5").leaseTime(Duration.ofMillis(140)).build();
      IllegalArgumentException e =
          failure(
              redlock.withLock(tooShort, lease -> CompletableFuture.completedFuture(1)),
              IllegalArgumentException.class);
      assertEquals(
          "leaseTime must be at least three times the configured nodeTimeout (50ms), so that a renewal is over"
              + " before the next one is due, but was 140ms",
          e.getMessage());
    }
  }

  @Test
  void withLock_lostLease_failsWithLockLostExceptionCancelsTheStageAndCompletesLost() {
    try (AsyncRedlock redlock = Fleets.open(fleet)) {
      LockOptions options =
          LockOptions.builder("orders:6").leaseTime(Duration.ofMillis(900)).build();
      CompletableFuture<LockLease> entered = new CompletableFuture<>();
      CompletableFuture<String> stage = new CompletableFuture<>();
      CompletableFuture<String> result =
          redlock.withLock(
              options,
              lease -> {
                entered.complete(lease);
                return stage;
              });
      LockLease lease = await(entered);
      CompletableFuture<Void> lost = lease.lost();
      deleteKey(fleet, "orders:6", 0, 1); // a majority no longer holds it

      LockLostException loss = failure(result, LockLostException.class);
      assertEquals(LockLostException.Reason.NOT_HELD, loss.reason());
      assertEquals(List.of("orders:6"), loss.resources());
      assertTrue(stage.isCancelled(), "the action's stage is cancelled");
      assertSame(loss, rawFailure(lost), "lost() fails with the same loss");
      assertFalse(lease.isValid());
      assertEquals(Duration.ZERO, lease.remaining());
      assertEquals(List.of(), holders(fleet, "orders:6"), "the minority's key is cleaned up too");
    }
  }

  @Test
  void withLock_withoutRenewal_failsWhenTheLeaseRunsOut() {
    try (AsyncRedlock redlock = Fleets.open(fleet)) {
      LockOptions options =
          LockOptions.builder("orders:8")
              .leaseTime(Duration.ofMillis(300))
              .autoRenew(false)
              .build();
      CompletableFuture<String> stage = new CompletableFuture<>();
      CompletableFuture<LockLease> entered = new CompletableFuture<>();
      CompletableFuture<String> result =
          redlock.withLock(
              options,
              lease -> {
                entered.complete(lease);
                return stage;
              });
      LockLostException loss = failure(result, LockLostException.class);
      assertEquals(LockLostException.Reason.EXPIRED, loss.reason());
      assertTrue(stage.isCancelled());
      assertSame(loss, rawFailure(await(entered).lost()));
    }
  }

  @Test
  void withLock_withoutRenewal_returnsTheResultWhenDoneInTime() {
    try (AsyncRedlock redlock = Fleets.open(fleet)) {
      LockOptions options = LockOptions.builder("orders:9").autoRenew(false).build();
      assertEquals(
          Integer.valueOf(42),
          await(redlock.withLock(options, lease -> CompletableFuture.completedFuture(42))));
      assertEquals(0, fleet.keyCount());
    }
  }

  @Test
  void withLock_cancelledWhileRunning_cancelsTheStageAndReleases() {
    try (AsyncRedlock redlock = Fleets.open(fleet)) {
      CompletableFuture<LockLease> entered = new CompletableFuture<>();
      CompletableFuture<String> stage = new CompletableFuture<>();
      CompletableFuture<String> result =
          redlock.withLock(
              "orders:10",
              lease -> {
                entered.complete(lease);
                return stage;
              });
      LockLease lease = await(entered);
      Fleets.heldEverywhere(fleet, "orders:10");
      assertTrue(result.cancel(true));
      eventually("the action's stage is cancelled", stage::isCancelled);
      eventually("the lock is released", () -> fleet.keyCount() == 0);
      assertFalse(lease.isValid());
    }
  }

  @Test
  void withLock_cancelledWhileWaiting_stopsAndLeavesNoKeys() {
    try (AsyncRedlock redlock = Fleets.open(fleet)) {
      LockLease holder = await(redlock.acquire("orders:11"));
      Fleets.heldEverywhere(fleet, "orders:11");
      // The holder keeps a majority; the waiter's attempts now set its key on master 2 each time.
      deleteKey(fleet, "orders:11", 2);
      AtomicInteger actions = new AtomicInteger();
      LockOptions patient = LockOptions.builder("orders:11").waitTime(Duration.ofSeconds(30)).build();
      CompletableFuture<String> waiting =
          redlock.withLock(
              patient,
              lease -> {
                actions.incrementAndGet();
                return CompletableFuture.completedFuture("never");
              });
      sleep(100); // let it make some attempts
      assertFalse(waiting.isDone());
      assertTrue(waiting.cancel(true));
      eventually("the waiter's key on master 2 is cleaned up", () -> holders(fleet, "orders:11").equals(List.of(0, 1)));
      holder.close();
      sleep(200); // a waiter that kept going would take the free lock within its retry delay
      assertEquals(0, fleet.keyCount(), "no attempt after the cancellation");
      assertEquals(0, actions.get());
    }
  }

  @Test
  void withLock_runsTheActionAndCompletesOnTheGivenExecutor() {
    ExecutorService named =
        Executors.newSingleThreadExecutor(task -> new Thread(task, "user-executor"));
    try (AsyncRedlock redlock = Fleets.connected(AsyncRedlock.builder(config(fleet)).executor(named).build(), fleet)) {
      AtomicReference<String> actionThread = new AtomicReference<>();
      CompletableFuture<String> slow = new CompletableFuture<>();
      CompletableFuture<String> result =
          redlock.withLock(
              "orders:12",
              lease -> {
                actionThread.set(Thread.currentThread().getName());
                return slow;
              });
      CompletableFuture<String> dependentThread =
          result.thenApply(v -> Thread.currentThread().getName());
      eventually("the action ran", () -> actionThread.get() != null);
      // Completed from a thread of the test; the result still arrives on the executor.
      slow.complete("x");
      assertEquals("user-executor", actionThread.get());
      assertEquals("user-executor", await(dependentThread));
    } finally {
      named.shutdown();
    }
  }

  @Test
  void withLock_byDefault_runsCallbacksOnItsOwnPoolNotOnRedisThreads() {
    try (AsyncRedlock redlock = Fleets.open(fleet)) {
      AtomicReference<String> actionThread = new AtomicReference<>();
      LockLease holder = await(redlock.acquire("orders:13"));
      // The waiter's future completes after a wait: its dependents run where it completes.
      CompletableFuture<String> result =
          redlock.withLock(
              "orders:13",
              lease -> {
                actionThread.set(Thread.currentThread().getName());
                return CompletableFuture.completedFuture("ok");
              });
      CompletableFuture<String> dependentThread =
          result.thenApply(v -> Thread.currentThread().getName());
      holder.release();
      assertTrue(await(dependentThread).startsWith("redlock-callbacks-"), dependentThread.join());
      assertTrue(actionThread.get().startsWith("redlock-callbacks-"), actionThread.get());
    }
  }

  @Test
  void withLock_aStuckExecutorDoesNotHoldUpOtherLocks() {
    ExecutorService single = Executors.newSingleThreadExecutor();
    CountDownLatch stuck = new CountDownLatch(1);
    try (AsyncRedlock redlock = Fleets.open(fleet)) {
      single.execute(
          () -> {
            try {
              stuck.await(); // the executor's only thread is busy, like a slow user callback
            } catch (InterruptedException e) {
              Thread.currentThread().interrupt();
            }
          });
      LockOptions slowOptions =
          LockOptions.builder("slow").leaseTime(Duration.ofMillis(600)).executor(single).build();
      CompletableFuture<String> slow =
          redlock.withLock(slowOptions, lease -> CompletableFuture.completedFuture("slow"));
      assertEquals(
          "fast", await(redlock.withLock("fast", lease -> CompletableFuture.completedFuture("fast"))));
      Fleets.heldEverywhere(fleet, "slow");
      long first = Fleets.pttl(fleet, 0, "slow");
      eventually("the key's time to live goes down", () -> Fleets.pttl(fleet, 0, "slow") < first - 100);
      eventually("a renewal sets it back up while the executor is stuck", () -> Fleets.pttl(fleet, 0, "slow") > first - 50);
      assertFalse(slow.isDone());
      stuck.countDown();
      assertEquals("slow", await(slow));
    } finally {
      stuck.countDown();
      single.shutdown();
    }
  }

  @Test
  void acquire_returnsALeaseThatIsRenewedUntilReleased() {
    try (AsyncRedlock redlock = Fleets.open(fleet)) {
      LockOptions options = LockOptions.builder("orders:14").leaseTime(Duration.ofMillis(600)).build();
      try (LockLease lease = await(redlock.acquire(options))) {
        Fleets.heldEverywhere(fleet, "orders:14");
        long first = Fleets.pttl(fleet, 0, "orders:14");
        eventually("the key's time to live goes down", () -> Fleets.pttl(fleet, 0, "orders:14") < first - 100);
        eventually("a renewal sets it back up", () -> Fleets.pttl(fleet, 0, "orders:14") > first - 50);
        assertTrue(lease.isValid());
        assertEquals(List.of(0, 1, 2), holders(fleet, "orders:14"));
      }
      assertEquals(0, fleet.keyCount());
    }
  }

  @Test
  void acquire_withoutRenewal_isLostWhenItRunsOut() {
    try (AsyncRedlock redlock = Fleets.open(fleet)) {
      LockOptions options =
          LockOptions.builder("orders:15").leaseTime(Duration.ofMillis(300)).autoRenew(false).build();
      try (LockLease lease = await(redlock.acquire(options))) {
        LockLostException loss = assertInstanceOf(LockLostException.class, rawFailure(lease.lost()));
        assertEquals(LockLostException.Reason.EXPIRED, loss.reason());
        assertFalse(lease.isValid());
      }
    }
  }

  @Test
  void acquire_lostLease_completesLost() {
    try (AsyncRedlock redlock = Fleets.open(fleet)) {
      LockOptions options = LockOptions.builder("orders:16").leaseTime(Duration.ofMillis(600)).build();
      try (LockLease lease = await(redlock.acquire(options))) {
        deleteKey(fleet, "orders:16", 1, 2);
        LockLostException loss = assertInstanceOf(LockLostException.class, rawFailure(lease.lost()));
        assertEquals(LockLostException.Reason.NOT_HELD, loss.reason());
        assertFalse(lease.isValid());
      }
      assertEquals(0, fleet.keyCount(), "release cleans the minority that still held it");
    }
  }

  @Test
  void acquire_heldElsewhere_failsWithLockNotAcquiredAfterTheWaitTime() {
    try (AsyncRedlock redlock = Fleets.open(fleet);
        LockLease holder = await(redlock.acquire("orders:17"))) {
      LockOptions brief = LockOptions.builder("orders:17").waitTime(Duration.ofMillis(100)).build();
      LockNotAcquiredException e = failure(redlock.acquire(brief), LockNotAcquiredException.class);
      assertTrue(e.isContended());
      assertEquals(List.of("orders:17"), e.resources());
      assertTrue(holder.isValid());
    }
  }

  @Test
  void acquire_cancelledWhileWaiting_stopsAndLeavesNoKeys() {
    try (AsyncRedlock redlock = Fleets.open(fleet)) {
      LockLease holder = await(redlock.acquire("orders:18"));
      Fleets.heldEverywhere(fleet, "orders:18");
      deleteKey(fleet, "orders:18", 0);
      LockOptions patient = LockOptions.builder("orders:18").waitTime(Duration.ofSeconds(30)).build();
      CompletableFuture<LockLease> waiting = redlock.acquire(patient);
      sleep(100);
      assertFalse(waiting.isDone());
      assertTrue(waiting.cancel(true));
      eventually("the waiter's key on master 0 is cleaned up", () -> holders(fleet, "orders:18").equals(List.of(1, 2)));
      holder.close();
      sleep(200);
      assertEquals(0, fleet.keyCount(), "no attempt after the cancellation");
    }
  }

  @Test
  void acquire_timedOutByOrTimeout_stopsWaitingAndLeavesNoKeys() {
    try (AsyncRedlock redlock = Fleets.open(fleet)) {
      LockLease holder = await(redlock.acquire("orders:25"));
      Fleets.heldEverywhere(fleet, "orders:25");
      deleteKey(fleet, "orders:25", 1);
      CompletableFuture<LockLease> waiting =
          redlock
              .acquire(LockOptions.builder("orders:25").waitTime(Duration.ofSeconds(30)).build())
              .orTimeout(100, TimeUnit.MILLISECONDS);
      failure(waiting, java.util.concurrent.TimeoutException.class);
      eventually("the waiter's key on master 1 is cleaned up", () -> holders(fleet, "orders:25").equals(List.of(0, 2)));
      holder.close();
      sleep(200);
      assertEquals(0, fleet.keyCount(), "no attempt after the time-out");
    }
  }

  @Test
  void tryAcquire_returnsALeaseWhenFreeAndEmptyWhenHeld() {
    try (AsyncRedlock redlock = Fleets.open(fleet)) {
      Optional<LockLease> first = await(redlock.tryAcquire("orders:19"));
      assertTrue(first.isPresent());
      try (LockLease lease = first.get()) {
        assertEquals(Optional.empty(), await(redlock.tryAcquire("orders:19")));
        assertEquals(
            Optional.empty(),
            await(redlock.tryAcquire(LockOptions.builder("orders:19").waitTime(Duration.ofSeconds(5)).build())),
            "tryAcquire ignores the wait time");
        assertTrue(lease.isValid());
      }
      Optional<LockLease> again = await(redlock.tryAcquire("orders:19"));
      assertTrue(again.isPresent());
      again.get().close();
    }
  }

  @Test
  void tryAcquire_mastersDown_failsWithLockNotAcquiredNamingTheFailures() {
    try (AsyncRedlock redlock = Fleets.open(fleet)) {
      for (int i = 0; i < 3; i++) {
        fleet.kill(i);
      }
      LockNotAcquiredException e =
          failure(redlock.tryAcquire("orders:20"), LockNotAcquiredException.class);
      assertFalse(e.isContended());
      // The engine stops listening once a majority is out of reach, so it names at least two.
      assertTrue(e.masterFailures().size() >= 2, e.getMessage());
      assertSame(e.masterFailures().get(0), e.getCause());
    }
  }

  @Test
  void close_cancelsCallsReleasesLeasesAndStopsItsThreads() {
    Set<Thread> before = new HashSet<>(Thread.getAllStackTraces().keySet());
    AsyncRedlock redlock = Fleets.open(fleet);
    LockLease held = await(redlock.acquire("orders:21"));
    CompletableFuture<String> stage = new CompletableFuture<>();
    CompletableFuture<Void> entered = new CompletableFuture<>();
    CompletableFuture<String> running =
        redlock.withLock(
            "orders:22",
            lease -> {
              entered.complete(null);
              return stage;
            });
    await(entered);
    CompletableFuture<LockLease> waiting =
        redlock.acquire(LockOptions.builder("orders:21").waitTime(Duration.ofSeconds(30)).build());

    redlock.close();

    assertEquals(0, fleet.keyCount(), "close released every lease and waited");
    assertFalse(held.isValid());
    // The running section is told why: its lease was taken by close(), as a loss.
    LockLostException lost = assertInstanceOf(LockLostException.class, rawFailure(running));
    assertEquals(LockLostException.Reason.CLOSED, lost.reason());
    assertTrue(stage.isCancelled());
    // The waiter and every later call fail at once, saying the AsyncRedlock is closed.
    assertInstanceOf(RedlockClosedException.class, rawFailure(waiting));
    assertInstanceOf(RedlockClosedException.class, rawFailure(redlock.acquire("orders:23")));
    assertInstanceOf(
        RedlockClosedException.class,
        rawFailure(redlock.withLock("orders:23", l -> CompletableFuture.completedFuture(1))));
    assertEquals(LockLostException.Reason.CLOSED, assertInstanceOf(LockLostException.class, rawFailure(held.lost())).reason());
    redlock.close(); // idempotent
    held.close(); // a no-op after close

    eventually(
        "every thread the AsyncRedlock started has ended",
        () -> startedSince(before).isEmpty());
  }

  @Test
  void close_neverShutsDownAnExecutorItWasGiven() {
    ExecutorService mine = Executors.newSingleThreadExecutor();
    try {
      AsyncRedlock redlock = Fleets.connected(AsyncRedlock.builder(config(fleet)).executor(mine).build(), fleet);
      assertEquals(Integer.valueOf(7), await(redlock.withLock("orders:24", l -> CompletableFuture.completedFuture(7))));
      redlock.close();
      assertFalse(mine.isShutdown());
    } finally {
      mine.shutdown();
    }
  }

  /** Threads alive now that were not before, other than the JVM's and kotlinx's shared ones. */
  private static List<String> startedSince(Set<Thread> before) {
    return Thread.getAllStackTraces().keySet().stream()
        .filter(t -> !before.contains(t) && t.isAlive())
        .map(Thread::getName)
        .filter(
            name ->
                !name.startsWith("DefaultDispatcher-worker")
                    && !name.startsWith("kotlinx.coroutines.DefaultExecutor")
                    && !name.startsWith("ForkJoinPool.commonPool")
                    && !name.startsWith("globalEventExecutor")
                    && !name.equals("process reaper")
                    && !name.equals("Common-Cleaner"))
        .collect(Collectors.toList());
  }
}
