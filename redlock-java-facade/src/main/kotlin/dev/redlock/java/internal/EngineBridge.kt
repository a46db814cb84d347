package dev.redlock.java.internal

import dev.redlock.core.LockLostException
import dev.redlock.core.RedlockClosedException
import dev.redlock.core.RedlockConfig
import dev.redlock.coroutines.DistributedLocks
import dev.redlock.coroutines.InternalRedlockApi
import dev.redlock.coroutines.Lease
import dev.redlock.coroutines.LockType
import dev.redlock.coroutines.Redlock
import dev.redlock.coroutines.acquireLease
import dev.redlock.coroutines.closeAfter
import dev.redlock.coroutines.guard
import dev.redlock.coroutines.invokeOnLoss
import dev.redlock.coroutines.runWithLease
import dev.redlock.coroutines.workDispatcher
import dev.redlock.java.LockLease
import dev.redlock.java.LockOptions
import java.util.concurrent.CompletableFuture
import java.util.concurrent.CompletionStage
import java.util.concurrent.ConcurrentHashMap
import java.util.concurrent.Executor
import java.util.concurrent.RejectedExecutionException
import java.util.concurrent.atomic.AtomicBoolean
import java.util.function.Function
import kotlin.time.Duration
import kotlin.time.toKotlinDuration
import kotlinx.coroutines.CancellationException
import kotlinx.coroutines.CoroutineName
import kotlinx.coroutines.CoroutineScope
import kotlinx.coroutines.CoroutineStart
import kotlinx.coroutines.Job
import kotlinx.coroutines.SupervisorJob
import kotlinx.coroutines.cancel
import kotlinx.coroutines.launch

/**
 * The facade's only contact with the coroutine engine, and the same for every kind of lock and
 * every backend: every Java call becomes one coroutine over the one [DistributedLocks] (a
 * [Redlock], or locks over a backend node; on its own work pool), with the kind as a [LockType],
 * and its outcome is delivered to a `CompletableFuture` on the caller's executor. The bridge owns
 * the locks: its `close()` closes them.
 *
 * The engine's coroutines never run user code; the user's action and every completion the user
 * can observe run on the executor of the call. Signatures here use Java types only (and the
 * engine's [LockType]), so that the Java half of the facade needs no Kotlin API.
 */
@OptIn(InternalRedlockApi::class)
internal class EngineBridge(private val redlock: DistributedLocks) : AutoCloseable {
    /** A bridge over a new Redlock on the masters of [config]. */
    constructor(config: RedlockConfig) : this(Redlock(config))

    /** Parent of every call and keeper; what is left of them when the Redlock closes is cancelled. */
    private val calls = SupervisorJob()
    private val scope = CoroutineScope(calls + redlock.workDispatcher + CoroutineName("redlock-java"))

    /** Leases from `acquire` not yet released: their keepers end with them. */
    private val held: MutableSet<BridgedLease> = ConcurrentHashMap.newKeySet()
    private val closed = AtomicBoolean()

    /** The Redlock's configuration; other backends have none. */
    val config: RedlockConfig
        get() = (redlock as? Redlock)?.config
            ?: throw UnsupportedOperationException("this AsyncRedlock runs over $redlock, which has no RedlockConfig: its settings are the backend's own")

    /** A started call: the user's future, and one that completes once all its work, cleanup included, is over. */
    class Call<T>(val result: CompletableFuture<T>, val settled: CompletableFuture<Void?>)

    /**
     * `withLock` and its siblings: [action] runs on [executor] under a lease of [type], the call's
     * future completes on [executor], the lease's futures complete on [leaseExecutor]. [call] names
     * the call in messages.
     */
    fun <T> withLease(
        type: LockType,
        options: LockOptions,
        executor: Executor,
        leaseExecutor: Executor,
        call: String,
        action: Function<in LockLease, out CompletionStage<T>?>,
    ): Call<T> =
        launchCall(executor, null) {
            var bridged: BridgedLease? = null
            try {
                redlock.runWithLease(type, options.names(), options.lease(), options.wait(), options.autoRenew(), options.fencingFor(type), call) { lease ->
                    val facadeLease = BridgedLease(this@EngineBridge, lease, leaseExecutor)
                    bridged = facadeLease
                    // Completes lost() while the action runs (no coroutine of its own: a held lock
                    // costs little); the engine's own guard cancels the block.
                    val watch = lease.invokeOnLoss(facadeLease::onLost)
                    try {
                        runAction(action, facadeLease, executor, type)
                    } finally {
                        watch.dispose()
                    }
                }
            } catch (e: LockLostException) {
                bridged?.onLost(e)
                throw e
            } catch (e: ActionFailure) {
                for (loss in e.suppressed.filterIsInstance<LockLostException>()) {
                    bridged?.onLost(loss)
                    addSuppressedOnce(e.original, loss)
                }
                throw e
            }
        }

    /**
     * `acquire` (waits) and `tryAcquire` ([once]; null on contention) and their siblings: the
     * lease is renewed and watched by a keeper job until released; a lease the caller no longer
     * wants (its future was completed meanwhile) is released.
     */
    fun acquire(type: LockType, options: LockOptions, executor: Executor, once: Boolean, call: String): Call<LockLease?> =
        launchCall(executor, { lease -> (lease as BridgedLease?)?.releaseAsync() }) {
            val lease = redlock.acquireLease(type, options.names(), options.lease(), options.wait(), once, options.fencingFor(type), call)
            lease?.let { adopt(it, executor, options.autoRenew()) }
        }

    /**
     * Runs [body] as a coroutine of [scope] and delivers its outcome to the call's future on
     * [executor]. Completing the future from outside (cancel, `orTimeout`, `complete`) cancels the
     * coroutine; once the body has delivered, cancelling it is a no-op. The body starts on the
     * calling thread (undispatched), so the first requests to the masters leave without a thread hop.
     */
    fun <T> launchCall(executor: Executor, dropped: ((T) -> Unit)?, body: suspend () -> T): Call<T> {
        val result = CompletableFuture<T>()
        val settled = CompletableFuture<Void?>()
        if (closed.get()) {
            result.completeExceptionally(RedlockClosedException(CLOSED))
            settled.complete(null)
            return Call(result, settled)
        }
        val job = scope.launch(start = CoroutineStart.UNDISPATCHED) {
            val value =
                try {
                    body()
                } catch (e: ActionFailure) {
                    deliver(result, executor, null, e.original)
                    return@launch
                } catch (e: CancellationException) {
                    // The user completed the future (then this delivers nothing), or the Redlock closed.
                    deliver(result, executor, null, if (closed.get()) RedlockClosedException(CLOSED) else cancellation())
                    throw e
                } catch (e: Throwable) {
                    deliver(result, executor, null, e)
                    return@launch
                }
            deliver(result, executor, value, null, dropped)
        }
        job.invokeOnCompletion { cause ->
            // A call cancelled before it could start (close() raced with it) still gets an answer.
            if (cause != null && !result.isDone) deliver(result, executor, null, RedlockClosedException(CLOSED))
            settled.complete(null)
        }
        result.whenComplete { _, _ -> job.cancel() }
        return Call(result, settled)
    }

    /**
     * Runs [block] (a release) as a coroutine of its own, not cancelled by the caller; once the
     * AsyncRedlock is closed it does not run at all (closing released every lease already).
     */
    fun launchCleanup(block: suspend () -> Unit): Job = scope.launch { block() }

    /** `checkMasters`: every master's status, delivered on [executor]. */
    fun checkMasters(executor: Executor): CompletableFuture<List<dev.redlock.core.MasterStatus>> =
        launchCall(executor, null) { redlock.checkMasters() }.result

    /** Starts a watch of a lease (a state listener): cancelled by its handle, or when the Redlock closes. */
    fun launchWatch(block: suspend () -> Unit): Job = scope.launch { block() }

    /** Stops tracking a lease that is being released. */
    fun forget(lease: BridgedLease) {
        held.remove(lease)
    }

    /**
     * Closes: the Redlock informs every running section (LockLostException CLOSED) and waiting call
     * (RedlockClosedException), releases every lease; then what is left of the calls (actions'
     * stages, keepers, watches) is cancelled and awaited, before the Redlock's threads stop.
     */
    override fun close() {
        if (!closed.compareAndSet(false, true)) return
        redlock.closeAfter {
            calls.cancel(CancellationException(CLOSED))
            val settled = CompletableFuture<Void?>()
            calls.invokeOnCompletion { settled.complete(null) }
            settled
        }
    }

    override fun toString(): String = "AsyncRedlock(" + redlock.toString().substringAfter('(')

    /**
     * Calls [action] on [executor] and waits for the stage it returns. Cancelling the wait (loss,
     * or the caller cancelling) cancels the stage, also one the action returns only later.
     */
    private suspend fun <T> runAction(
        action: Function<in LockLease, out CompletionStage<T>?>,
        lease: BridgedLease,
        executor: Executor,
        type: LockType,
    ): T {
        val returned = CompletableFuture<CompletionStage<out T>>()
        try {
            executor.execute {
                val stage =
                    try {
                        Nesting.enter(this, type, lease).use { action.apply(lease) }
                    } catch (t: Throwable) {
                        returned.completeExceptionally(t)
                        return@execute
                    }
                if (stage == null) {
                    returned.completeExceptionally(NullPointerException("the action returned null instead of a CompletionStage"))
                } else if (!returned.complete(stage)) {
                    cancelStage(stage)
                }
            }
        } catch (e: RejectedExecutionException) {
            throw ActionFailure(e)
        }
        val stage =
            try {
                returned.awaitCarried()
            } catch (e: CancellationException) {
                // Prompt cancellation: the wait can end in cancellation even though the action had
                // just handed over its stage. That stage must be cancelled too, or it runs on.
                if (returned.isDone && !returned.isCompletedExceptionally) cancelStage(returned.join())
                throw e
            }
        return stage.awaitCarried()
    }

    /** Wraps a lease of the engine for `acquire`: tracked, renewed and watched by a keeper job. */
    private fun adopt(lease: Lease, executor: Executor, renew: Boolean): BridgedLease {
        val bridged = BridgedLease(this, lease, executor)
        held += bridged
        bridged.keeper = scope.launch {
            lease.guard(renew)?.let(bridged::onLost)
        }
        return bridged
    }

    /** A plain JDK cancellation for the user's future: the coroutine's own one is a kotlinx type. */
    private fun cancellation(): java.util.concurrent.CancellationException =
        java.util.concurrent.CancellationException("the call was cancelled")

    private companion object {
        const val CLOSED = "this AsyncRedlock is closed; create a new one to take locks"

        fun LockOptions.names(): Array<String> = resources().toTypedArray()

        fun LockOptions.lease(): Duration? = leaseTime().orElse(null)?.toKotlinDuration()

        fun LockOptions.wait(): Duration? = waitTime().orElse(null)?.toKotlinDuration()

        /** The fencing choice: the call's, else the config's where the kind can carry a token. */
        fun LockOptions.fencingFor(type: LockType): Boolean? = fencing().orElse(null) ?: if (type.fenceable) null else false
    }
}
