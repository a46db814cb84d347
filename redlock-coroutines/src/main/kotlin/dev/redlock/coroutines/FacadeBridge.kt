@file:JvmName("RedlockInternals")

package dev.redlock.coroutines

import dev.redlock.core.LockLostException
import dev.redlock.coroutines.internal.Engine
import dev.redlock.coroutines.internal.EngineLocks
import dev.redlock.coroutines.internal.LockKind
import dev.redlock.coroutines.internal.RedlockLease
import dev.redlock.coroutines.internal.acquireFor
import dev.redlock.coroutines.internal.runSection
import kotlin.time.ComparableTimeMark
import kotlin.time.Duration
import kotlinx.coroutines.CoroutineDispatcher
import kotlinx.coroutines.CoroutineScope

// The one bridge between the engine and the library's other modules (the Java facade, the
// chaos suite): kind-generic, so that every kind of lock reaches Java through the same calls, and
// backend-generic: it takes any of the library's DistributedLocks (a Redlock, or locks over a
// backend node), since they all run the same engine.

/** The engine behind one of the library's own [DistributedLocks]. */
internal val DistributedLocks.engineOf: Engine
    get() = when (this) {
        is Redlock -> engine
        is EngineLocks -> engine
        else -> throw IllegalArgumentException(
            "${javaClass.name} is not one of the Redlock library's DistributedLocks (a Redlock, or locks created by a backend module such as redlock-file); the Java facade works only over those",
        )
    }

/**
 * The kind of lock a call takes: a mutex, either side of a reader-writer lock, or a permit.
 *
 * @suppress Internal API: hidden from the API documentation.
 */
@InternalRedlockApi
public class LockType private constructor(internal val kind: LockKind) {
    /** The kind in messages: "lock", "read lock", "write lock", "permit". */
    public val what: String get() = kind.what

    /** Whether leases of this type have one holder at a time and may carry a fencing token. */
    public val fenceable: Boolean get() = kind.fenceable

    /** The lock family (mutex, reader-writer, semaphore): two types of one family lock the same thing. */
    public val family: String get() = kind.family

    /** Describes the type, for messages. */
    override fun toString(): String = kind.what

    public companion object {
        /** A mutex on one or several resources. */
        public val MUTEX: LockType = LockType(LockKind.Mutex)

        /** The read side of a reader-writer lock. */
        public val READ: LockType = LockType(LockKind.Read)

        private val WRITE = LockType(LockKind.Write.of(true))
        private val WRITE_UNPRIORITISED = LockType(LockKind.Write.of(false))

        /** The write side of a reader-writer lock; with [writerPriority], a waiting writer keeps new readers out. */
        public fun write(writerPriority: Boolean): LockType = if (writerPriority) WRITE else WRITE_UNPRIORITISED

        /** One permit of a semaphore with [permits] permits; throws [IllegalArgumentException] below 1. */
        public fun permit(permits: Int): LockType = LockType(LockKind.Permit.of(permits))
    }
}

/**
 * Runs [block] under a lease of [type] on [resources], as `withRedlock` and its siblings do; with
 * `renew = false` the lease is not renewed and the block is cancelled (with [LockLostException])
 * when it outlives its lease. [call] names the call in messages.
 *
 * @suppress Internal API: hidden from the API documentation.
 */
@InternalRedlockApi
public suspend fun <T> DistributedLocks.runWithLease(
    type: LockType,
    resources: Array<out String>,
    leaseTime: Duration?,
    waitTime: Duration?,
    renew: Boolean,
    fencing: Boolean?,
    call: String,
    block: suspend CoroutineScope.(Lease) -> T,
): T = engineOf.runSection(type.kind, resources, leaseTime, waitTime, renew, fencing, call, block)

/**
 * Acquires a lease of [type] on [resources] that the caller manages, as `acquire` and its
 * siblings do: waits unless [once]; null only when [once] found the lock held.
 *
 * @suppress Internal API: hidden from the API documentation.
 */
@InternalRedlockApi
public suspend fun DistributedLocks.acquireLease(
    type: LockType,
    resources: Array<out String>,
    leaseTime: Duration?,
    waitTime: Duration?,
    once: Boolean,
    fencing: Boolean?,
    call: String,
): Lease? = engineOf.acquireFor(type.kind, resources, leaseTime, waitTime, once, fencing, call)

/**
 * Guards [this] lease until it is released or lost, on its Redlock's timer: renewed with the other
 * leases due at the same time if [renew], declared lost when its validity runs out. Returns the
 * loss, or null once the lease is released. Cancellable; cancelling it takes the lease off the
 * timer and leaves it as it is.
 *
 * @suppress Internal API: hidden from the API documentation.
 */
@InternalRedlockApi
public suspend fun Lease.guard(renew: Boolean): LockLostException? = (this as RedlockLease).guard(renew)

/**
 * Calls [handler] once if [this] lease is lost before the returned handle is disposed (on the
 * thread that finds the loss: it must be quick and never block); no coroutine per lease.
 *
 * @suppress Internal API: hidden from the API documentation.
 */
@InternalRedlockApi
public fun Lease.invokeOnLoss(handler: (LockLostException) -> Unit): kotlinx.coroutines.DisposableHandle =
    (this as RedlockLease).invokeOnLoss(handler)

/**
 * Closes the locks as [DistributedLocks.close] does, and before its connections and threads stop, waits
 * (bounded, as the rest) for the future [beforeShutdown] returns: for the facade to settle the
 * calls it still runs on the Redlock's work pool.
 *
 * @suppress Internal API: hidden from the API documentation.
 */
@InternalRedlockApi
public fun DistributedLocks.closeAfter(beforeShutdown: () -> java.util.concurrent.CompletableFuture<*>) {
    engineOf.close(beforeShutdown)
}

/**
 * The dispatcher of the locks' own work pool: where the library runs its coroutines (never a
 * Redis client's I/O thread); closed with the Redlock.
 *
 * @suppress Internal API: hidden from the API documentation.
 */
@InternalRedlockApi
public val DistributedLocks.workDispatcher: CoroutineDispatcher get() = engineOf.workDispatcher

/**
 * The instants that decide whether a lease's holder was told of its loss in time, on its Redlock's
 * time source: for checkers that measure how far a critical section ran past its validity.
 *
 * @property validUntil the end of the lease's validity: the current one while it is held, the last
 *   one it had once it ended
 * @property lossDeclaredAt when the library declared the lease lost (and cancelled its block), or
 *   null while it is not lost
 * @suppress Internal API: hidden from the API documentation.
 */
@InternalRedlockApi
public class LeaseTimes internal constructor(
    public val validUntil: ComparableTimeMark,
    public val lossDeclaredAt: ComparableTimeMark?,
)

/**
 * The instants of [this] lease that a checker needs (see [LeaseTimes]); reads them, never changes them.
 *
 * @suppress Internal API: hidden from the API documentation.
 */
@InternalRedlockApi
public fun Lease.times(): LeaseTimes = (this as RedlockLease).current.let {
    LeaseTimes(it.validUntil, (it as? RedlockLease.State.Lost)?.at)
}
