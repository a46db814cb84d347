@file:JvmName("RedlockInternals")

package dev.redlock.coroutines

import dev.redlock.core.LockLostException
import kotlin.time.ComparableTimeMark

/**
 * Guards [this] lease until it is released or lost, on its Redlock's renewal timer: renewed with
 * the other leases due at the same time if [renew], declared lost when its validity runs out.
 * Returns the loss, or null once the lease is released. For the Java facade, whose leases from
 * `acquire` are guarded outside any `withRedlock`. Cancellable; cancelling it takes the lease off
 * the timer and leaves it as it is.
 *
 * @suppress Internal API: hidden from the API documentation.
 */
@InternalRedlockApi
public suspend fun Lease.guard(renew: Boolean): LockLostException? = (this as RedlockLease).guard(renew)

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
public fun Lease.times(): LeaseTimes = (this as RedlockLease).let { LeaseTimes(it.validUntilMark, it.lossDeclaredAt) }
