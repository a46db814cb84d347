// The README's backends sample in Java, compiled and run by ReadmeSamplesTest. README.md shows the
// region verbatim; change both together.
package dev.redlock.examples.readme;

import dev.redlock.core.RedlockConfig;
import dev.redlock.file.FileLockConfig;
import dev.redlock.file.FileLocks;
import dev.redlock.java.AsyncRedlock;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.atomic.AtomicInteger;

/** The same Java code over Redis masters and over lock files. */
public final class JavaBackends {
  private JavaBackends() {}

  /**
   * Reserves one unit of {@code sku} from {@code stock} under its lock, once on Redis masters and
   * once on lock files, then closes both.
   *
   * @param masters the masters' URIs
   * @param directory the lock directory
   * @param sku the product
   * @param stock the units left, taken under the lock
   * @throws InterruptedException if interrupted while waiting for a lock
   */
  public static void reserveOnBoth(List<String> masters, Path directory, String sku, AtomicInteger stock)
      throws InterruptedException {
    // region backends-java
    AsyncRedlock onRedis = AsyncRedlock.create(RedlockConfig.builder().masters(masters).build());
    AsyncRedlock onFiles = AsyncRedlock.create(FileLocks.create(FileLockConfig.builder(directory).build()));
    for (AsyncRedlock locks : List.of(onRedis, onFiles)) {
      try (locks) {
        locks.withLockBlocking("stock-" + sku, lease -> stock.decrementAndGet()); // the same code on both
      }
    }
    // endregion
  }
}
