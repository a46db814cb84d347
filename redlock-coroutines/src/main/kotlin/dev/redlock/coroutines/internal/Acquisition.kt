package dev.redlock.coroutines.internal

import dev.redlock.core.LockNotAcquiredException
import dev.redlock.core.MasterFailureException
import dev.redlock.core.RedlockClosedException
import dev.redlock.core.RedlockMetrics
import dev.redlock.core.internal.AcquireReply
import dev.redlock.core.internal.Checks
import dev.redlock.core.internal.Keys
import dev.redlock.core.internal.LockMath
import dev.redlock.core.internal.Script
import dev.redlock.core.internal.Tokens
import java.util.concurrent.CompletableFuture
import kotlin.time.ComparableTimeMark
import kotlin.time.Duration
import kotlin.time.Duration.Companion.milliseconds
import kotlin.time.toJavaDuration
import kotlin.time.toKotlinDuration
import kotlinx.coroutines.CancellationException
import kotlinx.coroutines.NonCancellable
import kotlinx.coroutines.future.await
import kotlinx.coroutines.withContext
import kotlinx.coroutines.withTimeoutOrNull

/**
 * One call's acquisition of a lease: attempts on all masters, waiting between them, and cleanup.
 *
 * An attempt runs the kind's acquire script on every master at once and is decided as soon as a
 * quorum granted or a quorum is out of reach. A failed attempt releases what it may have set, on
 * every master that did not refuse, before the next one. Between attempts the call waits in its
 * key's wait room for a release notice, with the refusing holder's remaining time and the jittered
 * retry delay as fallbacks. It returns or throws by its wait time plus one node timeout (an attempt
 * started just before the wait ran out), whatever the masters do; cancellation releases what the
 * attempt set and propagates; closing the Redlock fails it at once.
 *
 * One token serves the whole acquisition: a retry then never collides with a key that an earlier
 * attempt left behind on a master whose cleanup did not get through.
 */
internal class Acquisition(
    private val engine: Engine,
    private val kind: LockKind,
    private val names: List<String>,
    private val timing: Timing,
    private val fencing: Boolean,
    private val once: Boolean,
) {
    private val masters = engine.masters
    private val rooms = engine.rooms
    private val keys = Array(names.size) { Keys.lock(engine.config.keyPrefix(), names[it]) }
    private val quorum = kind.quorum(masters.size)
    private val guard = masters.guardMillis > 0

    /** The hash slot of the keys on a cluster master, whose boot marker the acquire script reads there. */
    private val slot = Keys.slot(Keys.onCluster(keys[0]))
    private val scriptKeys = kind.acquireKeys(keys, fencing, guard)
    private val noticeKeys = kind.noticeKeys(keys)
    private val token = Tokens.next()
    private val start = engine.timeSource.markNow()

    /** The latest moment this call may end: its wait, plus one node timeout for an attempt started just before. */
    private val deadline = start + timing.wait + timing.nodeTimeoutKt

    /** Per master: it may hold our keys (it did not answer "refused"), so a failed attempt must release there. */
    private val dirty = BooleanArray(masters.size)

    /**
     * Whether this call takes a hand-off while it waits at the head of its key's queue: a mutex on
     * one key, on masters that all run the hand-off script.
     */
    private val handsOff = kind === LockKind.Mutex && keys.size == 1 && !once && engine.handsOff

    /** A hand-off taken while waiting, not yet decided. */
    private var handed: WaitRooms.HandOff? = null

    /** Whether the next clean-up announces its release: it removes keys a hand-off moved, which may free the lock. */
    private var announceCleanUp = false

    private var waiter: WaitRooms.Waiter? = null
    private var waited = Duration.ZERO
    private var outcome = RedlockMetrics.Outcome.FAILED
    private var acquired = false

    /** The lease, or null when [once] found the lock held by another holder. */
    suspend fun run(): RedlockLease? {
        try {
            // On a Redlock just created, its connections may still be opening: wait for them (within
            // the call's wait, or while the Redlock is new) rather than send an attempt that could
            // only time out.
            engine.awaitWarmUp(timing.wait - start.elapsedNow())
            // A newcomer queues behind the waiters of this process instead of overtaking them.
            waiter = if (once) null else rooms.queueIfWaited(noticeKeys, kind.exclusive, quorum)
            var attemptNow = waiter == null
            var last: Attempt? = null
            while (true) {
                if (attemptNow) {
                    engine.checkOpen()
                    waiter?.let { rooms.attempting(it) }
                    val attempt = attempt()
                    if (attempt.granted) grant(attempt)?.let { return it }
                    cleanUp()
                    if (fail(attempt)) return null
                    last = attempt
                }
                val remainingWait = timing.wait - start.elapsedNow()
                if (remainingWait <= Duration.ZERO) {
                    val why = "not acquired within waitTime ${Checks.show(timing.wait.toJavaDuration())}"
                    throw if (last != null) notAcquired(last.complete(), why) else queuedTooLong(why)
                }
                val w = waiter ?: rooms.join(noticeKeys, kind.exclusive, quorum).also { waiter = it }
                // The head of the local queue (or a waiter for several keys) waits for a release
                // notice, with the holder's remaining time and the jittered retry delay as
                // fallbacks; the others wait for their turn.
                val head = rooms.mayAttempt(w)
                val pause = if (head) retryPause(engine.config.retryDelay().toKotlinDuration(), last?.retryHint, remainingWait, engine.random) else remainingWait
                val pauseStart = engine.timeSource.markNow()
                val offered = handsOff && head && w.queued
                if (offered) w.offer(handOffCall)
                val signal = try {
                    w.await(pause)
                } finally {
                    waited += pauseStart.elapsedNow()
                    // A hand-off taken meanwhile may have moved the keys to our token anywhere: on
                    // every way out from here, a clean-up releases everywhere, and announces it.
                    if (offered) w.withdraw()?.let { handed = it; dirty.fill(true); announceCleanUp = true }
                }
                val handOff = handed
                if (handOff != null) {
                    handed = null
                    if (signal == WaitRooms.Signal.CLOSED) throw engine.closedException()
                    val attempt = takeOver(handOff)
                    if (attempt.granted) grant(attempt)?.let { engine.observer.handOff(kind, names, granted = true); return it }
                    engine.observer.handOff(kind, names, granted = false)
                    // Not granted: the ordinary path, as after a release notice.
                    cleanUp()
                    if (fail(attempt)) return null
                    last = attempt
                    attemptNow = true
                    continue
                }
                when (signal) {
                    WaitRooms.Signal.CLOSED -> throw engine.closedException()
                    WaitRooms.Signal.RELEASED -> attemptNow = true
                    // Now at the head, behind a waiter that just took the lock: wait for its
                    // release (its remaining time is unknown here).
                    WaitRooms.Signal.PROMOTED -> { attemptNow = false; last = last?.withoutHint() }
                    else -> attemptNow = head
                }
            }
        } catch (e: CancellationException) {
            outcome = RedlockMetrics.Outcome.CANCELLED
            withContext(NonCancellable) { cleanUp(bounded = false) }
            throw e
        } catch (e: RedlockClosedException) {
            withContext(NonCancellable) { cleanUp() }
            throw e
        } catch (e: LockNotAcquiredException) {
            if (e.isContended) outcome = RedlockMetrics.Outcome.CONTENDED
            throw e
        } finally {
            engine.observer.acquisition(kind, names, outcome, start.elapsedNow(), waited)
            waiter?.let { rooms.leave(it, acquired) }
            // A waiting writer's mark keeps new readers out, also on masters that refused it:
            // giving up removes it everywhere, at once, instead of leaving readers out until it expires.
            if (!acquired && kind.marksWhileWaiting) {
                val sent = engine.release(masters.nodes.indices, kind, keys, token, Tokens.releaseId(), timing, warn = false, final = true)
                withContext(NonCancellable) { awaitWithin(sent) }
            }
        }
    }

    /**
     * After a failed attempt: throws when waiting cannot help (the masters refused for good, the
     * permits disagree, or a single attempt failed without contention), naming every master's
     * answer; returns true when a single attempt found the lock held (the call then returns null),
     * false to go on waiting.
     */
    private suspend fun fail(attempt: Attempt): Boolean {
        attempt.otherPermits?.let { throw permitsDisagree(it) }
        val permanent = attempt.failures.count { it.kind().isPermanent }
        if (LockMath.quorumImpossible(masters.size, quorum, permanent)) {
            throw notAcquired(attempt.complete(), "masters refused the lock permanently")
        }
        if (!once) return false
        if (!attempt.contended) throw notAcquired(attempt.complete(), "one attempt failed")
        outcome = RedlockMetrics.Outcome.CONTENDED
        return true
    }

    /** The lease of a granted attempt, once its fencing token (if any) is confirmed; else null. */
    private suspend fun grant(attempt: Attempt): RedlockLease? {
        val fence = if (fencing) confirmFence(attempt) ?: return null.also { attempt.fenceUnconfirmed = true } else null
        // The fence's round trip took time too.
        if (!(attempt.validUntil - timing.expiryLead).hasNotPassedNow()) return null.also { attempt.inTime = false }
        val lease = RedlockLease(engine, names, keys, token, timing, attempt.start, fence, kind, quorum)
        engine.adopt(lease)
        acquired = true
        outcome = RedlockMetrics.Outcome.ACQUIRED
        return lease
    }

    private suspend fun attempt(): Attempt {
        val attemptStart = engine.timeSource.markNow()
        // Until a master answers "refused", it may have set our keys (even one that timed out:
        // the command may still run on the server), so it needs a release if we do not win.
        dirty.fill(true)
        val args = kind.acquireArgs(keys, token, timing.leaseMillis, fencing, guard)
        val gathered = fanOut(masters, quorum, isGrant, engine.acquireAnswers) { node ->
            node.acquire(kind.acquireScript, scriptKeys, args, timing.nodeTimeout)
        }
        return decided(gathered, attemptStart)
    }

    private val isGrant = { reply: AcquireReply -> reply.acquired && masters.guardLeft(reply) == null }

    private fun decided(gathered: Gathered<AcquireReply>, attemptStart: ComparableTimeMark): Attempt =
        Attempt(gathered, attemptStart, attemptStart + timing.lease - timing.drift).also {
            classify(it, gathered.answers)
            if (engine.observer.debug) engine.observer.attempt(kind, keys.asList(), it, quorum, attemptStart.elapsedNow())
        }

    /**
     * Sends the hand-off script for the lease of token `old` (the argument) to every master (called by the
     * releasing lease, under the waiter's monitor): it moves the key from `old` to our token where
     * the key still holds `old`. The validity counts from a moment taken before the first call.
     */
    private val handOffCall: (String) -> WaitRooms.HandOff = { old ->
        val start = engine.timeSource.markNow()
        val args = kind.acquireArgs(keys, token, timing.leaseMillis, fencing, guard) + old
        WaitRooms.HandOff(start, masters.nodes.map { node ->
            try {
                node.acquire(Script.HANDOFF, scriptKeys, args, timing.nodeTimeout)
            } catch (e: RuntimeException) {
                CompletableFuture.failedFuture(e)
            }
        })
    }

    /**
     * The outcome of a hand-off, counted as an attempt of this call: a master where the move failed
     * refused (its key no longer held the old token), one that did not answer may hold our key.
     */
    private suspend fun takeOver(handOff: WaitRooms.HandOff): Attempt =
        decided(gather(masters, quorum, isGrant, engine.acquireAnswers, handOff.calls), handOff.start)

    /** Counts [answers] into [attempt], notes guarded masters, and marks masters that refused as clean. */
    private fun classify(attempt: Attempt, answers: List<Answer<AcquireReply>>) {
        attempt.answered = answers.size
        var holderPttl = -2L
        for (answer in if (answers.size > 1) answers.sortedBy { it.node } else answers) {
            val reply = answer.value
            val left = reply?.let(masters::guardLeft)
            if (left != null) masters.guard(answer.node, left, slot)
            when {
                answer.failure != null -> attempt.failures += answer.failure as MasterFailureException
                reply!!.acquired && left != null -> {
                    // Set, but not counted: the master may have forgotten a lock it granted.
                    attempt.guarded++
                    attempt.guardRemaining = minOf(attempt.guardRemaining ?: left, left)
                }
                reply.acquired -> attempt.granting++
                reply.otherPermits() > 0 -> {
                    dirty[answer.node] = false
                    attempt.otherPermits = reply.otherPermits()
                }
                else -> {
                    dirty[answer.node] = false
                    attempt.contended = true
                    val pttl = reply.holderPttlMillis
                    if (pttl == -1L) attempt.holderNoExpiry = true
                    if (pttl == -1L || (holderPttl != -1L && pttl > holderPttl)) holderPttl = pttl
                }
            }
        }
        attempt.holderRemaining = if (holderPttl >= 0) holderPttl.milliseconds else null
        // Granted only with validity to spare: a lease is declared lost its expiry lead before the
        // end of its validity, so one that comes back later than that was never usable.
        attempt.inTime = (attempt.validUntil - timing.expiryLead).hasNotPassedNow()
    }

    /**
     * The attempt as it stands once every master has answered or timed out (within the node
     * timeout of the attempt): the failure reported to the caller names every master, not only
     * those that answered before the outcome was clear.
     */
    private suspend fun Attempt.complete(): Attempt {
        if (answered == masters.size) return this
        val all = Attempt(gathered, start, validUntil)
        classify(all, gathered.all())
        all.inTime = false
        all.fenceUnconfirmed = fenceUnconfirmed
        return all
    }

    /**
     * The second round trip of a fenced acquisition: the fencing token is the largest candidate
     * among the masters that granted (each incremented its counter, or offered its time where it
     * had none), and it stands once a quorum that still holds the lease has raised its counters to
     * it, within the lease's validity. A later holder's quorum meets that quorum on some master,
     * whose counter it increments past the token. Returns null when it could not be confirmed.
     */
    private suspend fun confirmFence(attempt: Attempt): Long? {
        val fence = attempt.gathered.answers.mapNotNull { it.value }.filter { it.acquired }.maxOf { it.fence() }
        val fenceKeys = kind.fenceKeys(keys)
        val confirmed = fanOut(masters, quorum, { yes: Boolean -> yes }) { node ->
            node.confirmFence(fenceKeys, token, fence, timing.nodeTimeout)
        }.answers.count { it.value == true }
        return fence.takeIf { confirmed >= quorum && (attempt.validUntil - timing.expiryLead).hasNotPassedNow() }
    }

    /**
     * Releases this token's keys on every master that may hold them, quietly: it announces
     * nothing. Keys set on a minority never decided anyone's quorum while a holder has the
     * majority, and a notice would wake the other contenders (this one too) into attempts that fail
     * the same way and clean up with notices of their own: a storm of attempts at network speed.
     * Contenders that split the masters between them with no holder retry after the jittered
     * delay, which is what breaks the tie (the Redlock rule). Failures are expected on every retry
     * while a master is down: logged at DEBUG. Awaited (each master bounded by the node timeout),
     * but when [bounded], never past the call's [deadline]: the release is sent either way, and the
     * master runs it after the attempt's own command.
     */
    private suspend fun cleanUp(bounded: Boolean = true) {
        val targets = masters.nodes.indices.filter { dirty[it] }
        if (targets.isEmpty()) return
        // After a hand-off, our key may be what holds the lock now (the old holder's key moved to
        // us): its release frees the lock, and the waiters of other processes must hear of it.
        val releaseId = if (announceCleanUp) Tokens.releaseId() else QUIET
        announceCleanUp = false
        val sent = engine.release(targets, kind, keys, token, releaseId, timing, warn = false, final = false) { dirty[it] = false }
        if (bounded) awaitWithin(sent) else sent.await()
    }

    /** Waits for [sent] while the call's deadline allows. */
    private suspend fun awaitWithin(sent: CompletableFuture<Void?>) {
        val left = -deadline.elapsedNow()
        if (left > Duration.ZERO) withTimeoutOrNull(left) { sent.await() }
    }

    private fun permitsDisagree(other: Long): IllegalArgumentException {
        val permits = (kind as LockKind.Permit).permits
        return IllegalArgumentException(
            "permits must be the same for every caller of the semaphore ${names[0]}: its current holders use $other, " +
                "but this call asked for $permits",
        )
    }

    /** A waiter that spent its whole wait queued behind other waiters of this process. */
    private fun queuedTooLong(why: String) = LockNotAcquiredException(
        "Could not acquire $names ($why) on ${masters.size} master(s), quorum $quorum: " +
            "queued the whole time behind other waiters of this process, which held or waited for the lock",
        names, true, null, emptyList(),
    )

    private fun notAcquired(attempt: Attempt, why: String): LockNotAcquiredException {
        val parts = ArrayList<String>()
        parts += "${attempt.granting} granted"
        if (attempt.contended) {
            val holder = attempt.holderRemaining
            parts += when {
                holder != null -> "held by another holder for ${Checks.show(holder.toJavaDuration())} more"
                attempt.holderNoExpiry -> "held by another holder (key without expiry, not set by Redlock)"
                // A backend node that cannot tell how long the other holder's hold lasts.
                else -> "held by another holder"
            }
        }
        if (attempt.guarded > 0) {
            parts += "${attempt.guarded} granted on master(s) that started empty or lost their data less than " +
                "restartGuard ${Checks.show(engine.config.restartGuard())} ago, whose votes are not counted for " +
                "${Checks.show(attempt.guardRemaining!!.toJavaDuration())} more"
        }
        if (attempt.fenceUnconfirmed) parts += "the fencing token was not confirmed by a quorum within the lease's validity"
        if (attempt.tooSlow) {
            parts += "the quorum answered after the lease's validity (${Checks.show((timing.lease - timing.drift).toJavaDuration())}) had run out"
        }
        if (attempt.failures.isNotEmpty()) {
            parts += "${attempt.failures.size} failed: " + attempt.failures.joinToString("; ") { it.message ?: it.master() }
        }
        val silent = masters.size - attempt.answered
        if (silent > 0) parts += "$silent not awaited"
        val what = if (kind === LockKind.Mutex) "" else "a ${kind.what} on "
        val message = "Could not acquire $what$names ($why) on ${masters.size} master(s), quorum $quorum: " + parts.joinToString(", ")
        return LockNotAcquiredException(message, names, attempt.contended, attempt.holderRemaining?.toJavaDuration(), attempt.failures)
    }

    /**
     * The outcome of one attempt on all masters, counted from the answers that decided it (or, once
     * [complete]d, from all of them). What a caller asks of it ([granted], [tooSlow], [retryHint])
     * is derived from the counts.
     */
    inner class Attempt(val gathered: Gathered<AcquireReply>, val start: ComparableTimeMark, val validUntil: ComparableTimeMark) {
        var answered = 0
        var granting = 0
        var guarded = 0
        var guardRemaining: Duration? = null
        var contended = false
        var holderRemaining: Duration? = null
        var holderNoExpiry = false
        var otherPermits: Long? = null
        var inTime = true
        var fenceUnconfirmed = false
        var hintDropped = false
        val failures = ArrayList<MasterFailureException>()

        val granted: Boolean get() = granting >= quorum && inTime && !fenceUnconfirmed
        val tooSlow: Boolean get() = granting >= quorum && !inTime

        /** When to look again without a notice: the refusing holder's remaining time, or the end of a guard. */
        val retryHint: Duration? get() = if (hintDropped) null else listOfNotNull(holderRemaining, guardRemaining).minOrNull()

        fun withoutHint(): Attempt = also { hintDropped = true }
    }

    private companion object {
        /** The release id of a release that announces nothing (the scripts publish only a non-empty id). */
        const val QUIET = ""
    }
}
