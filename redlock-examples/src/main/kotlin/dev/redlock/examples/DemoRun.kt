package dev.redlock.examples

import dev.redlock.core.LockLostException
import dev.redlock.core.LockNotAcquiredException
import dev.redlock.core.RedlockConfig
import dev.redlock.coroutines.DistributedLocks
import dev.redlock.coroutines.Redlock
import dev.redlock.postgres.PostgresLockConfig
import dev.redlock.postgres.PostgresLocks
import dev.redlock.testing.PostgresServer
import dev.redlock.testing.RedisFleet
import io.lettuce.core.RedisClient
import io.lettuce.core.RedisURI
import java.util.concurrent.ConcurrentHashMap
import java.util.concurrent.ConcurrentLinkedQueue
import java.util.concurrent.atomic.AtomicInteger
import java.util.concurrent.atomic.AtomicIntegerArray
import java.util.concurrent.atomic.AtomicReference
import kotlin.random.Random
import kotlin.time.Duration
import kotlin.time.Duration.Companion.milliseconds
import kotlin.time.Duration.Companion.seconds
import kotlin.time.DurationUnit
import kotlin.time.TimeSource
import kotlin.time.toJavaDuration
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.NonCancellable
import kotlinx.coroutines.cancelAndJoin
import kotlinx.coroutines.coroutineScope
import kotlinx.coroutines.currentCoroutineContext
import kotlinx.coroutines.delay
import kotlinx.coroutines.isActive
import kotlinx.coroutines.launch
import kotlinx.coroutines.withContext

/** Where the demo's locks live: Redis masters (Redlock) or a PostgreSQL database (`--backend postgres`). */
enum class DemoBackend {
    REDIS,
    POSTGRES,
}

/** What the demo runs against and how hard it works; see `--help` in [main]. */
data class DemoOptions(
    /** Masters to use instead of starting local ones; null starts [LOCAL_MASTERS] local masters. */
    val masters: List<String>? = null,
    /** Kill masters even when they are the user's own (`--masters`); local masters are always killed. */
    val chaos: Boolean = false,
    val workers: Int = 16,
    val resources: Int = 4,
    /** Critical sections to run while a quorum is up (phases 1 and 2 together). */
    val sections: Int = 400,
    /** [DemoBackend.POSTGRES] starts a local PostgreSQL and locks with PostgresLocks instead of Redlock. */
    val backend: DemoBackend = DemoBackend.REDIS,
) {
    init {
        require(backend == DemoBackend.REDIS || (masters == null && !chaos)) {
            "--masters and --chaos apply to --backend redis only (--backend postgres starts its own PostgreSQL)"
        }
        require(workers in 1..MAX_WORKERS) { "--workers must be between 1 and $MAX_WORKERS, but was $workers" }
        require(resources in 1..MAX_RESOURCES) { "--resources must be between 1 and $MAX_RESOURCES, but was $resources" }
        require(sections in 1..MAX_SECTIONS) { "--sections must be between 1 and $MAX_SECTIONS, but was $sections" }
        require(masters == null || masters.isNotEmpty()) { "--masters must name at least one redis:// URI" }
    }

    /** Whether the demo kills masters: always for its own, only with [chaos] for the user's. */
    val killsMasters: Boolean get() = masters == null || chaos

    companion object {
        const val LOCAL_MASTERS = 5
        const val MAX_WORKERS = 1_000
        const val MAX_RESOURCES = 1_000
        const val MAX_SECTIONS = 1_000_000
    }
}

/** Acquire latency (time from the `withRedlock` call to the start of its block) of some acquisitions. */
data class LatencyStats(val count: Int, val p50: Duration, val p90: Duration, val p99: Duration, val max: Duration) {
    companion object {
        /** Nearest-rank percentiles of [samples]; null when there are none. */
        fun of(samples: Collection<Duration>): LatencyStats? {
            if (samples.isEmpty()) return null
            val sorted = samples.sorted()
            fun rank(p: Double) = sorted[(Math.ceil(p * sorted.size).toInt() - 1).coerceIn(0, sorted.size - 1)]
            return LatencyStats(sorted.size, rank(0.50), rank(0.90), rank(0.99), sorted.last())
        }
    }
}

/** Everything the demo measured; [ok] is its verdict. */
data class DemoSummary(
    val masters: Int,
    /** `Redis` or `PostgreSQL`: what [masters] counts (for PostgreSQL, the one database). */
    val backend: String = "Redis",
    val localMasters: Boolean,
    val killedMasters: Int,
    /** Critical sections that ran to completion, by the number of masters up when they acquired. */
    val sectionsByMastersUp: Map<Int, Int>,
    /** Times a critical section found another holder inside (holder count above 1). */
    val holderOverlaps: Int,
    /** Times a critical section found that another worker entered the same resource meanwhile. */
    val writerOverlaps: Int,
    /** Increments of the per-resource unsynchronised counters that went missing. */
    val lostUpdates: Int,
    val latencyByMastersUp: Map<Int, LatencyStats>,
    val latency: LatencyStats?,
    /** Critical sections cancelled with [LockLostException]. */
    val locksLost: Int,
    /** [LockNotAcquiredException]s because another holder kept the lock for the whole wait. */
    val refusedContention: Int,
    /** [LockNotAcquiredException]s because too few masters answered for a quorum. */
    val refusedMastersDown: Int,
    val sampleLoss: String?,
    val sampleRefusal: String?,
    /** Lock keys left on the masters still running at the end (local masters only; null otherwise). */
    val keysLeft: Int?,
    val elapsed: Duration,
) {
    val sections: Int get() = sectionsByMastersUp.values.sum()
    val overlaps: Int get() = holderOverlaps + writerOverlaps + lostUpdates
    val ok: Boolean get() = overlaps == 0
}

/** A point-in-time view of the workers, for the progress line. */
data class DemoProgress(
    val sections: Int,
    val perSecond: Double,
    val held: Int,
    val waiting: Int,
    val locksLost: Int,
    val refused: Int,
)

/** Receives what the demo has to say while it runs; every method may be called from any thread. */
interface DemoListener {
    /** A new phase starts; one line. */
    fun phase(text: String) {}

    /** A notable event within a phase; one line. */
    fun info(text: String) {}

    /** The workers' state, about twice a second. */
    fun progress(progress: DemoProgress) {}

    companion object {
        val SILENT: DemoListener = object : DemoListener {}
    }
}

/** The demo could not run (a master is unreachable, the workers stall); not an overlap. */
class DemoException(message: String, cause: Throwable? = null) : RuntimeException(message, cause)

private const val KEY_PREFIX = "redlock-demo:"
private val LEASE_TIME = 1.seconds
private val WAIT_TIME = 5.seconds
private val SHORT_WAIT_TIME = 1.seconds
private val RETRY_DELAY = 20.milliseconds
private val LONG_JOB = 6.seconds
/** Work a worker does between critical sections, so that the phases last long enough to watch. */
private const val THINK_MIN_MS = 200
private const val THINK_MAX_MS = 600
private const val SECTION_MIN_MS = 5
private const val SECTION_MAX_MS = 30
private val PROGRESS_EVERY = 500.milliseconds
private val STALL_LIMIT = 15.seconds

/**
 * Runs the whole demo and returns what it measured; [main] only parses arguments and prints.
 *
 * Starts [DemoOptions.LOCAL_MASTERS] local masters unless [DemoOptions.masters] names some, then
 * (1) runs critical sections from [DemoOptions.workers] workers on [DemoOptions.resources]
 * resources with every master up, (2) kills as many masters as a quorum can spare and keeps
 * going, (3) has every resource held by a long job, kills one master more and watches the holders
 * lose their locks and new acquisitions be refused. Phases 2 and 3 are skipped for the user's own
 * masters unless [DemoOptions.chaos].
 *
 * Every process and connection it opens is closed before it returns, also on failure and on
 * cancellation (cancel it for Ctrl-C).
 *
 * @throws DemoException if the masters cannot be used, or no critical section completes for a while
 * @throws IllegalArgumentException if a master URI is not valid
 */
suspend fun runDemo(options: DemoOptions, listener: DemoListener = DemoListener.SILENT): DemoSummary {
    val clock = TimeSource.Monotonic.markNow()
    if (options.backend == DemoBackend.POSTGRES) return runOnPostgres(options, listener, clock)
    val uris: List<String>
    var fleet: RedisFleet? = null
    if (options.masters == null) {
        listener.phase("Starting ${DemoOptions.LOCAL_MASTERS} local Redis masters")
        fleet = withContext(Dispatchers.IO) { RedisFleet.start(DemoOptions.LOCAL_MASTERS) }
        uris = fleet.uris()
    } else {
        listener.phase("Using the ${options.masters.size} master(s) given with --masters")
        uris = options.masters
    }
    try {
        val config = RedlockConfig.builder()
            .masters(uris)
            .leaseTime(LEASE_TIME.toJavaDuration())
            .waitTime(WAIT_TIME.toJavaDuration())
            .retryDelay(RETRY_DELAY.toJavaDuration())
            .keyPrefix(KEY_PREFIX)
            .build()
        val killer: MasterKiller? = when {
            fleet != null -> FleetKiller(fleet)
            options.chaos -> ShutdownKiller(uris)
            else -> null
        }
        listener.info(
            "masters: " + uris.joinToString(", ") { redact(it) } +
                (if (fleet != null) " (Redis ${fleet.serverVersion}, pids ${fleet.pids().joinToString(" ")})" else ""),
        )
        val summary = Redlock(config).use { redlock ->
            DemoRun(options, redlock, uris.size, killer, listener, clock, postgres = false).run().copy(
                keysLeft = fleet?.let { f -> withContext(Dispatchers.IO) { f.keyCount() } },
            )
        }
        withContext(Dispatchers.IO) { fleet?.close() }
        return summary.copy(elapsed = clock.elapsedNow())
    } finally {
        withContext(NonCancellable + Dispatchers.IO) { fleet?.close() }
    }
}

/**
 * The same demo over PostgreSQL: a local server from the test kit (as the Redis masters are), the
 * same workers on [PostgresLocks], and in phase 3 the server is killed: every holding session ends,
 * so holders lose their locks, and new acquisitions are refused while it is down.
 */
private suspend fun runOnPostgres(options: DemoOptions, listener: DemoListener, clock: TimeSource.Monotonic.ValueTimeMark): DemoSummary {
    listener.phase("Starting a local PostgreSQL server")
    val server = withContext(Dispatchers.IO) { PostgresServer.start() }
    try {
        listener.info("database: ${server.jdbcUrl()} (PostgreSQL ${server.serverVersion}, ${server.binarySource})")
        val config = PostgresLockConfig.builder(server.dataSource())
            .leaseTime(LEASE_TIME.toJavaDuration())
            .waitTime(WAIT_TIME.toJavaDuration())
            .retryDelay(RETRY_DELAY.toJavaDuration())
            .keyPrefix(KEY_PREFIX)
            .build()
        val killer = object : MasterKiller {
            override fun kill(index: Int) = server.kill()
        }
        val locks = withContext(Dispatchers.IO) { PostgresLocks.create(config) }
        val summary = locks.use { DemoRun(options, it, 1, killer, listener, clock, postgres = true).run() }
        return summary.copy(backend = "PostgreSQL", elapsed = clock.elapsedNow())
    } finally {
        withContext(NonCancellable + Dispatchers.IO) { server.close() }
    }
}

/** Takes masters down in phases 2 and 3. */
private interface MasterKiller {
    fun kill(index: Int)
}

private class FleetKiller(private val fleet: RedisFleet) : MasterKiller {
    override fun kill(index: Int) = fleet.kill(index)
}

/** Stops the user's own masters with `SHUTDOWN NOSAVE` (only with `--chaos`). */
private class ShutdownKiller(private val uris: List<String>) : MasterKiller {
    override fun kill(index: Int) {
        val client = RedisClient.create(RedisURI.create(uris[index]))
        try {
            client.connect().use { connection ->
                try {
                    connection.sync().shutdown(false)
                } catch (_: Exception) {
                    // The server closes the connection instead of answering: that is the success.
                }
            }
        } catch (e: Exception) {
            throw DemoException("could not shut down master ${redact(uris[index])}: ${e.message}", e)
        } finally {
            client.shutdown()
        }
    }
}

/** The state of one demo run: the workers, the detectors and the counters. */
private class DemoRun(
    private val options: DemoOptions,
    private val redlock: DistributedLocks,
    private val n: Int,
    private val killer: MasterKiller?,
    private val listener: DemoListener,
    private val clock: TimeSource.Monotonic.ValueTimeMark,
    /** Whether the one "master" is a PostgreSQL database (only the wording changes). */
    private val postgres: Boolean,
) {
    private enum class Stage { SHORT_JOBS, LONG_JOBS }

    private val quorum = n / 2 + 1
    private val names = List(options.resources) { "account-$it" }

    @Volatile private var stage = Stage.SHORT_JOBS
    @Volatile private var mastersUp = n

    // Overlap detectors, one slot per resource.
    private val holders = AtomicIntegerArray(options.resources)
    private val lastWriter = AtomicIntegerArray(options.resources)
    private val counters = AtomicIntegerArray(options.resources) // read-modify-write, deliberately not atomic
    private val committed = AtomicIntegerArray(options.resources)
    private val holderOverlaps = AtomicInteger()
    private val writerOverlaps = AtomicInteger()

    private val sections = AtomicInteger()
    private val sectionsByUp = ConcurrentHashMap<Int, AtomicInteger>()
    private val latencies = ConcurrentHashMap<Int, ConcurrentLinkedQueue<Duration>>()
    private val waiting = AtomicInteger()
    private val longHolders = AtomicInteger()
    private val locksLost = AtomicInteger()
    private val refusedContention = AtomicInteger()
    private val refusedDown = AtomicInteger()
    private val sampleLoss = AtomicReference<String>()
    private val sampleRefusal = AtomicReference<String>()
    private var killed = 0

    suspend fun run(): DemoSummary = coroutineScope {
        preflight()
        val phase2Kills = if (killer != null) n - quorum else 0
        val phase1Target = if (phase2Kills > 0) (options.sections * 11 / 20).coerceAtLeast(1) else options.sections
        listener.phase(
            (if (postgres) "Phase 1: the database is up" else "Phase 1: $n of $n masters up (quorum $quorum)") +
                ": ${options.workers} workers, ${options.resources} resources, ${options.sections} critical sections, lease ${LEASE_TIME}",
        )
        val workers = List(options.workers) { id -> launch(Dispatchers.Default) { worker(id) } }
        val ticker = launch { progressLoop() }
        try {
            awaitSections(phase1Target)
            if (phase2Kills > 0) {
                val victims = (0 until phase2Kills).toList()
                kill(victims)
                listener.phase(
                    "Phase 2: killed ${masterList(victims)} — $mastersUp of $n up, quorum $quorum still reachable: work goes on",
                )
                awaitSections(options.sections)
            }
            if (killer != null) {
                phase3()
            } else if (options.masters != null) {
                listener.info("kill phases skipped: these are your own masters (add --chaos to shut some down)")
                listener.phase("Stopping the workers")
            }
        } finally {
            workers.forEach { it.cancel() }
            workers.forEach { it.join() }
            ticker.cancelAndJoin()
        }
        summary()
    }

    /**
     * One acquisition before the workers start, so that unusable masters fail fast and clearly.
     * It waits (rather than making one attempt) because the connections are opened lazily: the
     * first attempt can outlast the short per-master timeout while they are being set up.
     */
    private suspend fun preflight() {
        val lease = try {
            redlock.acquire("preflight", leaseTime = LEASE_TIME, waitTime = WAIT_TIME)
        } catch (e: LockNotAcquiredException) {
            throw DemoException("the masters cannot grant a lock: ${e.message}", e)
        }
        lease.release()
    }

    private suspend fun phase3() {
        stage = Stage.LONG_JOBS
        val target = minOf(options.workers, options.resources)
        listener.phase(
            "Phase 3: workers switch to long jobs (${LONG_JOB} each, lease renewed every ${(LEASE_TIME / 3).inWholeMilliseconds} ms); " +
                "waiting until $target resource(s) are held, then killing " + (if (postgres) "the PostgreSQL server" else "one master more"),
        )
        waitUntil(5.seconds) { longHolders.get() >= target }
        val holding = longHolders.get()
        val victim = killed
        kill(listOf(victim))
        val killedAt = TimeSource.Monotonic.markNow()
        listener.phase(
            (if (postgres) "Phase 3: killed the PostgreSQL server — every holding session ended: " else "Phase 3: killed master $victim — $mastersUp of $n up, below quorum $quorum: ") +
                "$holding holder(s) must lose their locks, new acquisitions must fail",
        )
        val lostBefore = locksLost.get()
        waitUntil(6.seconds) {
            killedAt.elapsedNow() > 1500.milliseconds &&
                locksLost.get() - lostBefore >= holding &&
                refusedDown.get() > 0
        }
        sampleLoss.get()?.let { listener.info("lost:    $it") }
        sampleRefusal.get()?.let { listener.info("refused: $it") }
        listener.phase("Stopping the workers")
    }

    private suspend fun kill(victims: List<Int>) {
        withContext(Dispatchers.IO) { victims.forEach { killer!!.kill(it) } }
        killed += victims.size
        mastersUp = n - killed
    }

    private suspend fun worker(id: Int) {
        val random = Random(id * 7919 + System.nanoTime())
        while (currentCoroutineContextActive()) {
            delay(random.nextInt(THINK_MIN_MS, THINK_MAX_MS).milliseconds)
            val r = random.nextInt(options.resources)
            val long = stage == Stage.LONG_JOBS
            val up = mastersUp
            val called = TimeSource.Monotonic.markNow()
            var entered = false
            waiting.incrementAndGet()
            try {
                redlock.withLock(names[r], leaseTime = LEASE_TIME, waitTime = if (long) SHORT_WAIT_TIME else WAIT_TIME) {
                    entered = true
                    waiting.decrementAndGet()
                    latencies.getOrPut(up) { ConcurrentLinkedQueue() }.add(called.elapsedNow())
                    if (long) longHolders.incrementAndGet()
                    try {
                        criticalSection(id, r, if (long) LONG_JOB else random.nextInt(SECTION_MIN_MS, SECTION_MAX_MS).milliseconds)
                    } finally {
                        if (long) longHolders.decrementAndGet()
                    }
                }
                sections.incrementAndGet()
                sectionsByUp.getOrPut(up) { AtomicInteger() }.incrementAndGet()
            } catch (e: LockLostException) {
                locksLost.incrementAndGet()
                sampleLoss.compareAndSet(null, e.message)
            } catch (e: LockNotAcquiredException) {
                if (e.masterFailures().size > n - quorum) {
                    refusedDown.incrementAndGet()
                    sampleRefusal.compareAndSet(null, e.message)
                } else {
                    refusedContention.incrementAndGet()
                }
            } finally {
                if (!entered) waiting.decrementAndGet()
            }
        }
    }

    /** The protected work: every detector here would fire if two holders ever overlapped. */
    private suspend fun criticalSection(id: Int, r: Int, duration: Duration) {
        if (holders.incrementAndGet(r) > 1) holderOverlaps.incrementAndGet()
        try {
            lastWriter.set(r, id + 1)
            val seen = counters.get(r)
            delay(duration)
            if (lastWriter.get(r) != id + 1) writerOverlaps.incrementAndGet()
            counters.set(r, seen + 1)
            committed.incrementAndGet(r)
        } finally {
            holders.decrementAndGet(r)
        }
    }

    private suspend fun awaitSections(target: Int) {
        var last = sections.get()
        var lastChange = TimeSource.Monotonic.markNow()
        while (sections.get() < target) {
            delay(20.milliseconds)
            val now = sections.get()
            if (now != last) {
                last = now
                lastChange = TimeSource.Monotonic.markNow()
            } else if (lastChange.elapsedNow() > STALL_LIMIT) {
                throw DemoException(
                    "no critical section completed for $STALL_LIMIT" +
                        (sampleRefusal.get()?.let { "; last refusal: $it" } ?: ""),
                )
            }
        }
    }

    private suspend fun progressLoop() {
        var lastCount = sections.get()
        var lastMark = TimeSource.Monotonic.markNow()
        while (true) {
            delay(PROGRESS_EVERY)
            val count = sections.get()
            val seconds = lastMark.elapsedNow().toDouble(DurationUnit.SECONDS)
            lastMark = TimeSource.Monotonic.markNow()
            val held = (0 until options.resources).sumOf { holders.get(it) }
            listener.progress(
                DemoProgress(
                    sections = count,
                    perSecond = if (seconds > 0) (count - lastCount) / seconds else 0.0,
                    held = held,
                    waiting = waiting.get(),
                    locksLost = locksLost.get(),
                    refused = refusedContention.get() + refusedDown.get(),
                ),
            )
            lastCount = count
        }
    }

    private fun summary(): DemoSummary {
        val lostUpdates = (0 until options.resources).sumOf { (committed.get(it) - counters.get(it)).coerceAtLeast(0) }
        val byUp = latencies.mapValues { (_, q) -> LatencyStats.of(q.toList())!! }
        return DemoSummary(
            masters = n,
            localMasters = options.masters == null,
            killedMasters = killed,
            sectionsByMastersUp = sectionsByUp.mapValues { it.value.get() }.toSortedMap(reverseOrder()),
            holderOverlaps = holderOverlaps.get(),
            writerOverlaps = writerOverlaps.get(),
            lostUpdates = lostUpdates,
            latencyByMastersUp = byUp.toSortedMap(reverseOrder()),
            latency = LatencyStats.of(latencies.values.flatten()),
            locksLost = locksLost.get(),
            refusedContention = refusedContention.get(),
            refusedMastersDown = refusedDown.get(),
            sampleLoss = sampleLoss.get(),
            sampleRefusal = sampleRefusal.get(),
            keysLeft = null,
            elapsed = clock.elapsedNow(),
        )
    }
}

private suspend fun currentCoroutineContextActive(): Boolean = currentCoroutineContext().isActive

private fun masterList(indexes: List<Int>): String =
    if (indexes.size == 1) "master ${indexes[0]}" else "masters " + indexes.dropLast(1).joinToString(", ") + " and " + indexes.last()

/** Polls [condition] every 20 ms until it holds or [limit] passes. */
private suspend fun waitUntil(limit: Duration, condition: () -> Boolean) {
    val start = TimeSource.Monotonic.markNow()
    while (!condition() && start.elapsedNow() < limit) delay(20.milliseconds)
}

/** A master URI without its password, for printing. */
internal fun redact(uri: String): String {
    val scheme = uri.indexOf("://")
    val at = uri.lastIndexOf('@')
    return if (scheme >= 0 && at > scheme + 3) uri.substring(0, scheme + 3) + "***" + uri.substring(at) else uri
}
