package dev.redlock.spring;

import static dev.redlock.spring.SpringFleets.HANG_GUARD;
import static dev.redlock.spring.SpringFleets.eventually;
import static dev.redlock.spring.SpringFleets.runner;
import static dev.redlock.spring.SpringFleets.steal;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.redlock.core.LockLostException;
import dev.redlock.core.LockNotAcquiredException;
import dev.redlock.testing.RedisFleet;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.springframework.boot.test.context.assertj.AssertableApplicationContext;
import org.springframework.boot.test.context.runner.ApplicationContextRunner;
import org.springframework.context.annotation.Bean;
import org.springframework.context.annotation.Configuration;

/**
 * {@code @Redlocked} on blocking and future-returning methods, in two application contexts (two
 * "instances" of an application) over the same masters.
 */
final class RedlockedTest {
  private static RedisFleet fleet;
  private static ExecutorService callers;

  @BeforeAll
  static void start() {
    fleet = RedisFleet.start(3);
    callers = Executors.newCachedThreadPool();
  }

  @AfterAll
  static void stop() {
    callers.shutdownNow();
    fleet.close();
  }

  @AfterEach
  void noKeysLeft() {
    eventually("no keys left on the masters", () -> fleet.keyCount() == 0);
    fleet.flushAll();
  }

  private static ApplicationContextRunner app() {
    return runner(fleet)
        .withUserConfiguration(App.class)
        .withPropertyValues("orders.lease=2s", "redlock.restart-guard=10s");
  }

  /** Runs {@code body} with two contexts of the same application, both started. */
  private static void twoInstances(TwoContexts body) {
    app().run(one -> app().run(two -> body.run(started(one).getBean(Orders.class), started(two).getBean(Orders.class))));
  }

  private interface TwoContexts {
    void run(Orders one, Orders two) throws Exception;
  }

  private static AssertableApplicationContext started(AssertableApplicationContext context) {
    if (context.getStartupFailure() != null) {
      throw new AssertionError("the context did not start", context.getStartupFailure());
    }
    SpringFleets.warm(context.getBean(dev.redlock.java.AsyncRedlock.class));
    return context;
  }

  @Test
  void blocking_excludesCallersOfAnotherInstance_perKey() {
    twoInstances(
        (one, two) -> {
          CountDownLatch entered = new CountDownLatch(1);
          CountDownLatch leave = new CountDownLatch(1);
          Future<Integer> holder = callers.submit(() -> one.charge(new Order(1), entered, leave));
          assertTrue(entered.await(HANG_GUARD.toSeconds(), TimeUnit.SECONDS));

          LockNotAcquiredException refused = assertThrows(LockNotAcquiredException.class, () -> two.tryCharge(new Order(1)));
          assertTrue(refused.isContended());
          assertEquals("charged 2", two.tryCharge(new Order(2))); // another key: not excluded

          leave.countDown();
          assertEquals(1, holder.get(HANG_GUARD.toSeconds(), TimeUnit.SECONDS));
          assertEquals("charged 1", two.tryCharge(new Order(1)));
        });
  }

  @Test
  void blocking_concurrentCallersOfTwoInstances_neverOverlap() {
    twoInstances(
        (one, two) -> {
          Counter counter = new Counter();
          List<Future<?>> calls = new ArrayList<>();
          for (int t = 0; t < 8; t++) {
            Orders orders = t % 2 == 0 ? one : two;
            calls.add(callers.submit(() -> {
              for (int i = 0; i < 5; i++) {
                orders.count("busy", counter);
              }
              return null;
            }));
          }
          for (Future<?> call : calls) {
            call.get(60, TimeUnit.SECONDS);
          }
          assertEquals(40, counter.total.get());
          assertEquals(1, counter.maxInside.get());
        });
  }

  @Test
  void blocking_lossInterruptsTheMethod_andTheCallerGetsLockLostException() {
    twoInstances(
        (one, two) -> {
          CountDownLatch entered = new CountDownLatch(1);
          AtomicBoolean interruptedAfter = new AtomicBoolean(true);
          Future<Throwable> call = callers.submit(() -> {
            try {
              one.sleepUntilInterrupted("nightly", entered);
              return null;
            } catch (Throwable t) {
              interruptedAfter.set(Thread.currentThread().isInterrupted());
              return t;
            }
          });
          assertTrue(entered.await(HANG_GUARD.toSeconds(), TimeUnit.SECONDS));
          steal(fleet, "nightly:job");

          Throwable thrown = call.get(HANG_GUARD.toSeconds(), TimeUnit.SECONDS);
          LockLostException loss = assertInstanceOf(LockLostException.class, thrown);
          assertEquals(LockLostException.Reason.NOT_HELD, loss.reason());
          assertEquals(1, loss.getSuppressed().length);
          assertInstanceOf(InterruptedException.class, loss.getSuppressed()[0]);
          assertFalse(interruptedAfter.get(), "the interrupt the library made is cleared");
          // The other instance gets the lock at once.
          assertEquals("charged 5", two.tryCharge(new Order(5)));
        });
  }

  @Test
  void lease_isReachableInsideTheMethod_withItsFencingToken() {
    twoInstances(
        (one, two) -> {
          long first = one.fenced("ledger");
          long second = two.fenced("ledger");
          assertTrue(second > first, second + " > " + first);
          assertTrue(RedlockedLease.find().isEmpty());
          assertThrows(IllegalStateException.class, RedlockedLease::current);
        });
    fleet.flushAll(); // fencing counters have no expiry, by design
  }

  @Test
  void stage_isHeldUntilItCompletes_acrossInstances() {
    twoInstances(
        (one, two) -> {
          CompletableFuture<String> pending = new CompletableFuture<>();
          CompletableFuture<String> called = new CompletableFuture<>();
          CompletableFuture<String> result = one.stage("report", pending, called);
          called.get(HANG_GUARD.toSeconds(), TimeUnit.SECONDS);

          ExecutionException refused =
              assertThrows(ExecutionException.class, () -> two.tryStage("report").toCompletableFuture().get(HANG_GUARD.toSeconds(), TimeUnit.SECONDS));
          assertInstanceOf(LockNotAcquiredException.class, refused.getCause());

          pending.complete("done");
          assertEquals("done", result.get(HANG_GUARD.toSeconds(), TimeUnit.SECONDS));
          assertEquals("ran report", two.tryStage("report").toCompletableFuture().get(HANG_GUARD.toSeconds(), TimeUnit.SECONDS));
        });
  }

  @Test
  void stage_lossCancelsTheStage_andFailsTheCallersFuture() {
    twoInstances(
        (one, two) -> {
          CompletableFuture<String> pending = new CompletableFuture<>();
          CompletableFuture<String> called = new CompletableFuture<>();
          CompletableFuture<String> result = one.stage("export", pending, called);
          assertTrue(called.get(HANG_GUARD.toSeconds(), TimeUnit.SECONDS).startsWith("lease "));
          steal(fleet, "stage:export");

          ExecutionException lost = assertThrows(ExecutionException.class, () -> result.get(HANG_GUARD.toSeconds(), TimeUnit.SECONDS));
          assertEquals(LockLostException.Reason.NOT_HELD, assertInstanceOf(LockLostException.class, lost.getCause()).reason());
          assertTrue(pending.isCancelled());
        });
  }

  @Test
  void stage_cancelledByTheCaller_cancelsTheMethodsStage_andReleases() {
    twoInstances(
        (one, two) -> {
          CompletableFuture<String> pending = new CompletableFuture<>();
          CompletableFuture<String> called = new CompletableFuture<>();
          CompletableFuture<String> result = one.stage("cancelled", pending, called);
          called.get(HANG_GUARD.toSeconds(), TimeUnit.SECONDS);
          result.cancel(true);
          eventually("the method's stage is cancelled", pending::isCancelled);
          eventually("the lock is released", () -> fleet.keyCount() == 0);
          assertEquals("ran cancelled", two.tryStage("cancelled").toCompletableFuture().get(HANG_GUARD.toSeconds(), TimeUnit.SECONDS));
        });
  }

  @Test
  void unsupportedReturnType_failsAtTheCall() {
    twoInstances(
        (one, two) -> {
          IllegalStateException refused = assertThrows(IllegalStateException.class, one::unsupported);
          assertTrue(refused.getMessage().contains("java.util.concurrent.Future"), refused.getMessage());
        });
  }

  @Test
  void transaction_commitsWhileTheLockIsHeld() {
    runner(fleet)
        .withUserConfiguration(Transactional.class)
        .run(
            context -> {
              Payments payments = started(context).getBean(Payments.class);
              payments.pay("p-1");
              Transactions transactions = context.getBean(Transactions.class);
              assertEquals(List.of("commit under [payments:p-1], valid"), transactions.commits);
            });
  }

  /** A transaction manager that records, at each commit, the lease the committing thread holds. */
  static final class Transactions extends org.springframework.transaction.support.AbstractPlatformTransactionManager {
    private static final long serialVersionUID = 1L;
    final List<String> commits = new java.util.concurrent.CopyOnWriteArrayList<>();

    @Override
    protected Object doGetTransaction() {
      return new Object();
    }

    @Override
    protected void doBegin(Object transaction, org.springframework.transaction.TransactionDefinition definition) {}

    @Override
    protected void doCommit(org.springframework.transaction.support.DefaultTransactionStatus status) {
      commits.add(
          RedlockedLease.find()
              .map(lease -> "commit under " + lease.resources() + (lease.isValid() ? ", valid" : ", lost"))
              .orElse("commit without the lock"));
    }

    @Override
    protected void doRollback(org.springframework.transaction.support.DefaultTransactionStatus status) {}
  }

  public static class Payments {
    @Redlocked("payments:#{#id}")
    @org.springframework.transaction.annotation.Transactional
    public void pay(String id) {}
  }

  @Configuration(proxyBeanMethods = false)
  @org.springframework.transaction.annotation.EnableTransactionManagement
  static class Transactional {
    @Bean
    Transactions transactionManager() {
      return new Transactions();
    }

    @Bean
    Payments payments() {
      return new Payments();
    }
  }

  /** What SpEL keys see: a bean with a getter, as in the README. */
  public static final class Order {
    private final int id;

    Order(int id) {
      this.id = id;
    }

    public int getId() {
      return id;
    }
  }

  static final class Counter {
    final AtomicInteger inside = new AtomicInteger();
    final AtomicInteger maxInside = new AtomicInteger();
    final AtomicInteger total = new AtomicInteger();
  }

  /** The annotated bean; one per context. */
  public static class Orders {
    @Redlocked("orders:#{#order.id}")
    public int charge(Order order, CountDownLatch entered, CountDownLatch leave) throws InterruptedException {
      entered.countDown();
      assertTrue(leave.await(HANG_GUARD.toSeconds(), TimeUnit.SECONDS));
      return order.getId();
    }

    @Redlocked(value = "orders:#{#order.id}", waitTime = "0s")
    public String tryCharge(Order order) {
      return "charged " + order.getId();
    }

    @Redlocked(value = "#{#key}", leaseTime = "${orders.lease}")
    public void count(String key, Counter counter) throws InterruptedException {
      int now = counter.inside.incrementAndGet();
      counter.maxInside.accumulateAndGet(now, Math::max);
      Thread.sleep(1); // gives an overlapping caller a chance to show up
      counter.inside.decrementAndGet();
      counter.total.incrementAndGet();
    }

    @Redlocked("#{#p0}:job")
    public void sleepUntilInterrupted(String name, CountDownLatch entered) throws InterruptedException {
      entered.countDown();
      Thread.sleep(HANG_GUARD.toMillis() * 3);
    }

    @Redlocked(value = "fenced:#{#name}", fencing = true)
    public long fenced(String name) {
      return RedlockedLease.current().fencingToken().orElseThrow();
    }

    @Redlocked("stage:#{#key}")
    public CompletableFuture<String> stage(String key, CompletableFuture<String> result, CompletableFuture<String> called) {
      called.complete("lease " + RedlockedLease.current().resources());
      return result;
    }

    @Redlocked(value = "stage:#{#key}", waitTime = "0s")
    public CompletionStage<String> tryStage(String key) {
      return CompletableFuture.completedFuture("ran " + key);
    }

    @Redlocked("unsupported")
    public Future<String> unsupported() {
      return CompletableFuture.completedFuture("never");
    }
  }

  @Configuration(proxyBeanMethods = false)
  static class App {
    @Bean
    Orders orders() {
      return new Orders();
    }
  }

}
