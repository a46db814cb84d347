package dev.redlock.coroutines.internal

import dev.redlock.core.LockLostException
import dev.redlock.core.RedlockClosedException
import dev.redlock.core.RedlockConfig
import dev.redlock.core.internal.Keys
import dev.redlock.core.internal.LockMath
import dev.redlock.core.internal.LockNode
import dev.redlock.core.internal.Tokens
import java.util.concurrent.CompletableFuture
import java.util.concurrent.ConcurrentHashMap
import java.util.concurrent.Executor
import java.util.concurrent.TimeUnit
import java.util.concurrent.atomic.AtomicBoolean
import java.util.concurrent.atomic.AtomicInteger
import kotlin.coroutines.ContinuationInterceptor
import kotlin.random.Random
import kotlin.time.Duration
import kotlin.time.Duration.Companion.milliseconds
import kotlin.time.toJavaDuration
import kotlin.time.toKotlinDuration
import kotlin.time.TimeSource
import kotlinx.coroutines.CoroutineDispatcher
import kotlinx.coroutines.CoroutineName
import kotlinx.coroutines.CoroutineScope
import kotlinx.coroutines.SupervisorJob
import kotlinx.coroutines.cancel
import kotlinx.coroutines.currentCoroutineContext
import kotlinx.coroutines.future.await
import kotlinx.coroutines.withContext

/**
 * The machinery behind one `Redlock`: its masters, clock, threads, lease timer, wait rooms,
 * observer and restart guard, and the operations every kind of lock shares (acquire, release,
 * close). The public handle `Redlock` holds one; the Java facade reaches it through the same
 * handle.
 */
internal class Engine(
    val config: RedlockConfig,
    nodes: List<LockNode>,
    val timeSource: TimeSource.WithComparableMarks,
    val random: Random,
    private val lettuce: LettuceMasters?,
    private val threads: EngineThreads?,
    timerDispatcher: CoroutineDispatcher,
    /** Runs the library's own coroutines, and callers that have no dispatcher of their own. */
    val workDispatcher: CoroutineDispatcher,
    offload: Executor,
) {
    val observer = Observer(nodes, config.metrics(), offload)
    val masters = Masters(nodes, observer, timeSource, config.restartGuard().toMillis())
    val quorum: Int = LockMath.quorum(nodes.size)

    /** The one node of a backend that is not Redis (files, PostgreSQL), for messages that speak of it rather than of masters; null for a Redlock. */
    @OptIn(dev.redlock.coroutines.InternalRedlockApi::class)
    val backend: LockNode? = nodes.singleOrNull()?.takeIf { it is dev.redlock.coroutines.spi.BackendNode }
    val defaults: Timing = Timing.of(config)

    /** The library's own coroutines (the lease timer, renewal calls): cancelled by [close]. */
    val scope = CoroutineScope(SupervisorJob() + workDispatcher + CoroutineName("redlock"))
    val timer = LeaseTimer(this, timerDispatcher, scope)
    val rooms = WaitRooms(nodes, config.nodeTimeout())

    /** Whether a release may hand a mutex to the next waiter of this process in one call per master: every master runs the hand-off script. */
    val handsOff: Boolean = nodes.all { it.handsOff() }

    /** Sees every answer of an acquire or extend fan-out (on I/O threads): tracks which masters fail. */
    val acquireAnswers: (Answer<*>) -> Unit = { observe(it, "acquire") }
    val extendAnswers: (Answer<*>) -> Unit = { observe(it, "extend") }

    /** What the masters push about held and waited-for keys. */
    val invalidations = Invalidations(this)

    /** Leases held in this process (granted, not yet released or lost): what [close] releases. */
    private val live: MutableSet<RedlockLease> = ConcurrentHashMap.newKeySet()
    private val closed = AtomicBoolean()
    private val acquiring = AtomicInteger()
    private val drained = CompletableFuture<Void?>()

    val isClosed: Boolean get() = closed.get()

    /** How many leases are held in this process (for tests: a lease nobody received still counts). */
    val liveLeases: Int get() = live.size

    init {
        if (config.keyTracking()) invalidations.start()
        if (nodes.size % 2 == 0) {
            Observer.LOG.warn(
                "Redlock over {} masters: an even number tolerates no more failed masters ({}) than {} would; an odd number makes the most of every server",
                nodes.size, nodes.size - quorum, nodes.size - 1,
            )
        }
    }

    /**
     * Completes once every master's first connection is open (or failed): calls that may wait
     * wait for it, within their wait time, instead of sending attempts that could only time out
     * while the connections are still opening.
     */
    val warmedUp: CompletableFuture<Void?> = CompletableFuture.allOf(*nodes.map { node ->
        node.warmUp(config.nodeTimeout().multipliedBy(20)).handle { _, e ->
            if (e != null && !closed.get()) {
                Observer.LOG.warn(
                    "Redlock master {} is not reachable at start-up ({}); locks work while a majority of the {} masters answers",
                    node.name(), e.message, nodes.size,
                )
            }
            null
        }
    }.toTypedArray()).thenApply { null }

    /**
     * Until when a call may wait for the first connections: a new Redlock's first connect timeout.
     * After that, no call ever waits for them.
     */
    private val warmUpUntil = timeSource.markNow() + LettuceMasters.connectTimeout(config).toKotlinDuration()

    /**
     * Waits for the masters' first connections, at most [limit], or longer while the Redlock is new
     * (until its first connect timeout has passed): a call made right after creating a Redlock,
     * even a single attempt, then finds its connections open instead of timing out on them.
     * Returns at once once they are open.
     */
    suspend fun awaitWarmUp(limit: Duration) {
        if (warmedUp.isDone) return
        val wait = maxOf(limit, -warmUpUntil.elapsedNow())
        // Awaited quietly: await() cancels the future it waits for when its caller is cancelled, and
        // this one is shared by every call waiting for the connections, which would all fail at
        // once with a CancellationException of their own (and their coroutines end as if cancelled).
        if (wait > Duration.ZERO) kotlinx.coroutines.withTimeoutOrNull(wait) { warmedUp.awaitQuietly() }
    }

    private fun observe(answer: Answer<*>, operation: String) {
        val failure = answer.failure
        if (failure == null) observer.answered(answer.node)
        else observer.failed(answer.node, operation, failure.asMasterFailure(masters.nodes[answer.node]))
    }

    /**
     * Runs [block] where user code may run: on the caller's dispatcher, or on the work pool when
     * the caller has none (or an unconfined one), since the engine's resumptions would otherwise
     * run the caller's code on a Redis client's I/O thread.
     */
    suspend inline fun <T> onCallerSafeThread(crossinline block: suspend () -> T): T {
        val context = currentCoroutineContext()
        val interceptor = context[ContinuationInterceptor]
        val dispatches = interceptor is CoroutineDispatcher && interceptor.isDispatchNeeded(context)
        return if (dispatches) block() else withContext(workDispatcher) { block() }
    }

    fun checkOpen() {
        if (closed.get()) throw closedException()
    }

    fun closedException() = RedlockClosedException(
        if (backend != null) "these locks (${backend.name()}) are closed; create new ones to take locks"
        else "this Redlock is closed; create a new one to take locks",
    )

    /**
     * Acquires a lease of [kind] on [resources], waiting up to the wait time unless [once].
     * Returns null only when [once] and another holder has the lock. See [Acquisition].
     */
    suspend fun acquire(
        resources: Array<out String>,
        leaseTime: Duration?,
        waitTime: Duration?,
        once: Boolean,
        fencing: Boolean?,
        kind: LockKind,
    ): RedlockLease? {
        checkOpen()
        val names = checkResources(resources)
        require(kind.multiResource || names.size == 1) { "a ${kind.what} holds one resource, but ${names.size} were given: $names" }
        checkClusterSlots(names)
        val timing = Timing.of(config, leaseTime, if (once) Duration.ZERO else waitTime, defaults)
        val fenced = fencing ?: (config.fencing() && kind.fenceable)
        require(!fenced || kind.fenceable) { "fencing is for locks with one holder at a time (locks and write locks), but was asked for a ${kind.what}" }
        acquiring.incrementAndGet()
        try {
            return Acquisition(this, kind, names, timing, fenced, once).run()
        } finally {
            if (acquiring.decrementAndGet() == 0 && closed.get()) drained.complete(null)
        }
    }

    /**
     * On a Redis Cluster master the keys of one lease must live in one hash slot (a script runs on
     * one slot's primary): refuses, naming the resources and their slots, a lease whose resources
     * hash to several, or whose lock key cannot carry a hash tag.
     */
    private fun checkClusterSlots(names: List<String>) {
        val cluster = masters.nodes.firstOrNull { it.cluster() } ?: return
        val keys = names.map { Keys.lock(config.keyPrefix(), it) }
        for ((i, key) in keys.withIndex()) {
            require(Keys.taggable(key)) {
                "resource '${names[i]}' cannot be locked on the Redis Cluster master ${cluster.name()}: its key '$key' " +
                    "starts with '}', so its keys could not share one hash slot; use a keyPrefix or a resource name that does not"
            }
        }
        val slots = keys.map { Keys.slot(Keys.onCluster(it)) }
        require(slots.distinct().size == 1) {
            "resources ${names.indices.joinToString(", ") { "'${names[it]}' (slot ${slots[it]})" }} hash to different slots of " +
                "the Redis Cluster master ${cluster.name()}; one lock's resources must share a slot there: give them a common " +
                "hash tag at the start, like '{order-42}:payment' and '{order-42}:stock', or lock them one by one"
        }
    }

    /**
     * Asks every master how it stands (one probe each, at once, bounded by the node timeout) and
     * what follows for its votes; what a probe finds about the restart guard counts for later
     * acquisitions too.
     */
    suspend fun checkMasters(): List<dev.redlock.core.MasterStatus> {
        checkOpen()
        // A health check on a Redlock just created waits for its first connections (bounded).
        awaitWarmUp(Duration.ZERO)
        val timeout = defaults.nodeTimeout
        val probes = masters.nodes.map { it.probe(timeout) }
        CompletableFuture.allOf(*probes.toTypedArray()).handle { _, _ -> null }.await()
        return masters.nodes.indices.map { i ->
            val answer = masters.answer(i, probes[i].handle { age, _ -> age }.join(), probes[i].handle { _, e -> e }.join())
            val failure = answer.failure as dev.redlock.core.MasterFailureException?
            when {
                failure?.kind() == dev.redlock.core.MasterFailureException.Kind.DUPLICATE ->
                    dev.redlock.core.MasterStatus(masters.nodes[i].name(), dev.redlock.core.MasterStatus.State.DUPLICATE, java.time.Duration.ZERO, failure)
                failure != null -> {
                    observer.failed(i, "probe", failure)
                    dev.redlock.core.MasterStatus(masters.nodes[i].name(), dev.redlock.core.MasterStatus.State.DOWN, java.time.Duration.ZERO, failure)
                }
                else -> {
                    observer.answered(i)
                    val age = answer.value!!
                    if (masters.guardMillis > 0 && age < masters.guardMillis) {
                        val left = (masters.guardMillis - age).milliseconds
                        // A cluster master's probe reads one slot per primary: the young one's
                        // slots are guarded as acquisitions find them, the other shards keep voting.
                        if (!masters.nodes[i].cluster()) masters.guard(i, left)
                        dev.redlock.core.MasterStatus(masters.nodes[i].name(), dev.redlock.core.MasterStatus.State.RESTART_GUARDED, left.toJavaDuration(), null)
                    } else {
                        dev.redlock.core.MasterStatus(masters.nodes[i].name(), dev.redlock.core.MasterStatus.State.UP, java.time.Duration.ZERO, null)
                    }
                }
            }
        }
    }

    /** A lease was granted: it is held in this process until released or lost. */
    fun adopt(lease: RedlockLease) {
        live += lease
        invalidations.held(lease)
        // Closed while the winning attempt was under way: close() may have missed this lease.
        if (closed.get() && live.remove(lease)) {
            invalidations.ended(lease)
            lease.markLost(LockLostException.Reason.CLOSED, null)
            lease.markReleased()
            sendRelease(lease, Tokens.releaseId())
            throw closedException()
        }
    }

    /** The lease was released or lost. */
    fun forget(lease: RedlockLease) {
        if (live.remove(lease)) invalidations.ended(lease)
    }

    /**
     * Releases a granted lease on every master (not only the quorum), and hands the lock to the
     * next waiter of this process at once. Bounded by the node timeout; never throws; not
     * cancellable (the caller's cancellation does not cut the wait short).
     */
    suspend fun releaseEverywhere(lease: RedlockLease) {
        // Published with the release, so that a waiter hearing it from several masters (and from
        // this process first) acts on it once.
        val releaseId = Tokens.releaseId()
        if (handsOff && lease.kind === LockKind.Mutex && lease.keys.size == 1 && lease.loss == null) {
            val handOff = rooms.handOff(lease.keys[0], lease.token)
            if (handOff != null) {
                afterHandOff(lease, handOff, releaseId).awaitUncancellable()
                return
            }
        }
        val done = sendRelease(lease, releaseId)
        // The release calls are sent: a waiter woken now sends its attempt after them on every
        // master's connection, and each master runs them in order, so it finds the keys gone
        // without waiting for the masters' answers or their release notices.
        for (key in lease.kind.noticeKeys(lease.keys)) rooms.released(key, releaseId)
        done.awaitUncancellable()
    }

    /**
     * The release's share of a hand-off whose calls are sent: the waiter decides whether it holds
     * the lock now (and cleans up, announcing it, if not); the old lease is released either way. On
     * a master whose hand-off call failed or timed out the call may never have run, and the old key
     * may still be there: the old lease is released there as usual (after the hand-off on that
     * master's connection, so that it removes nothing a hand-off moved). A master that refused
     * holds no key of the old token. Completes (never fails) once every master answered or its
     * release did, within two node timeouts.
     */
    private fun afterHandOff(lease: RedlockLease, handOff: WaitRooms.HandOff, releaseId: String): CompletableFuture<Void?> {
        observer.handOffs.incrementAndGet()
        val calls = handOff.calls.mapIndexed { i, call ->
            call.handle { _, e -> e }.thenCompose { e ->
                if (e == null) CompletableFuture.completedFuture(null)
                else release(listOf(i), lease.kind, lease.keys, lease.token, releaseId, lease.timing, warn = true, final = true)
            }
        }
        return CompletableFuture.allOf(*calls.toTypedArray()).thenApply { null }
    }

    private fun sendRelease(lease: RedlockLease, releaseId: String): CompletableFuture<Void?> =
        release(masters.nodes.indices, lease.kind, lease.keys, lease.token, releaseId, lease.timing, warn = true, final = true)

    /**
     * Sends the release to the [targets] at once; the returned future completes (never fails) when
     * every master answered or timed out, within the node timeout. Each answer is observed as it
     * comes; a master that fails keeps the keys until they expire (within the lease time), logged
     * as a warning when [warn], else at DEBUG. [released] hears each master that answered.
     */
    fun release(
        targets: Iterable<Int>,
        kind: LockKind,
        keys: Array<String>,
        token: String,
        releaseId: String,
        timing: Timing,
        warn: Boolean,
        final: Boolean,
        released: ((Int) -> Unit)? = null,
    ): CompletableFuture<Void?> {
        val releaseKeys = kind.releaseKeys(keys, final)
        val args = kind.releaseArgs(keys, token, releaseId, final)
        val calls = targets.map { i ->
            masters.nodes[i].release(kind.releaseScript, releaseKeys, args, timing.nodeTimeout).handle { _, e ->
                if (e == null) {
                    observer.answered(i)
                    released?.invoke(i)
                } else {
                    val failure = unwrap(e).asMasterFailure(masters.nodes[i])
                    observer.failed(i, "release", failure)
                    observer.releaseFailed(keys.toList(), i, failure, timing.lease, warn)
                }
                null
            }
        }
        return CompletableFuture.allOf(*calls.toTypedArray()).thenApply { null }
    }

    /**
     * Ends everything this engine owns: waiters fail at once with [RedlockClosedException], every
     * held lease is declared lost with [LockLostException.Reason.CLOSED] (which cancels its
     * critical section) and released, acquisitions in flight finish their cleanup, and what
     * [beforeShutdown] returns completes; then the connections and threads are closed. Waits for all that, bounded (about four node timeouts),
     * unless called on a thread that the shutdown itself needs (a Redis client's I/O thread, or
     * one of the engine's own), where it only starts it. Idempotent; safe from any thread.
     */
    fun close(beforeShutdown: (() -> CompletableFuture<*>)? = null) {
        if (!closed.compareAndSet(false, true)) return
        rooms.closeAll()
        val releases = ArrayList<CompletableFuture<Void?>>()
        for (lease in live.toList()) {
            lease.markLost(LockLostException.Reason.CLOSED, null)
            if (lease.markReleased()) releases += sendRelease(lease, Tokens.releaseId())
        }
        if (acquiring.get() == 0) drained.complete(null)
        var done: CompletableFuture<*> = CompletableFuture.allOf(*releases.toTypedArray(), drained)
        if (beforeShutdown != null) done = done.handle { _, _ -> null }.thenCompose { beforeShutdown().handle { _, _ -> null } }
        if (EngineThreads.onIoOrTimerThread() || threads?.isOwnThread() == true) {
            // Not here: the work below needs this very thread (or the client's threads) to finish.
            val bounded = CompletableFuture<Void?>()
            done.whenComplete { _, _ -> bounded.complete(null) }
            threads?.timer?.schedule({ bounded.complete(null) }, closeBound(), TimeUnit.MILLISECONDS)
            bounded.whenComplete { _, _ -> shutDown() }
            return
        }
        try {
            done.get(closeBound(), TimeUnit.MILLISECONDS)
        } catch (e: InterruptedException) {
            Thread.currentThread().interrupt()
        } catch (e: Exception) {
            // Bounded: what did not finish in time expires on the masters within its lease time.
        }
        shutDown()
    }

    private fun closeBound(): Long = defaults.nodeTimeout.toMillis() * 4 + 500

    private fun shutDown() {
        scope.cancel()
        if (lettuce != null) lettuce.close() else masters.nodes.forEach { it.close() }
        threads?.close()
    }

    companion object {
        /** An engine over the masters of [config], with its own client and threads. */
        fun create(config: RedlockConfig, timeSource: TimeSource.WithComparableMarks): Engine {
            val threads = EngineThreads()
            try {
                val lettuce = LettuceMasters(config, threads.timeouts)
                return Engine(config, lettuce.nodes, timeSource, Random.Default, lettuce, threads,
                    threads.timerDispatcher, threads.workDispatcher, threads.workExecutor)
            } catch (e: Throwable) {
                threads.close()
                throw e
            }
        }

        fun checkResources(resources: Array<out String>): List<String> =
            dev.redlock.core.internal.Checks.resources(resources.asList())
    }
}
