@file:JvmName("Redlocks")

package dev.redlock.coroutines

import dev.redlock.core.LockLostException
import dev.redlock.core.LockNotAcquiredException
import kotlin.time.Duration
import kotlinx.coroutines.CancellationException
import kotlinx.coroutines.CoroutineScope
import kotlinx.coroutines.NonCancellable
import kotlinx.coroutines.cancel
import kotlinx.coroutines.coroutineScope
import kotlinx.coroutines.currentCoroutineContext
import kotlinx.coroutines.isActive
import kotlinx.coroutines.withContext

/**
 * Runs [block] while holding the lock on [resources], renewing it in the background and
 * releasing it on every exit path.
 *
 * Waits up to [waitTime] for the lock (null: the config's wait time), holds it with [leaseTime]
 * (null: the config's lease time), with a fencing token in [Lease.fencingToken] if [fencing]
 * (null: the config's `fencing` setting; a token costs a second round trip at acquisition), and renews it every third of the lease time from a child job
 * scoped to the block. If the lease is lost — a quorum of masters answers that it is gone, or its
 * validity runs out before a renewal gets through — the block is cancelled at once and this
 * function throws [LockLostException]. The block's result is returned only if the lease was still
 * held when the block finished.
 *
 * ```
 * redlock.withRedlock("orders:42") { lease ->
 *     chargeCard(order)
 * }
 * ```
 *
 * Like [coroutineScope], it returns when the block and its children are done, and the block may
 * launch coroutines of its own: they are cancelled with it on loss.
 *
 * ## Cancellation
 * This suspending function is cancellable. Cancelled while waiting, it releases whatever the
 * attempt set on the masters and rethrows the [CancellationException]; cancelled while the block
 * runs, the block is cancelled and the lease released before the cancellation propagates. The
 * release itself runs under [NonCancellable], bounded by the per-master timeout.
 *
 * ## Pitfalls
 * - Loss cancels the block cooperatively: a block that blocks a thread or loops without
 *   suspending keeps running until its next suspension point. Keep long work suspending, and
 *   bound I/O by [Lease.remaining].
 * - A process pause longer than the lease (a GC pause, a suspended VM) can outlast the lease
 *   before the library can notice; the block then resumes after another holder may have taken
 *   the lock. Only a fencing token checked by the protected resource stops such a late write.
 * - Validity is measured on this process's monotonic clock and assumes the masters' clocks run
 *   at about the same rate (bounded drift, the `driftFactor` allowance).
 * - A crashed master must stay down for at least one lease time before it rejoins (or persist
 *   with `appendfsync always`); otherwise it can vote for a second holder.
 *
 * @throws LockNotAcquiredException if the lock could not be acquired within the wait time
 * @throws LockLostException if the lease was lost while the block ran
 * @throws IllegalArgumentException for no resources, empty or duplicate names, or durations out
 *   of range
 */
public suspend fun <T> Redlock.withRedlock(
    vararg resources: String,
    leaseTime: Duration? = null,
    waitTime: Duration? = null,
    fencing: Boolean? = null,
    block: suspend CoroutineScope.(Lease) -> T,
): T {
    @OptIn(InternalRedlockApi::class)
    return runWithLease(resources, leaseTime, waitTime, renew = true, fencing, block)
}

/**
 * [withRedlock] with renewal as a switch: with `renew = false` the lease is not renewed, and the
 * block is cancelled (with [LockLostException]) when it outlives its lease. For the Java facade's
 * `LockOptions.autoRenew(false)`; one implementation serves both.
 */
@InternalRedlockApi
public suspend fun <T> Redlock.runWithLease(
    resources: Array<out String>,
    leaseTime: Duration?,
    waitTime: Duration?,
    renew: Boolean,
    fencing: Boolean?,
    block: suspend CoroutineScope.(Lease) -> T,
): T {
    val lease = acquireLease(resources, leaseTime, waitTime, once = false, fencing)!!
    try {
        // One function for acquire, guarded run and release: each suspend function level costs
        // a continuation object per held lock.
        val result = try {
            coroutineScope {
                // Renewal is scoped to the block: the lease is on the Redlock's renewal timer from
                // here to the finally below. The timer renews it together with the other leases due
                // at the same time, on the library's own dispatcher (a caller on a busy
                // single-threaded dispatcher cannot delay it), and on loss cancels this scope from
                // the thread that found the loss. No coroutine per lease: a held lock costs little.
                val scope = this
                val guard = lease.guard(renew) { loss -> scope.cancel(LeaseLostCancellation(loss)) }
                try {
                    block(this, lease)
                } finally {
                    guard.dispose()
                }
            }
        } catch (e: Throwable) {
            val loss = lease.lostException
            if (loss != null && currentCoroutineContext().isActive) {
                if (e is CancellationException) throw loss
                e.addSuppressed(loss)
            }
            throw e
        }
        // The block finished: its result stands only if the lease was held all along. A block that
        // never suspended may have run past the validity without the timer getting a chance to run.
        if (!lease.isValid) lease.lostException?.let { throw it }
        return result
    } finally {
        withContext(NonCancellable) { lease.release() }
    }
}

/**
 * Acquires the lock on [resources], waiting up to [waitTime] (null: the config's wait time), and
 * returns the lease. The lease is not renewed: [Lease.extend] it before [Lease.remaining] runs
 * out, and [Lease.release] it when done (prefer [withRedlock], which does both).
 *
 * This suspending function is cancellable: cancelled while waiting, it releases whatever the
 * attempt set on the masters and rethrows the [CancellationException].
 *
 * @throws LockNotAcquiredException if the lock could not be acquired within the wait time; it
 *   tells contention (another holder, with its remaining time) from masters failing (each
 *   master's failure attached)
 * @throws IllegalArgumentException for no resources, empty or duplicate names, or durations out
 *   of range
 */
public suspend fun Redlock.acquire(
    vararg resources: String,
    leaseTime: Duration? = null,
    waitTime: Duration? = null,
    fencing: Boolean? = null,
): Lease = acquireLease(resources, leaseTime, waitTime, once = false, fencing)!!

/**
 * Makes one attempt to acquire the lock on [resources], without waiting: returns the lease, or
 * null when another holder has the lock. The lease is not renewed (see [acquire]).
 *
 * This suspending function is cancellable (see [acquire]).
 *
 * @throws LockNotAcquiredException when the attempt failed without contention: too few masters
 *   answered (each master's failure attached), or the quorum answered too late
 * @throws IllegalArgumentException for no resources, empty or duplicate names, or a lease time
 *   out of range
 */
public suspend fun Redlock.tryAcquire(
    vararg resources: String,
    leaseTime: Duration? = null,
    fencing: Boolean? = null,
): Lease? = acquireLease(resources, leaseTime, Duration.ZERO, once = true, fencing)
