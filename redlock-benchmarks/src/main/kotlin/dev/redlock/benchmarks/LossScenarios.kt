package dev.redlock.benchmarks

import dev.redlock.core.LockLostException
import dev.redlock.core.RedlockConfig
import dev.redlock.core.internal.Keys
import dev.redlock.coroutines.InternalRedlockApi
import dev.redlock.coroutines.Lease
import dev.redlock.coroutines.Redlock
import dev.redlock.coroutines.times
import dev.redlock.coroutines.withRedlock
import dev.redlock.testing.RedisFleet
import java.util.concurrent.CompletableFuture
import java.util.concurrent.ConcurrentHashMap
import java.util.concurrent.TimeUnit
import java.util.concurrent.atomic.AtomicInteger
import kotlin.random.Random
import kotlin.time.ComparableTimeMark
import kotlin.time.Duration
import kotlin.time.Duration.Companion.milliseconds
import kotlin.time.Duration.Companion.minutes
import kotlin.time.Duration.Companion.nanoseconds
import kotlin.time.Duration.Companion.seconds
import kotlin.time.TimeSource
import kotlinx.coroutines.CancellationException
import kotlinx.coroutines.CompletableDeferred
import kotlinx.coroutines.awaitCancellation
import kotlinx.coroutines.coroutineScope
import kotlinx.coroutines.delay
import kotlinx.coroutines.future.await
import kotlinx.coroutines.isActive
import kotlinx.coroutines.joinAll
import kotlinx.coroutines.launch
import kotlinx.coroutines.sync.Semaphore
import kotlinx.coroutines.withTimeout
import kotlinx.coroutines.withTimeoutOrNull
import org.HdrHistogram.Histogram

/** The subjects of scenarios 6 to 8: ours with the masters' pushes (the default), ours without, and Redisson. */
enum class Variant(val label: String) {
    TRACKING("ours, tracking"),
    UNTRACKED("ours, keyTracking(false)"),
    REDISSON("Redisson"),
}

/** What the administrator does to a majority of the masters in scenario 6. */
enum class Fault { DEL, FLUSHALL }

/** Scenario 6 for one subject, N and fault. Figures that do not apply to the subject are empty (not-a-number). */
data class LossDetection(
    val variant: Variant,
    val n: Int,
    val fault: Fault,
    val samples: Int,
    /** Ours: from just before the fault's commands were sent to the block observing its cancellation, µs. */
    val cancelled: Latency,
    /** Ours: from the same instant to the moment the library declared the lease lost (`Lease.times().lossDeclaredAt`), µs. */
    val declared: Latency,
    /** Ours: samples whose `withRedlock` threw `LockLostException`. */
    val lockLost: Int,
    /** Samples in which nothing was seen within the bound (ours: no cancellation; Redisson: no renewal after the fault). */
    val unseen: Int,
    /** The fault's own round trip: from sending its commands to the last master's answer, µs. */
    val faultRoundTrip: Latency,
    /** Redisson: from just before the fault to its watchdog's next renewal script on a faulted master (polled every 2 ms), µs. */
    val renewalAfter: Latency,
    /** Redisson: renewal scripts on a faulted master in the watch that follows every lock's first renewal after the fault (0: it stopped renewing). */
    val renewalsAfter: Long,
    /** Redisson, N > 1: renewal scripts on a master the fault spared, in the same watch (the minority's keys kept alive). */
    val renewalsSpared: Long?,
    /** How long that watch lasted, seconds. */
    val watchSeconds: Double,
    /** Redisson: lock keys found again on a faulted master after the watch (re-created). */
    val recreated: Long,
    /** Redisson: what `unlock` did at the end, outcome to count. */
    val unlock: Map<String, Int>,
    val errors: Int,
)

/** Scenario 7 for one subject and N. */
data class CrashHandOff(
    val variant: Variant,
    val n: Int,
    val samples: Int,
    /** From the expiry of the quorum's keys (each key's PTTL read right after the kill) to the next section's start, µs. */
    val afterExpiry: Latency,
    /** Sections that started before that computed expiry (PTTL has millisecond resolution): counted as 0 above. */
    val early: Int,
    /** From just before the kill to the next section's start, µs. */
    val total: Latency,
    /** The quorum's keys' remaining time at the kill, µs. */
    val remaining: Latency,
    /** How long a holder's JVM took from its start to holding the lock, µs. */
    val holderStart: Latency,
    /** Samples in which no section started within the lease plus 10 s. */
    val missed: Int,
    val errors: Int,
    /** Releases that failed after the section ran, by exception. */
    val releaseFailures: Map<String, Int>,
)

/** Scenario 8: one window of holding the same locks, with or without tracking. */
data class TrackingCost(
    val tracking: Boolean,
    val window: Int,
    val locks: Int,
    val held: Int,
    val seconds: Double,
    /** All commands the master ran per second, those inside scripts included (`INFO commandstats`). */
    val commandsPerSecond: Double,
    val scriptsPerSecond: Double,
    /** Per command name (get, pexpire, pttl, ...), calls per second. */
    val perCommand: Map<String, Double>,
    /** The master's CPU (`used_cpu_user` + `used_cpu_sys`), seconds per second. */
    val serverCpu: Double,
    /** This process's CPU time, seconds per second. */
    val clientCpu: Double,
    /** `tracking_total_keys` of `INFO stats` at the end of the window. */
    val trackedKeys: Long,
    /** `used_memory` of `INFO memory` at the end of the window, bytes. */
    val usedMemory: Long,
    /** Locks lost or not taken: must be 0. */
    val failures: Int,
) {
    /** Keys renewed per second (the master's PEXPIRE calls): windows that caught more or fewer rounds compare per renewal. */
    val renewalsPerSecond: Double get() = perCommand["pexpire"] ?: 0.0

    /** The master's commands per renewed key. */
    val commandsPerRenewal: Double get() = commandsPerSecond / renewalsPerSecond

    /** This process's CPU per renewed key, µs. */
    val clientCpuPerRenewal: Double get() = clientCpu * 1e6 / renewalsPerSecond

    /** The master's CPU per renewed key, µs. */
    val serverCpuPerRenewal: Double get() = serverCpu * 1e6 / renewalsPerSecond
}

/** Scenario 8, second part: one caller acquiring and releasing one resource, uncontended, with or without tracking. */
data class TrackingOpCost(
    val tracking: Boolean,
    val n: Int,
    /** `acquire + release`, or `withRedlock { }` (which also starts and stops the renewal job). */
    val form: String,
    val window: Int,
    val latency: Latency,
    /** Every command the N masters ran per operation, those inside scripts included (`INFO commandstats`, INFO itself left out). */
    val commandsPerOp: Double,
    val scriptsPerOp: Double,
    /** Per command name, calls per operation summed over the N masters. */
    val perCommand: Map<String, Double>,
    /** This process's CPU time per operation, µs. */
    val clientCpuPerOp: Double,
)

/** Scenario 8's two parts. */
class TrackingCosts(val held: List<TrackingCost>, val ops: List<TrackingOpCost>)

/**
 * Scenarios 6 to 8 (issue 15): how fast a lock's loss and a crashed holder's expiry reach the
 * holder and the next holder, with the masters' pushes (key tracking) and without, against
 * Redisson; and what tracking costs while many locks are held.
 */
class LossScenarios(private val fleet: RedisFleet, private val profile: Profile, private val log: (String) -> Unit) {
    private fun uris(n: Int): List<String> = fleet.uris().take(n)

    private fun majority(n: Int): List<Int> = (0 until n / 2 + 1).toList()

    private fun lockKey(variant: Variant, resource: String): String =
        if (variant == Variant.REDISSON) resource else Keys.lock(RedlockConfig.DEFAULT_KEY_PREFIX, resource)

    /** Where a fault lands in the renewal cycle: holder k of [holders] at its own stratum of one cycle, kept apart from its neighbours. */
    private fun offsets(holders: Int, cycle: Duration, random: Random): List<Duration> =
        if (holders == 1) listOf(cycle * random.nextDouble())
        else List(holders) { k -> cycle * ((k + 0.1 + 0.8 * random.nextDouble()) / holders) }

    // ---------------------------------------------------------------- scenario 6

    suspend fun adminFaults(): List<LossDetection> {
        val results = ArrayList<LossDetection>()
        Admin(fleet).use { admin ->
            for (n in listOf(1, 5)) {
                for (variant in Variant.entries) {
                    for (fault in Fault.entries) {
                        val rounds = when (fault) {
                            Fault.DEL -> profile.lossDelRounds
                            Fault.FLUSHALL -> when (variant) {
                                Variant.TRACKING -> profile.lossFlushRounds
                                Variant.UNTRACKED -> profile.lossFlushRoundsSlow
                                Variant.REDISSON -> profile.lossFlushRoundsRedisson
                            }
                        }
                        val holders = if (fault == Fault.DEL) profile.lossHolders else 1
                        log("scenario 6, N = $n, ${variant.label}, $fault on ${majority(n).size} of $n master(s): $rounds round(s) of $holders lock(s), ${profile.lossLease} lease")
                        val record = LossRecord()
                        try {
                            if (variant == Variant.REDISSON) {
                                RedissonSubject(uris(n), profile.lossLease).use { s ->
                                    repeat(rounds) { redissonRound(s, admin, n, fault, "loss-$fault-$it-", holders, record) }
                                }
                            } else {
                                OursSubject(uris(n), profile.lossLease, keyTracking = variant == Variant.TRACKING).use { s ->
                                    repeat(rounds) { oursRound(s.redlock, admin, n, fault, "loss-$fault-$it-", holders, record) }
                                }
                            }
                        } finally {
                            fleet.flushAll()
                        }
                        results += record.result(variant, n, fault)
                        log("  ${results.last().let { r -> if (variant == Variant.REDISSON) "renewal after the fault p50 ${us(r.renewalAfter.p50)}, max ${us(r.renewalAfter.max)}" else "cancelled p50 ${us(r.cancelled.p50)}, p99 ${us(r.cancelled.p99)}, max ${us(r.cancelled.max)}" }}")
                    }
                }
            }
        }
        return results
    }

    /** What the rounds of one subject, N and fault saw. */
    private class LossRecord {
        val cancelled = Histogram(3)
        val declared = Histogram(3)
        val renewalAfter = Histogram(3)
        val faultRoundTrip = Histogram(3)
        val lockLost = AtomicInteger()
        val errors = AtomicInteger()
        var samples = 0
        var unseen = 0
        var renewalsAfter = 0L
        var renewalsSpared: Long? = null
        var watchSeconds = 0.0
        var recreated = 0L
        val unlock = ConcurrentHashMap<String, Int>()

        fun result(variant: Variant, n: Int, fault: Fault) = LossDetection(
            variant, n, fault, samples, Latency.of(cancelled), Latency.of(declared), lockLost.get(), unseen,
            Latency.of(faultRoundTrip), Latency.of(renewalAfter), renewalsAfter, renewalsSpared, watchSeconds, recreated, unlock.toSortedMap(), errors.get(),
        )
    }

    /**
     * One round for ours: [holders] locks taken at once, each held in `withRedlock` by a block that
     * waits to be cancelled; then the fault, for each lock at its own moment of the renewal cycle
     * (DEL of that lock's key, or one FLUSHALL for the round's one lock), on a majority of the masters.
     * Each sample runs from just before the fault's commands are sent to the block seeing its
     * cancellation.
     */
    @OptIn(InternalRedlockApi::class)
    private suspend fun oursRound(redlock: Redlock, admin: Admin, n: Int, fault: Fault, prefix: String, holders: Int, record: LossRecord) = coroutineScope {
        val cycle = profile.lossLease / 3
        val leases = List(holders) { CompletableDeferred<Lease>() }
        val seen = List(holders) { CompletableDeferred<Long>() }
        val jobs = List(holders) { k ->
            launch {
                try {
                    redlock.withRedlock(prefix + k) { lease ->
                        leases[k].complete(lease)
                        try {
                            awaitCancellation()
                        } catch (e: CancellationException) {
                            seen[k].complete(now())
                            throw e
                        }
                    }
                } catch (e: LockLostException) {
                    record.lockLost.incrementAndGet()
                } catch (e: CancellationException) {
                    throw e
                } catch (e: Exception) {
                    if (record.errors.incrementAndGet() == 1) log("  first error: $e")
                    leases[k].completeExceptionally(e)
                }
            }
        }
        try {
            // A lock not taken (counted as an error) gives no sample; the others go on.
            val held = leases.map { runCatching { withTimeout(1.minutes) { it.await() } }.getOrNull() }
            val origin = now()
            val faultAt = LongArray(holders)
            val faultMark = arrayOfNulls<ComparableTimeMark>(holders)
            for ((k, offset) in offsets(holders, cycle, Random(prefix.hashCode())).withIndex()) {
                delayUntil(origin + offset.inWholeNanoseconds)
                faultMark[k] = TimeSource.Monotonic.markNow()
                faultAt[k] = now()
                when (fault) {
                    Fault.DEL -> admin.del(majority(n), arrayOf(lockKey(Variant.TRACKING, prefix + k)))
                    Fault.FLUSHALL -> admin.flushAll(majority(n))
                }
                record.faultRoundTrip.recordValue(now() - faultAt[k])
            }
            // Without a push, the next renewal finds the loss: at most a cycle later, plus its round trip.
            val bound = cycle + 2.seconds
            for (k in 0 until holders) {
                val lease = held[k] ?: continue
                record.samples++
                val at = withTimeoutOrNull(((faultAt[k] + bound.inWholeNanoseconds - now()) / 1_000_000).coerceAtLeast(1)) { seen[k].await() }
                if (at == null) {
                    record.unseen++
                    jobs[k].cancel()
                    continue
                }
                record.cancelled.recordValue((at - faultAt[k]).coerceAtLeast(0))
                lease.times().lossDeclaredAt?.let { record.declared.recordValue((it - faultMark[k]!!).inWholeNanoseconds.coerceAtLeast(0)) }
            }
        } finally {
            // A cancelled block's withRedlock still releases the keys and then throws LockLostException:
            // let it, before cancelling what is left (a lock whose loss was not seen).
            withTimeoutOrNull(5.seconds) { jobs.joinAll() }
            jobs.forEach { it.cancel() }
            jobs.joinAll()
            if (fault == Fault.FLUSHALL) admin.restoreBootMarkers(majority(n))
        }
    }

    /**
     * One round for Redisson: the same locks and faults, held with its watchdog. Redisson tells a
     * holder nothing when its lock goes: what can be seen is its watchdog's next renewal on a faulted
     * master (its script calls, read from `INFO commandstats` every 2 ms), whether it renews again
     * after that, whether the key comes back, and what `unlock` does at the end.
     */
    private suspend fun redissonRound(subject: RedissonSubject, admin: Admin, n: Int, fault: Fault, prefix: String, holders: Int, record: LossRecord) = coroutineScope {
        val cycle = profile.lossLease / 3
        val locks = List(holders) { subject.lockOf(prefix + it) }
        locks.mapIndexed { k, lock -> lock.lockAsync(-1, TimeUnit.MILLISECONDS, k + 1L).toCompletableFuture() }.forEach { it.await() }
        val spared = if (n > 1) n - 1 else null
        // (time, script calls on master 0, on the spared master) after every poll.
        val polls = ArrayList<LongArray>()
        val polling = launch {
            while (isActive) {
                val faulted = admin.commandStats(0).scripts
                val other = spared?.let { admin.commandStats(it).scripts } ?: 0
                synchronized(polls) { polls += longArrayOf(now(), faulted, other) }
                delay(2)
            }
        }
        val origin = now()
        val faultAt = LongArray(holders)
        // Script calls on master 0 just before each fault, read on the connection the fault then
        // takes: the master answers in order, so a renewal counted here ran before the fault.
        val before = LongArray(holders)
        try {
            for ((k, offset) in offsets(holders, cycle, Random(prefix.hashCode())).withIndex()) {
                delayUntil(origin + offset.inWholeNanoseconds)
                before[k] = admin.commandStats(0).scripts
                faultAt[k] = now()
                when (fault) {
                    Fault.DEL -> admin.del(majority(n), arrayOf(lockKey(Variant.REDISSON, prefix + k)))
                    Fault.FLUSHALL -> admin.flushAll(majority(n))
                }
                record.faultRoundTrip.recordValue(now() - faultAt[k])
            }
            // The renewal after the last fault comes within a cycle; then one more cycle and a quarter
            // shows whether the watchdog renews again.
            val lastFault = faultAt.max()
            delayUntil(lastFault + (cycle + 500.milliseconds).inWholeNanoseconds)
            val noticed = LongArray(holders) { k -> firstPollAbove(polls, faultAt[k], before[k]) ?: -1 }
            val watchFrom = (noticed.filter { it >= 0 }.maxOrNull() ?: lastFault) + 1_000_000
            delayUntil(watchFrom + (cycle * 1.25).inWholeNanoseconds)
            polling.cancel()
            polling.join()
            for (k in 0 until holders) {
                record.samples++
                if (noticed[k] < 0) record.unseen++ else record.renewalAfter.recordValue(noticed[k] - faultAt[k])
            }
            val watched = synchronized(polls) { polls.filter { it[0] >= watchFrom } }
            if (watched.size >= 2) {
                record.renewalsAfter += watched.last()[1] - watched.first()[1]
                if (spared != null) record.renewalsSpared = (record.renewalsSpared ?: 0) + watched.last()[2] - watched.first()[2]
                record.watchSeconds += (watched.last()[0] - watched.first()[0]) / 1e9
            }
            for (m in majority(n)) record.recreated += admin.exists(m, Array(holders) { lockKey(Variant.REDISSON, prefix + it) })
        } finally {
            polling.cancel()
            for ((k, lock) in locks.withIndex()) {
                val outcome = try {
                    lock.unlockAsync(k + 1L).await()
                    "returned normally"
                } catch (e: Exception) {
                    "threw " + rootCause(e).javaClass.simpleName
                }
                record.unlock.merge(outcome, 1, Int::plus)
            }
            if (fault == Fault.FLUSHALL) admin.restoreBootMarkers(majority(n))
        }
    }

    /** The time of the first poll after [after] that saw more script calls on master 0 than [count]. */
    private fun firstPollAbove(polls: List<LongArray>, after: Long, count: Long): Long? = synchronized(polls) {
        polls.firstOrNull { it[0] > after && it[1] > count }?.get(0)
    }

    // ---------------------------------------------------------------- scenario 7

    suspend fun crashHandOff(): List<CrashHandOff> {
        val results = ArrayList<CrashHandOff>()
        Admin(fleet).use { admin ->
            for (n in listOf(1, 5)) {
                for (variant in Variant.entries) {
                    log("scenario 7, N = $n, ${variant.label}: ${profile.crashSamples} holder JVM(s) killed, ${profile.crashLease} lease")
                    val record = CrashRecord()
                    val subject: LockSubject = if (variant == Variant.REDISSON) RedissonSubject(uris(n), profile.crashLease)
                        else OursSubject(uris(n), profile.crashLease, keyTracking = variant == Variant.TRACKING)
                    try {
                        repeat(profile.crashSamples) { crashSample(subject, admin, variant, n, "crash-$n-${variant.name}-$it", it, record) }
                    } finally {
                        subject.close()
                        fleet.flushAll()
                    }
                    results += record.result(variant, n)
                    log("  after expiry p50 ${us(results.last().afterExpiry.p50)}, max ${us(results.last().afterExpiry.max)}; total p50 ${us(results.last().total.p50)}")
                }
            }
        }
        return results
    }

    private class CrashRecord {
        val afterExpiry = Histogram(3)
        val total = Histogram(3)
        val remaining = Histogram(3)
        val holderStart = Histogram(3)
        var samples = 0
        var early = 0
        var missed = 0
        val errors = AtomicInteger()
        val releaseFailures = ConcurrentHashMap<String, Int>()

        fun result(variant: Variant, n: Int) = CrashHandOff(
            variant, n, samples, Latency.of(afterExpiry), early, Latency.of(total), Latency.of(remaining), Latency.of(holderStart),
            missed, errors.get(), releaseFailures.toSortedMap(),
        )
    }

    /**
     * One holder killed: a JVM of its own takes the lock ([CrashHolder]); this process waits for the
     * same lock; at a random moment of the holder's renewal cycle the holder is killed (SIGKILL), and
     * the PTTL of its key on every master, read right after, tells when a quorum's keys expire.
     */
    private suspend fun crashSample(subject: LockSubject, admin: Admin, variant: Variant, n: Int, resource: String, i: Int, record: CrashRecord) = coroutineScope {
        val started = now()
        val holder = try {
            HolderProcess.start(variant, profile.crashLease, resource, uris(n))
        } catch (e: Exception) {
            record.errors.incrementAndGet()
            log("  holder did not start: ${e.message}")
            return@coroutineScope
        }
        try {
            record.holderStart.recordValue(now() - started)
            val section = CompletableDeferred<Long>()
            val waiter = launch {
                try {
                    subject.locked(resource, 1000L + i) { section.complete(now()) }
                } catch (e: CancellationException) {
                    throw e
                } catch (e: Exception) {
                    if (section.isCompleted) {
                        // Redisson's RedLock, taken on a majority while the dead holder's keys still
                        // lived on the others, throws when it unlocks those: after the section, which
                        // is what is measured.
                        record.releaseFailures.merge(rootCause(e).javaClass.simpleName, 1, Int::plus)
                    } else {
                        record.errors.incrementAndGet()
                        log("  waiter failed: $e")
                    }
                }
            }
            // The waiter asks first (and is refused); the kill comes at a random moment of the renewal cycle.
            delay(100.milliseconds + profile.crashLease / 3 * Random.nextDouble())
            val killedAt = now()
            holder.kill()
            val readings = admin.pttl((0 until n).toList(), lockKey(variant, resource))
            val quorum = n / 2 + 1
            val expiries = readings.mapNotNull { it.expiresAtNanos }.sorted()
            val freeAt = expiries.getOrNull(quorum - 1)
            val at = withTimeoutOrNull(profile.crashLease + 10.seconds) { section.await() }
            record.samples++
            when {
                at == null -> {
                    record.missed++
                    waiter.cancel()
                }
                freeAt == null -> {
                    record.errors.incrementAndGet()
                    log("  the key had no expiry on a quorum after the kill: ${readings.map { it.millis }}")
                }
                else -> {
                    if (at < freeAt) record.early++
                    record.afterExpiry.recordValue((at - freeAt).coerceAtLeast(0))
                    record.total.recordValue(at - killedAt)
                    record.remaining.recordValue((freeAt - killedAt).coerceAtLeast(0))
                }
            }
            waiter.join()
        } finally {
            holder.kill()
        }
    }

    // ---------------------------------------------------------------- scenario 8

    /**
     * [Profile.costLocks] locks at N = 1 with a [Profile.costLease] lease, held with tracking and without, in
     * alternating windows: the master's commands and CPU, this process's CPU, and what the tracking
     * table holds. Each window starts halfway between two renewal rounds and lasts three rounds.
     */
    suspend fun trackingCost(): TrackingCosts {
        val held = ArrayList<TrackingCost>()
        val ops = ArrayList<TrackingOpCost>()
        Admin(fleet).use { admin ->
            for (n in listOf(1, 5)) {
                for (window in 1..profile.costWindows) {
                    for (tracking in listOf(true, false)) {
                        log("scenario 8, N = $n, uncontended, ${if (tracking) "tracking" else "keyTracking(false)"}, window $window")
                        ops += opCost(admin, n, tracking, window)
                        ops.takeLast(2).forEach { log("  ${it.form}: p50 ${us(it.latency.p50)}, p99 ${us(it.latency.p99)}, ${"%.2f".format(it.commandsPerOp)} commands/op") }
                    }
                }
            }
            // A first window, not shown, so that neither kind pays for compiling the holding code.
            log("scenario 8, ${profile.costLocks} locks, ${profile.costLease} lease, window 0 (warm-up, not shown)")
            costWindow(admin, false, 0)
            for (window in 1..profile.costWindows) {
                for (tracking in listOf(true, false)) {
                    log("scenario 8, ${if (tracking) "tracking" else "keyTracking(false)"}, ${profile.costLocks} locks, ${profile.costLease} lease, window $window")
                    held += costWindow(admin, tracking, window)
                    val r = held.last()
                    log("  client CPU ${"%.3f".format(r.clientCpu)} s/s (${us(r.clientCpuPerRenewal)} per renewed key), server CPU ${"%.3f".format(r.serverCpu)} s/s, ${num(r.commandsPerSecond)} commands/s (${"%.2f".format(r.commandsPerRenewal)} per renewed key), tracked keys ${r.trackedKeys}")
                }
            }
        }
        return TrackingCosts(held, ops)
    }

    /**
     * Scenario 1's loop (one caller, one resource, closed loop) with or without tracking, in both
     * forms, with the commands the N masters ran and this process's CPU time per operation.
     */
    private suspend fun opCost(admin: Admin, n: Int, tracking: Boolean, window: Int): List<TrackingOpCost> {
        val subject = OursSubject(uris(n), LEASE, keyTracking = tracking)
        try {
            val forms = listOf<Pair<String, suspend () -> Unit>>(
                "acquire + release" to { subject.acquire("s8", 1).release() },
                "withRedlock { }" to { subject.locked("s8", 1) {} },
            )
            return forms.map { (form, op) ->
                val warmEnd = now() + profile.warmup.inWholeNanoseconds
                while (now() < warmEnd) op()
                val before = (0 until n).map { admin.commandStats(it) }
                val cpuBefore = processCpuNanos()
                val histogram = newHistogram()
                val end = now() + profile.costMeasure.inWholeNanoseconds
                while (now() < end) histogram.recordValue(timed { op() })
                val cpu = processCpuNanos() - cpuBefore
                val after = (0 until n).map { admin.commandStats(it) }
                val count = histogram.totalCount.toDouble()
                val perCommand = HashMap<String, Double>()
                for (m in 0 until n) {
                    for ((name, calls) in after[m].calls) {
                        if (name == "info") continue
                        val delta = calls - (before[m].calls[name] ?: 0)
                        if (delta > 0) perCommand.merge(name, delta / count, Double::plus)
                    }
                }
                TrackingOpCost(
                    tracking, n, form, window, Latency.of(histogram),
                    commandsPerOp = perCommand.values.sum(),
                    scriptsPerOp = (perCommand["evalsha"] ?: 0.0) + (perCommand["eval"] ?: 0.0),
                    perCommand = perCommand.toSortedMap(),
                    clientCpuPerOp = cpu / 1000.0 / count,
                )
            }
        } finally {
            subject.close()
            fleet.flushAll()
        }
    }

    private suspend fun costWindow(admin: Admin, tracking: Boolean, window: Int): TrackingCost {
        val locks = profile.costLocks
        val cycle = profile.costLease / 3
        val subject = OursSubject(uris(1), profile.costLease, keyTracking = tracking)
        try {
            repeat(200) { subject.acquire("warm-$it", 0).release() }
            val gate = CompletableDeferred<Unit>()
            val allIn = CompletableDeferred<Unit>()
            val acquired = AtomicInteger()
            val failures = AtomicInteger()
            val firstGrant = CompletableDeferred<Long>()
            val permits = Semaphore(256)
            return coroutineScope {
                val holders = launch {
                    repeat(locks) { i ->
                        permits.acquire()
                        launch {
                            var inside = false
                            try {
                                subject.redlock.withRedlock("cost-$i") {
                                    inside = true
                                    firstGrant.complete(now())
                                    permits.release()
                                    if (acquired.incrementAndGet() == locks) allIn.complete(Unit)
                                    gate.await()
                                }
                            } catch (e: CancellationException) {
                                throw e
                            } catch (e: Exception) {
                                if (failures.incrementAndGet() == 1) log("  first failure: $e")
                                if (!inside) permits.release()
                                if (acquired.get() + failures.get() >= locks) allIn.complete(Unit)
                            }
                        }
                    }
                }
                try {
                    withTimeoutOrNull(10.minutes) { allIn.await() }
                    // Halfway between two renewal rounds, so that the window holds exactly three.
                    delayUntil(firstGrant.await() + (cycle * 1.5).inWholeNanoseconds)
                    val statsBefore = admin.commandStats(0)
                    val cpuBefore = admin.info(0, "cpu")
                    val clientBefore = processCpuNanos()
                    val start = now()
                    delay(cycle * 3)
                    val statsAfter = admin.commandStats(0)
                    val cpuAfter = admin.info(0, "cpu")
                    val clientAfter = processCpuNanos()
                    val seconds = (now() - start) / 1e9
                    val stats = admin.info(0, "stats")
                    val memory = admin.info(0, "memory")
                    fun serverCpu(info: Map<String, String>) = (info["used_cpu_user"]?.toDouble() ?: 0.0) + (info["used_cpu_sys"]?.toDouble() ?: 0.0)
                    val names = statsAfter.calls.keys.filter { it != "info" }
                    TrackingCost(
                        tracking = tracking,
                        window = window,
                        locks = locks,
                        held = acquired.get(),
                        seconds = seconds,
                        // The INFO calls that read the counters are the harness's, not the subject's.
                        commandsPerSecond = names.sumOf { (statsAfter.calls[it] ?: 0) - (statsBefore.calls[it] ?: 0) } / seconds,
                        scriptsPerSecond = (statsAfter.scripts - statsBefore.scripts) / seconds,
                        perCommand = names.associateWith { ((statsAfter.calls[it] ?: 0) - (statsBefore.calls[it] ?: 0)) / seconds }.filterValues { it > 0 },
                        serverCpu = (serverCpu(cpuAfter) - serverCpu(cpuBefore)) / seconds,
                        clientCpu = (clientAfter - clientBefore) / 1e9 / seconds,
                        trackedKeys = stats["tracking_total_keys"]?.toLongOrNull() ?: 0,
                        usedMemory = memory["used_memory"]?.toLongOrNull() ?: 0,
                        failures = failures.get() + (locks - acquired.get() - failures.get()).coerceAtLeast(0),
                    )
                } finally {
                    gate.complete(Unit)
                    holders.join()
                }
            }
        } finally {
            subject.close()
            fleet.flushAll()
        }
    }
}

/** Suspends until [nanos] on the monotonic clock of [now] (at once when it has passed). */
suspend fun delayUntil(nanos: Long) {
    val left = nanos - now()
    if (left > 0) delay(left.nanoseconds)
}

private fun rootCause(e: Throwable): Throwable {
    var c = e
    while (true) {
        val next = c.cause
        if (next == null || next === c) return c
        if (c is java.util.concurrent.CompletionException || c is java.util.concurrent.ExecutionException) c = next else return c
    }
}

/**
 * A holder's JVM ([CrashHolder]) on this machine, started with this process's class path, and
 * killed (SIGKILL) by [kill]. Every holder still alive when this JVM exits is killed then; and a
 * holder exits by itself when this JVM goes away (its standard input closes).
 */
class HolderProcess private constructor(private val process: Process) : AutoCloseable {
    private val held = CompletableFuture<Unit>()
    private val lines = ArrayDeque<String>()

    init {
        // Reads the holder's output to its end: says when it holds, keeps its last lines for errors,
        // and never lets a full pipe block it.
        Thread({
            try {
                process.inputStream.bufferedReader().forEachLine { line ->
                    synchronized(lines) {
                        lines.addLast(line)
                        if (lines.size > 20) lines.removeFirst()
                    }
                    if (line == HELD) held.complete(Unit)
                }
            } catch (e: Exception) {
                // The holder was killed.
            }
            held.completeExceptionally(IllegalStateException("the holder exited (${process.waitFor()}) before holding the lock: ${synchronized(lines) { lines.joinToString(" | ") }}"))
        }, "holder-output").apply { isDaemon = true }.start()
    }

    /** Kills the holder (SIGKILL) and waits for it to be gone. */
    fun kill() {
        process.destroyForcibly()
        process.waitFor(10, TimeUnit.SECONDS)
        ALIVE.remove(process)
    }

    override fun close() = kill()

    companion object {
        private val ALIVE = ConcurrentHashMap.newKeySet<Process>()

        init {
            Runtime.getRuntime().addShutdownHook(Thread { ALIVE.forEach { it.destroyForcibly() } })
        }

        /** Starts a holder of [resource] and returns once it holds the lock (within a minute), else kills it and throws. */
        suspend fun start(variant: Variant, lease: Duration, resource: String, uris: List<String>): HolderProcess {
            val java = java.nio.file.Path.of(System.getProperty("java.home"), "bin", "java").toString()
            val command = listOf(
                java, "-Xmx256m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1",
                "-cp", System.getProperty("java.class.path"), "dev.redlock.benchmarks.CrashHolder",
                variant.name, lease.inWholeMilliseconds.toString(), resource,
            ) + uris
            val process = ProcessBuilder(command).redirectErrorStream(true).start()
            ALIVE += process
            val holder = HolderProcess(process)
            try {
                withTimeout(1.minutes) { holder.held.await() }
                return holder
            } catch (e: Throwable) {
                holder.kill()
                throw e
            }
        }
    }
}
