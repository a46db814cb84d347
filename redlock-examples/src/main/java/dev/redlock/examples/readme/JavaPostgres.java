// The README's PostgreSQL backend sample in Java, compiled and run by ReadmeSamplesTest. README.md
// shows the region verbatim; change both together.
package dev.redlock.examples.readme;

import dev.redlock.java.AsyncRedlock;
import dev.redlock.postgres.PostgresLockConfig;
import dev.redlock.postgres.PostgresLocks;
import java.util.concurrent.atomic.AtomicInteger;
import javax.sql.DataSource;

/** The same Java code as on Redis and files, over PostgreSQL. */
public final class JavaPostgres {
  private JavaPostgres() {}

  /**
   * Reserves one unit of {@code sku} from {@code stock} under its lock, kept in PostgreSQL.
   *
   * @param dataSource the application's data source
   * @param sku the product
   * @param stock the units left, taken under the lock
   * @throws InterruptedException if interrupted while waiting for the lock
   */
  public static void reserve(DataSource dataSource, String sku, AtomicInteger stock)
      throws InterruptedException {
    // region backends-postgres-java
    try (AsyncRedlock locks = AsyncRedlock.create(PostgresLocks.create(PostgresLockConfig.builder(dataSource).build()))) {
      locks.withLockBlocking("stock-" + sku, lease -> stock.decrementAndGet()); // the same code as on Redis
    }
    // endregion
  }
}
