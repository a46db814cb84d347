package dev.redlock.java.internal

import dev.redlock.core.LockLostException
import dev.redlock.coroutines.Lease
import dev.redlock.java.LockLease
import java.time.Duration
import java.util.OptionalLong
import java.util.concurrent.CompletableFuture
import java.util.concurrent.Executor
import java.util.concurrent.atomic.AtomicBoolean
import dev.redlock.core.LeaseState
import java.util.function.Consumer
import kotlin.time.toJavaDuration
import kotlinx.coroutines.flow.dropWhile
import kotlinx.coroutines.flow.transformWhile
import kotlinx.coroutines.future.await
import kotlinx.coroutines.Job
import kotlinx.coroutines.cancelAndJoin

/**
 * The [LockLease] Java callers hold: the engine's [Lease] seen through futures.
 *
 * [keeper] is the job that renews a lease from `acquire` and watches it for loss; leases of
 * `withLock` have none (the engine renews them inside `withRedlock`). Futures handed to the user
 * complete on [executor]; [released] and [lossSeen] complete on engine threads and are for the
 * facade's own waits, which must not depend on the user's executor having a free thread.
 */
internal class BridgedLease(
    private val bridge: EngineBridge,
    private val lease: Lease,
    private val executor: Executor,
) : LockLease {
    private val lossSeen = CompletableFuture<LockLostException>()
    private val released = CompletableFuture<Void?>()
    private val releaseStarted = AtomicBoolean()

    @Volatile
    var keeper: Job? = null

    /** The loss, once the facade has seen it. */
    val loss: LockLostException?
        get() = lossSeen.getNow(null)

    /** Whether the user (or close) asked for a release: an invalid lease is then not a lost one. */
    val releaseRequested: Boolean
        get() = releaseStarted.get()

    /** Records the loss; idempotent. */
    fun onLost(loss: LockLostException) {
        lossSeen.complete(loss)
    }

    override fun resources(): List<String> = lease.resources

    override fun fencingToken(): OptionalLong = lease.fencingToken?.let { OptionalLong.of(it) } ?: OptionalLong.empty()

    override fun isValid(): Boolean = lease.isValid

    override fun remaining(): Duration = lease.remaining.toJavaDuration()

    override fun extend(): CompletableFuture<Void?> =
        bridge.launchCall<Void?>(executor, null) {
            lease.extend()
            null
        }.result

    override fun release(): CompletableFuture<Void?> {
        val done = releaseAsync()
        if (done.isDone) return CompletableFuture.completedFuture(null)
        val result = CompletableFuture<Void?>()
        done.whenComplete { _, _ -> deliver(result, executor, null, null) }
        return result
    }

    override fun lost(): CompletableFuture<Void?> {
        val result = CompletableFuture<Void?>()
        val now = lossSeen.getNow(null)
        if (now != null) {
            result.completeExceptionally(now)
        } else {
            lossSeen.thenAccept { loss -> deliver(result, executor, null, loss) }
        }
        return result
    }

    override fun state(): LeaseState = lease.state.value

    override fun onStateChange(listener: Consumer<LeaseState>): AutoCloseable {
        val initial = lease.state.value
        // An ended lease changes no more: nothing to watch (a collector would wait forever).
        if (!initial.isHeld) return AutoCloseable {}
        val watch = bridge.launchWatch {
            // One delivery at a time, so the listener sees the states in order (the latest one
            // when several changed while it ran); ends after a final state.
            lease.state.dropWhile { it == initial }.transformWhile { emit(it); it.isHeld }.collect { state ->
                CompletableFuture.runAsync({ listener.accept(state) }, executor)
                    .exceptionally { e ->
                        LOG.warn("A lease state listener threw; it keeps receiving changes", e)
                        null
                    }
                    .await()
            }
        }
        return AutoCloseable { watch.cancel() }
    }

    override fun close() {
        releaseAsync().join()
    }

    /**
     * Starts the release once: stops the keeper, then releases on every master. The returned
     * future completes on an engine thread when the release is done; it never fails.
     */
    fun releaseAsync(): CompletableFuture<Void?> {
        if (releaseStarted.compareAndSet(false, true)) {
            val keeper = keeper
            bridge.forget(this)
            bridge.launchCleanup {
                keeper?.cancelAndJoin()
                lease.release()
            }.invokeOnCompletion { released.complete(null) }
        }
        return released
    }

    override fun toString(): String = "LockLease" + lease.toString().removePrefix("Lease")

    private companion object {
        val LOG: org.slf4j.Logger = org.slf4j.LoggerFactory.getLogger("dev.redlock.java.LockLease")
    }
}
