package dev.redlock.benchmarks

import dev.redlock.core.RedlockConfig
import dev.redlock.coroutines.DistributedLocks
import dev.redlock.coroutines.Redlock
import dev.redlock.file.FileLockConfig
import dev.redlock.file.FileLocks
import dev.redlock.postgres.PostgresLockConfig
import dev.redlock.postgres.PostgresLocks
import dev.redlock.testing.PostgresServer
import dev.redlock.testing.RedisFleet
import java.nio.file.Files
import java.util.Locale
import java.util.concurrent.atomic.AtomicInteger
import java.util.concurrent.atomic.AtomicLong
import kotlin.time.Duration.Companion.seconds
import kotlinx.coroutines.coroutineScope
import kotlinx.coroutines.launch

/** Scenario 11's figures for one backend. */
data class BackendFigures(
    val backend: String,
    /** One caller, one resource: acquire + release. */
    val latency: Latency,
    /** [BACKEND_CONTENDERS] callers of one process on one resource. */
    val sectionsPerSecond: Double,
    /** [SPREAD_CALLERS] callers of one process, each on a random one of [SPREAD_RESOURCES] resources at a time. */
    val spreadPerSecond: Double,
    /** Sections that overlapped another on the same resource, over both phases. */
    val overlaps: Int,
    /** Failed calls, over both phases. */
    val errors: Int,
    /** The load average when this backend's phases ended. */
    val load: Double,
)

/** How many callers of one process contend for scenario 11's hot lock. */
const val BACKEND_CONTENDERS = 8

/** How many callers of one process lock scenario 11's many resources. */
const val SPREAD_CALLERS = 64

/** How many resources scenario 11's spread callers pick from (at random, one at a time). */
const val SPREAD_RESOURCES = 1_000

/**
 * Scenario 11: the same application code (`DistributedLocks`) on three backends — Redlock over one
 * master of [fleet], PostgreSQL (a local server from the test kit, started here) and files (a
 * temporary directory) — measured the same way: scenario 1's closed loop of acquire + release, then
 * [BACKEND_CONTENDERS] coroutines of one process taking turns on one lock (`withLock`, empty
 * section), counting sections per second and overlaps; then [SPREAD_CALLERS] coroutines each
 * locking a random one of [SPREAD_RESOURCES] resources at a time (what many callers on distinct
 * resources cost, where a backend that serialises its calls queues them).
 */
suspend fun backendsCost(fleet: RedisFleet, profile: Profile, log: (String) -> Unit): List<BackendFigures> {
    val figures = ArrayList<BackendFigures>()
    suspend fun measure(name: String, open: () -> DistributedLocks) {
        open().use { locks ->
            log("scenario 11, $name: acquire + release")
            val latency = closedLoop(profile.warmup, profile.measure) { timed { locks.acquire("s11-one").release() } }
            log("scenario 11, $name: $BACKEND_CONTENDERS contenders on one lock")
            val (perSecond, overlaps, errors) = contend(locks, profile, "s11-hot", BACKEND_CONTENDERS, 1)
            log("scenario 11, $name: $SPREAD_CALLERS callers over $SPREAD_RESOURCES resources")
            val (spread, spreadOverlaps, spreadErrors) = contend(locks, profile, "s11-spread", SPREAD_CALLERS, SPREAD_RESOURCES)
            figures += BackendFigures(name, latency, perSecond, spread, overlaps + spreadOverlaps, errors + spreadErrors, Machine.loadAverage())
        }
    }
    measure("Redlock, N = 1") { Redlock(RedlockConfig.builder().master(fleet.uri(0)).build()) }
    PostgresServer.start().use { pg ->
        measure("PostgreSQL") { PostgresLocks.create(PostgresLockConfig.builder(pg.dataSource()).build()) }
    }
    val dir = Files.createTempDirectory("redlock-bench-files")
    try {
        measure("files") { FileLocks.create(FileLockConfig.builder(dir).build()) }
    } finally {
        dir.toFile().deleteRecursively()
    }
    return figures
}

/**
 * [callers] coroutines taking `withLock` (empty section) for the profile's warm-up and measured
 * time, each on a random one of [resources] resources at a time (one: all on one lock, named
 * [name]): sections per second, overlaps (per resource), failed calls.
 */
private suspend fun contend(locks: DistributedLocks, profile: Profile, name: String, callers: Int, resources: Int): Triple<Double, Int, Int> {
    val inside = java.util.concurrent.atomic.AtomicIntegerArray(resources)
    val overlaps = AtomicInteger()
    val errors = AtomicInteger()
    val sections = AtomicLong()
    val start = now()
    val measureFrom = start + profile.warmup.inWholeNanoseconds
    val end = measureFrom + profile.measure.inWholeNanoseconds
    coroutineScope {
        repeat(callers) {
            launch {
                val random = java.util.concurrent.ThreadLocalRandom.current()
                while (now() < end) {
                    val r = if (resources == 1) 0 else random.nextInt(resources)
                    try {
                        locks.withLock(if (resources == 1) name else "$name-$r", waitTime = 30.seconds) {
                            if (inside.incrementAndGet(r) != 1) overlaps.incrementAndGet()
                            inside.decrementAndGet(r)
                            if (now() in measureFrom..end) sections.incrementAndGet()
                        }
                    } catch (e: Exception) {
                        if (e is kotlinx.coroutines.CancellationException) throw e
                        errors.incrementAndGet()
                    }
                }
            }
        }
    }
    return Triple(sections.get() / (profile.measure.inWholeNanoseconds / 1e9), overlaps.get(), errors.get())
}

internal fun scenario11(figures: List<BackendFigures>, profile: Profile, line: (String) -> Unit) {
    line("")
    line("## 11. Backends: the same locks on Redis, PostgreSQL and files")
    line("")
    line("The same `DistributedLocks` calls on each backend, default settings: Redlock over one local master, PostgreSQL")
    line("(a local server started by the test kit's `PostgresServer`, loopback TCP), files (a temporary directory).")
    line("Acquire + release: one caller, one resource, ${profile.warmup} warm-up then ${profile.measure} measured. Hot lock:")
    line("$BACKEND_CONTENDERS coroutines of one process taking turns on one lock with `withLock` (empty section), same phases.")
    line("Many resources: $SPREAD_CALLERS coroutines of one process, each taking `withLock` (empty section) on a random one of")
    line("${String.format(Locale.ROOT, "%,d", SPREAD_RESOURCES)} resources at a time, same phases. Overlaps and failed calls count both concurrent phases.")
    line("")
    line("| backend | p50 | p99 | operations | hot lock: sections/s | many resources: sections/s | overlaps | failed calls | load average after |")
    line("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for (f in figures) {
        line(
            "| ${f.backend} | ${us(f.latency.p50)} | ${us(f.latency.p99)} | ${f.latency.count} | " +
                String.format(Locale.ROOT, "%.0f", f.sectionsPerSecond) + " | " + String.format(Locale.ROOT, "%.0f", f.spreadPerSecond) +
                " | ${f.overlaps} | ${f.errors} | " +
                String.format(Locale.ROOT, "%.2f", f.load) + " |",
        )
    }
}
