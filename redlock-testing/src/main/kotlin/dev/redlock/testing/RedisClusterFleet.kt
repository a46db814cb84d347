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
 * A local Redis Cluster for tests: [Builder.shards] primaries (three by default), each with
 * [Builder.replicasPerShard] replicas (one by default), every hash slot assigned, as local
 * `redis-server --cluster-enabled yes` processes. For tests of cluster clients and of what
 * failovers, crashes and slot migrations do to them.
 *
 * ```kotlin
 * RedisClusterFleet.builder().start().use { cluster ->
 *     val client = RedisClusterClient.create(cluster.uris().map(RedisURI::create))
 *     // ...
 *     cluster.failover(0)                                 // shard 0's replica takes over
 *     cluster.migrateSlot(cluster.slotOf("orders:42"), 2)  // the slot moves to shard 2, keys and all
 * }
 * ```
 *
 * The cluster is built with plain commands, so every server of the matrix can run it (the Redis
 * 6.2 bundled in embedded-redis has no `redis-cli`): each node gets its own config epoch
 * (`CLUSTER SET-CONFIG-EPOCH`), the primaries their slot ranges (`CLUSTER ADDSLOTS`), the nodes
 * meet (`CLUSTER MEET`), the replicas follow their primary (`CLUSTER REPLICATE`), and [Builder.start]
 * returns once every node reports `cluster_state:ok`, agrees on who serves every slot and every
 * replica is in sync. That takes a second or two.
 *
 * ## Nodes and shards
 *
 * Nodes are indexed from 0 to [size] - 1, shard by shard: shard `s` started with node
 * `s * (replicasPerShard + 1)` as its primary, followed by its replicas. The roles change with
 * failovers, the shard a node belongs to does not: [primary] and [replicas] ask the cluster who
 * holds which role now. Slots start split evenly, shard 0 holding the lowest; [migrateSlot] moves
 * one, and [shardOf] says where a slot is now.
 *
 * Every node runs the binary [RedisFleet] would run ([Builder.redisServer], else
 * `$REDLOCK_REDIS_SERVER`, else `redis-server` on `PATH`, else the bundled one) on 127.0.0.1, with
 * `--save "" --appendonly no`, `--cluster-node-timeout` of [Builder.nodeTimeout] and its cluster bus
 * on its port + 10000. The cluster's own configuration (`nodes.conf`) survives [restart], as it does
 * on a real server: a restarted node keeps its identity and role, and comes back without data.
 *
 * [close] stops every process and deletes the fleet's directory; a fleet never closed is closed by
 * a JVM shutdown hook, and a start that fails stops what it started before it throws.
 *
 * Thread-safety: every method may be called from several threads, but operations that change the
 * cluster ([failover], [migrateSlot], [restart], [reset]) are meant to run one at a time.
 */
public class RedisClusterFleet private constructor(
    private val baseDir: Path,
    private val nodes: List<RedisMaster>,
    private val shardCount: Int,
    private val replicasPerShard: Int,
    private val timeoutMillis: Int,
    private val readyTimeout: Duration,
) : AutoCloseable {
    private val closeLock = Any()

    @Volatile private var closed = false

    /** The number of shards (primaries at start); `shards()` from Java. */
    public val shards: Int
        @JvmName("shards") get() = shardCount

    /** The number of nodes, primaries and replicas; `size()` from Java. */
    public val size: Int
        @JvmName("size") get() = nodes.size

    /**
     * The version the nodes report in `INFO server`: `redis_version`, or `valkey_version` on Valkey
     * (which reports 7.2.4 as its `redis_version`). `serverVersion()` from Java.
     */
    public val serverVersion: String
        @JvmName("serverVersion") get() = nodes.first().version

    /** `Redis` or `Valkey`, from `INFO server`; `serverName()` from Java. */
    public val serverName: String
        @JvmName("serverName") get() = nodes.first().serverName

    /**
     * Seed URIs of every node, `redis://127.0.0.1:PORT`, in node order; a cluster client finds the
     * whole topology from any one of them. Ports never change, so the URIs stay valid across
     * [kill] and [restart].
     */
    public fun uris(): List<String> = nodes.indices.map(::uri)

    /**
     * The URI of node [node], as in [uris].
     *
     * @throws IllegalArgumentException if [node] is not in `0 until size`.
     */
    public fun uri(node: Int): String = "redis://127.0.0.1:${port(node)}"

    /**
     * The port of node [node] on 127.0.0.1; its cluster bus listens on this port + 10000.
     *
     * @throws IllegalArgumentException if [node] is not in `0 until size`.
     */
    public fun port(node: Int): Int = node(node).port

    /**
     * The nodes started for shard [shard]: its primary at start, then its replicas.
     *
     * @throws IllegalArgumentException if [shard] is not in `0 until shards`.
     */
    public fun nodesOf(shard: Int): List<Int> {
        checkShard(shard)
        val first = shard * (replicasPerShard + 1)
        return (first..first + replicasPerShard).toList()
    }

    /**
     * The shard node [node] belongs to (it keeps it across failovers).
     *
     * @throws IllegalArgumentException if [node] is not in `0 until size`.
     */
    public fun shardOfNode(node: Int): Int {
        node(node)
        return node / (replicasPerShard + 1)
    }

    /**
     * The node that is shard [shard]'s primary now, as the cluster sees it (asked of a node that is
     * running and not paused): the node of the shard flagged `master` that serves slots (or, if none
     * serves any, that is not flagged as failing).
     *
     * @throws IllegalArgumentException if [shard] is not in `0 until shards`.
     * @throws RedisFleetException if no node of the shard is a primary now, or no node answers.
     */
    public fun primary(shard: Int): Int = primaryIn(shard, topology())

    /**
     * The nodes that are shard [shard]'s replicas now, as the cluster sees it: those of the shard
     * that are not its [primary] (killed ones included).
     *
     * @throws IllegalArgumentException if [shard] is not in `0 until shards`.
     * @throws RedisFleetException as [primary] does.
     */
    public fun replicas(shard: Int): List<Int> {
        val primary = primary(shard)
        return nodesOf(shard).filter { it != primary }
    }

    /**
     * The cluster's own id of node [node] (`CLUSTER MYID`). It stays the same across [restart].
     *
     * @throws RedisFleetException if the node is not running or does not answer.
     */
    public fun nodeId(node: Int): String = command(node, "CLUSTER", "MYID") as String

    /**
     * The hash slot of [key] (0 to 16383), computed as the cluster does: CRC16 of the key, or of its
     * hash tag (the part between the first `{` and the next `}`, when not empty), modulo 16384.
     */
    public fun slotOf(key: String): Int = keySlot(key)

    /**
     * The shard whose primary serves [slot] now (during a migration: the one it is migrating from).
     *
     * @throws IllegalArgumentException if [slot] is not in 0..16383.
     * @throws RedisFleetException if no node serves the slot, or no node answers.
     */
    public fun shardOf(slot: Int): Int {
        require(slot in 0 until SLOTS) { "slot expected in 0..${SLOTS - 1}, but was $slot" }
        val view = topology()
        val owner = view.owners[slot] ?: throw RedisFleetException("no node serves slot $slot: $view")
        return shardOfNode(nodeAt(owner.port))
    }

    /**
     * Kills node [node] with SIGKILL and returns once its process is gone: a crash. Its data is
     * lost; its cluster configuration is kept for [restart]. When it was a primary with a replica,
     * the cluster fails its shard over by itself once it has been silent for [Builder.nodeTimeout]
     * and a majority of primaries agree; [awaitReady] waits for that.
     *
     * Killing a node that is not running does nothing.
     *
     * @throws IllegalArgumentException if [node] is not in `0 until size`.
     * @throws IllegalStateException if the fleet is closed.
     */
    public fun kill(node: Int) {
        openNode(node).kill()
    }

    /**
     * Freezes node [node] with SIGSTOP and returns once it is stopped: it keeps its connections but
     * answers nothing, neither clients nor the cluster bus. Paused past [Builder.nodeTimeout], a
     * primary is failed over by its shard's replica; after [resume] it then learns that it was
     * replaced and turns into a replica.
     *
     * @throws IllegalArgumentException if [node] is not in `0 until size`.
     * @throws IllegalStateException if the fleet is closed or the node is not running.
     */
    public fun pause(node: Int) {
        openNode(node).pause()
    }

    /**
     * Continues node [node] with SIGCONT and returns once it answers PING again.
     *
     * @throws IllegalArgumentException if [node] is not in `0 until size`.
     * @throws IllegalStateException if the fleet is closed or the node is not running.
     */
    public fun resume(node: Int) {
        openNode(node).resume()
    }

    /**
     * Starts node [node] again on the same port (killing it first if it runs), with no data but its
     * cluster configuration, as a server without persistence comes back after a crash: same node id,
     * and the role it had, unless the cluster failed it over meanwhile, in which case it rejoins as a
     * replica of the shard's new primary and copies its data. A primary restarted before its replica
     * took over comes back empty and still serving its slots (and its replica then copies the empty
     * data set).
     *
     * Returns once the node answers PING; [awaitReady] waits until the cluster agrees on it again.
     *
     * @throws IllegalArgumentException if [node] is not in `0 until size`.
     * @throws IllegalStateException if the fleet is closed.
     * @throws RedisFleetException if the process fails to start or to answer in time.
     */
    public fun restart(node: Int) {
        openNode(node).restart()
    }

    /**
     * Whether the process of node [node] is alive; a paused node counts as running.
     *
     * @throws IllegalArgumentException if [node] is not in `0 until size`.
     */
    public fun isRunning(node: Int): Boolean = node(node).isRunning

    /**
     * Whether node [node] is paused by [pause] (and not resumed, killed or restarted since).
     *
     * @throws IllegalArgumentException if [node] is not in `0 until size`.
     */
    public fun isPaused(node: Int): Boolean = node(node).isPaused

    /**
     * Fails shard [shard] over to one of its replicas with `CLUSTER FAILOVER` sent to that replica,
     * and returns the replica's node index once every node that runs (and is not paused) sees it as
     * the shard's primary and the cluster is ready again ([awaitReady]).
     *
     * While the old primary answers, the failover is the coordinated one: the primary stops its
     * clients until the replica has every write, so nothing is lost, and the old primary becomes a
     * replica of the new one. When it is killed or paused, `CLUSTER FAILOVER FORCE` is used, which
     * needs only the votes of a majority of primaries.
     *
     * @throws IllegalArgumentException if [shard] is not in `0 until shards`.
     * @throws RedisFleetException if the shard has no running replica that is in sync, or the
     *   failover does not complete within the ready timeout.
     */
    public fun failover(shard: Int): Int {
        check(!closed) { "RedisClusterFleet is closed" }
        val view = topology()
        val primary = primaryIn(shard, view)
        val primaryId = view.byPort[port(primary)]?.id
        val replica =
            nodesOf(shard).firstOrNull { candidate ->
                candidate != primary && nodes[candidate].isRunning && !nodes[candidate].isPaused &&
                    view.byPort[port(candidate)]?.masterId == primaryId
            } ?: throw RedisFleetException("shard $shard has no running replica of node $primary to fail over to: $view")
        val primaryAnswers = nodes[primary].isRunning && !nodes[primary].isPaused
        if (primaryAnswers) {
            command(replica, "CLUSTER", "FAILOVER")
        } else {
            command(replica, "CLUSTER", "FAILOVER", "FORCE")
        }
        awaitCondition("node $replica to become shard $shard's primary") {
            liveNodes().all { primaryIn(shard, topology(it)) == replica } && role(replica) == "master"
        }
        awaitReady()
        return replica
    }

    /**
     * Moves hash slot [slot], with its keys, to shard [toShard]'s primary, as `redis-cli --cluster
     * reshard` does: the target is set `IMPORTING`, the source `MIGRATING`, the keys move with
     * `MIGRATE` (time to live included), and every primary is told the slot's new node. Returns once
     * every running node agrees. Moving a slot to the shard that serves it does nothing.
     *
     * For a test that needs the slot caught in the middle (clients then get `ASK` redirections for
     * the keys already moved), use [beginSlotMigration].
     *
     * @throws IllegalArgumentException if [slot] is not in 0..16383 or [toShard] not in `0 until shards`.
     * @throws RedisFleetException if a node refuses a step (for example a key that exists on both
     *   sides), or the nodes do not agree in time.
     */
    public fun migrateSlot(slot: Int, toShard: Int) {
        beginSlotMigration(slot, toShard).finish()
    }

    /**
     * Starts moving hash slot [slot] to shard [toShard]'s primary and returns the migration in its
     * middle state: the source serves the slot as `MIGRATING` and the target accepts it as
     * `IMPORTING`, no key moved yet. [SlotMigration.moveKeys] moves some or all keys,
     * [SlotMigration.finish] moves the rest and hands the slot over.
     *
     * While it lasts, a client asking the source for a key that was moved is answered `-ASK slot
     * host:port` (try once at the target, after `ASKING`); new keys of the slot are created on the
     * target. [reset] ends a migration left unfinished (the slot stays with the source).
     *
     * @throws IllegalArgumentException as [migrateSlot] does.
     * @throws IllegalStateException if the slot already serves from [toShard].
     * @throws RedisFleetException if a node refuses a step.
     */
    public fun beginSlotMigration(slot: Int, toShard: Int): SlotMigration {
        require(slot in 0 until SLOTS) { "slot expected in 0..${SLOTS - 1}, but was $slot" }
        checkShard(toShard)
        check(!closed) { "RedisClusterFleet is closed" }
        val view = topology()
        val owner = view.owners[slot] ?: throw RedisFleetException("no node serves slot $slot: $view")
        val source = nodeAt(owner.port)
        val target = primaryIn(toShard, view)
        val targetId = view.byPort[port(target)]?.id ?: throw RedisFleetException("node $target is unknown to the cluster: $view")
        return SlotMigration(slot, source, owner.id, target, targetId, started = source != target)
    }

    /**
     * One slot on its way from one primary to another; made by [beginSlotMigration]. Not thread-safe.
     */
    public inner class SlotMigration internal constructor(
        /** The slot being moved. */
        public val slot: Int,
        /** The node serving the slot until [finish]. */
        public val source: Int,
        private val sourceId: String,
        /** The node that serves the slot after [finish]. */
        public val target: Int,
        private val targetId: String,
        started: Boolean,
    ) {
        private var done = !started

        init {
            if (started) {
                command(target, "CLUSTER", "SETSLOT", slot.toString(), "IMPORTING", sourceId)
                command(source, "CLUSTER", "SETSLOT", slot.toString(), "MIGRATING", targetId)
            }
        }

        /** The keys of the slot still on the source (`CLUSTER GETKEYSINSLOT`), sorted. */
        public fun keysLeft(): List<String> =
            (command(source, "CLUSTER", "GETKEYSINSLOT", slot.toString(), "100000") as List<*>).map { it.toString() }.sorted()

        /**
         * Moves up to [max] keys of the slot from the source to the target with `MIGRATE` (their
         * time to live included) and returns how many moved.
         *
         * @throws IllegalStateException after [finish].
         * @throws RedisFleetException if `MIGRATE` fails, for example because the key exists on the target.
         */
        @JvmOverloads
        public fun moveKeys(max: Int = Int.MAX_VALUE): Int {
            check(!done) { "the migration of slot $slot is finished" }
            require(max >= 0) { "max expected to be at least 0, but was $max" }
            var moved = 0
            while (moved < max) {
                val batch = minOf(MIGRATE_BATCH, max - moved)
                val keys = (command(source, "CLUSTER", "GETKEYSINSLOT", slot.toString(), batch.toString()) as List<*>).map { it.toString() }
                if (keys.isEmpty()) break
                command(
                    source,
                    "MIGRATE", "127.0.0.1", port(target).toString(), "", "0", timeoutMillis.toString(), "KEYS", *keys.toTypedArray(),
                )
                moved += keys.size
            }
            return moved
        }

        /**
         * Moves the keys left and hands the slot to the target (`CLUSTER SETSLOT slot NODE` on the
         * target, the source, then every other primary), and returns once every running node agrees.
         * Calling it again does nothing.
         */
        public fun finish() {
            if (done) return
            moveKeys()
            command(target, "CLUSTER", "SETSLOT", slot.toString(), "NODE", targetId)
            command(source, "CLUSTER", "SETSLOT", slot.toString(), "NODE", targetId)
            val view = topology()
            for (node in liveNodes()) {
                if (node == target || node == source) continue
                if (view.byPort[port(node)]?.isPrimary == true) command(node, "CLUSTER", "SETSLOT", slot.toString(), "NODE", targetId)
            }
            done = true
            awaitCondition("every node to see slot $slot on node $target") {
                liveNodes().all { topology(it).owners[slot]?.id == targetId }
            }
        }

        /** Describes the migration. */
        override fun toString(): String = "SlotMigration(slot=$slot, from node $source to node $target${if (done) ", finished" else ""})"
    }

    /**
     * Sends one command to node [node] and returns its reply, as [RedisFleet.command] does. Cluster
     * redirections are not followed: a key of a slot the node does not serve gets a
     * [RedisFleetException] whose message is the `MOVED` or `ASK` error.
     *
     * @throws IllegalArgumentException if [node] is not in `0 until size` or [args] is empty.
     * @throws IllegalStateException if the fleet is closed.
     * @throws RedisFleetException with the server's message on an error reply, or if the node is
     *   not running, cannot be reached, or does not answer in time.
     */
    public fun command(node: Int, vararg args: String): Any? {
        require(args.isNotEmpty()) { "args expected to hold a command name, but was empty" }
        val master = openNode(node)
        if (!master.isRunning) {
            throw RedisFleetException("node $node (127.0.0.1:${master.port}) is not running (killed or exited); restart($node) starts it again")
        }
        val reply =
            try {
                RespConnection.call(master.port, null, timeoutMillis, args.asList())
            } catch (e: SocketTimeoutException) {
                val hint = if (master.isPaused) " (it is paused)" else ""
                throw RedisFleetException("node $node (127.0.0.1:${master.port}) did not answer ${args[0]} within $timeoutMillis ms$hint", e)
            } catch (e: IOException) {
                throw RedisFleetException("node $node (127.0.0.1:${master.port}): ${args[0]} failed: $e", e)
            }
        if (reply is RespError) throw RedisFleetException("node $node (127.0.0.1:${master.port}): ${reply.message}")
        return reply
    }

    /**
     * The keys on node [node] matching [pattern] (`KEYS`), sorted; a replica shows its primary's.
     *
     * @throws RedisFleetException as [command] does.
     */
    @JvmOverloads
    public fun keys(node: Int, pattern: String = "*"): List<String> =
        (command(node, "KEYS", pattern) as List<*>).map { it.toString() }.sorted()

    /**
     * The number of keys on every primary that runs and is not paused (`DBSIZE`), summed.
     *
     * @throws RedisFleetException as [command] does.
     */
    public fun keyCount(): Int {
        val view = topology()
        return liveNodes().filter { view.byPort[port(it)]?.isPrimary == true }.sumOf { (command(it, "DBSIZE") as Long).toInt() }
    }

    /**
     * The whole cluster as one Redlock master: `redis-cluster://127.0.0.1:PORT,...` with every node
     * as a seed, for `RedlockConfig.Builder.master(String)`. `masterUri()` from Java.
     */
    public fun masterUri(): String = "redis-cluster://" + nodes.indices.joinToString(",") { "127.0.0.1:${port(it)}" }

    /**
     * Marks every hash slot, for the library's restart guard, as having granted no lock it could
     * have forgotten: each slot's boot marker (core's `Keys.clusterBootMarker`) is dated a year back on the
     * primary serving it, so a cluster master counts its votes at once, as [RedisFleet] does for the
     * masters it starts. Without it, the first lock in a slot of a cluster started (or flushed, or
     * failed over) less than `restartGuard` ago waits for the guard. Not done by [Builder.start] or
     * [flushAll]: the markers are keys ([keyCount] counts them). Writes 16384 keys in one pipeline
     * per primary; a primary restarted later comes back without them.
     *
     * @throws RedisFleetException if a primary cannot be reached or refuses a write.
     */
    public fun markNeverGranted() {
        check(!closed) { "RedisClusterFleet is closed" }
        val view = topology()
        for (node in liveNodes()) {
            if (view.byPort[port(node)]?.isPrimary != true) continue
            val slots = (0 until SLOTS).filter { view.owners[it]?.port == port(node) }
            if (slots.isEmpty()) continue
            try {
                RespConnection.open(port(node), timeoutMillis).use { c ->
                    c.write(listOf("TIME"))
                    c.flush()
                    val seconds = ((c.read() as List<*>)[0] as String).toLong()
                    val dated = (seconds * 1000 - YEAR_MILLIS).toString()
                    for (slot in slots) c.write(listOf("SET", Keys.clusterBootMarker(slot), dated))
                    c.flush()
                    for (slot in slots) {
                        val reply = c.read()
                        if (reply is RespError) throw RedisFleetException("node $node (127.0.0.1:${port(node)}): ${reply.message}")
                    }
                }
            } catch (e: IOException) {
                throw RedisFleetException("node $node (127.0.0.1:${port(node)}) could not be marked: $e", e)
            }
        }
    }

    /**
     * Deletes every key on every primary that runs and is not paused (`FLUSHALL`); their replicas
     * follow.
     *
     * @throws RedisFleetException as [command] does.
     */
    public fun flushAll() {
        val view = topology()
        for (node in liveNodes()) {
            if (view.byPort[port(node)]?.isPrimary == true) command(node, "FLUSHALL")
        }
    }

    /**
     * Waits until the cluster is whole again after a change: every node that runs and is not paused
     * reports `cluster_state:ok`, knows every such node as healthy, and agrees with the others on the
     * primary of every slot; and every running replica is in sync with its primary. [Builder.start],
     * [failover] and [migrateSlot] end with it; after [kill], [pause], [resume] or [restart] a test
     * calls it when it needs the cluster settled.
     *
     * @throws RedisFleetException naming what is still missing, if that does not happen within
     *   [Builder.readyTimeout] (for example when a shard's primary is down and it has no replica).
     */
    public fun awaitReady() {
        awaitCondition("the cluster to be ready") { readiness() == null }
    }

    /**
     * Waits until every running, unpaused replica of shard [shard] has every write its primary
     * had taken when this was called (its replication offset reaches the primary's), so that a
     * failover or a crash of the primary cannot lose those writes. (`WAIT` through [command] would
     * not do: it waits for the writes of its own connection, and each [command] opens a new one.)
     *
     * @throws IllegalArgumentException if [shard] is not in `0 until shards`.
     * @throws RedisFleetException if the replicas do not catch up within the ready timeout.
     */
    public fun awaitReplicated(shard: Int) {
        val primary = primary(shard)
        val written = infoField(primary, "replication", "master_repl_offset")?.toLongOrNull()
            ?: throw RedisFleetException("node $primary reports no master_repl_offset")
        awaitCondition("shard $shard's replicas to reach offset $written") {
            replicas(shard).filter { nodes[it].isRunning && !nodes[it].isPaused }.all { replica ->
                (infoField(replica, "replication", "slave_repl_offset")?.toLongOrNull() ?: -1L) >= written
            }
        }
    }

    private fun infoField(node: Int, section: String, field: String): String? =
        (command(node, "INFO", section) as String).lineSequence().map(String::trim).firstOrNull { it.startsWith("$field:") }?.substringAfter(':')

    /**
     * Brings the cluster back to a usable state between tests: resumes paused nodes, restarts
     * killed ones, ends slot migrations left unfinished (`CLUSTER SETSLOT slot STABLE`; the slot
     * stays with its source), waits until the cluster is ready, and deletes every key. Roles are
     * left as they are: a shard failed over keeps its new primary.
     *
     * @throws RedisFleetException if the cluster does not become ready in time.
     */
    public fun reset() {
        check(!closed) { "RedisClusterFleet is closed" }
        for (node in nodes.indices) {
            when {
                !nodes[node].isRunning -> nodes[node].restart()
                nodes[node].isPaused -> nodes[node].resume()
            }
        }
        awaitReady()
        // Only primaries take SETSLOT. Valkey's replicas copy it from their primary's stream (and a
        // replica restarted in the middle keeps the state it had), so every primary is told about
        // every slot that any node still shows in flight, once the replicas are in sync.
        val inFlight = nodes.indices.flatMap { node -> topology(node).byPort[port(node)]?.let { it.migrating.keys + it.importing.keys }.orEmpty() }.toSet()
        if (inFlight.isNotEmpty()) {
            val view = topology()
            for (node in nodes.indices) {
                if (view.byPort[port(node)]?.isPrimary != true) continue
                for (slot in inFlight) command(node, "CLUSTER", "SETSLOT", slot.toString(), "STABLE")
            }
            awaitCondition("every slot to be stable") {
                nodes.indices.all { node -> topology(node).byPort[port(node)]?.let { it.migrating.isEmpty() && it.importing.isEmpty() } != false }
            }
        }
        flushAll()
    }

    /**
     * The process ids of the nodes whose processes are alive (paused ones included), in node order.
     */
    public fun pids(): List<Long> = nodes.mapNotNull { it.pid() }

    /**
     * Kills every process of the cluster (paused ones too), waits until they are gone, and deletes
     * the fleet's directory. Idempotent. After close, [uris], [port], [size] and [shards] still
     * answer; [isRunning] is `false`; every other method throws [IllegalStateException].
     *
     * @throws RedisFleetException if a process is still alive 10 s after SIGKILL (the others are
     *   still stopped and the directory still deleted).
     */
    override fun close() {
        synchronized(closeLock) {
            if (closed) return
            closed = true
            var failure: Throwable? = null
            for (node in nodes) {
                try {
                    node.destroy()
                } catch (e: Throwable) {
                    failure?.addSuppressed(e) ?: run { failure = e }
                }
            }
            for (node in nodes) {
                try {
                    node.awaitDestroyed()
                } catch (e: Throwable) {
                    failure?.addSuppressed(e) ?: run { failure = e }
                }
            }
            runCatching { RedisMaster.deleteRecursively(baseDir) }
            FleetRegistry.unregister(this)
            failure?.let { throw it }
        }
    }

    /** Describes the cluster: its shards, ports, server, and whether it is closed. */
    override fun toString(): String =
        "RedisClusterFleet(shards=$shardCount, replicasPerShard=$replicasPerShard, ports=${nodes.map { it.port }}, " +
            "server=$serverName $serverVersion${if (closed) ", closed" else ""})"

    // --- topology ---

    private fun node(node: Int): RedisMaster {
        require(node in nodes.indices) { "node expected in 0..${nodes.size - 1}, but was $node" }
        return nodes[node]
    }

    private fun openNode(node: Int): RedisMaster {
        val master = node(node)
        check(!closed) { "RedisClusterFleet is closed" }
        return master
    }

    private fun checkShard(shard: Int) {
        require(shard in 0 until shardCount) { "shard expected in 0..${shardCount - 1}, but was $shard" }
    }

    private fun nodeAt(port: Int): Int =
        nodes.indexOfFirst { it.port == port }.takeIf { it >= 0 } ?: throw RedisFleetException("no node of this fleet has port $port")

    private fun liveNodes(): List<Int> = nodes.indices.filter { nodes[it].isRunning && !nodes[it].isPaused }

    /** The view of the first node that runs and is not paused. */
    private fun topology(): ClusterView {
        val live = liveNodes()
        if (live.isEmpty()) throw RedisFleetException("no node of the cluster is running and unpaused")
        return topology(live.first())
    }

    private fun topology(node: Int): ClusterView = ClusterView.parse(command(node, "CLUSTER", "NODES") as String)

    private fun primaryIn(shard: Int, view: ClusterView): Int {
        val candidates = nodesOf(shard).mapNotNull { node -> view.byPort[port(node)]?.takeIf { it.isPrimary }?.let { node to it } }
        val serving = candidates.filter { (_, entry) -> view.owners.any { it?.id == entry.id } }
        val chosen = serving.singleOrNull() ?: candidates.singleOrNull { (_, entry) -> !entry.failing }
        return chosen?.first ?: throw RedisFleetException("shard $shard has no primary now: $view")
    }

    private fun role(node: Int): String = (command(node, "ROLE") as List<*>)[0].toString()

    /** Null when the cluster is ready, else what is missing. */
    private fun readiness(): String? {
        val live = liveNodes()
        if (live.isEmpty()) return "no node runs unpaused"
        var reference: ClusterView? = null
        val views = HashMap<Int, ClusterView>()
        for (node in live) {
            val info = command(node, "CLUSTER", "INFO") as String
            if (!info.lineSequence().any { it.trim() == "cluster_state:ok" }) return "node $node does not report cluster_state:ok"
            val view = topology(node)
            views[node] = view
            for (other in live) {
                val entry = view.byPort[port(other)] ?: return "node $node does not know node $other yet"
                if (entry.failing || entry.handshake) return "node $node sees node $other as ${entry.flags}"
                if (!entry.myself && !entry.connected) return "node $node is not connected to node $other"
            }
            val holes = view.owners.count { it == null }
            if (holes > 0) return "node $node sees $holes slots without a primary"
            for (owner in view.owners.filterNotNull().distinctBy { it.id }) {
                val serving = nodes.indexOfFirst { it.port == owner.port }
                if (serving !in live) return "node $node sees slots served by node $serving, which is down or paused"
            }
            val previous = reference
            if (previous == null) {
                reference = view
            } else if ((0 until SLOTS).any { previous.owners[it]?.id != view.owners[it]?.id }) {
                return "nodes disagree on the primaries of the slots"
            }
            if (view.byPort[port(node)]?.isPrimary == false) {
                val replication = command(node, "INFO", "replication") as String
                if (!replication.lineSequence().any { it.trim() == "master_link_status:up" }) return "replica $node is not in sync with its primary"
            }
        }
        // Roles travel by gossip: every node must have heard of every role change.
        for (node in live) {
            val self = views.getValue(node).byPort.getValue(port(node))
            for ((viewer, view) in views) {
                val seen = view.byPort.getValue(port(node))
                if (seen.isPrimary != self.isPrimary || seen.masterId != self.masterId) {
                    return "node $viewer has not heard yet that node $node is ${if (self.isPrimary) "a primary" else "a replica"}"
                }
            }
        }
        return null
    }

    private fun awaitCondition(what: String, condition: () -> Boolean) {
        val deadline = System.nanoTime() + readyTimeout.toNanos()
        var last: Exception? = null
        while (true) {
            try {
                if (condition()) return
            } catch (e: RedisFleetException) {
                last = e // a node that is still starting, or a view that is changing
            }
            if (System.nanoTime() - deadline > 0) {
                val why = runCatching { readiness() }.getOrElse { it.message }
                throw RedisFleetException("waited ${readyTimeout.toMillis()} ms for $what; the cluster: ${why ?: "ready"}", last)
            }
            Thread.sleep(POLL_MILLIS)
        }
    }

    // --- start ---

    private fun startAll() {
        startNodes()
        for (i in nodes.indices) command(i, "CLUSTER", "SET-CONFIG-EPOCH", (i + 1).toString())
        for (shard in 0 until shardCount) {
            val first = shard * SLOTS / shardCount
            val last = (shard + 1) * SLOTS / shardCount - 1
            command(nodesOf(shard).first(), "CLUSTER", "ADDSLOTS", *(first..last).map(Int::toString).toTypedArray())
        }
        for (i in 1 until nodes.size) command(0, "CLUSTER", "MEET", "127.0.0.1", nodes[i].port.toString())
        awaitCondition("every node to know every other") {
            nodes.indices.all { node ->
                val view = topology(node)
                nodes.indices.all { other -> view.byPort[port(other)]?.let { !it.handshake } == true }
            }
        }
        for (shard in 0 until shardCount) {
            val primaryId = nodeId(nodesOf(shard).first())
            for (replica in nodesOf(shard).drop(1)) command(replica, "CLUSTER", "REPLICATE", primaryId)
        }
        awaitReady()
    }

    private fun startNodes() {
        val failures = AtomicReferenceArray<Throwable>(nodes.size)
        val threads =
            nodes.mapIndexed { i, node ->
                thread(name = "redis-cluster-start-$i", isDaemon = true) {
                    try {
                        node.start()
                    } catch (e: Throwable) {
                        failures.set(i, e)
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

    /**
     * Configures a [RedisClusterFleet]; each setter returns this builder. Not thread-safe; [start]
     * may be called more than once, each call starting a new cluster.
     */
    public class Builder internal constructor() {
        private var shards = 3
        private var replicasPerShard = 1
        private var nodeTimeout: Duration = Duration.ofSeconds(2)
        private var readyTimeout: Duration = Duration.ofSeconds(30)
        private var commandTimeout: Duration = Duration.ofSeconds(5)
        private var serverArgs: List<String> = emptyList()
        private var redisServer: Path? = null

        /**
         * The number of shards, each a primary with its replicas; default 3.
         *
         * @throws IllegalArgumentException if [count] is not in 1..8.
         */
        public fun shards(count: Int): Builder = apply {
            require(count in 1..MAX_SHARDS) { "shards expected in 1..$MAX_SHARDS, but was $count" }
            shards = count
        }

        /**
         * The number of replicas of each primary; default 1. Without replicas a shard whose primary
         * is down cannot be failed over.
         *
         * @throws IllegalArgumentException if [count] is not in 0..3.
         */
        public fun replicasPerShard(count: Int): Builder = apply {
            require(count in 0..3) { "replicasPerShard expected in 0..3, but was $count" }
            replicasPerShard = count
        }

        /**
         * `cluster-node-timeout`: how long a node may be silent before the others deem it failing,
         * and so roughly how soon a crashed primary's replica takes over; default 2 s.
         *
         * @throws IllegalArgumentException if [timeout] is not between 100 ms and 1 minute.
         */
        public fun nodeTimeout(timeout: Duration): Builder = apply {
            require(timeout.toMillis() in 100..60_000) { "nodeTimeout expected between 100 ms and 1 minute, but was $timeout" }
            nodeTimeout = timeout
        }

        /**
         * How long [start], [RedisClusterFleet.awaitReady], [RedisClusterFleet.failover] and
         * [RedisClusterFleet.migrateSlot] wait for the cluster to agree; default 30 s.
         *
         * @throws IllegalArgumentException if [timeout] is not between 1 s and 10 minutes.
         */
        public fun readyTimeout(timeout: Duration): Builder = apply {
            require(timeout.toMillis() in 1_000..600_000) { "readyTimeout expected between 1 s and 10 minutes, but was $timeout" }
            readyTimeout = timeout
        }

        /**
         * How long [RedisClusterFleet.command] waits to connect and then for a reply; default 5 s.
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
         * Extra `redis-server` arguments for every node, such as `"--cluster-require-full-coverage",
         * "no"`; replaces those set before. The fleet owns `--port`, `--bind`, `--dir`,
         * `--daemonize`, `--cluster-enabled`, `--cluster-config-file` and `--cluster-node-timeout`
         * (use [nodeTimeout]).
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

        /** The `redis-server` binary to run; by default found as [RedisFleet.Builder.redisServer] describes. */
        public fun redisServer(path: Path): Builder = apply { redisServer = path }

        /**
         * Every node announces its loopback address: a node that never met another (a one-shard
         * cluster without replicas) otherwise lists itself with an empty host in `CLUSTER SLOTS`,
         * which clients other than Lettuce (Redisson, for one) cannot connect to.
         */
        private fun announce(): List<String> =
            if (serverArgs.contains("--cluster-announce-ip")) emptyList() else listOf("--cluster-announce-ip", "127.0.0.1")

        /**
         * Starts the nodes, builds the cluster, and returns once it is ready ([awaitReady]).
         *
         * @throws RedisFleetException if no `redis-server` can be found, a node fails to start, or
         *   the cluster is not ready within the ready timeout; everything started is stopped first.
         */
        public fun start(): RedisClusterFleet {
            val binary = RedisServerBinary.resolve(redisServer)
            val dir =
                try {
                    Files.createTempDirectory("redlock-cluster-")
                } catch (e: IOException) {
                    throw RedisFleetException("cannot create a temp directory for the cluster: $e", e)
                }
            val settings =
                MasterSettings(
                    binary,
                    FleetSecurity(null, emptyList(), null),
                    listOf(
                        "--cluster-enabled", "yes",
                        "--cluster-config-file", NODES_CONF,
                        "--cluster-node-timeout", nodeTimeout.toMillis().toString(),
                        // Replicas start copying at once (Redis 7 waits 5 s for more replicas by default).
                        "--repl-diskless-sync-delay", "0",
                    ) + announce() + serverArgs,
                    commandTimeout.toMillis().toInt(),
                    clusterBus = true,
                    keptFiles = setOf(NODES_CONF),
                )
            val count = shards * (replicasPerShard + 1)
            val nodes = List(count) { RedisMaster(it, settings, dir.resolve("node-$it")) }
            val fleet = RedisClusterFleet(dir, nodes, shards, replicasPerShard, settings.commandTimeoutMillis, readyTimeout)
            FleetRegistry.register(fleet)
            try {
                fleet.startAll()
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

    /** Factories and the slot function. */
    public companion object {
        /** The number of hash slots of a Redis Cluster. */
        public const val SLOTS: Int = 16_384

        private const val MAX_SHARDS = 8
        private const val NODES_CONF = "nodes.conf"
        private const val POLL_MILLIS = 20L
        private const val MIGRATE_BATCH = 100
        private const val YEAR_MILLIS = 31_536_000_000L
        private val OWNED_OPTIONS =
            setOf("--port", "--bind", "--dir", "--daemonize", "--cluster-enabled", "--cluster-config-file", "--cluster-node-timeout")

        /** A new [Builder]: three shards of a primary and one replica, node timeout 2 s. */
        @JvmStatic
        public fun builder(): Builder = Builder()

        /**
         * The hash slot of [key], as [RedisClusterFleet.slotOf]: CRC16 (XMODEM) of the key or of its
         * non-empty hash tag, modulo 16384.
         */
        @JvmStatic
        public fun keySlot(key: String): Int {
            val bytes = key.toByteArray(Charsets.UTF_8)
            val open = bytes.indexOf('{'.code.toByte())
            var from = 0
            var to = bytes.size
            if (open >= 0) {
                val close = (open + 1 until bytes.size).firstOrNull { bytes[it] == '}'.code.toByte() }
                if (close != null && close > open + 1) {
                    from = open + 1
                    to = close
                }
            }
            var crc = 0
            for (i in from until to) {
                crc = crc xor ((bytes[i].toInt() and 0xff) shl 8)
                repeat(8) { crc = if (crc and 0x8000 != 0) (crc shl 1) xor 0x1021 else crc shl 1 }
                crc = crc and 0xffff
            }
            return crc % SLOTS
        }
    }
}

/** One line of `CLUSTER NODES`: a node as another node (or itself) sees it. */
internal class NodeEntry(
    val id: String,
    val port: Int,
    val flags: Set<String>,
    val masterId: String?,
    val connected: Boolean,
    val slots: List<IntRange>,
    val migrating: Map<Int, String>,
    val importing: Map<Int, String>,
) {
    val isPrimary: Boolean get() = "master" in flags
    val myself: Boolean get() = "myself" in flags
    val failing: Boolean get() = "fail" in flags || "fail?" in flags
    val handshake: Boolean get() = "handshake" in flags || "noaddr" in flags

    override fun toString(): String = "$id@$port${flags.sorted()}"
}

/** What one node's `CLUSTER NODES` says: every node it knows, and the primary of every slot. */
internal class ClusterView(val entries: List<NodeEntry>) {
    /** Nodes by port; a port known under two ids (a node replaced) maps to the one not failing. */
    val byPort: Map<Int, NodeEntry> =
        entries.filter { it.port != 0 }.groupBy { it.port }.mapValues { (_, same) -> same.firstOrNull { !it.failing } ?: same.first() }

    /** The primary serving each slot, or null. */
    val owners: Array<NodeEntry?> =
        arrayOfNulls<NodeEntry>(RedisClusterFleet.SLOTS).also { owners ->
            for (entry in entries) for (range in entry.slots) for (slot in range) owners[slot] = entry
        }

    override fun toString(): String =
        entries.joinToString(prefix = "[", postfix = "]") { e ->
            val role = if (e.isPrimary) "primary" else "replica of ${e.masterId?.take(8)}"
            "127.0.0.1:${e.port} ${e.id.take(8)} $role ${e.flags.filter { it != "master" && it != "slave" }}${if (e.slots.isEmpty()) "" else " slots ${e.slots.joinToString(",") { r -> if (r.first == r.last) "${r.first}" else "${r.first}-${r.last}" }}"}"
        }

    companion object {
        fun parse(text: String): ClusterView =
            ClusterView(
                text.lineSequence().map(String::trim).filter(String::isNotEmpty).map { line ->
                    val parts = line.split(' ')
                    val address = parts[1].substringBefore(',').substringBefore('@')
                    val slots = ArrayList<IntRange>()
                    val migrating = HashMap<Int, String>()
                    val importing = HashMap<Int, String>()
                    for (token in parts.drop(8)) {
                        when {
                            token.startsWith("[") && "->-" in token ->
                                token.trim('[', ']').split("->-").let { migrating[it[0].toInt()] = it[1] }
                            token.startsWith("[") && "-<-" in token ->
                                token.trim('[', ']').split("-<-").let { importing[it[0].toInt()] = it[1] }
                            "-" in token -> token.split('-').let { slots += it[0].toInt()..it[1].toInt() }
                            else -> token.toIntOrNull()?.let { slots += it..it }
                        }
                    }
                    NodeEntry(
                        id = parts[0],
                        port = address.substringAfterLast(':').toIntOrNull() ?: 0,
                        flags = parts[2].split(',').toSet(),
                        masterId = parts[3].takeIf { it != "-" },
                        connected = parts[7] == "connected",
                        slots = slots,
                        migrating = migrating,
                        importing = importing,
                    )
                }.toList(),
            )
    }
}
