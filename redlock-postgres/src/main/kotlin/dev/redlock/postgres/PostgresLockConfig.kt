@file:OptIn(InternalRedlockApi::class)

package dev.redlock.postgres

import dev.redlock.core.RedlockConfig
import dev.redlock.core.RedlockMetrics
import dev.redlock.coroutines.InternalRedlockApi
import dev.redlock.coroutines.spi.BackendSettings
import java.time.Duration
import java.util.Objects
import javax.sql.DataSource

/**
 * The settings of [PostgresLocks]: where the locks live (a JDBC [DataSource] of a PostgreSQL
 * database) and the same lease settings as `RedlockConfig`. Immutable; made with [builder].
 *
 * ```java
 * PostgresLockConfig config = PostgresLockConfig.builder(dataSource)
 *     .leaseTime(Duration.ofSeconds(30))
 *     .fencing(true)
 *     .build();
 * ```
 *
 * ## The DataSource
 * Each held lease keeps one connection of the `DataSource` to itself until it is released (session
 * advisory locks belong to a session); the locks keep one more for `LISTEN` all along,
 * and a few idle ones ready for the next attempts (two at first, more under bursts: enough for the
 * attempts running at once plus two, up to 32 or twice [concurrency]): size a pool for the leases
 * held at once plus [concurrency] and a few. Connections must reach PostgreSQL directly, or
 * through a pooler in session mode: a pooler in transaction or statement mode (PgBouncer's
 * `pool_mode = transaction`) hands each transaction to another server session, which breaks session
 * locks; [PostgresLocks.create] checks for it and refuses such a `DataSource`. Set the data
 * source's connect timeout (pgjdbc's `connectTimeout`, HikariCP's `connectionTimeout`): getting a
 * connection is the one step the library cannot bound itself. The locks never close the
 * `DataSource`.
 */
public class PostgresLockConfig private constructor(builder: Builder) {
    /** The data source the locks take their sessions from. `dataSource()` from Java. */
    public val dataSource: DataSource = builder.dataSource
        @JvmName("dataSource") get

    /** The default lease time of a lock. `leaseTime()` from Java. */
    public val leaseTime: Duration = builder.leaseTime
        @JvmName("leaseTime") get

    /** The default time to wait for a lock. `waitTime()` from Java. */
    public val waitTime: Duration = builder.waitTime
        @JvmName("waitTime") get

    /** The pause between attempts when no release notice comes (jittered). `retryDelay()` from Java. */
    public val retryDelay: Duration = builder.retryDelay
        @JvmName("retryDelay") get

    /** The bound on each database operation, or null for the default (5 % of the lease time, at least 20 ms). `nodeTimeout()` from Java. */
    public val nodeTimeout: Duration? = builder.nodeTimeout
        @JvmName("nodeTimeout") get

    /** Whether mutexes and write locks carry a fencing token unless a call says otherwise. `fencing()` from Java. */
    public val fencing: Boolean = builder.fencing
        @JvmName("fencing") get

    /** Put in front of every resource name to make its lock key. `keyPrefix()` from Java. */
    public val keyPrefix: String = builder.keyPrefix
        @JvmName("keyPrefix") get

    /** The table fencing counters are kept in, optionally schema-qualified. `fencingTable()` from Java. */
    public val fencingTable: String = builder.fencingTable
        @JvmName("fencingTable") get

    /** The `LISTEN/NOTIFY` channel release notices go on. `notifyChannel()` from Java. */
    public val notifyChannel: String = builder.notifyChannel
        @JvmName("notifyChannel") get

    /** The database's name in messages and metrics, or null to derive it from the data source. `name()` from Java. */
    public val name: String? = builder.name
        @JvmName("name") get

    /** Where measurements go. `metrics()` from Java. */
    public val metrics: RedlockMetrics = builder.metrics
        @JvmName("metrics") get

    /** How many database calls of different leases may run at once. `concurrency()` from Java. */
    public val concurrency: Int = builder.concurrency
        @JvmName("concurrency") get

    internal val settings: BackendSettings =
        BackendSettings(leaseTime, waitTime, retryDelay, nodeTimeout, fencing, keyPrefix, metrics)

    /** Describes the settings, without secrets. */
    override fun toString(): String =
        "PostgresLockConfig(${name ?: dataSource.javaClass.simpleName}, leaseTime=$leaseTime, waitTime=$waitTime, retryDelay=$retryDelay, " +
            "nodeTimeout=${nodeTimeout ?: "derived"}, fencing=$fencing, keyPrefix='$keyPrefix', fencingTable=$fencingTable, notifyChannel=$notifyChannel, " +
            "concurrency=$concurrency)"

    /**
     * Collects the settings; [build] validates them. Each setter returns this builder and states its
     * default. Not thread-safe.
     */
    public class Builder internal constructor(internal val dataSource: DataSource) {
        internal var leaseTime: Duration = RedlockConfig.DEFAULT_LEASE_TIME
        internal var waitTime: Duration = RedlockConfig.DEFAULT_WAIT_TIME
        internal var retryDelay: Duration = RedlockConfig.DEFAULT_RETRY_DELAY
        internal var nodeTimeout: Duration? = null
        internal var fencing: Boolean = false
        internal var keyPrefix: String = RedlockConfig.DEFAULT_KEY_PREFIX
        internal var fencingTable: String = DEFAULT_FENCING_TABLE
        internal var notifyChannel: String = DEFAULT_NOTIFY_CHANNEL
        internal var name: String? = null
        internal var metrics: RedlockMetrics = RedlockMetrics.NONE
        internal var concurrency: Int = DEFAULT_CONCURRENCY

        /** The default lease time of a lock; as `RedlockConfig`'s (default 10 s). */
        public fun leaseTime(leaseTime: Duration): Builder = apply { this.leaseTime = Objects.requireNonNull(leaseTime, "leaseTime") }

        /** The default time to wait for a lock; as `RedlockConfig`'s (default 10 s). */
        public fun waitTime(waitTime: Duration): Builder = apply { this.waitTime = Objects.requireNonNull(waitTime, "waitTime") }

        /**
         * The pause between attempts when no release notice comes, jittered between half and one and a
         * half times (default 200 ms). Releases wake waiters at once through `NOTIFY`; the pause matters
         * for a holder whose session ended without a release (its connection dropped, its process died).
         */
        public fun retryDelay(retryDelay: Duration): Builder = apply { this.retryDelay = Objects.requireNonNull(retryDelay, "retryDelay") }

        /**
         * The bound on each database operation (default: 5 % of the lease time, at least 20 ms); when
         * set, every lease time must be at least three times it. Statements are bounded by the
         * connection's network timeout; getting a connection is bounded by the data source's own.
         */
        public fun nodeTimeout(nodeTimeout: Duration?): Builder = apply { this.nodeTimeout = nodeTimeout }

        /**
         * Whether mutexes and write locks carry a fencing token unless a call says otherwise (default
         * false). Fencing numbers come from [fencingTable], created on first use when it does not exist.
         */
        public fun fencing(fencing: Boolean): Builder = apply { this.fencing = fencing }

        /** Put in front of every resource name to make its lock key (default `redlock:`); as `RedlockConfig`'s. */
        public fun keyPrefix(keyPrefix: String): Builder = apply { this.keyPrefix = Objects.requireNonNull(keyPrefix, "keyPrefix") }

        /**
         * The table that keeps fencing counters, as `table` or `schema.table` (default
         * `redlock_fence`). Created on first use of fencing as `CREATE TABLE <name> (name text PRIMARY
         * KEY, value bigint NOT NULL)` when it does not exist; a user who may not create it needs one
         * made by its owner, with `SELECT, INSERT, UPDATE` granted.
         */
        public fun fencingTable(table: String): Builder = apply { this.fencingTable = Objects.requireNonNull(table, "fencingTable") }

        /** The `LISTEN/NOTIFY` channel for release notices (default `redlock_release`); every process sharing locks must use the same. */
        public fun notifyChannel(channel: String): Builder = apply { this.notifyChannel = Objects.requireNonNull(channel, "notifyChannel") }

        /** The database's name in messages and metrics (default: host, port and database of a pgjdbc data source, else its class). */
        public fun name(name: String?): Builder = apply { this.name = name }

        /** Where measurements go (default none). */
        public fun metrics(metrics: RedlockMetrics): Builder = apply { this.metrics = Objects.requireNonNull(metrics, "metrics") }

        /**
         * How many database calls of different leases the locks run at once (default
         * [PostgresLockConfig.DEFAULT_CONCURRENCY], allowed 1 to [PostgresLockConfig.MAX_CONCURRENCY]). Every lease has a session of its own,
         * so PostgreSQL itself decides between attempts that run at the same time: callers on
         * different resources do not queue behind each other's round trips, and one slow statement
         * holds up only the leases that share its thread (resources are spread over the threads by a
         * hash of their name; the calls on one resource share a thread, in order). The calls of one
         * lease always run one at a time, in order. Each call running at
         * once uses a session of the data source (see the class documentation); 1 runs every call of
         * these locks one after another.
         */
        public fun concurrency(concurrency: Int): Builder = apply { this.concurrency = concurrency }

        /**
         * Validates the settings and returns the configuration.
         *
         * @throws IllegalArgumentException naming the setting, its value and the allowed range, for a
         *   duration out of range, a key prefix too long or holding NUL, a table or channel that is
         *   not a plain SQL identifier, or a concurrency out of range.
         */
        public fun build(): PostgresLockConfig {
            require(concurrency in 1..MAX_CONCURRENCY) { "concurrency must be between 1 and $MAX_CONCURRENCY, but was $concurrency" }
            require(fencingTable.matches(QUALIFIED_IDENTIFIER)) {
                "fencingTable expected to be a plain SQL identifier, optionally schema-qualified ([A-Za-z_][A-Za-z0-9_]*, up to 63 characters each), but was '$fencingTable'"
            }
            require(notifyChannel.matches(IDENTIFIER)) {
                "notifyChannel expected to be a plain SQL identifier ([A-Za-z_][A-Za-z0-9_]*, up to 63 characters), but was '$notifyChannel'"
            }
            require(name == null || name!!.isNotBlank()) { "name expected to be null or not blank, but was '$name'" }
            return PostgresLockConfig(this)
        }
    }

    /** Factories and defaults. */
    public companion object {
        /** The fencing table unless [Builder.fencingTable] says otherwise. */
        public const val DEFAULT_FENCING_TABLE: String = "redlock_fence"

        /** The release notice channel unless [Builder.notifyChannel] says otherwise. */
        public const val DEFAULT_NOTIFY_CHANNEL: String = "redlock_release"

        /** How many database calls run at once unless [Builder.concurrency] says otherwise. */
        public const val DEFAULT_CONCURRENCY: Int = 8

        /** The most database calls [Builder.concurrency] lets run at once. */
        public const val MAX_CONCURRENCY: Int = 64

        private val IDENTIFIER = Regex("[A-Za-z_][A-Za-z0-9_]{0,62}")
        private val QUALIFIED_IDENTIFIER = Regex("[A-Za-z_][A-Za-z0-9_]{0,62}(\\.[A-Za-z_][A-Za-z0-9_]{0,62})?")

        /** A builder over [dataSource], with the defaults each setter states. */
        @JvmStatic
        public fun builder(dataSource: DataSource): Builder = Builder(Objects.requireNonNull(dataSource, "dataSource"))
    }
}
