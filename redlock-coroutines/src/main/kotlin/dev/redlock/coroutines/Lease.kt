package dev.redlock.coroutines

import dev.redlock.core.LeaseState
import dev.redlock.core.LockLostException
import dev.redlock.core.LockNotExtendedException
import kotlin.time.Duration
import kotlinx.coroutines.flow.StateFlow

/**
 * A lock held on one or several resources, valid until its validity runs out unless extended.
 *
 * Inside [withRedlock] the lease is renewed automatically and released when the block ends; a
 * lease from [Redlock.acquire] (or [DistributedLocks.acquire]) is neither: call [extend] before
 * [remaining] runs out, and [release] it.
 * All members are thread-safe.
 */
public interface Lease {
    /** The resources this lease holds, in the order they were asked for. */
    public val resources: List<String>

    /**
     * The fencing token of this lease, or null when it was acquired without fencing (see
     * `RedlockConfig.Builder.fencing` and the `fencing` parameter of [withRedlock]). Tokens grow
     * with every holder of a resource, across all masters: if two holders held a resource one
     * after the other, the later one's token is larger. Pass it with every write to the protected
     * resource, which keeps the largest token it has seen and refuses writes with a smaller one.
     */
    public val fencingToken: Long?

    /**
     * Whether the lease is still held: not released, not lost, and its validity not run out, as
     * measured on the [Redlock]'s time source. A `true` is a statement about now only. Reading it
     * once the validity is about to run out (within its last few milliseconds, the margin the
     * library keeps so that a loss is never declared late) declares the lease lost, as [awaitLost]
     * would a moment later.
     */
    public val isValid: Boolean

    /** How much validity is left; zero once released, lost or expired. */
    public val remaining: Duration

    /**
     * Where the lease stands: [LeaseState.HELD], [LeaseState.AT_RISK] while renewals fail but
     * validity remains (back to `HELD` when one succeeds), then [LeaseState.LOST] or
     * [LeaseState.RELEASED] for good. Collect it to react before a loss, for example to stop
     * taking new work while at risk:
     *
     * ```
     * redlock.withRedlock("jobs") { lease ->
     *     for (job in jobs) {
     *         if (lease.state.value != LeaseState.HELD) break
     *         withTimeout(lease.remaining) { run(job) }  // I/O bounded by the validity left
     *     }
     * }
     * ```
     */
    public val state: StateFlow<LeaseState>

    /**
     * Extends the lease to the full lease time, counted from the start of this call, on every
     * master that still holds it; succeeds when a quorum confirms within the current validity.
     *
     * It never re-creates a key that is gone, and never extends a lease whose validity has run
     * out. This suspending function is cancellable: cancelling it leaves the lease as it was
     * (the masters that already answered keep the longer expiry, which is harmless).
     *
     * @throws LockLostException if the lease is lost (already, or found lost by this call)
     * @throws LockNotExtendedException if too few masters answered; the lease stays valid until
     *   its current validity ends, and a later call may succeed
     * @throws IllegalStateException if the lease was released
     */
    public suspend fun extend()

    /**
     * Releases the lease: compare-and-delete on every master, then a release notice for waiters.
     * Releasing a lease that is already released or lost does nothing. Masters that fail to
     * answer keep the keys until they expire (within the lease time); this is logged, not thrown.
     *
     * Runs to completion even when the caller is cancelled, bounded by the per-master timeout.
     */
    public suspend fun release()

    /**
     * Suspends until the lease is lost, then returns why: a quorum of masters no longer holds it,
     * its validity ran out without a renewal, or its [Redlock] was closed. Never returns for a
     * lease that is released first (it then suspends until cancelled). This suspending function is
     * cancellable.
     */
    public suspend fun awaitLost(): LockLostException
}
