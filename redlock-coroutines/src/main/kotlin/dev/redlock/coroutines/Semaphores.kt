@file:JvmName("Semaphores")

package dev.redlock.coroutines

import dev.redlock.core.LockLostException
import dev.redlock.core.LockNotAcquiredException
import dev.redlock.core.RedlockClosedException
import dev.redlock.coroutines.internal.LockKind
import dev.redlock.coroutines.internal.acquireFor
import dev.redlock.coroutines.internal.runSection
import kotlin.time.Duration
import kotlinx.coroutines.CoroutineScope

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
 * the README, "Reader-writer locks and semaphores"). Permits have no fencing token (several
 * holders at once have no order).
 *
 * Every caller of one semaphore must use the same [permits]: a call whose [permits] differs from
 * the one the current holders use fails with [IllegalArgumentException] naming both.
 *
 * This suspending function is cancellable, as [withRedlock] is. Not reentrant: taking a permit of
 * a semaphore inside a section that holds one of its permits fails at once.
 *
 * @throws LockNotAcquiredException if no permit could be acquired within the wait time
 * @throws LockLostException if the permit was lost while the block ran
 * @throws RedlockClosedException if the Redlock is closed, or was closed while waiting
 * @throws IllegalArgumentException if [permits] is below 1 or differs from the current holders',
 *   for an empty or invalid resource name, or durations out of range
 * @throws IllegalStateException if the calling coroutine's section holds a permit of this semaphore
 */
public suspend fun <T> Redlock.withPermit(
    resource: String,
    permits: Int,
    leaseTime: Duration? = null,
    waitTime: Duration? = null,
    block: suspend CoroutineScope.(Lease) -> T,
): T = engine.runSection(LockKind.Permit.of(permits), arrayOf(resource), leaseTime, waitTime, renew = true, fencing = false, "withPermit", block)

/**
 * Acquires one of the [permits] permits of the semaphore [resource] (see [withPermit]), waiting up
 * to [waitTime], and returns the lease, which is not renewed: [Lease.extend] it, and
 * [Lease.release] it when done.
 *
 * This suspending function is cancellable, as [acquire] is.
 *
 * @throws LockNotAcquiredException if no permit could be acquired within the wait time
 * @throws RedlockClosedException if the Redlock is closed, or was closed while waiting
 * @throws IllegalArgumentException if [permits] is below 1 or differs from the current holders',
 *   for an empty or invalid resource name, or durations out of range
 * @throws IllegalStateException if the calling coroutine's section holds a permit of this semaphore
 */
public suspend fun Redlock.acquirePermit(
    resource: String,
    permits: Int,
    leaseTime: Duration? = null,
    waitTime: Duration? = null,
): Lease = engine.acquireFor(LockKind.Permit.of(permits), arrayOf(resource), leaseTime, waitTime, once = false, fencing = false, "acquirePermit")!!

/**
 * Makes one attempt to acquire one of the [permits] permits of the semaphore [resource]: returns
 * the lease (not renewed), or null while all permits are taken.
 *
 * @throws LockNotAcquiredException when the attempt failed without contention (too few masters answered)
 * @throws RedlockClosedException if the Redlock is closed
 * @throws IllegalArgumentException if [permits] is below 1 or differs from the current holders',
 *   for an empty or invalid resource name, or a lease time out of range
 * @throws IllegalStateException if the calling coroutine's section holds a permit of this semaphore
 */
public suspend fun Redlock.tryAcquirePermit(
    resource: String,
    permits: Int,
    leaseTime: Duration? = null,
): Lease? = engine.acquireFor(LockKind.Permit.of(permits), arrayOf(resource), leaseTime, null, once = true, fencing = false, "tryAcquirePermit")
