package dev.redlock.java.internal

import dev.redlock.core.LockLostException
import dev.redlock.core.RedlockConfig
import dev.redlock.coroutines.InternalRedlockApi
import dev.redlock.coroutines.Lease
import dev.redlock.coroutines.LockType
import dev.redlock.coroutines.Redlock
import dev.redlock.coroutines.acquire
import dev.redlock.coroutines.guard
import dev.redlock.coroutines.tryAcquire
import dev.redlock.coroutines.runWithLease
import dev.redlock.java.LockLease
import dev.redlock.java.LockOptions
import java.util.Optional
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
import kotlinx.coroutines.Job
import kotlinx.coroutines.CoroutineStart
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.NonCancellable
import kotlinx.coroutines.SupervisorJob
import kotlinx.coroutines.cancel
import kotlinx.coroutines.coroutineScope
import kotlinx.coroutines.currentCoroutineContext
import kotlinx.coroutines.isActive
import kotlinx.coroutines.launch
import kotlinx.coroutines.runBlocking
import kotlinx.coroutines.withContext

/**
 * The facade's only contact with the coroutine engine: every Java call becomes one coroutine in
 * [scope] over the one [Redlock], and its outcome is delivered to a `CompletableFuture` on the
 * caller's executor.
 *
 * The engine's coroutines run on [Dispatchers.Default] and never run user code; the user's
 * action and every completion the user can observe run on the executor of the call. Signatures
 * here use Java types only, so that the Java half of the facade needs no Kotlin API.
 */
@OptIn(InternalRedlockApi::class)
internal class EngineBridge(config: RedlockConfig) : AutoCloseable {
    private val redlock = Redlock(config)

    /** Parent of every call and keeper; cancelled by [close]. */
    private val calls = SupervisorJob()
    private val scope = CoroutineScope(calls + Dispatchers.Default + CoroutineName("redlock-java"))

    /** Parent of releases: never cancelled, so that a release runs to its end even during [close]. */
    private val cleanups = SupervisorJob()
    private val cleanupScope = CoroutineScope(cleanups + Dispatchers.Default + CoroutineName("redlock-java-release"))

    /** Leases from `acquire` / `tryAcquire` not yet released: [close] releases them. */
    private val held: MutableSet<BridgedLease> = ConcurrentHashMap.newKeySet()
    private val closed = AtomicBoolean()

    val config: RedlockConfig
        get() = redlock.config

    /** A started call: the user's future, and one that completes once all its work, cleanup included, is over. */
    class Call<T>(val result: CompletableFuture<T>, val settled: CompletableFuture<Void?>)

    /**
     * `withLock`: [action] runs on [executor], the call's future completes on [executor], the
     * lease's futures complete on [leaseExecutor].
     */
    fun <T> withLock(
        options: LockOptions,
        executor: Executor,
        leaseExecutor: Executor,
        action: Function<in LockLease, out CompletionStage<T>?>,
    ): Call<T> =
        launchCall(executor, null) {
            section(options, executor, leaseExecutor, action)
        }

    /** `withReadLock`: as [withLock], for the read side of a reader-writer lock. */
    fun <T> withReadLock(options: LockOptions, executor: Executor, action: Function<in LockLease, out CompletionStage<T>?>): Call<T> =
        launchCall(executor, null) { section(options, executor, executor, action, LockType.READ) }

    /** `withWriteLock`: as [withLock], for the write side of a reader-writer lock (writer priority on). */
    fun <T> withWriteLock(options: LockOptions, executor: Executor, action: Function<in LockLease, out CompletionStage<T>?>): Call<T> =
        launchCall(executor, null) { section(options, executor, executor, action, LockType.write(true)) }

    /** `withPermit`: as [withLock], for one permit of a semaphore; a bad [permits] is thrown at once. */
    fun <T> withPermit(options: LockOptions, permits: Int, executor: Executor, action: Function<in LockLease, out CompletionStage<T>?>): Call<T> {
        val type = LockType.permit(permits)
        return launchCall(executor, null) { section(options, executor, executor, action, type) }
    }

    /** `acquire`: waits for the lock; a lease the caller no longer wants (cancelled meanwhile) is released. */
    fun acquire(options: LockOptions, executor: Executor): Call<LockLease> =
        launchCall(executor, { lease -> (lease as BridgedLease).releaseAsync() }) {
            val lease = redlock.acquire(*options.names(), leaseTime = options.lease(), waitTime = options.wait(), fencing = options.fencingChoice())
            adopt(lease, executor, options.autoRenew())
        }

    /** `tryAcquire`: one attempt; empty on contention. */
    fun tryAcquire(options: LockOptions, executor: Executor): Call<Optional<LockLease>> =
        launchCall(executor, { lease -> lease.ifPresent { (it as BridgedLease).releaseAsync() } }) {
            val lease = redlock.tryAcquire(*options.names(), leaseTime = options.lease(), fencing = options.fencingChoice())
            if (lease == null) Optional.empty() else Optional.of<LockLease>(adopt(lease, executor, options.autoRenew()))
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
            result.completeExceptionally(IllegalStateException(CLOSED))
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
                    // The user cancelled the future (then this delivers nothing), or close() cancelled the call.
                    deliver(result, executor, null, cancellation())
                    throw e
                } catch (e: Throwable) {
                    deliver(result, executor, null, e)
                    return@launch
                }
            deliver(result, executor, value, null, dropped)
        }
        job.invokeOnCompletion { cause ->
            // A call cancelled before it could start (close() raced with it) still gets an answer.
            if (cause != null && !result.isDone) deliver(result, executor, null, cancellation())
            settled.complete(null)
        }
        result.whenComplete { _, _ -> job.cancel() }
        return Call(result, settled)
    }

    /** Runs [block] in the scope that releases use; it is never cancelled, and [close] waits for it. */
    fun launchCleanup(block: suspend () -> Unit) {
        cleanupScope.launch { block() }
    }

    /** Starts a watch of a lease (a state listener): cancelled by its handle or by [close]. */
    fun launchWatch(block: suspend () -> Unit): Job = scope.launch { block() }

    /** Stops tracking a lease that is being released. */
    fun forget(lease: BridgedLease) {
        held.remove(lease)
    }

    /**
     * Closes: cancels every call and keeper and waits for them (the engine releases what they
     * held), releases the leases still held, waits for every release, then closes the [Redlock].
     */
    override fun close() {
        if (!closed.compareAndSet(false, true)) return
        calls.cancel(CancellationException(CLOSED))
        runBlocking {
            calls.join()
            for (lease in held.toList()) lease.releaseAsync()
            for (release in cleanups.children.toList()) release.join()
        }
        redlock.close()
    }

    override fun toString(): String = "AsyncRedlock(" + redlock.toString().removePrefix("Redlock(")

    /** `withLock` with renewal: exactly the engine's `withRedlock`, with the action's stage as its block. */
    private suspend fun <T> section(
        options: LockOptions,
        executor: Executor,
        leaseExecutor: Executor,
        action: Function<in LockLease, out CompletionStage<T>?>,
        type: LockType = LockType.MUTEX,
    ): T {
        var bridged: BridgedLease? = null
        try {
            return redlock.runWithLease(options.names(), options.lease(), options.wait(), options.autoRenew(), options.fencingChoice(), type) { lease ->
                val facadeLease = BridgedLease(this@EngineBridge, lease, leaseExecutor)
                bridged = facadeLease
                // Completes lost() while the action runs; the engine's own guard cancels the block.
                val watch = launch { facadeLease.onLost(lease.awaitLost()) }
                try {
                    runAction(action, facadeLease, executor)
                } finally {
                    watch.cancel()
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
     * Calls [action] on [executor] and waits for the stage it returns. Cancelling the wait (loss,
     * or the caller cancelling) cancels the stage, also one the action returns only later.
     */
    private suspend fun <T> runAction(
        action: Function<in LockLease, out CompletionStage<T>?>,
        lease: LockLease,
        executor: Executor,
    ): T {
        val returned = CompletableFuture<CompletionStage<out T>>()
        try {
            executor.execute {
                val stage =
                    try {
                        action.apply(lease)
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

    /** Wraps a lease of the engine for `acquire`: tracked for close, renewed and watched by a keeper job. */
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
        java.util.concurrent.CancellationException(if (closed.get()) CANCELLED_BY_CLOSE else "the call was cancelled")

    private companion object {
        const val CLOSED = "this AsyncRedlock is closed"
        const val CANCELLED_BY_CLOSE = "the AsyncRedlock was closed while this call was running"

        fun LockOptions.names(): Array<String> = resources().toTypedArray()

        fun LockOptions.lease(): Duration? = leaseTime().orElse(null)?.toKotlinDuration()

        fun LockOptions.wait(): Duration? = waitTime().orElse(null)?.toKotlinDuration()

        fun LockOptions.fencingChoice(): Boolean? = fencing().orElse(null)
    }
}
