package dev.redlock.java;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.redlock.core.RedlockConfig;
import dev.redlock.testing.RedisFleet;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;
import java.util.concurrent.locks.Lock;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * The Java ways of taking a lock from plain threads, in a burst on a cold client: a thousand
 * threads at once, each on its own resource, every one must finish (none may hang behind a
 * connection that is still opening, or a chain of completions as deep as the burst).
 */
class BurstTest {
  private static final int THREADS = 1000;

  /** A hang guard only, never a speed assertion: far beyond what a burst needs. */
  private static final long HANG_GUARD_SECONDS = 120;

  @ParameterizedTest(name = "N={0}: 1000 threads each in withLockBlocking on a cold AsyncRedlock all finish")
  @ValueSource(ints = {1, 3})
  void withLockBlocking(int masters) throws Exception {
    burst(masters, (redlock, i) -> redlock.withLockBlocking("burst:blocking:" + i, lease -> lease.isValid()));
  }

  @ParameterizedTest(name = "N={0}: 1000 threads each in asLock().lock() on a cold AsyncRedlock all finish")
  @ValueSource(ints = {1, 3})
  void lockAdapter(int masters) throws Exception {
    burst(
        masters,
        (redlock, i) -> {
          Lock lock = redlock.asLock("burst:lock:" + i);
          lock.lock();
          try {
            return true;
          } finally {
            lock.unlock();
          }
        });
  }

  private interface Call {
    boolean run(AsyncRedlock redlock, int i) throws Exception;
  }

  private static void burst(int masters, Call call) throws Exception {
    try (RedisFleet fleet = RedisFleet.start(masters)) {
      RedlockConfig config =
          RedlockConfig.builder()
              .masters(fleet.uris())
              .leaseTime(Duration.ofSeconds(10))
              .waitTime(Duration.ofSeconds(30))
              .build();
      try (AsyncRedlock redlock = AsyncRedlock.create(config)) {
        CountDownLatch start = new CountDownLatch(1);
        CountDownLatch done = new CountDownLatch(THREADS);
        AtomicInteger held = new AtomicInteger();
        AtomicReference<Throwable> failure = new AtomicReference<>();
        List<Thread> threads = new ArrayList<>(THREADS);
        for (int i = 0; i < THREADS; i++) {
          int n = i;
          Thread t =
              new Thread(
                  () -> {
                    try {
                      start.await();
                      if (call.run(redlock, n)) {
                        held.incrementAndGet();
                      }
                    } catch (Throwable e) {
                      failure.compareAndSet(null, e);
                    } finally {
                      done.countDown();
                    }
                  },
                  "burst-" + i);
          t.setDaemon(true);
          threads.add(t);
          t.start();
        }
        start.countDown();
        boolean finished = done.await(HANG_GUARD_SECONDS, TimeUnit.SECONDS);
        assertTrue(finished, () -> (THREADS - done.getCount()) + " of " + THREADS + " calls finished; the rest hang");
        if (failure.get() != null) {
          throw new AssertionError("a call of the burst failed", failure.get());
        }
        assertEquals(THREADS, held.get(), "every call held a valid lease");
        for (Thread t : threads) {
          t.join(TimeUnit.SECONDS.toMillis(HANG_GUARD_SECONDS));
        }
      }
      for (int i = 0; i < masters; i++) {
        assertEquals(List.of(), fleet.keys(i, "redlock:burst:*"), "no lock key left on master " + i);
      }
    }
  }
}
