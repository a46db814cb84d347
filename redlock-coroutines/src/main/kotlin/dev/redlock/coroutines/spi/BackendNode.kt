package dev.redlock.coroutines.spi

import dev.redlock.core.MasterFailureException
import dev.redlock.core.internal.AcquireReply
import dev.redlock.core.internal.LockNode
import dev.redlock.core.internal.Script
import dev.redlock.core.internal.Tokens
import dev.redlock.coroutines.InternalRedlockApi
import dev.redlock.coroutines.internal.EngineThreads
import dev.redlock.coroutines.internal.KindDecoding
import java.time.Duration
import java.util.concurrent.CompletableFuture
import java.util.concurrent.RejectedExecutionException
import java.util.concurrent.ScheduledFuture
import java.util.concurrent.ScheduledThreadPoolExecutor
import java.util.concurrent.TimeUnit
import java.util.concurrent.TimeoutException
import java.util.concurrent.ConcurrentHashMap
import java.util.concurrent.atomic.AtomicBoolean
import java.util.concurrent.atomic.AtomicInteger
import java.util.concurrent.atomic.AtomicReference
import org.slf4j.LoggerFactory

/**
 * The base of every node that is not Redis (a directory of lock files, a PostgreSQL database):
 * the engine talks to it as to one Redis master, and it turns the engine's script calls into the
 * typed operations below, which a backend implements. The engine runs over one such node (N = 1)
 * exactly as over Redis masters: acquire attempts, waiting, validity, renewal every third of the
 * lease time, loss, release and close are the engine's; the node only keeps holds.
 *
 * ## What a backend implements
 * - [openStore]: check that the store is usable (called once, at start-up, ahead of the first lock).
 * - [acquireHold]: one attempt, all or nothing, never waiting for the lock.
 * - [extendHolds]: per lease, whether it is still held; when it is, renew it.
 * - [releaseHold]: give up a hold of a token; tell waiters.
 * - [confirmFencing]: whether a fenced lease is still held with its fencing number.
 * - [checkStore]: a light health probe.
 * - [watchReleases] / [unwatchReleases] (optional): deliver release notices of a lock to waiters
 *   of this node with [releaseNoticed].
 * - [closeStore]: give up every hold still held and free what the node opened.
 * - [lossCheckPeriod] / [findLostHolds] (optional): a periodic check, on the node's first stripe, of
 *   every hold at once; or [holdsLost] from any thread when the backend learns of a loss by itself.
 *
 * ## Leases and expiry (the rules that keep the engine's guarantees)
 * - A hold lasts [AcquireRequest.leaseMillis] from the moment the node granted it, or from the
 *   moment of its latest successful extend, unless extended again. This base class keeps that
 *   timer: when it runs out, it calls [releaseHold] for the lease itself (with a release notice),
 *   as Redis lets a key expire; a lease from `acquire()` that its holder forgets thus frees the
 *   lock after its lease time. The engine's own validity (measured before the request was sent,
 *   minus a drift allowance) always ends before the node's timer does.
 * - [extendHolds] answers false for a lease the backend no longer holds for any reason (released,
 *   expired, file deleted or replaced, session ended): it never takes the lock again for it (that
 *   would hide a gap in which another holder could have held it). A false answer makes the engine
 *   declare the lease lost and cancel its critical section. Answering false means the backend has
 *   let go of whatever it kept for that lease.
 * - Without more, a hold the store loses on its own (a session ended, a file deleted) is found by
 *   the next renewal, a third of the lease time later at most. A backend that can tell sooner
 *   reports it with [holdsLost] (or answers [findLostHolds] every [lossCheckPeriod]): the engine
 *   then checks those leases at once with [extendHolds] (lease time 0), by the path that Redis key
 *   tracking's invalidations take, and declares each lost that the answer says is not held. A
 *   report is a hint, never proof: a lease [extendHolds] still finds held stays held.
 * - A release of a token that is not held (already released, expired, or never granted: an attempt
 *   that timed out is released to be sure) does nothing and answers false.
 * - Tokens are unique: a request never reuses the token of another lease, except that one
 *   acquisition retries with the same token after releasing its earlier attempt.
 *
 * ## Threads
 * Operations may block (file and JDBC I/O): they never run on the engine's timer or work threads,
 * but on this node's own daemon threads, its stripes (named after the node). With `stripes = 1`
 * (the default) there is one: every operation runs on it, one at a time, in the order the engine
 * issued them. With more, operations of different tokens may run at the same time, and a backend
 * must be safe for that (its own shared state, and the store's arbitration between them); the
 * rules that hold for any number of stripes:
 * - Every operation of a lease ([acquireHold], [extendHolds], [releaseHold], [confirmFencing],
 *   and the expiry's [releaseHold]) runs on the stripe of its lock: the one chosen by the hash of
 *   its first lock key, which is the same for every operation of its token. So one token's
 *   operations run one at a time, in the order the engine issued them (a release issued after an
 *   acquire of the same token runs after it), and what a backend keeps for one token (a
 *   connection, a file handle) is never used by two threads at once. Operations on one lock, of
 *   any token, also keep their order: a waiter's attempt that the engine sends right behind a
 *   release of the same lock runs after it and finds the lock free. Leases whose first keys differ
 *   may run at the same time (for a lease on several keys, order is kept with the leases of its
 *   first key only; a waiter refused by a release still under way tries again on the release's
 *   notice or after its retry pause).
 * - An extend batch covering tokens of several stripes is split: [extendHolds] is called once per
 *   stripe with that stripe's leases, each on its stripe, and the answers are put back in the
 *   batch's order; the call fails (as a whole) when any part fails or is not done within its
 *   timeout.
 * - [openStore], [checkStore] and [findLostHolds] run on the first stripe, between its other
 *   operations; they may run at the same time as operations of other stripes.
 * - [watchReleases] and [unwatchReleases] of one lock run on the stripe of its key, in the order
 *   issued (a watch issued before an unwatch of the same lock runs before it).
 * - [closeStore] runs once, on one of the stripes, after every stripe has run the operations
 *   issued before [close]; operations issued later fail. The stripes then stop.
 *
 * Each operation is bounded by the `timeout` it is given: the engine stops waiting for it then (it
 * counts as failed with [MasterFailureException.Kind.TIMEOUT]), but the operation itself keeps its
 * stripe until it returns (later operations of that stripe wait behind it), so a backend bounds its
 * I/O by the timeout too (a JDBC query timeout, for example). [releaseNoticed] and [holdsLost] may
 * be called from any thread.
 *
 * ## Failures
 * An operation that cannot be done throws. A [MasterFailureException] is passed on as it is
 * (choose its kind: [PERMISSION][MasterFailureException.Kind.PERMISSION] or
 * [AUTHENTICATION][MasterFailureException.Kind.AUTHENTICATION] are permanent and fail an
 * acquisition at once, [UNREACHABLE][MasterFailureException.Kind.UNREACHABLE] is retried within
 * the wait time); anything else becomes one of kind [ERROR][MasterFailureException.Kind.ERROR]
 * with the exception as its cause. Messages name the node and what was wrong.
 *
 * The node is not a Redis Cluster, does no key tracking of its own (only [holdsLost]), and has no restart guard (a backend
 * whose store forgets holds on a restart must say so in its documentation).
 *
 * @param name the node's name in messages, without secrets (for example `file:/var/lock/app`)
 * @param serverId what tells this store apart from every other (for example the real path of the
 *   directory, or the database's system identifier and name)
 * @param stripes how many threads run operations, locks spread over them by hash (see Threads):
 *   1 (the default) runs every operation on one thread, in issue order; at least 1, at most 256
 * @suppress Internal API (backend SPI): hidden from the API documentation.
 */
@InternalRedlockApi
public abstract class BackendNode protected constructor(
    private val name: String,
    private val serverId: String,
    stripes: Int = 1,
) : LockNode {
    init {
        require(stripes in 1..MAX_STRIPES) { "stripes must be between 1 and $MAX_STRIPES, but was $stripes" }
    }

    /**
     * The node's threads: one single-thread executor per stripe. The expiry timers of a token are
     * scheduled on its stripe's executor, so they run there, between its other operations.
     */
    private val executors: Array<ScheduledThreadPoolExecutor> = run {
        val node = COUNT.incrementAndGet()
        Array(stripes) { i ->
            val threadName = if (stripes == 1) "redlock-node-$node-$name" else "redlock-node-$node.$i-$name"
            ScheduledThreadPoolExecutor(1) { task ->
                Thread({ EngineThreads.markLibraryThread(); task.run() }, threadName).apply { isDaemon = true }
            }.apply {
                removeOnCancelPolicy = true
                setExecuteExistingDelayedTasksAfterShutdownPolicy(false)
            }
        }
    }

    private val closed = AtomicBoolean(false)

    @Volatile
    private var listener: LockNode.ReleaseListener? = null

    /** The engine's listener for changes of held keys: where [holdsLost] reports go. */
    @Volatile
    private var changes: LockNode.TrackingListener? = null

    /** The periodic [findLostHolds] task (on the first stripe), started with the first hold when [lossCheckPeriod] is set. */
    private val lossCheck = AtomicReference<ScheduledFuture<*>?>(null)

    /**
     * The holds this node granted and has not given up, by token, with their expiry. An entry is
     * added, changed and removed only on its token's stripe; the loss check and close read them all.
     */
    private val holds = ConcurrentHashMap<String, Hold>()

    private class Hold(val lease: HeldLease) {
        /** Set on the token's stripe only; read by close. */
        @Volatile
        var expiry: ScheduledFuture<*>? = null
    }

    // --- What a backend implements (called on the node's stripes: see Threads in the class documentation) ---

    /**
     * Checks that the store is usable, connecting or creating what it needs; called once, ahead of
     * the first lock (a lock may still come first: be ready for any operation at any time).
     *
     * @param timeout the bound on the call
     * @throws MasterFailureException naming what is wrong (kind PERMISSION for a store that
     *   exists but may not be used, UNREACHABLE for one that cannot be reached now)
     */
    protected abstract fun openStore(timeout: Duration)

    /**
     * One attempt to take [request]'s lease: all of its keys or none, at once. Never waits for
     * the lock: answer [AcquireResult.Refused] while another holder has it.
     *
     * For [LockMode.MUTEX] every key is exclusive; [LockMode.READ] is shared with other readers
     * and excluded by a writer; [LockMode.WRITE] is excluded by other writers and by readers;
     * [LockMode.PERMIT] is admitted while fewer than [AcquireRequest.permits] holders hold the
     * semaphore (answer [AcquireResult.PermitsDiffer] when its holders use another number). With
     * [AcquireRequest.fencing], answer [AcquireResult.Granted] with a fencing number larger than
     * any given before for any of the keys, kept durably (see [confirmFencing]).
     *
     * @param request the lease asked for
     * @param timeout the bound on the call
     * @return the answer
     */
    protected abstract fun acquireHold(request: AcquireRequest, timeout: Duration): AcquireResult

    /**
     * Per lease, whether it is still held; for each one that is and when [leaseMillis] is above
     * 0, renews it (the base class restarts its expiry). [leaseMillis] 0 only checks. Never takes
     * a lock again for a lease that lost it.
     *
     * @param leases the leases (one renewal batch; several modes may be mixed)
     * @param leaseMillis the lease time to renew to, or 0 to only check
     * @param timeout the bound on the call
     * @return one answer per lease, in order
     */
    protected abstract fun extendHolds(leases: List<HeldLease>, leaseMillis: Long, timeout: Duration): BooleanArray

    /**
     * Gives up [lease]'s hold if this token holds it; a token that holds nothing is no error.
     * When [notice] is not null and something was released, tell the waiters of the lock in
     * every process the backend can reach (for example `NOTIFY`), and in this process by calling
     * [releaseNoticed] on the nodes that watch it; a waiter that misses a notice retries after
     * its retry pause anyway.
     *
     * @param lease the lease
     * @param final false between two attempts of one acquisition of a [LockMode.WRITE] lease (a
     *   waiting writer's mark, for backends with writer priority, then stays); true otherwise
     * @param notice the release notice to publish, or null to announce nothing (an attempt's
     *   quiet clean-up)
     * @param timeout the bound on the call
     * @return whether something was held and released
     */
    protected abstract fun releaseHold(lease: HeldLease, final: Boolean, notice: String?, timeout: Duration): Boolean

    /**
     * Whether [lease] is still held and its keys' fencing counters are at least [fence] (raise
     * them to it if they are below). With one store, the number [acquireHold] gave is already
     * durable, so this is mostly a check that the lease is held.
     *
     * @param lease a [LockMode.MUTEX] or [LockMode.WRITE] lease granted with fencing
     * @param fence its fencing number
     * @param timeout the bound on the call
     * @return whether the lease is held with that fencing number
     */
    protected abstract fun confirmFencing(lease: HeldLease, fence: Long, timeout: Duration): Boolean

    /**
     * A light health probe: returns when the store answers, throws [MasterFailureException]
     * saying why when it does not.
     *
     * @param timeout the bound on the call
     */
    protected abstract fun checkStore(timeout: Duration)

    /**
     * Starts delivering release notices of [family]'s lock [key] to [releaseNoticed] (one watch
     * per lock until [unwatchReleases]). The default does nothing: the backend's waiters then
     * learn of releases in other processes only by their retry pause (releases in this process
     * wake them at once either way).
     *
     * @param family the lock's family
     * @param key the lock key
     * @param timeout the bound on the call
     */
    protected open fun watchReleases(family: LockFamily, key: String, timeout: Duration) {}

    /**
     * Stops delivering release notices of [family]'s lock [key]. The default does nothing.
     *
     * @param family the lock's family
     * @param key the lock key
     * @param timeout the bound on the call
     */
    protected open fun unwatchReleases(family: LockFamily, key: String, timeout: Duration) {}

    /**
     * How often [findLostHolds] runs while this node holds something, or null (the default) for
     * never. Read once, at the first hold.
     */
    protected open val lossCheckPeriod: Duration? get() = null

    /**
     * Which of [leases] (every lease this node holds now) the store no longer holds, found without
     * changing anything: for example one query for the sessions of all holds. Runs on the node's
     * first stripe every [lossCheckPeriod] while something is held, between that stripe's
     * operations (with several stripes, other tokens' operations may run meanwhile); the
     * leases it returns are checked by the engine at once (see [holdsLost]). A failure is logged and
     * the next round tries again. The default finds none.
     *
     * @param leases the leases held now
     * @param timeout the bound on the call ([lossCheckPeriod], at most a second)
     * @return the leases found lost (a subset of [leases])
     */
    protected open fun findLostHolds(leases: List<HeldLease>, timeout: Duration): Collection<HeldLease> = emptyList()

    /**
     * Reports that the store lost [leases]' holds (a session ended, a file was deleted): the engine
     * checks them at once with [extendHolds] (lease time 0) and declares lost, cancelling its
     * critical section, each one found not held, instead of at its next renewal. Safe from any
     * thread; quick (the check runs later on the leases' stripes). A lease that is no longer held by
     * this process, or a report before the locks started, is ignored.
     *
     * @param leases the leases whose holds are gone
     */
    protected fun holdsLost(leases: Collection<HeldLease>) {
        if (leases.isEmpty() || closed.get()) return
        changes?.invalidated(leases.flatMap { KindDecoding.trackedKeys(it) })
    }

    /**
     * Gives up every hold still held and frees what the node opened (files, connections). Called
     * once, on one of the node's stripes, when the node is closed, after every operation issued
     * before; later operations fail.
     */
    protected abstract fun closeStore()

    /**
     * Tells this node's waiters that [family]'s lock [key] was released (with [notice], the id
     * [releaseHold] was given): they try again at once. Safe from any thread; quick.
     *
     * @param family the lock's family
     * @param key the lock key
     * @param notice the release notice
     */
    protected fun releaseNoticed(family: LockFamily, key: String, notice: String) {
        listener?.released(KindDecoding.noticeKey(family, key), notice)
    }

    /** Whether [close] was called. */
    protected val isClosed: Boolean get() = closed.get()

    // --- LockNode, for the engine ---

    /** The node's name, as given. */
    final override fun name(): String = name

    /** The store's identity, as given. */
    final override fun serverId(): String = serverId

    /** Runs [openStore] on the first stripe. */
    final override fun warmUp(timeout: Duration): CompletableFuture<Void?> =
        call(0, "open", timeout) { openStore(timeout); null }

    /** Decodes an acquire script call into [acquireHold], and starts the hold's expiry when granted. */
    final override fun acquire(script: Script, keys: Array<String>, args: Array<String>, timeout: Duration): CompletableFuture<AcquireReply> {
        val request = KindDecoding.acquire(script, keys, args)
        return call(stripeOf(request.lease), "acquire", timeout) {
            when (val result = acquireHold(request, timeout)) {
                is AcquireResult.Granted -> {
                    val fence = result.fence
                    if (request.fencing && fence == null) {
                        releaseHold(request.lease, true, null, timeout)
                        throw IllegalStateException("the backend granted $request without the fencing number it asked for")
                    }
                    track(request.lease, request.leaseMillis)
                    if (fence == null) AcquireReply.GRANTED else AcquireReply(true, 0, fence, -1)
                }
                is AcquireResult.Refused -> AcquireReply.refused(result.holderRemainingMillis ?: UNKNOWN_REMAINING)
                is AcquireResult.PermitsDiffer -> AcquireReply(false, 0, -1, -1, result.holdersPermits.toLong())
            }
        }
    }

    /**
     * Decodes an extend script call into [extendHolds], and restarts the expiry of each lease still
     * held. A batch over several stripes is split by stripe; the answers come back in its order.
     */
    final override fun extend(script: Script, keys: Array<String>, args: Array<String>, timeout: Duration): CompletableFuture<BooleanArray> {
        val (leases, leaseMillis) = KindDecoding.extend(script, keys, args)
        if (executors.size == 1 || leases.size <= 1) {
            return call(if (leases.isEmpty()) 0 else stripeOf(leases[0]), "extend", timeout) { extendOn(leases, leaseMillis, timeout) }
        }
        val byStripe = leases.indices.groupBy { stripeOf(leases[it]) }
        if (byStripe.size == 1) return call(byStripe.keys.single(), "extend", timeout) { extendOn(leases, leaseMillis, timeout) }
        val parts = byStripe.map { (stripe, indices) ->
            indices to call(stripe, "extend", timeout) { extendOn(indices.map { leases[it] }, leaseMillis, timeout) }
        }
        val whole = CompletableFuture<BooleanArray>()
        CompletableFuture.allOf(*parts.map { it.second }.toTypedArray()).whenComplete { _, _ ->
            // The first part that failed (in batch order) fails the whole call, as one call that failed midway would.
            val failed = parts.firstOrNull { it.second.isCompletedExceptionally }?.second
            if (failed != null) {
                failed.whenComplete { _, e -> whole.completeExceptionally(e) }
            } else {
                val answers = BooleanArray(leases.size)
                for ((indices, part) in parts) {
                    val held = part.join()
                    for (j in indices.indices) answers[indices[j]] = held[j]
                }
                whole.complete(answers)
            }
        }
        return whole
    }

    /** One stripe's part of an extend batch, on that stripe. */
    private fun extendOn(leases: List<HeldLease>, leaseMillis: Long, timeout: Duration): BooleanArray {
        val held = extendHolds(leases, leaseMillis, timeout)
        check(held.size == leases.size) { "the backend answered ${held.size} times for ${leases.size} leases" }
        for (i in leases.indices) {
            when {
                !held[i] -> untrack(leases[i].token)
                leaseMillis > 0 -> track(leases[i], leaseMillis)
            }
        }
        return held
    }

    /** Decodes a release script call into [releaseHold], and ends the hold's expiry. */
    final override fun release(script: Script, keys: Array<String>, args: Array<String>, timeout: Duration): CompletableFuture<Long> {
        val (lease, final, notice) = KindDecoding.release(script, keys, args)
        return call(stripeOf(lease), "release", timeout) {
            untrack(lease.token)
            if (releaseHold(lease, final, notice, timeout)) 1L else 0L
        }
    }

    /** Decodes a fence script call into [confirmFencing]. */
    final override fun confirmFence(keys: Array<String>, token: String, fence: Long, timeout: Duration): CompletableFuture<Boolean> {
        val lease = KindDecoding.fence(keys, token)
        return call(stripeOf(lease), "confirm fence", timeout) { confirmFencing(lease, fence, timeout) }
    }

    /** Runs [checkStore] on the first stripe; the age it answers is "old" (there is no restart guard on backends). */
    final override fun probe(timeout: Duration): CompletableFuture<Long> =
        call(0, "probe", timeout) { checkStore(timeout); Long.MAX_VALUE }

    final override fun onRelease(listener: LockNode.ReleaseListener) {
        this.listener = listener
    }

    final override fun watch(key: String, timeout: Duration): CompletableFuture<Void?> {
        val (family, lockKey) = KindDecoding.notice(key)
        return call(stripeOf(lockKey), "watch", timeout) { watchReleases(family, lockKey, timeout); null }
    }

    final override fun unwatch(key: String, timeout: Duration): CompletableFuture<Void?> {
        val (family, lockKey) = KindDecoding.notice(key)
        return call(stripeOf(lockKey), "unwatch", timeout) { unwatchReleases(family, lockKey, timeout); null }
    }

    /** Keeps the engine's listener: [holdsLost] reports go to it as invalidations of the leases' keys. */
    final override fun onTracking(listener: LockNode.TrackingListener) {
        changes = listener
    }

    /** Always false: backends do no key tracking (losses they find come through [holdsLost]). */
    final override fun tracking(): Boolean = false

    /** True until the node is closed. */
    override fun connected(): Boolean = !closed.get()

    /**
     * Closes the node: every stripe runs the operations already issued, then [closeStore] runs on
     * the stripe that finished last, and every stripe shuts down; later calls fail. Never blocks.
     */
    final override fun close() {
        if (!closed.compareAndSet(false, true)) return
        val stripesLeft = AtomicInteger(executors.size)
        for (executor in executors) {
            try {
                executor.execute { if (stripesLeft.decrementAndGet() == 0) closeOnLastStripe() }
            } catch (e: RejectedExecutionException) {
                // Not expected (only this call shuts the stripes down): counted, so that the store is still closed.
                if (stripesLeft.decrementAndGet() == 0) closeOnLastStripe()
            }
        }
        for (executor in executors) executor.shutdown()
    }

    /** Runs once, on the stripe whose operations issued before [close] ended last: the others are done. */
    private fun closeOnLastStripe() {
        lossCheck.getAndSet(null)?.cancel(false)
        for (hold in holds.values) hold.expiry?.cancel(false)
        holds.clear()
        try {
            closeStore()
        } catch (e: Throwable) {
            LOG.warn("Closing the lock backend {} failed: {}", name, e.toString(), e)
        }
    }

    /** Closes the node and waits, at most [timeout] in all, for every stripe (and [closeStore]) to finish (not when called on a node's or engine's own thread). */
    final override fun closeAndWait(timeout: Duration) {
        close()
        if (EngineThreads.onIoOrTimerThread()) return
        val deadline = System.nanoTime() + timeout.toNanos()
        for (executor in executors) {
            val left = deadline - System.nanoTime()
            if (left <= 0 || !executor.awaitTermination(left, TimeUnit.NANOSECONDS)) return
        }
    }

    /** Describes the node for logs. */
    override fun toString(): String = "${javaClass.simpleName}($name)"

    // --- Machinery ---

    /** The stripe of lock key [key]: a spread of its hash. */
    internal fun stripeOf(key: String): Int {
        if (executors.size == 1) return 0
        val h = key.hashCode()
        return Math.floorMod(h xor (h ushr 16), executors.size)
    }

    /** The stripe of [lease]: its first lock key's (the same for every operation of its token). */
    private fun stripeOf(lease: HeldLease): Int = stripeOf(lease.keys[0])

    /** How many stripes run this node's operations. */
    internal val stripeCount: Int get() = executors.size

    /**
     * Runs [op] on stripe [stripe]; the returned future fails with a [MasterFailureException]
     * when [op] throws, or of kind TIMEOUT after [timeout] (the operation still runs to its end).
     */
    private fun <R> call(stripe: Int, what: String, timeout: Duration, op: () -> R): CompletableFuture<R> {
        val result = CompletableFuture<R>()
        if (closed.get()) {
            result.completeExceptionally(closedFailure())
            return result
        }
        val done = CompletableFuture<R>()
        try {
            executors[stripe].execute {
                try {
                    done.complete(op())
                } catch (e: Throwable) {
                    done.completeExceptionally(failure(what, e))
                }
            }
        } catch (e: RejectedExecutionException) {
            result.completeExceptionally(closedFailure())
            return result
        }
        done.orTimeout(timeout.toMillis().coerceAtLeast(1), TimeUnit.MILLISECONDS).whenComplete { value, e ->
            when (e) {
                null -> result.complete(value)
                is TimeoutException -> result.completeExceptionally(
                    MasterFailureException(name, MasterFailureException.Kind.TIMEOUT, "$what did not finish within ${timeout.toMillis()} ms", null),
                )
                else -> result.completeExceptionally(e)
            }
        }
        return result
    }

    private fun failure(what: String, e: Throwable): MasterFailureException =
        e as? MasterFailureException ?: MasterFailureException(name, MasterFailureException.Kind.ERROR, "$what failed: ${e.message ?: e.javaClass.name}", e)

    private fun closedFailure() = MasterFailureException(name, MasterFailureException.Kind.UNREACHABLE, "the lock backend is closed", null)

    /** (Re)starts [lease]'s expiry: [leaseMillis] from now, on its stripe. On the token's stripe only. */
    private fun track(lease: HeldLease, leaseMillis: Long) {
        val hold = holds.computeIfAbsent(lease.token) { Hold(lease) }
        hold.expiry?.cancel(false)
        try {
            hold.expiry = executors[stripeOf(lease)].schedule({ expire(hold) }, leaseMillis, TimeUnit.MILLISECONDS)
        } catch (e: RejectedExecutionException) {
            // Closing (a grant that was in flight): closeStore gives up every hold, this one too.
            return
        }
        if (lossCheck.get() == null) {
            val period = lossCheckPeriod
            if (period != null && !period.isNegative && !period.isZero) {
                synchronized(lossCheck) {
                    if (lossCheck.get() == null && !closed.get()) {
                        lossCheck.set(executors[0].scheduleWithFixedDelay(::checkForLosses, period.toMillis(), period.toMillis(), TimeUnit.MILLISECONDS))
                    }
                }
            }
        }
    }

    /** One round of [findLostHolds] over every hold (on the first stripe); its findings go to [holdsLost]. */
    private fun checkForLosses() {
        if (closed.get() || holds.isEmpty()) return
        val leases = holds.values.map { it.lease }
        val bound = lossCheckPeriod?.takeIf { it < LOSS_CHECK_MAX_TIMEOUT } ?: LOSS_CHECK_MAX_TIMEOUT
        val lost = try {
            findLostHolds(leases, bound)
        } catch (e: Throwable) {
            // Said once per run of failures (the check runs several times a second).
            if (!closed.get() && !lossCheckFailing) LOG.warn("The lock backend {} could not check its {} holds for losses (renewals still check them): {}", name, leases.size, e.toString())
            lossCheckFailing = true
            return
        }
        if (lossCheckFailing) LOG.info("The lock backend {} checks its holds for losses again", name)
        lossCheckFailing = false
        holdsLost(lost)
    }

    /** Whether the last [findLostHolds] failed (first stripe only). */
    private var lossCheckFailing = false

    /** On the token's stripe only. */
    private fun untrack(token: String) {
        holds.remove(token)?.expiry?.cancel(false)
    }

    /** The lease was not extended within its lease time: the node gives it up, as Redis lets a key expire. On the token's stripe. */
    private fun expire(hold: Hold) {
        if (!holds.remove(hold.lease.token, hold)) return
        try {
            releaseHold(hold.lease, true, Tokens.releaseId(), EXPIRY_TIMEOUT)
        } catch (e: Throwable) {
            LOG.warn("The lock backend {} could not give up the expired lease {}: {}", name, hold.lease, e.toString(), e)
        }
    }

    private companion object {
        val LOG = LoggerFactory.getLogger(BackendNode::class.java)
        val COUNT = AtomicInteger()
        val EXPIRY_TIMEOUT: Duration = Duration.ofSeconds(5)
        val LOSS_CHECK_MAX_TIMEOUT: Duration = Duration.ofSeconds(1)

        /** The most stripes a node may have. */
        const val MAX_STRIPES = 256

        /** An acquire reply's "remaining time unknown": no retry hint (the engine pauses by its retry delay). */
        const val UNKNOWN_REMAINING = -2L
    }
}
