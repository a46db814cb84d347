@file:JvmName("Redlocks")

package dev.redlock.coroutines

import dev.redlock.core.LockLostException
import dev.redlock.core.LockNotAcquiredException
import dev.redlock.core.RedlockClosedException
import dev.redlock.coroutines.internal.LockKind
import dev.redlock.coroutines.internal.runSection
import kotlin.time.Duration
import kotlinx.coroutines.CancellationException
import kotlinx.coroutines.CoroutineScope
import kotlinx.coroutines.NonCancellable
import kotlinx.coroutines.coroutineScope

/**
 * Runs [block] while holding the lock on [resources], renewing it in the background and
 * releasing it on every exit path.
 *
 * Waits up to [waitTime] for the lock (null: the config's wait time), holds it with [leaseTime]
 * (null: the config's lease time), with a fencing token in [Lease.fencingToken] if [fencing]
 * (null: the config's `fencing` setting; a token costs a second round trip at acquisition), and
 * renews it every third of the lease time while the block runs. If the lease is lost — a quorum
 * of masters answers that it is gone, its validity runs out before a renewal gets through, or the
 * Redlock is closed — the block is cancelled at once and this function throws
 * [LockLostException]. The loss is declared by a timer no I/O can delay, at the end of the
 * validity at the latest (a few milliseconds before it, never after), also while a renewal is
 * still waiting for a slow master. The block's result is returned only if the lease was still
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
 *   with `appendfsync always`); the restart guard enforces it for masters that come back empty,
 *   which is why a [leaseTime] longer than `RedlockConfig.restartGuard` is refused.
 * - Locks are not reentrant: calling it for a resource that the calling coroutine's own critical
 *   section already holds (on the same Redlock) would wait for itself, so it fails at once with
 *   [IllegalStateException]. Pass the lease down instead.
 *
 * @throws LockNotAcquiredException if the lock could not be acquired within the wait time (the
 *   call returns or throws by then, plus one node timeout)
 * @throws LockLostException if the lease was lost while the block ran
 * @throws RedlockClosedException if the Redlock is closed, or was closed while waiting
 * @throws IllegalArgumentException for no resources, empty, blank or duplicate names, durations
 *   out of range, or a lease time longer than the restart guard
 * @throws IllegalStateException if the calling coroutine's critical section holds the lock already
 * @sample dev.redlock.examples.readme.main
 */
public suspend fun <T> Redlock.withRedlock(
    vararg resources: String,
    leaseTime: Duration? = null,
    waitTime: Duration? = null,
    fencing: Boolean? = null,
    block: suspend CoroutineScope.(Lease) -> T,
): T = engine.runSection(LockKind.Mutex, resources, leaseTime, waitTime, renew = true, fencing, "withRedlock", block)
