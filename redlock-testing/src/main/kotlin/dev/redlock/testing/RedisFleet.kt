package dev.redlock.testing

import java.io.IOException
import java.net.SocketTimeoutException
import java.nio.file.Files
import java.nio.file.Path
import java.time.Duration
import java.util.concurrent.atomic.AtomicReferenceArray
import kotlin.concurrent.thread

/**
 * N local Redis masters, each a `redis-server` process on its own free loopback port, for tests,
 * demos and users' own tests of code that uses Redlock.
 *
 * ```kotlin
 * RedisFleet.start(3).use { fleet ->
 *     val config = RedlockConfig.builder().masters(fleet.uris()).build()
 *     // ...
 *     fleet.kill(0)        // one master crashes
 *     fleet.restart(0)     // and comes back empty, on the same port
 * }
 * ```
 *
 * Every master runs `redis-server --port P --bind 127.0.0.1 --save "" --appendonly no --daemonize no
 * --protected-mode no` in its own temporary directory, with its output in `redis.log` there. Masters
 * are indexed from 0 to [size] - 1; an index outside that range throws [IllegalArgumentException].
 *
 * The binary is, in order: the one given to [Builder.redisServer]; the environment variable
 * `REDLOCK_REDIS_SERVER`; `redis-server` on `PATH`; else the binary bundled in the
 * `com.github.codemonstur:embedded-redis` jar (Redis 6.2 for Linux and macOS on amd64/arm64),
 * extracted once per JVM to a temporary directory that is deleted when the JVM exits.
 *
 * [close] kills every process the fleet started and deletes its directories. A fleet that is never
 * closed is closed by a JVM shutdown hook, so no `redis-server` outlives the JVM unless the JVM
 * itself is killed with SIGKILL.
 *
 * Thread-safety: every method may be called from several threads at once. Lifecycle operations on
 * the same master ([kill], [pause], [resume], [restart]) run one at a time; [command] opens its own
 * connection per call, so commands never wait for each other.
 */
public class RedisFleet private constructor(
    private val masters: List<RedisMaster>,
    private val baseDir: Path,
    private val password: String?,
    private val commandTimeoutMillis: Int,
) : AutoCloseable {

    private val closeLock = Any()

    @Volatile private var closed = false

    /** The number of masters, fixed when the fleet starts; `size()` from Java. */
    public val size: Int
        @JvmName("size") get() = masters.size

    /**
     * The `redis_version` the masters report in `INFO server`, such as `"6.2.11"`.
     *
     * Read from master 0 when it last became ready; every master runs the same binary.
     * `serverVersion()` from Java.
     */
    public val serverVersion: String
        @JvmName("serverVersion") get() = masters.first().version

    /** The fleet's temporary directory, holding one directory per master; deleted by [close]. */
    internal val directory: Path
        get() = baseDir

    /**
     * The masters' URIs in index order, as `redis://127.0.0.1:PORT`, or
     * `redis://:PASSWORD@127.0.0.1:PORT` when the fleet has a password (percent-encoded).
     *
     * Ports never change, so the URIs stay valid across [kill] and [restart]; they can be passed
     * straight to `RedlockConfig.builder().masters(...)`.
     */
    public fun uris(): List<String> = masters.indices.map(::uri)

    /**
     * The URI of master [index], as in [uris].
     *
     * @throws IllegalArgumentException if [index] is not in `0 until size`.
     */
    public fun uri(index: Int): String {
        val auth = password?.let { ":${percentEncode(it)}@" } ?: ""
        return "redis://${auth}127.0.0.1:${port(index)}"
    }

    /**
     * The loopback port of master [index]; it stays the same across [kill] and [restart].
     *
     * @throws IllegalArgumentException if [index] is not in `0 until size`.
     */
    public fun port(index: Int): Int = master(index).port

    /**
     * Kills master [index] with SIGKILL and returns once its process is gone: a crash, with no
     * chance to reply or persist. Its keys are lost; its port stays reserved for [restart].
     *
     * Killing a master that is not running does nothing. A paused master is killed as well.
     *
     * @throws IllegalArgumentException if [index] is not in `0 until size`.
     * @throws IllegalStateException if the fleet is closed.
     * @throws RedisFleetException if the process is still alive 10 s after SIGKILL.
     */
    public fun kill(index: Int) {
        openMaster(index).kill()
    }

    /**
     * Freezes master [index] with SIGSTOP and returns once the process is stopped.
     *
     * A paused master still accepts TCP connections (the kernel does) but answers nothing, like a
     * master in a long GC pause or behind a network partition: commands sent to it time out, also
     * those sent with [command]. [keyCount] and [flushAll] skip paused masters. [resume] lets it
     * carry on, with its data and its clients' pending commands intact.
     *
     * @throws IllegalArgumentException if [index] is not in `0 until size`.
     * @throws IllegalStateException if the fleet is closed or the master is not running.
     * @throws RedisFleetException if the `kill` command fails.
     */
    public fun pause(index: Int) {
        openMaster(index).pause()
    }

    /**
     * Continues master [index] with SIGCONT and returns once it answers PING again.
     *
     * Resuming a master that is not paused only checks that it answers.
     *
     * @throws IllegalArgumentException if [index] is not in `0 until size`.
     * @throws IllegalStateException if the fleet is closed or the master is not running.
     * @throws RedisFleetException if the `kill` command fails or the master does not answer within 10 s.
     */
    public fun resume(index: Int) {
        openMaster(index).resume()
    }

    /**
     * Kills master [index] if it is running (paused or not), starts a new process on the same port
     * with empty data, and returns once it answers PING.
     *
     * The master's directory is emptied first, so even `serverArgs` that turn persistence on
     * cannot bring data back. Like a real crash, it comes back without the library's boot marker
     * ([BOOT_MARKER_KEY]), so Redlock's restart guard keeps its votes out for the guard period.
     *
     * @throws IllegalArgumentException if [index] is not in `0 until size`.
     * @throws IllegalStateException if the fleet is closed.
     * @throws RedisFleetException if the new process fails to start or to answer within 10 s (the
     *   message carries the tail of its log), or if the port stays taken by another process.
     */
    public fun restart(index: Int) {
        openMaster(index).restart()
    }

    /**
     * Whether the process of master [index] is alive; a paused master counts as running.
     *
     * Returns `false` after [kill] (until [restart]), after the process died by itself, and after [close].
     *
     * @throws IllegalArgumentException if [index] is not in `0 until size`.
     */
    public fun isRunning(index: Int): Boolean = master(index).isRunning

    /**
     * Sends one command to master [index] and returns its reply.
     *
     * The reply is a `String` (simple and bulk strings, decoded as UTF-8), a `Long` (integers), a
     * `List<Any?>` of such values (arrays), or `null` (nil). Each call opens its own connection
     * (authenticated when the fleet has a password) and closes it afterwards, so state such as
     * `SELECT` or `CLIENT SETNAME` does not carry over to the next call.
     *
     * The connection and the wait for the reply are each bounded by the command timeout (5 s unless
     * set with [Builder.commandTimeout]), so a paused master makes this throw rather than hang.
     *
     * @throws IllegalArgumentException if [index] is not in `0 until size` or [args] is empty.
     * @throws IllegalStateException if the fleet is closed.
     * @throws RedisFleetException with the server's message (such as `ERR unknown command`) if the
     *   reply, or an element of it, is an error reply; or if the master is not running, cannot be
     *   reached, or does not answer in time.
     */
    public fun command(index: Int, vararg args: String): Any? {
        require(args.isNotEmpty()) { "args expected to hold a command name, but was empty" }
        val master = openMaster(index)
        if (!master.isRunning) {
            throw RedisFleetException("${master.describe()} is not running (killed or exited); restart($index) starts it again")
        }
        val reply =
            try {
                RespConnection.call(master.port, password, commandTimeoutMillis, args.asList())
            } catch (e: SocketTimeoutException) {
                val hint = if (master.isPaused) " (it is paused)" else ""
                throw RedisFleetException(
                    "${master.describe()} did not answer ${args[0]} within $commandTimeoutMillis ms$hint",
                    e,
                )
            } catch (e: IOException) {
                throw RedisFleetException("${master.describe()}: ${args[0]} failed: $e", e)
            }
        return checkErrors(reply)
    }

    /**
     * The keys on master [index] that match the glob-style [pattern] (`KEYS pattern`), sorted.
     *
     * Meant for inspecting test data: `KEYS` walks the whole key space.
     *
     * @throws IllegalArgumentException if [index] is not in `0 until size`.
     * @throws IllegalStateException if the fleet is closed.
     * @throws RedisFleetException as [command] does.
     */
    @JvmOverloads
    public fun keys(index: Int, pattern: String = "*"): List<String> {
        val reply = command(index, "KEYS", pattern) as? List<*> ?: emptyList<Any?>()
        return reply.map { it.toString() }.filter { it != BOOT_MARKER_KEY }.sorted()
    }

    /**
     * The total number of keys (`DBSIZE`, database 0) on every master that is running and not paused.
     *
     * Handy after each test to check that nothing was left behind. Killed and paused masters count
     * as holding no keys.
     *
     * @throws IllegalStateException if the fleet is closed.
     * @throws RedisFleetException as [command] does.
     */
    public fun keyCount(): Int =
        masters.filter { it.isRunning && !it.isPaused }.sumOf {
            (command(it.index, "DBSIZE") as Long).toInt() - (command(it.index, "EXISTS", BOOT_MARKER_KEY) as Long).toInt()
        }

    /**
     * Deletes every key on every master that is running and not paused (`FLUSHALL`).
     *
     * Paused masters are skipped, since they cannot answer; resume them first to flush them too.
     *
     * @throws IllegalStateException if the fleet is closed.
     * @throws RedisFleetException as [command] does.
     */
    public fun flushAll() {
        for (master in masters) {
            if (master.isRunning && !master.isPaused) {
                command(master.index, "FLUSHALL")
                markNeverGranted(master.index)
            }
        }
    }

    /**
     * Marks master [index] for the library's restart guard as a master that has granted no lock
     * it could have forgotten: its boot marker ([BOOT_MARKER_KEY]) is dated a year back.
     */
    private fun markNeverGranted(index: Int) {
        command(
            index, "EVAL",
            "local t = redis.call('TIME') redis.call('SET', KEYS[1], string.format('%d', t[1] * 1000 - 31536000000))",
            "1", BOOT_MARKER_KEY,
        )
    }

    /**
     * The process ids of the masters whose processes are alive (paused ones included), in index order.
     *
     * Empty after [close]; tests use it to check that nothing outlives the fleet, for example with
     * `ProcessHandle.of(pid)`.
     */
    public fun pids(): List<Long> = masters.mapNotNull { it.pid() }

    /**
     * Kills every process this fleet started (paused ones too), waits until they are gone, and
     * deletes the fleet's temporary directories.
     *
     * Idempotent: later calls return at once. A call made while another thread is closing the fleet
     * returns when that close is done. After close, [uris], [port], [size] and [serverVersion] still
     * answer, [isRunning] is `false` and [pids] is empty; every other method throws
     * [IllegalStateException].
     *
     * @throws RedisFleetException if a process is still alive 10 s after SIGKILL (every other
     *   process is still killed and the directories still deleted).
     */
    override fun close() {
        synchronized(closeLock) {
            if (closed) return
            closed = true
            var failure: Throwable? = null
            // SIGKILL all first, then wait: the masters die in parallel.
            masters.forEach { it.destroy() }
            for (master in masters) {
                try {
                    master.awaitDestroyed()
                } catch (e: Throwable) {
                    failure?.addSuppressed(e) ?: run { failure = e }
                }
            }
            try {
                RedisMaster.deleteRecursively(baseDir)
            } catch (_: Exception) {
                // Best effort: a file still held open must not hide that the processes are gone.
            }
            FleetRegistry.unregister(this)
            failure?.let { throw it }
        }
    }

    /** Describes the fleet for logs and test reports: its size, ports, Redis version, and whether it is closed. */
    override fun toString(): String =
        "RedisFleet(size=$size, ports=${masters.map { it.port }}, version=$serverVersion${if (closed) ", closed" else ""})"

    private fun master(index: Int): RedisMaster {
        require(index in masters.indices) { "index expected in 0..${masters.size - 1}, but was $index" }
        return masters[index]
    }

    private fun openMaster(index: Int): RedisMaster {
        val master = master(index)
        check(!closed) { "RedisFleet is closed" }
        return master
    }

    private fun checkErrors(reply: Any?): Any? {
        when (reply) {
            is RespError -> throw RedisFleetException(reply.message)
            is List<*> -> reply.forEach(::checkErrors)
        }
        return reply
    }

    /**
     * Configures a [RedisFleet] before starting it; each setter returns this builder.
     *
     * Not thread-safe; [start] may be called more than once, each call starting a new fleet.
     */
    public class Builder internal constructor() {
        private var masters = 1
        private var password: String? = null
        private var serverArgs: List<String> = emptyList()
        private var redisServer: Path? = null
        private var commandTimeout: Duration = Duration.ofSeconds(5)

        /**
         * The number of masters; default 1.
         *
         * @throws IllegalArgumentException if [count] is not in 1..15.
         */
        public fun masters(count: Int): Builder = apply {
            require(count in 1..MAX_MASTERS) { "masters expected in 1..$MAX_MASTERS, but was $count" }
            masters = count
        }

        /**
         * The password every master requires (`requirepass`); default `null`, no password.
         *
         * With a password, [uris] carry it and [command] authenticates; clients that do not
         * authenticate get `NOAUTH` errors.
         *
         * @throws IllegalArgumentException if [password] is empty.
         */
        public fun password(password: String?): Builder = apply {
            require(password == null || password.isNotEmpty()) { "password expected to be null or non-empty, but was empty" }
            this.password = password
        }

        /**
         * Extra `redis-server` arguments appended to every master's command line, such as
         * `"--maxmemory", "2mb"`; replaces those set before. Default none.
         *
         * The fleet owns `--port`, `--bind`, `--dir`, `--daemonize` and `--requirepass` (use
         * [password]); passing them throws.
         *
         * @throws IllegalArgumentException if [args] contains one of the options the fleet owns.
         */
        public fun serverArgs(vararg args: String): Builder = apply {
            val owned = args.filter { it.lowercase() in OWNED_OPTIONS }
            require(owned.isEmpty()) {
                "serverArgs expected without ${OWNED_OPTIONS.joinToString()} (the fleet sets them), but had ${owned.joinToString()}"
            }
            serverArgs = args.toList()
        }

        /**
         * The `redis-server` binary to run. By default the fleet uses `$REDLOCK_REDIS_SERVER`, else
         * `redis-server` on `PATH`, else the binary bundled in embedded-redis.
         *
         * The path is checked by [start], which throws [RedisFleetException] if it is not an
         * executable file.
         */
        public fun redisServer(path: Path): Builder = apply { redisServer = path }

        /**
         * How long [command] (and so [keys], [keyCount], [flushAll]) waits to connect and then for a
         * reply; default 5 s. Shorter values make tests of paused masters quick.
         *
         * @throws IllegalArgumentException if [timeout] is not between 1 ms and 10 minutes.
         */
        public fun commandTimeout(timeout: Duration): Builder = apply {
            require(!timeout.isNegative && timeout.toMillis() in 1..600_000) {
                "commandTimeout expected between 1 ms and 10 minutes, but was $timeout"
            }
            commandTimeout = timeout
        }

        /**
         * Starts the masters in parallel and returns once every one answers PING.
         *
         * On failure every process already started is killed before this throws.
         *
         * @throws RedisFleetException if no `redis-server` can be found or a master fails to start
         *   or to answer within 10 s (the message carries the tail of its log).
         */
        public fun start(): RedisFleet {
            val binary = RedisServerBinary.resolve(redisServer)
            val settings = MasterSettings(binary, password, serverArgs, commandTimeout.toMillis().toInt())
            return launch(masters, settings, password)
        }
    }

    /** Factories. */
    public companion object {
        private const val MAX_MASTERS = 15

        /**
         * The key of the boot marker the library keeps on each master for its restart guard: a
         * master whose marker is younger than the guard period does not have its votes counted.
         * The fleet's masters start with a marker dated a year back (they have granted no lock
         * they could forget), [flushAll] dates them back again, and [restart] brings a master back
         * without one, as a real crash would. [keys] and [keyCount] leave the marker out.
         */
        public const val BOOT_MARKER_KEY: String = "\u0000redlock-boot"
        private val OWNED_OPTIONS = setOf("--port", "--bind", "--dir", "--daemonize", "--requirepass")

        /**
         * Starts [masters] Redis masters with default settings and returns once every one answers PING.
         *
         * Same as `builder().masters(masters).start()`.
         *
         * @throws IllegalArgumentException if [masters] is not in 1..15.
         * @throws RedisFleetException as [Builder.start] does.
         */
        @JvmStatic
        public fun start(masters: Int): RedisFleet = builder().masters(masters).start()

        /** A new [Builder] with the defaults: one master, no password, no extra arguments. */
        @JvmStatic
        public fun builder(): Builder = Builder()

        private fun launch(count: Int, settings: MasterSettings, password: String?): RedisFleet {
            val baseDir =
                try {
                    Files.createTempDirectory("redlock-fleet-")
                } catch (e: IOException) {
                    throw RedisFleetException("cannot create a temp directory for the fleet: $e", e)
                }
            val masters = List(count) { RedisMaster(it, settings, baseDir.resolve("master-$it")) }
            val fleet = RedisFleet(masters, baseDir, password, settings.commandTimeoutMillis)
            // Registered before any process exists, so that the shutdown hook covers a start cut short.
            FleetRegistry.register(fleet)
            try {
                startAll(masters)
                for (i in masters.indices) fleet.markNeverGranted(i)
            } catch (e: Throwable) {
                try {
                    fleet.close()
                } catch (suppressed: Throwable) {
                    e.addSuppressed(suppressed)
                }
                throw e
            }
            return fleet
        }

        /** Starts every master, each on its own thread: N masters start in the time of one. */
        private fun startAll(masters: List<RedisMaster>) {
            if (masters.size == 1) {
                masters[0].start()
                return
            }
            val failures = AtomicReferenceArray<Throwable>(masters.size)
            val threads =
                masters.map { master ->
                    thread(name = "redis-fleet-start-${master.index}", isDaemon = true) {
                        try {
                            master.start()
                        } catch (e: Throwable) {
                            failures.set(master.index, e)
                        }
                    }
                }
            threads.forEach { it.join() }
            val errors = (0 until failures.length()).mapNotNull { failures.get(it) }
            if (errors.isNotEmpty()) {
                val first = errors.first()
                errors.drop(1).forEach(first::addSuppressed)
                throw first
            }
        }
    }
}
