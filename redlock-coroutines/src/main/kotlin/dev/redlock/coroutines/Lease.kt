package dev.redlock.coroutines

import dev.redlock.core.LockLostException
import dev.redlock.core.LockNotExtendedException
import dev.redlock.core.MasterFailureException
import dev.redlock.core.internal.Checks
import dev.redlock.core.internal.LockMath
import dev.redlock.core.internal.Tokens
import kotlin.time.ComparableTimeMark
import kotlin.time.Duration
import kotlin.time.toJavaDuration
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

    /** The fencing token of this lease, or null when fencing is not enabled (it is not yet available). */
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
) : Lease {
    private enum class State { HELD, RELEASED, LOST }

    @Volatile
    private var state = State.HELD

    /** Completes with the loss, or with null when the lease is released first. */
    private val ended = CompletableDeferred<LockLostException?>()

    /** The loss, set (under the monitor) before [ended] completes with it. */
    @Volatile
    private var loss: LockLostException? = null

    @Volatile
    private var validUntil: ComparableTimeMark = validUntil

    /** Why the last renewal failed, until one succeeds. */
    @Volatile
    internal var lastRenewalFailure: Throwable? = null
        private set


    override val fencingToken: Long? get() = null

    override val isValid: Boolean
        get() {
            if (state != State.HELD) return false
            if (validUntil.hasNotPassedNow()) return true
            // Whoever first sees the validity gone declares the loss, so that nobody can observe
            // an invalid lease that has not yet been reported lost (and its block cancelled).
            markLost(LockLostException.Reason.EXPIRED, lastRenewalFailure)
            return false
        }

    override val remaining: Duration
        get() = if (state == State.HELD) (-validUntil.elapsedNow()).coerceAtLeast(Duration.ZERO) else Duration.ZERO

    internal val isHeldState: Boolean get() = state == State.HELD
    internal val validUntilMark: ComparableTimeMark get() = validUntil
    /** When the last successful acquisition or extension started: renewals are scheduled from it. */
    internal val renewedAtMark: ComparableTimeMark get() = validUntil - timing.lease + timing.drift

    /** The loss, once the lease is lost. */
    internal val lostException: LockLostException? get() = loss

    override suspend fun extend() {
        when (state) {
            State.RELEASED -> throw released()
            State.LOST -> throw lostException!!
            State.HELD -> Unit
        }
        if (validUntil.hasPassedNow()) throw markLost(LockLostException.Reason.EXPIRED, lastRenewalFailure) ?: released()
        redlock.renewals.extendAll(listOf(this))[0]?.let { throw it }
    }

    private fun released() = IllegalStateException("the lease on $resources was released; acquire it again")

    /**
     * Applies the outcome of an extend call that started at [start]: [confirmed] masters extended
     * the lease, [notHeld] no longer hold it, [failures] did not answer. Returns null when the
     * lease was extended, else why not (never throws).
     */
    internal fun extended(start: ComparableTimeMark, confirmed: Int, notHeld: Int, failures: List<MasterFailureException>): Throwable? {
        val n = redlock.nodes.size
        val quorum = redlock.quorum
        if (LockMath.quorumImpossible(n, quorum, notHeld)) {
            return markLost(LockLostException.Reason.NOT_HELD, failures.firstOrNull()) ?: released()
        }
        if (confirmed >= quorum) {
            synchronized(this) {
                when (state) {
                    State.RELEASED -> return released()
                    State.LOST -> return lostException
                    State.HELD -> Unit
                }
                // The quorum may have come back too late: the lease had run out in between.
                if (validUntil.hasPassedNow()) return markLost(LockLostException.Reason.EXPIRED, failures.firstOrNull())
                val until = start + timing.lease - timing.drift
                if (until > validUntil) validUntil = until
                lastRenewalFailure = null
                return null
            }
        }
        val failure = LockNotExtendedException(
            "Could not extend the lease on $resources: $confirmed of $n masters confirmed, quorum $quorum" +
                (if (notHeld > 0) ", $notHeld no longer hold it" else "") +
                (if (failures.isNotEmpty()) ", ${failures.size} failed: " + failures.joinToString("; ") { it.message ?: it.master() } else "") +
                "; the lease stays valid for ${Checks.show(remaining.toJavaDuration())}",
            resources,
            failures,
        )
        lastRenewalFailure = failure
        return failure
    }

    override suspend fun release() {
        val before = synchronized(this) { state.also { state = State.RELEASED } }
        if (before == State.RELEASED) return
        if (before == State.HELD) ended.complete(null)
        // A lost lease may still hold keys on a minority of masters: delete them too, so they do
        // not keep refusing the next holder until they expire.
        withContext(NonCancellable) { redlock.releaseEverywhere(this@RedlockLease) }
    }

    override suspend fun awaitLost(): LockLostException {
        while (true) {
            if (ended.isCompleted) return ended.getCompleted() ?: awaitCancellation()
            if (state == State.RELEASED) awaitCancellation()
            val left = -validUntil.elapsedNow()
            if (left <= Duration.ZERO) {
                markLost(LockLostException.Reason.EXPIRED, lastRenewalFailure)
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
        val entry = redlock.renewals.register(this, renew)
        val watch = ended.invokeOnCompletion { loss?.let(onLoss) }
        return DisposableHandle {
            watch.dispose()
            redlock.renewals.unregister(entry)
        }
    }

    /**
     * Marks the lease lost (once) and returns the loss; null if it was released first.
     */
    internal fun markLost(reason: LockLostException.Reason, cause: Throwable?): LockLostException? {
        val found: LockLostException
        synchronized(this) {
            when (state) {
                State.RELEASED -> return lostException
                State.LOST -> return lostException
                State.HELD -> Unit
            }
            val what = when (reason) {
                LockLostException.Reason.NOT_HELD -> "a quorum of masters no longer holds it"
                LockLostException.Reason.EXPIRED -> "its validity ran out before a renewal reached a quorum"
            }
            val lost = LockLostException("Lost the lock on $resources: $what", resources, reason, cause)
            state = State.LOST
            loss = lost
            found = lost
        }
        Redlock.LOG.log(System.Logger.Level.WARNING, "Redlock lost the lock on {0}: {1}", resources, found.message)
        // Outside the monitor: completing runs the guards' handlers, which cancel the blocks.
        ended.complete(found)
        return found
    }

    override fun toString(): String =
        "Lease(resources=$resources, token=${Tokens.redact(token)}, state=$state, remaining=$remaining)"
}

/** Cancels a critical section whose lease was lost; carries the loss to the [withRedlock] boundary. */
internal class LeaseLostCancellation(val loss: LockLostException) : CancellationException(loss.message) {
    init {
        initCause(loss)
    }
}
