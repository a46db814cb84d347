package dev.redlock.coroutines.internal

import dev.redlock.core.LeaseState
import dev.redlock.core.LockLostException
import dev.redlock.core.LockNotExtendedException
import dev.redlock.core.MasterFailureException
import io.kotest.core.spec.style.FunSpec
import kotlin.time.Duration.Companion.milliseconds
import kotlinx.coroutines.CompletableDeferred
import kotlinx.coroutines.ExperimentalCoroutinesApi
import org.jetbrains.lincheck.datastructures.DSLScenarioBuilder
import org.jetbrains.lincheck.datastructures.IntGen
import org.jetbrains.lincheck.datastructures.ModelCheckingOptions
import org.jetbrains.lincheck.datastructures.Operation
import org.jetbrains.lincheck.datastructures.Param
import org.jetbrains.lincheck.datastructures.StressOptions
import org.jetbrains.lincheck.datastructures.Validate
import org.jetbrains.lincheck.datastructures.forClasses

/**
 * The lease's state machine ([RedlockLease.State]: held, at risk, released, lost) under concurrent
 * transitions: Lincheck runs random concurrent scenarios of [LeaseStateScenario]'s operations (and
 * a few written out) on a real [RedlockLease], in each the interleavings its model checker picks
 * (or real threads, in stress mode), and checks that each outcome is one that [LeaseStateModel], a
 * plain sequential statement of the rules, allows for some order of the same operations
 * (linearizability), and that the lease's parts agree once the operations are done.
 */
class LeaseStatesLincheckTest : FunSpec({

    test("every concurrent run of the lease's transitions matches the rules run in some order, in model checking").config(timeout = MODEL_CHECKING_BOUND, invocationTimeout = MODEL_CHECKING_BOUND) {
        withEngineLogsOff {
            ModelCheckingOptions()
                .lenientHangDetection()
                .iterations(12 * lincheckScale)
                .invocationsPerIteration(100)
                .threads(3)
                .actorsPerThread(3)
                .actorsBefore(2)
                .actorsAfter(2)
                .sequentialSpecification(LeaseStateModel::class.java)
                .addCustomScenario(renewalDuringIsValid)
                .addCustomScenario(renewalsAnsweredOutOfOrder)
                .addCustomScenario(releaseDuringIsValid)
                .addCustomScenario(checksAndRisks)
                // Logging, metrics and the exceptions' texts: no shared state of the lease.
                .addGuarantee(forClasses { it.startsWith("dev.redlock.core.") || it == Observer::class.java.name }.allMethods().ignore())
                // The coroutines library (the lease's end, its state flow): each call one atomic step.
                .addGuarantee(forClasses { it.startsWith("kotlinx.coroutines.") }.allMethods().treatAsAtomic())
                .check(LeaseStateScenario::class.java)
        }
    }

    test("every concurrent run of the lease's transitions matches the rules run in some order, on real threads (stress)").config(timeout = MODEL_CHECKING_BOUND, invocationTimeout = MODEL_CHECKING_BOUND) {
        withEngineLogsOff {
            StressOptions()
                .lenientHangDetection()
                .iterations(6 * lincheckScale)
                .invocationsPerIteration(500)
                .threads(3)
                .actorsPerThread(3)
                .actorsBefore(2)
                .actorsAfter(2)
                .sequentialSpecification(LeaseStateModel::class.java)
                .check(LeaseStateScenario::class.java)
        }
    }
})

/*
 * Time: a lease of 3 s on three masters (quorum 2), drift 32 ms, declared lost 10 ms before its
 * validity ends (the expiry lead), held at most 5 s. Granted at t = 0: valid until 2968 ms,
 * deadline 2958 ms. The clock moves only by the advance operation, in whole seconds, and extend
 * outcomes carry their start as an absolute time, so that every outcome depends only on the order
 * of the operations (what linearizability needs).
 */
private const val LEASE_MS = 3_000L
private const val MAX_HOLD_MS = 5_000L
private const val DRIFT_MS = 32L
private const val LEAD_MS = 10L
private const val STEP_MS = 1_000L

/**
 * A run the random scenarios may or may not produce, always checked: the lease is read while a
 * renewal lands and time passes its old deadline (but not its new one).
 */
private val renewalDuringIsValid = DSLScenarioBuilder().apply {
    initial { actor(LeaseStateScenario::advance, 2) }
    parallel {
        thread { actor(LeaseStateScenario::isValid) }
        thread { actor(LeaseStateScenario::extended, 2, 0) }
        thread { actor(LeaseStateScenario::advance, 1) }
    }
}.buildScenario()

/** Two renewals in flight (the timer's and the holder's extend()): the later one's answer lands first. */
private val renewalsAnsweredOutOfOrder = DSLScenarioBuilder().apply {
    initial { actor(LeaseStateScenario::advance, 1) }
    parallel {
        thread { actor(LeaseStateScenario::extended, 1, 0); actor(LeaseStateScenario::validUntil) }
        thread { actor(LeaseStateScenario::extended, 0, 1); actor(LeaseStateScenario::isValid) }
        thread { actor(LeaseStateScenario::advance, 2); actor(LeaseStateScenario::checkDeadlines) }
    }
}.buildScenario()

/** The holder releases a lease past its deadline while another thread asks whether it is valid. */
private val releaseDuringIsValid = DSLScenarioBuilder().apply {
    initial { actor(LeaseStateScenario::advance, 2); actor(LeaseStateScenario::advance, 1) }
    parallel {
        thread { actor(LeaseStateScenario::markReleased) }
        thread { actor(LeaseStateScenario::isValid) }
    }
}.buildScenario()

/**
 * The two reasons to be at risk and what ends each: a failed renewal (only a renewal ends it) and
 * dropped connections (a check that finds a quorum ends it too), with a check and a renewal that
 * fails landing together.
 */
private val checksAndRisks = DSLScenarioBuilder().apply {
    initial { actor(LeaseStateScenario::extended, 0, 2) }
    parallel {
        thread { actor(LeaseStateScenario::checked, 1); actor(LeaseStateScenario::stateNow) }
        thread { actor(LeaseStateScenario::atRisk); actor(LeaseStateScenario::extended, 0, 0); actor(LeaseStateScenario::stateNow) }
        thread { actor(LeaseStateScenario::stateNow); actor(LeaseStateScenario::extended, 0, 2); actor(LeaseStateScenario::checked, 0) }
    }
    post { actor(LeaseStateScenario::stateNow) }
}.buildScenario()

/** One renewal's answers on three masters, as [RedlockLease.extended] takes them. */
private fun outcome(kind: Int): Pair<Int, Int> = when (kind) {
    0 -> 3 to 0 // every master extended it
    1 -> 2 to 1 // a quorum extended it, one master no longer holds it
    2 -> 1 to 0 // one extended it, two failed: not extended, AT_RISK
    else -> 0 to 2 // a quorum no longer holds it: lost
}

private fun describe(t: Throwable?): String = when (t) {
    null -> "extended"
    is LockLostException -> "lost:${t.reason()}"
    is LockNotExtendedException -> "not extended"
    is IllegalStateException -> "released"
    else -> t.javaClass.simpleName
}

private val masterFailures = List(3) { MasterFailureException("m$it", MasterFailureException.Kind.TIMEOUT, "no answer", null) }

private val lossReasons = listOf(LockLostException.Reason.NOT_HELD, LockLostException.Reason.CLOSED)

/** The operations on one real lease. Lincheck creates one per run. */
@Param(name = "at", gen = IntGen::class, conf = "0:3")
@Param(name = "outcome", gen = IntGen::class, conf = "0:3")
@Param(name = "steps", gen = IntGen::class, conf = "1:2")
@Param(name = "reason", gen = IntGen::class, conf = "0:1")
class LeaseStateScenario {
    private val clock = LeaseStateEngine.clock.apply { reset() }
    private val origin = clock.markNow()
    private val lease = modelLease(LeaseStateEngine.engine, clock, "r", LeaseStateEngine.config)

    /** What the unchecked reads found wrong, if anything; reported after the run. */
    private val violations = java.util.concurrent.CopyOnWriteArrayList<String>()

    @Operation
    fun advance(@Param(name = "steps") steps: Int) = clock.advance(steps * STEP_MS)

    /** Applies the answers of an extend call that started at [at] seconds. */
    @Operation
    fun extended(@Param(name = "at") at: Int, @Param(name = "outcome") outcome: Int): String {
        val (confirmed, notHeld) = outcome(outcome)
        val failures = masterFailures.subList(0, 3 - confirmed - notHeld)
        return describe(lease.extended(origin + (at * STEP_MS).milliseconds, confirmed, notHeld, failures))
    }

    /** The end of validity the lease holds on to (ms from the grant), or -1 once it ended: one read of its state. */
    @Operation
    fun validUntil(): Long = (lease.current as? RedlockLease.State.Held)?.let { (it.validUntil - origin).inWholeMilliseconds } ?: -1L

    /** Applies the answers of a check after an invalidation (nothing renewed), as [RedlockLease.checked] takes them. */
    @Operation
    fun checked(@Param(name = "outcome") outcome: Int) {
        val (confirmed, notHeld) = outcome(outcome)
        lease.checked(confirmed, notHeld, masterFailures.subList(0, 3 - confirmed - notHeld))
    }

    /** Too few masters connected: the lease is put at risk, as the invalidations do. */
    @Operation
    fun atRisk() = lease.atRisk("connections dropped")

    /** The lease's state as one read of it (no deadline check): held, at risk and why, released, lost and why. */
    @Operation
    fun stateNow(): String = when (val c = lease.current) {
        is RedlockLease.State.Held -> when (c.renewalFailure) {
            null -> "held"
            is RedlockLease.ConnectionsAtRisk -> "at risk:connections"
            else -> "at risk:renewal"
        }
        is RedlockLease.State.Released -> "released"
        is RedlockLease.State.Lost -> "lost:${c.loss.reason()}"
    }

    @Operation
    fun markLost(@Param(name = "reason") reason: Int): String = lease.markLost(lossReasons[reason], null)?.let { "lost:${it.reason()}" } ?: "not held"

    @Operation
    fun markReleased(): Boolean = lease.markReleased()

    @Operation
    fun checkDeadlines(): String = lease.checkDeadlines()?.let { "lost:${it.reason()}" } ?: "none"

    @Operation
    fun isValid(): Boolean = lease.isValid

    /**
     * Reads the state flow. Not compared with the rules: the flow follows the lease's state (both
     * are written under the monitor, the state first), so a reader may see `isValid` false while
     * the flow still says HELD. What must hold is checked here: the flow is never ahead of the
     * state (a flow that says LOST or RELEASED is never read while `isValid` could still be true).
     */
    @Operation
    fun state() {
        val seen = lease.state.value
        val now = lease.current
        val ahead = (seen == LeaseState.LOST && now !is RedlockLease.State.Lost) ||
            (seen == LeaseState.RELEASED && now !is RedlockLease.State.Released)
        if (ahead) violations += "the state flow said $seen while the lease was $now"
    }

    /**
     * Reads what validity is left. Not compared with the rules either: it reads the state, then the
     * clock, so it may combine a validity with a later time (an answer on the safe side: less than
     * is left). What must hold: it is never more than the validity there is, given that validity
     * never moves backwards and the clock never goes back.
     */
    @Operation
    fun remaining() {
        val before = clock.now
        val left = lease.remaining.inWholeMilliseconds
        val held = lease.current as? RedlockLease.State.Held ?: return
        val most = maxOf(0L, (held.validUntil - origin).inWholeMilliseconds - before)
        if (left > most) violations += "remaining said $left ms, but at most $most ms were left"
    }

    /** Once the operations are done, the lease's parts agree with its state. */
    @OptIn(ExperimentalCoroutinesApi::class)
    @Validate
    fun partsAgree() {
        check(violations.isEmpty()) { violations.joinToString("; ") }
        val current = lease.current
        // The end made before (by a guard or awaitLost) and the one made on first use now must both agree.
        for (ended in listOfNotNull(endedMadeOf(lease), endedOf(lease))) when (current) {
            is RedlockLease.State.Held -> check(!ended.isCompleted) { "held, but its end completed with ${ended.getCompleted()}" }
            is RedlockLease.State.Lost -> {
                check(ended.isCompleted && ended.getCompleted() === current.loss) { "lost, but its end has not completed with that loss" }
                check(!lease.isValid) { "lost, but valid" }
            }
            is RedlockLease.State.Released -> {
                check(ended.isCompleted && ended.getCompleted() == null) { "released, but its end has not completed with null" }
                check(!lease.isValid) { "released, but valid" }
            }
        }
        val expected = when (current) {
            is RedlockLease.State.Held -> if (current.renewalFailure == null) LeaseState.HELD else LeaseState.AT_RISK
            is RedlockLease.State.Lost -> LeaseState.LOST
            is RedlockLease.State.Released -> LeaseState.RELEASED
        }
        check(lease.state.value == expected) { "the state flow says ${lease.state.value}, the lease is $expected" }
    }
}

/**
 * One engine for every run: building one per run would cost more than the run. The lease only
 * reads it (its clock, config, master count and quorum) and tells it of ends that change nothing
 * here (the lease was never adopted, and metrics are off); the clock is set back to zero per run.
 */
internal object LeaseStateEngine {
    val clock = ManualClock()
    val config = modelConfig(LEASE_MS, MAX_HOLD_MS)
    val engine = modelEngine(config, 3, clock)
}

/** The lease's private end (what awaitLost and the guards wait for), made on first use: read, never changed. */
@Suppress("UNCHECKED_CAST")
internal fun endedOf(lease: RedlockLease): CompletableDeferred<LockLostException?> =
    RedlockLease::class.java.getDeclaredMethod("getEnded").apply { isAccessible = true }.invoke(lease) as CompletableDeferred<LockLostException?>

/** The lease's end if it was made already (else null). */
@Suppress("UNCHECKED_CAST")
internal fun endedMadeOf(lease: RedlockLease): CompletableDeferred<LockLostException?>? =
    RedlockLease::class.java.getDeclaredField("endedOrNull").apply { isAccessible = true }.get(lease) as CompletableDeferred<LockLostException?>?

/**
 * The rules, written down sequentially and independently of the implementation: what each
 * operation returns and does when the operations run one at a time.
 */
class LeaseStateModel {
    private sealed class S {
        /** [risk]: null when held safely, else why at risk ("renewal": a renewal failed; "connections": masters' connections dropped). */
        data class Held(val validUntil: Long, val risk: String?) : S()
        data object Released : S()
        data class Lost(val reason: LockLostException.Reason) : S()
    }

    private var now = 0L
    private var s: S = S.Held(LEASE_MS - DRIFT_MS, null)
    private var releaseSent = false

    fun advance(steps: Int) {
        now += steps * STEP_MS
    }

    /** A held lease past its hold time or its deadline is lost (hold time first). */
    private fun expire(): LockLostException.Reason? {
        val held = s as? S.Held ?: return (s as? S.Lost)?.reason
        val reason = when {
            now >= MAX_HOLD_MS -> LockLostException.Reason.MAX_HOLD
            now >= held.validUntil - LEAD_MS -> LockLostException.Reason.EXPIRED
            else -> return null
        }
        s = S.Lost(reason)
        return reason
    }

    private fun lose(reason: LockLostException.Reason): LockLostException.Reason? = when (val c = s) {
        is S.Held -> reason.also { s = S.Lost(it) }
        is S.Lost -> c.reason
        S.Released -> null
    }

    fun extended(at: Int, outcome: Int): String {
        val (confirmed, notHeld) = outcome(outcome)
        if (3 - notHeld < 2) return lose(LockLostException.Reason.NOT_HELD)?.let { "lost:$it" } ?: "released"
        if (confirmed >= 2) {
            return when (val c = s) {
                S.Released -> "released"
                is S.Lost -> "lost:${c.reason}"
                is S.Held -> expire()?.let { "lost:$it" } ?: run {
                    // Renewed to the full lease from the call's start; never moved backwards.
                    s = S.Held(maxOf(at * STEP_MS + LEASE_MS - DRIFT_MS, c.validUntil), null)
                    "extended"
                }
            }
        }
        // Not extended: at risk for that reason, whatever put it at risk before.
        (s as? S.Held)?.let { s = it.copy(risk = "renewal") }
        return "not extended"
    }

    /**
     * A check: a quorum out of reach loses the lease; a quorum that still holds it ends a risk from
     * dropped connections, not one from a failed renewal (only a renewal ends that); fewer change nothing.
     */
    fun checked(outcome: Int) {
        val (confirmed, notHeld) = outcome(outcome)
        if (3 - notHeld < 2) {
            lose(LockLostException.Reason.NOT_HELD)
            return
        }
        val held = s as? S.Held ?: return
        if (confirmed >= 2 && held.risk == "connections") s = held.copy(risk = null)
    }

    /** Dropped connections put a lease held safely at risk; one at risk from a failed renewal stays so. */
    fun atRisk() {
        val held = s as? S.Held ?: return
        if (held.risk == null) s = held.copy(risk = "connections")
    }

    fun stateNow(): String = when (val c = s) {
        is S.Held -> c.risk?.let { "at risk:$it" } ?: "held"
        S.Released -> "released"
        is S.Lost -> "lost:${c.reason}"
    }

    fun validUntil(): Long = (s as? S.Held)?.validUntil ?: -1L

    fun markLost(reason: Int): String = lose(lossReasons[reason])?.let { "lost:$it" } ?: "not held"

    fun markReleased(): Boolean {
        if (releaseSent) return false
        releaseSent = true
        if (s is S.Held) s = S.Released // a lost lease stays lost
        return true
    }

    fun checkDeadlines(): String = expire()?.let { "lost:$it" } ?: "none"

    fun isValid(): Boolean = s is S.Held && expire() == null

    fun state() {}

    fun remaining() {}

    override fun equals(other: Any?): Boolean =
        other is LeaseStateModel && now == other.now && s == other.s && releaseSent == other.releaseSent

    override fun hashCode(): Int = s.hashCode() * 31 + now.hashCode()
}
