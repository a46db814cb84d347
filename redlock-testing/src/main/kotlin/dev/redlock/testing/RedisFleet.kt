package dev.redlock.testing

import dev.redlock.core.internal.Keys
import java.io.IOException
import java.net.SocketTimeoutException
import java.nio.file.Files
import java.nio.file.Path
import java.time.Duration
import java.util.concurrent.atomic.AtomicReferenceArray
import kotlin.concurrent.thread

/**
 * N Redis masters for tests, demos and users' own tests of code that uses Redlock: local
 * `redis-server` processes, or Docker containers where there is no local binary.
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
 * Masters are indexed from 0 to [size] - 1; an index outside that range throws
 * [IllegalArgumentException]. [Builder.tls] makes local masters speak TLS only (with a throwaway
 * CA), [Builder.user] adds ACL users; the fleet's own operations work the same either way. For
 * Sentinel-managed primaries, see [SentinelFleet].
 *
 * ## Backends
 *
 * [Builder.backend] chooses how masters run; the default, [Backend.AUTO], takes the first that works:
 * 1. **Local processes** ([Backend.LOCAL]). Every master runs `redis-server --port P --bind 127.0.0.1
 *    --save "" --appendonly no --daemonize no --protected-mode no` in its own temporary directory,
 *    with its output in `redis.log` there. The binary is, in order: the one given to
 *    [Builder.redisServer]; the environment variable `REDLOCK_REDIS_SERVER`; `redis-server` on
 *    `PATH`; else the binary bundled in the `com.github.codemonstur:embedded-redis` jar (Redis 6.2
 *    for Linux and macOS on amd64/arm64), extracted once per JVM to a temporary directory that is
 *    deleted when the JVM exits.
 * 2. **Docker containers** ([Backend.CONTAINERS]), through Testcontainers, when a Docker engine is
 *    available. Testcontainers is an optional dependency: add `org.testcontainers:testcontainers`
 *    to your test class path to use this backend. Each master is a container from [Builder.image]
 *    (default [DEFAULT_IMAGE]) running `redis-server --save "" --appendonly no --protected-mode no`,
 *    its port 6379 published on a fixed host port. Where no registry can be reached,
 *    [LOCAL_BINARY_IMAGE] builds the image on the engine from a local binary instead. A fleet that
 *    runs local processes never loads a Testcontainers class.
 *
 * If neither works, [Builder.start] throws a [RedisFleetException] that says what was checked for
 * each. Every method behaves the same on both backends, except where its documentation says
 * otherwise ([pids] is empty for containers; [pause] freezes the container rather than sending
 * SIGSTOP, with the same effect for clients; [restart] creates a new container).
 *
 * [close] stops every process or container the fleet started and deletes its directories. A fleet
 * that is never closed is closed by a JVM shutdown hook, so no `redis-server` outlives the JVM unless
 * the JVM itself is killed with SIGKILL (Testcontainers' own reaper then removes the containers, or,
 * where it is turned off, the first container fleet of the next JVM on the machine).
 *
 * Thread-safety: every method may be called from several threads at once. Lifecycle operations on
 * the same master ([kill], [pause], [resume], [restart]) run one at a time; [command] opens its own
 * connection per call, so commands never wait for each other.
 */
public class RedisFleet private constructor(
    private val masters: List<FleetMaster>,
    private val baseDir: Path?,
    private val security: FleetSecurity,
    private val commandTimeoutMillis: Int,
    private val chosenBackend: Backend,
) : AutoCloseable {

    /**
     * How a fleet runs its masters; chosen with [Builder.backend].
     */
    public enum class Backend {
        /**
         * [LOCAL] when a local `redis-server` can be found (see [Builder.redisServer] for where the
         * fleet looks), else [CONTAINERS] when Testcontainers is on the class path and finds a
         * Docker engine; the default. A binary given to [Builder.redisServer] always means [LOCAL].
         */
        AUTO,

        /** Local `redis-server` processes on loopback ports. */
        LOCAL,

        /** Docker containers through Testcontainers (an optional dependency of this module). */
        CONTAINERS,
    }

    /**
     * The backend the masters run on: [Backend.LOCAL] or [Backend.CONTAINERS], never [Backend.AUTO].
     * `backend()` from Java.
     */
    public val backend: Backend
        @JvmName("backend") get() = chosenBackend

    private val closeLock = Any()

    @Volatile private var closed = false

    /** The number of masters, fixed when the fleet starts; `size()` from Java. */
    public val size: Int
        @JvmName("size") get() = masters.size

    /**
     * The version the masters report in `INFO server`, such as `"6.2.11"`: `redis_version`, or
     * `valkey_version` on Valkey (whose `redis_version` is 7.2.4 whatever its release). [serverName]
     * tells which server it is.
     *
     * Read from master 0 when it last became ready; every master runs the same binary.
     * `serverVersion()` from Java.
     */
    public val serverVersion: String
        @JvmName("serverVersion") get() = masters.first().version

    /** `Redis` or `Valkey`, as `INFO server` tells; read with [serverVersion]. `serverName()` from Java. */
    public val serverName: String
        @JvmName("serverName") get() = masters.first().serverName

    /** The fleet's temporary directory, holding one directory per master; deleted by [close]. Null for containers. */
    internal val directory: Path?
        get() = baseDir

    /**
     * The host the masters listen on, as written in [uris]: `127.0.0.1` for local processes and for a
     * local Docker engine; the Docker host's address for a remote engine. `host()` from Java.
     */
    public val host: String
        @JvmName("host") get() = masters.first().hostName

    /**
     * The masters' URIs in index order, as `redis://HOST:PORT`, or `redis://:PASSWORD@HOST:PORT`
     * when the fleet has a password, or `redis://USER:PASSWORD@HOST:PORT` for the first user added
     * with [Builder.user] (percent-encoded); `rediss://...` when the fleet speaks TLS ([Builder.tls]).
     * [host] is `127.0.0.1` unless the masters run on a remote Docker engine.
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
    public fun uri(index: Int): String = security.uri(master(index).hostName, port(index), security.users.firstOrNull())

    // --- TLS and ACL users (Builder.tls, Builder.user) ---

    /**
     * The URI of master [index] with the credentials of [user], one of the users added with
     * [Builder.user]; as [uri] otherwise.
     *
     * @throws IllegalArgumentException if [index] is not in `0 until size` or [user] was not added.
     */
    public fun uri(index: Int, user: String): String {
        val acl = security.users.firstOrNull { it.name == user }
        require(acl != null) { "user expected to be one of ${security.users.map { it.name }} (added with Builder.user), but was '$user'" }
        return security.uri(master(index).hostName, port(index), acl)
    }

    /** Whether the masters speak TLS only ([Builder.tls]); `isTls()` from Java. */
    public val isTls: Boolean
        @JvmName("isTls") get() = security.tls != null

    /**
     * The PEM file of the throwaway certificate authority that signed the masters' certificate, for
     * clients to trust (for example `RedlockConfig.builder().trustedCertificates(path)`); null when
     * the fleet does not speak TLS. Deleted by [close].
     */
    public fun caCertificate(): Path? = security.tls?.caFile

    /**
     * The host port of master [index] (on [host]); it stays the same across [kill] and [restart].
     *
     * @throws IllegalArgumentException if [index] is not in `0 until size`.
     */
    public fun port(index: Int): Int = master(index).port

    /**
     * Kills master [index] with SIGKILL and returns once its process is gone: a crash, with no
     * chance to reply or persist. Its keys are lost; its port stays reserved for [restart].
     *
     * Killing a master that is not running does nothing. A paused master is killed as well. For a
     * container this is `docker kill`: the container stops, and [restart] replaces it.
     *
     * @throws IllegalArgumentException if [index] is not in `0 until size`.
     * @throws IllegalStateException if the fleet is closed.
     * @throws RedisFleetException if the process is still alive 10 s after SIGKILL, or Docker refuses.
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
     * For a container this is `docker pause` (the cgroup freezer) instead of SIGSTOP; clients see
     * the same thing.
     *
     * @throws IllegalArgumentException if [index] is not in `0 until size`.
     * @throws IllegalStateException if the fleet is closed or the master is not running.
     * @throws RedisFleetException if the `kill` command (or `docker pause`) fails.
     */
    public fun pause(index: Int) {
        openMaster(index).pause()
    }

    /**
     * Continues master [index] with SIGCONT (`docker unpause` for a container) and returns once it
     * answers PING again.
     *
     * Resuming a master that is not paused only checks that it answers.
     *
     * @throws IllegalArgumentException if [index] is not in `0 until size`.
     * @throws IllegalStateException if the fleet is closed or the master is not running.
     * @throws RedisFleetException if the `kill` command (or `docker unpause`) fails or the master
     *   does not answer within 10 s.
     */
    public fun resume(index: Int) {
        openMaster(index).resume()
    }

    /**
     * Kills master [index] if it is running (paused or not), starts a new process on the same port
     * with empty data, and returns once it answers PING.
     *
     * The master's directory is emptied first, so even `serverArgs` that turn persistence on
     * cannot bring data back; a container is removed and a new one created from the image, on the
     * same host port. Like a real crash, it comes back without the library's boot marker
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
     * For a container, asks Docker whether it is running.
     *
     * @throws IllegalArgumentException if [index] is not in `0 until size`.
     */
    public fun isRunning(index: Int): Boolean = master(index).isRunning

    /**
     * Whether master [index] is paused: [pause] was called and neither [resume], [kill] nor
     * [restart] since, and it is still running.
     *
     * @throws IllegalArgumentException if [index] is not in `0 until size`.
     */
    public fun isPaused(index: Int): Boolean = master(index).isPaused

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
                RespConnection.call(security.open(master.address, master.port, commandTimeoutMillis), security.auth, args.asList())
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
    public fun keyCount(): Int {
        check(!closed) { "RedisFleet is closed" }
        return masters.filter { it.isRunning && !it.isPaused }.sumOf {
            (command(it.index, "DBSIZE") as Long).toInt() - (command(it.index, "EXISTS", BOOT_MARKER_KEY) as Long).toInt()
        }
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
        check(!closed) { "RedisFleet is closed" }
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
            Keys.BOOT_MARKER_NEVER_GRANTED, "1", BOOT_MARKER_KEY,
        )
    }

    /**
     * The process ids of the masters whose processes are alive (paused ones included), in index order.
     *
     * Empty after [close], and always empty for containers (their processes are Docker's); tests use
     * it to check that nothing outlives the fleet, for example with `ProcessHandle.of(pid)`.
     */
    public fun pids(): List<Long> = masters.mapNotNull { it.pid() }

    /**
     * Kills every process this fleet started (paused ones too), waits until they are gone, and
     * deletes the fleet's temporary directories; for containers, removes them.
     *
     * Idempotent: later calls return at once. A call made while another thread is closing the fleet
     * returns when that close is done. After close, [uris], [uri], [port], [host], [size], [backend]
     * and [serverVersion] still answer, [isRunning] and [isPaused] are `false` and [pids] is empty;
     * every other method throws [IllegalStateException].
     *
     * @throws RedisFleetException if a process is still alive 10 s after SIGKILL, or Docker fails to
     *   remove a container (every other master is still stopped and the directories still deleted).
     */
    override fun close() {
        synchronized(closeLock) {
            if (closed) return
            closed = true
            var failure: Throwable? = null
            // SIGKILL all first, then wait: the masters die in parallel.
            for (master in masters) {
                try {
                    master.destroy()
                } catch (e: Throwable) {
                    failure?.addSuppressed(e) ?: run { failure = e }
                }
            }
            for (master in masters) {
                try {
                    master.awaitDestroyed()
                } catch (e: Throwable) {
                    failure?.addSuppressed(e) ?: run { failure = e }
                }
            }
            try {
                baseDir?.let(RedisMaster::deleteRecursively)
            } catch (_: Exception) {
                // Best effort: a file still held open must not hide that the processes are gone.
            }
            FleetRegistry.unregister(this)
            failure?.let { throw it }
        }
    }

    /** Describes the fleet for logs and test reports: its size, ports, Redis version, and whether it is closed. */
    override fun toString(): String =
        "RedisFleet(size=$size, backend=$backend, host=$host, ports=${masters.map { it.port }}, version=$serverVersion${if (closed) ", closed" else ""})"

    private fun master(index: Int): FleetMaster {
        require(index in masters.indices) { "index expected in 0..${masters.size - 1}, but was $index" }
        return masters[index]
    }

    private fun openMaster(index: Int): FleetMaster {
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
        private var tls = false
        private val users = LinkedHashMap<String, AclUser>()
        private var backend: Backend = Backend.AUTO
        private var image: String = DEFAULT_IMAGE
        private var probe: BackendProbe? = null

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
         * With a password, [uris] carry it (unless ACL users were added with [user]: then they
         * carry the first user's credentials) and [command] authenticates; clients that do not
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
         * The fleet owns `--port`, `--bind`, `--dir`, `--daemonize`, `--requirepass` (use
         * [password]), `--tls-port` (use [tls]) and `--user` (use [user]); passing them throws. Both
         * backends pass the arguments on; a container's image must understand them (the default
         * image runs Redis 7.2, local binaries may be 6.2).
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
         * Setting a binary makes [Backend.AUTO] mean [Backend.LOCAL]. With [Backend.CONTAINERS] it is
         * the binary that [LOCAL_BINARY_IMAGE] is built from, and [start] throws with any other
         * image. The path is checked by [start], which throws [RedisFleetException] if it is not an
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
         * Whether the masters speak TLS only; default `false`.
         *
         * With TLS, [start] generates a throwaway certificate authority and a certificate for
         * `127.0.0.1` and `localhost` signed by it (with the JDK alone, no `openssl`); each master
         * listens with TLS on its port and has no plain-text port; [uris] are `rediss://...`; and
         * [caCertificate] is the CA's PEM file that clients must trust. Clients need no certificate
         * of their own (`tls-auth-clients no`). [command] and the fleet's other operations go over
         * TLS as well. The `redis-server` binary must be built with TLS support (the one bundled
         * for Linux amd64 is; it needs `libssl.so.3` on the machine).
         */
        public fun tls(enabled: Boolean): Builder = apply { tls = enabled }

        /**
         * Adds an ACL user that every master knows (`user NAME on >PASSWORD RULES...`), replacing
         * an earlier one of the same name. [rules] are Redis ACL rules such as `"~*"`, `"&*"`,
         * `"+@all"`, `"-evalsha"`; none given means full access (`~* &* +@all`).
         *
         * The first user added is the one whose credentials [uris] carry; [uri] with a user name
         * gives the URI of any other. The default user keeps the fleet's [password], or gets a
         * random one if none was set, so that clients without credentials are refused (`NOAUTH`).
         * The fleet itself connects as the default user.
         *
         * @throws IllegalArgumentException if [name] is empty, `default` or holds whitespace, if
         *   [password] is empty or holds whitespace or quotes, or if a rule is empty or holds whitespace.
         */
        public fun user(name: String, password: String, vararg rules: String): Builder = apply {
            require(name.isNotEmpty() && name != "default" && name.none { it.isWhitespace() || it == '"' || it == '\'' }) {
                "user name expected to be non-empty, not 'default', without whitespace or quotes, but was '$name'"
            }
            require(password.isNotEmpty() && password.none { it.isWhitespace() || it == '"' || it == '\'' }) {
                "password of user '$name' expected to be non-empty, without whitespace or quotes"
            }
            val bad = rules.filter { it.isEmpty() || it.any { c -> c.isWhitespace() || c == '"' || c == '\'' } }
            require(bad.isEmpty()) { "rules of user '$name' expected without whitespace or quotes, but had $bad" }
            users[name] = AclUser(name, password, if (rules.isEmpty()) FleetSecurity.FULL_ACCESS else rules.toList())
        }

        /**
         * How to run the masters; default [Backend.AUTO]: local processes when a `redis-server` can
         * be found, else Docker containers when Testcontainers finds a Docker engine.
         */
        public fun backend(backend: Backend): Builder = apply { this.backend = backend }

        /**
         * The Docker image of the masters when they run as containers; default [DEFAULT_IMAGE].
         * Ignored by local processes.
         *
         * The image must have `redis-server` on its `PATH` and print Redis' usual
         * `Ready to accept connections` line when it is ready, as the official `redis` images do.
         *
         * [LOCAL_BINARY_IMAGE] needs no registry: [start] builds an image on the Docker engine from a
         * binary of this machine, the one given to [redisServer], else the one bundled in
         * embedded-redis (Redis 6.2 for Linux), with the shared libraries it links (found with
         * `ldd`, so on Linux only). The engine keeps it; later fleets reuse it.
         *
         * @throws IllegalArgumentException if [image] is blank.
         */
        public fun image(image: String): Builder = apply {
            require(image.isNotBlank()) { "image expected to be a Docker image name such as $DEFAULT_IMAGE, but was blank" }
            this.image = image
        }

        /** Replaces the machine probe; for tests of the backend choice. */
        internal fun probe(probe: BackendProbe): Builder = apply { this.probe = probe }

        /**
         * Starts the masters in parallel and returns once every one answers PING.
         *
         * The backend is chosen first (see [backend]); on failure every process or container already
         * started is stopped before this throws.
         *
         * @throws IllegalArgumentException if [redisServer] was set together with [Backend.CONTAINERS].
         * @throws RedisFleetException if the chosen backend cannot be used (for [Backend.AUTO]: neither
         *   a local `redis-server` nor a Docker engine; the message says what was checked for each),
         *   or a master fails to start or to answer in time (the message carries the tail of its log).
         */
        public fun start(): RedisFleet {
            require(redisServer == null || backend != Backend.CONTAINERS || image == LOCAL_BINARY_IMAGE) {
                "redisServer(path) expected only with backend LOCAL or AUTO, or with image(LOCAL_BINARY_IMAGE), but backend " +
                    "is CONTAINERS with image $image (containers run the image's redis-server)"
            }
            val requested = if (redisServer != null && backend == Backend.AUTO) Backend.LOCAL else backend
            val timeoutMillis = commandTimeout.toMillis().toInt()
            val tls = tls
            val users = users.values.toList()
            val adminPassword = password ?: if (users.isNotEmpty()) FleetSecurity.randomPassword() else null
            return when (val selected = selectBackend(requested, probe ?: SystemProbe(redisServer))) {
                is SelectedBackend.Local -> launchLocal(masters) { dir ->
                    val certificates = if (tls) TestCertificates.generate(dir.resolve("tls")) else null
                    MasterSettings(selected.binary, FleetSecurity(adminPassword, users, certificates), serverArgs, timeoutMillis)
                }
                SelectedBackend.Containers -> {
                    require(!tls && users.isEmpty()) {
                        "tls(true) and user(...) expected only with local masters, but the masters run as containers " +
                            "(backend ${backend.name}); install redis-server or use backend LOCAL"
                    }
                    val imageName =
                        if (image == LOCAL_BINARY_IMAGE) {
                            ContainerBackend.localImage(redisServer?.let { RedisServerBinary.resolve(it) } ?: RedisServerBinary.bundled())
                        } else {
                            image
                        }
                    val created = ContainerBackend.masters(masters, ContainerSettings(imageName, password, serverArgs))
                    launch(RedisFleet(created, null, FleetSecurity(password, emptyList(), null), timeoutMillis, Backend.CONTAINERS))
                }
            }
        }
    }

    /** Factories and constants. */
    public companion object {
        private const val MAX_MASTERS = 15

        /**
         * The image of container masters unless [Builder.image] says otherwise: Redis 7.2, the last
         * release under the BSD licence, on Alpine.
         */
        public const val DEFAULT_IMAGE: String = "redis:7.2-alpine"

        /**
         * For [Builder.image]: no registry image, but one that [Builder.start] builds on the Docker
         * engine from a local `redis-server` binary ([Builder.redisServer], else the one bundled in
         * embedded-redis) and the libraries it links: `FROM scratch`, nothing else. For machines that
         * run Docker but cannot pull images. Built once per engine and binary, then reused.
         */
        public const val LOCAL_BINARY_IMAGE: String = "redlock-testing/from-local-binary"

        /**
         * The key of the boot marker the library keeps on each master for its restart guard: a
         * master whose marker is younger than the guard period does not have its votes counted.
         * The fleet's masters start with a marker dated a year back (they have granted no lock
         * they could forget), [flushAll] dates them back again, and [restart] brings a master back
         * without one, as a real crash would. [keys] and [keyCount] leave the marker out.
         */
        public const val BOOT_MARKER_KEY: String = Keys.BOOT_MARKER
        private val OWNED_OPTIONS = setOf("--port", "--bind", "--dir", "--daemonize", "--requirepass", "--tls-port", "--user")

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

        /** A new [Builder] with the defaults: one master, no password, no extra arguments, [Backend.AUTO]. */
        @JvmStatic
        public fun builder(): Builder = Builder()

        private fun launchLocal(count: Int, settingsIn: (Path) -> MasterSettings): RedisFleet {
            val baseDir =
                try {
                    Files.createTempDirectory("redlock-fleet-")
                } catch (e: IOException) {
                    throw RedisFleetException("cannot create a temp directory for the fleet: $e", e)
                }
            val settings =
                try {
                    settingsIn(baseDir)
                } catch (e: Exception) {
                    RedisMaster.deleteRecursively(baseDir)
                    throw RedisFleetException("cannot prepare the fleet's settings: $e", e)
                }
            val masters = List(count) { RedisMaster(it, settings, baseDir.resolve("master-$it")) }
            return launch(RedisFleet(masters, baseDir, settings.security, settings.commandTimeoutMillis, Backend.LOCAL))
        }

        /**
         * Whether [Backend.CONTAINERS] can be used here: Testcontainers is on the class path and finds a
         * Docker engine.
         *
         * For skipping tests that need containers, with JUnit's `assumeTrue` or kotest's `enabledIf`.
         * Asked once per JVM, then remembered; never throws.
         */
        @JvmStatic
        public fun dockerAvailable(): Boolean = dockerUnavailableReason() == null

        /**
         * Why [Backend.CONTAINERS] cannot be used here (Testcontainers missing, or no Docker engine),
         * or `null` when it can; for messages of skipped tests. Asked once per JVM; never throws.
         */
        @JvmStatic
        public fun dockerUnavailableReason(): String? = ContainerSupport.unavailableReason()

        private fun launch(fleet: RedisFleet): RedisFleet {
            // Registered before any master runs, so that the shutdown hook covers a start cut short.
            FleetRegistry.register(fleet)
            try {
                startAll(fleet.masters)
                for (i in fleet.masters.indices) fleet.markNeverGranted(i)
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
        private fun startAll(masters: List<FleetMaster>) {
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
