package dev.redlock.java;

import static dev.redlock.java.Fleets.await;
import static dev.redlock.java.Fleets.config;
import static dev.redlock.java.Fleets.deleteKey;
import static dev.redlock.java.Fleets.eventually;
import static dev.redlock.java.Fleets.holders;
import static dev.redlock.java.Fleets.rawFailure;
import static dev.redlock.java.Fleets.sleep;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.redlock.core.LockLostException;
import dev.redlock.core.RedlockClosedException;
import dev.redlock.core.LockNotAcquiredException;
import dev.redlock.testing.RedisFleet;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.CancellationException;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/** {@link AsyncRedlock#withLockBlocking(LockOptions, CriticalSection)}: the blocking convenience. */
@Timeout(value = 60, unit = TimeUnit.SECONDS)
final class CriticalSectionTest {
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

  @Test
  void run_returnsTheResultRunningOnTheCallingThreadUnderTheLock() throws InterruptedException {
    Thread caller = Thread.currentThread();
    String result =
        redlock.withLockBlocking(
            "report:1",
            lease -> {
              assertSame(caller, Thread.currentThread());
              Fleets.heldEverywhere(fleet, "report:1");
              assertTrue(lease.isValid());
              return "done";
            });
    assertEquals("done", result);
    assertEquals(0, fleet.keyCount(), "released and waited for");
  }

  @Test
  void run_throwingACheckedException_isRethrownUnchanged() throws InterruptedException {
    IOException thrown = new IOException("disk full");
    IOException caught =
        assertThrows(
            IOException.class,
            () ->
                redlock.withLockBlocking(
                    "report:2",
                    lease -> {
                      throw thrown;
                    }));
    assertSame(thrown, caught);
    assertEquals(0, caught.getSuppressed().length);
    assertEquals(0, fleet.keyCount());
  }

  @Test
  void run_throwingAnUncheckedException_isRethrownUnchanged() throws InterruptedException {
    UncheckedIOException thrown = new UncheckedIOException(new IOException("gone"));
    UncheckedIOException caught =
        assertThrows(
            UncheckedIOException.class,
            () ->
                redlock.withLockBlocking(
                    "report:3",
                    lease -> {
                      throw thrown;
                    }));
    assertSame(thrown, caught);
    assertEquals(0, fleet.keyCount());
  }

  @Test
  void withLockBlocking_heldElsewhere_throwsLockNotAcquired() {
    try (LockLease holder = await(redlock.acquire("report:4"))) {
      LockOptions brief = LockOptions.builder("report:4").waitTime(Duration.ofMillis(100)).build();
      LockNotAcquiredException e =
          assertThrows(
              LockNotAcquiredException.class,
              () -> redlock.withLockBlocking(brief, lease -> "never"));
      assertTrue(e.isContended());
      assertTrue(holder.isValid());
    }
  }

  @Test
  void withLockBlocking_interruptedWhileWaiting_throwsInterruptedAndLeavesNoKeys()
      throws Exception {
    LockLease holder = await(redlock.acquire("report:5"));
    Fleets.heldEverywhere(fleet, "report:5");
    deleteKey(fleet, "report:5", 1); // the waiter's attempts set its key on master 1
    AtomicReference<Throwable> outcome = new AtomicReference<>();
    Thread waiter =
        new Thread(
            () -> {
              try {
                redlock.withLockBlocking(
                    LockOptions.builder("report:5").waitTime(Duration.ofSeconds(30)).build(),
                    lease -> "never");
              } catch (Throwable t) {
                outcome.set(t);
              }
            });
    waiter.start();
    sleep(100);
    waiter.interrupt();
    waiter.join(TimeUnit.SECONDS.toMillis(Fleets.HANG_GUARD_SECONDS));
    assertFalse(waiter.isAlive());
    assertInstanceOf(InterruptedException.class, outcome.get());
    assertEquals(List.of(0, 2), holders(fleet, "report:5"), "the waiter's attempt was cleaned up before it returned");
    holder.close();
    sleep(200);
    assertEquals(0, fleet.keyCount(), "no attempt after the interrupt");
  }

  @Test
  void withLockBlocking_lostDuringTheSection_throwsLockLostWhenTheSectionReturns() {
    LockOptions options = LockOptions.builder("report:6").leaseTime(Duration.ofMillis(600)).build();
    AtomicReference<LockLostException> seenInside = new AtomicReference<>();
    LockLostException thrown =
        assertThrows(
            LockLostException.class,
            () ->
                redlock.withLockBlocking(
                    options,
                    lease -> {
                      deleteKey(fleet, "report:6", 0, 1, 2);
                      // Loss cannot stop this thread; the section finds out through the lease.
                      seenInside.set((LockLostException) rawFailure(lease.lost()));
                      assertFalse(lease.isValid());
                      return "too late";
                    }));
    assertSame(seenInside.get(), thrown);
    assertEquals(LockLostException.Reason.NOT_HELD, thrown.reason());
  }

  @Test
  void withLockBlocking_sectionFailingAfterLoss_rethrowsItsExceptionWithTheLossSuppressed() {
    LockOptions options = LockOptions.builder("report:7").leaseTime(Duration.ofMillis(600)).build();
    IllegalStateException failure = new IllegalStateException("write refused");
    IllegalStateException thrown =
        assertThrows(
            IllegalStateException.class,
            () ->
                redlock.withLockBlocking(
                    options,
                    lease -> {
                      deleteKey(fleet, "report:7", 0, 1, 2);
                      rawFailure(lease.lost());
                      throw failure;
                    }));
    assertSame(failure, thrown);
    assertEquals(1, thrown.getSuppressed().length);
    assertInstanceOf(LockLostException.class, thrown.getSuppressed()[0]);
  }

  @Test
  void withLockBlocking_leaseReleasedBySection_returnsTheResult() throws InterruptedException {
    String result =
        redlock.withLockBlocking(
            "report:8",
            lease -> {
              lease.close();
              assertEquals(0, fleet.keyCount());
              return "early";
            });
    assertEquals("early", result);
  }

  @Test
  void withLockBlocking_afterClose_throwsRedlockClosed() {
    AsyncRedlock closed = Fleets.open(fleet);
    closed.close();
    assertThrows(RedlockClosedException.class, () -> closed.withLockBlocking("report:9", lease -> 1));
  }

  @Test
  void withLockBlocking_closedDuringTheSection_throwsLockLostClosed() {
    AsyncRedlock closing = Fleets.open(fleet);
    CompletableFuture<Void> closed = new CompletableFuture<>();
    LockLostException lost = assertThrows(
        LockLostException.class,
        () ->
            closing.withLockBlocking(
                "report:10",
                lease -> {
                  closed.completeAsync(
                      () -> {
                        closing.close();
                        return null;
                      });
                  await(closed);
                  return "orphaned";
                }));
    assertEquals(LockLostException.Reason.CLOSED, lost.reason());
    assertEquals(0, fleet.keyCount());
  }

  @Test
  void withLockBlocking_manyThreads_neverOverlap() throws Exception {
    int[] counter = {0};
    Thread[] threads = new Thread[8];
    int[] overlaps = {0};
    Object guard = new Object();
    boolean[] inside = {false};
    for (int t = 0; t < threads.length; t++) {
      threads[t] =
          new Thread(
              () -> {
                for (int i = 0; i < 5; i++) {
                  try {
                    redlock.withLockBlocking(
                        "report:11",
                        lease -> {
                          synchronized (guard) {
                            if (inside[0]) {
                              overlaps[0]++;
                            }
                            inside[0] = true;
                          }
                          int seen = counter[0];
                          Thread.yield();
                          counter[0] = seen + 1;
                          synchronized (guard) {
                            inside[0] = false;
                          }
                          return null;
                        });
                  } catch (InterruptedException e) {
                    return;
                  }
                }
              });
      threads[t].start();
    }
    for (Thread t : threads) {
      t.join(TimeUnit.SECONDS.toMillis(30));
    }
    synchronized (guard) {
      assertArrayEquals(new int[] {0}, overlaps);
    }
    assertEquals(8 * 5, counter[0]);
  }
}
