// The README's reader-writer lock and semaphore sample in Java, compiled and run by
// ReadmeSamplesTest. README.md shows the region verbatim; change both together.
package dev.redlock.examples.readme;

import dev.redlock.java.AsyncRedlock;
import dev.redlock.java.LockOptions;
import java.time.Duration;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.atomic.AtomicInteger;

/** Takes a read lock, the write lock and a semaphore permit, and counts the actions that ran. */
public final class JavaSharedLocks {
  /** How many times the read action ran. */
  public final AtomicInteger renders = new AtomicInteger();

  /** How many times the write action ran. */
  public final AtomicInteger rebuilds = new AtomicInteger();

  /** How many times the permit action ran. */
  public final AtomicInteger pdfs = new AtomicInteger();

  /**
   * Starts the three locked actions; each action's stage completes at once.
   *
   * @param redlock the locks' owner
   */
  public void sharedLocks(AsyncRedlock redlock) {
    // region shared-locks
    // each action returns a CompletionStage, as with withLock
    redlock.withReadLock("catalog", lease -> renderAsync());
    redlock.withWriteLock(LockOptions.builder("catalog").waitTime(Duration.ofSeconds(2)).build(), lease -> rebuildAsync());
    redlock.withPermit("pdf-workers", 4, lease -> renderPdfAsync());
    // endregion
  }

  private CompletionStage<Integer> renderAsync() {
    return CompletableFuture.completedFuture(renders.incrementAndGet());
  }

  private CompletionStage<Integer> rebuildAsync() {
    return CompletableFuture.completedFuture(rebuilds.incrementAndGet());
  }

  private CompletionStage<Integer> renderPdfAsync() {
    return CompletableFuture.completedFuture(pdfs.incrementAndGet());
  }
}
