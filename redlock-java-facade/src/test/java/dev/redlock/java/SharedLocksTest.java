package dev.redlock.java;

import static dev.redlock.java.Fleets.await;
import static dev.redlock.java.Fleets.failure;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.redlock.core.LockLostException;
import dev.redlock.core.LockNotAcquiredException;
import dev.redlock.testing.RedisFleet;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/** The reader-writer lock and the semaphore, as Java callers use them. */
@Timeout(value = 60, unit = TimeUnit.SECONDS)
final class SharedLocksTest {
  private static RedisFleet fleet;
  private static AsyncRedlock redlock;

  @BeforeAll
  static void start() {
    fleet = RedisFleet.start(3);
    redlock = Fleets.open(fleet);
  }

  @AfterAll
  static void stop() {
    try {
      if (redlock != null) {
        redlock.close();
      }
    } finally {
      if (fleet != null) {
        fleet.close();
      }
    }
  }

  @AfterEach
  void checkClean() {
    Fleets.restoreAndCheckClean(fleet);
  }

  private static LockOptions noWait(String resource) {
    return LockOptions.builder(resource).waitTime(Duration.ZERO).build();
  }

  @Test
  void withReadLock_readersShareAndKeepTheWriterOut() {
    CompletableFuture<Void> release = new CompletableFuture<>();
    CompletableFuture<String> first = redlock.withReadLock("catalog", lease -> release.thenApply(v -> "first"));
    String second =
        await(redlock.withReadLock(noWait("catalog"), lease -> CompletableFuture.completedFuture("second")));
    assertEquals("second", second);
    LockNotAcquiredException refused =
        failure(redlock.withWriteLock(noWait("catalog"), lease -> CompletableFuture.completedFuture("w")), LockNotAcquiredException.class);
    assertTrue(refused.isContended());
    release.complete(null);
    assertEquals("first", await(first));
    assertEquals("written", await(redlock.withWriteLock("catalog", lease -> CompletableFuture.completedFuture("written"))));
  }

  @Test
  void withWriteLock_excludesReadersUntilTheWriterIsDone() {
    CompletableFuture<Void> release = new CompletableFuture<>();
    CompletableFuture<String> writer = redlock.withWriteLock("ledger", lease -> release.thenApply(v -> "wrote"));
    Fleets.eventually("the writer holds", () -> fleet.keys(0).contains("redlock:ledger\u0000write"));
    failure(redlock.withReadLock(noWait("ledger"), lease -> CompletableFuture.completedFuture("r")), LockNotAcquiredException.class);
    CompletableFuture<String> reader = redlock.withReadLock("ledger", lease -> CompletableFuture.completedFuture("read"));
    release.complete(null);
    assertEquals("wrote", await(writer));
    assertEquals("read", await(reader));
  }

  @Test
  void withWriteLock_lossFailsTheFutureWithLockLostException() {
    LockOptions options = LockOptions.builder("doomed").leaseTime(Duration.ofMillis(600)).build();
    CompletableFuture<Void> never = new CompletableFuture<>();
    CompletableFuture<Void> writer = redlock.withWriteLock(options, lease -> never);
    Fleets.eventually("every master holds the writer", () -> {
      for (int i = 0; i < fleet.size(); i++) {
        if (!fleet.keys(i).contains("redlock:doomed\u0000write")) {
          return false;
        }
      }
      return true;
    });
    for (int i = 0; i < fleet.size(); i++) {
      fleet.command(i, "DEL", "redlock:doomed\u0000write");
    }
    LockLostException lost = failure(writer, LockLostException.class);
    assertEquals(LockLostException.Reason.NOT_HELD, lost.reason());
    assertTrue(never.isCancelled(), "the action's stage is cancelled on loss");
  }

  @Test
  void withPermit_admitsAtMostPermitsHolders() {
    AtomicInteger inside = new AtomicInteger();
    AtomicInteger most = new AtomicInteger();
    List<CompletableFuture<Void>> calls =
        java.util.stream.IntStream.range(0, 8)
            .mapToObj(
                i ->
                    redlock.<Void>withPermit(
                        "pool",
                        2,
                        lease -> {
                          most.accumulateAndGet(inside.incrementAndGet(), Math::max);
                          return CompletableFuture.runAsync(
                              () -> {
                                Fleets.sleep(10);
                                inside.decrementAndGet();
                              });
                        }))
            .toList();
    calls.forEach(Fleets::await);
    assertTrue(most.get() <= 2, "at most 2 holders, but saw " + most.get());
  }

  @Test
  void withPermit_withAnotherNumberOfPermits_failsNamingBoth() {
    CompletableFuture<Void> release = new CompletableFuture<>();
    CompletableFuture<Void> holder = redlock.withPermit("k", 2, lease -> release);
    Fleets.eventually("the holder is in", () -> fleet.keys(0).contains("redlock:k\u0000permits"));
    IllegalArgumentException e =
        failure(redlock.withPermit(noWait("k"), 3, lease -> CompletableFuture.completedFuture(null)), IllegalArgumentException.class);
    assertEquals(
        "permits must be the same for every caller of the semaphore k: its current holders use 2, but this call asked for 3",
        e.getMessage());
    release.complete(null);
    await(holder);
    IllegalArgumentException bad =
        assertThrows(IllegalArgumentException.class, () -> redlock.withPermit("k", 0, lease -> CompletableFuture.completedFuture(null)));
    assertEquals("permits must be at least 1, but was 0", bad.getMessage());
    assertFalse(fleet.keys(0).contains("redlock:k\u0000permits"));
  }
}
