package dev.redlock.testing

import dev.redlock.core.internal.Keys
import java.io.IOException
import java.nio.file.Files
import java.nio.file.Path
import java.time.Duration

/**
 * Redis primaries managed by Redis Sentinel, as local processes: per group one primary and its
 * replicas, and one set of sentinels that monitors every group. For tests of Sentinel URIs
 * (`redis-sentinel://`), failovers, and what a failover does to a lock.
 *
 * ```kotlin
 * SentinelFleet.builder().groups(1).start().use { sentinels ->
 *     val config = RedlockConfig.builder().masters(sentinels.uris()).build()
 *     // ...
 *     sentinels.failover(0)      // a replica becomes the primary of group 0
 * }
 * ```
 *
 * Every process is a `redis-server` (sentinels run it with `--sentinel`), found as [RedisFleet]
 * finds it, on its own free loopback port, without persistence. Group `g`'s primary is monitored
 * under the name [masterName] (`group-g`); its replicas replicate from it through a [TcpProxy],
 * so that a test can hold replication back ([cutReplication]). The primaries start marked as
 * having granted no lock ([RedisFleet.BOOT_MARKER_KEY] dated a year back, replicated to the
 * replicas), as a [RedisFleet]'s masters do.
 *
 * [close] stops every process and proxy and deletes the fleet's directory; a JVM shutdown hook
 * does so for a fleet never closed. A start that fails stops what it started before it throws.
 *
 * Thread-safety: [failover], [cutReplication] and [healReplication] of one group must not run
 * concurrently; everything else may be called from any thread.
 */
public class SentinelFleet private constructor(
    private val baseDir: Path,
    private val groupCount: Int,
    private val timeoutMillis: Int,
) : AutoCloseable {
    private val nodes = java.util.concurrent.CopyOnWriteArrayList<RedisMaster>() // every process, for close()
    private val sentinels = ArrayList<RedisMaster>()
    private val groupNodes = ArrayList<List<RedisMaster>>() // per group: primary at start, then replicas
    private val proxies = ArrayList<TcpProxy>()
    private val replicationProxy = ArrayList<TcpProxy>() // per group: the replicas' way to the primary at start
    private val closeLock = Any()

    @Volatile private var closed = false

    /** The number of groups (Redlock masters); `groups()` from Java. */
    public val groups: Int
        @JvmName("groups") get() = groupCount

    /** The name under which the sentinels monitor group [group]: `group-N`. */
    public fun masterName(group: Int): String {
        checkGroup(group)
        return "group-$group"
    }

    /** The sentinels' ports, in start order. */
    public fun sentinelPorts(): List<Int> = sentinels.map { it.port }

    /**
     * The Sentinel URI of group [group]: `redis-sentinel://127.0.0.1:P1,127.0.0.1:P2,...#group-N`,
     * for `RedlockConfig.builder().master(...)`.
     */
    public fun uri(group: Int): String =
        "redis-sentinel://" + sentinels.joinToString(",") { "127.0.0.1:${it.port}" } + "#" + masterName(group)

    /** The Sentinel URIs of every group, in group order. */
    public fun uris(): List<String> = (0 until groupCount).map(::uri)

    /** The ports of group [group]'s data nodes, the primary at start first, then its replicas. */
    public fun nodePorts(group: Int): List<Int> {
        checkGroup(group)
        return groupNodes[group].map { it.port }
    }

    /**
     * The port of group [group]'s primary, as the first sentinel reports it now.
     *
     * @throws RedisFleetException if the sentinel does not answer.
     */
    public fun primaryPort(group: Int): Int = primaryPortBy(sentinels.first(), group)

    /**
     * Sends one command to the process on [port] (a data node or a sentinel of this fleet) and
     * returns its reply, as [RedisFleet.command] does.
     *
     * @throws IllegalArgumentException if no process of this fleet listens on [port].
     * @throws RedisFleetException on an error reply or if the process cannot be reached in time.
     */
    public fun command(port: Int, vararg args: String): Any? {
        require(args.isNotEmpty()) { "args expected to hold a command name, but was empty" }
        val node = nodes.firstOrNull { it.port == port }
        require(node != null) { "port expected to be one of ${nodes.map { it.port }}, but was $port" }
        check(!closed) { "SentinelFleet is closed" }
        val reply =
            try {
                RespConnection.call(port, null, timeoutMillis, args.asList())
            } catch (e: IOException) {
                throw RedisFleetException("${node.describe()}: ${args[0]} failed: $e", e)
            }
        if (reply is RespError) throw RedisFleetException("${node.describe()}: ${reply.message}")
        return reply
    }

    /**
     * Kills the process on [port] (a data node or a sentinel of this fleet) with SIGKILL and
     * returns once it is gone: a crash. Killing a primary lets the sentinels fail its group over
     * on their own, once it has been silent for [Builder.downAfter] and a majority of them agree.
     *
     * @throws IllegalArgumentException if no process of this fleet listens on [port].
     */
    public fun kill(port: Int) {
        val node = nodes.firstOrNull { it.port == port }
        require(node != null) { "port expected to be one of ${nodes.map { it.port }}, but was $port" }
        check(!closed) { "SentinelFleet is closed" }
        node.kill()
    }

    /**
     * Stops replication to group [group]'s replicas that still replicate from its first primary:
     * first waits until they have every write made so far (each replica's replication offset
     * reaches the one the primary had when this was called), then their links stay open but carry
     * nothing, so later writes to the primary do not reach them (until [healReplication]). Lets a
     * test fail over to a replica that missed the latest writes, as happens when a failover follows
     * a write before it replicated. Effective until the group's first [failover].
     *
     * @throws RedisFleetException if the replicas do not catch up within 5 s.
     */
    public fun cutReplication(group: Int) {
        checkGroup(group)
        val first = groupNodes[group][0].port
        // Not WAIT: it waits for the writes of its own connection only, and each command() call
        // opens a new one, so it would return at once.
        val written = info(first, "replication").getValue("master_repl_offset").toLong()
        val deadline = System.nanoTime() + Duration.ofSeconds(5).toNanos()
        for (replica in groupNodes[group].drop(1)) {
            while ((info(replica.port, "replication")["slave_repl_offset"]?.toLongOrNull() ?: -1L) < written) {
                if (System.nanoTime() > deadline) {
                    throw RedisFleetException("${masterName(group)}: replica 127.0.0.1:${replica.port} did not catch up with offset $written within 5 s")
                }
                Thread.sleep(POLL_MILLIS)
            }
        }
        replicationProxy[group].blackHole()
    }

    /** Lets replication through again after [cutReplication]; the replicas resynchronize. */
    public fun healReplication(group: Int) {
        checkGroup(group)
        val proxy = replicationProxy[group]
        proxy.resetConnections() // bytes were dropped: the stream must start over
        proxy.heal()
    }

    /**
     * Fails group [group] over with `SENTINEL FAILOVER` (no agreement needed, the primary stays up)
     * and returns once every sentinel names the new primary and the old primary replicates from it.
     *
     * Sentinel itself turns the old primary into a replica only about ten seconds after the
     * switch, leaving it a writable primary that no sentinel names (clients still connected to it
     * keep writing there). This method does that step at once, as Sentinel does it: `REPLICAOF
     * <new primary>`, then `CLIENT KILL TYPE normal` and `TYPE pubsub`, so connected clients
     * reconnect and ask the sentinels again.
     *
     * @return the port of the new primary
     * @throws RedisFleetException if the failover does not complete within 15 s.
     */
    public fun failover(group: Int): Int {
        val name = masterName(group)
        val old = primaryPort(group)
        val deadline = System.nanoTime() + Duration.ofSeconds(15).toNanos()
        command(sentinels.first().port, "SENTINEL", "FAILOVER", name)
        var primary = old
        while (primary == old || sentinels.any { primaryPortBy(it, group) != primary }) {
            if (System.nanoTime() > deadline) {
                throw RedisFleetException("$name: the sentinels did not agree on a new primary within 15 s (old: $old)")
            }
            Thread.sleep(POLL_MILLIS)
            primary = primaryPortBy(sentinels.first(), group)
        }
        command(old, "REPLICAOF", "127.0.0.1", primary.toString())
        command(old, "CLIENT", "KILL", "TYPE", "normal")
        command(old, "CLIENT", "KILL", "TYPE", "pubsub")
        awaitReplicating(old, deadline, name)
        return primary
    }

    /** Stops every process and proxy and deletes the fleet's directory. Idempotent. */
    override fun close() {
        synchronized(closeLock) {
            if (closed) return
            closed = true
            var failure: Throwable? = null
            nodes.forEach { it.destroy() }
            for (node in nodes) {
                try {
                    node.awaitDestroyed()
                } catch (e: Throwable) {
                    failure?.addSuppressed(e) ?: run { failure = e }
                }
            }
            proxies.forEach { runCatching { it.close() } }
            runCatching { RedisMaster.deleteRecursively(baseDir) }
            SentinelRegistry.unregister(this)
            failure?.let { throw it }
        }
    }

    /** Names the fleet's groups and ports, for test reports. */
    override fun toString(): String =
        "SentinelFleet(groups=$groupCount, sentinels=${sentinelPorts()}, nodes=${groupNodes.map { g -> g.map { it.port } }}${if (closed) ", closed" else ""})"

    private fun checkGroup(group: Int) {
        require(group in 0 until groupCount) { "group expected in 0..${groupCount - 1}, but was $group" }
    }

    private fun primaryPortBy(sentinel: RedisMaster, group: Int): Int {
        val reply = command(sentinel.port, "SENTINEL", "GET-MASTER-ADDR-BY-NAME", masterName(group)) as? List<*>
            ?: throw RedisFleetException("${sentinel.describe()} does not know ${masterName(group)}")
        return reply[1].toString().toInt()
    }

    private fun info(port: Int, section: String): Map<String, String> =
        (command(port, "INFO", section) as String).lineSequence().mapNotNull { line ->
            val colon = line.indexOf(':')
            if (colon < 0) null else line.substring(0, colon) to line.substring(colon + 1).trim()
        }.toMap()

    private fun awaitReplicating(port: Int, deadline: Long, what: String) {
        while (info(port, "replication")["master_link_status"] != "up") {
            if (System.nanoTime() > deadline) throw RedisFleetException("$what: 127.0.0.1:$port did not finish synchronizing with its primary in time")
            Thread.sleep(POLL_MILLIS)
        }
    }

    /** Starts the primaries, their replicas (through proxies), then the sentinels, and waits until they see everything. */
    private fun startAll(settings: Settings) {
        val plain = FleetSecurity(null, emptyList(), null)
        fun node(name: String, args: List<String>, configFile: Path? = null): RedisMaster {
            val master = RedisMaster(
                nodes.size,
                MasterSettings(settings.binary, plain, args, timeoutMillis, configFile = configFile),
                baseDir.resolve(name),
            )
            nodes += master
            master.start()
            return master
        }
        repeat(groupCount) { g ->
            val primary = node("group-$g-primary", emptyList())
            command(primary.port, "EVAL", Keys.BOOT_MARKER_NEVER_GRANTED, "1", Keys.BOOT_MARKER)
            val proxy = TcpProxy.start("127.0.0.1", primary.port).also { proxies += it }
            replicationProxy += proxy
            val replicas = List(settings.replicas) { r ->
                node("group-$g-replica-$r", listOf("--replicaof", "127.0.0.1", proxy.port.toString()))
            }
            groupNodes += listOf(primary) + replicas
        }
        val deadline = System.nanoTime() + Duration.ofSeconds(15).toNanos()
        for (group in groupNodes) for (replica in group.drop(1)) awaitReplicating(replica.port, deadline, "replica")
        val quorum = settings.sentinels / 2 + 1
        repeat(settings.sentinels) { s ->
            val config = baseDir.resolve("sentinel-$s.conf")
            Files.writeString(
                config,
                groupNodes.withIndex().joinToString("") { (g, group) ->
                    val name = "group-$g"
                    "sentinel monitor $name 127.0.0.1 ${group[0].port} $quorum\n" +
                        "sentinel down-after-milliseconds $name ${settings.downAfter.toMillis()}\n" +
                        // Long, so that Sentinel never re-points replicas past the proxy during a test.
                        "sentinel failover-timeout $name 180000\n"
                },
            )
            sentinels += node("sentinel-$s", listOf("--sentinel"), configFile = config)
        }
        // Ready when every sentinel knows every group's replicas and the other sentinels (found
        // through hello messages, every 2 s), so that any of them can answer and agree.
        for (sentinel in sentinels) {
            for (g in 0 until groupCount) {
                while (true) {
                    val fields = (command(sentinel.port, "SENTINEL", "MASTER", masterName(g)) as List<*>)
                        .chunked(2).associate { it[0].toString() to it[1].toString() }
                    if (fields["num-slaves"] == settings.replicas.toString() &&
                        fields["num-other-sentinels"] == (settings.sentinels - 1).toString()
                    ) break
                    if (System.nanoTime() > deadline) {
                        throw RedisFleetException("${sentinel.describe()} did not see group $g's replicas and the other sentinels within 15 s: $fields")
                    }
                    Thread.sleep(POLL_MILLIS)
                }
            }
        }
    }

    private class Settings(val binary: Path, val replicas: Int, val sentinels: Int, val downAfter: Duration)

    /**
     * Configures a [SentinelFleet]; each setter returns this builder. Not thread-safe.
     */
    public class Builder internal constructor() {
        private var groups = 1
        private var replicas = 1
        private var sentinels = 3
        private var downAfter: Duration = Duration.ofSeconds(1)
        private var redisServer: Path? = null

        /**
         * The number of groups, each a primary with its replicas: one Redlock master per group;
         * default 1.
         *
         * @throws IllegalArgumentException if [count] is not in 1..7.
         */
        public fun groups(count: Int): Builder = apply {
            require(count in 1..7) { "groups expected in 1..7, but was $count" }
            groups = count
        }

        /**
         * The number of replicas per group; default 1.
         *
         * @throws IllegalArgumentException if [count] is not in 1..3.
         */
        public fun replicas(count: Int): Builder = apply {
            require(count in 1..3) { "replicas expected in 1..3, but was $count" }
            replicas = count
        }

        /**
         * The number of sentinels, which all monitor every group; default 3. Their quorum is a
         * majority of them.
         *
         * @throws IllegalArgumentException if [count] is not in 1..5.
         */
        public fun sentinels(count: Int): Builder = apply {
            require(count in 1..5) { "sentinels expected in 1..5, but was $count" }
            sentinels = count
        }

        /**
         * How long a primary must not answer before a sentinel deems it down
         * (`down-after-milliseconds`); default 1 s.
         *
         * @throws IllegalArgumentException if [duration] is not between 100 ms and 1 minute.
         */
        public fun downAfter(duration: Duration): Builder = apply {
            require(duration.toMillis() in 100..60_000) { "downAfter expected between 100 ms and 1 minute, but was $duration" }
            downAfter = duration
        }

        /** The `redis-server` binary to run; by default found as [RedisFleet.Builder.redisServer] describes. */
        public fun redisServer(path: Path): Builder = apply { redisServer = path }

        /**
         * Starts the primaries, their replicas and the sentinels, and returns once every sentinel
         * sees every group's replicas and the other sentinels.
         *
         * @throws RedisFleetException if a process fails to start, or the sentinels do not see
         *   each other and the replicas within 15 s; everything started is stopped first.
         */
        public fun start(): SentinelFleet {
            val binary = RedisServerBinary.resolve(redisServer)
            val dir =
                try {
                    Files.createTempDirectory("redlock-sentinels-")
                } catch (e: IOException) {
                    throw RedisFleetException("cannot create a temp directory for the sentinel fleet: $e", e)
                }
            val fleet = SentinelFleet(dir, groups, COMMAND_TIMEOUT_MILLIS)
            SentinelRegistry.register(fleet)
            try {
                fleet.startAll(Settings(binary, replicas, sentinels, downAfter))
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
    }

    /** Factories. */
    public companion object {
        private const val POLL_MILLIS = 20L
        private const val COMMAND_TIMEOUT_MILLIS = 5_000

        /** A new [Builder]: one group of a primary and one replica, three sentinels. */
        @JvmStatic
        public fun builder(): Builder = Builder()
    }
}

/** The sentinel fleets of this JVM not closed yet, closed by a shutdown hook when the JVM exits. */
internal object SentinelRegistry {
    private val live: MutableSet<SentinelFleet> = java.util.concurrent.ConcurrentHashMap.newKeySet()

    private val hook: Thread by lazy {
        Thread({ live.toList().forEach { runCatching { it.close() } } }, "sentinel-fleet-shutdown")
            .also { Runtime.getRuntime().addShutdownHook(it) }
    }

    fun register(fleet: SentinelFleet) {
        hook
        live.add(fleet)
    }

    fun unregister(fleet: SentinelFleet) {
        live.remove(fleet)
    }
}
