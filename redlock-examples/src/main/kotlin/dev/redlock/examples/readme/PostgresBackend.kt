// The README's PostgreSQL backend sample in Kotlin, compiled and run by ReadmeSamplesTest.
// README.md shows the region verbatim; change both together.
package dev.redlock.examples.readme

import dev.redlock.coroutines.DistributedLocks
import dev.redlock.postgres.PostgresLockConfig
import dev.redlock.postgres.PostgresLocks
import java.time.Duration
import javax.sql.DataSource

// region backends-postgres
// PostgreSQL session advisory locks, through the application's DataSource (one session per held lease):
fun postgresLocks(dataSource: DataSource): DistributedLocks =
    PostgresLocks.create(
        PostgresLockConfig.builder(dataSource)
            .leaseTime(Duration.ofSeconds(30))
            .fencing(true) // fencing tokens from a counter table, created on first use
            .build(),
    )
// endregion
