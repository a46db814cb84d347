package dev.redlock.benchmarks

import dev.redlock.core.LockLostException
import dev.redlock.coroutines.withRedlock
import dev.redlock.testing.RedisFleet
import dev.redlock.testing.TcpProxy
import java.util.concurrent.ConcurrentLinkedQueue
import java.util.concurrent.TimeUnit
import java.util.concurrent.atomic.AtomicBoolean
import java.util.concurrent.atomic.AtomicInteger
import java.util.concurrent.atomic.AtomicLong
import java.util.concurrent.atomic.AtomicReference
import kotlin.random.Random
import kotlin.time.Duration
import kotlin.time.Duration.Companion.minutes
import kotlin.time.Duration.Companion.seconds
import kotlinx.coroutines.CancellationException
import kotlinx.coroutines.CompletableDeferred
import kotlinx.coroutines.coroutineScope
import kotlinx.coroutines.delay
import kotlinx.coroutines.future.await
import kotlinx.coroutines.joinAll
import kotlinx.coroutines.launch
import kotlinx.coroutines.sync.Semaphore
import kotlinx.coroutines.withTimeoutOrNull
import org.HdrHistogram.ConcurrentHistogram

/** Lease time of scenarios 1, 2, 3 and 5: long enough never to be renewed within a phase. */
val LEASE: Duration = 30.seconds

/** How long Redisson's waiters get to take their turn and leave after a phase before they are cancelled. */
private val DRAIN: Duration = 10.seconds

/** Scenario 1 at one N: uncontended acquire + release, one caller, one resource. */
data class Uncontended(
    val n: Int,
    val ours: Latency,
    /** The same through `withRedlock { }`, which also starts and stops the renewal job. */
    val oursBlock: Latency,
    val redisson: Latency,
    val baseline: Latency,
)

/** Scenario 2 for one implementation, N and number of contenders. */
data class HandOff(
    val impl: Impl,
    val n: Int,
    val contenders: Int,
    /** Critical sections that began in the measured phase. */
    val sections: Long,
    val perSecond: Double,
    /** Of those, the sections whose holder differs from the previous section's. */
    val handOffs: Long,
    /** From the end of one critical section (its holder starts releasing) to the start of the next, microseconds. */
    val gap: Latency,
    /** From a contender asking for the lock to its critical section's start, microseconds. */
    val wait: Latency,
    val cpuMicrosPerSection: Double,
    /** Sections that began before the previous one ended, over every section recorded (warm-up included): must be 0. */
    val overlaps: Int,
    val recorded: Int,
    val errors: Int,
) {
    val changedHands: Double get() = if (sections == 0L) Double.NaN else handOffs.toDouble() / sections
}

/** Scenario 3 for one implementation and N. */
data class Throughput(
    val impl: Impl,
    val n: Int,
    val ops: Long,
    val perSecond: Double,
    val latency: Latency,
    val cpuMicrosPerOp: Double,
    val errors: Int,
    /** The masters' CPU time (`INFO cpu`, all N) over the measured window, per operation; NaN where not read. */
    val serverCpuMicrosPerOp: Double = Double.NaN,
    /** Commands the masters ran (`INFO commandstats`, a script's own commands included, all N) per operation. */
    val commandsPerOp: Double = Double.NaN,
)

/** Scenario 4 for one implementation and N. */
data class Footprint(
    val impl: Impl,
    val n: Int,
    val locks: Int,
    val acquired: Int,
    val acquireSeconds: Double,
    /** Lowest of three readings while the locks are held, minus the heap before they were taken, per lock. */
    val heapPerLock: Double,
    val heapPerLockHighest: Double,
    val threadsBefore: Int,
    val threadsDuring: Int,
    val holdSeconds: Double,
    val perMaster: List<MasterRate>,
    /** Locks lost or not acquired: must be 0. */
    val failures: Int,
    /** Calls per second of each command over the hold, all masters, busiest first (INFO commandstats). */
    val commandMix: String = "",
    /** Live objects per lock by class at the end of the hold against before the locks were taken, largest first. */
    val heapByClass: String = "",
    /** Their bytes per lock, all classes. */
    val heapByClassTotal: Double = Double.NaN,
) {
    val scriptsPerSecond: Double get() = perMaster.sumOf { it.scriptsPerSecond }
    val commandsPerSecond: Double get() = perMaster.sumOf { it.commandsPerSecond }
}

/** Scenario 5 for one implementation: acquire latency with every master answering at loopback speed, and with one made slow. */
data class SlowMaster(val impl: Impl, val reference: Latency, val slow: Latency, val errors: Int)

/** The scenarios, run one after another on the same [fleet] of 5 masters. */
class Scenarios(private val fleet: RedisFleet, private val profile: Profile, private val log: (String) -> Unit) {
    private val warmup = profile.warmup
    private val measure = profile.measure

    private fun uris(n: Int): List<String> = fleet.uris().take(n)

    /** Opens a subject, runs [body], closes it and flushes every master. */
    private suspend fun <R> using(impl: Impl, uris: List<String>, lease: Duration = LEASE, retry: RetryPolicy = RetryPolicy.PHYSICAL, body: suspend (LockSubject) -> R): R {
        val subject = openSubject(impl, uris, lease, retry)
        try {
            return body(subject)
        } finally {
            subject.close()
            fleet.flushAll()
        }
    }

    // ---------------------------------------------------------------- JIT warm-up

    /**
     * Runs every implementation at N = 1 and N = 5, one caller then 16 callers over random
     * resources, so that the first one measured is not the one that pays for the JIT.
     */
    suspend fun warmUp() {
        log("warming up every implementation")
        for (n in listOf(1, 5)) {
            for (impl in Impl.entries) {
                using(impl, uris(n)) { s ->
                    val end = now() + profile.jitWarmup.inWholeNanoseconds
                    while (now() < end) s.acquire("warm", 1).release()
                    coroutineScope {
                        val stopAt = now() + profile.jitWarmup.inWholeNanoseconds
                        repeat(16) { worker ->
                            launch {
                                val random = Random(worker)
                                while (now() < stopAt) s.locked("warm-" + random.nextInt(1000), worker + 1L) {}
                            }
                        }
                    }
                }
            }
        }
    }

    // ---------------------------------------------------------------- scenario 1

    suspend fun uncontended(): List<Uncontended> = listOf(1, 5).map { n ->
        log("scenario 1, N = $n")
        val (ours, block) = using(Impl.OURS, uris(n)) { s ->
            val plain = closedLoop(warmup, measure) { timed { s.acquire("s1", 1).release() } }
            val inBlock = closedLoop(warmup, measure) { timed { s.locked("s1", 1) {} } }
            plain to inBlock
        }
        val redisson = using(Impl.REDISSON, uris(n)) { s -> closedLoop(warmup, measure) { timed { s.acquire("s1", 1).release() } } }
        val baseline = using(Impl.BASELINE, uris(n)) { s -> closedLoop(warmup, measure) { timed { s.acquire("s1", 1).release() } } }
        Uncontended(n, ours, block, redisson, baseline)
    }

    // ---------------------------------------------------------------- scenario 2

    suspend fun hotResource(): List<HandOff> {
        val results = ArrayList<HandOff>()
        for (n in listOf(1, 5)) {
            for (impl in Impl.entries) {
                val retry = if (impl == Impl.BASELINE) RetryPolicy.POLLING else RetryPolicy.PHYSICAL
                using(impl, uris(n), retry = retry) { s ->
                    for (contenders in profile.contenders) {
                        log("scenario 2, N = $n, ${impl.label}, $contenders contenders")
                        results += handOff(s, n, contenders)
                    }
                }
            }
        }
        return results
    }

    private class Section(val start: Long, val end: Long, val holder: Int, val waited: Long)

    private suspend fun handOff(subject: LockSubject, n: Int, contenders: Int): HandOff {
        val resource = "hot-$contenders"
        val sections = ConcurrentLinkedQueue<Section>()
        val inside = AtomicInteger()
        val liveOverlaps = AtomicInteger()
        val errors = Errors()
        val window = phased(contenders, subject.cancellableWait) { worker, stop ->
            while (!stop.get()) {
                val asked = now()
                errors.count {
                    subject.locked(resource, worker + 1L) {
                        val start = now()
                        if (inside.incrementAndGet() != 1) liveOverlaps.incrementAndGet()
                        inside.decrementAndGet()
                        sections += Section(start, now(), worker, start - asked)
                    }
                }
            }
        }
        val all = sections.sortedBy { it.start }
        var overlaps = liveOverlaps.get()
        val gaps = newHistogram()
        val waits = newHistogram()
        var counted = 0L
        var handOffs = 0L
        for (i in all.indices) {
            val s = all[i]
            val previous = all.getOrNull(i - 1)
            if (previous != null && s.start < previous.end) overlaps++
            if (s.start in window.start until window.end) {
                counted++
                waits.recordValue(s.waited)
                if (previous != null) {
                    gaps.recordValue((s.start - previous.end).coerceAtLeast(0))
                    if (previous.holder != s.holder) handOffs++
                }
            }
        }
        return HandOff(
            impl = subject.impl,
            n = n,
            contenders = contenders,
            sections = counted,
            perSecond = counted / window.seconds,
            handOffs = handOffs,
            gap = Latency.of(gaps),
            wait = Latency.of(waits),
            cpuMicrosPerSection = if (counted == 0L) Double.NaN else window.cpuNanos / 1000.0 / counted,
            overlaps = overlaps,
            recorded = all.size,
            errors = errors.total,
        )
    }

    // ---------------------------------------------------------------- scenario 3

    suspend fun manyResources(): List<Throughput> {
        val results = ArrayList<Throughput>()
        for (n in listOf(1, 5)) {
            for (impl in Impl.entries) {
                log("scenario 3, N = $n, ${impl.label}")
                results += using(impl, uris(n)) { s ->
                    // The masters' CPU and commands over the measured window: with the client on the same
                    // 2 cores, what the servers do per operation bounds the operations per second too.
                    val read = { (0 until n).map { ClusterScenario.ServerReading.of(it) { i, args -> fleet.command(i, *args) } } }
                    var before: List<ClusterScenario.ServerReading> = emptyList()
                    var after: List<ClusterScenario.ServerReading> = emptyList()
                    val t = throughput(s, n, onStart = { before = read() }, onEnd = { after = read() })
                    if (before.isEmpty() || after.isEmpty() || t.ops == 0L) t
                    else t.copy(
                        serverCpuMicrosPerOp = (after.sumOf { it.cpuSeconds } - before.sumOf { it.cpuSeconds }) * 1e6 / t.ops,
                        commandsPerOp = (after.sumOf { it.commands } - before.sumOf { it.commands }).toDouble() / t.ops,
                    )
                }
            }
        }
        return results
    }

    /**
     * Scenario 3's loop on [subject]: [onStart] and [onEnd] run at the measured window's bounds
     * (scenario 10 reads the servers' counters there).
     */
    internal suspend fun throughput(subject: LockSubject, n: Int, onStart: () -> Unit = {}, onEnd: () -> Unit = {}): Throughput {
        val histogram = ConcurrentHistogram(3)
        val errors = Errors()
        val window = AtomicReference<Window>()
        val onWindow = { w: Window ->
            onStart()
            window.set(w)
        }
        val measured = phased(profile.acquirers, subject.cancellableWait, onWindow = onWindow, onEnd = onEnd) { worker, stop ->
            val random = Random(worker)
            while (!stop.get()) {
                val resource = "r-" + random.nextInt(profile.resources)
                val start = now()
                val ok = errors.count { subject.locked(resource, worker + 1L) {} }
                val end = now()
                val w = window.get()
                if (ok && w != null && end < w.end) histogram.recordValue(end - start)
            }
        }
        // Operations that ended in the measured phase: started after its start or not.
        val ops = histogram.totalCount
        val cpuPerOp = if (ops == 0L) Double.NaN else measured.cpuNanos / 1000.0 / ops
        return Throughput(subject.impl, n, ops, ops / measured.seconds, Latency.of(histogram), cpuPerOp, errors.total)
    }

    // ---------------------------------------------------------------- scenario 4

    suspend fun heldLocks(): List<Footprint> {
        val results = ArrayList<Footprint>()
        val sizes = listOf(1 to profile.heldLocks, 5 to profile.heldLocksN5).filter { it.second > 0 }
        for ((n, locks) in sizes) {
            log("scenario 4, N = $n, ours, $locks locks for ${profile.hold}")
            results += holdOurs(n, locks)
            log("scenario 4, N = $n, Redisson, $locks locks for ${profile.hold}")
            results += holdRedisson(n, locks)
        }
        return results
    }

    private suspend fun holdOurs(n: Int, locks: Int): Footprint = using(Impl.OURS, uris(n), lease = profile.holdLease) { s ->
        val redlock = (s as OursSubject).redlock
        repeat(200) { s.acquire("warm-$it", 0).release() }
        val threadsBefore = liveThreads()
        val heapBefore = heapAfterGc()
        val classesBefore = classHistogram()
        val gate = CompletableDeferred<Unit>()
        val allIn = CompletableDeferred<Unit>()
        val acquired = AtomicInteger()
        val failures = AtomicInteger()
        val permits = Semaphore(ACQUIRING)
        val started = now()
        coroutineScope {
            val holders = launch {
                repeat(locks) { i ->
                    permits.acquire()
                    launch {
                        var inside = false
                        var releasing = false
                        try {
                            redlock.withRedlock("hold-$i") {
                                inside = true
                                permits.release()
                                if (acquired.incrementAndGet() == locks) allIn.complete(Unit)
                                gate.await()
                                // Leaving the block releases the lock: as many at once as were taken at once.
                                permits.acquire()
                                releasing = true
                            }
                        } catch (e: CancellationException) {
                            throw e
                        } catch (e: Exception) {
                            if (e is LockLostException || !inside) failures.incrementAndGet()
                            if (failures.get() == 1) log("  first failure: $e")
                            if (acquired.get() + failures.get() >= locks) allIn.complete(Unit)
                        } finally {
                            if (!inside || releasing) permits.release()
                        }
                    }
                }
            }
            try {
                hold(n, allIn, started, threadsBefore, heapBefore, classesBefore, acquired, failures, locks, Impl.OURS)
            } finally {
                gate.complete(Unit)
                holders.join()
            }
        }
    }

    private suspend fun holdRedisson(n: Int, locks: Int): Footprint = using(Impl.REDISSON, uris(n), lease = profile.holdLease) { s ->
        val redisson = s as RedissonSubject
        repeat(200) { s.acquire("warm-$it", 0).release() }
        val threadsBefore = liveThreads()
        val heapBefore = heapAfterGc()
        val classesBefore = classHistogram()
        // The RLock objects are what a Redisson user keeps to unlock later: they count as the locks' footprint.
        val held = arrayOfNulls<org.redisson.api.RLock>(locks)
        val allIn = CompletableDeferred<Unit>()
        val acquired = AtomicInteger()
        val failures = AtomicInteger()
        val permits = Semaphore(ACQUIRING)
        val started = now()
        try {
            coroutineScope {
                launch {
                    repeat(locks) { i ->
                        permits.acquire()
                        val lock = redisson.lockOf("hold-$i")
                        held[i] = lock
                        lock.lockAsync(-1, TimeUnit.MILLISECONDS, i + 1L).whenComplete { _, e ->
                            permits.release()
                            if (e == null) acquired.incrementAndGet() else if (failures.incrementAndGet() == 1) log("  first failure: $e")
                            if (acquired.get() + failures.get() >= locks) allIn.complete(Unit)
                        }
                    }
                }
            }
            hold(n, allIn, started, threadsBefore, heapBefore, classesBefore, acquired, failures, locks, Impl.REDISSON)
        } finally {
            val unlocking = Semaphore(ACQUIRING)
            coroutineScope {
                for (i in held.indices) {
                    val lock = held[i] ?: continue
                    unlocking.acquire()
                    launch {
                        try {
                            lock.unlockAsync(i + 1L).await()
                        } catch (e: Exception) {
                            // A lock that was not acquired: nothing to release.
                        } finally {
                            unlocking.release()
                        }
                    }
                }
            }
        }
    }

    /** Waits until every lock is in, then holds them for the profile's time while reading each master's command counters. */
    private suspend fun hold(
        n: Int,
        allIn: CompletableDeferred<Unit>,
        started: Long,
        threadsBefore: Int,
        heapBefore: Long,
        classesBefore: Map<String, Pair<Long, Long>>,
        acquired: AtomicInteger,
        failures: AtomicInteger,
        locks: Int,
        impl: Impl,
    ): Footprint {
        withTimeoutOrNull(10.minutes) { allIn.await() }
        val acquireSeconds = (now() - started) / 1e9
        log("  ${acquired.get()} of $locks acquired in ${"%.1f".format(acquireSeconds)} s; holding")
        val before = (0 until n).map { CommandStats.read(fleet, it) }
        val holdStart = now()
        // The heap is read at a third, two thirds and the end of the hold: renewals in flight at one
        // reading hold transient objects, so the lowest reading is the locks' own footprint.
        val heap = ArrayList<Long>()
        for (k in 1..3) {
            delay(((holdStart + profile.hold.inWholeNanoseconds * k / 3 - now()) / 1_000_000).coerceAtLeast(0))
            if (k < 3) heap += heapAfterGc()
        }
        val after = (0 until n).map { CommandStats.read(fleet, it) }
        val holdSeconds = (now() - holdStart) / 1e9
        val threadsDuring = liveThreads()
        heap += heapAfterGc()
        val heapDuring = heap.min()
        val rates = before.indices.map { rate(before[it], after[it], holdSeconds) }
        val (byClass, classTotal) = histogramPerLock(classesBefore, classHistogram(), locks)
        log("  live objects per lock by class (${"%.0f".format(classTotal)} B in all): ${byClass.joinToString(", ")}")
        val mix = commandMix(before, after, holdSeconds)
        log("  commands/s over the hold, all masters, by command (INFO commandstats counts the commands a script runs): $mix")
        log("  heap ${heap.map { (it - heapBefore) / locks }} B per lock, threads $threadsBefore -> $threadsDuring, scripts/s ${rates.map { "%.0f".format(it.scriptsPerSecond) }}")
        return Footprint(
            impl = impl,
            n = n,
            locks = locks,
            acquired = acquired.get(),
            acquireSeconds = acquireSeconds,
            heapPerLock = (heapDuring - heapBefore).toDouble() / locks,
            heapPerLockHighest = (heap.max() - heapBefore).toDouble() / locks,
            threadsBefore = threadsBefore,
            threadsDuring = threadsDuring,
            holdSeconds = holdSeconds,
            perMaster = rates,
            failures = failures.get() + (locks - acquired.get() - failures.get()).coerceAtLeast(0),
            commandMix = mix,
            heapByClass = byClass.take(16).joinToString(", ") + if (byClass.size > 16) ", …" else "",
            heapByClassTotal = classTotal,
        )
    }

    // ---------------------------------------------------------------- scenario 5

    suspend fun slowMaster(): List<SlowMaster> {
        val results = ArrayList<SlowMaster>()
        TcpProxy.start("127.0.0.1", fleet.port(4)).use { proxy ->
            val uris = fleet.uris().take(4) + proxy.uri()
            for (impl in Impl.entries) {
                log("scenario 5, ${impl.label}")
                results += using(impl, uris) { s ->
                    val errors = Errors()
                    proxy.latency = java.time.Duration.ZERO
                    val reference = acquireLatency(s, errors)
                    // Half the added round trip on the way there, half on the way back.
                    proxy.latency = java.time.Duration.ofNanos(profile.slowBy.inWholeNanoseconds / 2)
                    val slow = acquireLatency(s, errors)
                    proxy.latency = java.time.Duration.ZERO
                    SlowMaster(impl, reference, slow, errors.total)
                }
            }
        }
        return results
    }

    /** Acquire latency alone: each acquisition takes a fresh resource and is released in the background, so a slow release does not pace the loop. */
    private suspend fun acquireLatency(subject: LockSubject, errors: Errors): Latency = coroutineScope {
        val releasing = Semaphore(RELEASING)
        val counter = AtomicLong()
        val latency = closedLoop(warmup, measure) {
            val start = now()
            var held: Held? = null
            errors.count { held = subject.acquire("s5-" + counter.incrementAndGet(), 1) }
            val elapsed = now() - start
            held?.let { h ->
                releasing.acquire()
                launch {
                    try {
                        h.release()
                    } finally {
                        releasing.release()
                    }
                }
            }
            elapsed
        }
        latency
    }

    // ---------------------------------------------------------------- phases

    /** The measured part of a phase: its bounds on the monotonic clock and the process's CPU time within them. */
    class Window(val start: Long, val end: Long, val cpuNanos: Long) {
        val seconds: Double get() = (end - start) / 1e9
    }

    /**
     * Runs [workers] coroutines of [work] for the warm-up then the measured phase, and stops them:
     * cancelled at once when [cancellable], else told to stop and given [DRAIN] to leave. [onWindow]
     * runs as the measured phase starts, [onEnd] as it ends (before the workers are stopped).
     */
    private suspend fun phased(
        workers: Int,
        cancellable: Boolean,
        onWindow: (Window) -> Unit = {},
        onEnd: () -> Unit = {},
        work: suspend (worker: Int, stop: AtomicBoolean) -> Unit,
    ): Window = coroutineScope {
        val stop = AtomicBoolean(false)
        val jobs = (0 until workers).map { worker -> launch { work(worker, stop) } }
        delay(warmup)
        val start = now()
        val cpuStart = processCpuNanos()
        val end = start + measure.inWholeNanoseconds
        onWindow(Window(start, end, 0))
        delay(measure)
        val cpu = processCpuNanos() - cpuStart
        onEnd()
        stop.set(true)
        if (cancellable) {
            jobs.forEach { it.cancel() }
        } else if (withTimeoutOrNull(DRAIN) { jobs.joinAll() } == null) {
            log("  waiters still queued ${DRAIN} after the phase: cancelled")
            jobs.forEach { it.cancel() }
        }
        jobs.joinAll()
        Window(start, end, cpu)
    }

    /** Counts failed operations (anything but cancellation) and keeps the first for the log. */
    private inner class Errors {
        private val n = AtomicInteger()
        val total: Int get() = n.get()

        suspend fun count(op: suspend () -> Unit): Boolean =
            try {
                op()
                true
            } catch (e: CancellationException) {
                throw e
            } catch (e: Exception) {
                if (n.incrementAndGet() == 1) log("  first error: $e")
                false
            }
    }

    private companion object {
        /** Acquisitions in flight while scenario 4 takes its locks. */
        const val ACQUIRING = 256

        /** Background releases in flight in scenario 5. */
        const val RELEASING = 64
    }
}

/** Runs [op] and returns how long it took in nanoseconds. */
inline fun timed(op: () -> Unit): Long {
    val start = now()
    op()
    return now() - start
}
