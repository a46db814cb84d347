package dev.redlock.coroutines.internal

import dev.redlock.core.MasterFailureException
import io.kotest.core.spec.style.FunSpec
import java.util.concurrent.ConcurrentHashMap
import java.util.concurrent.CopyOnWriteArrayList
import java.util.concurrent.atomic.AtomicBoolean
import kotlin.time.ComparableTimeMark
import kotlinx.coroutines.CoroutineScope
import kotlinx.coroutines.NonCancellable
import org.jetbrains.lincheck.datastructures.DSLScenarioBuilder
import org.jetbrains.lincheck.datastructures.IntGen
import org.jetbrains.lincheck.datastructures.ModelCheckingOptions
import org.jetbrains.lincheck.datastructures.Operation
import org.jetbrains.lincheck.datastructures.Param
import org.jetbrains.lincheck.datastructures.Validate
import org.jetbrains.lincheck.datastructures.forClasses
import org.jetbrains.lincheck.datastructures.verifier.EpsilonVerifier

/**
 * The lease timer ([LeaseTimer]) under all interleavings of registrations, unregistrations,
 * releases, the ends of renewals, its own steps and the passing of time. Lincheck's model checker
 * runs random concurrent scenarios of [LeaseTimerScenario]'s operations against a real timer; the
 * scenario plays the timer's thread (its loop: a tick, then a sleep that the real doorbell cuts
 * short) and the work pool (a renewal's end: its outcome applied to the lease, the entry put back
 * on the timer). After each run, [TimerChecks] checks the queue and then lets the timer run on
 * alone, every renewal hanging, until no lease it guards is held.
 */
class LeaseTimerLincheckTest : FunSpec({

    test("the timer never loses a deadline or a wake-up and keeps no memory for ended entries, in every interleaving the model checker tries").config(timeout = MODEL_CHECKING_BOUND, invocationTimeout = MODEL_CHECKING_BOUND) {
        withEngineLogsOff {
            ModelCheckingOptions()
                .lenientHangDetection()
                .iterations(12 * lincheckScale)
                .invocationsPerIteration(50)
                .threads(3)
                .actorsPerThread(3)
                .actorsBefore(2)
                .actorsAfter(1)
                .verifier(EpsilonVerifier::class.java)
                .addCustomScenario(renewalEndsDuringTick)
                .addCustomScenario(retryQueuedDuringTick)
                // The checks after a run need no interleaving: run outside the model checker's analysis.
                .addGuarantee(forClasses(TimerChecks::class).allMethods().ignore())
                // The coroutines library (the doorbell, the launch of parked coroutines): each call one atomic step.
                .addGuarantee(forClasses { it.startsWith("kotlinx.coroutines.") }.allMethods().treatAsAtomic())
                // Logging, metrics and the exceptions' texts: no shared state of the timer.
                .addGuarantee(forClasses { it.startsWith("dev.redlock.core.") || it == Observer::class.java.name }.allMethods().ignore())
                .check(LeaseTimerScenario::class.java)
        }
    }
})

/*
 * Time: leases of 3 s on one master, renewed every second (a renewal due within the next half
 * second is sent with the others), valid for 2968 ms from the start of the call that set them,
 * declared lost 10 ms before that (the expiry lead): 2958 ms after a grant at t = 0. The clock
 * moves by the advance operation, half a second at a time.
 */
private const val TIMER_LEASE_MS = 3_000L
private const val TIMER_STEP_MS = 500L
private const val NANOS_PER_MS = 1_000_000L

/**
 * The operations on one engine's timer over one master and three leases. Lease a is on the timer
 * (renewed) from the start; b and c may be put on it once each, as the engine puts each lease on
 * it once. Lincheck creates one of these per run.
 */
@Param(name = "lease", gen = IntGen::class, conf = "0:2")
@Param(name = "guarded", gen = IntGen::class, conf = "1:2")
@Param(name = "entry", gen = IntGen::class, conf = "0:2")
@Param(name = "outcome", gen = IntGen::class, conf = "0:2")
@Param(name = "steps", gen = IntGen::class, conf = "1:3")
class LeaseTimerScenario {
    private val clock = TimerEngine.clock.apply { reset() }
    private val origin = clock.markNow()
    private val timer = LeaseTimer(TimerEngine.engine, TimerEngine.parked, CoroutineScope(TimerEngine.parked + NonCancellable))
    private val leases = listOf("a", "b", "c").map { modelLease(TimerEngine.engine, clock, it, TimerEngine.config) }

    /** Which leases were put on the timer (each once). */
    private val registered = List(leases.size) { AtomicBoolean() }

    /** Every entry registered, in order; lease a's is registered before the run starts. */
    private val entries = CopyOnWriteArrayList<LeaseTimer.Entry>()

    /** Per entry taken off by [unregister]: whether a renewal of it was in flight right after. */
    private val renewingWhenTakenOff = ConcurrentHashMap<LeaseTimer.Entry, Boolean>()

    /** What the operations found wrong as they went. */
    private val violations = CopyOnWriteArrayList<String>()

    /** The loop: when it wakes next (ns from the origin), unless the doorbell rings first. */
    @Volatile
    private var wakeAt = 0L

    private val checks = TimerChecks(clock, origin, timer, leases, entries, renewingWhenTakenOff, violations, ::loopStep) { wakeAt }

    init {
        registered[0].set(true)
        entries += timer.register(leases[0], true, null)
    }

    /** Puts lease b or c on the timer (once): renewed if [renew], in any case declared lost at its deadline. */
    @Operation
    fun register(@Param(name = "guarded") lease: Int, renew: Boolean) = step {
        if (registered[lease].compareAndSet(false, true)) entries += timer.register(leases[lease], renew, null)
    }

    /** Takes an entry off the timer, as a section that ends or a disposed facade guard does. */
    @Operation
    fun unregister(@Param(name = "entry") entry: Int) = step {
        entries.getOrNull(entry)?.let { taken ->
            taken.dispose()
            renewingWhenTakenOff.putIfAbsent(taken, taken.renewing)
        }
    }

    /** Releases a lease (its entry stays on the timer until taken off). */
    @Operation
    fun release(@Param(name = "lease") lease: Int) = step {
        leases[lease].markReleased()
    }

    /** The timer's thread: one step of its loop (a tick, then asleep until its wait ends or the doorbell rings). */
    @Operation(nonParallelGroup = "timer")
    fun timerRuns() = step { loopStep() }

    private fun loopStep() {
        val wait = timer.tick()
        val now = clock.now * NANOS_PER_MS
        wakeAt = if (wait.isInfinite()) Long.MAX_VALUE else now + wait.inWholeNanoseconds
        // run() waits with doorbell.receive(): a ring since the tick began wakes it at once.
        if (timer.doorbell.tryReceive().isSuccess) wakeAt = now
    }

    /**
     * Time passes. On the timer's thread, so that the loop's wait is measured from the end of its
     * tick (a thread preempted between the two would wake late by as much, whatever the timer does).
     */
    @Operation(nonParallelGroup = "timer")
    fun advance(@Param(name = "steps") steps: Int) = clock.advance(steps * TIMER_STEP_MS)

    /**
     * The work pool: every renewal in flight ends, as extendAll ends it: its outcome applied to the
     * lease (0: extended, 1: no longer held, 2: the master timed out), then the entries put back on
     * the timer.
     */
    @Operation(nonParallelGroup = "work")
    fun renewalsEnd(@Param(name = "outcome") outcome: Int) = step {
        val inFlight = entries.filter { it.renewing }
        val start = clock.markNow()
        for (entry in inFlight) {
            val lease = entry.lease
            // Renewed no sooner than half an interval after the last success (else the tick keeps it).
            if (lease.renewalFailure == null && (lease.renewedAt - origin).inWholeMilliseconds + TIMER_LEASE_MS / 6 > clock.now) {
                violations += "${lease.resources} was sent for renewal less than half an interval after its last one"
            }
            when (outcome) {
                0 -> lease.extended(start, 1, 0, emptyList())
                1 -> lease.extended(start, 0, 1, emptyList())
                else -> lease.extended(start, 0, 0, listOf(MasterFailureException("m0", MasterFailureException.Kind.TIMEOUT, "no answer", null)))
            }
        }
        if (inFlight.isNotEmpty()) timer.renewalsEnded(inFlight)
    }

    /** Runs an operation; what it throws is a violation (the verifier does not look at results). */
    private inline fun step(operation: () -> Unit) {
        try {
            operation()
        } catch (e: Throwable) {
            violations += "an operation threw $e"
        }
    }

    /** See [TimerChecks.afterRun]. */
    @Validate
    fun invariants() = checks.afterRun()
}

/** A renewal ends (and its entry goes back on the timer) while the timer ticks, with registrations around. */
private val renewalEndsDuringTick = DSLScenarioBuilder().apply {
    initial {
        actor(LeaseTimerScenario::advance, 2) // t = 1 s: a's renewal is due
        actor(LeaseTimerScenario::timerRuns) // a is sent for renewal; its deadline stays on the timer
    }
    parallel {
        thread { actor(LeaseTimerScenario::advance, 3); actor(LeaseTimerScenario::timerRuns) }
        thread { actor(LeaseTimerScenario::renewalsEnd, 0) }
        thread { actor(LeaseTimerScenario::register, 1, false); actor(LeaseTimerScenario::unregister, 0) }
    }
}.buildScenario()

/**
 * A failed renewal queues a retry earlier than the tick the loop sleeps until, while the loop ends
 * a tick: the race in which a wake-up was once lost (the doorbell, and the loop's next wake).
 */
private val retryQueuedDuringTick = DSLScenarioBuilder().apply {
    initial {
        actor(LeaseTimerScenario::advance, 1) // t = 0.5 s: a's renewal, due at 1 s, is sent with the next tick
        actor(LeaseTimerScenario::timerRuns) // a is sent for renewal; the loop sleeps until a's deadline
    }
    parallel {
        thread { actor(LeaseTimerScenario::timerRuns); actor(LeaseTimerScenario::timerRuns) }
        thread { actor(LeaseTimerScenario::renewalsEnd, 2) } // the master timed out: a retry, soon
        thread { actor(LeaseTimerScenario::register, 2, true) }
    }
}.buildScenario()

/**
 * One engine for every run (building one per run would cost more than the run): each run makes a
 * timer of its own on it, and leases that only read it. The clock is set back to zero per run. The
 * timer's coroutines (its loop, its renewal calls) are parked, with a parent that keeps no record
 * of its children.
 */
internal object TimerEngine {
    val clock = ManualClock()
    val config = modelConfig(TIMER_LEASE_MS)
    val parked = ParkedDispatcher()
    val engine = modelEngine(config, 1, clock, parked)
}

/**
 * The timer's invariants, checked after a run. Lincheck runs this outside its analysis (a
 * guarantee in the test's options): its own steps need no interleaving.
 */
internal class TimerChecks(
    private val clock: ManualClock,
    private val origin: ComparableTimeMark,
    private val timer: LeaseTimer,
    private val leases: List<RedlockLease>,
    private val entries: List<LeaseTimer.Entry>,
    private val renewingWhenTakenOff: Map<LeaseTimer.Entry, Boolean>,
    private val violations: List<String>,
    private val loopStep: () -> Unit,
    private val wakeAt: () -> Long,
) {
    private fun deadlineNanos(lease: RedlockLease): Long = (lease.deadline - origin).inWholeNanoseconds

    private fun nowNanos(): Long = clock.now * NANOS_PER_MS

    private fun check(condition: Boolean, what: () -> String) {
        if (!condition) throw AssertionError("${what()} (at ${clock.now} ms; ${describe()})")
    }

    private fun describe(): String {
        val (ticks, live) = timer.inspect()
        val shown = ticks.sortedBy { it.due }.joinToString { "${it.entry.lease.resources}@${it.due / NANOS_PER_MS}ms${if (it.current) "" else " (stale)"}" }
        val states = leases.joinToString { "${it.resources}: ${it.current.javaClass.simpleName} until ${(it.current.validUntil - origin).inWholeMilliseconds} ms" }
        val wake = wakeAt().let { if (it == Long.MAX_VALUE) "never" else "${it / NANOS_PER_MS} ms" }
        return "live $live, queue [$shown], loop wakes $wake, $states"
    }

    /** The queue's invariants: what holds whenever no operation is under way. */
    private fun checkQueue() {
        val (ticks, live) = timer.inspect()
        val active = entries.count { it.active }
        check(live == active) { "the timer counts $live live entries, but $active are on it" }
        for (entry in entries) {
            if (!entry.active || !entry.lease.isHeld) continue
            val current = ticks.filter { it.entry === entry && it.current }
            check(current.size == 1) { "the entry of held lease ${entry.lease.resources} has ${current.size} current ticks" }
            val deadline = deadlineNanos(entry.lease)
            check(current[0].due <= deadline) { "the entry of ${entry.lease.resources} is next looked at after its deadline" }
            if (entry.renewing) {
                check(current[0].due == deadline) { "the entry of ${entry.lease.resources}, being renewed, has no tick at its deadline" }
            }
        }
        check(ticks.size <= 2 * live + 64) { "the queue holds ${ticks.size} ticks for $live live entries" }
        check(live > 0 || ticks.isEmpty()) { "the queue holds ${ticks.size} ticks with no live entry" }
        for ((entry, wasRenewing) in renewingWhenTakenOff) {
            check(!entry.renewing || wasRenewing) { "a renewal of ${entry.lease.resources} started after its entry was taken off the timer" }
        }
    }


    /**
     * After the run: what the operations found, the queue's invariants; then the timer runs on
     * alone, renewals hanging from now on (a paused master), until no lease it guards is held.
     * Before each sleep, the loop must be due to wake by the earliest tick due (no lost wake-up,
     * hence no lost deadline); after each tick, no guarded lease may be held past its deadline.
     * Finally, with every entry taken off, the queue must be empty.
     */
    fun afterRun() {
        check(violations.isEmpty()) { violations.joinToString("; ") }
        checkQueue()
        var rounds = 0
        while (true) {
            val guarded = entries.filter { it.active && it.lease.isHeld }
            if (guarded.isEmpty()) break
            val (ticks, _) = timer.inspect()
            val due = ticks.filter { it.current && it.entry.active && it.entry.lease.isHeld }.minOf { it.due }
            // A ring wakes the loop at once; else it sleeps until its wait ends, which must come by the earliest tick due.
            if (!timer.doorbell.tryReceive().isSuccess) {
                val wake = wakeAt()
                check(wake <= due) { "the loop sleeps until ${if (wake == Long.MAX_VALUE) "forever" else "${wake.toDouble() / NANOS_PER_MS} ms"}, past a tick due at ${due.toDouble() / NANOS_PER_MS} ms" }
                if (wake > nowNanos()) clock.advance((wake - nowNanos() + NANOS_PER_MS - 1) / NANOS_PER_MS)
            }
            loopStep()
            checkQueue()
            for (entry in guarded) {
                check(!entry.lease.isHeld || deadlineNanos(entry.lease) > nowNanos()) { "${entry.lease.resources} is still held after a tick past its deadline" }
            }
            check(++rounds < 1_000) { "the timer does not settle" }
        }
        for (entry in entries.filter { it.active }) {
            val lost = entry.lease.current as? RedlockLease.State.Lost ?: continue
            check(lost.at <= lost.validUntil) { "${entry.lease.resources} was declared lost after its validity ended" }
        }
        for (entry in entries) entry.dispose()
        checkQueue()
    }
}
