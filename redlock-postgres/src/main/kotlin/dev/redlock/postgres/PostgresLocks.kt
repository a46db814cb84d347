@file:OptIn(InternalRedlockApi::class)

package dev.redlock.postgres

import dev.redlock.core.MasterFailureException
import dev.redlock.coroutines.DistributedLocks
import dev.redlock.coroutines.InternalRedlockApi
import dev.redlock.coroutines.spi.distributedLocks
import dev.redlock.postgres.internal.AdvisoryStore
import dev.redlock.postgres.internal.PostgresNode
import dev.redlock.postgres.internal.ReleaseNotices
import java.time.Duration

/**
 * Locks, reader-writer locks and semaphores over a PostgreSQL database: the same
 * [DistributedLocks] as `Redlock`, kept as session advisory locks.
 *
 * ```kotlin
 * val locks: DistributedLocks = PostgresLocks.create(PostgresLockConfig.builder(dataSource).build())
 * locks.withLock("orders:42") { lease -> ship(order, lease.fencingToken) }
 * ```
 *
 * From Java, hand the result to `AsyncRedlock.create(locks)` for `CompletableFuture`s.
 *
 * ## What a lock is here
 * - A lease holds PostgreSQL advisory locks (`pg_try_advisory_lock`, the `_shared` form for readers)
 *   in a database session of its own, taken from the [PostgresLockConfig.dataSource] and kept until
 *   the release. Processes that use the same database and [PostgresLockConfig.keyPrefix] exclude each
 *   other, wherever they run.
 * - Names are hashed to 64-bit keys (SHA-256 of family and key). Two names with the same hash
 *   share one lock: safe, but they then wait for each other; with a few million names in use at once
 *   the chance of any collision stays below one in a million.
 * - Multi-resource locks are all or nothing. A semaphore with P permits is P advisory locks (one
 *   per permit); callers that use another number of permits for the same semaphore while it is held
 *   get an [IllegalArgumentException] naming both numbers.
 * - Fencing tokens come from a counter table ([PostgresLockConfig.fencingTable]), larger for every
 *   grant of a resource, and kept across server restarts.
 * - Writer priority is not supported: `writerPriority = true` is accepted and ignored, so a steady
 *   stream of readers can keep a writer waiting.
 * - Calls on different resources run at the same time, up to [PostgresLockConfig.concurrency]
 *   (default 8) database calls at once, each on its lease's own session; the calls on one resource
 *   (of any lease) run one at a time, in order.
 *
 * ## What "lost" means here
 * The session holding the lease ended: its connection dropped, an administrator ran
 * `pg_terminate_backend`, the server restarted. While it holds anything, the backend looks up all
 * holding sessions in `pg_stat_activity` every 250 ms (one statement), so such a loss cancels the
 * critical section with `LockLostException` within about that long; the renewal check (every third
 * of the lease time) would find it too. Or the lease's
 * validity ran out without a renewal, or the locks were closed. On PostgreSQL 14 and later the
 * holding session carries `idle_session_timeout` equal to the lease time, so the server itself
 * frees the locks of a holder that stopped renewing (a frozen process, a vanished machine), as a
 * Redis key expires; on older servers a vanished client's locks last until its TCP connection is
 * found dead.
 *
 * ## Waiting
 * A release sends `NOTIFY` on [PostgresLockConfig.notifyChannel]; waiters listen on one connection
 * per [DistributedLocks] (opened in the background when it is created) and try again at once. A holder whose session ended without a release sends
 * nothing: waiters then try again after the jittered retry delay.
 *
 * ## Poolers
 * Session advisory locks need the connection to keep one server session. PgBouncer (or any pooler)
 * in `transaction` or `statement` mode breaks that: [create] takes a lock in one statement and looks
 * for it from the next, and refuses a data source that shows another session. Use a direct
 * connection or a pooler in session mode.
 */
public object PostgresLocks {
    /**
     * Checks the database and returns locks over it; the caller owns them and closes them when done
     * (the data source is not closed).
     *
     * The check connects once: wrong credentials, a pooler in transaction mode, or (with
     * [PostgresLockConfig.fencing]) a fencing table that cannot be created or written are refused
     * here, naming what was wrong. A database that cannot be reached now is not: each lock call then
     * fails with `LockNotAcquiredException` naming the failure until it can.
     *
     * @throws MasterFailureException of kind AUTHENTICATION or PERMISSION for the problems above.
     */
    @JvmStatic
    public fun create(config: PostgresLockConfig): DistributedLocks {
        val name = config.name ?: nameOf(config.dataSource)
        val store = AdvisoryStore(config.dataSource, name, config.fencingTable, config.notifyChannel, config.concurrency)
        var serverId = name
        var opened = false
        try {
            serverId = store.open(CHECK_TIMEOUT.toMillis(), config.fencing)
            opened = true
        } catch (e: MasterFailureException) {
            if (e.kind().isPermanent) {
                store.close()
                throw e
            }
            // Unreachable for now: the engine opens it again before the first lock.
        }
        lateinit var node: PostgresNode
        val notices = ReleaseNotices(config.dataSource, name, config.notifyChannel) { family, key, notice -> node.heard(family, key, notice) }
        node = PostgresNode(name, serverId, store, notices, config.fencing, opened, config.concurrency)
        val locks = distributedLocks(node, config.settings)
        // Listening from the start, so that a waiter's first watch finds the channel ready.
        notices.start()
        return locks
    }

    private val CHECK_TIMEOUT: Duration = Duration.ofSeconds(10)

    private fun nameOf(dataSource: javax.sql.DataSource): String =
        (dataSource as? org.postgresql.ds.common.BaseDataSource)?.let { ds ->
            val host = ds.serverNames.firstOrNull() ?: "localhost"
            val port = ds.portNumbers?.firstOrNull()?.takeIf { it > 0 } ?: 5432
            "postgresql://$host:$port/${ds.databaseName ?: ""}"
        } ?: "postgresql (${dataSource.javaClass.name})"
}
