@file:JvmName("RedlockInternals")

package dev.redlock.coroutines

import dev.redlock.core.LockLostException

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
