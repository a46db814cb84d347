package dev.redlock.chaos

import dev.redlock.core.LockLostException
import dev.redlock.core.LockNotAcquiredException
import dev.redlock.core.RedlockConfig
import dev.redlock.coroutines.Lease
import dev.redlock.coroutines.Redlock
import dev.redlock.coroutines.withRedlock
import java.util.concurrent.atomic.AtomicLong
import kotlin.random.Random
import kotlin.time.AbstractLongTimeSource
import kotlin.time.Duration
import kotlin.time.Duration.Companion.milliseconds
import kotlin.time.DurationUnit
import kotlin.time.ExperimentalTime
import kotlin.time.TimeSource
import kotlin.time.toJavaDuration
import kotlinx.coroutines.CancellationException
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.Job
import kotlinx.coroutines.coroutineScope
import kotlinx.coroutines.delay
import kotlinx.coroutines.launch
import kotlinx.coroutines.withTimeoutOrNull

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
) {
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
 */
data class WorkerSettings(
    val name: String,
    val resources: List<String>,
    val seed: Long,
    val timing: Timing,
    val clockRate: Double = 1.0,
    val maxSections: Int = Int.MAX_VALUE,
    val minSectionMillis: Long = 0,
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
 * a few longer than the lease so that they need renewals. Steps are at most 50 ms, so the believed
 * validity is sampled at least that often.
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
 * The holder's belief, from [lease]: `now + remaining` in real time, or null when nothing remains.
 * `remaining` is read before `now`, so the belief is never understated.
 */
fun believedValidUntil(lease: Lease, clockRate: Double): Long? {
    val remaining = lease.remaining
    val now = System.nanoTime()
    if (remaining <= Duration.ZERO) return null
    return now + (remaining.inWholeNanoseconds / clockRate).toLong()
}

/**
 * Runs [settings]' client on [redlock] until [stop] says so, reporting every section to [sink].
 * Returns the number of sections started. Cancellable.
 */
suspend fun runWorker(redlock: Redlock, settings: WorkerSettings, sink: SectionSink, stop: () -> Boolean): Int {
    val random = Random(settings.seed)
    var started = 0
    var n = 0
    while (!stop() && started < settings.maxSections) {
        val resource = settings.resources[random.nextInt(settings.resources.size)]
        val steps = sectionSteps(random, settings.timing.lease, settings.minSectionMillis)
        if (runSection(redlock, "${settings.name}#${n++}", settings.name, resource, settings.timing, steps, settings.clockRate, sink) != null) started++
        delay(random.nextLong(0, 3))
    }
    return started
}

/**
 * One critical section under `withRedlock`: waits for the lock on [resource], then runs [steps]
 * (suspending for each), sampling the believed validity at the start, after every step and at the
 * end, and reports it all to [sink] under [id]. Returns the outcome, or null if the lock was not
 * acquired. Cancellable.
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
): Outcome? = coroutineScope {
    val declaredAt = AtomicLong(-1)
    var watcher: Job? = null
    var begun = false
    try {
        redlock.withRedlock(resource, leaseTime = timing.lease, waitTime = timing.wait) { lease ->
            val start = System.nanoTime()
            begun = true
            sink.begin(id, client, resource, start, believedValidUntil(lease, clockRate) ?: start)
            lease.fencingToken?.let { sink.fence(id, it) }
            // Outside the block's scope, so that the loss that cancels the block does not cancel it.
            watcher = this@coroutineScope.launch(Dispatchers.Default) {
                lease.awaitLost()
                declaredAt.set(System.nanoTime())
            }
            var completed = false
            try {
                for (step in steps) {
                    delay(step)
                    believedValidUntil(lease, clockRate)?.let { sink.valid(id, it) }
                }
                completed = true
            } finally {
                believedValidUntil(lease, clockRate)?.let { sink.valid(id, it) }
                sink.ended(id, System.nanoTime(), completed)
            }
        }
        sink.outcome(id, Outcome.COMPLETED, null, null)
        Outcome.COMPLETED
    } catch (e: LockLostException) {
        // The watcher resumes on another thread when the loss is declared: give it a moment.
        withTimeoutOrNull(1_000) { watcher?.join() }
        sink.outcome(id, Outcome.LOST, e.reason().name, declaredAt.get().takeIf { it >= 0 })
        Outcome.LOST
    } catch (e: LockNotAcquiredException) {
        sink.notAcquired(client, if (e.isContended) "contended" else "failed")
        null
    } catch (e: CancellationException) {
        throw e
    } catch (e: Exception) {
        if (begun) {
            sink.outcome(id, Outcome.FAILED, e.javaClass.simpleName, null)
            Outcome.FAILED
        } else {
            sink.notAcquired(client, "error")
            null
        }
    } finally {
        watcher?.cancel()
    }
}
