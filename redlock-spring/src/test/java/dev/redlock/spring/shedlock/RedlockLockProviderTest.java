package dev.redlock.spring.shedlock;

import static dev.redlock.spring.SpringFleets.HANG_GUARD;
import static dev.redlock.spring.SpringFleets.eventually;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.redlock.core.RedlockConfig;
import dev.redlock.java.AsyncRedlock;
import dev.redlock.spring.SpringFleets;
import dev.redlock.testing.RedisFleet;
import java.time.Duration;
import java.util.Optional;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.atomic.AtomicInteger;
import net.javacrumbs.shedlock.core.ClockProvider;
import net.javacrumbs.shedlock.core.ExtensibleLockProvider;
import net.javacrumbs.shedlock.core.LockConfiguration;
import net.javacrumbs.shedlock.core.LockProvider;
import net.javacrumbs.shedlock.core.SimpleLock;
import net.javacrumbs.shedlock.spring.annotation.EnableSchedulerLock;
import net.javacrumbs.shedlock.spring.annotation.SchedulerLock;
import net.javacrumbs.shedlock.support.ShortKeepAlive;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.springframework.context.annotation.Bean;
import org.springframework.context.annotation.Configuration;
import org.springframework.scheduling.annotation.EnableScheduling;
import org.springframework.scheduling.annotation.Scheduled;

/** The ShedLock provider as ShedLock documents its providers, over real masters; two providers stand for two instances. */
final class RedlockLockProviderTest {
  private static RedisFleet fleet;
  private AsyncRedlock redlockA;
  private AsyncRedlock redlockB;
  private RedlockLockProvider a;
  private RedlockLockProvider b;

  @BeforeAll
  static void start() {
    fleet = RedisFleet.start(3);
  }

  @AfterAll
  static void stop() {
    fleet.close();
  }

  @BeforeEach
  void providers() {
    RedlockConfig config =
        RedlockConfig.builder()
            .masters(fleet.uris())
            .leaseTime(Duration.ofSeconds(1))
            .restartGuard(Duration.ofMinutes(1))
            .retryDelay(Duration.ofMillis(5))
            .build();
    redlockA = SpringFleets.warm(AsyncRedlock.create(config));
    redlockB = SpringFleets.warm(AsyncRedlock.create(config));
    a = new RedlockLockProvider(redlockA);
    b = new RedlockLockProvider(redlockB);
  }

  @AfterEach
  void close() {
    a.close();
    b.close();
    redlockA.close();
    redlockB.close();
    eventually("no keys left on the masters", () -> fleet.keyCount() == 0);
  }

  private static LockConfiguration job(String name, Duration atMost, Duration atLeast) {
    return new LockConfiguration(ClockProvider.now(), name, atMost, atLeast);
  }

  @Test
  void lock_isTakenOnce_andUnlockFreesIt() {
    SimpleLock held = a.lock(job("report", Duration.ofSeconds(10), Duration.ZERO)).orElseThrow();
    assertEquals(1, fleet.keys(0, "redlock:shedlock:report").size());
    assertTrue(b.lock(job("report", Duration.ofSeconds(10), Duration.ZERO)).isEmpty(), "skipped while held");
    held.unlock();
    assertThrows(IllegalStateException.class, held::unlock);
    b.lock(job("report", Duration.ofSeconds(10), Duration.ZERO)).orElseThrow().unlock();
  }

  @Test
  void lockAtLeastFor_keepsTheLockAfterUnlock_untilItIsOver() {
    a.lock(job("atLeast", Duration.ofSeconds(40), Duration.ofSeconds(30))).orElseThrow().unlock();
    assertTrue(b.lock(job("atLeast", Duration.ofSeconds(40), Duration.ZERO)).isEmpty(), "kept for lockAtLeastFor");
    a.close(); // releases what it kept
    b.lock(job("atLeast", Duration.ofSeconds(40), Duration.ZERO)).orElseThrow().unlock();

    RedlockLockProvider c = new RedlockLockProvider(redlockA);
    try {
      c.lock(job("short", Duration.ofSeconds(10), Duration.ofMillis(300))).orElseThrow().unlock();
      Optional<SimpleLock>[] got = new Optional[1];
      eventually("released when lockAtLeastFor is over", () -> (got[0] = b.lock(job("short", Duration.ofSeconds(10), Duration.ZERO))).isPresent());
      got[0].orElseThrow().unlock();
    } finally {
      c.close();
    }
  }

  @Test
  void lockAtMostFor_endsTheLock_evenWithoutUnlock() {
    assertTrue(a.lock(job("stuck", Duration.ofMillis(500), Duration.ZERO)).isPresent());
    Optional<SimpleLock>[] got = new Optional[1];
    eventually("the lock ends by lockAtMostFor", () -> (got[0] = b.lock(job("stuck", Duration.ofSeconds(10), Duration.ZERO))).isPresent());
    got[0].orElseThrow().unlock();
  }

  @Test
  void keepAliveLockProvider_extendsTheLockWhileTheJobRuns() {
    Counting counting = new Counting(a);
    ScheduledExecutorService scheduler = Executors.newSingleThreadScheduledExecutor();
    try {
      LockProvider keepAlive = ShortKeepAlive.create(counting, scheduler, Duration.ofMillis(100));
      SimpleLock held = keepAlive.lock(job("long-job", Duration.ofMillis(600), Duration.ZERO)).orElseThrow();
      // Three extensions, each every 300 ms: well past the 600 ms lockAtMostFor.
      eventually("extended three times", () -> counting.extended.get() >= 3);
      assertTrue(b.lock(job("long-job", Duration.ofSeconds(10), Duration.ZERO)).isEmpty(), "still held");
      held.unlock();
      b.lock(job("long-job", Duration.ofSeconds(10), Duration.ZERO)).orElseThrow().unlock();
    } finally {
      scheduler.shutdownNow();
    }
  }

  @Test
  void extend_keepsLockAtMostFor_only() {
    SimpleLock held = a.lock(job("extended", Duration.ofSeconds(5), Duration.ZERO)).orElseThrow();
    assertThrows(UnsupportedOperationException.class, () -> held.extend(Duration.ofSeconds(9), Duration.ZERO));
    SimpleLock extended = held.extend(Duration.ofSeconds(5), Duration.ZERO).orElseThrow();
    assertThrows(IllegalStateException.class, held::unlock, "the extended lock replaces it");
    extended.unlock();
  }

  @Test
  void scheduledJob_runsOnceAcrossTwoInstances_andRespectsLockAtLeastFor() {
    Jobs.runs.set(0);
    var app =
        SpringFleets.runner(fleet)
            .withUserConfiguration(ScheduledApp.class)
            .withPropertyValues("redlock.restart-guard=1m");
    app.run(
        one ->
            app.run(
                two -> {
                  Jobs first = one.getBean(Jobs.class);
                  Jobs second = two.getBean(Jobs.class);
                  // Both schedulers fire every 20 ms; the lock is kept 30 s after the first run.
                  eventually("both instances ticked 10 times", () -> first.ticks() >= 10 && second.ticks() >= 10);
                  eventually("the job ran", () -> Jobs.runs.get() >= 1);
                  assertEquals(1, Jobs.runs.get());
                }));
  }

  /** Counts extensions of the wrapped provider's locks. */
  private static final class Counting implements ExtensibleLockProvider {
    final AtomicInteger extended = new AtomicInteger();
    private final ExtensibleLockProvider wrapped;

    Counting(ExtensibleLockProvider wrapped) {
      this.wrapped = wrapped;
    }

    @Override
    public Optional<SimpleLock> lock(LockConfiguration configuration) {
      return wrapped.lock(configuration).map(this::counted);
    }

    private SimpleLock counted(SimpleLock lock) {
      return new SimpleLock() {
        @Override
        public void unlock() {
          lock.unlock();
        }

        @Override
        public Optional<SimpleLock> extend(Duration lockAtMostFor, Duration lockAtLeastFor) {
          Optional<SimpleLock> next = lock.extend(lockAtMostFor, lockAtLeastFor);
          next.ifPresent(ignored -> extended.incrementAndGet());
          return next.map(Counting.this::counted);
        }
      };
    }
  }

  public static class Jobs {
    static final AtomicInteger runs = new AtomicInteger();
    final AtomicInteger ticks = new AtomicInteger();

    @Scheduled(fixedRate = 20)
    @SchedulerLock(name = "report", lockAtMostFor = "PT40S", lockAtLeastFor = "PT30S")
    public void report() {
      runs.incrementAndGet();
    }

    @Scheduled(fixedRate = 20)
    public void tick() {
      ticks.incrementAndGet();
    }

    public int ticks() {
      return ticks.get();
    }
  }

  @Configuration(proxyBeanMethods = false)
  @EnableScheduling
  @EnableSchedulerLock(defaultLockAtMostFor = "PT40S")
  static class ScheduledApp {
    @Bean
    Jobs jobs() {
      return new Jobs();
    }
  }
}
