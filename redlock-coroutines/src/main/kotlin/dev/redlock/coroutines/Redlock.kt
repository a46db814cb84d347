package dev.redlock.coroutines

import dev.redlock.core.LockNotAcquiredException
import dev.redlock.core.MasterFailureException
import dev.redlock.core.RedlockConfig
import dev.redlock.core.RedlockMetrics
import dev.redlock.core.internal.AcquireReply
import dev.redlock.core.internal.Checks
import dev.redlock.core.internal.LockMath
import dev.redlock.core.internal.LockNode
import dev.redlock.core.internal.Tokens
import java.util.concurrent.CompletableFuture
import java.util.concurrent.atomic.AtomicBoolean
import kotlin.random.Random
import kotlin.time.ComparableTimeMark
import kotlin.time.Duration
import kotlin.time.Duration.Companion.milliseconds
import kotlin.time.TimeSource
import kotlin.time.toJavaDuration
import kotlin.time.toKotlinDuration
import kotlinx.coroutines.CancellationException
import kotlinx.coroutines.CoroutineName
import kotlinx.coroutines.CoroutineScope
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.NonCancellable
import kotlinx.coroutines.SupervisorJob
import kotlinx.coroutines.cancel
import kotlinx.coroutines.future.await
import kotlinx.coroutines.withContext

/**
 * A Redlock over the masters of a [RedlockConfig]: the entry point for [withRedlock], [acquire]
 * and [tryAcquire].
 *
 * A lock on one or several resources is held when a majority of the masters hold all of its keys
 * with this holder's token; see the README for the guarantees and the assumptions they rest on.
 *
 * One `Redlock` is meant to be shared by the whole application: it owns one Lettuce client and
 * one connection per master, is thread-safe, and is cheap to use from any number of coroutines.
 * Creating it does not fail when masters are unreachable (a lock only needs a majority); it
 * starts connecting in the background. [close] it when the application stops.
 *
 * @param config the masters and timing; validated by [RedlockConfig.Builder.build]
 * @param timeSource the monotonic clock that measures validity; inject a test clock to check
 *   validity arithmetic without waiting
 */
public class Redlock private constructor(
    /** The configuration this Redlock was created with. */
    public val config: RedlockConfig,
    internal val nodes: List<LockNode>,
    internal val timeSource: TimeSource.WithComparableMarks,
    internal val random: Random,
    private val owned: AutoCloseable?,
) : AutoCloseable {

    public constructor(
        config: RedlockConfig,
        timeSource: TimeSource.WithComparableMarks = TimeSource.Monotonic,
    ) : this(config, LettuceMasters(config), timeSource)

    private constructor(
        config: RedlockConfig,
        masters: LettuceMasters,
        timeSource: TimeSource.WithComparableMarks,
    ) : this(config, masters.nodes, timeSource, Random.Default, masters)

    /** A Redlock over arbitrary nodes: the seam for scheduling tests on virtual time. */
    internal constructor(
        config: RedlockConfig,
        nodes: List<LockNode>,
        timeSource: TimeSource.WithComparableMarks,
        random: Random,
    ) : this(config, nodes, timeSource, random, null)

    internal val quorum: Int = LockMath.quorum(nodes.size)
    private val closed = AtomicBoolean(false)

    /** The library's own coroutines (the renewal timer and its calls): cancelled by [close]. */
    internal val scope: CoroutineScope =
        CoroutineScope(SupervisorJob() + Dispatchers.Default + CoroutineName("redlock-renewals"))

    internal val renewals: Renewals = Renewals(this)

    internal val rooms: WaitRooms = WaitRooms(nodes, config.nodeTimeout())

    /** Logs and metrics. */
    internal val observer: Observer = Observer(nodes, config.metrics())

    /** Sees every answer of an acquire or extend fan-out: tracks which masters fail. */
    private val acquireAnswers: (Answer<*>) -> Unit = { observe(it, "acquire") }
    internal val extendAnswers: (Answer<*>) -> Unit = { observe(it, "extend") }

    private fun observe(answer: Answer<*>, operation: String) {
        val failure = answer.failure
        if (failure == null) observer.answered(answer.node)
        else observer.failed(answer.node, operation, failure.asMasterFailure(nodes[answer.node]))
    }

    /** The restart guard in ms (0: off); see [RedlockConfig.restartGuard]. */
    private val guardMillis: Long = config.restartGuard().toMillis()

    /** Per master, until when its votes are not counted (it started empty or lost its data). */
    private val guardedUntil = java.util.concurrent.atomic.AtomicReferenceArray<ComparableTimeMark?>(nodes.size)

    /** Whether [node]'s votes are not counted now, by the restart guard. */
    internal fun isGuarded(node: Int): Boolean = guardedUntil.get(node)?.hasNotPassedNow() == true

    /** How much longer a reply's master stays guarded, or null when its vote counts. */
    private fun guardLeft(reply: AcquireReply): Duration? =
        if (guardMillis > 0 && reply.bootAgeMillis() in 0 until guardMillis) (guardMillis - reply.bootAgeMillis()).milliseconds else null

    /** The timing of calls that override nothing: shared, as most calls are such. */
    private val defaultTiming = Timing(null, null)

    init {
        val warmUp = config.nodeTimeout().multipliedBy(20)
        for (node in nodes) {
            node.warmUp(warmUp).whenComplete { _, e ->
                if (e != null && !closed.get()) {
                    LOG.warn(
                        "Redlock master {} is not reachable at start-up ({}); locks work while a majority of the {} masters answers",
                        node.name(), e.message, nodes.size,
                    )
                }
            }
        }
    }

    /** Timing of one lock call: the config's defaults with the caller's overrides, validated. */
    internal inner class Timing(leaseTime: Duration?, waitTime: Duration?) {
        val lease: Duration =
            if (leaseTime == null) config.leaseTime().toKotlinDuration()
            else Checks.leaseTime("leaseTime", leaseTime.toJavaDurationChecked("leaseTime")).toKotlinDuration()
        val wait: Duration =
            if (waitTime == null) config.waitTime().toKotlinDuration()
            else Checks.waitTime("waitTime", waitTime.toJavaDurationChecked("waitTime")).toKotlinDuration()
        val nodeTimeout: java.time.Duration = config.nodeTimeoutFor(lease.toJavaDuration())
        val drift: Duration = config.driftFor(lease.toJavaDuration()).toKotlinDuration()
        val leaseMillis: Long = lease.inWholeMilliseconds.coerceAtLeast(1)

        /** How often a renewed lease is extended: every third of its lease time. */
        val renewInterval: Duration = lease / 3

        init {
            if (leaseTime != null) {
                require(nodeTimeout < lease.toJavaDuration()) {
                    "leaseTime must be longer than the configured nodeTimeout (${Checks.show(nodeTimeout)}), but was ${Checks.show(lease.toJavaDuration())}"
                }
                require(drift < lease) {
                    "leaseTime must be longer than its clock drift allowance (${Checks.show(drift.toJavaDuration())}), but was ${Checks.show(lease.toJavaDuration())}"
                }
            }
        }
    }

    /**
     * Acquires a lease on [resources], waiting up to the wait time unless [once].
     *
     * Returns null only when [once] and another holder has the lock. Cancellation releases the
     * keys this acquisition may have set on every master, then propagates.
     */
    internal suspend fun acquireLease(
        resources: Array<out String>,
        leaseTime: Duration?,
        waitTime: Duration?,
        once: Boolean,
        fencing: Boolean? = null,
        kind: LockKind = LockKind.Mutex,
    ): RedlockLease? {
        check(!closed.get()) { "this Redlock is closed" }
        val names = checkResources(resources)
        require(kind.multiResource || names.size == 1) { "a ${kind.what} holds one resource, but ${names.size} were given: $names" }
        val timing = if (leaseTime == null && waitTime == null) defaultTiming else Timing(leaseTime, waitTime)
        val keys = Array(names.size) { config.keyPrefix() + names[it] }
        val quorum = if (kind === LockKind.Mutex) quorum else kind.quorum(nodes.size)
        // Fencing tokens are a mutex's: the other kinds have no single holder to order.
        val fenced = kind === LockKind.Mutex && (fencing ?: config.fencing())
        val scriptKeys = kind.acquireKeys(keys, fenced)
        val noticeKeys = kind.noticeKeys(keys)
        // One token for the whole acquisition: a retry then never collides with a key that an
        // earlier attempt left behind on a master whose release did not get through.
        val token = Tokens.next()
        val waitStart = timeSource.markNow()
        var waited = Duration.ZERO
        var outcome = RedlockMetrics.Outcome.FAILED
        val dirty = BooleanArray(nodes.size)
        // A newcomer queues behind the waiters of this process instead of overtaking them.
        var waiter: WaitRooms.Waiter? = if (once) null else rooms.queueIfWaited(noticeKeys, kind.exclusive)
        var acquired = false
        var attemptNow = waiter == null
        var last: Attempt? = null
        var holderHint: Duration? = null
        try {
            while (true) {
                if (attemptNow) {
                    waiter?.clear()
                    var attempt = attempt(kind, quorum, scriptKeys, fenced, token, timing, dirty)
                    if (attempt.granted) {
                        val fence = if (fenced) confirmFence(scriptKeys, token, timing, attempt) else null
                        if (!fenced || fence != null) {
                            acquired = true
                            outcome = RedlockMetrics.Outcome.ACQUIRED
                            return RedlockLease(this, names, keys, token, timing, attempt.validUntil, fence, kind, quorum)
                        }
                        attempt = attempt.unconfirmedFence()
                    }
                    withContext(NonCancellable) { cleanUp(kind, keys, token, timing, dirty) }
                    attempt.otherPermits?.let { other -> throw permitsDisagree(names, kind, other) }
                    val permanent = attempt.failures.count { it.kind().isPermanent }
                    if (LockMath.quorumImpossible(nodes.size, quorum, permanent)) {
                        throw notAcquired(names, timing, attempt.complete(dirty), "masters refused the lock permanently", kind)
                    }
                    if (once) {
                        if (attempt.contended) {
                            outcome = RedlockMetrics.Outcome.CONTENDED
                            return null
                        }
                        throw notAcquired(names, timing, attempt.complete(dirty), "one attempt failed", kind)
                    }
                    last = attempt
                    holderHint = listOfNotNull(attempt.holderRemaining, attempt.guardRemaining).minOrNull()
                }
                val remainingWait = timing.wait - waitStart.elapsedNow()
                if (remainingWait <= Duration.ZERO) {
                    val why = "not acquired within waitTime ${Checks.show(timing.wait.toJavaDuration())}"
                    throw if (last != null) notAcquired(names, timing, last.complete(dirty), why, kind) else queuedTooLong(names, why, quorum)
                }
                val w = waiter ?: rooms.join(noticeKeys, kind.exclusive).also { waiter = it }
                // The head of the local queue (or a waiter for several keys) waits for a release
                // notice, with the holder's remaining time and the jittered retry delay as
                // fallbacks; the others wait for their turn.
                val head = rooms.mayAttempt(w)
                val pause = if (head) retryPause(config.retryDelay().toKotlinDuration(), holderHint, remainingWait, random) else remainingWait
                val pauseStart = timeSource.markNow()
                val signal = try {
                    w.await(pause)
                } finally {
                    waited += pauseStart.elapsedNow()
                }
                when (signal) {
                    WaitRooms.Signal.RELEASED -> attemptNow = true
                    WaitRooms.Signal.PROMOTED -> {
                        // Now at the head, behind a waiter that just took the lock: wait for its
                        // release (its remaining time is unknown here).
                        attemptNow = false
                        holderHint = null
                    }
                    else -> attemptNow = head
                }
            }
        } catch (e: CancellationException) {
            outcome = RedlockMetrics.Outcome.CANCELLED
            withContext(NonCancellable) { cleanUp(kind, keys, token, timing, dirty) }
            throw e
        } catch (e: LockNotAcquiredException) {
            if (e.isContended) outcome = RedlockMetrics.Outcome.CONTENDED
            throw e
        } finally {
            observer.acquisition(kind, names, outcome, waitStart.elapsedNow(), waited)
            waiter?.let { rooms.leave(it, acquired) }
            // A waiting writer's mark keeps new readers out, also on masters that refused it:
            // giving up removes it everywhere, at once, instead of leaving readers out until it expires.
            if (!acquired && kind.marksWhileWaiting) {
                withContext(NonCancellable) {
                    releaseOn(nodes.indices.toList(), kind, keys, token, Tokens.releaseId(), timing, warn = false, final = true, sent = {}, released = {})
                }
            }
        }
    }

    /** Callers of one semaphore disagree on its number of permits. */
    private fun permitsDisagree(names: List<String>, kind: LockKind, other: Long): IllegalArgumentException {
        val permits = (kind as LockKind.Permit).permits
        return IllegalArgumentException(
            "permits must be the same for every caller of the semaphore ${names[0]}: its current holders use $other, " +
                "but this call asked for $permits",
        )
    }

    /** A waiter that spent its whole wait queued behind other waiters of this process. */
    private fun queuedTooLong(names: List<String>, why: String, quorum: Int) = LockNotAcquiredException(
        "Could not acquire $names ($why) on ${nodes.size} master(s), quorum $quorum: " +
            "queued the whole time behind other waiters of this process, which held or waited for the lock",
        names, true, null, emptyList(),
    )

    /** The outcome of one attempt on all masters. */
    internal class Attempt(
        val granted: Boolean,
        val granting: Int,
        val guarded: Int,
        val guardRemaining: Duration?,
        val contended: Boolean,
        val holderRemaining: Duration?,
        val failures: List<MasterFailureException>,
        val silent: Int,
        val tooSlow: Boolean,
        val validUntil: ComparableTimeMark,
        val gathered: Gathered<AcquireReply>,
        val quorum: Int,
        val otherPermits: Long? = null,
        val fenceUnconfirmed: Boolean = false,
    ) {
        /** This attempt, not granted: its quorum did not confirm the fencing token in time. */
        fun unconfirmedFence() =
            Attempt(false, granting, guarded, guardRemaining, contended, holderRemaining, failures, silent, tooSlow, validUntil, gathered, quorum, otherPermits, true)
    }

    /**
     * The attempt as it stands once every master has answered or timed out: the failure reported
     * to the caller names every master, not only those that answered before the outcome was clear.
     */
    private suspend fun Attempt.complete(dirty: BooleanArray): Attempt =
        if (silent == 0) this else classify(gathered.all(), gathered, dirty, validUntil, quorum).let {
            Attempt(false, it.granting, it.guarded, it.guardRemaining, it.contended, it.holderRemaining, it.failures, it.silent, tooSlow, validUntil, gathered, quorum, it.otherPermits, fenceUnconfirmed)
        }

    /**
     * The second round trip of a fenced acquisition: the fencing token is the largest candidate
     * among the masters that granted (each incremented its counter, or offered its time where it
     * had none), and it stands once a quorum that still holds the lease has raised its counters to
     * it, within the lease's validity. A later holder's quorum meets that quorum on some master,
     * whose counter it increments past the token. Returns null when it could not be confirmed.
     */
    private suspend fun confirmFence(scriptKeys: Array<String>, token: String, timing: Timing, attempt: Attempt): Long? {
        val fence = attempt.gathered.answers.mapNotNull { it.value }.filter { it.acquired }.maxOf { it.fence() }
        val confirmed = fanOut(nodes, quorum, { yes: Boolean -> yes }) { node ->
            node.confirmFence(scriptKeys, token, fence, timing.nodeTimeout)
        }.answers.count { it.value == true }
        return fence.takeIf { confirmed >= quorum && attempt.validUntil.hasNotPassedNow() }
    }

    private suspend fun attempt(kind: LockKind, quorum: Int, keys: Array<String>, fencing: Boolean, token: String, timing: Timing, dirty: BooleanArray): Attempt {
        val start = timeSource.markNow()
        // Until a master answers "refused", it may have set our keys (even one that timed out:
        // the command may still run on the server), so it needs a release if we do not win.
        dirty.fill(true)
        val gathered = fanOut(nodes, quorum, { reply: AcquireReply -> reply.acquired && guardLeft(reply) == null }, acquireAnswers) { node ->
            kind.acquire(node, keys, fencing, guardMillis > 0, token, timing.leaseMillis, timing.nodeTimeout)
        }
        return classify(gathered.answers, gathered, dirty, start + timing.lease - timing.drift, quorum).also {
            if (observer.debug) observer.attempt(kind, keys.asList(), it, start.elapsedNow())
        }
    }

    private fun classify(
        answers: List<Answer<AcquireReply>>,
        gathered: Gathered<AcquireReply>,
        dirty: BooleanArray,
        validUntil: ComparableTimeMark,
        quorum: Int,
    ): Attempt {
        var granting = 0
        var guarded = 0
        var guardRemaining: Duration? = null
        var contended = false
        var holderPttl = -2L
        var otherPermits: Long? = null
        val failures = ArrayList<MasterFailureException>()
        for (answer in answers.sortedBy { it.node }) {
            val reply = answer.value
            val left = reply?.let(::guardLeft)
            if (left != null) {
                if (!isGuarded(answer.node)) observer.restarted(answer.node, left)
                guardedUntil.set(answer.node, timeSource.markNow() + left)
            }
            when {
                answer.failure != null -> failures += answer.failure.asMasterFailure(nodes[answer.node])
                reply!!.acquired && left != null -> {
                    // Set, but not counted: the master may have forgotten a lock it granted.
                    guarded++
                    guardRemaining = minOf(guardRemaining ?: left, left)
                }
                reply.acquired -> granting++
                reply.otherPermits() > 0 -> {
                    dirty[answer.node] = false
                    otherPermits = reply.otherPermits()
                }
                else -> {
                    dirty[answer.node] = false
                    contended = true
                    val pttl = reply.holderPttlMillis
                    if (pttl == -1L || (holderPttl != -1L && pttl > holderPttl)) holderPttl = pttl
                }
            }
        }
        val inTime = validUntil.hasNotPassedNow()
        return Attempt(
            granted = granting >= quorum && inTime,
            granting = granting,
            guarded = guarded,
            guardRemaining = guardRemaining,
            contended = contended,
            holderRemaining = if (holderPttl >= 0) holderPttl.milliseconds else null,
            failures = failures,
            silent = nodes.size - answers.size,
            tooSlow = granting >= quorum && !inTime,
            validUntil = validUntil,
            gathered = gathered,
            quorum = quorum,
            otherPermits = otherPermits,
        )
    }

    /** Releases this token's keys on every master that may hold them; bounded by the node timeout. */
    private suspend fun cleanUp(kind: LockKind, keys: Array<String>, token: String, timing: Timing, dirty: BooleanArray) {
        val targets = nodes.indices.filter { dirty[it] }
        if (targets.isEmpty()) return
        // Expected on every retry while a master is down: logged at DEBUG, not as a warning each time.
        // Quiet: it announces nothing. Keys set on a minority never decided anyone's quorum while a
        // holder has the majority, and a notice would wake the other contenders (this one too)
        // into attempts that fail the same way and clean up with notices of their own: a storm of
        // attempts at network speed, for as long as the holder holds. Contenders that split the
        // masters between them with no holder retry after the jittered delay, which is what
        // breaks the tie (the Redlock rule).
        releaseOn(targets, kind, keys, token, QUIET, timing, warn = false, final = false, sent = {}, released = { dirty[it] = false })
    }

    /**
     * Releases a granted lease on every master (not only the quorum), and hands the lock to the
     * next waiter of this process at once. Never throws.
     */
    internal suspend fun releaseEverywhere(lease: RedlockLease) {
        // Published with the release, so that a waiter hearing it from several masters (and from
        // this process first) acts on it once.
        val releaseId = Tokens.releaseId()
        releaseOn(nodes.indices.toList(), lease.kind, lease.keys, lease.token, releaseId, lease.timing, warn = true, final = true, sent = {
            // The release calls are sent: a waiter woken now sends its attempt after them on every
            // master's connection, and each master runs them in order, so it finds the keys gone
            // without waiting for the masters' answers or their release notices.
            for (key in lease.kind.noticeKeys(lease.keys)) rooms.released(key, releaseId)
        }, released = {})
    }

    /**
     * Sends the release to the [targets] at once and waits for each (bounded by the node timeout).
     * A master that fails keeps the keys until they expire, within the lease time: logged as a warning when [warn], else at DEBUG.
     */
    private suspend fun releaseOn(
        targets: List<Int>,
        kind: LockKind,
        keys: Array<String>,
        token: String,
        releaseId: String,
        timing: Timing,
        warn: Boolean,
        final: Boolean,
        sent: () -> Unit,
        released: (Int) -> Unit,
    ) {
        val calls = targets.map { kind.release(nodes[it], keys, token, releaseId, final, timing.nodeTimeout) }
        sent()
        // One wait for all (one resume, not one per master); each call is bounded by its timeout.
        CompletableFuture.allOf(*calls.toTypedArray()).handle { _, _ -> }.await()
        for ((i, node) in targets.withIndex()) {
            try {
                calls[i].join()
                observer.answered(node)
                released(node)
            } catch (e: Throwable) {
                val cause = (e as? java.util.concurrent.CompletionException)?.cause ?: e
                observer.failed(node, "release", cause.asMasterFailure(nodes[node]))
                observer.releaseFailed(keys.toList(), node, cause, timing.lease, warn)
            }
        }
    }

    private fun notAcquired(names: List<String>, timing: Timing, attempt: Attempt, why: String, kind: LockKind): LockNotAcquiredException {
        val quorum = attempt.quorum
        val parts = ArrayList<String>()
        parts += "${attempt.granting} granted"
        if (attempt.contended) {
            parts += if (attempt.holderRemaining != null) {
                "held by another holder for ${Checks.show(attempt.holderRemaining.toJavaDuration())} more"
            } else {
                "held by another holder (key without expiry, not set by Redlock)"
            }
        }
        if (attempt.guarded > 0) {
            parts += "${attempt.guarded} granted on master(s) that started empty or lost their data less than " +
                "restartGuard ${Checks.show(config.restartGuard())} ago, whose votes are not counted for " +
                "${Checks.show(attempt.guardRemaining!!.toJavaDuration())} more"
        }
        if (attempt.fenceUnconfirmed) {
            parts += "the fencing token was not confirmed by a quorum within the lease's validity"
        }
        if (attempt.tooSlow) {
            parts += "the quorum answered after the lease's validity (${Checks.show((timing.lease - timing.drift).toJavaDuration())}) had run out"
        }
        if (attempt.failures.isNotEmpty()) {
            parts += "${attempt.failures.size} failed: " + attempt.failures.joinToString("; ") { it.message ?: it.master() }
        }
        if (attempt.silent > 0) parts += "${attempt.silent} not awaited"
        val what = if (kind === LockKind.Mutex) "" else "a ${kind.what} on "
        val message = "Could not acquire $what$names ($why) on ${nodes.size} master(s), quorum $quorum: " + parts.joinToString(", ")
        return LockNotAcquiredException(message, names, attempt.contended, attempt.holderRemaining?.toJavaDuration(), attempt.failures)
    }

    /**
     * Closes the connections to every master and frees the client's threads. Leases still held
     * are not released: their keys expire after their lease time. Idempotent.
     */
    override fun close() {
        if (closed.compareAndSet(false, true)) {
            scope.cancel()
            if (owned != null) owned.close() else nodes.forEach { it.close() }
        }
    }

    /** Describes this Redlock for logs: the number of masters, the quorum and the default lease time. */
    override fun toString(): String = "Redlock(${nodes.size} masters, quorum $quorum, ${config.leaseTime()} lease)"

    internal companion object {
        val LOG: org.slf4j.Logger get() = Observer.LOG

        /** The release id of a release that announces nothing (the scripts publish only a non-empty id). */
        const val QUIET = ""

        fun checkResources(resources: Array<out String>): List<String> {
            require(resources.isNotEmpty()) { "resources must name at least one resource, but none was given" }
            // One resource is the common case: a singleton list is the smallest (held per lease).
            if (resources.size == 1) return java.util.Collections.singletonList(Checks.resource(resources[0]))
            val names = resources.map { Checks.resource(it) }
            val duplicate = names.groupingBy { it }.eachCount().entries.firstOrNull { it.value > 1 }
            require(duplicate == null) { "resources must be distinct, but '${duplicate!!.key}' was given ${duplicate.value} times" }
            return names
        }
    }
}

internal fun Throwable.asMasterFailure(node: LockNode): MasterFailureException =
    this as? MasterFailureException
        ?: MasterFailureException(node.name(), MasterFailureException.Kind.ERROR, message ?: javaClass.simpleName, this)

/** Awaits a future without letting the caller's cancellation cancel it. */
internal suspend fun <T> CompletableFuture<T>.awaitQuietly(): T = thenApply { it }.await()

private fun Duration.toJavaDurationChecked(setting: String): java.time.Duration {
    require(isFinite() && !isNegative()) { "$setting must be a finite, non-negative duration, but was $this" }
    return toJavaDuration()
}
