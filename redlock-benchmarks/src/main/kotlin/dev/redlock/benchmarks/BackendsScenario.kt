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
    val overlaps: Int,
    val errors: Int,
    /** The load average when this backend's phases ended. */
    val load: Double,
)

/** How many callers of one process contend for scenario 11's hot lock. */
const val BACKEND_CONTENDERS = 8

/**
 * Scenario 11: the same application code (`DistributedLocks`) on three backends — Redlock over one
 * master of [fleet], PostgreSQL (a local server from the test kit, started here) and files (a
 * temporary directory) — measured the same way: scenario 1's closed loop of acquire + release, then
 * [BACKEND_CONTENDERS] coroutines of one process taking turns on one lock (`withLock`, empty
 * section), counting sections per second and overlaps.
 */
suspend fun backendsCost(fleet: RedisFleet, profile: Profile, log: (String) -> Unit): List<BackendFigures> {
    val figures = ArrayList<BackendFigures>()
    suspend fun measure(name: String, open: () -> DistributedLocks) {
        open().use { locks ->
            log("scenario 11, $name: acquire + release")
            val latency = closedLoop(profile.warmup, profile.measure) { timed { locks.acquire("s11-one").release() } }
            log("scenario 11, $name: $BACKEND_CONTENDERS contenders on one lock")
            val (perSecond, overlaps, errors) = hotLock(locks, profile)
            figures += BackendFigures(name, latency, perSecond, overlaps, errors, Machine.loadAverage())
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

/** [BACKEND_CONTENDERS] coroutines on one lock for the profile's warm-up and measured time: sections per second, overlaps, failed calls. */
private suspend fun hotLock(locks: DistributedLocks, profile: Profile): Triple<Double, Int, Int> {
    val inside = AtomicInteger()
    val overlaps = AtomicInteger()
    val errors = AtomicInteger()
    val sections = AtomicLong()
    val start = now()
    val measureFrom = start + profile.warmup.inWholeNanoseconds
    val end = measureFrom + profile.measure.inWholeNanoseconds
    coroutineScope {
        repeat(BACKEND_CONTENDERS) {
            launch {
                while (now() < end) {
                    try {
                        locks.withLock("s11-hot", waitTime = 30.seconds) {
                            if (inside.incrementAndGet() != 1) overlaps.incrementAndGet()
                            inside.decrementAndGet()
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
    line("")
    line("| backend | p50 | p99 | operations | hot lock: sections/s | overlaps | failed calls | load average after |")
    line("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for (f in figures) {
        line(
            "| ${f.backend} | ${us(f.latency.p50)} | ${us(f.latency.p99)} | ${f.latency.count} | " +
                String.format(Locale.ROOT, "%.0f", f.sectionsPerSecond) + " | ${f.overlaps} | ${f.errors} | " +
                String.format(Locale.ROOT, "%.2f", f.load) + " |",
        )
    }
}
