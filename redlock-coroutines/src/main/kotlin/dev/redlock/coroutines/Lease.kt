package dev.redlock.coroutines

import dev.redlock.core.LeaseState
import dev.redlock.core.LockLostException
import dev.redlock.core.LockNotExtendedException
import dev.redlock.core.MasterFailureException
import dev.redlock.core.internal.Checks
import dev.redlock.core.internal.LockMath
import dev.redlock.core.internal.Tokens
import kotlin.time.ComparableTimeMark
import kotlin.time.Duration
import kotlin.time.toJavaDuration
import kotlin.time.toKotlinDuration
import kotlinx.coroutines.flow.MutableStateFlow
import kotlinx.coroutines.flow.StateFlow
import kotlinx.coroutines.NonCancellable
import kotlinx.coroutines.withContext
import kotlinx.coroutines.CancellationException
import kotlinx.coroutines.CompletableDeferred
import kotlinx.coroutines.DisposableHandle
import kotlinx.coroutines.awaitCancellation
import kotlinx.coroutines.withTimeoutOrNull

/**
 * A lock held on one or several resources, valid until its validity runs out unless extended.
 *
 * Inside [withRedlock] the lease is renewed automatically and released when the block ends; a
 * lease from [acquire] is neither: call [extend] before [remaining] runs out, and [release] it.
 * All members are thread-safe.
 */
public interface Lease {
    /** The resources this lease holds, in the order they were asked for. */
    public val resources: List<String>

    /**
     * The fencing token of this lease, or null when it was acquired without fencing (see
     * `RedlockConfig.Builder.fencing` and the `fencing` parameter of [withRedlock]). Tokens grow
     * with every holder of a resource, across all masters: if two holders held a resource one
     * after the other, the later one's token is larger. Pass it with every write to the protected
     * resource, which keeps the largest token it has seen and refuses writes with a smaller one.
     */
    public val fencingToken: Long?

    /**
     * Whether the lease is still held: not released, not lost, and its validity not run out, as
     * measured on the [Redlock]'s time source. A `true` is a statement about now only. Reading it
     * after the validity ran out declares the lease lost (as [awaitLost] would a moment later).
     */
    public val isValid: Boolean

    /** How much validity is left; zero once released, lost or expired. */
    public val remaining: Duration

    /**
     * Where the lease stands: [LeaseState.HELD], [LeaseState.AT_RISK] while renewals fail but
     * validity remains (back to `HELD` when one succeeds), then [LeaseState.LOST] or
     * [LeaseState.RELEASED] for good. Collect it to react before a loss, for example to stop
     * taking new work while at risk:
     *
     * ```
     * redlock.withRedlock("jobs") { lease ->
     *     for (job in jobs) {
     *         if (lease.state.value != LeaseState.HELD) break
     *         withTimeout(lease.remaining) { run(job) }  // I/O bounded by the validity left
     *     }
     * }
     * ```
     */
    public val state: StateFlow<LeaseState>

    /**
     * Extends the lease to the full lease time, counted from the start of this call, on every
     * master that still holds it; succeeds when a quorum confirms within the current validity.
     *
     * It never re-creates a key that is gone, and never extends a lease whose validity has run
     * out. This suspending function is cancellable: cancelling it leaves the lease as it was
     * (the masters that already answered keep the longer expiry, which is harmless).
     *
     * @throws LockLostException if the lease is lost (already, or found lost by this call)
     * @throws LockNotExtendedException if too few masters answered; the lease stays valid until
     *   its current validity ends, and a later call may succeed
     * @throws IllegalStateException if the lease was released
     */
    public suspend fun extend()

    /**
     * Releases the lease: compare-and-delete on every master, then a release notice for waiters.
     * Releasing a lease that is already released or lost does nothing. Masters that fail to
     * answer keep the keys until they expire (within the lease time); this is logged, not thrown.
     *
     * Runs to completion even when the caller is cancelled, bounded by the per-master timeout.
     */
    public suspend fun release()

    /**
     * Suspends until the lease is lost, then returns why: a quorum of masters no longer holds it,
     * or its validity ran out without a renewal. Never returns for a lease that is released
     * first (it then suspends until cancelled). This suspending function is cancellable.
     */
    public suspend fun awaitLost(): LockLostException
}

/**
 * The one implementation of [Lease]. Its state changes under its own monitor; extend and release
 * need no further exclusion, since each master runs a lease's commands in the order they were sent
 * (an extend that arrives after the release finds the keys gone, and is ignored once released).
 */
internal class RedlockLease(
    private val redlock: Redlock,
    override val resources: List<String>,
    internal val keys: Array<String>,
    internal val token: String,
    internal val timing: Redlock.Timing,
    validUntil: ComparableTimeMark,
    override val fencingToken: Long? = null,
    internal val kind: LockKind = LockKind.Mutex,
    /** How many masters must confirm a renewal: the quorum the lease was granted with. */
    internal val quorum: Int = redlock.quorum,
) : Lease {
    /** The keys the extend script renews for this lease. */
    internal val extendKeys: Array<String> = kind.extendKeys(keys)

    /** When the attempt that won the lease started: hold times are measured from here. */
    private val grantedAt: ComparableTimeMark = validUntil - (timing.lease - timing.drift)

    private enum class Phase { HELD, RELEASED, LOST }

    @Volatile
    private var phase = Phase.HELD

    /** Completes with the loss, or with null when the lease is released first. */
    private val ended = CompletableDeferred<LockLostException?>()

    /** Whether [release] ran (once); guarded by the monitor. */
    private var releaseSent = false

    /** The loss, set (under the monitor) before [ended] completes with it. */
    @Volatile
    private var loss: LockLostException? = null

    @Volatile
    private var validUntil: ComparableTimeMark = validUntil

    /** The end of the maximum hold time, when one is configured. */
    private val holdUntil: ComparableTimeMark? =
        redlock.config.maxHoldTime().orElse(null)?.let { validUntil - timing.lease + timing.drift + it.toKotlinDuration() }

    /** Created on first use of [state]; most leases are never observed this way. */
    @Volatile
    private var flow: MutableStateFlow<LeaseState>? = null

    /** Why the last renewal failed, until one succeeds. */
    @Volatile
    internal var lastRenewalFailure: Throwable? = null
        private set


    override val isValid: Boolean
        get() {
            if (phase != Phase.HELD) return false
            // Whoever first sees the validity gone declares the loss, so that nobody can observe
            // an invalid lease that has not yet been reported lost (and its block cancelled).
            return checkDeadlines() == null
        }

    override val state: StateFlow<LeaseState>
        get() = flow ?: synchronized(this) { flow ?: MutableStateFlow(publicState()).also { flow = it } }

    /** The public state; call under the monitor for a consistent answer. */
    private fun publicState(): LeaseState = when (phase) {
        Phase.HELD -> if (lastRenewalFailure == null) LeaseState.HELD else LeaseState.AT_RISK
        Phase.LOST -> LeaseState.LOST
        Phase.RELEASED -> LeaseState.RELEASED
    }

    /** Publishes a change of state to the flow, if anyone asked for it. Call under the monitor. */
    private fun publish() {
        flow?.value = publicState()
    }

    /**
     * Declares the lease lost if its maximum hold time or its validity has run out; returns the
     * loss (also an earlier one), or null while it is held.
     */
    internal fun checkDeadlines(): LockLostException? {
        if (phase == Phase.LOST) return loss
        if (phase == Phase.RELEASED) return null
        if (holdUntil != null && holdUntil.hasPassedNow()) return markLost(LockLostException.Reason.MAX_HOLD, null)
        if (validUntil.hasPassedNow()) return markLost(LockLostException.Reason.EXPIRED, lastRenewalFailure)
        return null
    }

    /** The next moment a deadline passes: the end of validity, or of the maximum hold if earlier. */
    internal val nextDeadline: ComparableTimeMark
        get() = holdUntil?.let { minOf(it, validUntil) } ?: validUntil

    override val remaining: Duration
        get() = if (phase == Phase.HELD) (-validUntil.elapsedNow()).coerceAtLeast(Duration.ZERO) else Duration.ZERO

    internal val isHeldState: Boolean get() = phase == Phase.HELD
    internal val validUntilMark: ComparableTimeMark get() = validUntil
    /** When the last successful acquisition or extension started: renewals are scheduled from it. */
    internal val renewedAtMark: ComparableTimeMark get() = validUntil - timing.lease + timing.drift

    /** The loss, once the lease is lost. */
    internal val lostException: LockLostException? get() = loss

    /** When the loss was declared, on the Redlock's time source; null while not lost. */
    @Volatile
    internal var lossDeclaredAt: ComparableTimeMark? = null
        private set

    override suspend fun extend() {
        when (phase) {
            Phase.RELEASED -> throw released()
            Phase.LOST -> throw lostException!!
            Phase.HELD -> Unit
        }
        checkDeadlines()?.let { throw it }
        redlock.renewals.extendAll(listOf(this))[0]?.let { throw it }
    }

    private fun released() = IllegalStateException("the lease on $resources was released; acquire it again")

    /**
     * Applies the outcome of an extend call that started at [start]: [confirmed] masters extended
     * the lease, [notHeld] no longer hold it, [failures] did not answer. Returns null when the
     * lease was extended, else why not (never throws).
     */
    internal fun extended(start: ComparableTimeMark, confirmed: Int, notHeld: Int, failures: List<MasterFailureException>): Throwable? =
        applyExtended(start, confirmed, notHeld, failures).also { redlock.observer.renewal(this, it, remaining) }

    private fun applyExtended(start: ComparableTimeMark, confirmed: Int, notHeld: Int, failures: List<MasterFailureException>): Throwable? {
        val n = redlock.nodes.size
        if (LockMath.quorumImpossible(n, quorum, notHeld)) {
            return markLost(LockLostException.Reason.NOT_HELD, failures.firstOrNull()) ?: released()
        }
        if (confirmed >= quorum) {
            synchronized(this) {
                when (phase) {
                    Phase.RELEASED -> return released()
                    Phase.LOST -> return lostException
                    Phase.HELD -> Unit
                }
                // The quorum may have come back too late: the lease had run out in between.
                checkDeadlines()?.let { return it }
                val until = start + timing.lease - timing.drift
                if (until > validUntil) validUntil = until
                lastRenewalFailure = null
                publish()
                return null
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
            if (phase == Phase.HELD) {
                lastRenewalFailure = failure
                publish()
            }
        }
        return failure
    }

    override suspend fun release() {
        val before = synchronized(this) {
            if (releaseSent) return
            releaseSent = true
            // A lost lease stays LOST (final); it is still released below.
            phase.also {
                if (it == Phase.HELD) {
                    phase = Phase.RELEASED
                    publish()
                }
            }
        }
        if (before == Phase.HELD) {
            redlock.observer.leaseEnded(this, grantedAt.elapsedNow(), lost = false)
            ended.complete(null)
        }
        // A lost lease may still hold keys on a minority of masters: delete them too, so they do
        // not keep refusing the next holder until they expire.
        withContext(NonCancellable) { redlock.releaseEverywhere(this@RedlockLease) }
    }

    override suspend fun awaitLost(): LockLostException {
        while (true) {
            if (ended.isCompleted) return ended.getCompleted() ?: awaitCancellation()
            if (phase == Phase.RELEASED) awaitCancellation()
            val left = -nextDeadline.elapsedNow()
            if (left <= Duration.ZERO) {
                checkDeadlines()
                continue
            }
            withTimeoutOrNull(left) { ended.await() }?.let { return it }
        }
    }

    /**
     * Guards the lease until it is released or lost: on the [Redlock]'s renewal timer, renewed if
     * [renew], declared lost when its validity runs out. Returns the loss, or null once released.
     * Cancellable; cancelling it takes the lease off the timer and leaves it as it is.
     */
    internal suspend fun guard(renew: Boolean): LockLostException? {
        val entry = redlock.renewals.register(this, renew)
        try {
            return ended.await()
        } finally {
            redlock.renewals.unregister(entry)
        }
    }

    /**
     * Guards the lease, like [guard], without a coroutine of its own: [onLoss] is called (once, on
     * the thread that finds the loss) if the lease is lost before the returned handle is disposed.
     * Disposing takes the lease off the timer.
     */
    internal fun guard(renew: Boolean, onLoss: (LockLostException) -> Unit): DisposableHandle {
        val guard = redlock.renewals.register(Renewals.Guard(this, renew, onLoss))
        guard.watch = ended.invokeOnCompletion(guard)
        return guard
    }

    /**
     * Marks the lease lost (once) and returns the loss; null if it was released first.
     */
    internal fun markLost(reason: LockLostException.Reason, cause: Throwable?): LockLostException? {
        val found: LockLostException
        synchronized(this) {
            when (phase) {
                Phase.RELEASED -> return lostException
                Phase.LOST -> return lostException
                Phase.HELD -> Unit
            }
            val what = when (reason) {
                LockLostException.Reason.NOT_HELD -> "a quorum of masters no longer holds it"
                LockLostException.Reason.EXPIRED -> "its validity ran out before a renewal reached a quorum"
                LockLostException.Reason.MAX_HOLD ->
                    "it reached the maximum hold time (maxHoldTime ${Checks.show(redlock.config.maxHoldTime().get())}); renewal stopped"
                LockLostException.Reason.CLOSED -> "the Redlock was closed while it was held; the lease was released"
            }
            val lost = LockLostException("Lost the lock on $resources: $what", resources, reason, cause)
            lossDeclaredAt = redlock.timeSource.markNow()
            phase = Phase.LOST
            loss = lost
            found = lost
            publish()
        }
        redlock.observer.loss(this, found)
        redlock.observer.leaseEnded(this, grantedAt.elapsedNow(), lost = true)
        // Outside the monitor: completing runs the guards' handlers, which cancel the blocks.
        ended.complete(found)
        return found
    }

    override fun toString(): String =
        "Lease(resources=$resources, token=${Tokens.redact(token)}, state=$phase, remaining=$remaining)"
}

/** Cancels a critical section whose lease was lost; carries the loss to the [withRedlock] boundary. */
internal class LeaseLostCancellation(val loss: LockLostException) : CancellationException(loss.message) {
    init {
        initCause(loss)
    }
}
