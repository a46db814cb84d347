@file:JvmName("RedlockInternals")

package dev.redlock.coroutines

/**
 * Renews [this] lease every third of its lease time until it is released or lost, then returns.
 * For the Java facade, whose leases from `acquire` renew themselves outside any `withRedlock`.
 * Cancellable; cancelling it stops the renewals and leaves the lease as it is.
 */
@InternalRedlockApi
public suspend fun Lease.keepRenewed() {
    (this as RedlockLease).guard(renew = true)
}
