package dev.redlock.postgres.internal

import dev.redlock.core.MasterFailureException
import java.sql.Connection
import java.sql.SQLException
import java.util.concurrent.ConcurrentLinkedDeque
import java.util.concurrent.Executors
import java.util.concurrent.atomic.AtomicBoolean
import java.util.concurrent.ThreadLocalRandom
import javax.sql.DataSource

/** What a hold takes: a mutex, either side of a reader-writer lock, a semaphore permit. */
internal enum class HoldMode { MUTEX, READ, WRITE, PERMIT }

/** The answer to one attempt. */
internal sealed class Attempt {
    class Granted(val fence: Long?) : Attempt()

    object Refused : Attempt()

    class PermitsDiffer(val holdersPermits: Int) : Attempt()
}

/**
 * PostgreSQL session advisory locks, one session per held lease.
 *
 * ## Threads
 * Calls for different tokens may run at the same time (the node runs up to [concurrency] at once,
 * each lock's calls, and so each token's, on one thread, in order): one token's calls never overlap, so a hold's
 * connection is only ever used by one thread at a time, and the server arbitrates between the
 * sessions of different attempts. What the store shares between tokens is safe for that: the holds
 * (a concurrent map; an entry is only added, changed or removed by its token's calls), the spare
 * sessions (a concurrent deque, its target an atomic), the fencing table check (done once, under a
 * lock), the session pids (a synchronized map). [lostHolds] and [probe] may run beside any other
 * call; [close] from any thread, after which a grant is refused and its session closed.
 *
 * ## Sessions
 * Advisory locks belong to a session and are re-entrant within it, so two holders never share
 * one: every hold has a connection of the [dataSource] to itself, from the grant until the release
 * (idle connections, their locks all released, are kept for the next attempts and topped up in
 * the background: two at first; each time an attempt found none, twice as many, and at least two
 * more than the attempts running at that moment, up to [maxSpares]; so that an attempt rarely
 * waits for a new session, which takes a TCP connection, a SCRAM exchange and a new server process). A hold ends when its session
 * ends: the connection dropping, `pg_terminate_backend`, a server restart. On PostgreSQL 14 and
 * later the holding session carries `idle_session_timeout` equal to the lease time, so the server
 * itself ends a hold whose holder stopped renewing it (a vanished machine, a frozen process), as
 * Redis lets a key expire; renewals are statements on that session, which restart its idle clock.
 *
 * ## Statements
 * Every statement runs in autocommit with the connection's network timeout set to the call's
 * bound (`Connection.setNetworkTimeout`), so no call waits longer on a server that stopped
 * answering; a connection that timed out is closed, which ends its session and with it its locks.
 */
internal class AdvisoryStore(
    private val dataSource: DataSource,
    private val node: String,
    private val fenceTable: String,
    private val channel: String,
    /** How many calls may run at once (the node's stripes): the spare sessions grow to cover them. */
    private val concurrency: Int = 1,
) : AutoCloseable {

    private class Hold(
        val mode: HoldMode,
        val connection: Connection,
        /** How many advisory locks the session holds for the lease (the renewal check counts them). */
        val expected: Int,
        /** The session's backend pid, for [lostHolds]; null when it could not be read. */
        val pid: Int?,
    )

    /** The backend pid of each session this store opened, read once when it was opened. */
    private val sessionPids: MutableMap<Connection, Int> = java.util.Collections.synchronizedMap(java.util.WeakHashMap())

    /** The holds by token: an entry is added, changed and removed only by its token's calls. */
    private val holds = java.util.concurrent.ConcurrentHashMap<String, Hold>()

    /** Orders a grant's entry in [holds] against [close], so that close sees every hold or the grant sees the close. */
    private val closing = Any()

    /** Attempts running now (several at once with more than one stripe): a miss grows the spares to cover them. */
    private val attempting = java.util.concurrent.atomic.AtomicInteger()

    /** Open sessions holding nothing, ready for the next attempt; topped up by [filler] in the background. */
    private val spares = ConcurrentLinkedDeque<Connection>()
    private val filler =
        Executors.newSingleThreadExecutor { task -> Thread(task, "redlock-postgres-connect-$node").apply { isDaemon = true } }
    private val filling = AtomicBoolean(false)

    /** The most spares kept ready: 32, or twice [concurrency] when that is more. */
    private val maxSpares = maxOf(MAX_TARGET, 2 * concurrency)

    /** How many spares the filler keeps ready: grown (up to [maxSpares]) whenever an attempt found none. */
    private val target = java.util.concurrent.atomic.AtomicInteger(MIN_SPARES)

    @Volatile private var closed = false

    /** `server_version_num`, read from the first connection; 0 until then. */
    @Volatile private var serverVersion = 0
    @Volatile private var fenceTableReady = false
    private val fenceTableCheck = Any()

    /** How many leases are held now (for tests and close). */
    val heldCount: Int get() = holds.size

    /** The backend pid of the session holding [token]'s lease, or null (for tests). */
    fun sessionPid(token: String): Int? = holds[token]?.let { pidOf(it.connection) }

    // --- start-up ---

    /**
     * Connects once and checks what locking needs: the server answers, the credentials work, the
     * connection keeps its session between statements (a pooler in transaction mode does not), and,
     * with [fencing], the fencing table can be used. Returns an identity of the database: its
     * system identifier where the user may read it, and its name.
     */
    fun open(timeoutMillis: Long, fencing: Boolean): String {
        val c = borrow(timeoutMillis, "connect")
        try {
            checkSessionKept(c)
            if (fencing) ensureFenceTable(c)
            val id = identity(c)
            giveBack(c)
            return id
        } catch (e: SQLException) {
            discard(c)
            throw SqlFailures.classify(node, "checking the database", e)
        } catch (e: Throwable) {
            discard(c)
            throw e
        }
    }

    private fun identity(c: Connection): String {
        val system =
            try {
                c.createStatement().use { s ->
                    s.executeQuery("SELECT system_identifier::text FROM pg_control_system()").use { rs -> if (rs.next()) rs.getString(1) else null }
                }
            } catch (_: SQLException) {
                null // pg_control_system() may be reserved to superusers; the address stands in for it.
            }
        return c.createStatement().use { s ->
            s.executeQuery("SELECT coalesce(host(inet_server_addr()), 'local') || ':' || coalesce(inet_server_port(), 0) || '/' || current_database()").use { rs ->
                rs.next()
                if (system != null) "postgresql:$system/${rs.getString(1).substringAfter('/')}" else "postgresql:${rs.getString(1)}"
            }
        }
    }

    /**
     * Takes an advisory lock in one statement and looks for it from the next one on the same
     * connection: a pooler that hands each statement or transaction to another server session
     * (PgBouncer with `pool_mode = transaction` or `statement`) shows either another backend pid or
     * no lock, and session locks cannot work through it.
     */
    private fun checkSessionKept(c: Connection) {
        val probe = ThreadLocalRandom.current().nextLong()
        val firstPid =
            c.createStatement().use { s ->
                s.executeQuery("SELECT pg_backend_pid(), pg_try_advisory_lock($probe)").use { rs -> rs.next(); rs.getInt(1) }
            }
        val (secondPid, seen) =
            c.createStatement().use { s ->
                s.executeQuery(
                    "SELECT pg_backend_pid(), EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid() " +
                        "AND objsubid = 1 AND granted AND ((classid::bigint << 32) | objid::bigint) = $probe)"
                ).use { rs -> rs.next(); rs.getInt(1) to rs.getBoolean(2) }
            }
        c.createStatement().use { it.execute("SELECT pg_advisory_unlock_all()") }
        if (firstPid != secondPid || !seen) {
            throw MasterFailureException(
                node,
                MasterFailureException.Kind.PERMISSION,
                "the DataSource's connections do not keep one PostgreSQL session from one statement to the next " +
                    "(backend pid $firstPid, then $secondPid; the advisory lock taken by the first statement was " +
                    (if (seen) "seen" else "not seen") + " by the second). Session advisory locks cannot work through it: " +
                    "is this PgBouncer (or another pooler) with pool_mode = transaction or statement? Connect to PostgreSQL " +
                    "directly, or through a pooler in session mode",
                null,
            )
        }
    }

    // --- acquire ---

    /**
     * One attempt at [token]'s lease on [keys] (one key except for [HoldMode.MUTEX]), all or nothing,
     * never waiting for the lock. With [fencing], the grant carries a number larger than every earlier
     * one of any of the keys, from the fencing table.
     */
    fun acquire(mode: HoldMode, family: String, keys: List<String>, token: String, leaseMillis: Long, fencing: Boolean, permits: Int, timeoutMillis: Long): Attempt {
        attempting.incrementAndGet()
        try {
            return attempt(mode, family, keys, token, leaseMillis, fencing, permits, timeoutMillis)
        } finally {
            attempting.decrementAndGet()
        }
    }

    private fun attempt(mode: HoldMode, family: String, keys: List<String>, token: String, leaseMillis: Long, fencing: Boolean, permits: Int, timeoutMillis: Long): Attempt {
        holds.remove(token)?.let { drop(it, timeoutMillis) } // an earlier attempt of the same acquisition
        val c = borrow(timeoutMillis, "acquire")
        var held = false
        try {
            c.setNetworkTimeout(DIRECT, timeoutMillis.toInt().coerceAtLeast(1))
            val expected: Int
            when (mode) {
                HoldMode.PERMIT -> {
                    val marker = AdvisoryKeys.permitMarker(keys[0])
                    c.createStatement().use { s ->
                        s.executeQuery("SELECT pg_try_advisory_lock_shared($marker, $permits)${idle(leaseMillis)}").use { it.next() }
                    }
                    held = true
                    val other =
                        c.createStatement().use { s ->
                            s.executeQuery(
                                "SELECT min(objid::bigint) FROM pg_locks WHERE locktype = 'advisory' AND objsubid = 2 AND granted " +
                                    "AND database = (SELECT oid FROM pg_database WHERE datname = current_database()) " +
                                    "AND classid = ${marker.toLong() and 0xffffffffL} AND objid <> $permits"
                            ).use { rs -> rs.next(); rs.getLong(1).takeUnless { rs.wasNull() } }
                        }
                    if (other != null) {
                        unlockAll(c)
                        held = false
                        giveBack(c)
                        return Attempt.PermitsDiffer(other.toInt())
                    }
                    val start = ThreadLocalRandom.current().nextInt(permits)
                    val slots = (0 until permits).map { AdvisoryKeys.permitSlot(keys[0], (start + it) % permits) }
                    val slot =
                        c.prepareStatement("SELECT k FROM unnest(?::bigint[]) AS k WHERE pg_try_advisory_lock(k) LIMIT 1").use { ps ->
                            ps.setArray(1, c.createArrayOf("bigint", slots.toTypedArray()))
                            ps.executeQuery().use { rs -> if (rs.next()) rs.getLong(1) else null }
                        }
                    if (slot == null) {
                        unlockAll(c)
                        held = false
                        giveBack(c)
                        return Attempt.Refused
                    }
                    expected = 2
                }
                else -> {
                    val advisory = keys.map { AdvisoryKeys.lock(family, it) }.distinct()
                    val function = if (mode == HoldMode.READ) "pg_try_advisory_lock_shared" else "pg_try_advisory_lock"
                    val granted =
                        c.prepareStatement("SELECT bool_and($function(k))${idle(leaseMillis)} FROM unnest(?::bigint[]) AS k").use { ps ->
                            ps.setArray(1, c.createArrayOf("bigint", advisory.toTypedArray()))
                            ps.executeQuery().use { rs -> rs.next(); rs.getBoolean(1) }
                        }
                    held = true
                    if (!granted) {
                        unlockAll(c)
                        held = false
                        giveBack(c)
                        return Attempt.Refused
                    }
                    expected = advisory.size
                }
            }
            val fence = if (fencing) drawFence(c, family, keys) else null
            val kept = synchronized(closing) { if (closed) false else { holds[token] = Hold(mode, c, expected, sessionPids[c]); true } }
            if (!kept) {
                // Closed while this attempt ran: its session ends here, with what it took.
                discard(c)
                throw MasterFailureException(node, MasterFailureException.Kind.UNREACHABLE, "the lock backend is closed", null)
            }
            return Attempt.Granted(fence)
        } catch (e: SQLException) {
            // Closing the connection ends its session, and with it whatever this attempt took.
            discard(c)
            if (held && !SqlFailures.sessionGone(e) && e.sqlState == "42501") {
                throw SqlFailures.classify(node, "drawing a fencing number from table $fenceTable", e, fenceHint())
            }
            throw SqlFailures.classify(node, "acquire", e)
        } catch (e: Throwable) {
            discard(c)
            throw e
        }
    }

    /** `, set_config('idle_session_timeout', ...)` where the server has it (14 and later). */
    private fun idle(leaseMillis: Long): String =
        if (serverVersion >= 140000 && leaseMillis > 0) ", set_config('idle_session_timeout', '${leaseMillis}ms', false)" else ""

    private fun drawFence(c: Connection, family: String, keys: List<String>): Long {
        ensureFenceTable(c)
        val names = keys.distinct().map { "$family:$it" }
        c.autoCommit = false
        try {
            val fence =
                c.prepareStatement(
                    "INSERT INTO $fenceTable (name, value) SELECT n, 1 FROM unnest(?::text[]) AS n " +
                        "ON CONFLICT (name) DO UPDATE SET value = $fenceTable.value + 1 RETURNING value"
                ).use { ps ->
                    ps.setArray(1, c.createArrayOf("text", names.toTypedArray()))
                    ps.executeQuery().use { rs -> var max = 0L; while (rs.next()) max = maxOf(max, rs.getLong(1)); max }
                }
            if (names.size > 1) {
                // Every resource of the lease remembers the largest, so no later holder of any of them gets less.
                c.prepareStatement("UPDATE $fenceTable SET value = ? WHERE name = ANY(?::text[]) AND value < ?").use { ps ->
                    ps.setLong(1, fence)
                    ps.setArray(2, c.createArrayOf("text", names.toTypedArray()))
                    ps.setLong(3, fence)
                    ps.executeUpdate()
                }
            }
            c.commit()
            return fence
        } catch (e: SQLException) {
            try {
                c.rollback()
            } catch (suppressed: SQLException) {
                e.addSuppressed(suppressed)
            }
            throw e
        } finally {
            c.autoCommit = true
        }
    }

    /**
     * Creates the fencing table if it does not exist. Checks first, so that a user without `CREATE`
     * on the schema can use a table an administrator made.
     */
    private fun ensureFenceTable(c: Connection) {
        if (fenceTableReady) return
        // Once, not by every attempt that runs at the same time: CREATE TABLE IF NOT EXISTS run by two
        // sessions at once can fail on the catalog's unique index.
        synchronized(fenceTableCheck) { if (!fenceTableReady) checkFenceTable(c) }
    }

    private fun checkFenceTable(c: Connection) {
        val exists =
            c.prepareStatement("SELECT to_regclass(?) IS NOT NULL").use { ps ->
                ps.setString(1, fenceTable)
                ps.executeQuery().use { rs -> rs.next(); rs.getBoolean(1) }
            }
        if (!exists) {
            try {
                c.createStatement().use { it.execute("CREATE TABLE IF NOT EXISTS $fenceTable (name text PRIMARY KEY, value bigint NOT NULL)") }
            } catch (e: SQLException) {
                // Another process created it at the same moment (unique_violation on the catalog, or duplicate_table): it exists.
                if (e.sqlState != "23505" && e.sqlState != "42P07") throw SqlFailures.classify(node, "creating the fencing table $fenceTable", e, fenceHint())
            }
        }
        // Reading and writing need SELECT, INSERT and UPDATE; ask now rather than at the first grant.
        val missing =
            c.prepareStatement(
                "SELECT array_to_string(ARRAY(SELECT p FROM unnest(ARRAY['SELECT', 'INSERT', 'UPDATE']) AS p " +
                    "WHERE NOT has_table_privilege(?, p)), ', ')"
            ).use { ps ->
                ps.setString(1, fenceTable)
                ps.executeQuery().use { rs -> rs.next(); rs.getString(1) }
            }
        if (missing.isNotEmpty()) {
            throw MasterFailureException(
                node,
                MasterFailureException.Kind.PERMISSION,
                "the fencing table $fenceTable exists, but user ${currentUser(c)} lacks $missing on it. ${fenceHint()}",
                null,
            )
        }
        fenceTableReady = true
    }

    private fun currentUser(c: Connection): String =
        c.createStatement().use { s -> s.executeQuery("SELECT current_user").use { rs -> rs.next(); rs.getString(1) } }

    private fun fenceHint(): String =
        "Fencing tokens need a table; have its owner run: CREATE TABLE $fenceTable (name text PRIMARY KEY, value bigint NOT NULL); " +
            "GRANT SELECT, INSERT, UPDATE ON $fenceTable TO <the locking user>; or turn fencing off"

    // --- extend, fence, release ---

    /**
     * Whether [token]'s lease is still held: its session is alive and holds every advisory lock it
     * took. With [leaseMillis] above 0 also restarts the session's idle clock for that long. A lease
     * found lost is dropped (its connection closed).
     */
    fun extend(token: String, leaseMillis: Long, timeoutMillis: Long): Boolean {
        val hold = holds[token] ?: return false
        val c = hold.connection
        return try {
            c.setNetworkTimeout(DIRECT, timeoutMillis.toInt().coerceAtLeast(1))
            val count =
                c.createStatement().use { s ->
                    s.executeQuery(
                        "SELECT count(*)${idle(leaseMillis)} FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid() AND granted"
                    ).use { rs -> rs.next(); rs.getInt(1) }
                }
            if (count == hold.expected) {
                true
            } else {
                holds.remove(token)
                discard(c)
                false
            }
        } catch (e: SQLException) {
            if (SqlFailures.sessionGone(e) && !SqlFailures.isTimeout(e)) {
                // The session ended: so did its locks. That is an answer, not a failure.
                holds.remove(token)
                discard(c)
                false
            } else {
                throw SqlFailures.classify(node, "extend", e)
            }
        }
    }

    /**
     * The tokens of the holds whose sessions are gone from the server (terminated, their connection
     * dropped), found by one statement over `pg_stat_activity` for all holds, on a spare session.
     * Changes nothing: the engine then checks those leases with [extend], which drops them.
     */
    fun lostHolds(timeoutMillis: Long): Set<String> {
        val tokensByPid = HashMap<Int, MutableList<String>>()
        for ((token, hold) in holds) hold.pid?.let { tokensByPid.getOrPut(it) { ArrayList(1) }.add(token) }
        if (tokensByPid.isEmpty()) return emptySet()
        val c = borrow(timeoutMillis, "loss check")
        try {
            c.setNetworkTimeout(DIRECT, timeoutMillis.toInt().coerceAtLeast(1))
            val gone = HashSet<String>()
            c.prepareStatement("SELECT p FROM unnest(?::int[]) AS p WHERE NOT EXISTS (SELECT 1 FROM pg_stat_activity a WHERE a.pid = p)").use { ps ->
                ps.setArray(1, c.createArrayOf("int4", tokensByPid.keys.toTypedArray()))
                ps.executeQuery().use { rs -> while (rs.next()) tokensByPid[rs.getInt(1)]?.let(gone::addAll) }
            }
            giveBack(c)
            return gone
        } catch (e: SQLException) {
            discard(c)
            throw SqlFailures.classify(node, "loss check", e)
        }
    }

    /** Whether [token]'s fenced lease is still held; its number is already in the fencing table. */
    fun confirmFence(token: String, timeoutMillis: Long): Boolean = extend(token, 0, timeoutMillis)

    /**
     * Gives up [token]'s hold, announcing [notice] for each of [noticeKeys] of [family] on the channel when not
     * null. Returns whether something was held. A session that cannot be asked is closed instead,
     * which ends its locks just as well (the notice is then lost; waiters retry after their pause).
     */
    fun release(token: String, family: String, noticeKeys: List<String>, notice: String?, timeoutMillis: Long): Boolean {
        val hold = holds.remove(token) ?: return false
        val c = hold.connection
        try {
            c.setNetworkTimeout(DIRECT, timeoutMillis.toInt().coerceAtLeast(1))
            if (notice == null) {
                unlockAll(c)
            } else {
                c.prepareStatement(
                    "SELECT pg_advisory_unlock_all(), (SELECT count(*) FROM (SELECT pg_notify(?, ? || k) FROM unnest(?::text[]) AS k) AS n)"
                ).use { ps ->
                    ps.setString(1, channel)
                    ps.setString(2, ReleaseNotices.payload(notice, family, ""))
                    ps.setArray(3, c.createArrayOf("text", noticeKeys.toTypedArray()))
                    ps.executeQuery().close()
                }
                resetIdle(c)
            }
            giveBack(c)
        } catch (_: SQLException) {
            discard(c)
        }
        return true
    }

    // --- probe and close ---

    /** A light health check: one statement on a spare connection. */
    fun probe(timeoutMillis: Long) {
        val c = borrow(timeoutMillis, "probe")
        try {
            c.setNetworkTimeout(DIRECT, timeoutMillis.toInt().coerceAtLeast(1))
            c.createStatement().use { it.execute("SELECT 1") }
            giveBack(c)
        } catch (e: SQLException) {
            discard(c)
            throw SqlFailures.classify(node, "probe", e)
        }
    }

    /** Ends every hold (by closing its connection: its session and its locks end) and the spares. */
    override fun close() {
        synchronized(closing) { closed = true }
        filler.shutdownNow()
        for (hold in holds.values) discard(hold.connection)
        holds.clear()
        while (true) discard(spares.poll() ?: break)
    }

    // --- connections ---

    /**
     * A spare connection, or a new one from the data source. Opening a session (a TCP connection, a
     * SCRAM exchange, a new server process) takes far longer than a lock statement, so spares are
     * topped up in the background and an attempt rarely waits for one.
     */
    private fun borrow(timeoutMillis: Long, what: String): Connection {
        try {
            while (true) {
                val c = spares.poll() ?: break
                if (!c.isClosed) return c
            }
            // None ready: keep more, at least enough for the attempts running now (several stripes) and two more.
            val running = attempting.get()
            target.updateAndGet { minOf(maxOf(it * 2, running + MIN_SPARES), maxSpares) }
            return try {
                newConnection(timeoutMillis)
            } catch (e: SQLException) {
                throw SqlFailures.classify(node, "$what: getting a connection from the DataSource", e)
            }
        } finally {
            refill()
        }
    }

    private fun newConnection(timeoutMillis: Long): Connection {
        val c = dataSource.connection
        try {
            c.autoCommit = true
            c.setNetworkTimeout(DIRECT, timeoutMillis.toInt().coerceAtLeast(1))
            c.createStatement().use { s ->
                s.executeQuery("SELECT current_setting('server_version_num'), pg_backend_pid()").use { rs ->
                    rs.next()
                    if (serverVersion == 0) serverVersion = rs.getString(1).toInt()
                    sessionPids[c] = rs.getInt(2)
                }
            }
        } catch (e: SQLException) {
            discard(c)
            throw e
        }
        return c
    }

    /** Opens spares on the background thread until [target] are ready; a failure leaves it to the next attempt. */
    private fun refill() {
        if (closed || spares.size >= target.get() || !filling.compareAndSet(false, true)) return
        try {
            filler.execute {
                var failed = false
                try {
                    while (!closed && spares.size < target.get()) {
                        val c = newConnection(FILL_TIMEOUT_MILLIS)
                        spares.add(c)
                        if (closed && spares.remove(c)) discard(c)
                    }
                } catch (_: SQLException) {
                    // The database cannot be reached now: the next attempt opens its own and reports why.
                    failed = true
                } finally {
                    filling.set(false)
                }
                // The target may have grown after the loop looked at it (an attempt found none meanwhile).
                if (!failed) refill()
            }
        } catch (_: java.util.concurrent.RejectedExecutionException) {
            filling.set(false)
        }
    }

    /** Keeps [c] for the next attempt (its locks all released), or closes it when enough are kept already. */
    private fun giveBack(c: Connection) {
        if (closed || spares.size >= target.get() + 2) {
            discard(c)
            return
        }
        spares.add(c)
        if (closed && spares.remove(c)) discard(c) // close drained the spares meanwhile
    }

    private fun unlockAll(c: Connection) {
        c.createStatement().use { it.execute("SELECT pg_advisory_unlock_all()") }
        resetIdle(c)
    }

    private fun resetIdle(c: Connection) {
        if (serverVersion >= 140000) c.createStatement().use { it.execute("SELECT set_config('idle_session_timeout', '0', false)") }
    }

    private fun drop(hold: Hold, timeoutMillis: Long) {
        try {
            hold.connection.setNetworkTimeout(DIRECT, timeoutMillis.toInt().coerceAtLeast(1))
            unlockAll(hold.connection)
            giveBack(hold.connection)
        } catch (_: SQLException) {
            discard(hold.connection)
        }
    }

    private fun pidOf(c: Connection): Int? =
        try {
            c.createStatement().use { s -> s.executeQuery("SELECT pg_backend_pid()").use { rs -> rs.next(); rs.getInt(1) } }
        } catch (_: SQLException) {
            null
        }

    internal companion object {
        private const val MIN_SPARES = 2
        private const val MAX_TARGET = 32
        private const val FILL_TIMEOUT_MILLIS = 10_000L

        /** `setNetworkTimeout` wants an executor; the driver does not use it for the timeout itself. */
        val DIRECT: java.util.concurrent.Executor = java.util.concurrent.Executor { it.run() }

        /**
         * Closes [c] without waiting for the server: a session whose connection is closed ends, and with
         * it every advisory lock it held. `abort` first, so that a connection to a server that stopped
         * answering does not block here; then `close` for pools that only return a connection on close.
         */
        fun discard(c: Connection) {
            try {
                c.abort(DIRECT)
            } catch (_: Throwable) {
                // Closing below is the fallback.
            }
            try {
                c.close()
            } catch (_: SQLException) {
                // Already broken: nothing more to free.
            }
        }
    }
}
