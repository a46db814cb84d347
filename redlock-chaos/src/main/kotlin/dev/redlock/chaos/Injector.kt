package dev.redlock.chaos

import java.time.Duration as JavaDuration
import kotlin.random.Random
import kotlin.time.Duration
import kotlin.time.Duration.Companion.milliseconds
import kotlin.time.Duration.Companion.nanoseconds
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.delay
import kotlinx.coroutines.sync.Mutex
import kotlinx.coroutines.sync.withLock
import kotlinx.coroutines.withContext

/**
 * The child clients of a run: started up front, replaced when a fault kills one.
 *
 * @param replaceKilled whether a killed child is replaced by a fresh one (the soak does; a short
 *   run that kills its child last does not need to)
 */
class ChildPool(
    private val cluster: ChaosCluster,
    private val history: History,
    private val timing: Timing,
    private val resources: List<String>,
    private val seed: Long,
    private val replaceKilled: Boolean,
) : AutoCloseable {
    private val lock = Any()
    private val live = ArrayList<ChildClient>()
    private val all = ArrayList<ChildClient>()
    private var started = 0

    /** Starts [count] children and waits until all are ready. */
    fun start(count: Int) {
        val fresh = (0 until count).map { spawn() }
        fresh.forEach { it.awaitReady() }
    }

    private fun spawn(): ChildClient {
        synchronized(lock) {
            val index = started++
            val settings = WorkerSettings(
                name = "child$index",
                resources = resources,
                seed = seed * 7919 + index,
                timing = timing,
                minSectionMillis = CHILD_MIN_SECTION_MILLIS,
            )
            val child = ChildClient.start(settings, cluster.uris(index), history)
            live += child
            all += child
            return child
        }
    }

    fun live(): List<ChildClient> = synchronized(lock) { live.toList() }

    /** Kills [child] (SIGKILL) and, if so configured, starts a replacement. */
    fun kill(child: ChildClient) {
        synchronized(lock) { live -= child }
        child.kill()
        if (replaceKilled) spawn().awaitReady()
    }

    override fun close() {
        val children = synchronized(lock) { all.toList() }
        var failure: Throwable? = null
        // Stop them all first, then wait: they wind down in parallel.
        for (c in children) {
            try {
                c.close()
            } catch (e: Throwable) {
                failure?.addSuppressed(e) ?: run { failure = e }
            }
        }
        failure?.let { throw it }
    }

    private companion object {
        /** Children hold locks for at least this long, so that a fault aimed at a holder finds it holding. */
        const val CHILD_MIN_SECTION_MILLIS = 150L
    }
}

/**
 * Injects one fault at a time on a [ChaosCluster], records it in [history], and returns it.
 * Targets and durations are drawn from [random], so a run replays from its seed. Masters and
 * proxies busy with another fault are not chosen; a fault with no free target is skipped (null).
 */
class Injector(
    private val cluster: ChaosCluster,
    private val history: History,
    private val timing: Timing,
    private val children: ChildPool?,
    private val random: Random,
) {
    private val busy = Mutex()
    private val busyMasters = HashSet<Int>()
    private val busyProxies = HashSet<Pair<Int, Int>>()
    private val busyChildren = HashSet<String>()
    private val lease = timing.lease

    private suspend fun <T> io(block: () -> T): T = withContext(Dispatchers.IO) { block() }

    private fun now() = System.nanoTime()

    private fun between(lo: Double, hi: Double): Duration = lease * (lo + random.nextDouble() * (hi - lo))

    suspend fun inject(kind: FaultKind): FaultEvent? {
        val event = when (kind) {
            FaultKind.KILL_RESTART_AFTER_LEASE -> onMaster { m ->
                val start = now()
                io { cluster.fleet.kill(m) }
                val down = between(1.1, 1.6)
                delay(down)
                io { cluster.fleet.restart(m) }
                FaultEvent(kind, "master $m", start, now(), "down ${down.inWholeMilliseconds} ms")
            }
            FaultKind.RESTART_EMPTY_AT_ONCE -> onMaster { m ->
                val start = now()
                io { cluster.fleet.restart(m) }
                FaultEvent(kind, "master $m", start, now())
            }
            FaultKind.PAUSE_MASTER -> onMaster { m ->
                val start = now()
                io { cluster.fleet.pause(m) }
                val paused = between(0.2, 1.5)
                delay(paused)
                io { cluster.fleet.resume(m) }
                FaultEvent(kind, "master $m", start, now(), "paused ${paused.inWholeMilliseconds} ms")
            }
            FaultKind.LATENCY -> onProxies { sides, m ->
                val added = timing.nodeTimeout * (0.3 + random.nextDouble() * 2.7)
                val span = between(0.3, 1.5)
                val start = now()
                sides.forEach { cluster.proxies[it][m].latency = JavaDuration.ofNanos(added.inWholeNanoseconds) }
                delay(span)
                sides.forEach { cluster.proxies[it][m].latency = JavaDuration.ZERO }
                FaultEvent(kind, "sides $sides -> master $m", start, now(), "+${added.inWholeMilliseconds} ms each way for ${span.inWholeMilliseconds} ms")
            }
            FaultKind.BLACK_HOLE -> onProxies { sides, m ->
                val span = between(0.2, 1.5)
                val start = now()
                sides.forEach { cluster.proxies[it][m].blackHole() }
                delay(span)
                // TCP gives up on a long partition; a byte stream with a hole in it would not be TCP.
                sides.forEach {
                    cluster.proxies[it][m].resetConnections()
                    cluster.proxies[it][m].heal()
                }
                FaultEvent(kind, "sides $sides -> master $m", start, now(), "${span.inWholeMilliseconds} ms")
            }
            FaultKind.RESET -> onProxies { sides, m ->
                val start = now()
                sides.forEach { cluster.proxies[it][m].resetConnections() }
                FaultEvent(kind, "sides $sides -> master $m", start, now())
            }
            FaultKind.SCRIPT_FLUSH -> onMaster { m ->
                val start = now()
                io { cluster.fleet.command(m, "SCRIPT", "FLUSH") }
                FaultEvent(kind, "master $m", start, now())
            }
            FaultKind.FLUSHALL -> onMaster { m ->
                val start = now()
                io { cluster.fleet.command(m, "FLUSHALL") }
                FaultEvent(kind, "master $m", start, now())
            }
            FaultKind.EVICTION -> onMaster { m ->
                val start = now()
                val note = io { evictLockKeys(cluster, m, target = null) }
                FaultEvent(kind, "master $m", start, now(), note)
            }
            FaultKind.PAUSED_HOLDER -> onHolder { child, start ->
                val frozenFor = between(1.2, 2.0)
                delay(frozenFor - (now() - start).nanoseconds)
                io { child.thaw() }
                val end = now()
                history.record(ClientEvent(child.name, ClientEvent.Kind.FROZEN, start, end))
                FaultEvent(kind, child.name, start, end, "frozen ${frozenFor.inWholeMilliseconds} ms")
            }
            FaultKind.HOLDER_CRASH -> onHolder { child, _ ->
                // Killed while frozen: it cannot have left its section between the check and the kill.
                io { children!!.kill(child) }
                history.record(ClientEvent(child.name, ClientEvent.Kind.KILLED, child.killedAt, child.killedAt))
                FaultEvent(kind, child.name, child.killedAt, child.killedAt, "pid ${child.pid}")
            }
            FaultKind.SLOW_CLOCK -> throw IllegalArgumentException("SLOW_CLOCK is a client setting (Scenario.slowClients), not an injected event")
        }
        event?.let(history::record)
        return event
    }

    private suspend fun onMaster(action: suspend (Int) -> FaultEvent): FaultEvent? {
        val m = busy.withLock {
            val free = (0 until cluster.masters).filter { it !in busyMasters }
            if (free.isEmpty()) return null
            free[random.nextInt(free.size)].also { busyMasters += it }
        }
        try {
            return action(m)
        } finally {
            busy.withLock { busyMasters -= m }
        }
    }

    /** One master's proxies for one side, or for both sides (the master is then cut off from everyone). */
    private suspend fun onProxies(action: suspend (List<Int>, Int) -> FaultEvent): FaultEvent? {
        val (sides, m) = busy.withLock {
            val m = random.nextInt(cluster.masters)
            val sides = if (random.nextDouble() < 0.3) (0 until cluster.sides).toList() else listOf(random.nextInt(cluster.sides))
            if (sides.any { (it to m) in busyProxies }) return null
            sides.forEach { busyProxies += it to m }
            sides to m
        }
        try {
            return action(sides, m)
        } finally {
            busy.withLock { sides.forEach { busyProxies -= it to m } }
        }
    }

    /**
     * Waits (up to a few leases) for a child that holds a lock, freezes it (SIGSTOP), makes sure it
     * still holds it once the lines it wrote before stopping are read, and acts on it, frozen. A
     * child that turns out to have left its section is continued at once (a short freeze, recorded)
     * and the search goes on.
     */
    private suspend fun onHolder(action: suspend (ChildClient, Long) -> FaultEvent): FaultEvent? {
        val pool = children ?: return null
        val deadline = now() + (lease * 5).inWholeNanoseconds
        while (now() < deadline) {
            val child = busy.withLock {
                pool.live().firstOrNull { it.name !in busyChildren && it.isAlive && history.openSectionOf(it.name) != null }
                    ?.also { busyChildren += it.name }
            }
            if (child == null) {
                delay(2.milliseconds)
                continue
            }
            try {
                val seen = history.openSectionOf(child.name)
                val frozenAt = now()
                io { child.freeze() }
                delay(DRAIN)
                if (seen != null && history.openSectionOf(child.name) == seen) return action(child, frozenAt)
                io { child.thaw() }
                history.record(ClientEvent(child.name, ClientEvent.Kind.FROZEN, frozenAt, now()))
            } finally {
                busy.withLock { busyChildren -= child.name }
            }
        }
        return null
    }

    private companion object {
        /** Time for the parent to read what a child wrote just before it stopped. */
        val DRAIN: Duration = 30.milliseconds
    }
}

/**
 * Forces evictions on master [m]: `allkeys-lru` with `maxmemory` just above what it uses, then
 * filler values (never under the lock prefix) until the [target] key is gone, or, without a
 * target, until no lock key is left or enough was written. The limit is lifted and the fillers
 * deleted afterwards. Returns what happened.
 */
fun evictLockKeys(cluster: ChaosCluster, m: Int, target: String?): String {
    val fleet = cluster.fleet
    fun info(section: String, field: String): Long =
        (fleet.command(m, "INFO", section) as String).lineSequence().first { it.startsWith("$field:") }.substringAfter(':').trim().toLong()
    val lockBefore = lockKeys(fleet, m).size
    val evictedBefore = info("stats", "evicted_keys")
    val used = info("memory", "used_memory")
    fleet.command(m, "CONFIG", "SET", "maxmemory-policy", "allkeys-lru")
    fleet.command(m, "CONFIG", "SET", "maxmemory", (used + 256 * 1024).toString())
    val payload = "x".repeat(32 * 1024)
    var written = 0
    try {
        while (written < 4_000) {
            try {
                fleet.command(m, "SET", "filler:$written", payload, "PX", "10000")
            } catch (e: dev.redlock.testing.RedisFleetException) {
                // Nothing evictable left that frees enough (client buffers count too): the
                // master refuses writes, which is as far as this fault can go.
                if (e.message?.contains("OOM") == true) break else throw e
            }
            written++
            if (written % 8 == 0) {
                val gone = if (target != null) fleet.command(m, "EXISTS", target) == 0L else lockKeys(fleet, m).isEmpty()
                if (gone && (target != null || written >= 64)) break
            }
        }
    } finally {
        fleet.command(m, "CONFIG", "SET", "maxmemory", "0")
        for (chunk in (0 until written).chunked(500)) {
            fleet.command(m, "DEL", *chunk.map { "filler:$it" }.toTypedArray())
        }
    }
    val evicted = info("stats", "evicted_keys") - evictedBefore
    return "$evicted key(s) evicted after $written filler write(s); lock keys $lockBefore before"
}
