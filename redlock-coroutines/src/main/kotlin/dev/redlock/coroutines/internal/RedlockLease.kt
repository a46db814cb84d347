package dev.redlock.coroutines.internal

import dev.redlock.core.LeaseState
import dev.redlock.core.LockLostException
import dev.redlock.core.LockNotExtendedException
import dev.redlock.core.MasterFailureException
import dev.redlock.core.internal.Checks
import dev.redlock.core.internal.LockMath
import dev.redlock.core.internal.Tokens
import dev.redlock.coroutines.Lease
import kotlin.time.ComparableTimeMark
import kotlin.time.Duration
import kotlin.time.toJavaDuration
import kotlin.time.toKotlinDuration
import kotlinx.coroutines.CancellationException
import kotlinx.coroutines.CompletableDeferred
import kotlinx.coroutines.DisposableHandle
import kotlinx.coroutines.NonCancellable
import kotlinx.coroutines.awaitCancellation
import kotlinx.coroutines.flow.MutableStateFlow
import kotlinx.coroutines.flow.StateFlow
import kotlinx.coroutines.withContext

/**
 * The one implementation of [Lease]: a small state machine, [State], changed under the lease's
 * monitor. Extend and release need no further exclusion, since each master runs a lease's
 * commands in the order they were sent (an extend that arrives after the release finds the keys
 * gone, and is ignored once released).
 *
 * Validity: `validUntil` is measured on the engine's clock from the start of the attempt (or the
 * extend) that set it. The lease is declared lost [Timing.expiryLead] before it, at the latest,
 * when no renewal moved it: by the engine's timer, or by whoever reads [isValid] first.
 */
internal class RedlockLease(
    private val engine: Engine,
    override val resources: List<String>,
    /** The lease's base keys (its resources' lock keys). */
    val keys: Array<String>,
    val token: String,
    val timing: Timing,
    /** The start of the attempt that won the lease: hold times and validity are counted from it. */
    grantedAt: ComparableTimeMark,
    override val fencingToken: Long?,
    val kind: LockKind,
    /** How many masters must confirm a renewal: the quorum the lease was granted with. */
    val quorum: Int,
) : Lease {
    /** Where the lease stands; every change goes through [move]. */
    sealed class State(
        /** The end of validity: the current one while held, the last one once ended. */
        val validUntil: ComparableTimeMark,
    ) {
        /** Held; [renewalFailure] is why the last renewal failed (AT_RISK), null after a good one. */
        class Held(validUntil: ComparableTimeMark, val renewalFailure: Throwable?) : State(validUntil)

        /** Released by its holder (once). */
        class Released(validUntil: ComparableTimeMark) : State(validUntil)

        /** Lost, for [loss], declared [at]; its keys are still released once. */
        class Lost(validUntil: ComparableTimeMark, val loss: LockLostException, val at: ComparableTimeMark) : State(validUntil)
    }

    @Volatile
    var current: State = State.Held(grantedAt + timing.lease - timing.drift, null)
        private set

    /** The keys the extend script renews for this lease. */
    val extendKeys: Array<String> = kind.extendKeys(keys)

    /** The keys whose changes the masters push to this process while it holds the lease. */
    val trackedKeys: Array<String> get() = kind.trackedKeys(keys)

    /**
     * [CHECKING]: a check of this lease on the masters (after an invalidation) is under way;
     * [CHECK_AGAIN]: a change of its keys was heard that no check under way has read yet, so one
     * more check is due. One field for both, not two atomic objects: a held lease stays small.
     */
    @Volatile
    @JvmField
    internal var checkFlags = 0 // not private: the field updater (outside this class) must reach it

    /** A change of the lease's keys was heard: one more check is due. */
    fun checkDue() {
        while (true) {
            val f = checkFlags
            if (FLAGS.compareAndSet(this, f, f or CHECK_AGAIN)) return
        }
    }

    /** Takes the due check, if any (clears [CHECK_AGAIN]); whether one was due. */
    fun takeCheckDue(): Boolean {
        while (true) {
            val f = checkFlags
            if (f and CHECK_AGAIN == 0) return false
            if (FLAGS.compareAndSet(this, f, f and CHECK_AGAIN.inv())) return true
        }
    }

    /** Whether a check is due (without taking it). */
    val checkIsDue: Boolean get() = checkFlags and CHECK_AGAIN != 0

    /** Becomes the one check under way; false if one already is. */
    fun startChecking(): Boolean {
        while (true) {
            val f = checkFlags
            if (f and CHECKING != 0) return false
            if (FLAGS.compareAndSet(this, f, f or CHECKING)) return true
        }
    }

    /** The check under way ended. */
    fun stopChecking() {
        while (true) {
            val f = checkFlags
            if (FLAGS.compareAndSet(this, f, f and CHECKING.inv())) return
        }
    }

    /**
     * The timer entry of [guard] (with a loss handler) told of a loss directly, without a handler
     * node on [ended]; null when none is, or when a second guard uses [ended] instead.
     */
    @Volatile
    private var lossWatch: LeaseTimer.Entry? = null

    private val grantedAt: ComparableTimeMark = grantedAt

    /** The end of the maximum hold time, when one is configured. */
    private val holdUntil: ComparableTimeMark? = engine.config.maxHoldTime().orElse(null)?.let { grantedAt + it.toKotlinDuration() }

    /** Completes with the loss, or with null once released: what [awaitLost] and the guards wait for. */
    private val ended: CompletableDeferred<LockLostException?>
        get() = endedOrNull ?: synchronized(this) {
            endedOrNull ?: CompletableDeferred<LockLostException?>().also { d ->
                // Made after the end: complete it here (the end completed only what existed then).
                when (val s = current) {
                    is State.Lost -> d.complete(s.loss)
                    is State.Released -> d.complete(null)
                    is State.Held -> Unit
                }
                endedOrNull = d
            }
        }

    /**
     * Made on first use (most leases are only guarded with a loss handler, told directly): a held
     * lease stays small. Completed by the end (released, or lost) if it exists by then.
     */
    @Volatile
    private var endedOrNull: CompletableDeferred<LockLostException?>? = null

    /** Whether [release] ran (once); guarded by the monitor. */
    private var releaseSent = false

    /** Created on first use of [state]'s flow; most leases are never observed this way. */
    @Volatile
    private var flow: MutableStateFlow<LeaseState>? = null

    /**
     * Held and within its deadlines. The state is read again after the deadline check: a check that
     * finds the lease released meanwhile answers null (no loss), and must not make a lease past its
     * deadline look valid.
     */
    override val isValid: Boolean
        get() = checkDeadlines() == null && current is State.Held

    override val remaining: Duration
        get() = (current as? State.Held)?.let { (-it.validUntil.elapsedNow()).coerceAtLeast(Duration.ZERO) } ?: Duration.ZERO

    override val state: StateFlow<LeaseState>
        get() = flow ?: synchronized(this) { flow ?: MutableStateFlow(publicState(current)).also { flow = it } }

    /** The loss, once the lease is lost. */
    val loss: LockLostException? get() = (current as? State.Lost)?.loss

    /** Why the last renewal failed, while the lease is held and at risk. */
    val renewalFailure: Throwable? get() = (current as? State.Held)?.renewalFailure

    val isHeld: Boolean get() = current is State.Held

    /** When the last successful acquisition or extension started: renewals are scheduled from it. */
    val renewedAt: ComparableTimeMark get() = current.validUntil - timing.lease + timing.drift

    /** The moment the lease is declared lost unless renewed: its validity less the lead, or the end of the maximum hold. */
    val deadline: ComparableTimeMark
        get() = (current.validUntil - timing.expiryLead).let { holdUntil?.let { h -> minOf(h, it) } ?: it }

    private fun publicState(s: State): LeaseState = when (s) {
        is State.Held -> if (s.renewalFailure == null) LeaseState.HELD else LeaseState.AT_RISK
        is State.Lost -> LeaseState.LOST
        is State.Released -> LeaseState.RELEASED
    }

    /** Changes the state; call under the monitor. */
    private fun move(to: State) {
        current = to
        flow?.value = publicState(to)
    }

    /**
     * Declares the lease lost if its maximum hold time or its validity (less the lead) has run out;
     * returns the loss (also an earlier one), or null while it is held or once released.
     */
    fun checkDeadlines(): LockLostException? {
        when (val s = current) {
            is State.Lost -> return s.loss
            is State.Released -> return null
            is State.Held -> if (expiry(s) == null) return null
        }
        // Past a deadline as read a moment ago; a renewal may have moved the validity since (the
        // clock was read after the state). Decided again under the monitor, where none can.
        return lose { held -> expiry(held)?.let { it to if (it == LockLostException.Reason.EXPIRED) held.renewalFailure else null } }
    }

    /** Which deadline of the held state [s] has passed, if any: the maximum hold first, then the validity (less the lead). */
    private fun expiry(s: State.Held): LockLostException.Reason? = when {
        holdUntil != null && holdUntil.hasPassedNow() -> LockLostException.Reason.MAX_HOLD
        (s.validUntil - timing.expiryLead).hasPassedNow() -> LockLostException.Reason.EXPIRED
        else -> null
    }

    override suspend fun extend() {
        when (val s = current) {
            is State.Released -> throw released()
            is State.Lost -> throw s.loss
            is State.Held -> Unit
        }
        checkDeadlines()?.let { throw it }
        engine.timer.extendAll(listOf(this))[0]?.let { throw it }
    }

    private fun released() = IllegalStateException("the lease on $resources was released; acquire it again")

    /**
     * Applies the outcome of an extend call that started at [start]: [confirmed] masters extended
     * the lease, [notHeld] no longer hold it, [failures] did not answer. Returns null when the
     * lease was extended, else why not (never throws).
     */
    fun extended(start: ComparableTimeMark, confirmed: Int, notHeld: Int, failures: List<MasterFailureException>): Throwable? =
        applyExtended(start, confirmed, notHeld, failures).also { engine.observer.renewal(this, it, remaining) }

    private fun applyExtended(start: ComparableTimeMark, confirmed: Int, notHeld: Int, failures: List<MasterFailureException>): Throwable? {
        val n = engine.masters.size
        if (LockMath.quorumImpossible(n, quorum, notHeld)) {
            return markLost(LockLostException.Reason.NOT_HELD, failures.firstOrNull()) ?: released()
        }
        if (confirmed >= quorum) {
            synchronized(this) {
                when (val s = current) {
                    is State.Released -> return released()
                    is State.Lost -> return s.loss
                    is State.Held -> {
                        // The quorum may have come back too late: the lease ran out meanwhile.
                        checkDeadlines()?.let { return it }
                        val until = start + timing.lease - timing.drift
                        move(State.Held(maxOf(until, s.validUntil), null))
                        return null
                    }
                }
            }
        }
        val failure = LockNotExtendedException(
            "Could not extend the ${kind.what} lease on $resources: $confirmed of $n masters confirmed, quorum $quorum" +
                (if (notHeld > 0) ", $notHeld no longer hold it" else "") +
                (if (failures.isNotEmpty()) ", ${failures.size} failed: " + failures.joinToString("; ") { it.message ?: it.master() } else "") +
                "; the lease stays valid for ${Checks.show(remaining.toJavaDuration())}",
            resources,
            failures,
        )
        synchronized(this) {
            (current as? State.Held)?.let { move(State.Held(it.validUntil, failure)) }
        }
        return failure
    }

    /**
     * Applies the outcome of a check (nothing renewed): gone from so many masters that a quorum is
     * out of reach, the lease is lost; held on a quorum, a lease put at risk by a dropped connection
     * is held again (one at risk from failed renewals stays so until a renewal gets through).
     */
    fun checked(confirmed: Int, notHeld: Int, failures: List<MasterFailureException>) {
        if (LockMath.quorumImpossible(engine.masters.size, quorum, notHeld)) {
            markLost(LockLostException.Reason.NOT_HELD, failures.firstOrNull())
            return
        }
        if (confirmed < quorum) return
        synchronized(this) {
            val s = current as? State.Held ?: return
            if (s.renewalFailure is ConnectionsAtRisk) move(State.Held(s.validUntil, null))
        }
    }

    /** Too few masters are connected to make a sure quorum: AT_RISK until a check or renewal gets through. */
    fun atRisk(reason: String) {
        synchronized(this) {
            val s = current as? State.Held ?: return
            if (s.renewalFailure == null) move(State.Held(s.validUntil, ConnectionsAtRisk(reason)))
        }
    }

    /** Why a lease is at risk when its masters' connections dropped (not a failed renewal). */
    class ConnectionsAtRisk(reason: String) : RuntimeException(reason, null, false, false)

    override suspend fun release() {
        if (!markReleased()) return
        // A lost lease may still hold keys on a minority of masters: delete them too, so they do
        // not keep refusing the next holder until they expire. Not cancellable, without a context
        // switch: release runs at the end of every critical section.
        engine.releaseEverywhere(this)
    }

    /**
     * Marks the lease released (a lost one stays lost) and ends its life in this process; returns
     * whether the caller is the one that must now send the release (once per lease).
     */
    fun markReleased(): Boolean {
        val wasHeld: Boolean
        synchronized(this) {
            if (releaseSent) return false
            releaseSent = true
            val s = current
            wasHeld = s is State.Held
            if (s is State.Held) move(State.Released(s.validUntil))
        }
        engine.forget(this)
        if (wasHeld) {
            engine.observer.leaseEnded(this, grantedAt.elapsedNow(), lost = false)
            endedOrNull?.complete(null)
        }
        return true
    }

    override suspend fun awaitLost(): LockLostException {
        while (true) {
            when (val s = current) {
                is State.Lost -> return s.loss
                is State.Released -> awaitCancellation()
                is State.Held -> Unit
            }
            // Bounded by the deadline, so that a lease off the timer (from acquire) is still
            // declared lost on time while someone waits for it.
            val left = -deadline.elapsedNow()
            if (left <= Duration.ZERO) {
                checkDeadlines()
                continue
            }
            kotlinx.coroutines.withTimeoutOrNull(left) { ended.await() }?.let { return it }
        }
    }

    /**
     * Guards the lease until it is released or lost: on the engine's timer, renewed if [renew],
     * declared lost when its validity runs out. Returns the loss, or null once released.
     * Cancellable; cancelling it takes the lease off the timer and leaves it as it is.
     */
    suspend fun guard(renew: Boolean): LockLostException? {
        val entry = engine.timer.register(this, renew, null)
        try {
            return ended.await()
        } finally {
            engine.timer.unregister(entry)
        }
    }

    /**
     * Guards the lease, like [guard], without a coroutine of its own: [onLoss] is called (once, on
     * the thread that finds the loss) if the lease is lost before the returned handle is disposed.
     * Disposing takes the lease off the timer.
     */
    fun guard(renew: Boolean, onLoss: (LockLostException) -> Unit): DisposableHandle {
        val entry = engine.timer.register(this, renew, onLoss)
        val first = synchronized(this) { (lossWatch == null).also { if (it) lossWatch = entry } }
        if (!first) {
            entry.watch = ended.invokeOnCompletion(entry)
            return entry
        }
        // Lost before the watch was in place: [lose] may not have seen it (a second call is ignored).
        if (current is State.Lost) entry.invoke(null)
        return entry
    }

    /** Ends the direct watch of [entry] (its guard was disposed). */
    fun unwatch(entry: LeaseTimer.Entry) {
        synchronized(this) { if (lossWatch === entry) lossWatch = null }
    }

    /**
     * Calls [handler] (once, on the thread that finds the loss) if the lease is lost before the
     * returned handle is disposed; a lease released first never calls it. No coroutine of its own.
     */
    fun invokeOnLoss(handler: (LockLostException) -> Unit): DisposableHandle =
        ended.invokeOnCompletion { loss?.let(handler) }

    /**
     * Marks the lease lost (once) and returns the loss; null if it was released first. Keys found
     * gone ([LockLostException.Reason.NOT_HELD]) after the lease's validity or maximum hold had
     * already run out are reported for that first cause: a lease nobody renewed expires on the
     * masters after its validity ended here, and whether a check (started by the pushes of that
     * expiry) or a read of the lease notices first must not change the reason.
     */
    fun markLost(reason: LockLostException.Reason, cause: Throwable?): LockLostException? = lose { held ->
        val earlier = if (reason == LockLostException.Reason.NOT_HELD) expiry(held) else null
        if (earlier == null) reason to cause
        else earlier to if (earlier == LockLostException.Reason.EXPIRED) held.renewalFailure ?: cause else null
    }

    /**
     * Marks the lease lost (once) for the reason and cause [why] finds in its held state, decided
     * under the monitor; returns the loss (also an earlier one), or null if it was released first
     * or [why] finds none.
     */
    private inline fun lose(why: (State.Held) -> Pair<LockLostException.Reason, Throwable?>?): LockLostException? {
        val found: LockLostException
        synchronized(this) {
            val s = current as? State.Held ?: return loss
            val (reason, cause) = why(s) ?: return null
            val what = when (reason) {
                LockLostException.Reason.NOT_HELD ->
                    engine.backend?.let { "the lock backend ${it.name()} no longer holds it" } ?: "a quorum of masters no longer holds it"
                LockLostException.Reason.EXPIRED ->
                    if (engine.backend != null) "its validity ran out before a renewal got through"
                    else "its validity ran out before a renewal reached a quorum"
                LockLostException.Reason.MAX_HOLD ->
                    "it reached the maximum hold time (maxHoldTime ${Checks.show(engine.config.maxHoldTime().get())}); renewal stopped"
                LockLostException.Reason.CLOSED ->
                    if (engine.backend != null) "the locks were closed while it was held; the lease was released"
                    else "the Redlock was closed while it was held; the lease was released"
            }
            found = LockLostException("Lost the lock on $resources: $what", resources, reason, cause)
            move(State.Lost(s.validUntil, found, engine.timeSource.markNow()))
        }
        // Outside the monitor: completing runs the guards' handlers, which cancel the blocks. First:
        // telling the outside world (logs, metrics) comes after the block is told.
        endedOrNull?.complete(found)
        lossWatch?.invoke(null)
        engine.forget(this)
        engine.observer.loss(this, found, grantedAt.elapsedNow())
        return found
    }

    override fun toString(): String =
        "Lease(resources=$resources, token=${Tokens.redact(token)}, state=${publicState(current)}, remaining=$remaining)"
}

private const val CHECKING = 1
private const val CHECK_AGAIN = 2
private val FLAGS = java.util.concurrent.atomic.AtomicIntegerFieldUpdater.newUpdater(RedlockLease::class.java, "checkFlags")

/** Cancels a critical section whose lease was lost; carries the loss to the section's boundary. */
internal class LeaseLostCancellation(val loss: LockLostException) : CancellationException(loss.message) {
    init {
        initCause(loss)
    }
}
