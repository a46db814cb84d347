package dev.redlock.chaos

import dev.redlock.core.LockLostException
import dev.redlock.core.LockNotAcquiredException
import dev.redlock.core.RedlockClosedException
import dev.redlock.core.RedlockConfig
import dev.redlock.core.internal.ConfigInternals
import dev.redlock.coroutines.InternalRedlockApi
import dev.redlock.coroutines.Lease
import dev.redlock.coroutines.Redlock
import dev.redlock.coroutines.times
import dev.redlock.coroutines.withRedlock
import kotlin.random.Random
import kotlin.time.AbstractLongTimeSource
import kotlin.time.ComparableTimeMark
import kotlin.time.Duration
import kotlin.time.Duration.Companion.milliseconds
import kotlin.time.DurationUnit
import kotlin.time.ExperimentalTime
import kotlin.time.TimeSource
import kotlin.time.toJavaDuration
import kotlinx.coroutines.CancellationException
import kotlinx.coroutines.delay

/**
 * Timing shared by every client of a run.
 *
 * @property lease the lease time of every section
 * @property wait how long a client waits for a lock before giving up on that section
 * @property nodeTimeout the per-master timeout
 * @property retryDelay the base retry delay while waiting
 */
data class Timing(
    val lease: Duration = 1000.milliseconds,
    val wait: Duration = 3000.milliseconds,
    val nodeTimeout: Duration = 100.milliseconds,
    val retryDelay: Duration = 20.milliseconds,
    /** The restart guard; null for the library's default (the lease time), zero for off. */
    val restartGuard: Duration? = null,
    /** Whether leases carry fencing tokens, which the checker then checks for order. */
    val fencing: Boolean = true,
    /** Whether the masters push changes of held and waited-for keys (RedlockConfig.keyTracking). */
    val keyTracking: Boolean = true,
) {
    /** The restart guard in force: the configured one, or the library's default (the lease time). */
    val guard: Duration
        get() = restartGuard ?: lease

    /**
     * The clock drift allowance of a lease of [leaseNanos] (the library's default factor and
     * constant): a validity ends `lease - drift` after the start of the call that set it.
     */
    fun driftNanos(leaseNanos: Long): Long = ConfigInternals.driftFor(driftConfig, java.time.Duration.ofNanos(leaseNanos)).toNanos()

    private val driftConfig: RedlockConfig by lazy { config(listOf("redis://127.0.0.1:6379")) }

    fun config(masters: List<String>): RedlockConfig =
        RedlockConfig.builder()
            .masters(masters)
            .leaseTime(lease.toJavaDuration())
            .waitTime(wait.toJavaDuration())
            .nodeTimeout(nodeTimeout.toJavaDuration())
            .retryDelay(retryDelay.toJavaDuration())
            .keyPrefix(KEY_PREFIX)
            .restartGuard(restartGuard?.toJavaDuration())
            .fencing(fencing)
            .keyTracking(keyTracking)
            .build()

    companion object {
        /** Lock keys of the suite; filler keys written to force evictions never use it. */
        const val KEY_PREFIX = "chaos:"
    }
}

/**
 * One client's work: [name] takes locks on its [resources] (picked at random from [seed]) one after
 * the other, each for a critical section of a few steps, until told to stop or [maxSections] ran.
 *
 * @property clockRate the rate of this client's clock against real time (1.0 normal; 0.9 runs slow)
 * @property minSectionMillis the shortest critical section this client runs
 * @property longLease when set, every section of this client asks for this per-call lease time
 *   (longer than the restart guard, which defaults to the config's lease time) and lasts at least two
 *   of the config's leases; a call the library refuses (`IllegalArgumentException`) counts as
 *   `refused`
 */
data class WorkerSettings(
    val name: String,
    val resources: List<String>,
    val seed: Long,
    val timing: Timing,
    val clockRate: Double = 1.0,
    val maxSections: Int = Int.MAX_VALUE,
    val minSectionMillis: Long = 0,
    val longLease: Duration? = null,
)

/** A monotonic clock that runs at [rate] times real time: the "slow client clock" fault. */
@OptIn(ExperimentalTime::class)
class ScaledTimeSource(private val rate: Double) : AbstractLongTimeSource(DurationUnit.NANOSECONDS) {
    private val origin = System.nanoTime()

    init {
        require(rate > 0.0 && rate.isFinite()) { "rate expected to be positive and finite, but was $rate" }
    }

    override fun read(): Long = ((System.nanoTime() - origin) * rate).toLong()
}

/** The clock a client with [rate] runs on: the real monotonic clock at 1.0. */
fun clockFor(rate: Double): TimeSource.WithComparableMarks = if (rate == 1.0) TimeSource.Monotonic else ScaledTimeSource(rate)

/**
 * The steps of one critical section: mostly short (a few ms to 40 ms), some longer (up to 300 ms),
 * a few longer than the lease so that they need renewals; at least [minMillis]. Steps are at most
 * 50 ms, so the block stops within that of its own end.
 */
fun sectionSteps(random: Random, lease: Duration, minMillis: Long = 0): List<Duration> {
    val roll = random.nextDouble()
    val totalMillis = when {
        roll < 0.75 -> random.nextLong(2, 40)
        roll < 0.95 -> random.nextLong(40, 300)
        else -> random.nextLong(lease.inWholeMilliseconds * 2 / 5, lease.inWholeMilliseconds * 3 / 2)
    }.coerceAtLeast(minMillis)
    val steps = ArrayList<Duration>()
    var left = totalMillis
    while (left > 0) {
        val step = minOf(left, MAX_STEP_MILLIS)
        steps += step.milliseconds
        left -= step
    }
    return steps
}

private const val MAX_STEP_MILLIS = 50L

/**
 * A mark of the Redlock's time source as a `System.nanoTime()` reading: exact for the monotonic
 * source (the same clock), and scaled back to real time for a client whose clock runs at [clockRate].
 * The mark's distance from now and the real clock are read back to back (tens of nanoseconds apart).
 */
fun realNanos(mark: ComparableTimeMark, clockRate: Double): Long {
    val elapsed = mark.elapsedNow().inWholeNanoseconds
    return System.nanoTime() - (elapsed / clockRate).toLong()
}

/** The exact figures of [lease] in real time: the end of its validity, and when its loss was declared (null if not). */
@OptIn(InternalRedlockApi::class)
fun leaseFigures(lease: Lease, clockRate: Double): Pair<Long, Long?> {
    val times = lease.times()
    return realNanos(times.validUntil, clockRate) to times.lossDeclaredAt?.let { realNanos(it, clockRate) }
}

/**
 * Runs [settings]' client on [redlock] until [stop] says so, reporting every section to [sink].
 * Returns the number of sections started. Cancellable.
 */
suspend fun runWorker(redlock: Redlock, settings: WorkerSettings, sink: SectionSink, stop: () -> Boolean): Int {
    val random = Random(settings.seed)
    val lease = settings.timing.lease
    var started = 0
    var n = 0
    while (!stop() && started < settings.maxSections) {
        val resource = settings.resources[random.nextInt(settings.resources.size)]
        val long = settings.longLease
        val steps = sectionSteps(random, lease, if (long != null) maxOf(settings.minSectionMillis, lease.inWholeMilliseconds * 2) else settings.minSectionMillis)
        val outcome = runSection(redlock, "${settings.name}#${n++}", settings.name, resource, settings.timing, steps, settings.clockRate, sink, long)
        if (outcome != null && outcome != Outcome.REFUSED) started++
        // A refused call returns at once: do not spin on it.
        delay(if (outcome == Outcome.REFUSED) random.nextLong(40, 80) else random.nextLong(0, 3))
    }
    return started
}

/**
 * One critical section under `withRedlock`: waits for the lock on [resource] (asking for
 * [leaseTime], or the config's lease time when null), then runs [steps] (suspending for each), and
 * reports it all to [sink] under [id]: when the block began and stopped, and the lease's exact
 * validity and loss declaration (`Lease.times()`) read first thing in the block's `finally` and
 * again after `withRedlock` returned or threw. The block completes early, before a step, once
 * [stopWhen] says so. Returns the outcome, null if the lock was not
 * acquired, or [Outcome.REFUSED] when the call was refused with `IllegalArgumentException` before
 * any wait. Cancellable.
 */
suspend fun runSection(
    redlock: Redlock,
    id: String,
    client: String,
    resource: String,
    timing: Timing,
    steps: List<Duration>,
    clockRate: Double,
    sink: SectionSink,
    leaseTime: Duration? = null,
    stopWhen: () -> Boolean = { false },
): Outcome? {
    var held: Lease? = null
    fun declaredNow(): Long? = held?.let { leaseFigures(it, clockRate).second }
    try {
        redlock.withRedlock(resource, leaseTime = leaseTime ?: timing.lease, waitTime = timing.wait) { lease ->
            val start = System.nanoTime()
            held = lease
            sink.begin(id, client, resource, start, leaseFigures(lease, clockRate).first, leaseTime?.inWholeNanoseconds ?: 0)
            lease.fencingToken?.let { sink.fence(id, it) }
            var completed = false
            try {
                for (step in steps) {
                    if (stopWhen()) break
                    delay(step)
                    sink.valid(id, leaseFigures(lease, clockRate).first)
                }
                completed = true
            } finally {
                // The block stops here: read the clock first, then the library's exact figures.
                val end = System.nanoTime()
                val (validUntil, declared) = leaseFigures(lease, clockRate)
                sink.ended(id, end, completed, validUntil, declared)
            }
        }
        sink.outcome(id, Outcome.COMPLETED, null, declaredNow())
        return Outcome.COMPLETED
    } catch (e: LockLostException) {
        sink.outcome(id, Outcome.LOST, e.reason().name, declaredNow())
        return Outcome.LOST
    } catch (e: LockNotAcquiredException) {
        sink.notAcquired(client, if (e.isContended) "contended" else "failed")
        return null
    } catch (e: CancellationException) {
        throw e
    } catch (e: Exception) {
        if (held != null) {
            sink.outcome(id, Outcome.FAILED, e.javaClass.simpleName, declaredNow())
            return Outcome.FAILED
        }
        return when (e) {
            is RedlockClosedException -> null.also { sink.notAcquired(client, "closed") }
            is IllegalArgumentException -> Outcome.REFUSED.also { sink.notAcquired(client, "refused") }
            else -> null.also { sink.notAcquired(client, "error") }
        }
    }
}
