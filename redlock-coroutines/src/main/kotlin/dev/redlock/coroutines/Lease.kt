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
import kotlin.time.toKotlinDuration
import kotlinx.coroutines.NonCancellable
import kotlinx.coroutines.withContext
import kotlinx.coroutines.CancellationException
import kotlinx.coroutines.CompletableDeferred
import kotlinx.coroutines.awaitCancellation
import kotlinx.coroutines.delay
import kotlinx.coroutines.sync.Mutex
import kotlinx.coroutines.sync.withLock
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

/** The one implementation of [Lease]; its state changes under [mutex] (extend / release) or by CAS (loss). */
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
    private val stateLock = Any()
    private val mutex = Mutex()
    private val lost = CompletableDeferred<LockLostException>()

    @Volatile
    private var validUntil: ComparableTimeMark = validUntil

    @Volatile
    private var lastRenewalFailure: Throwable? = null

    /** When the last successful acquisition or extension started: renewals are scheduled from it. */
    @Volatile
    private var renewedAt: ComparableTimeMark = validUntil - timing.lease + timing.drift

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

    /** The loss, once the lease is lost. */
    internal val lostException: LockLostException?
        get() = if (lost.isCompleted) lost.getCompleted() else null

    override suspend fun extend() {
        mutex.withLock { extendLocked() }
    }

    private suspend fun extendLocked() {
        when (state) {
            State.RELEASED -> throw IllegalStateException("the lease on $resources was released; acquire it again")
            State.LOST -> throw lost.getCompleted()
            State.HELD -> Unit
        }
        if (validUntil.hasPassedNow()) throw markLost(LockLostException.Reason.EXPIRED, lastRenewalFailure)!!
        val start = redlock.timeSource.markNow()
        val answers = fanOut(redlock.nodes, redlock.quorum, { held: BooleanArray -> held[0] }) { node ->
            node.extend(keys, arrayOf("1", token), timing.leaseMillis, timing.nodeTimeout)
        }.answers
        var confirmed = 0
        var notHeld = 0
        val failures = ArrayList<MasterFailureException>()
        for (answer in answers) {
            when {
                answer.failure != null -> failures += answer.failure.asMasterFailure(redlock.nodes[answer.node])
                answer.value!![0] -> confirmed++
                else -> notHeld++
            }
        }
        val n = redlock.nodes.size
        if (LockMath.quorumImpossible(n, redlock.quorum, notHeld)) {
            throw markLost(LockLostException.Reason.NOT_HELD, failures.firstOrNull())!!
        }
        if (confirmed >= redlock.quorum) {
            if (validUntil.hasPassedNow()) {
                // The quorum came back too late: the lease had already run out in between.
                throw markLost(LockLostException.Reason.EXPIRED, failures.firstOrNull())!!
            }
            validUntil = start + timing.lease - timing.drift
            renewedAt = start
            lastRenewalFailure = null
            return
        }
        val failure = LockNotExtendedException(
            "Could not extend the lease on $resources: $confirmed of $n masters confirmed, quorum ${redlock.quorum}" +
                (if (notHeld > 0) ", $notHeld no longer hold it" else "") +
                (if (failures.isNotEmpty()) ", ${failures.size} failed: " + failures.joinToString("; ") { it.message ?: it.master() } else "") +
                "; the lease stays valid for ${Checks.show(remaining.toJavaDuration())}",
            resources,
            failures,
        )
        lastRenewalFailure = failure
        throw failure
    }

    override suspend fun release() {
        withContext(NonCancellable) {
            mutex.withLock {
                val before = synchronized(stateLock) { state.also { state = State.RELEASED } }
                // A lost lease may still hold keys on a minority of masters: delete them too, so
                // they do not keep refusing the next holder until they expire.
                if (before != State.RELEASED) redlock.releaseEverywhere(this@RedlockLease)
            }
        }
    }

    override suspend fun awaitLost(): LockLostException {
        while (true) {
            if (lost.isCompleted) return lost.getCompleted()
            if (state == State.RELEASED) awaitCancellation()
            val left = -validUntil.elapsedNow()
            if (left <= Duration.ZERO) {
                markLost(LockLostException.Reason.EXPIRED, lastRenewalFailure)
                continue
            }
            withTimeoutOrNull(left) { lost.await() }?.let { return it }
        }
    }

    /**
     * Renews the lease every third of its lease time until it is released or lost; after a failed
     * renewal, tries again sooner while validity remains. Returns when the lease is no longer held.
     */
    internal suspend fun keepRenewed() {
        val interval = timing.lease / 3
        val retry = minOf(redlock.config.retryDelay().toKotlinDuration(), interval)
        while (state == State.HELD) {
            val wait =
                if (lastRenewalFailure == null) interval - renewedAt.elapsedNow()
                else minOf(retry, remaining / 3)
            delay(wait.coerceAtLeast(Duration.ZERO))
            try {
                extend()
            } catch (e: LockLostException) {
                return
            } catch (e: LockNotExtendedException) {
                // Recorded in lastRenewalFailure; validity decides when it becomes a loss.
            } catch (e: IllegalStateException) {
                return
            }
        }
    }

    /**
     * Marks the lease lost (once) and returns the loss; null if it was released first.
     */
    internal fun markLost(reason: LockLostException.Reason, cause: Throwable?): LockLostException? {
        synchronized(stateLock) {
            when (state) {
                State.RELEASED -> return lostException
                State.LOST -> return lost.getCompleted()
                State.HELD -> Unit
            }
            val what = when (reason) {
                LockLostException.Reason.NOT_HELD -> "a quorum of masters no longer holds it"
                LockLostException.Reason.EXPIRED -> "its validity ran out before a renewal reached a quorum"
            }
            val loss = LockLostException("Lost the lock on $resources: $what", resources, reason, cause)
            lost.complete(loss)
            state = State.LOST
            Redlock.LOG.log(System.Logger.Level.WARNING, "Redlock lost the lock on {0}: {1}", resources, what)
            return loss
        }
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
