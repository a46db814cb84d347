package dev.redlock.java;

import static dev.redlock.java.Fleets.await;
import static dev.redlock.java.Fleets.failure;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.redlock.core.LockLostException;
import dev.redlock.core.LockNotAcquiredException;
import dev.redlock.core.MasterStatus;
import dev.redlock.coroutines.DistributedLocks;
import dev.redlock.file.FileLockConfig;
import dev.redlock.file.FileLocks;
import java.io.IOException;
import java.lang.reflect.Proxy;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Comparator;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * AsyncRedlock over another backend's locks, as a Java user of the file backend writes it: the
 * same calls as over Redis.
 */
@Timeout(value = 60, unit = TimeUnit.SECONDS)
final class AnyBackendTest {
  private Path directory;
  private AsyncRedlock first;
  private AsyncRedlock second;

  private AsyncRedlock open() {
    DistributedLocks files =
        FileLocks.create(
            FileLockConfig.builder(directory)
                .leaseTime(Duration.ofSeconds(2))
                .retryDelay(Duration.ofMillis(20))
                .build());
    return AsyncRedlock.create(files);
  }

  @BeforeEach
  void start() throws IOException {
    directory = Files.createTempDirectory("redlock-facade-files");
    first = open();
    second = open();
  }

  @AfterEach
  void stop() throws IOException {
    try {
      first.close();
      second.close();
    } finally {
      try (Stream<Path> files = Files.walk(directory)) {
        files.sorted(Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
      }
    }
  }

  @Test
  void withLock_overFiles_excludesTheOtherInstanceUntilTheActionCompletes() {
    CompletableFuture<String> gate = new CompletableFuture<>();
    CompletableFuture<String> held = first.withLock("orders-42", lease -> gate);
    assertEquals(Optional.empty(), await(second.tryAcquire("orders-42")));
    gate.complete("charged");
    assertEquals("charged", await(held));
    LockLease lease = await(second.acquire("orders-42"));
    assertTrue(lease.isValid());
    await(lease.release());
  }

  @Test
  void withLockBlocking_overFiles_runsOneSectionAtATime() throws InterruptedException {
    AtomicInteger inside = new AtomicInteger();
    AtomicInteger most = new AtomicInteger();
    // Four threads of their own: the common pool may have a single thread on a small machine,
    // which would run the sections one after the other whatever the lock does.
    java.util.concurrent.ExecutorService threads = java.util.concurrent.Executors.newFixedThreadPool(4);
    try {
      List<CompletableFuture<Integer>> sections =
          Stream.of(first, second, first, second)
              .map(locks -> CompletableFuture.supplyAsync(() -> countInside(locks, inside, most), threads))
              .toList();
      sections.forEach(Fleets::await);
    } finally {
      threads.shutdownNow();
      assertTrue(threads.awaitTermination(10, TimeUnit.SECONDS));
    }
    assertEquals(1, most.get());
  }

  private static int countInside(AsyncRedlock locks, AtomicInteger inside, AtomicInteger most) {
    try {
      return locks.withLockBlocking(
          "counter",
          lease -> {
            most.accumulateAndGet(inside.incrementAndGet(), Math::max);
            java.util.concurrent.locks.LockSupport.parkNanos(20_000_000L);
            return inside.decrementAndGet();
          });
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new IllegalStateException(e);
    }
  }

  @Test
  void sharedLocks_overFiles_readersShareAndPermitsAreCounted() {
    LockLease reader = await(first.acquireReadLock("catalog"));
    LockLease other = await(second.acquireReadLock("catalog"));
    assertEquals(Optional.empty(), await(second.tryAcquireWriteLock("catalog")));
    await(reader.release());
    await(other.release());
    LockLease permit1 = await(first.acquirePermit("pool", 2));
    LockLease permit2 = await(second.acquirePermit("pool", 2));
    assertEquals(Optional.empty(), await(first.tryAcquirePermit("pool", 2)));
    await(permit1.release());
    await(permit2.release());
  }

  @Test
  void acquire_overFiles_failsWithTheSameExceptionsAsOverRedis() {
    LockLease held = await(first.acquire("busy"));
    LockNotAcquiredException e =
        failure(
            second.acquire(LockOptions.builder("busy").waitTime(Duration.ofMillis(100)).build()),
            LockNotAcquiredException.class);
    assertTrue(e.isContended());
    await(held.release());
  }

  @Test
  void lost_overFiles_completesWhenTheLockFileIsDeleted() throws IOException {
    LockLease lease =
        await(first.acquire(LockOptions.builder("doomed").leaseTime(Duration.ofMillis(600)).build()));
    Files.delete(directory.resolve("doomed.lock"));
    LockLostException loss = failure(lease.lost(), LockLostException.class);
    assertEquals(LockLostException.Reason.NOT_HELD, loss.reason());
    assertTrue(loss.getMessage().contains("the lock backend file:"), loss.getMessage());
    assertFalse(lease.isValid());
  }

  @Test
  void checkMasters_overFiles_reportsTheDirectory() {
    List<MasterStatus> status = await(first.checkMasters());
    assertEquals(1, status.size());
    assertEquals(MasterStatus.State.UP, status.get(0).state());
    assertTrue(status.get(0).master().contains(directory.getFileName().toString()));
  }

  @Test
  void config_overFiles_isUnsupportedAndSaysWhy() {
    UnsupportedOperationException e =
        assertThrows(UnsupportedOperationException.class, () -> first.config());
    assertTrue(e.getMessage().contains("no RedlockConfig"), e.getMessage());
  }

  @Test
  void close_releasesWhatTheBackendHeld() {
    AsyncRedlock third = open();
    await(third.acquire("closing"));
    third.close();
    await(await(second.acquire("closing")).release());
  }

  @Test
  void create_withLocksFromElsewhere_isRefusedNamingWhy() {
    DistributedLocks foreign =
        (DistributedLocks)
            Proxy.newProxyInstance(
                getClass().getClassLoader(),
                new Class<?>[] {DistributedLocks.class},
                (proxy, method, args) -> {
                  throw new UnsupportedOperationException(method.getName());
                });
    IllegalArgumentException e =
        assertThrows(IllegalArgumentException.class, () -> AsyncRedlock.create(foreign));
    assertTrue(e.getMessage().contains("not one of the Redlock library's DistributedLocks"), e.getMessage());
    assertThrows(NullPointerException.class, () -> AsyncRedlock.create((DistributedLocks) null));
  }

  @Test
  void lockLease_overFiles_isLostWithReasonNotHeld() throws IOException {
    CompletableFuture<Void> forever = new CompletableFuture<>();
    CompletableFuture<Void> section =
        first.withLock(
            LockOptions.builder("vanishing").leaseTime(Duration.ofMillis(600)).build(),
            lease -> {
              try {
                Files.delete(directory.resolve("vanishing.lock"));
              } catch (IOException e) {
                throw new java.io.UncheckedIOException(e);
              }
              return forever;
            });
    LockLostException e = failure(section, LockLostException.class);
    assertEquals(LockLostException.Reason.NOT_HELD, e.reason());
    assertTrue(forever.isCancelled());
  }
}
