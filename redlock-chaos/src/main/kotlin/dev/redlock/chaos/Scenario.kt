package dev.redlock.chaos

import java.util.concurrent.atomic.AtomicBoolean
import kotlin.random.Random
import kotlin.time.Duration
import kotlin.time.Duration.Companion.milliseconds
import kotlin.time.Duration.Companion.nanoseconds
import kotlin.time.Duration.Companion.seconds
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.Job
import kotlinx.coroutines.async
import kotlinx.coroutines.coroutineScope
import kotlinx.coroutines.delay
import kotlinx.coroutines.joinAll
import kotlinx.coroutines.launch
import kotlinx.coroutines.runBlocking
import kotlinx.coroutines.withContext

/**
 * One bounded, seeded chaos run: [clients] clients in this JVM and [childClients] in their own
 * JVMs take locks on [resources] resources over [masters] masters while faults are injected.
 *
 * Faults: with [inOrder], each kind of [faults] once, in the given order; otherwise kinds drawn at
 * random from [faults]. Either way at most [maxFaults], with gaps drawn from [gap], and at most
 * [maxConcurrentFaults] at a time. The run ends after [duration] or [maxSections] sections, and at
 * the latest once the last fault of an [inOrder] run is over plus [settle].
 *
 * Of the clients in this JVM, the first [slowClients] run on a clock at 0.9x; the next
 * [renewingClients] run sections of at least one lease, so that they renew (what the renewal faults
 * aim at); the next [longLeaseClients] ask for a per-call lease of [longLeaseFactor] config leases,
 * longer than the restart guard (what [FaultKind.RESTART_GUARDED_LONG_LEASE] aims at). With
 * [mixTracking], the odd ones run with key tracking off (what the deletion faults compare).
 *
 * Everything random (clients' resources and section lengths, fault kinds, targets and durations)
 * comes from [seed]: a failing run is replayed by running the same scenario with the same seed.
 * (Real processes and threads still interleave differently from run to run.)
 */
data class Scenario(
    val name: String,
    val masters: Int,
    val seed: Long,
    val faults: List<FaultKind>,
    val inOrder: Boolean = false,
    val clients: Int = 8,
    val childClients: Int = 1,
    val slowClients: Int = 0,
    val renewingClients: Int = 0,
    val longLeaseClients: Int = 0,
    val longLeaseFactor: Int = 4,
    val resources: Int = 3,
    val maxFaults: Int = Int.MAX_VALUE,
    val maxSections: Int = Int.MAX_VALUE,
    val duration: Duration = 60.seconds,
    val gap: ClosedRange<Duration> = 100.milliseconds..400.milliseconds,
    val maxConcurrentFaults: Int = 1,
    val settle: Duration = 300.milliseconds,
    val timing: Timing = Timing(),
    val replaceKilledChildren: Boolean = true,
    /** Whether every other client in this JVM (the odd ones) runs with key tracking off, the others with it on. */
    val mixTracking: Boolean = false,
) {
    init {
        require(masters in 1..15) { "masters expected in 1..15, but was $masters" }
        require(clients + childClients >= 1) { "at least one client expected, but clients=$clients and childClients=$childClients" }
        require(slowClients + renewingClients + longLeaseClients <= clients) {
            "slowClients + renewingClients + longLeaseClients expected at most clients ($clients), but was " +
                "$slowClients + $renewingClients + $longLeaseClients"
        }
        require(FaultKind.SLOW_CLOCK !in faults) { "faults must not hold SLOW_CLOCK; set slowClients instead" }
    }

    /** Whether every fault of this scenario keeps the Redlock assumptions. */
    val assumptionsHold: Boolean
        get() = faults.none { it.breaksAssumptions } && slowClients == 0

    /** The line that replays this run. */
    fun replayHint(): String = "scenario '$name' N=$masters seed=$seed"
}

/** A finished run: its [report], when it began ([origin], for readable times), and what was left over. */
class ScenarioResult(
    val scenario: Scenario,
    val report: CheckReport,
    val origin: Long,
    val elapsed: Duration,
    val notAcquired: Map<String, Long>,
    val keysLeftAfterLease: Map<Int, List<String>>,
) {
    /** Calls refused at the call (`IllegalArgumentException`, say a lease longer than the restart guard). */
    val refusals: Long
        get() = notAcquired["refused"] ?: 0L

    fun summary(): String =
        "${scenario.replayHint()}: ${elapsed.inWholeMilliseconds} ms, " + report.summary(origin) +
            (if (notAcquired.isNotEmpty()) "\n  not acquired: $notAcquired" else "") +
            (if (keysLeftAfterLease.isNotEmpty()) "\n  KEYS LEFT one lease after the clients stopped: $keysLeftAfterLease" else "")
}

/**
 * Runs [scenario] and checks its history. Every master, proxy, Redlock and child process it starts
 * is stopped before it returns or throws. Prints the seed first, through [log].
 */
fun runScenario(scenario: Scenario, log: (String) -> Unit = ::println): ScenarioResult {
    quietLogs()
    log("chaos: ${scenario.replayHint()} (faults ${scenario.faults}${if (scenario.inOrder) " in order" else " at random"})")
    val history = History()
    val timing = scenario.timing
    val resources = List(scenario.resources) { "r$it" }
    ChaosCluster(scenario.masters).use { cluster ->
        ChildPool(cluster, history, timing, resources, scenario.seed, scenario.replaceKilledChildren).use { children ->
            children.start(scenario.childClients)
            return runBlocking(Dispatchers.Default) { run(scenario, cluster, children, resources, history) }
        }
    }
}

/** The settings of in-process client [i] of [scenario] (see [Scenario] for the kinds of client). */
private fun workerSettings(scenario: Scenario, i: Int, resources: List<String>): WorkerSettings {
    val timing = scenario.timing
    val renewing = i >= scenario.slowClients && i < scenario.slowClients + scenario.renewingClients
    val long = i >= scenario.slowClients + scenario.renewingClients && i < scenario.slowClients + scenario.renewingClients + scenario.longLeaseClients
    return WorkerSettings(
        "c$i", resources, scenario.seed * 31 + i, timing,
        clockRate = if (i < scenario.slowClients) 0.9 else 1.0,
        minSectionMillis = if (renewing) timing.lease.inWholeMilliseconds else 0,
        longLease = if (long) timing.lease * scenario.longLeaseFactor else null,
    ).let { if (scenario.mixTracking && i % 2 == 1) it.copy(timing = timing.copy(keyTracking = false)) else it }
}

private suspend fun run(
    scenario: Scenario,
    cluster: ChaosCluster,
    children: ChildPool,
    resources: List<String>,
    history: History,
): ScenarioResult {
    val timing = scenario.timing
    val random = Random(scenario.seed)
    val origin = System.nanoTime()
    val deadline = origin + scenario.duration.inWholeNanoseconds
    val stop = AtomicBoolean(false)
    val stopNow = { stop.get() || System.nanoTime() > deadline || history.begun >= scenario.maxSections }
    return coroutineScope {
        val locals = LocalClients(this, cluster, history, stopNow)
        try {
            Injector(cluster, history, timing, children, random, locals).use { injector ->
                for (i in 0 until scenario.clients) locals.start(workerSettings(scenario, i, resources), side = i)
                val faultsDone = async { injectFaults(scenario, injector, random, stopNow) }
                // The run ends by time or count, or once an in-order schedule is done and has settled.
                while (!stopNow()) {
                    if (scenario.inOrder && faultsDone.isCompleted) {
                        delay(scenario.settle)
                        break
                    }
                    delay(20.milliseconds)
                }
                stop.set(true)
                faultsDone.await()
            }
            withContext(Dispatchers.IO) { cluster.restore() }
            // Sections in flight finish on their own (bounded by the wait time and the longest section).
            locals.awaitWorkers(timing.wait + timing.lease * (3 + scenario.longLeaseFactor))
            withContext(Dispatchers.IO) { children.close() }
            history.closeOpen()
            val elapsed = (System.nanoTime() - origin).nanoseconds
            locals.close()
            // Every key has a time to live of at most one lease (the longest one granted): none may outlive it.
            val longest = maxOf(timing.lease.inWholeNanoseconds, history.sections().maxOfOrNull { it.requestedLease } ?: 0L)
            delay(longest.nanoseconds + 200.milliseconds)
            val left = withContext(Dispatchers.IO) { cluster.lockKeys() }
            val report = Checker(timing).check(
                history.sections(), history.faults(), history.clientEvents(), history.closes(), history.orphans(),
                history.deletions(), history.untrackedClients(),
            )
            ScenarioResult(scenario, report, origin, elapsed, history.notAcquiredCounts(), left)
        } finally {
            locals.close()
        }
    }
}

/** Injects the scenario's faults until [stop]; returns when the last one is over. */
private suspend fun injectFaults(scenario: Scenario, injector: Injector, random: Random, stop: () -> Boolean) {
    if (scenario.faults.isEmpty()) return
    val running = ArrayList<Job>()
    var injected = 0
    val plan = if (scenario.inOrder) scenario.faults.iterator() else null
    kotlinx.coroutines.coroutineScope {
        while (!stop() && injected < scenario.maxFaults) {
            val gapNanos = random.nextLong(scenario.gap.start.inWholeNanoseconds, scenario.gap.endInclusive.inWholeNanoseconds + 1)
            delay(gapNanos.nanoseconds)
            if (stop()) break
            running.removeAll { it.isCompleted }
            if (running.size >= scenario.maxConcurrentFaults) {
                running.first().join()
                continue
            }
            val kind = plan?.let { if (it.hasNext()) it.next() else null } ?: if (plan != null) break else scenario.faults[random.nextInt(scenario.faults.size)]
            injected++
            running += launch { injector.inject(kind) }
            if (scenario.maxConcurrentFaults == 1) running.last().join()
        }
        running.joinAll()
    }
}
