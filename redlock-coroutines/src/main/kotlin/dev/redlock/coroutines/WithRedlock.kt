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
 * @sample dev.redlock.examples.readme.main
 */
public suspend fun <T> Redlock.withRedlock(
    vararg resources: String,
    leaseTime: Duration? = null,
    waitTime: Duration? = null,
    fencing: Boolean? = null,
    block: suspend CoroutineScope.(Lease) -> T,
): T {
    @OptIn(InternalRedlockApi::class)
    return runWithLease(resources, leaseTime, waitTime, renew = true, fencing, block = block)
}

/**
 * [withRedlock] with renewal as a switch: with `renew = false` the lease is not renewed, and the
 * block is cancelled (with [LockLostException]) when it outlives its lease. For the Java facade's
 * `LockOptions.autoRenew(false)`; one implementation serves both.
 *
 * @suppress Internal API: hidden from the API documentation.
 */
@InternalRedlockApi
public suspend fun <T> Redlock.runWithLease(
    resources: Array<out String>,
    leaseTime: Duration?,
    waitTime: Duration?,
    renew: Boolean,
    fencing: Boolean?,
    type: LockType = LockType.MUTEX,
    block: suspend CoroutineScope.(Lease) -> T,
): T {
    val lease = acquireLease(resources, leaseTime, waitTime, once = false, fencing, type.kind)!!
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

/**
 * Runs [block] while holding a read lock on [resource]: any number of readers hold it together,
 * never while a writer holds it. Renewal, loss, release and cancellation work exactly as in
 * [withRedlock] (loss cancels the block and throws [LockLostException]).
 *
 * A reader is admitted on a majority of masters, each of which admits it only while no writer
 * holds the lock and no writer waits for it (see [withWriteLock]'s `writerPriority`). Each reader
 * is kept with its own expiry: a reader that crashes frees its place after its lease time. Read
 * locks have no fencing token. Keys: see the README, "Reader-writer locks and semaphores".
 *
 * ```
 * redlock.withReadLock("catalog") { render(catalog) }
 * ```
 *
 * This suspending function is cancellable, as [withRedlock] is.
 *
 * @throws LockNotAcquiredException if the read lock could not be acquired within the wait time
 * @throws LockLostException if the lease was lost while the block ran
 * @throws IllegalArgumentException for an empty or invalid resource name, or durations out of range
 * @sample dev.redlock.examples.readme.sharedLocks
 */
public suspend fun <T> Redlock.withReadLock(
    resource: String,
    leaseTime: Duration? = null,
    waitTime: Duration? = null,
    block: suspend CoroutineScope.(Lease) -> T,
): T {
    @OptIn(InternalRedlockApi::class)
    return runWithLease(arrayOf(resource), leaseTime, waitTime, renew = true, fencing = false, LockType.READ, block)
}

/**
 * Runs [block] while holding the write lock on [resource]: exclusive against every other writer
 * and every reader of the same reader-writer lock (not against [withRedlock] on the same name,
 * which is a different lock). Renewal, loss, release and cancellation work exactly as in
 * [withRedlock].
 *
 * A writer is admitted on a majority of masters, each of which admits it only when no other
 * writer and no live reader holds the lock. With [writerPriority] (the default), a writer kept
 * out only by readers leaves a mark on the masters that stops new readers from entering until it
 * gets in, gives up, or the mark expires after its lease time: a steady stream of readers cannot
 * starve it. Write locks have no fencing token.
 *
 * This suspending function is cancellable, as [withRedlock] is.
 *
 * @throws LockNotAcquiredException if the write lock could not be acquired within the wait time
 * @throws LockLostException if the lease was lost while the block ran
 * @throws IllegalArgumentException for an empty or invalid resource name, or durations out of range
 */
public suspend fun <T> Redlock.withWriteLock(
    resource: String,
    leaseTime: Duration? = null,
    waitTime: Duration? = null,
    writerPriority: Boolean = true,
    block: suspend CoroutineScope.(Lease) -> T,
): T {
    @OptIn(InternalRedlockApi::class)
    return runWithLease(arrayOf(resource), leaseTime, waitTime, renew = true, fencing = false, LockType.write(writerPriority), block)
}

/**
 * Runs [block] while holding one of the [permits] permits of the semaphore [resource]: at most
 * [permits] holders at a time. Each permit has its own lease, renewed while the block runs and
 * released on every exit path; a holder that crashes gives its permit back after its lease time.
 * Loss cancels the block and throws [LockLostException], as in [withRedlock].
 *
 * With N masters a holder must win `floor(N * permits / (permits + 1)) + 1` of them, not a mere
 * majority: each master admits at most [permits] holders, so [permits] + 1 holders would need more
 * admissions than all masters can give. With one permit that is the majority; with
 * `permits >= N - 1` it is every master, so the semaphore then tolerates no failed master (see
 * the README, "Reader-writer locks and semaphores"). Permits have no fencing token.
 *
 * Every caller of one semaphore must use the same [permits]: a call whose [permits] differs from
 * the one the current holders use fails with [IllegalArgumentException] naming both.
 *
 * This suspending function is cancellable, as [withRedlock] is.
 *
 * @throws LockNotAcquiredException if no permit could be acquired within the wait time
 * @throws LockLostException if the permit was lost while the block ran
 * @throws IllegalArgumentException if [permits] is below 1 or differs from the current holders',
 *   for an empty or invalid resource name, or durations out of range
 */
public suspend fun <T> Redlock.withPermit(
    resource: String,
    permits: Int,
    leaseTime: Duration? = null,
    waitTime: Duration? = null,
    block: suspend CoroutineScope.(Lease) -> T,
): T {
    @OptIn(InternalRedlockApi::class)
    return runWithLease(arrayOf(resource), leaseTime, waitTime, renew = true, fencing = false, LockType.permit(permits), block)
}
